// _qtrain_float: the float32 reference kernels and the mixed mode (uint8
// forward, float32 errors) -- the second native module.  It is imported by
// the qtrain package only when a float32 or mixed model is built, and is used
// together with _qtrain (the mixed mode's uint8 forward calls are there).
// It also holds the uint8 kernels' batch > 1 entry points (bind_batch.c),
// which a batch-1 uint8 model does not load.
#include "py/dynruntime.h"
#include "bind_common.h"

void qt_bind_dense_float(void);
void qt_bind_conv_float(void);
void qt_bind_conv_geom(void);
void qt_bind_loss_float(void);
void qt_bind_batch(void);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_abi, MP_OBJ_FROM_PTR(&qt_abi_obj));
    qt_bind_dense_float();
    qt_bind_conv_float();
    qt_bind_conv_geom();
    qt_bind_loss_float();
    qt_bind_batch();
    MP_DYNRUNTIME_INIT_EXIT
}
