// Conv2d / ConvTranspose2d output shape and uint8 scratch length: in both
// modules (_qtrain and _qtrain_float), so a float32 layer, or the batch
// gradients' scratch (conv*_grad_u8, bind_batch.c), can be sized with
// _qtrain_float alone.  Geometry tuples as in bind_conv.c.
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

#if QT_CONVT_SLICES_BUILT
// conv_transpose2d_scratch_len(geom, slices=False): slices=True = the bytes
// the input-channel slices calls take (backward with slices=True, update
// with flag 8), a layer's own scratch (convt_slices.attach), not the
// shared one's.
static mp_obj_t qt_conv_transpose2d_scratch_len_fn(size_t n_args, const mp_obj_t *a) {
    qt_conv_geom_t g;
    qt_parse_geom(a[0], true, &g);
    const bool slices = n_args > 1 && qt_arg_bool(a[1], "slices");
    return mp_obj_new_int(slices ? conv_transpose2d_slices_scratch_len_u8(&g)
                          : conv_transpose2d_scratch_len_u8(&g));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_scratch_len_obj, 1, 2,
    qt_conv_transpose2d_scratch_len_fn);
#else
static mp_obj_t qt_conv_transpose2d_scratch_len_fn(mp_obj_t geom) {
    qt_conv_geom_t g;
    qt_parse_geom(geom, true, &g);
    return mp_obj_new_int(conv_transpose2d_scratch_len_u8(&g));
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv_transpose2d_scratch_len_obj, qt_conv_transpose2d_scratch_len_fn);
#endif

void qt_bind_conv_geom(void) {
    mp_store_global(MP_QSTR_conv2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv2d_out_shape_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_out_shape_obj));
    mp_store_global(MP_QSTR_conv2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv2d_scratch_len_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_scratch_len_obj));
}
