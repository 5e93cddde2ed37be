// The batch > 1 entry points of the uint8 kernels: gradients accumulated
// into int32 buffers over a batch, and the update from those buffers.  They
// are in _qtrain_float, not _qtrain: a uint8 model of the qtrain package
// trains with batch 1 (each layer's update forms its own gradient, no
// buffer), and _qtrain is loaded into the board's heap, so it carries only
// what that needs (the Pico's heap margin).  A loop of its own that
// accumulates a batch imports _qtrain_float for these.  Conventions as in
// bind_dense.c and bind_conv.c (their tables' length slots are shared:
// bind_args.h).
#include "bind_args.h"
#include "kernels/dense.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/update.h"

// ---- Dense -----------------------------------------------------------------------

// dense_grad_acc_u8(e, eq, x, xq, g, gb, sel, k) -> None
//   Batch > 1: g int32[m*n] += (e - z_e)(x - z_x)^T, gb int32[m] (or None)
//   += e - z_e, for the selected rows.  Keep e's and x's qparams fixed over a
//   batch (call qp_update after the batch).
static const qt_bufarg_t dacc_args[] = {
    { "e", 0, QT_TC_U8, QT_A_ANY, QT_DL_M }, { "eq", 1, QT_TC_QP, 0, 0 },
    { "x", 2, QT_TC_U8, QT_A_ANY, QT_DL_N }, { "xq", 3, QT_TC_QP, 0, 0 },
    { "g", 4, QT_TC_I32, QT_A_RW | QT_A_ANY, QT_DL_W },
    { "gb", 5, QT_TC_I32, QT_A_RW | QT_A_OPT, QT_DL_M },
};
enum { DG_E, DG_EQ, DG_X, DG_XQ, DG_G, DG_GB, DG_N };

static mp_obj_t qt_dense_grad_acc_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t lens[QT_DL_LEN] = { 1, 1, 0 };
    void *p[DG_N];
    qt_dense_parse_bufs(n_args, a, dacc_args, DG_GB, DG_N, lens, p);
    const size_t n = lens[QT_DL_N], m = lens[QT_DL_M];
    int32_t k;
    const int32_t *rows = qt_arg_rows(a[6], a[7], m, &k);
    qt_check_aliasing(dacc_args, DG_N, lens, p);
    dense_grad_acc_u8(p[DG_E], p[DG_X], p[DG_G], p[DG_GB], (int32_t)m, (int32_t)n, rows, k, qt_qp_zero(p[DG_EQ]),
        qt_qp_zero(p[DG_XQ]));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_grad_acc_u8_obj, 8, 8, qt_dense_grad_acc_u8_fn);

// ---- Conv2d / ConvTranspose2d ------------------------------------------------

// conv2d_grad_u8(e, eq, x, xq, gw, gb, geom, sel, k, scratch)
//   Integer gradients, accumulated (+=) for a batch: gw int32[weights] in the
//   weight layout, real = s_e s_x gw; gb int32[out_ch] or None, real = s_e gb.
//   Only the sel[:k] output channels (DSGU); others are left untouched.
static const qt_bufarg_t cgrad_args[] = {
    { "e", 0, QT_TC_U8, 0, QT_CL_OUT }, { "eq", 1, QT_TC_QP, 0, 0 },
    { "x", 2, QT_TC_U8, 0, QT_CL_IN }, { "xq", 3, QT_TC_QP, 0, 0 },
    { "gw", 4, QT_TC_I32, QT_A_RW, QT_CL_W }, { "gb", 5, QT_TC_I32, QT_A_RW | QT_A_OPT, QT_CL_CH },
    { "scratch", 9, QT_TC_SCR, QT_A_RW, QT_CL_SCR },
};
enum { CG_E, CG_EQ, CG_X, CG_XQ, CG_GW, CG_GB, CG_SCR, CG_N };

static mp_obj_t grad_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    size_t lens[QT_CL_LEN];
    void *p[CG_N];
    qt_conv_geom_lens(a[6], transposed, &g, lens);
    qt_parse_bufs(n_args, a, cgrad_args, CG_SCR, lens, p);
    int32_t n_sel;
    const int32_t *sel = qt_parse_sel(n_args, a, 7, g.out_ch, &n_sel);
    qt_parse_bufs(n_args, a, cgrad_args + CG_SCR, 1, lens, p + CG_SCR);
    qt_check_aliasing(cgrad_args, CG_N, lens, p);
    (transposed ? conv_transpose2d_grad_acc_u8 : conv2d_grad_acc_u8)(&g, p[CG_E], qt_qp_zero(p[CG_EQ]), p[CG_X],
        qt_qp_zero(p[CG_XQ]), p[CG_GW], p[CG_GB], sel, n_sel, p[CG_SCR]);
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

// ---- the update ------------------------------------------------------------------

// update_rows_u8(g, gs, w, wq, gb, b, bq, hp, flags, state, rng) -> int
//   Batch update from int32 gradient buffers, any structure (Dense rows, Conv
//   filters): rows = (len(state) - 5) / 2, len(w) = len(g) = rows * len.
//   gs = array('f', [s_g, s_gb]): real gradient = s_g * g, bias s_gb * gb.
//   gb/b/bq may be None.  Zeroes g and gb.  Returns 1 if w was re-mapped.
static mp_obj_t qt_update_rows_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t glen, rows;
    float *state = qt_arg_state_rows(a[9], &rows);
    int32_t *g = qt_arg_buf_len(a[0], "g", QT_TC_I32, rows, &glen, QT_RW);
    if (glen % rows || glen / rows > QT_DENSE_MAX_N) {
        qt_raise_value("g: expected rows*len items with rows = %z (from state) and len <= %d, got %z",
            rows, QT_DENSE_MAX_N, glen);
    }
    const float *gs = qt_arg_f32(a[1], "gs", 2, QT_RO);
    float s_g = qt_check_f32(gs[0], "gs[0] (s_g)", 0.0f, 3.0e38f, true, false);
    float s_gb = qt_check_f32(gs[1], "gs[1] (s_gb)", 0.0f, 3.0e38f, true, false);
    qt_batch_update_args_t ba;
    qt_update_t u;
    qt_arg_batch_update(a + 2, glen, rows, QT_TC_I32, &ba, &u);
    int32_t *gb = ba.gb;
    int first = !(state[0] > 0.0f);
    qt_wrange_t r;
    qt_update_rows_u8(ba.w, g, (int32_t)rows, (int32_t)(glen / rows), s_g, &u, state, first, &r);
    if (ba.b && gb) {
        qt_update_bias_i32(ba.b, gb, NULL, 0, (int32_t)rows, NULL, 0, s_gb, ba.s_b, &u, state, first);
    }
    if (gb) {
        qt_fill_i32(gb, rows, 0);
    }
    state[0] += 1.0f;
    return mp_obj_new_int(qt_weights_qp_update(ba.w, glen, ba.wq, &r, ba.tau));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_update_rows_u8_obj, 11, 11, qt_update_rows_u8_fn);

void qt_bind_batch(void) {
    mp_store_global(MP_QSTR_dense_grad_acc_u8, MP_OBJ_FROM_PTR(&qt_dense_grad_acc_u8_obj));
    mp_store_global(MP_QSTR_conv2d_grad_u8, MP_OBJ_FROM_PTR(&qt_conv2d_grad_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_grad_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_grad_u8_obj));
    mp_store_global(MP_QSTR_update_rows_u8, MP_OBJ_FROM_PTR(&qt_update_rows_u8_obj));
}
