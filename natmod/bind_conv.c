// Python bindings of the Conv2d and ConvTranspose2d kernels (kernels/conv2d.h,
// kernels/conv_transpose2d.h).  Layouts: CHW activations/errors, Conv2d weights
// [out_ch][in_ch][kh][kw], ConvTranspose2d weights [in_ch][out_ch][kh][kw].
//
// Geometry travels as a tuple of ints:
//   Conv2d          geom = (in_ch, in_h, in_w, out_ch, k_h, k_w,
//                           stride_h, stride_w, pad_h, pad_w)
//   ConvTranspose2d geom = (..same 10.., out_pad_h, out_pad_w)
// and is checked on every call (cheap next to the convolution).
// Argument order as in bind_dense.c: inputs, outputs, options; every uint8
// tensor is followed by its qparams record (array('f', 8), kernels/quant.h).
// conv*_out_shape is in bind_conv_geom.c (both modules), the float32
// and mixed calls and conv_swap_axes in bind_conv_float.c (_qtrain_float).
// DSGU: `sel` is array('i') of distinct output-channel indices (as
// select_topk writes them), `k` how many of them to use (None = all channels).
#include "bind_args.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/update.h"
#include "kernels/select.h"

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

// ---- uint8 -------------------------------------------------------------------

// conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
// conv_transpose2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
//   b int32[out_ch] (real = bq.scale * b) or None; records y's exact range in yq.
static mp_obj_t forward_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[8], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const uint8_t *x = qt_arg_u8(a[0], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[1], "xq", QT_RO);
    const uint8_t *w = qt_arg_u8(a[2], "w", nw, QT_RO);
    const float *wq = qt_arg_qparams(a[3], "wq", QT_RO);
    const int32_t *b = qt_arg_buf_opt(a[4], "b", QT_TC_I32, (size_t)g.out_ch, QT_RO);
    float sb = 0.0f;
    if (b) {
        const float *bq = qt_arg_qparams(a[5], "bq", QT_RO);
        if (bq[QT_QP_ZERO] != 0.0f) {
            qt_raise_value("bq: zero point must be 0 for an int32 bias, got %f", &bq[QT_QP_ZERO]);
        }
        sb = bq[QT_QP_SCALE];
    }
    uint8_t *y = qt_arg_u8(a[6], "y", no, QT_RW);
    float *yq = qt_arg_qparams(a[7], "yq", QT_RW);
    bool relu = qt_arg_bool(a[9], "relu");
    if (n_args < 11) {
        qt_raise_type("scratch: expected a writable bytearray of %d bytes", (int)qt_conv_scratch_need(&g, transposed));
    }
    size_t sl;
    uint8_t *scratch = qt_arg_conv_scratch(a[10], &g, transposed, &sl);
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", y, no, "y");
    qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    qt_check_no_overlap(y, no, "y", x, ni, "x");
    qt_check_no_overlap(y, no, "y", w, nw, "w");

    float swx = wq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    qt_conv_rq_t rq;
    rq.zero_in = qt_qp_zero(xq);
    rq.zero_w = qt_qp_zero(wq);
    rq.zero_out = qt_qp_zero(yq);
    rq.out = qt_fixmul_from_f32(swx / yq[QT_QP_SCALE]);
    rq.bias = qt_fixmul_from_f32(b ? sb / swx : 0.0f);
    rq.relu = relu;
    int32_t r[2];
    if (transposed) {
        conv_transpose2d_forward_u8(&g, x, w, b, y, &rq, r, scratch);
    } else {
        conv2d_forward_u8(&g, x, w, b, y, &rq, r, scratch);
    }
    qt_qp_observe(yq, (float)r[0] * swx, (float)r[1] * swx);
    return mp_const_none;
}
static mp_obj_t qt_conv2d_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return forward_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_forward_u8_obj, 10, 11, qt_conv2d_forward_u8_fn);
static mp_obj_t qt_conv_transpose2d_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return forward_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_forward_u8_obj, 10, 11,
    qt_conv_transpose2d_forward_u8_fn);

// conv2d_backward_u8(e, eq, y, yq, w, wq, ex, exq, geom, sel, k, scratch)
// conv_transpose2d_backward_u8(... same ...)
//   Error propagation (METHOD 3).  y (forward output, uint8) given = fused
//   ReLU: e is set to its zero point in place where y <= yq's zero point.
//   ex written (uint8, scale/zero from exq) and its exact range recorded in
//   exq; ex None = only the ReLU mask (first layer).  Only the sel[:k]
//   output channels propagate (DSGU; sel None = all).
static mp_obj_t backward_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[8], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const uint8_t *y = qt_arg_buf_opt(a[2], "y", QT_TC_U8, no, QT_RO);
    uint8_t *e = qt_arg_u8(a[0], "e", no, y ? QT_RW : QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const uint8_t *w = qt_arg_u8(a[4], "w", nw, QT_RO);
    const float *wq = qt_arg_qparams(a[5], "wq", QT_RO);
    uint8_t *ex = qt_arg_buf_opt(a[6], "ex", QT_TC_U8, ni, QT_RW);
    float *exq = ex ? qt_arg_qparams(a[7], "exq", QT_RW) : NULL;
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 9, g.out_ch, &n_sel);
    uint8_t *scratch = NULL;
    if (ex) {
        if (n_args < 12) {
            qt_raise_type("scratch: expected a writable bytearray of %d bytes", (int)qt_conv_scratch_need(&g, transposed));
        }
        size_t sl;
        scratch = qt_arg_conv_scratch(a[11], &g, transposed, &sl);
        qt_check_no_overlap(scratch, sl, "scratch", e, no, "e");
        qt_check_no_overlap(scratch, sl, "scratch", ex, ni, "ex");
        qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    }
    if (y) {
        const float *yq = qt_arg_qparams(a[3], "yq", QT_RO);
        qt_check_no_overlap(e, no, "e", y, no, "y");
        conv_relu_mask_u8(e, y, (int32_t)no, qt_qp_zero(eq), qt_qp_zero(yq));
    }
    if (!ex) {
        return mp_const_none;
    }
    qt_check_no_overlap(ex, ni, "ex", e, no, "e");
    qt_check_no_overlap(ex, ni, "ex", w, nw, "w");
    float swe = wq[QT_QP_SCALE] * eq[QT_QP_SCALE];
    qt_conv_rq_t rq;
    rq.zero_in = qt_qp_zero(eq);
    rq.zero_w = qt_qp_zero(wq);
    rq.zero_out = qt_qp_zero(exq);
    rq.out = qt_fixmul_from_f32(swe / exq[QT_QP_SCALE]);
    rq.bias = qt_fixmul_from_f32(0.0f);
    rq.relu = 0;
    int32_t r[2];
    if (transposed) {
        conv_transpose2d_backward_input_u8(&g, e, w, ex, &rq, r, sel, n_sel, scratch);
    } else {
        conv2d_backward_input_u8(&g, e, w, ex, &rq, r, sel, n_sel, scratch);
    }
    qt_qp_observe(exq, (float)r[0] * swe, (float)r[1] * swe);
    return mp_const_none;
}
static mp_obj_t qt_conv2d_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return backward_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_backward_u8_obj, 9, 12, qt_conv2d_backward_u8_fn);
static mp_obj_t qt_conv_transpose2d_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return backward_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_backward_u8_obj, 9, 12,
    qt_conv_transpose2d_backward_u8_fn);

// conv2d_grad_u8(e, eq, x, xq, gw, gb, geom, sel, k, scratch)
//   Integer gradients, accumulated (+=) for a batch: gw int32[weights] in the
//   weight layout, real = s_e s_x gw; gb int32[out_ch] or None, real = s_e gb.
//   Only the sel[:k] output channels (DSGU); others are left untouched.
static mp_obj_t grad_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[6], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const uint8_t *e = qt_arg_u8(a[0], "e", no, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const uint8_t *x = qt_arg_u8(a[2], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[3], "xq", QT_RO);
    int32_t *gw = qt_arg_i32(a[4], "gw", nw, QT_RW);
    int32_t *gb = qt_arg_buf_opt(a[5], "gb", QT_TC_I32, (size_t)g.out_ch, QT_RW);
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 7, g.out_ch, &n_sel);
    size_t sl;
    uint8_t *scratch = qt_arg_conv_scratch(a[9], &g, transposed, &sl);
    qt_check_no_overlap(scratch, sl, "scratch", e, no, "e");
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", gw, nw * 4, "gw");
    qt_check_no_overlap(gw, nw * 4, "gw", e, no, "e");
    qt_check_no_overlap(gw, nw * 4, "gw", x, ni, "x");
    if (transposed) {
        conv_transpose2d_grad_acc_u8(&g, e, qt_qp_zero(eq), x, qt_qp_zero(xq), gw, gb, sel, n_sel, scratch);
    } else {
        conv2d_grad_acc_u8(&g, e, qt_qp_zero(eq), x, qt_qp_zero(xq), gw, gb, sel, n_sel, scratch);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_grad_u8_fn(size_t n_args, const mp_obj_t *a) {
    return grad_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_grad_u8_obj, 10, 10, qt_conv2d_grad_u8_fn);
static mp_obj_t qt_conv_transpose2d_grad_u8_fn(size_t n_args, const mp_obj_t *a) {
    return grad_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_grad_u8_obj, 10, 10,
    qt_conv_transpose2d_grad_u8_fn);

// conv2d_update_u8(e, eq, x, xq, w, wq, b, bq, geom, sel, k, hp, flags, state, rng, scratch) -> int
// conv_transpose2d_update_u8(... same ...)
//   One SGD step of batch size 1 (METHOD 4) with per-filter gradient
//   standardization and no gradient buffer: each selected filter's gradient
//   is formed in scratch and applied at once (sel ascending, as select_topk
//   writes it; None = all).  Biases per tensor.  Then the weight range update
//   and re-map (update.h).  e is the error after the ReLU mask (see
//   conv*_backward_u8); state array('f', 5 + 2*out_ch); returns 1 if the
//   stored weights were re-mapped to a new scale.
static mp_obj_t update_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    qt_parse_geom(a[8], transposed, &g);
    const size_t ni = qt_conv_in_len(&g), no = qt_conv_out_len(&g), nw = qt_conv_w_len(&g);
    const uint8_t *e = qt_arg_u8(a[0], "e", no, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const uint8_t *x = qt_arg_u8(a[2], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[3], "xq", QT_RO);
    uint8_t *w = qt_arg_u8(a[4], "w", nw, QT_RW);
    float *wq = qt_arg_qparams(a[5], "wq", QT_RW);
    int32_t *b = qt_arg_buf_opt(a[6], "b", QT_TC_I32, (size_t)g.out_ch, QT_RW);
    float s_b = 1.0f;
    if (b) {
        s_b = qt_arg_qparams(a[7], "bq", QT_RO)[QT_QP_SCALE];
    }
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 9, g.out_ch, &n_sel);
    qt_update_t u;
    float tau;
    qt_arg_update_filters(a[11], a[12], a[14], &u, &tau);
    float *state = qt_arg_f32(a[13], "state", QT_STD_STATE_LEN(g.out_ch), QT_RW);
    size_t sl;
    uint8_t *scratch = qt_arg_conv_scratch(a[15], &g, transposed, &sl);
    qt_check_no_overlap(w, nw, "w", x, ni, "x");
    qt_check_no_overlap(w, nw, "w", e, no, "e");
    qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", e, no, "e");
    u.s_w = wq[QT_QP_SCALE];
    u.zw = qt_qp_zero(wq);
    float s_g = eq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    int first = !(state[0] > 0.0f);
    int32_t r[2];
    if (transposed) {
        conv_transpose2d_update_u8(&g, e, qt_qp_zero(eq), x, qt_qp_zero(xq), w, b, sel, n_sel, s_g,
            eq[QT_QP_SCALE], s_b, &u, state, first, r, scratch);
    } else {
        conv2d_update_u8(&g, e, qt_qp_zero(eq), x, qt_qp_zero(xq), w, b, sel, n_sel, s_g,
            eq[QT_QP_SCALE], s_b, &u, state, first, r, scratch);
    }
    state[0] += 1.0f;
    return mp_obj_new_int(qt_weights_qp_update(w, nw, wq, r, tau));
}
static mp_obj_t qt_conv2d_update_u8_fn(size_t n_args, const mp_obj_t *a) {
    return update_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_update_u8_obj, 16, 16, qt_conv2d_update_u8_fn);
static mp_obj_t qt_conv_transpose2d_update_u8_fn(size_t n_args, const mp_obj_t *a) {
    return update_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_update_u8_obj, 16, 16,
    qt_conv_transpose2d_update_u8_fn);

// conv_select_u8(e, eq, hp, state, sel, scratch) -> k
//   DSGU for a conv layer (METHOD 5): e the CHW error the layer receives,
//   ch = len(sel) channels; score of channel c = sum |e - z_e| over its map;
//   ebar = mean |e - z_e| * s_e over the whole tensor; k from hp =
//   array('f', [lmin, lmax]) and state = array('f', 1) (running max of ebar,
//   0 initially); sel int32[ch] receives the k chosen channels (ascending),
//   scratch uint32[2*ch].  O(ch) selection (select.h).
static mp_obj_t qt_conv_select_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n, ch;
    const uint8_t *e = qt_arg_buf_len(a[0], "e", QT_TC_U8, 1, &n, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const float *hp = qt_arg_f32(a[2], "hp", 2, QT_RO);
    float lmin = qt_check_f32(hp[0], "hp[0] (lmin)", 0.0f, 1.0f, true, false);
    qt_check_f32(hp[1], "hp[1] (lmax)", lmin, 1.0f, false, false);
    float *st = qt_arg_f32(a[3], "state", 1, QT_RW);
    int32_t *sel = qt_arg_buf_len(a[4], "sel", QT_TC_I32, 1, &ch, QT_RW);
    if (n % ch || n / ch > 32767) {
        qt_raise_value("e: expected a multiple of len(sel) = %z items (at most 32767 per channel), got %z", ch, n);
    }
    uint32_t *scratch = qt_arg_u32(a[5], "scratch", 2 * ch, QT_RW);
    conv_channel_scores_u8(e, (int32_t)ch, (int32_t)(n / ch), qt_qp_zero(eq), scratch);
    uint64_t sum = 0;
    for (size_t c = 0; c < ch; c++) {
        sum += scratch[c];
    }
    float ebar = (float)sum / (float)n * eq[QT_QP_SCALE];
    int32_t k = dsgu_k(ebar, st, hp[0], hp[1], (int32_t)ch);
    select_topk_u32(scratch, (int32_t)ch, k, sel, scratch + ch);
    return mp_obj_new_int(k);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_select_u8_obj, 6, 6, qt_conv_select_u8_fn);

// conv_scores_u8(e, eq, scores): DSGU score of every channel of a CHW error,
// sum |e - z_e| over its map; scores array('I') of ch items (ch = len(scores)),
// the input of select_topk.
static mp_obj_t qt_conv_scores_u8_fn(mp_obj_t e_in, mp_obj_t eq_in, mp_obj_t s_in) {
    size_t n, ch;
    const uint8_t *e = qt_arg_buf_len(e_in, "e", QT_TC_U8, 1, &n, QT_RO);
    const float *eq = qt_arg_qparams(eq_in, "eq", QT_RO);
    uint32_t *s = qt_arg_buf_len(s_in, "scores", QT_TC_U32, 1, &ch, QT_RW);
    if (n % ch || n / ch > 32767) {
        qt_raise_value("e: expected a multiple of len(scores) = %z items (at most 32767 per channel), got %z",
            ch, n);
    }
    conv_channel_scores_u8(e, (int32_t)ch, (int32_t)(n / ch), qt_qp_zero(eq), s);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(qt_conv_scores_u8_obj, qt_conv_scores_u8_fn);

void qt_bind_conv(void) {
    mp_store_global(MP_QSTR_conv2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv2d_scratch_len_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_scratch_len_obj));
    mp_store_global(MP_QSTR_conv2d_forward_u8, MP_OBJ_FROM_PTR(&qt_conv2d_forward_u8_obj));
    mp_store_global(MP_QSTR_conv2d_backward_u8, MP_OBJ_FROM_PTR(&qt_conv2d_backward_u8_obj));
    mp_store_global(MP_QSTR_conv2d_grad_u8, MP_OBJ_FROM_PTR(&qt_conv2d_grad_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_forward_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_forward_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_backward_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_backward_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_grad_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_grad_u8_obj));
    mp_store_global(MP_QSTR_conv2d_update_u8, MP_OBJ_FROM_PTR(&qt_conv2d_update_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_update_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_update_u8_obj));
    mp_store_global(MP_QSTR_conv_select_u8, MP_OBJ_FROM_PTR(&qt_conv_select_u8_obj));
    mp_store_global(MP_QSTR_conv_scores_u8, MP_OBJ_FROM_PTR(&qt_conv_scores_u8_obj));
}
