// _qtrain: the native module's entry point.
//
// Each bind_<operator>.c file holds the MicroPython-facing functions of one
// group of kernels and a qt_bind_<group>() that stores them in the module's
// globals.  mpy_init (called once, on import) calls every one of them.
#include "py/dynruntime.h"
#include "bind_common.h"

void qt_bind_util(void);
void qt_bind_dense(void);
void qt_bind_conv(void);
void qt_bind_select(void);
void qt_bind_loss(void);

// Version of the Python-visible API; qtrain checks it on import.
#define QT_API_VERSION (1)

static mp_obj_t qt_abi(void) {
    return mp_obj_new_int(QT_API_VERSION);
}
static MP_DEFINE_CONST_FUN_OBJ_0(qt_abi_obj, qt_abi);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_abi, MP_OBJ_FROM_PTR(&qt_abi_obj));
    // One line per bind_*.c file:
    qt_bind_util();
    qt_bind_dense();
    qt_bind_conv();
    qt_bind_select();
    qt_bind_loss();
    MP_DYNRUNTIME_INIT_EXIT
}
