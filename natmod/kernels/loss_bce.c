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

// Fill the LUT entry of logit value q, and that of its mirror 2z - q (the
// logit -l) if it exists: exp(-|l|) and log1p(exp(-|l|)) are the same for
// both, so the pair costs one exp, one log and one divide.  The mirror's
// sigmoid comes from the other branch of qt_bce_point with the same e and r,
// so it has the bits a direct computation would give.
static void qt_bce_lut_fill(float *lut, int32_t q, int32_t z, float s) {
    float l = (float)(q - z) * s;
    float e = qt_expf(-(l >= 0.0f ? l : -l));
    float r = 1.0f / (1.0f + e);
    float lp = qt_log1p_unitf(e);
    lut[q] = l >= 0.0f ? r : e * r;
    lut[256 + q] = lp;
    int32_t m = 2 * z - q;
    if (m >= 0 && m <= 255 && m != q && qt_f2u(lut[m]) == QT_LUT_EMPTY) {
        float lm = (float)(m - z) * s;        // == -l exactly
        lut[m] = lm >= 0.0f ? r : e * r;
        lut[256 + m] = lp;
    }
}

// uint8 logits l = s (q - z): the linear part of each term,
// max(l, 0) - l t = (s / 255) (255 max(q - z, 0) - (q - z) pixel), is summed
// exactly in integers and scaled once at the end, so per pixel only the
// log1p term is a float addition.
static float qt_bce_u8(const qt_lin_t *logit, const uint8_t *target, size_t n, qt_lw_t *w, float *lut) {
    const float s = logit->scale;
    const int32_t z = logit->zero;
    if (lut) {
        qt_fill_f32(lut, 256, qt_u2f(QT_LUT_EMPTY));
    }
    int64_t lin = 0;
    float lsum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        int32_t q = logit->q[i];
        int32_t d = q - z;
        int32_t tq = target[i];
        lin += 255 * (d > 0 ? d : 0) - d * tq;     // |.| <= 2 * 255^2 per pixel
        float sig, lp;
        if (!lut) {
            sig = qt_bce_point((float)d * s, &lp);
        } else {
            if (qt_f2u(lut[q]) == QT_LUT_EMPTY) {
                qt_bce_lut_fill(lut, q, z, s);
            }
            sig = lut[q];
            lp = lut[256 + q];
        }
        lsum += lp;
        qt_lw_put(w, i, sig - (float)tq * QT_INV255);
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
