// _qtrain: MicroPython bindings for the qtrain kernels (placeholder, replaced below).
#include "py/dynruntime.h"

static mp_obj_t qt_abi(void) {
    return mp_obj_new_int(1);
}
static MP_DEFINE_CONST_FUN_OBJ_0(qt_abi_obj, qt_abi);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_abi, MP_OBJ_FROM_PTR(&qt_abi_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
