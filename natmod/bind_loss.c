// Python bindings of the output heads (sigmoid + BCE, softmax + CE), the VAE
// latent layer (reparameterization + KL), the Gaussian generator and the
// portable float math the heads use (vmath: tests check it bit for bit).
//
// Conventions as in bind_dense.c: inputs first, then outputs, then options;
// every uint8 tensor is followed by its qparams record (array('f', 8),
// kernels/quant.h).  Suffix _u8: uint8 inputs and uint8 outputs (the output's
// qparams record gets the exact observed range, qt_qp_observe); _mixed: uint8
// inputs, float32 error outputs; _f32: float32 throughout.  Every kernel
// writes stats = array('f', 3): [loss, min, max] of the tensor it wrote.
// The _mixed and _f32 calls are in bind_loss_float.c (_qtrain_float);
// the argument checks all of them share are in bind_args.c.
#include "bind_args.h"
#include "kernels/mathf.h"
#include "kernels/rng.h"
#include "kernels/loss.h"
#include "kernels/latent.h"

// ---- sigmoid + binary cross-entropy ------------------------------------------------

// bce_sigmoid_u8(x, xq, t, e, eq, stats, lut=None): uint8 logits x (n) with qparams xq,
// uint8 target image t (n, pixel/255), uint8 error e = sigmoid(x) - t (n)
// quantized with eq (range recorded into eq).  stats = [loss sum, min e, max e].
// lut (optional, None or array('f', 512) or a 4-byte aligned bytearray of
// >= 2048 bytes): scratch that makes the call ~4x
// cheaper on soft-float boards (the 256 possible logits' exp/log are computed
// once each); same results with or without it.
static mp_obj_t qt_bce_sigmoid_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n;
    qt_lin_t x = qt_loss_in_u8(a[0], "x", a[1], "xq", 1, &n);
    qt_lout_t e = qt_loss_out_u8(a[3], "e", n, a[4], "eq");
    return qt_bce_call(&x, n, a[2], &e, a[5], n_args > 6 ? a[6] : MP_OBJ_NULL);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_bce_sigmoid_u8_obj, 6, 7, qt_bce_sigmoid_u8_fn);

// ---- softmax + cross-entropy ---------------------------------------------------------

// softmax_ce_u8(x, xq, label, e, eq, stats) -> predicted class: uint8 logits x
// (C) with xq, label in 0..C-1, uint8 error e = softmax(x) - onehot (C) with eq.
static mp_obj_t qt_softmax_ce_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t c;
    qt_lin_t x = qt_loss_in_u8(a[0], "x", a[1], "xq", 1, &c);
    qt_ce_check_classes(c);
    qt_lout_t e = qt_loss_out_u8(a[3], "e", c, a[4], "eq");
    return qt_ce_call(&x, c, a[2], &e, a[5]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_softmax_ce_u8_obj, 6, 6, qt_softmax_ce_u8_fn);

// ---- latent: reparameterization + KL ------------------------------------------------------

// latent_forward_u8(h, hq, rng, eps, z, zq, stats): h uint8 (2L: mu, logvar)
// with hq; rng array('I', 1) or None; eps array('f', L) (filled from rng, or
// read if rng is None); z uint8 (L) quantized with zq (range recorded).
// stats = [KL, min z, max z].
static mp_obj_t qt_latent_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen;
    qt_lin_t h = qt_loss_in_u8(a[0], "h", a[1], "hq", 2, &hlen);
    size_t L = qt_latent_dim(hlen);
    qt_lout_t z = qt_loss_out_u8(a[4], "z", L, a[5], "zq");
    return qt_latent_fwd_call(&h, L, a[2], a[3], &z, a[6]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_forward_u8_obj, 7, 7, qt_latent_forward_u8_fn);

// latent_backward_u8(h, hq, eps, dz, dzq, dh, dhq, hp, stats): h, eps as in
// the forward call; dz uint8 (L) with dzq = the error arriving at z; dh uint8
// (2L: dL/dmu, dL/dlogvar) quantized with dhq (range recorded); hp =
// array('f', [beta]).  stats = [KL, min dh, max dh].
static mp_obj_t qt_latent_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen, dzlen;
    qt_lin_t h = qt_loss_in_u8(a[0], "h", a[1], "hq", 2, &hlen);
    size_t L = qt_latent_dim(hlen);
    qt_lin_t dz = qt_loss_in_u8(a[3], "dz", a[4], "dzq", 1, &dzlen);
    qt_check_dz_len(dzlen, L);
    qt_lout_t dh = qt_loss_out_u8(a[5], "dh", 2 * L, a[6], "dhq");
    return qt_latent_bwd_call(&h, L, a[2], &dz, &dh, a[7], a[8]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_backward_u8_obj, 9, 9, qt_latent_backward_u8_fn);

// ---- random numbers ---------------------------------------------------------------------

// rng_seed(rng, seed): rng array('I', 1) <- a nonzero state hashed from the
// int seed (its low 32 bits).
static mp_obj_t qt_rng_seed_fn(mp_obj_t rng_in, mp_obj_t seed_in) {
    uint32_t *rng = qt_arg_u32(rng_in, "rng", 1, QT_RW);
    if (!mp_obj_is_int(seed_in)) {
        qt_raise_type("seed: expected an int");
    }
    rng[0] = qt_rng_seed((uint32_t)mp_obj_get_int_truncated(seed_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(qt_rng_seed_obj, qt_rng_seed_fn);

// rng_normal(rng, out): fill array('f') out with N(0, 1) draws (the same
// stream latent_forward_* uses).
static mp_obj_t qt_rng_normal_fn(mp_obj_t rng_in, mp_obj_t out_in) {
    uint32_t *rng = qt_arg_rng(rng_in);
    if (!rng) {
        qt_raise_type("rng: expected array('I', 1), got None");
    }
    size_t n;
    float *out = qt_arg_buf_len(out_in, "out", QT_TC_F32, 0, &n, QT_RW);
    qt_rng_normal(rng, out, n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(qt_rng_normal_obj, qt_rng_normal_fn);

// ---- portable float math (tests, and scripts that need exp/log of arrays) -------------------

enum { QT_VM_EXP = 0, QT_VM_LOG, QT_VM_LOG1P, QT_VM_SQRT, QT_VM_SIGMOID, QT_VM_LOG1P_UNIT, QT_VM_N };

// vmath(op, x, y): y[i] = f(x[i]) for op 0 exp, 1 log, 2 log1p, 3 sqrt,
// 4 sigmoid, 5 log1p on [0, 1] (the BCE head's); x and y array('f') of the
// same length (may be the same array).
static mp_obj_t qt_vmath_fn(mp_obj_t op_in, mp_obj_t x_in, mp_obj_t y_in) {
    int op = (int)qt_arg_int(op_in, "op", 0, QT_VM_N - 1);
    size_t n;
    const float *x = qt_arg_buf_len(x_in, "x", QT_TC_F32, 0, &n, QT_RO);
    float *y = qt_arg_f32(y_in, "y", n, QT_RW);
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        switch (op) {
            case QT_VM_EXP: v = qt_expf(v); break;
            case QT_VM_LOG: v = qt_logf(v); break;
            case QT_VM_LOG1P: v = qt_log1pf(v); break;
            case QT_VM_SQRT: v = qt_sqrtf(v); break;
            case QT_VM_SIGMOID: v = qt_sigmoidf(v); break;
            default: v = qt_log1p_unitf(v); break;
        }
        y[i] = v;
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(qt_vmath_obj, qt_vmath_fn);

void qt_bind_loss(void) {
    mp_store_global(MP_QSTR_bce_sigmoid_u8, MP_OBJ_FROM_PTR(&qt_bce_sigmoid_u8_obj));
    mp_store_global(MP_QSTR_softmax_ce_u8, MP_OBJ_FROM_PTR(&qt_softmax_ce_u8_obj));
    mp_store_global(MP_QSTR_latent_forward_u8, MP_OBJ_FROM_PTR(&qt_latent_forward_u8_obj));
    mp_store_global(MP_QSTR_latent_backward_u8, MP_OBJ_FROM_PTR(&qt_latent_backward_u8_obj));
    mp_store_global(MP_QSTR_rng_seed, MP_OBJ_FROM_PTR(&qt_rng_seed_obj));
    mp_store_global(MP_QSTR_rng_normal, MP_OBJ_FROM_PTR(&qt_rng_normal_obj));
    mp_store_global(MP_QSTR_vmath, MP_OBJ_FROM_PTR(&qt_vmath_obj));
}
