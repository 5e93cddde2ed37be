// Utility bindings: crc32 (checkpoints and data streams need a CRC on every
// board, and binascii.crc32 is not in every firmware).
#include "py/dynruntime.h"
#include "kernels/crc32.h"

// crc32(buf, crc=0) -> int: CRC-32 of any buffer, chained through `crc`.
static mp_obj_t qt_crc32(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[0], &buf, MP_BUFFER_READ);
    uint32_t crc = 0;
    if (n_args > 1) {
        crc = (uint32_t)mp_obj_get_int_truncated(args[1]);
    }
    crc = qt_crc32_update(crc, (const uint8_t *)buf.buf, buf.len);
    return mp_obj_new_int_from_uint(crc);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_crc32_obj, 1, 2, qt_crc32);

void qt_bind_util(void) {
    mp_store_global(MP_QSTR_crc32, MP_OBJ_FROM_PTR(&qt_crc32_obj));
}
