// Python bindings of the float32 reference Dense kernels and the mixed mode
// (uint8 forward through dense_forward_u8 of _qtrain, float32 errors): the
// _qtrain_float module.  Conventions as in bind_dense.c.
#include "bind_args.h"
#include "kernels/dense.h"
#include "kernels/select.h"

// ---- float32 reference and mixed mode ------------------------------------------
// Float tensors are array('f'); mixed = uint8 forward (dense_forward_u8),
// float32 errors.  Same shapes, row lists, hp/flags/state as the uint8 calls;
// flags may add 8 (plain SGD, no standardization) in the float32 calls.

static size_t f32_len(mp_obj_t o, const char *name, float **p, bool wr) {
    size_t n;
    *p = qt_arg_buf_len(o, name, QT_TC_F32, 1, &n, wr);
    return n;
}

// dense_forward_f32(x, w, b, y, relu) -> None
static mp_obj_t qt_dense_forward_f32_fn(size_t n_args, const mp_obj_t *a) {
    float *x, *y;
    size_t n = f32_len(a[0], "x", &x, QT_RO), m = f32_len(a[3], "y", &y, QT_RW), wlen;
    const float *w = qt_arg_buf_len(a[1], "w", QT_TC_F32, 0, &wlen, QT_RO);
    qt_dense_shape(n, "x", m, "y", wlen, "w");
    const float *b = qt_arg_buf_opt(a[2], "b", QT_TC_F32, m, QT_RO);
    bool relu = qt_arg_bool(a[4], "relu");
    qt_check_no_overlap(y, 4 * m, "y", x, 4 * n, "x");
    qt_check_no_overlap(y, 4 * m, "y", w, 4 * wlen, "w");
    dense_forward_f32(x, w, b, y, (int32_t)m, (int32_t)n, relu);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_forward_f32_obj, 5, 5, qt_dense_forward_f32_fn);

// dense_backward_f32(e, w, ep, sel, k) -> None
static mp_obj_t qt_dense_backward_f32_fn(size_t n_args, const mp_obj_t *a) {
    float *e, *ep;
    size_t m = f32_len(a[0], "e", &e, QT_RO), n = f32_len(a[2], "ep", &ep, QT_RW), wlen;
    const float *w = qt_arg_buf_len(a[1], "w", QT_TC_F32, 0, &wlen, QT_RO);
    qt_dense_shape(n, "ep", m, "e", wlen, "w");
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[3], a[4], m, &k);
    qt_check_no_overlap(ep, 4 * n, "ep", e, 4 * m, "e");
    qt_check_no_overlap(ep, 4 * n, "ep", w, 4 * wlen, "w");
    dense_backward_f32(e, w, ep, (int32_t)m, (int32_t)n, rows, k);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_backward_f32_obj, 5, 5, qt_dense_backward_f32_fn);

// dense_backward_mixed(e, w, wq, ep, sel, k) -> None: float e, uint8 w.
static mp_obj_t qt_dense_backward_mixed_fn(size_t n_args, const mp_obj_t *a) {
    float *e, *ep;
    size_t m = f32_len(a[0], "e", &e, QT_RO), n = f32_len(a[3], "ep", &ep, QT_RW), wlen;
    const uint8_t *w = qt_arg_buf_len(a[1], "w", QT_TC_U8, 0, &wlen, QT_RO);
    qt_dense_shape(n, "ep", m, "e", wlen, "w");
    const float *wq = qt_arg_qparams(a[2], "wq", QT_RO);
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[4], a[5], m, &k);
    qt_check_no_overlap(ep, 4 * n, "ep", e, 4 * m, "e");
    dense_backward_mixed(e, w, qt_qp_zero(wq), wq[QT_QP_SCALE], ep, (int32_t)m, (int32_t)n, rows, k);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_backward_mixed_obj, 6, 6, qt_dense_backward_mixed_fn);

// relu_backward_f32(e, y) -> int
static mp_obj_t qt_relu_backward_f32_fn(mp_obj_t e_in, mp_obj_t y_in) {
    float *e;
    size_t n = f32_len(e_in, "e", &e, QT_RW);
    const float *y = qt_arg_f32(y_in, "y", n, QT_RO);
    return mp_obj_new_int(relu_backward_f32(e, y, (int32_t)n));
}
static MP_DEFINE_CONST_FUN_OBJ_2(qt_relu_backward_f32_obj, qt_relu_backward_f32_fn);

// relu_backward_mixed(e, y, yq) -> int: float e, uint8 y.
static mp_obj_t qt_relu_backward_mixed_fn(mp_obj_t e_in, mp_obj_t y_in, mp_obj_t yq_in) {
    float *e;
    size_t n = f32_len(e_in, "e", &e, QT_RW);
    const uint8_t *y = qt_arg_u8(y_in, "y", n, QT_RO);
    const float *yq = qt_arg_qparams(yq_in, "yq", QT_RO);
    return mp_obj_new_int(relu_backward_mixed(e, y, (int32_t)n, qt_qp_zero(yq)));
}
static MP_DEFINE_CONST_FUN_OBJ_3(qt_relu_backward_mixed_obj, qt_relu_backward_mixed_fn);

// dense_select_f32(e, hp, state, sel, scratch) -> k: as dense_select_u8 with
// score |e_i| (float errors: float32 and mixed modes).
static mp_obj_t qt_dense_select_f32_fn(size_t n_args, const mp_obj_t *a) {
    float *e;
    size_t m = f32_len(a[0], "e", &e, QT_RO);
    const float *hp = qt_arg_f32(a[1], "hp", 2, QT_RO);
    float lmin = qt_check_f32(hp[0], "hp[0] (lmin)", 0.0f, 1.0f, true, false);
    qt_check_f32(hp[1], "hp[1] (lmax)", lmin, 1.0f, false, false);
    float *st = qt_arg_f32(a[2], "state", 1, QT_RW);
    int32_t *sel = qt_arg_i32(a[3], "sel", m, QT_RW);
    uint32_t *scratch = qt_arg_u32(a[4], "scratch", 2 * m, QT_RW);
    float sum = 0.0f;
    for (size_t i = 0; i < m; i++) {
        union {
            float f;
            uint32_t u;
        } v;
        v.f = e[i] < 0.0f ? -e[i] : e[i];
        sum = sum + v.f;
        scratch[i] = v.u & 0x7fffffffu;   // non-negative floats order like their bits
    }
    int32_t k = dsgu_k(sum / (float)m, st, hp[0], hp[1], (int32_t)m);
    select_topk_u32(scratch, (int32_t)m, k, sel, scratch + m);
    return mp_obj_new_int(k);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_select_f32_obj, 5, 5, qt_dense_select_f32_fn);

// dense_update_f32(e, x, w, b, sel, k, hp, flags, state) -> None
static mp_obj_t qt_dense_update_f32_fn(size_t n_args, const mp_obj_t *a) {
    float *e, *x;
    size_t m = f32_len(a[0], "e", &e, QT_RO), n = f32_len(a[1], "x", &x, QT_RO), wlen;
    float *w = qt_arg_buf_len(a[2], "w", QT_TC_F32, 0, &wlen, QT_RW);
    qt_dense_shape(n, "x", m, "e", wlen, "w");
    float *b = qt_arg_buf_opt(a[3], "b", QT_TC_F32, m, QT_RW);
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[4], a[5], m, &k);
    qt_update_t u;
    float tau;
    qt_arg_update(a[6], a[7], MP_OBJ_NULL, &u, &tau, 15);
    if (u.rounding >= QT_ROUND_STOCHASTIC) {
        qt_raise_value("flags: float32 updates take no rounding mode (bits 0-1 must be 0 or 1)");
    }
    int32_t plain = (mp_obj_get_int(a[7]) & QT_UPD_PLAIN) != 0;
    float *state = qt_arg_std_state(a[8], m, u.per_row);
    qt_check_no_overlap(w, 4 * wlen, "w", x, 4 * n, "x");
    qt_check_no_overlap(w, 4 * wlen, "w", e, 4 * m, "e");
    dense_update_f32(e, x, w, b, (int32_t)m, (int32_t)n, rows, k, &u, plain, state);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_update_f32_obj, 9, 9, qt_dense_update_f32_fn);

// dense_update_mixed(e, x, xq, w, wq, b, bq, sel, k, hp, flags, state, rng) -> int
//   float e; uint8 x, w; int32 b: as dense_update_u8 (same rounding, range
//   tracking and re-map), statistics from the float error.
static mp_obj_t qt_dense_update_mixed_fn(size_t n_args, const mp_obj_t *a) {
    float *e;
    size_t m = f32_len(a[0], "e", &e, QT_RO), n, wlen;
    const uint8_t *x = qt_arg_buf_len(a[1], "x", QT_TC_U8, 1, &n, QT_RO);
    const float *xq = qt_arg_qparams(a[2], "xq", QT_RO);
    uint8_t *w = qt_arg_buf_len(a[3], "w", QT_TC_U8, 0, &wlen, QT_RW);
    qt_dense_shape(n, "x", m, "e", wlen, "w");
    float *wq = qt_arg_qparams(a[4], "wq", QT_RW);
    int32_t *b = qt_arg_buf_opt(a[5], "b", QT_TC_I32, m, QT_RW);
    float s_b = 1.0f;
    if (b) {
        const float *bq = qt_arg_qparams(a[6], "bq", QT_RO);
        s_b = bq[QT_QP_SCALE];
    }
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[7], a[8], m, &k);
    qt_update_t u;
    float tau;
    qt_arg_update(a[9], a[10], a[12], &u, &tau, 7);
    float *state = qt_arg_std_state(a[11], m, u.per_row);
    qt_check_no_overlap(w, wlen, "w", x, n, "x");
    u.s_w = wq[QT_QP_SCALE];
    u.zw = qt_qp_zero(wq);
    qt_wrange_t r;
    dense_update_mixed(e, x, qt_qp_zero(xq), xq[QT_QP_SCALE], w, b, s_b, (int32_t)m, (int32_t)n, rows, k, &u,
        state, &r);
    return mp_obj_new_int(qt_weights_qp_update(w, wlen, wq, &r, tau));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_update_mixed_obj, 13, 13, qt_dense_update_mixed_fn);

// dense_grad_acc_f32(e, x, g, gb, sel, k) -> None: g += e x^T, gb += e.
static mp_obj_t qt_dense_grad_acc_f32_fn(size_t n_args, const mp_obj_t *a) {
    float *e, *x;
    size_t m = f32_len(a[0], "e", &e, QT_RO), n = f32_len(a[1], "x", &x, QT_RO), glen;
    float *g = qt_arg_buf_len(a[2], "g", QT_TC_F32, 0, &glen, QT_RW);
    qt_dense_shape(n, "x", m, "e", glen, "g");
    float *gb = qt_arg_buf_opt(a[3], "gb", QT_TC_F32, m, QT_RW);
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[4], a[5], m, &k);
    dense_grad_acc_f32(e, x, g, gb, (int32_t)m, (int32_t)n, rows, k);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_grad_acc_f32_obj, 6, 6, qt_dense_grad_acc_f32_fn);

// update_rows_f32(g, w, gb, b, hp, flags, state) -> None: batch update of
// float weights from float gradient buffers (rows from len(state)); zeroes g, gb.
static mp_obj_t qt_update_rows_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t glen, rows;
    float *state = qt_arg_state_rows(a[6], &rows);
    float *g = qt_arg_buf_len(a[0], "g", QT_TC_F32, rows, &glen, QT_RW);
    if (glen % rows) {
        qt_raise_value("g: expected rows*len items with rows = %z (from state), got %z", rows, glen);
    }
    float *w = qt_arg_f32(a[1], "w", glen, QT_RW);
    float *gb = qt_arg_buf_opt(a[2], "gb", QT_TC_F32, rows, QT_RW);
    float *b = qt_arg_buf_opt(a[3], "b", QT_TC_F32, rows, QT_RW);
    qt_update_t u;
    float tau;
    qt_arg_update(a[4], a[5], MP_OBJ_NULL, &u, &tau, 15);
    if (u.rounding >= QT_ROUND_STOCHASTIC) {
        qt_raise_value("flags: float32 updates take no rounding mode (bits 0-1 must be 0 or 1)");
    }
    int32_t plain = (mp_obj_get_int(a[5]) & QT_UPD_PLAIN) != 0;
    update_rows_f32(w, g, b, gb, (int32_t)rows, (int32_t)(glen / rows), &u, plain, state);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_update_rows_f32_obj, 7, 7, qt_update_rows_f32_fn);

// bias_update_f32(gb, b, hp, flags, state) -> None: a float bias vector
// alone, standardized by its RMS (state[3..4]; len(state) >= 5, steps in
// state[0]); flags as update_rows_f32's (8: plain).  Zeroes gb.
static mp_obj_t qt_bias_update_f32_fn(size_t n_args, const mp_obj_t *a) {
    float *gb;
    size_t n = f32_len(a[0], "gb", &gb, QT_RW), slen;
    float *b = qt_arg_f32(a[1], "b", n, QT_RW);
    qt_update_t u;
    float tau;
    qt_arg_update(a[2], a[3], MP_OBJ_NULL, &u, &tau, 15);
    float *state = qt_arg_buf_len(a[4], "state", QT_TC_F32, QT_STD_STATE_HDR, &slen, QT_RW);
    int32_t plain = (mp_obj_get_int(a[3]) & QT_UPD_PLAIN) != 0;
    bias_update_f32(b, gb, (int32_t)n, &u, plain, state);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_bias_update_f32_obj, 5, 5, qt_bias_update_f32_fn);

// dense_grad_acc_mixed(e, x, xq, g, gb, sel, k) -> None: float e, uint8 x;
//   g float[m*n] += e_i s_x (x_j - z_x) (real units), gb float[m] (or None) += e.
static mp_obj_t qt_dense_grad_acc_mixed_fn(size_t n_args, const mp_obj_t *a) {
    float *e;
    size_t m = f32_len(a[0], "e", &e, QT_RO), n, glen;
    const uint8_t *x = qt_arg_buf_len(a[1], "x", QT_TC_U8, 1, &n, QT_RO);
    const float *xq = qt_arg_qparams(a[2], "xq", QT_RO);
    float *g = qt_arg_buf_len(a[3], "g", QT_TC_F32, 0, &glen, QT_RW);
    qt_dense_shape(n, "x", m, "e", glen, "g");
    float *gb = qt_arg_buf_opt(a[4], "gb", QT_TC_F32, m, QT_RW);
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[5], a[6], m, &k);
    dense_grad_acc_mixed(e, x, qt_qp_zero(xq), xq[QT_QP_SCALE], g, gb, (int32_t)m, (int32_t)n, rows, k);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_grad_acc_mixed_obj, 7, 7, qt_dense_grad_acc_mixed_fn);

// update_rows_mixed(g, w, wq, gb, b, bq, hp, flags, state, rng) -> int
//   Batch update of uint8 w (int32 b) from float gradient buffers (real
//   units): rows = (len(state) - 5)/2.  Zeroes g, gb.  Returns 1 if re-mapped.
static mp_obj_t qt_update_rows_mixed_fn(size_t n_args, const mp_obj_t *a) {
    size_t glen, rows;
    float *state = qt_arg_state_rows(a[8], &rows);
    float *g = qt_arg_buf_len(a[0], "g", QT_TC_F32, rows, &glen, QT_RW);
    if (glen % rows) {
        qt_raise_value("g: expected rows*len items with rows = %z (from state), got %z", rows, glen);
    }
    qt_batch_update_args_t ba;
    qt_update_t u;
    qt_arg_batch_update(a + 1, glen, rows, QT_TC_F32, &ba, &u);
    qt_wrange_t r;
    update_rows_mixed(ba.w, g, ba.b, ba.gb, ba.s_b, (int32_t)rows, (int32_t)(glen / rows), &u, state, &r);
    return mp_obj_new_int(qt_weights_qp_update(ba.w, glen, ba.wq, &r, ba.tau));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_update_rows_mixed_obj, 10, 10, qt_update_rows_mixed_fn);

void qt_bind_dense_float(void) {
    mp_store_global(MP_QSTR_dense_forward_f32, MP_OBJ_FROM_PTR(&qt_dense_forward_f32_obj));
    mp_store_global(MP_QSTR_dense_backward_f32, MP_OBJ_FROM_PTR(&qt_dense_backward_f32_obj));
    mp_store_global(MP_QSTR_dense_backward_mixed, MP_OBJ_FROM_PTR(&qt_dense_backward_mixed_obj));
    mp_store_global(MP_QSTR_relu_backward_f32, MP_OBJ_FROM_PTR(&qt_relu_backward_f32_obj));
    mp_store_global(MP_QSTR_relu_backward_mixed, MP_OBJ_FROM_PTR(&qt_relu_backward_mixed_obj));
    mp_store_global(MP_QSTR_dense_select_f32, MP_OBJ_FROM_PTR(&qt_dense_select_f32_obj));
    mp_store_global(MP_QSTR_dense_update_f32, MP_OBJ_FROM_PTR(&qt_dense_update_f32_obj));
    mp_store_global(MP_QSTR_dense_update_mixed, MP_OBJ_FROM_PTR(&qt_dense_update_mixed_obj));
    mp_store_global(MP_QSTR_dense_grad_acc_f32, MP_OBJ_FROM_PTR(&qt_dense_grad_acc_f32_obj));
    mp_store_global(MP_QSTR_update_rows_f32, MP_OBJ_FROM_PTR(&qt_update_rows_f32_obj));
    mp_store_global(MP_QSTR_bias_update_f32, MP_OBJ_FROM_PTR(&qt_bias_update_f32_obj));
    mp_store_global(MP_QSTR_dense_grad_acc_mixed, MP_OBJ_FROM_PTR(&qt_dense_grad_acc_mixed_obj));
    mp_store_global(MP_QSTR_update_rows_mixed, MP_OBJ_FROM_PTR(&qt_update_rows_mixed_obj));
}
