// Sigmoid + binary cross-entropy head: see loss.h.
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

// sigmoid(l) and log1p(exp(-|l|)) from one exp; e in (0, 1].  sigmoid is
// r = 1/(1+e) for l >= 0 and e*r for l < 0 (one divide serves a logit and
// its mirror in the LUT; e*r is within 1.5 ulp of e/(1+e)).
static inline float qt_bce_point(float l, float *lp) {
    float e = qt_expf(-(l >= 0.0f ? l : -l));
    float r = 1.0f / (1.0f + e);
    *lp = qt_log1p_unitf(e);
    return l >= 0.0f ? r : e * r;
}

// The sigmoid in Q24 for the uint8 error path: floor(sig * 2^24) in
// 0..2^24 (the product is exact, a power-of-two scaling; one truncating
// conversion per distinct logit value, not per pixel).
static inline int32_t qt_sig_q24(float sig) {
    return (int32_t)(sig * 16777216.0f);
}

// A LUT sigmoid entry: the float, or (q24) its Q24 integer in the float's
// bits (0..2^24, never QT_LUT_EMPTY).
static inline float qt_bce_lut_sig(float sig, int q24) {
    return q24 ? qt_u2f((uint32_t)qt_sig_q24(sig)) : sig;
}

// Fill the LUT entry of logit value q, and that of its mirror 2z - q (the
// logit -l) if it exists: exp(-|l|) and log1p(exp(-|l|)) are the same for
// both, so the pair costs one exp, one log and one divide.  The mirror's
// sigmoid comes from the other branch of qt_bce_point with the same e and r,
// so it has the bits a direct computation would give.
static void qt_bce_lut_fill(float *lut, int32_t q, int32_t z, float s, int q24) {
    float l = (float)(q - z) * s;
    float e = qt_expf(-(l >= 0.0f ? l : -l));
    float r = 1.0f / (1.0f + e);
    float lp = qt_log1p_unitf(e);
    lut[q] = qt_bce_lut_sig(l >= 0.0f ? r : e * r, q24);
    lut[256 + q] = lp;
    int32_t m = 2 * z - q;
    if (m >= 0 && m <= 255 && m != q && qt_f2u(lut[m]) == QT_LUT_EMPTY) {
        float lm = (float)(m - z) * s;        // == -l exactly
        lut[m] = qt_bce_lut_sig(lm >= 0.0f ? r : e * r, q24);
        lut[256 + m] = lp;
    }
}

// round(t * 2^24) of the target t = pixel / 255, exactly, in integers:
// 2^24 / 255 = 65793 + 1/255, so t 2^24 = 65793 pixel + pixel / 255, whose
// fraction rounds up from pixel 128 on.
static inline int32_t qt_target_q24(int32_t pixel) {
    return pixel * 65793 + (pixel >> 7);
}

// uint8 logits l = s (q - z): the linear part of each term,
// max(l, 0) - l t = (s / 255) (255 max(q - z, 0) - (q - z) pixel), is summed
// exactly in integers and scaled once at the end, so per pixel only the
// log1p term is a float addition.
//
// A uint8 error (w->q set) is computed in integers (Q24, real = v 2^-24):
// v = floor(sig 2^24) - round(t 2^24), range tracked on v, quantized as
// clamp(round(v inv_s 2^-24) + z_e, 0, 255) with one fixed-point multiply
// (qt_requant_u8, exact).  v is within 2^-24 of the float error sig - t: far below a
// quantization step unless the error's range is narrower than ~2^-16 (the
// errors span up to (-1, 1); a step of 1/255 of a 2^-12 wide range is
// still 16x 2^-24), and per pixel it costs no float operation: on
// Cortex-M0 the float subtract, multiply, add and round were ~500 soft-float
// instructions per pixel.  The float error (w->q NULL: mixed mode) is
// sig - t in float32.
static float qt_bce_u8(const qt_lin_t *logit, const uint8_t *target, size_t n, qt_lw_t *w, float *lut) {
    const float s = logit->scale;
    const int32_t z = logit->zero;
    const int q24 = w->q != NULL;
    if (lut) {
        qt_fill_f32(lut, 256, qt_u2f(QT_LUT_EMPTY));
    }
    // round(v / s_e) = round(v * (inv_s 2^-24)); inv_s 2^-24 is exact (or
    // below float range, then the product rounds to 0 anyway).
    // (Two ints, not the struct: GCC -Os copies a struct kept across the
    // loop with memcpy, which a natmod does not link.)
    const qt_fixmul_t fx0 = qt_fixmul_from_f32(w->inv_scale * 0x1p-24f);
    const int32_t fx_mult = fx0.mult, fx_shift = fx0.shift;
    int32_t vmin = 0, vmax = 0;
    int64_t lin = 0;
    float lsum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        int32_t q = logit->q[i];
        int32_t d = q - z;
        int32_t tq = target[i];
        lin += 255 * (d > 0 ? d : 0) - d * tq;     // |.| <= 2 * 255^2 per pixel
        float sig, lp;
        int32_t sq;                                // Q24 sigmoid (q24 only)
        if (!lut) {
            sig = qt_bce_point((float)d * s, &lp);
            sq = q24 ? qt_sig_q24(sig) : 0;
        } else {
            if (qt_f2u(lut[q]) == QT_LUT_EMPTY) {
                qt_bce_lut_fill(lut, q, z, s, q24);
            }
            sig = lut[q];
            sq = (int32_t)qt_f2u(lut[q]);
            lp = lut[256 + q];
        }
        lsum += lp;
        if (!q24) {
            qt_lw_put(w, i, sig - (float)tq * QT_INV255);
            continue;
        }
        const int32_t v = sq - qt_target_q24(tq);
        if (i == 0 || v < vmin) {
            vmin = v;
        }
        if (i == 0 || v > vmax) {
            vmax = v;
        }
        w->q[i] = qt_requant_u8(v, (qt_fixmul_t){ fx_mult, fx_shift }, w->zero, 0);
    }
    if (q24) {
        // |v| <= 2^24: exact floats
        w->vmin = (float)vmin * 0x1p-24f;
        w->vmax = (float)vmax * 0x1p-24f;
    }
    return lsum + (float)lin * (s / 255.0f);
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
