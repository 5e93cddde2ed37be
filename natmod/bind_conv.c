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
// conv*_out_shape and conv*_scratch_len are in bind_conv_geom.c (both modules), the float32
// and mixed calls and conv_swap_axes in bind_conv_float.c (_qtrain_float).
// DSGU: `sel` is array('i') of distinct output-channel indices (as
// select_topk writes them), `k` how many of them to use (None = all channels).
#include "bind_args.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/update.h"
#include "kernels/select.h"

// ---- uint8 -------------------------------------------------------------------

// Slices (ConvTranspose2d DSGU over input channels) move the error maps in
// place, which needs each slice once and in order.
static void qt_check_slices(bool slices, const int32_t *sel, int32_t n_sel) {
    if (slices && sel && !qt_rows_distinct(sel, n_sel)) {
        qt_raise_value("sel: the input-channel slices must be strictly ascending");
    }
}

// conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
// conv_transpose2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
//   b int32[out_ch] (real = bq.scale * b) or None; records y's exact range in yq.
static const qt_bufarg_t fwd_args[] = {
    { "x", 0, QT_TC_U8, 0, QT_CL_IN }, { "xq", 1, QT_TC_QP, 0, 0 },
    { "w", 2, QT_TC_U8, 0, QT_CL_W }, { "wq", 3, QT_TC_QP, 0, 0 },
    { "b", 4, QT_TC_I32, QT_A_OPT, QT_CL_CH }, { "bq", 5, QT_TC_QP, QT_A_IFPREV, 0 },
    { "y", 6, QT_TC_U8, QT_A_RW, QT_CL_OUT }, { "yq", 7, QT_TC_QP, QT_A_RW, 0 },
    { "scratch", 10, QT_TC_SCR, QT_A_RW, QT_CL_SCR },
};
enum { F_X, F_XQ, F_W, F_WQ, F_B, F_BQ, F_Y, F_YQ, F_SCR, F_N };

static mp_obj_t forward_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    size_t lens[QT_CL_LEN];
    void *p[F_N];
    qt_conv_geom_lens(a[8], transposed, &g, lens);
    bool relu = qt_arg_bool(a[9], "relu");
    qt_parse_bufs(n_args, a, fwd_args, F_N, lens, p);
    qt_check_aliasing(fwd_args, F_N, lens, p);
    const float *xq = p[F_XQ], *wq = p[F_WQ], *bq = p[F_BQ];
    float *yq = p[F_YQ];
    const float sb = qt_bias_scale(bq);
    float swx = wq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    qt_conv_rq_t rq;
    rq.zero_in = qt_qp_zero(xq);
    rq.zero_w = qt_qp_zero(wq);
    rq.zero_out = qt_qp_zero(yq);
    rq.out = qt_fixmul_from_f32(swx / yq[QT_QP_SCALE]);
    rq.bias = qt_fixmul_from_f32(bq ? sb / swx : 0.0f);
    rq.relu = relu;
    rq.mask = NULL;
    int32_t r[2];
    (transposed ? conv_transpose2d_forward_u8 : conv2d_forward_u8)(&g, p[F_X], p[F_W], p[F_B], p[F_Y], &rq, r,
        p[F_SCR]);
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
//   output channels propagate (DSGU; sel None = all).  A 13th argument
//   `slices` (ConvTranspose2d only; False for Conv2d): True = sel names
//   input-channel slices (strictly ascending; the others' ex is their zero
//   point) and scratch is conv_transpose2d_scratch_len(geom, True) bytes.
//   14th, 15th arguments x, xq (after slices, False where not built):
//   mask-aware propagation, x the layer's input from a ReLU layer: ex only
//   where x > xq's zero point (elsewhere its zero point, not computed), the
//   recorded range over those and 0.
static const qt_bufarg_t bwd_args[] = {
    { "y", 2, QT_TC_U8, QT_A_OPT, QT_CL_OUT }, { "yq", 3, QT_TC_QP, QT_A_IFPREV, 0 },
    { "e", 0, QT_TC_U8, 0, QT_CL_OUT }, { "eq", 1, QT_TC_QP, 0, 0 },
    { "w", 4, QT_TC_U8, 0, QT_CL_W }, { "wq", 5, QT_TC_QP, 0, 0 },
    { "ex", 6, QT_TC_U8, QT_A_RW | QT_A_OPT, QT_CL_IN }, { "exq", 7, QT_TC_QP, QT_A_RW | QT_A_IFPREV, 0 },
    { "scratch", 11, QT_TC_SCR, QT_A_RW | QT_A_IFPREV, QT_CL_SCR },
    { "x", 13, QT_TC_U8, QT_A_OPT, QT_CL_IN }, { "xq", 14, QT_TC_QP, QT_A_IFPREV, 0 },
};
enum { B_Y, B_YQ, B_E, B_EQ, B_W, B_WQ, B_EX, B_EXQ, B_SCR, B_X, B_XQ, B_N };

static mp_obj_t backward_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    size_t lens[QT_CL_LEN];
    void *p[B_N];
    qt_conv_geom_lens(a[8], transposed, &g, lens);
#if QT_CONVT_SLICES_BUILT
    const bool slices = n_args > 12 && qt_arg_bool(a[12], "slices");
    if (slices && !transposed) {
        qt_raise_value("slices: ConvTranspose2d only");
    }
    if (slices) {   // the slices' own scratch (either path fits in it)
        lens[QT_CL_SCR] = (size_t)conv_transpose2d_slices_scratch_len_u8(&g);
    }
#else
    const bool slices = false;   // (armv6m: not built; a 13th argument must be False)
    if (n_args > 12 && qt_arg_bool(a[12], "slices")) {
        qt_raise_value("slices: not built for this arch");
    }
#endif
    qt_parse_bufs(n_args, a, bwd_args, B_N, lens, p);
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 9, slices ? g.in_ch : g.out_ch, &n_sel);
    qt_check_slices(slices, sel, n_sel);
    qt_check_aliasing(bwd_args, B_N, lens, p);
    uint8_t *e = p[B_E];
    const float *eq = p[B_EQ];
    if (p[B_Y]) {   // e is written in place: writable, and not y
        qt_arg_u8(a[0], "e", lens[QT_CL_OUT], QT_RW);
        qt_check_no_overlap(e, lens[QT_CL_OUT], "e", p[B_Y], lens[QT_CL_OUT], "y");
        conv_relu_mask_u8(e, p[B_Y], (int32_t)lens[QT_CL_OUT], qt_qp_zero(eq), qt_qp_zero(p[B_YQ]));
    }
    if (!p[B_EX]) {
        return mp_const_none;
    }
    const float *wq = p[B_WQ];
    float *exq = p[B_EXQ];
    float swe = wq[QT_QP_SCALE] * eq[QT_QP_SCALE];
    qt_conv_rq_t rq;
    rq.zero_in = qt_qp_zero(eq);
    rq.zero_w = qt_qp_zero(wq);
    rq.zero_out = qt_qp_zero(exq);
    rq.out = qt_fixmul_from_f32(swe / exq[QT_QP_SCALE]);
    rq.bias = qt_fixmul_from_f32(0.0f);
    rq.relu = 0;
    rq.mask = p[B_X];
    rq.zero_mask = p[B_X] ? qt_qp_zero(p[B_XQ]) : 0;
    int32_t r[2];
    (QT_CONVT_SLICES_BUILT && slices && sel ? conv_transpose2d_backward_slices_u8
     : transposed ? conv_transpose2d_backward_input_u8 : conv2d_backward_input_u8)(&g, e, p[B_W], p[B_EX], &rq,
        r, sel, n_sel, p[B_SCR]);
    qt_observe_masked(exq, r, swe, rq.mask != NULL);
    return mp_const_none;
}
static mp_obj_t qt_conv2d_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return backward_u8(n_args, a, false);
}
// slices (13th), then the mask x, xq
#define QT_BWD_MAX_ARGS 15
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_backward_u8_obj, 9, QT_BWD_MAX_ARGS, qt_conv2d_backward_u8_fn);
static mp_obj_t qt_conv_transpose2d_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return backward_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_backward_u8_obj, 9, QT_BWD_MAX_ARGS,
    qt_conv_transpose2d_backward_u8_fn);

// conv2d_update_u8(e, eq, x, xq, w, wq, b, bq, geom, sel, k, hp, flags, state, rng, scratch) -> int
// conv_transpose2d_update_u8(... same ...)
//   One SGD step of batch size 1 (METHOD 4) with per-filter gradient
//   standardization and no gradient buffer: each selected filter's gradient
//   is formed in scratch and applied at once (sel ascending, as select_topk
//   writes it; None = all).  Biases per tensor.  Then the weight range update
//   and re-map (update.h).  e is the error after the ReLU mask (see
//   conv*_backward_u8); state array('f', 5 + 2*out_ch); returns 1 if the
//   stored weights were re-mapped to a new scale.  ConvTranspose2d: flag 8
//   (QT_CONVT_SLICES) = the structures are the input-channel slices (sel
//   strictly ascending, state 5 + 2*in_ch, every bias updated, scratch of
//   conv_transpose2d_scratch_len(geom, True) bytes).
static const qt_bufarg_t upd_args[] = {
    { "e", 0, QT_TC_U8, 0, QT_CL_OUT }, { "eq", 1, QT_TC_QP, 0, 0 },
    { "x", 2, QT_TC_U8, 0, QT_CL_IN }, { "xq", 3, QT_TC_QP, 0, 0 },
    { "w", 4, QT_TC_U8, QT_A_RW, QT_CL_W }, { "wq", 5, QT_TC_QP, QT_A_RW, 0 },
    { "b", 6, QT_TC_I32, QT_A_RW | QT_A_OPT, QT_CL_CH }, { "bq", 7, QT_TC_QP, QT_A_IFPREV, 0 },
    { "scratch", 15, QT_TC_SCR, QT_A_RW, QT_CL_SCR },
};
enum { U_E, U_EQ, U_X, U_XQ, U_W, U_WQ, U_B, U_BQ, U_SCR, U_N };

static mp_obj_t update_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    size_t lens[QT_CL_LEN];
    void *p[U_N];
    qt_conv_geom_lens(a[8], transposed, &g, lens);
    qt_parse_bufs(n_args, a, upd_args, U_SCR, lens, p);
#if QT_CONVT_SLICES_BUILT
    const mp_int_t allowed = (transposed ? 7 | QT_CONVT_SLICES : 7) | QT_UPD_RMS;
    mp_int_t flags = qt_arg_int(a[12], "flags", 0, allowed);
    if (flags & ~allowed) {   // flag 8 of a conv2d: its 0..7 message
        qt_arg_int(a[12], "flags", 0, 7);
    }
    const bool slices = (flags & QT_CONVT_SLICES) != 0;
    mp_obj_t flags_in = MP_OBJ_NEW_SMALL_INT(flags & (7 | QT_UPD_RMS));
    if (slices) {   // scratch (parsed below) is the slices' own
        lens[QT_CL_SCR] = (size_t)conv_transpose2d_slices_scratch_len_u8(&g);
    }
#else
    const bool slices = false;   // flag 8 fails the flags check (0..7)
    mp_obj_t flags_in = a[12];
#endif
    const int32_t rows = slices ? g.in_ch : g.out_ch;
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 9, rows, &n_sel);
    qt_check_slices(slices, sel, n_sel);
    qt_update_t u;
    float tau;
    qt_arg_update_filters(a[11], flags_in, a[14], &u, &tau);
    float *state = qt_arg_f32(a[13], "state", QT_STD_STATE_LEN(rows), QT_RW);
    qt_parse_bufs(n_args, a, upd_args + U_SCR, 1, lens, p + U_SCR);
    qt_check_aliasing(upd_args, U_N, lens, p);
    const float *eq = p[U_EQ], *xq = p[U_XQ], *bq = p[U_BQ];
    float *wq = p[U_WQ];
    uint8_t *w = p[U_W];
    float s_b = bq ? bq[QT_QP_SCALE] : 1.0f;
    u.s_w = wq[QT_QP_SCALE];
    u.zw = qt_qp_zero(wq);
    float s_g = eq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    int first = !(state[0] > 0.0f);
    qt_wrange_t r;
    (QT_CONVT_SLICES_BUILT && slices ? conv_transpose2d_update_slices_u8
     : transposed ? conv_transpose2d_update_u8 : conv2d_update_u8)(&g, p[U_E], qt_qp_zero(eq), p[U_X],
        qt_qp_zero(xq), w, p[U_B], sel, n_sel, s_g, eq[QT_QP_SCALE], s_b, &u, state, first, &r, p[U_SCR]);
    state[0] += 1.0f;
    return mp_obj_new_int(qt_weights_qp_update(w, lens[QT_CL_W], wq, &r, tau));
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
// conv_select_u8(e, eq, hp, state, sel, scratch, x, xq, geom) -> k
//   ConvTranspose2d DSGU over its input-channel slices (dsgu_convt 'input'):
//   ch = in_ch, scratch uint32[2*ch + in_h*in_w], score of slice ci = sum_j |x_ci,j - z_x| E_j (the error its
//   input channel fed, kernels/conv_transpose2d.h), ebar and k as above.
static mp_obj_t qt_conv_select_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n, ch;
    const uint8_t *e = qt_arg_buf_len(a[0], "e", QT_TC_U8, 1, &n, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const float *hp = qt_arg_f32(a[2], "hp", 2, QT_RO);
    float lmin = qt_check_f32(hp[0], "hp[0] (lmin)", 0.0f, 1.0f, true, false);
    qt_check_f32(hp[1], "hp[1] (lmax)", lmin, 1.0f, false, false);
    float *st = qt_arg_f32(a[3], "state", 1, QT_RW);
    int32_t *sel = qt_arg_buf_len(a[4], "sel", QT_TC_I32, 1, &ch, QT_RW);
    uint32_t *scratch;
    uint64_t sum = 0;
#if QT_CONVT_SLICES_BUILT
    if (n_args > 6) {
        // the slices form takes x, xq and geom: with 7 or 8 arguments a[8]
        // is past the caller's array (read as an object: a segfault on the
        // Unix port, found by soak_api)
        if (n_args != 9) {
            qt_raise_type("x, xq, geom: the slices form takes all three (9 arguments), got %d", (int)n_args);
        }
        qt_conv_geom_t g;
        size_t lens[QT_CL_LEN];
        qt_conv_geom_lens(a[8], true, &g, lens);
        if (n != lens[QT_CL_OUT] || ch != (size_t)g.in_ch) {
            qt_raise_value("e, sel: expected %z and in_ch = %d items, got %z and %z", lens[QT_CL_OUT], (int)g.in_ch, n,
                ch);
        }
        const uint8_t *x = qt_arg_u8(a[6], "x", lens[QT_CL_IN], QT_RO);
        const size_t n_scr = 2 * ch + (size_t)(g.in_h * g.in_w);
        scratch = qt_arg_u32(a[5], "scratch", n_scr, QT_RW);
        qt_check_no_overlap(scratch, 4 * n_scr, "scratch", x, lens[QT_CL_IN], "x");
        sum = conv_transpose2d_slice_scores_u8(&g, e, qt_qp_zero(eq), x, qt_qp_zero(qt_arg_qparams(a[7], "xq", QT_RO)),
            scratch, scratch + 2 * ch);
    } else
#endif
    {
        scratch = qt_arg_u32(a[5], "scratch", 2 * ch, QT_RW);
        if (n % ch || n / ch > 32767) {
            qt_raise_value("e: expected a multiple of len(sel) = %z items (at most 32767 per channel), got %z", ch,
                n);
        }
        conv_channel_scores_u8(e, (int32_t)ch, (int32_t)(n / ch), qt_qp_zero(eq), scratch);
        for (size_t c = 0; c < ch; c++) {
            sum += scratch[c];
        }
    }
    float ebar = (float)sum / (float)n * eq[QT_QP_SCALE];
    int32_t k = dsgu_k(ebar, st, hp[0], hp[1], (int32_t)ch);
    select_topk_u32(scratch, (int32_t)ch, k, sel, scratch + ch);
    return mp_obj_new_int(k);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_select_u8_obj, 6, QT_CONVT_SLICES_BUILT ? 9 : 6,
    qt_conv_select_u8_fn);

// conv_scores_u8(e, eq, scores[, y, yq]): DSGU score of every channel of a
// CHW error, sum |e - z_e| over its map; scores array('I') of ch items (ch =
// len(scores)), the input of select_topk.  y (not None): a ReLU layer's
// forward output (record yq), its mask applied to e in place in the same
// pass (e = z_e where y <= z_y), the scores of the masked error.
static mp_obj_t qt_conv_scores_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n, ch;
    uint8_t *e = qt_arg_buf_len(a[0], "e", QT_TC_U8, 1, &n, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    uint32_t *s = qt_arg_buf_len(a[2], "scores", QT_TC_U32, 1, &ch, QT_RW);
    if (n % ch || n / ch > 32767) {
        qt_raise_value("e: expected a multiple of len(scores) = %z items (at most 32767 per channel), got %z",
            ch, n);
    }
    int32_t zy;
    const uint8_t *y = qt_arg_relu_y(n_args, a, 3, n, &zy);
    if (y) {
        conv_relu_mask_scores_u8(e, y, (int32_t)ch, (int32_t)(n / ch), qt_qp_zero(eq), zy, s);
    } else {
        conv_channel_scores_u8(e, (int32_t)ch, (int32_t)(n / ch), qt_qp_zero(eq), s);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_scores_u8_obj, 3, 5, qt_conv_scores_u8_fn);

void qt_bind_conv(void) {
    mp_store_global(MP_QSTR_conv2d_forward_u8, MP_OBJ_FROM_PTR(&qt_conv2d_forward_u8_obj));
    mp_store_global(MP_QSTR_conv2d_backward_u8, MP_OBJ_FROM_PTR(&qt_conv2d_backward_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_forward_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_forward_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_backward_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_backward_u8_obj));
    mp_store_global(MP_QSTR_conv2d_update_u8, MP_OBJ_FROM_PTR(&qt_conv2d_update_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_update_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_update_u8_obj));
    mp_store_global(MP_QSTR_conv_select_u8, MP_OBJ_FROM_PTR(&qt_conv_select_u8_obj));
    mp_store_global(MP_QSTR_conv_scores_u8, MP_OBJ_FROM_PTR(&qt_conv_scores_u8_obj));
}
