// Sigmoid + binary cross-entropy head: see loss.h.
// qt_lw_put's one out-of-line copy on the M0 (loss_io.h)
#define QT_LW_PUT_DEFINE 1
#include "loss.h"
#include "mathf.h"

// Marks a LUT entry not computed yet: a NaN bit pattern that no computed
// sigmoid (always in [0, 1]) can have; checked as an integer, because a float
// compare is a library call on Cortex-M0.
#define QT_LUT_EMPTY (0xffffffffu)

// The target t = pixel / 255, as pixel * (1/255): a multiply instead of a
// divide (a divide is a ~400-instruction library call on Cortex-M0), and still
// exact for 0 and 255 and within one rounding of the true quotient elsewhere.
#define QT_INV255 (1.0f / 255.0f)

// Float logits: sigmoid(l) and log1p(exp(-|l|)) from one exp; e in (0, 1].
// sigmoid is r = 1/(1+e) for l >= 0 and e*r for l < 0 (e*r is within 1.5 ulp
// of e/(1+e)).
static inline float qt_bce_point(float l, float *lp) {
    float e = qt_expf(-(l >= 0.0f ? l : -l));
    float r = 1.0f / (1.0f + e);
    *lp = qt_log1p_unitf(e);
    return l >= 0.0f ? r : e * r;
}

// ---- uint8 logits: sigmoid and softplus in integers ----------------------------
//
// A uint8 logit is l = s d with d = q - z in -255..255, so a call needs the
// sigmoid and log1p(exp(-|l|)) of at most 256 values.  In float that is an
// exp, a log1p and a divide per value: ~6 k instructions of soft float per
// value pair on Cortex-M0 (~750 k per 784-pixel image).  Here it is Q24/Q30
// fixed point with ~20 32x32->64 products and no divide: the softplus term
// sp = ln(1 + e), e = exp(-|l|), and the sigmoid of +|l| as exp(-sp) =
// 1/(1 + e); the sigmoid of -|l| is its complement.  Every target computes
// the same integers (the M0 forms the 64-bit products from 16-bit halves,
// same values), and golden/loss.py (bce_int_point) repeats them in Python
// ints.  Accuracy against float64 (tests/test_loss_golden.py): the Q24
// sigmoid and softplus within 2 units (2^-23), so the per-image loss is
// within n 2^-23 + a few float roundings of the float64 loss.

#define QT_Q30_ONE      (1u << 30)
#define QT_Q30_LOG2E    (1549082005u)   // round(log2(e) 2^30)
#define QT_Q30_LN2      (744261118u)    // round(ln(2) 2^30)
// |l| saturates at 32 (Q24): exp(-32) 2^30 < 1, so nothing changes above.
#define QT_BCE_XMAX     (1u << 29)

// round(2^30 2^(-j/16)), j = 0..15
static const uint32_t qt_exp2_q30[16] = {
    1073741824u, 1028218693u, 984625594u, 942880699u, 902905651u, 864625413u, 827968132u, 792865000u,
    759250125u, 727060411u, 696235434u, 666717336u, 638450708u, 611382493u, 585461881u, 560640218u,
};
// ceil(2^30 16 / (16 + j)) and round(2^30 ln(1 + j/16)), j = 0..16
static const uint32_t qt_inv1p16_q30[17] = {
    1073741824u, 1010580541u, 954437177u, 904203642u, 858993460u, 818089009u, 780903145u, 746950835u,
    715827883u, 687194768u, 660764200u, 636291452u, 613566757u, 592409283u, 572662307u, 554189329u,
    536870912u,
};
static const uint32_t qt_ln1p16_q30[17] = {
    0u, 65095192u, 126468572u, 184522808u, 239598564u, 291986604u, 341937090u, 389666807u,
    435364845u, 479197128u, 521310048u, 561833416u, 600882877u, 638561895u, 674963409u, 710171213u,
    744261118u,
};
// round(2^30 / k), k = 2..6: the log1p series
static const uint32_t qt_recip_q30[5] = { 536870912u, 357913941u, 268435456u, 214748365u, 178956971u };

// floor(a b / 2^30), a b < 2^62.
static inline uint32_t qt_mul_q30(uint32_t a, uint32_t b) {
#if defined(__ARM_ARCH_6M__)
    // No 32x32->64 multiply on the M0 (GCC would call libgcc's 64x64
    // __aeabi_lmul): four 16x16 products, the same value.
    uint32_t al = a & 0xffffu, ah = a >> 16, bl = b & 0xffffu, bh = b >> 16;
    uint32_t ll = al * bl, lh = al * bh, hl = ah * bl;
    uint32_t mid = (ll >> 16) + (lh & 0xffffu) + (hl & 0xffffu);
    uint32_t hi = ah * bh + (lh >> 16) + (hl >> 16) + (mid >> 16);
    return (hi << 2) | ((mid & 0xffffu) >> 14);
#else
    return (uint32_t)(((uint64_t)a * b) >> 30);
#endif
}

// The logit scale as s = m 2^(sh - 24), m the float's integer mantissa, so
// that a s in Q24 is (a m) shifted by sh: exact, a m < 2^32 for a <= 255.
static void qt_scale_q24(float s, uint32_t *m, int32_t *sh) {
    uint32_t b = qt_f2u(s);
    int32_t ef = (int32_t)((b >> 23) & 0xffu);
    *m = ef ? (b & 0x7fffffu) | 0x800000u : b & 0x7fffffu;
    *sh = (ef ? ef - 150 : -149) + 24;
}

// floor(a s 2^24), saturated at QT_BCE_XMAX.
static uint32_t qt_logit_q24(uint32_t a, uint32_t m, int32_t sh) {
    uint32_t p = a * m;
    if (p == 0) {
        return 0;
    }
    if (sh >= 0) {
        return (sh >= 30 || p > (QT_BCE_XMAX >> sh)) ? QT_BCE_XMAX : p << sh;
    }
    uint32_t x = sh <= -32 ? 0 : p >> -sh;
    return x > QT_BCE_XMAX ? QT_BCE_XMAX : x;
}

// exp(-x) in Q30 for x in Q24, 0 <= x <= QT_BCE_XMAX: exp(-x) = 2^-y,
// y = x log2(e) = k + j/16 + g (g < 1/16), 2^-(j/16) from the table and
// 2^-g = exp(-t), t = g ln 2 < 0.0434, by its Taylor polynomial to t^4
// (the t^5 term is < 2^-29).
static uint32_t qt_exp_neg_q30(uint32_t x) {
    uint32_t y = qt_mul_q30(x, QT_Q30_LOG2E);
    uint32_t k = y >> 24;
    if (k > 30) {
        return 0;
    }
    uint32_t t = qt_mul_q30((y & 0xfffffu) << 6, QT_Q30_LN2);
    uint32_t p = qt_recip_q30[4] - qt_mul_q30(t, QT_Q30_ONE / 24u);
    p = (QT_Q30_ONE >> 1) - qt_mul_q30(t, p);
    p = QT_Q30_ONE - qt_mul_q30(t, p);
    p = QT_Q30_ONE - qt_mul_q30(t, p);
    return qt_mul_q30(qt_exp2_q30[(y >> 20) & 15u], p) >> k;
}

// ln(1 + e) in Q24 for e in Q30, 0 <= e <= 2^30: d = 1 + e = (1 + j/16)
// (1 + r), 0 <= r < 1/16 (r from a table reciprocal), ln(1 + r) by its
// series to r^6 (the r^7 term is < 2^-30).
static uint32_t qt_ln1p_q24(uint32_t e) {
    uint32_t j = e >> 26;
    uint32_t r = qt_mul_q30(QT_Q30_ONE + e, qt_inv1p16_q30[j]) - QT_Q30_ONE;
    uint32_t p = qt_recip_q30[3] - qt_mul_q30(r, qt_recip_q30[4]);
    p = qt_recip_q30[2] - qt_mul_q30(r, p);
    p = qt_recip_q30[1] - qt_mul_q30(r, p);
    p = qt_recip_q30[0] - qt_mul_q30(r, p);
    p = QT_Q30_ONE - qt_mul_q30(r, p);
    return (qt_ln1p16_q30[j] + qt_mul_q30(r, p) + 32u) >> 6;
}

// For the logit magnitude a: the Q24 softplus term sp = ln(1 + exp(-a s))
// (returned) and the Q24 sigmoid of +a s, round(2^24 exp(-sp)) (*sig); the
// sigmoid of -a s is 2^24 - *sig.
__attribute__((noinline)) static uint32_t qt_bce_int_point(uint32_t a, uint32_t m, int32_t sh, uint32_t *sig) {
    uint32_t sp = qt_ln1p_q24(qt_exp_neg_q30(qt_logit_q24(a, m, sh)));
    *sig = (qt_exp_neg_q30(sp) + 32u) >> 6;
    return sp;
}

// Fill the LUT entries (Q24 sigmoid in lut[q], Q24 softplus term in
// lut[256 + q], as integer bits) of logit value q and of its mirror 2z - q
// (the logit -l), which shares the work.
__attribute__((noinline)) static void qt_bce_lut_fill(float *lut, int32_t q, int32_t z, uint32_t m, int32_t sh) {
    int32_t d = q - z;
    uint32_t sig;
    uint32_t sp = qt_bce_int_point((uint32_t)(d >= 0 ? d : -d), m, sh, &sig);
    lut[q] = qt_u2f(d >= 0 ? sig : (1u << 24) - sig);
    lut[256 + q] = qt_u2f(sp);
    int32_t mq = 2 * z - q;
    if (mq >= 0 && mq <= 255 && mq != q) {
        lut[mq] = qt_u2f(d >= 0 ? (1u << 24) - sig : sig);
        lut[256 + mq] = qt_u2f(sp);
    }
}

// The Q24 sigmoid (*sig) and softplus term (returned) of logit value q:
// from the LUT (filled on first use), or computed when there is none.
static inline __attribute__((always_inline)) uint32_t qt_bce_value(float *lut, int32_t q, int32_t z, uint32_t m, int32_t sh, uint32_t *sig) {
    if (lut) {
        if (qt_f2u(lut[q]) == QT_LUT_EMPTY) {
            qt_bce_lut_fill(lut, q, z, m, sh);
        }
        *sig = qt_f2u(lut[q]);
        return qt_f2u(lut[256 + q]);
    }
    int32_t d = q - z;
    uint32_t sp = qt_bce_int_point((uint32_t)(d >= 0 ? d : -d), m, sh, sig);
    *sig = d >= 0 ? *sig : (1u << 24) - *sig;
    return sp;
}

// round(t * 2^24) of the target t = pixel / 255, exactly, in integers:
// 2^24 / 255 = 65793 + 1/255, so t 2^24 = 65793 pixel + pixel / 255, whose
// fraction rounds up from pixel 128 on.
static inline int32_t qt_target_q24(int32_t pixel) {
    return pixel * 65793 + (pixel >> 7);
}

// The uint8 error of uint8 logits, in integers (Q24, real = v 2^-24):
// v = sig_q24 - round(t 2^24), quantized as clamp(round(v inv_s 2^-24) + z_e,
// 0, 255) with one fixed-point multiply (qt_requant_u8, exact); the range
// is tracked on v.  A loop of its own with the LUT already filled: no call
// per pixel, so its values stay in registers.
__attribute__((noinline)) static void qt_bce_err_q24(const uint8_t *logit, const uint8_t *target, size_t n, const float *lut,
    int32_t z, uint32_t m, int32_t sh, qt_lw_t *w) {
    // round(v / s_e) = round(v * (inv_s 2^-24)); inv_s 2^-24 is exact (or
    // below float range, then the product rounds to 0 anyway).
    // (Two ints, not the struct: GCC -Os copies a struct kept across the
    // loop with memcpy, which a natmod does not link.)
    const qt_fixmul_t fx0 = qt_fixmul_from_f32(w->inv_scale * 0x1p-24f);
    const int32_t fx_mult = fx0.mult, fx_shift = fx0.shift;
    const int32_t ze = w->zero;
    uint8_t *out = w->q;
    int32_t vmin = INT32_MAX, vmax = INT32_MIN;
    for (size_t i = 0; i < n; i++) {
        uint32_t sq;
        if (lut) {
            sq = qt_f2u(lut[logit[i]]);
        } else {
            (void)qt_bce_value(NULL, logit[i], z, m, sh, &sq);
        }
        const int32_t v = (int32_t)sq - qt_target_q24(target[i]);
        vmin = v < vmin ? v : vmin;
        vmax = v > vmax ? v : vmax;
        out[i] = qt_requant_u8(v, (qt_fixmul_t){ fx_mult, fx_shift }, ze, 0);
    }
    if (n) {
        // |v| <= 2^24: exact floats
        w->vmin = (float)vmin * 0x1p-24f;
        w->vmax = (float)vmax * 0x1p-24f;
    }
}

// uint8 logits l = s (q - z): the linear part of each term,
// max(l, 0) - l t = (s / 255) (255 max(q - z, 0) - (q - z) pixel), is summed
// exactly in integers and scaled once at the end; the softplus terms are
// Q24 integers (qt_bce_int_point) summed exactly in 64 bits.  A first pass
// takes both sums (and fills the LUT), a second writes the error: uint8
// (w->q set) in integers, or (mixed mode) sig_q24 2^-24 - t in float32.
static float qt_bce_u8(const qt_lin_t *logit, const uint8_t *target, size_t n, qt_lw_t *w, float *lut) {
    const float s = logit->scale;
    const int32_t z = logit->zero;
    uint32_t sm;
    int32_t ssh;
    qt_scale_q24(s, &sm, &ssh);
    if (lut) {
        qt_fill_f32(lut, 256, qt_u2f(QT_LUT_EMPTY));
    }
    int64_t lin = 0;
    uint64_t lsum = 0;                             // Q24, < 2^24 per pixel
    for (size_t i = 0; i < n; i++) {
        int32_t q = logit->q[i];
        int32_t d = q - z;
        lin += 255 * (d > 0 ? d : 0) - d * (int32_t)target[i];   // |.| <= 2 * 255^2
        uint32_t sq;
        lsum += qt_bce_value(lut, q, z, sm, ssh, &sq);
    }
    if (w->q) {
        qt_bce_err_q24(logit->q, target, n, lut, z, sm, ssh, w);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t sq;
            (void)qt_bce_value(lut, logit->q[i], z, sm, ssh, &sq);
            // sq <= 2^24: exact float
            qt_lw_put(w, i, (float)(int32_t)sq * 0x1p-24f - (float)target[i] * QT_INV255);
        }
    }
    return (float)lsum * 0x1p-24f + (float)lin * (s / 255.0f);
}

void qt_bce_sigmoid(const qt_lin_t *logit, const uint8_t *target, size_t n,
    const qt_lout_t *err, float stats[3], float *lut) {
    qt_lw_t w;
    qt_lw_init(&w, err);
    float loss;
    if (logit->q) {
        loss = qt_bce_u8(logit, target, n, &w, lut);
    } else {
        loss = 0.0f;
        for (size_t i = 0; i < n; i++) {
            float l = logit->f[i];
            float t = (float)target[i] * QT_INV255;
            float lp;
            float sig = qt_bce_point(l, &lp);
            float pos = l > 0.0f ? l : 0.0f;
            loss += (pos - l * t) + lp;
            qt_lw_put(&w, i, sig - t);
        }
    }
    qt_lw_done(&w, err);
    stats[0] = loss;
    stats[1] = w.vmin;
    stats[2] = w.vmax;
}
