// Python bindings of the quantization core and the uint8 Dense kernels.
// Argument order everywhere: inputs first, then outputs, then options; every
// uint8 tensor is followed by its qparams record (array('f', 8), quant.h).
// Shapes are taken from buffer lengths (x: n, y: m, w: m*n) and cross-checked.
// The float32 and mixed Dense calls are in bind_dense_float.c (_qtrain_float).
#include "bind_args.h"
#include "kernels/dense.h"
#include "kernels/select.h"

// ---- quantization core -------------------------------------------------------

// qp_from_range(qp): s, z (items 0, 1) from the range in items 2, 3 (METHOD 1).
static mp_obj_t qt_qp_from_range_fn(mp_obj_t qp_in) {
    float *qp = qt_arg_f32(qp_in, "qp", QT_QP_LEN, QT_RW);
    qt_check_f32(qp[QT_QP_MIN], "qp[2] (range min)", -3.0e38f, 3.0e38f, false, false);
    qt_check_f32(qp[QT_QP_MAX], "qp[3] (range max)", -3.0e38f, 3.0e38f, false, false);
    float s;
    int32_t z;
    qt_qparams_from_range(qp[QT_QP_MIN], qp[QT_QP_MAX], &s, &z);
    qp[QT_QP_SCALE] = s;
    qp[QT_QP_ZERO] = (float)z;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_qp_from_range_obj, qt_qp_from_range_fn);

// qp_update(qps): apply the recorded observations of one or more qparams
// records (array('f') of 8*k items, e.g. all tensors of a model) -- once per
// step or batch, after the backward pass.
static mp_obj_t qt_qp_update_fn(mp_obj_t qps_in) {
    size_t len;
    float *qp = qt_arg_buf_len(qps_in, "qps", QT_TC_F32, QT_QP_LEN, &len, QT_RW);
    if (len % QT_QP_LEN) {
        qt_raise_value("qps: expected a multiple of %d items, got %z", QT_QP_LEN, len);
    }
    for (size_t k = 0; k < len; k += QT_QP_LEN) {
        float a = qp[k + QT_QP_ALPHA];
        if (!(a >= 0.0f && a <= 1.0f)) {
            qt_raise_value("qps: alpha of record %z must be in [0, 1], got %f", k / QT_QP_LEN, &qp[k + QT_QP_ALPHA]);
        }
        if (a > 0.0f && qp[k + QT_QP_OBS_N] > 0.0f) {    // a record qt_qp_update changes:
            qt_check_qp_finite(qp, "qps", k + QT_QP_MIN, k + QT_QP_OBS_MAX);   // range, alpha, observations
        }
    }
    for (size_t k = 0; k < len; k += QT_QP_LEN) {
        qt_qp_update(qp + k);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_qp_update_obj, qt_qp_update_fn);

// remap_u8(q, qp_old, qp_new): re-quantize stored values in place.
static mp_obj_t qt_remap_u8_fn(mp_obj_t q_in, mp_obj_t old_in, mp_obj_t new_in) {
    size_t n;
    uint8_t *q = qt_arg_buf_len(q_in, "q", QT_TC_U8, 0, &n, QT_RW);
    const float *qo = qt_arg_qparams(old_in, "qp_old", QT_RO);
    const float *qn = qt_arg_qparams(new_in, "qp_new", QT_RO);
    qt_remap_u8(q, n, qo[QT_QP_SCALE], qt_qp_zero(qo), qn[QT_QP_SCALE], qt_qp_zero(qn));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(qt_remap_u8_obj, qt_remap_u8_fn);

// ---- Dense forward -----------------------------------------------------------

// dense_forward_u8(x, xq, w, wq, b, bq, y, yq, relu[, xs]) -> None
//   x uint8[n], w uint8[m*n] (row i -> output i), b int32[m] or None (real =
//   bq.scale * b, bq zero point 0), y uint8[m] (written), relu 0/1.
//   Records the exact real range of y into yq[5..7].  xs: optional scratch
//   array('i') of len(x) rounded up to a multiple of 4 (or a 4-byte aligned
//   bytearray of at least 4x that: a model's shared scratch): the fast path.
static const qt_bufarg_t fwd_args[] = {
    { "x", 0, QT_TC_U8, QT_A_ANY, QT_DL_N }, { "xq", 1, QT_TC_QP, 0, 0 },
    { "y", 6, QT_TC_U8, QT_A_RW | QT_A_ANY, QT_DL_M }, { "yq", 7, QT_TC_QP, QT_A_RW, 0 },
    { "w", 2, QT_TC_U8, QT_A_ANY, QT_DL_W },
    { "wq", 3, QT_TC_QP, 0, 0 },
    { "b", 4, QT_TC_I32, QT_A_OPT, QT_DL_M }, { "bq", 5, QT_TC_QP, QT_A_IFPREV, 0 },
};
enum { F_X, F_XQ, F_Y, F_YQ, F_W, F_WQ, F_B, F_BQ, F_N };

static mp_obj_t qt_dense_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t lens[QT_DL_LEN] = { 1, 1, 0 };
    void *p[F_N];
    qt_dense_parse_bufs(n_args, a, fwd_args, F_WQ, F_N, lens, p);
    const size_t n = lens[QT_DL_N], m = lens[QT_DL_M];
    const float *xq = p[F_XQ], *wq = p[F_WQ], *bq = p[F_BQ];
    float *yq = p[F_YQ];
    const float sb = qt_bias_scale(bq);
    bool relu = qt_arg_bool(a[8], "relu");
    qt_check_aliasing(fwd_args, F_N, lens, p);

    float swx = wq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    qt_dense_fwd_t q;
    q.zx = qt_qp_zero(xq);
    q.zw = qt_qp_zero(wq);
    q.zy = qt_qp_zero(yq);
    q.out = qt_fixmul_from_f32(swx / yq[QT_QP_SCALE]);
    q.bias = qt_fixmul_from_f32(bq ? sb / swx : 0.0f);
    q.relu = relu;
    int32_t r[2];
    int32_t *xs = NULL;
    if (n_args > 9 && a[9] != mp_const_none) {
        xs = qt_arg_scratch4(a[9], "xs", QT_TC_I32, QT_XS_LEN(n));
        qt_check_no_overlap(xs, 4 * QT_XS_LEN(n), "xs", p[F_X], n, "x");
        qt_check_no_overlap(xs, 4 * QT_XS_LEN(n), "xs", p[F_Y], m, "y");
        qt_check_no_overlap(xs, 4 * QT_XS_LEN(n), "xs", p[F_W], lens[QT_DL_W], "w");
    }
    dense_forward_u8(p[F_X], p[F_W], p[F_B], p[F_Y], (int32_t)m, (int32_t)n, &q, r, xs);
    qt_qp_observe(yq, (float)r[0] * swx, (float)r[1] * swx);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_forward_u8_obj, 9, 10, qt_dense_forward_u8_fn);

// ---- Dense backward ----------------------------------------------------------

// dense_backward_u8(e, eq, w, wq, ep, epq, sel, k, acc[, x, xq]) -> None
//   e uint8[m] (error at the output, after ReLU backward), ep uint8[n]
//   (written: error at the input), acc int32[n] scratch (or a 4-byte aligned
//   bytearray of >= 4n bytes); sel/k: DSGU rows or
//   None.  Records the real range of ep into epq[5..7].  x, xq (not None):
//   mask-aware, x the layer's input from a ReLU layer (as conv2d_backward_u8).
static const qt_bufarg_t bwd_args[] = {
    { "e", 0, QT_TC_U8, QT_A_ANY, QT_DL_M }, { "eq", 1, QT_TC_QP, 0, 0 },
    { "ep", 4, QT_TC_U8, QT_A_RW | QT_A_ANY, QT_DL_N },
    { "w", 2, QT_TC_U8, QT_A_ANY, QT_DL_W },
    { "wq", 3, QT_TC_QP, 0, 0 }, { "epq", 5, QT_TC_QP, QT_A_RW, 0 },
    { "x", 9, QT_TC_U8, QT_A_OPT, QT_DL_N }, { "xq", 10, QT_TC_QP, QT_A_IFPREV, 0 },
};
enum { B_E, B_EQ, B_EP, B_W, B_WQ, B_EPQ, B_X, B_XQ, B_N };

static mp_obj_t qt_dense_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t lens[QT_DL_LEN] = { 1, 1, 0 };
    void *p[B_N];
    qt_dense_parse_bufs(n_args, a, bwd_args, B_WQ, B_N, lens, p);
    const size_t n = lens[QT_DL_N], m = lens[QT_DL_M];
    const float *eq = p[B_EQ], *wq = p[B_WQ];
    float *epq = p[B_EPQ];
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[6], a[7], m, &k);
    int32_t *acc = qt_arg_scratch4(a[8], "acc", QT_TC_I32, n);
    qt_check_no_overlap(acc, 4 * n, "acc", p[B_E], m, "e");
    qt_check_no_overlap(acc, 4 * n, "acc", p[B_EP], n, "ep");
    qt_check_no_overlap(acc, 4 * n, "acc", p[B_W], lens[QT_DL_W], "w");
    qt_check_aliasing(bwd_args, B_N, lens, p);

    float swe = wq[QT_QP_SCALE] * eq[QT_QP_SCALE];
    qt_dense_bwd_t q;
    q.ze = qt_qp_zero(eq);
    q.zw = qt_qp_zero(wq);
    q.zep = qt_qp_zero(epq);
    q.out = qt_fixmul_from_f32(swe / epq[QT_QP_SCALE]);
    q.mask = p[B_X];
    q.zm = q.mask ? qt_qp_zero(p[B_XQ]) : 0;
    int32_t r[2];
    dense_backward_u8(p[B_E], p[B_W], p[B_EP], (int32_t)m, (int32_t)n, rows, k, &q, acc, r);
    qt_observe_masked(epq, r, swe, q.mask != NULL);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_backward_u8_obj, 9, 11, qt_dense_backward_u8_fn);

// relu_backward_u8(e, eq, y, yq) -> int: e_i = z_e where y_i <= z_y, in
// place; returns how many errors were zeroed.
static mp_obj_t qt_relu_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n;
    uint8_t *e = qt_arg_buf_len(a[0], "e", QT_TC_U8, 1, &n, QT_RW);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const uint8_t *y = qt_arg_u8(a[2], "y", n, QT_RO);
    const float *yq = qt_arg_qparams(a[3], "yq", QT_RO);
    return mp_obj_new_int(relu_backward_u8(e, y, (int32_t)n, qt_qp_zero(eq), qt_qp_zero(yq)));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_relu_backward_u8_obj, 4, 4, qt_relu_backward_u8_fn);

// ---- DSGU ----------------------------------------------------------------------

// dense_select_u8(e, eq, hp, state, sel, scratch[, y, yq]) -> k
//   hp array('f', [lmin, lmax]) with 0 < lmin <= lmax <= 1; state array('f', 1)
//   (the running max of the mean |error|, 0 initially); sel int32[m] receives
//   the k selected rows (ascending), scratch uint32[2m] (scores, and a copy
//   the O(n) selection reorders).  Score of row i:
//   |e_i - z_e|; k from METHOD 5.  y (not None): a ReLU layer's output (record
//   yq), its mask applied to e in place in the scores' pass (relu_backward_u8).
static mp_obj_t qt_dense_select_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t m;
    uint8_t *e = qt_arg_buf_len(a[0], "e", QT_TC_U8, 1, &m, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const float *hp = qt_arg_f32(a[2], "hp", 2, QT_RO);
    float lmin = qt_check_f32(hp[0], "hp[0] (lmin)", 0.0f, 1.0f, true, false);
    qt_check_f32(hp[1], "hp[1] (lmax)", lmin, 1.0f, false, false);
    float *st = qt_arg_f32(a[3], "state", 1, QT_RW);
    int32_t *sel = qt_arg_i32(a[4], "sel", m, QT_RW);
    uint32_t *scratch = qt_arg_u32(a[5], "scratch", 2 * m, QT_RW);
    int32_t zy;
    const uint8_t *y = qt_arg_relu_y(n_args, a, 6, m, &zy);
    return mp_obj_new_int(dense_select_rows_u8(e, (int32_t)m, qt_qp_zero(eq), eq[QT_QP_SCALE], st, hp[0], hp[1],
        sel, scratch, y, zy));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_select_u8_obj, 6, 8, qt_dense_select_u8_fn);

// ---- update ----------------------------------------------------------------------

// dense_update_u8(e, eq, x, xq, w, wq, b, bq, sel, k, hp, flags, state, rng) -> int
//   One SGD step of batch size 1 from the outer product e x^T, no gradient
//   buffer (kernels/dense.h), then the weight range update and re-map
//   (update.h).  state array('f', 5 + 2m), or 5 when flags has no per-row
//   bit (per-tensor statistics); rng array('I', 1).  Returns 1 if
//   the stored weights were re-mapped to a new scale.
static const qt_bufarg_t upd_args[] = {
    { "e", 0, QT_TC_U8, QT_A_ANY, QT_DL_M }, { "eq", 1, QT_TC_QP, 0, 0 },
    { "x", 2, QT_TC_U8, QT_A_ANY, QT_DL_N }, { "xq", 3, QT_TC_QP, 0, 0 },
    { "w", 4, QT_TC_U8, QT_A_RW | QT_A_ANY, QT_DL_W },
    { "wq", 5, QT_TC_QP, QT_A_RW, 0 },
    { "b", 6, QT_TC_I32, QT_A_RW | QT_A_OPT, QT_DL_M }, { "bq", 7, QT_TC_QP, QT_A_IFPREV, 0 },
};
enum { U_E, U_EQ, U_X, U_XQ, U_W, U_WQ, U_B, U_BQ, U_N };

static mp_obj_t qt_dense_update_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t lens[QT_DL_LEN] = { 1, 1, 0 };
    void *p[U_N];
    qt_dense_parse_bufs(n_args, a, upd_args, U_WQ, U_N, lens, p);
    const size_t n = lens[QT_DL_N], m = lens[QT_DL_M];
    const float *eq = p[U_EQ], *xq = p[U_XQ], *bq = p[U_BQ];
    float *wq = p[U_WQ];
    qt_dense_upd_t d;
    d.s_b = bq ? bq[QT_QP_SCALE] : 1.0f;
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[8], a[9], m, &k);
    qt_update_t u;
    float tau;
    qt_arg_update(a[10], a[11], a[13], &u, &tau, 7 | QT_UPD_RMS);
    float *state = qt_arg_std_state(a[12], m, u.per_row);
    qt_check_aliasing(upd_args, U_N, lens, p);
    d.ze = qt_qp_zero(eq);
    d.zx = qt_qp_zero(xq);
    d.s_e = eq[QT_QP_SCALE];
    d.s_x = xq[QT_QP_SCALE];
    u.s_w = wq[QT_QP_SCALE];
    u.zw = qt_qp_zero(wq);
    qt_wrange_t r;
    dense_update_u8(p[U_E], p[U_X], p[U_W], p[U_B], (int32_t)m, (int32_t)n, rows, k, &d, &u, state, &r);
    return mp_obj_new_int(qt_weights_qp_update(p[U_W], lens[QT_DL_W], wq, &r, tau));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_update_u8_obj, 14, 14, qt_dense_update_u8_fn);

void qt_bind_dense(void) {
    mp_store_global(MP_QSTR_qp_from_range, MP_OBJ_FROM_PTR(&qt_qp_from_range_obj));
    mp_store_global(MP_QSTR_qp_update, MP_OBJ_FROM_PTR(&qt_qp_update_obj));
    mp_store_global(MP_QSTR_remap_u8, MP_OBJ_FROM_PTR(&qt_remap_u8_obj));
    mp_store_global(MP_QSTR_dense_forward_u8, MP_OBJ_FROM_PTR(&qt_dense_forward_u8_obj));
    mp_store_global(MP_QSTR_dense_backward_u8, MP_OBJ_FROM_PTR(&qt_dense_backward_u8_obj));
    mp_store_global(MP_QSTR_relu_backward_u8, MP_OBJ_FROM_PTR(&qt_relu_backward_u8_obj));
    mp_store_global(MP_QSTR_dense_select_u8, MP_OBJ_FROM_PTR(&qt_dense_select_u8_obj));
    mp_store_global(MP_QSTR_dense_update_u8, MP_OBJ_FROM_PTR(&qt_dense_update_u8_obj));
}
