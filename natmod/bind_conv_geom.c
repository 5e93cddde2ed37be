// Conv2d / ConvTranspose2d output shape: in both modules (_qtrain and
// _qtrain_float), so a float32 layer can be sized with _qtrain_float alone.
// Geometry tuples as in bind_conv.c.
#include "bind_args.h"

// ---- geometry queries --------------------------------------------------------

static mp_obj_t out_shape(mp_obj_t geom, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(geom, transposed, &g);
    mp_obj_t t[3] = { mp_obj_new_int(g.out_ch), mp_obj_new_int(g.out_h), mp_obj_new_int(g.out_w) };
    return mp_obj_new_tuple(3, t);
}

// conv2d_out_shape(geom) -> (out_ch, out_h, out_w)
static mp_obj_t qt_conv2d_out_shape_fn(mp_obj_t geom) {
    return out_shape(geom, false);
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv2d_out_shape_obj, qt_conv2d_out_shape_fn);

static mp_obj_t qt_conv_transpose2d_out_shape_fn(mp_obj_t geom) {
    return out_shape(geom, true);
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv_transpose2d_out_shape_obj, qt_conv_transpose2d_out_shape_fn);

void qt_bind_conv_geom(void) {
    mp_store_global(MP_QSTR_conv2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv2d_out_shape_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_out_shape_obj));
}
