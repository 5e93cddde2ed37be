// Conv2d / ConvTranspose2d geometry queries: output shape and the uint8
// calls' scratch size.  In both modules (_qtrain and _qtrain_float), so either
// one alone can size a layer's buffers.  Geometry tuples as in bind_conv.c.
#include "bind_args.h"
#include "kernels/conv_transpose2d.h"

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

// conv2d_scratch_len(geom) -> bytes of the scratch bytearray every uint8 call
// of this layer takes (one buffer may serve several layers: use the max).
static mp_obj_t qt_conv2d_scratch_len_fn(mp_obj_t geom) {
    qt_conv_geom_t g;
    qt_parse_geom(geom, false, &g);
    return mp_obj_new_int(conv2d_scratch_len_u8(&g));
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv2d_scratch_len_obj, qt_conv2d_scratch_len_fn);

static mp_obj_t qt_conv_transpose2d_scratch_len_fn(mp_obj_t geom) {
    qt_conv_geom_t g;
    qt_parse_geom(geom, true, &g);
    return mp_obj_new_int(conv_transpose2d_scratch_len_u8(&g));
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv_transpose2d_scratch_len_obj, qt_conv_transpose2d_scratch_len_fn);

void qt_bind_conv_geom(void) {
    mp_store_global(MP_QSTR_conv2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv2d_out_shape_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_out_shape_obj));
    mp_store_global(MP_QSTR_conv2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv2d_scratch_len_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_scratch_len_obj));
}
