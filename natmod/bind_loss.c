// Python bindings of the output heads (sigmoid + BCE, softmax + CE), the VAE
// latent layer (reparameterization + KL), the Gaussian generator and the
// portable float math.
//
// Conventions as in bind_dense.c: inputs first, then outputs, then options;
// every uint8 tensor is followed by its qparams record (array('f', 8),
// kernels/quant.h).  Suffix _u8: uint8 inputs and uint8 outputs (the output's
// qparams record gets the exact observed range, qt_qp_observe); _mixed: uint8
// inputs, float32 error outputs; _f32: float32 throughout.  Every kernel
// writes stats = array('f', 3): [loss, min, max] of the tensor it wrote.
#include "bind_common.h"
#include "kernels/quant.h"
#include "kernels/mathf.h"
#include "kernels/rng.h"
#include "kernels/loss.h"
#include "kernels/latent.h"

#define QT_STATS_LEN (3)

// ---- helpers -------------------------------------------------------------------

// A uint8 input tensor and its qparams: length taken from the buffer.
static qt_lin_t in_u8(mp_obj_t x_in, const char *name, mp_obj_t qp_in, const char *qname, size_t n_min,
    size_t *n_out) {
    qt_lin_t t;
    t.q = (const uint8_t *)qt_arg_buf_len(x_in, name, QT_TC_U8, n_min, n_out, QT_RO);
    t.f = NULL;
    const float *qp = qt_arg_qparams(qp_in, qname, QT_RO);
    t.scale = qp[QT_QP_SCALE];
    t.zero = (int32_t)qp[QT_QP_ZERO];
    return t;
}

static qt_lin_t in_f32(mp_obj_t x_in, const char *name, size_t n_min, size_t *n_out) {
    qt_lin_t t;
    t.q = NULL;
    t.f = (const float *)qt_arg_buf_len(x_in, name, QT_TC_F32, n_min, n_out, QT_RO);
    t.scale = 1.0f;
    t.zero = 0;
    return t;
}

static qt_lout_t out_u8(mp_obj_t e_in, const char *name, size_t n, mp_obj_t qp_in, const char *qname) {
    qt_lout_t o;
    o.q = qt_arg_u8(e_in, name, n, QT_RW);
    o.f = NULL;
    o.qp = qt_arg_qparams(qp_in, qname, QT_RW);
    return o;
}

static qt_lout_t out_f32(mp_obj_t e_in, const char *name, size_t n) {
    qt_lout_t o;
    o.q = NULL;
    o.f = qt_arg_f32(e_in, name, n, QT_RW);
    o.qp = NULL;
    return o;
}

static size_t lin_bytes(const qt_lin_t *t, size_t n) {
    return t->q ? n : n * sizeof(float);
}

static const void *lin_ptr(const qt_lin_t *t) {
    return t->q ? (const void *)t->q : (const void *)t->f;
}

static size_t lout_bytes(const qt_lout_t *o, size_t n) {
    return o->q ? n : n * sizeof(float);
}

static const void *lout_ptr(const qt_lout_t *o) {
    return o->q ? (const void *)o->q : (const void *)o->f;
}

static float *arg_stats(mp_obj_t obj) {
    return qt_arg_f32(obj, "stats", QT_STATS_LEN, QT_RW);
}

// ---- sigmoid + binary cross-entropy ------------------------------------------------

static mp_obj_t bce_common(qt_lin_t *x, size_t n, mp_obj_t t_in, qt_lout_t *e, mp_obj_t stats_in,
    mp_obj_t lut_in) {
    const uint8_t *t = qt_arg_u8(t_in, "t", n, QT_RO);
    float *stats = arg_stats(stats_in);
    float *lut = NULL;
    if (lut_in != MP_OBJ_NULL) {
        lut = qt_arg_buf_opt(lut_in, "lut", QT_TC_F32, QT_BCE_LUT_LEN, QT_RW);
    }
    qt_check_no_overlap(lout_ptr(e), lout_bytes(e, n), "e", lin_ptr(x), lin_bytes(x, n), "x");
    qt_check_no_overlap(lout_ptr(e), lout_bytes(e, n), "e", t, n, "t");
    if (lut) {
        qt_check_no_overlap(lut, QT_BCE_LUT_LEN * sizeof(float), "lut", lout_ptr(e), lout_bytes(e, n), "e");
        qt_check_no_overlap(lut, QT_BCE_LUT_LEN * sizeof(float), "lut", lin_ptr(x), lin_bytes(x, n), "x");
        qt_check_no_overlap(lut, QT_BCE_LUT_LEN * sizeof(float), "lut", t, n, "t");
    }
    qt_bce_sigmoid(x, t, n, e, stats, lut);
    return mp_const_none;
}

// bce_sigmoid_u8(x, xq, t, e, eq, stats, lut=None): uint8 logits x (n) with qparams xq,
// uint8 target image t (n, pixel/255), uint8 error e = sigmoid(x) - t (n)
// quantized with eq (range recorded into eq).  stats = [loss sum, min e, max e].
// lut (optional, None or array('f', 512)): scratch that makes the call ~4x
// cheaper on soft-float boards (the 256 possible logits' exp/log are computed
// once each); same results with or without it.
static mp_obj_t qt_bce_sigmoid_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n;
    qt_lin_t x = in_u8(a[0], "x", a[1], "xq", 1, &n);
    qt_lout_t e = out_u8(a[3], "e", n, a[4], "eq");
    return bce_common(&x, n, a[2], &e, a[5], n_args > 6 ? a[6] : MP_OBJ_NULL);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_bce_sigmoid_u8_obj, 6, 7, qt_bce_sigmoid_u8_fn);

// bce_sigmoid_mixed(x, xq, t, e, stats, lut=None): as _u8 but e is
// array('f', n).
static mp_obj_t qt_bce_sigmoid_mixed_fn(size_t n_args, const mp_obj_t *a) {
    size_t n;
    qt_lin_t x = in_u8(a[0], "x", a[1], "xq", 1, &n);
    qt_lout_t e = out_f32(a[3], "e", n);
    return bce_common(&x, n, a[2], &e, a[4], n_args > 5 ? a[5] : MP_OBJ_NULL);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_bce_sigmoid_mixed_obj, 5, 6, qt_bce_sigmoid_mixed_fn);

// bce_sigmoid_f32(x, t, e, stats): float logits x, float error e.
static mp_obj_t qt_bce_sigmoid_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t n;
    qt_lin_t x = in_f32(a[0], "x", 1, &n);
    qt_lout_t e = out_f32(a[2], "e", n);
    return bce_common(&x, n, a[1], &e, a[3], MP_OBJ_NULL);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_bce_sigmoid_f32_obj, 4, 4, qt_bce_sigmoid_f32_fn);

// ---- softmax + cross-entropy ---------------------------------------------------------

static mp_obj_t ce_common(qt_lin_t *x, size_t c, mp_obj_t label_in, qt_lout_t *e, mp_obj_t stats_in) {
    int32_t label = (int32_t)qt_arg_int(label_in, "label", 0, (mp_int_t)c - 1);
    float *stats = arg_stats(stats_in);
    qt_check_no_overlap(lout_ptr(e), lout_bytes(e, c), "e", lin_ptr(x), lin_bytes(x, c), "x");
    return mp_obj_new_int(qt_softmax_ce(x, c, label, e, stats));
}

// Classes: at least 1, at most 65535 (an int label fits any board's small int).
#define QT_CE_MAX_C (65535)

static void ce_check_c(size_t c) {
    if (c > QT_CE_MAX_C) {
        qt_raise_value("x: expected at most %d items, got %z", QT_CE_MAX_C, c);
    }
}

// softmax_ce_u8(x, xq, label, e, eq, stats) -> predicted class: uint8 logits x
// (C) with xq, label in 0..C-1, uint8 error e = softmax(x) - onehot (C) with eq.
static mp_obj_t qt_softmax_ce_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t c;
    qt_lin_t x = in_u8(a[0], "x", a[1], "xq", 1, &c);
    ce_check_c(c);
    qt_lout_t e = out_u8(a[3], "e", c, a[4], "eq");
    return ce_common(&x, c, a[2], &e, a[5]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_softmax_ce_u8_obj, 6, 6, qt_softmax_ce_u8_fn);

// softmax_ce_mixed(x, xq, label, e, stats) -> predicted class: float error e.
static mp_obj_t qt_softmax_ce_mixed_fn(size_t n_args, const mp_obj_t *a) {
    size_t c;
    qt_lin_t x = in_u8(a[0], "x", a[1], "xq", 1, &c);
    ce_check_c(c);
    qt_lout_t e = out_f32(a[3], "e", c);
    return ce_common(&x, c, a[2], &e, a[4]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_softmax_ce_mixed_obj, 5, 5, qt_softmax_ce_mixed_fn);

// softmax_ce_f32(x, label, e, stats) -> predicted class.
static mp_obj_t qt_softmax_ce_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t c;
    qt_lin_t x = in_f32(a[0], "x", 1, &c);
    ce_check_c(c);
    qt_lout_t e = out_f32(a[2], "e", c);
    return ce_common(&x, c, a[1], &e, a[3]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_softmax_ce_f32_obj, 4, 4, qt_softmax_ce_f32_fn);

// ---- latent: reparameterization + KL ------------------------------------------------------

// L from len(h) = 2L.
static size_t latent_dim(size_t hlen) {
    if (hlen % 2) {
        qt_raise_value("h: expected an even number of items (mu then logvar, 2*L), got %z", hlen);
    }
    return hlen / 2;
}

// rng: array('I', 1) with a nonzero state, or None (eps used as given).
static uint32_t *arg_rng(mp_obj_t rng_in) {
    if (rng_in == mp_const_none) {
        return NULL;
    }
    uint32_t *rng = qt_arg_u32(rng_in, "rng", 1, QT_RW);
    if (rng[0] == 0) {
        qt_raise_value("rng: the PRNG state must not be 0 (seed it with rng_seed)");
    }
    return rng;
}

static mp_obj_t latent_fwd_common(qt_lin_t *h, size_t L, mp_obj_t rng_in, mp_obj_t eps_in, qt_lout_t *z,
    mp_obj_t stats_in) {
    uint32_t *rng = arg_rng(rng_in);
    float *eps = qt_arg_f32(eps_in, "eps", L, rng ? QT_RW : QT_RO);
    float *stats = arg_stats(stats_in);
    qt_check_no_overlap(lout_ptr(z), lout_bytes(z, L), "z", lin_ptr(h), lin_bytes(h, 2 * L), "h");
    qt_check_no_overlap(lout_ptr(z), lout_bytes(z, L), "z", eps, L * sizeof(float), "eps");
    qt_check_no_overlap(eps, L * sizeof(float), "eps", lin_ptr(h), lin_bytes(h, 2 * L), "h");
    qt_latent_forward(h, L, rng, eps, z, stats);
    return mp_const_none;
}

// latent_forward_u8(h, hq, rng, eps, z, zq, stats): h uint8 (2L: mu, logvar)
// with hq; rng array('I', 1) or None; eps array('f', L) (filled from rng, or
// read if rng is None); z uint8 (L) quantized with zq (range recorded).
// stats = [KL, min z, max z].
static mp_obj_t qt_latent_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen;
    qt_lin_t h = in_u8(a[0], "h", a[1], "hq", 2, &hlen);
    size_t L = latent_dim(hlen);
    qt_lout_t z = out_u8(a[4], "z", L, a[5], "zq");
    return latent_fwd_common(&h, L, a[2], a[3], &z, a[6]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_forward_u8_obj, 7, 7, qt_latent_forward_u8_fn);

// latent_forward_f32(h, rng, eps, z, stats): float h and z.
static mp_obj_t qt_latent_forward_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen;
    qt_lin_t h = in_f32(a[0], "h", 2, &hlen);
    size_t L = latent_dim(hlen);
    qt_lout_t z = out_f32(a[3], "z", L);
    return latent_fwd_common(&h, L, a[1], a[2], &z, a[4]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_forward_f32_obj, 5, 5, qt_latent_forward_f32_fn);

// hp = array('f', 1): [beta], the KL weight, >= 0 and finite.
static float arg_beta(mp_obj_t hp_in) {
    const float *hp = qt_arg_f32(hp_in, "hp", 1, QT_RO);
    return qt_check_f32(hp[0], "hp[0] (beta)", 0.0f, 3.0e38f, false, false);
}

static mp_obj_t latent_bwd_common(qt_lin_t *h, size_t L, mp_obj_t eps_in, qt_lin_t *dz, qt_lout_t *dh,
    mp_obj_t hp_in, mp_obj_t stats_in) {
    const float *eps = qt_arg_f32(eps_in, "eps", L, QT_RO);
    float beta = arg_beta(hp_in);
    float *stats = arg_stats(stats_in);
    qt_check_no_overlap(lout_ptr(dh), lout_bytes(dh, 2 * L), "dh", lin_ptr(h), lin_bytes(h, 2 * L), "h");
    qt_check_no_overlap(lout_ptr(dh), lout_bytes(dh, 2 * L), "dh", lin_ptr(dz), lin_bytes(dz, L), "dz");
    qt_check_no_overlap(lout_ptr(dh), lout_bytes(dh, 2 * L), "dh", eps, L * sizeof(float), "eps");
    qt_latent_backward(h, L, eps, dz, beta, dh, stats);
    return mp_const_none;
}

static void check_dz_len(size_t dzlen, size_t L) {
    if (dzlen != L) {
        qt_raise_value("dz: expected L = len(h)/2 = %z items, got %z", L, dzlen);
    }
}

// latent_backward_u8(h, hq, eps, dz, dzq, dh, dhq, hp, stats): h, eps as in
// the forward call; dz uint8 (L) with dzq = the error arriving at z; dh uint8
// (2L: dL/dmu, dL/dlogvar) quantized with dhq (range recorded); hp =
// array('f', [beta]).  stats = [KL, min dh, max dh].
static mp_obj_t qt_latent_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen, dzlen;
    qt_lin_t h = in_u8(a[0], "h", a[1], "hq", 2, &hlen);
    size_t L = latent_dim(hlen);
    qt_lin_t dz = in_u8(a[3], "dz", a[4], "dzq", 1, &dzlen);
    check_dz_len(dzlen, L);
    qt_lout_t dh = out_u8(a[5], "dh", 2 * L, a[6], "dhq");
    return latent_bwd_common(&h, L, a[2], &dz, &dh, a[7], a[8]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_backward_u8_obj, 9, 9, qt_latent_backward_u8_fn);

// latent_backward_mixed(h, hq, eps, dz, dh, hp, stats): uint8 h, float dz, dh.
static mp_obj_t qt_latent_backward_mixed_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen, dzlen;
    qt_lin_t h = in_u8(a[0], "h", a[1], "hq", 2, &hlen);
    size_t L = latent_dim(hlen);
    qt_lin_t dz = in_f32(a[3], "dz", 1, &dzlen);
    check_dz_len(dzlen, L);
    qt_lout_t dh = out_f32(a[4], "dh", 2 * L);
    return latent_bwd_common(&h, L, a[2], &dz, &dh, a[5], a[6]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_backward_mixed_obj, 7, 7, qt_latent_backward_mixed_fn);

// latent_backward_f32(h, eps, dz, dh, hp, stats): float throughout.
static mp_obj_t qt_latent_backward_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen, dzlen;
    qt_lin_t h = in_f32(a[0], "h", 2, &hlen);
    size_t L = latent_dim(hlen);
    qt_lin_t dz = in_f32(a[2], "dz", 1, &dzlen);
    check_dz_len(dzlen, L);
    qt_lout_t dh = out_f32(a[3], "dh", 2 * L);
    return latent_bwd_common(&h, L, a[1], &dz, &dh, a[4], a[5]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_backward_f32_obj, 6, 6, qt_latent_backward_f32_fn);

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
    uint32_t *rng = arg_rng(rng_in);
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
    mp_store_global(MP_QSTR_bce_sigmoid_mixed, MP_OBJ_FROM_PTR(&qt_bce_sigmoid_mixed_obj));
    mp_store_global(MP_QSTR_bce_sigmoid_f32, MP_OBJ_FROM_PTR(&qt_bce_sigmoid_f32_obj));
    mp_store_global(MP_QSTR_softmax_ce_u8, MP_OBJ_FROM_PTR(&qt_softmax_ce_u8_obj));
    mp_store_global(MP_QSTR_softmax_ce_mixed, MP_OBJ_FROM_PTR(&qt_softmax_ce_mixed_obj));
    mp_store_global(MP_QSTR_softmax_ce_f32, MP_OBJ_FROM_PTR(&qt_softmax_ce_f32_obj));
    mp_store_global(MP_QSTR_latent_forward_u8, MP_OBJ_FROM_PTR(&qt_latent_forward_u8_obj));
    mp_store_global(MP_QSTR_latent_forward_f32, MP_OBJ_FROM_PTR(&qt_latent_forward_f32_obj));
    mp_store_global(MP_QSTR_latent_backward_u8, MP_OBJ_FROM_PTR(&qt_latent_backward_u8_obj));
    mp_store_global(MP_QSTR_latent_backward_mixed, MP_OBJ_FROM_PTR(&qt_latent_backward_mixed_obj));
    mp_store_global(MP_QSTR_latent_backward_f32, MP_OBJ_FROM_PTR(&qt_latent_backward_f32_obj));
    mp_store_global(MP_QSTR_rng_seed, MP_OBJ_FROM_PTR(&qt_rng_seed_obj));
    mp_store_global(MP_QSTR_rng_normal, MP_OBJ_FROM_PTR(&qt_rng_normal_obj));
    mp_store_global(MP_QSTR_vmath, MP_OBJ_FROM_PTR(&qt_vmath_obj));
}
