// Python bindings of the float32 Conv2d / ConvTranspose2d kernels and the
// mixed mode (uint8 forward through conv*_forward_u8 of _qtrain, float32
// errors), and conv_swap_axes: the _qtrain_float module.  Geometry tuples,
// argument order and DSGU selection as in bind_conv.c.
#include "bind_args.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/update.h"

// ---- float32 -----------------------------------------------------------------

// conv2d_forward_f32(x, w, b, y, geom, relu) / conv_transpose2d_forward_f32(...)
//   x float[in_ch*in_h*in_w], w float[weights], b float[out_ch] or None, y written.
static mp_obj_t forward_f32(const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[4], transposed, &g);
    const float *x = qt_arg_f32(a[0], "x", qt_conv_in_len(&g), QT_RO);
    const float *w = qt_arg_f32(a[1], "w", qt_conv_w_len(&g), QT_RO);
    const float *b = qt_arg_buf_opt(a[2], "b", QT_TC_F32, (size_t)g.out_ch, QT_RO);
    float *y = qt_arg_f32(a[3], "y", qt_conv_out_len(&g), QT_RW);
    bool relu = qt_arg_bool(a[5], "relu");
    qt_check_no_overlap(y, qt_conv_out_len(&g) * 4, "y", x, qt_conv_in_len(&g) * 4, "x");
    qt_check_no_overlap(y, qt_conv_out_len(&g) * 4, "y", w, qt_conv_w_len(&g) * 4, "w");
    if (transposed) {
        conv_transpose2d_forward_f32(&g, x, w, b, y, relu);
    } else {
        conv2d_forward_f32(&g, x, w, b, y, relu);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_forward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return forward_f32(a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_forward_f32_obj, 6, 6, qt_conv2d_forward_f32_fn);
static mp_obj_t qt_conv_transpose2d_forward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return forward_f32(a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_forward_f32_obj, 6, 6,
    qt_conv_transpose2d_forward_f32_fn);

// conv2d_backward_f32(e, y, x, w, ex, gw, gb, geom[, sel, k])
//   e: dL/dy (written: zeroed where y <= 0 when y is given = fused ReLU);
//   y: forward output or None; ex: dL/dx (written) or None; gw, gb: gradients
//   accumulated (+=) or None.  sel/k: only these output channels (DSGU).
static mp_obj_t backward_f32(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[7], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const float *y = qt_arg_buf_opt(a[1], "y", QT_TC_F32, no, QT_RO);
    float *e = qt_arg_f32(a[0], "e", no, y ? QT_RW : QT_RO);
    const float *x = qt_arg_f32(a[2], "x", ni, QT_RO);
    const float *w = qt_arg_f32(a[3], "w", nw, QT_RO);
    float *ex = qt_arg_buf_opt(a[4], "ex", QT_TC_F32, ni, QT_RW);
    float *gw = qt_arg_buf_opt(a[5], "gw", QT_TC_F32, nw, QT_RW);
    float *gb = qt_arg_buf_opt(a[6], "gb", QT_TC_F32, (size_t)g.out_ch, QT_RW);
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 8, g.out_ch, &n_sel);
    if (ex) {
        qt_check_no_overlap(ex, ni * 4, "ex", e, no * 4, "e");
        qt_check_no_overlap(ex, ni * 4, "ex", w, nw * 4, "w");
        qt_check_no_overlap(ex, ni * 4, "ex", x, ni * 4, "x");
    }
    if (gw) {
        qt_check_no_overlap(gw, nw * 4, "gw", e, no * 4, "e");
        qt_check_no_overlap(gw, nw * 4, "gw", x, ni * 4, "x");
    }
    if (transposed) {
        conv_transpose2d_backward_f32(&g, e, y, x, w, ex, gw, gb, sel, n_sel);
    } else {
        conv2d_backward_f32(&g, e, y, x, w, ex, gw, gb, sel, n_sel);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_backward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return backward_f32(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_backward_f32_obj, 8, 10, qt_conv2d_backward_f32_fn);
static mp_obj_t qt_conv_transpose2d_backward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return backward_f32(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_backward_f32_obj, 8, 10,
    qt_conv_transpose2d_backward_f32_fn);

// ---- mixed (uint8 forward, float32 errors) --------------------------------------

// conv2d_backward_mixed(e, y, yq, w, wq, ex, geom[, sel, k])
// conv_transpose2d_backward_mixed(... same ...)
//   e array('f') dL/dy (zeroed in place where the uint8 forward output y <=
//   yq's zero point, if y is given: fused ReLU); ex array('f') = dL/dx with
//   the uint8 weights (None: mask only).  sel/k: DSGU channels.
static mp_obj_t backward_mixed(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[6], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const uint8_t *y = qt_arg_buf_opt(a[1], "y", QT_TC_U8, no, QT_RO);
    float *e = qt_arg_f32(a[0], "e", no, y ? QT_RW : QT_RO);
    int32_t zy = 0;
    if (y) {
        zy = qt_qp_zero(qt_arg_qparams(a[2], "yq", QT_RO));
    }
    const uint8_t *w = qt_arg_u8(a[3], "w", nw, QT_RO);
    const float *wq = qt_arg_qparams(a[4], "wq", QT_RO);
    float *ex = qt_arg_buf_opt(a[5], "ex", QT_TC_F32, ni, QT_RW);
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 7, g.out_ch, &n_sel);
    if (ex) {
        qt_check_no_overlap(ex, ni * 4, "ex", e, no * 4, "e");
        qt_check_no_overlap(ex, ni * 4, "ex", w, nw, "w");
    }
    if (transposed) {
        conv_transpose2d_backward_mixed(&g, e, y, zy, w, qt_qp_zero(wq), wq[QT_QP_SCALE], ex, sel, n_sel);
    } else {
        conv2d_backward_mixed(&g, e, y, zy, w, qt_qp_zero(wq), wq[QT_QP_SCALE], ex, sel, n_sel);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_backward_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return backward_mixed(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_backward_mixed_obj, 7, 9, qt_conv2d_backward_mixed_fn);
static mp_obj_t qt_conv_transpose2d_backward_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return backward_mixed(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_backward_mixed_obj, 7, 9,
    qt_conv_transpose2d_backward_mixed_fn);

// conv2d_grad_mixed(e, x, xq, gw, gb, geom[, sel, k])
// conv_transpose2d_grad_mixed(... same ...)
//   Float gradients in real units, accumulated (+=), weight layout:
//   gw += s_x sum e (x - z_x), gb += sum e (gb may be None).  Then
//   update_rows_mixed (rows = filters for Conv2d).
static mp_obj_t grad_mixed(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[5], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const float *e = qt_arg_f32(a[0], "e", no, QT_RO);
    const uint8_t *x = qt_arg_u8(a[1], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[2], "xq", QT_RO);
    float *gw = qt_arg_f32(a[3], "gw", nw, QT_RW);
    float *gb = qt_arg_buf_opt(a[4], "gb", QT_TC_F32, (size_t)g.out_ch, QT_RW);
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 6, g.out_ch, &n_sel);
    qt_check_no_overlap(gw, nw * 4, "gw", e, no * 4, "e");
    qt_check_no_overlap(gw, nw * 4, "gw", x, ni, "x");
    if (transposed) {
        conv_transpose2d_grad_mixed(&g, e, x, qt_qp_zero(xq), xq[QT_QP_SCALE], gw, gb, sel, n_sel);
    } else {
        conv2d_grad_mixed(&g, e, x, qt_qp_zero(xq), xq[QT_QP_SCALE], gw, gb, sel, n_sel);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_grad_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return grad_mixed(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_grad_mixed_obj, 6, 8, qt_conv2d_grad_mixed_fn);
static mp_obj_t qt_conv_transpose2d_grad_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return grad_mixed(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_grad_mixed_obj, 6, 8,
    qt_conv_transpose2d_grad_mixed_fn);

// conv2d_update_mixed(e, x, xq, w, wq, b, bq, geom, sel, k, hp, flags, state, rng, scratch) -> int
// conv_transpose2d_update_mixed(... same ...)
//   Mixed mode, batch 1: float error e (after the ReLU mask), uint8 input x,
//   uint8 weights updated with per-filter standardization and no gradient
//   buffer (the shared update_rows_mixed per filter row), biases per tensor,
//   then the weight range update / re-map.  Returns 1 if re-mapped.  Same
//   result as conv*_grad_mixed + update_rows_mixed.
static mp_obj_t update_mixed(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[7], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const float *e = qt_arg_f32(a[0], "e", no, QT_RO);
    const uint8_t *x = qt_arg_u8(a[1], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[2], "xq", QT_RO);
    uint8_t *w = qt_arg_u8(a[3], "w", nw, QT_RW);
    float *wq = qt_arg_qparams(a[4], "wq", QT_RW);
    int32_t *b = qt_arg_buf_opt(a[5], "b", QT_TC_I32, (size_t)g.out_ch, QT_RW);
    float s_b = 1.0f;
    if (b) {
        s_b = qt_arg_qparams(a[6], "bq", QT_RO)[QT_QP_SCALE];
    }
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 8, g.out_ch, &n_sel);
    qt_update_t u;
    float tau;
    qt_arg_update_filters(a[10], a[11], a[13], &u, &tau);
    float *state = qt_arg_f32(a[12], "state", QT_STD_STATE_LEN(g.out_ch), QT_RW);
    size_t sl;
    uint8_t *scratch = qt_arg_conv_scratch(a[14], &g, transposed, &sl);
    qt_check_no_overlap(w, nw, "w", x, ni, "x");
    qt_check_no_overlap(w, nw, "w", e, no * 4, "e");
    qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", e, no * 4, "e");
    u.s_w = wq[QT_QP_SCALE];
    u.zw = qt_qp_zero(wq);
    qt_wrange_t r;
    if (transposed) {
        conv_transpose2d_update_mixed(&g, e, x, qt_qp_zero(xq), xq[QT_QP_SCALE], w, b, s_b, sel, n_sel, &u,
            state, &r, scratch);
    } else {
        conv2d_update_mixed(&g, e, x, qt_qp_zero(xq), xq[QT_QP_SCALE], w, b, s_b, sel, n_sel, &u, state, &r,
            scratch);
    }
    return mp_obj_new_int(qt_weights_qp_update(w, nw, wq, &r, tau));
}
static mp_obj_t qt_conv2d_update_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return update_mixed(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_update_mixed_obj, 15, 15, qt_conv2d_update_mixed_fn);
static mp_obj_t qt_conv_transpose2d_update_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return update_mixed(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_update_mixed_obj, 15, 15,
    qt_conv_transpose2d_update_mixed_fn);

// conv_swap_axes(src, dst, a, b, inner): dst[j][i][:] = src[i][j][:] for a
//   src of a*b*inner items (bytearray/array('B'), or array('i'/'I'/'f')).
//   ConvTranspose2d: (w, w_fm, in_ch, out_ch, k_h*k_w) gives the filter-major
//   copy [out][in][kh][kw] (one filter per row) for update_rows_* with
//   per-filter standardization in the float32/mixed/batch paths, and
//   (w_fm, w, out_ch, in_ch, k_h*k_w) writes it back.
static mp_obj_t qt_conv_swap_axes_fn(size_t n_args, const mp_obj_t *a) {
    mp_buffer_info_t si;
    mp_get_buffer_raise(a[0], &si, MP_BUFFER_READ);
    int tc = si.typecode == 1 ? 'B' : si.typecode;
    if (tc != 'B' && tc != 'i' && tc != 'I' && tc != 'f') {
        qt_raise_type("src: expected typecode 'B', 'i', 'I' or 'f', got '%c'", tc);
    }
    int32_t na = (int32_t)qt_arg_int(a[2], "a", 1, 32767);
    int32_t nb = (int32_t)qt_arg_int(a[3], "b", 1, 32767);
    int32_t inner = (int32_t)qt_arg_int(a[4], "inner", 1, 65535);
    size_t n = (size_t)na * (size_t)nb * (size_t)inner;
    void *src = qt_arg_buf(a[0], "src", (char)tc, n, QT_RO);
    void *dst = qt_arg_buf(a[1], "dst", (char)tc, n, QT_RW);
    size_t isz = tc == 'B' ? 1 : 4;
    qt_check_no_overlap(dst, n * isz, "dst", src, n * isz, "src");
    if (isz == 1) {
        conv_swap_axes_u8(src, dst, na, nb, inner);
    } else {
        conv_swap_axes_u32(src, dst, na, nb, inner);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_swap_axes_obj, 5, 5, qt_conv_swap_axes_fn);

void qt_bind_conv_float(void) {
    mp_store_global(MP_QSTR_conv2d_forward_f32, MP_OBJ_FROM_PTR(&qt_conv2d_forward_f32_obj));
    mp_store_global(MP_QSTR_conv2d_backward_f32, MP_OBJ_FROM_PTR(&qt_conv2d_backward_f32_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_forward_f32, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_forward_f32_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_backward_f32, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_backward_f32_obj));
    mp_store_global(MP_QSTR_conv2d_backward_mixed, MP_OBJ_FROM_PTR(&qt_conv2d_backward_mixed_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_backward_mixed, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_backward_mixed_obj));
    mp_store_global(MP_QSTR_conv2d_grad_mixed, MP_OBJ_FROM_PTR(&qt_conv2d_grad_mixed_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_grad_mixed, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_grad_mixed_obj));
    mp_store_global(MP_QSTR_conv2d_update_mixed, MP_OBJ_FROM_PTR(&qt_conv2d_update_mixed_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_update_mixed, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_update_mixed_obj));
    mp_store_global(MP_QSTR_conv_swap_axes, MP_OBJ_FROM_PTR(&qt_conv_swap_axes_obj));
}
