// _qtrain: the native module's entry point -- everything a uint8 model needs
// (quantization core, Dense / Conv2d / ConvTranspose2d uint8 kernels, DSGU,
// latent layer, BCE and CE heads, random numbers, CRC).  The float32 and
// mixed-mode kernels, and the uint8 batch > 1 entry points, are in a second
// module, _qtrain_float (qtrain_float_module.c), so a board that trains in
// uint8 loads only this.
//
// Each bind_<operator>.c file holds the MicroPython-facing functions of one
// group of kernels and a qt_bind_<group>() that stores them in the module's
// globals.  mpy_init (called once, on import) calls every one of them.
#include "py/dynruntime.h"
#include "bind_common.h"

void qt_bind_util(void);
void qt_bind_dense(void);
void qt_bind_conv(void);
void qt_bind_conv_geom(void);
void qt_bind_select(void);
void qt_bind_loss(void);

#ifdef QT_PAD
// `make dist QT_PAD=n` (after `rm -rf build/natmod dist`): n bytes of
// constant data in the module, read once at import so the linker keeps
// them.  A measuring knob, never in a release: the module as it would be n
// bytes larger, to find how much room the board tests' heaps leave
// (docs/KERNELS.md, "Module sizes").
static const uint8_t qt_pad[QT_PAD] = {1};
#endif

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    #ifdef QT_PAD
    if (*(volatile const uint8_t *)&qt_pad[QT_PAD - 1] != 0) {
        return mp_const_none;
    }
    #endif
    mp_store_global(MP_QSTR_abi, MP_OBJ_FROM_PTR(&qt_abi_obj));
    // One line per bind_*.c file:
    qt_bind_util();
    qt_bind_dense();
    qt_bind_conv();
    qt_bind_conv_geom();
    qt_bind_select();
    qt_bind_loss();
    MP_DYNRUNTIME_INIT_EXIT
}
