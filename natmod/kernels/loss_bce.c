// Sigmoid + binary cross-entropy head: see loss.h.
#include "loss.h"
#include "mathf.h"

// Marks a LUT entry not computed yet: a NaN bit pattern that no computed
// sigmoid (always in [0, 1]) can have; checked as an integer, because a float
// compare is a library call on Cortex-M0.
#define QT_LUT_EMPTY (0xffffffffu)

// sigmoid(l) and log1p(exp(-|l|)) from one exp; e in (0, 1].
static inline float qt_bce_point(float l, float *lp) {
    float e = qt_expf(-(l >= 0.0f ? l : -l));
    float d = 1.0f + e;
    *lp = qt_log1pf(e);
    return l >= 0.0f ? 1.0f / d : e / d;
}

void qt_bce_sigmoid(const qt_lin_t *logit, const uint8_t *target, size_t n,
    const qt_lout_t *err, float stats[3], float *lut) {
    if (lut && logit->q) {
        qt_fill_f32(lut, 256, qt_u2f(QT_LUT_EMPTY));
    } else {
        lut = NULL;
    }
    qt_lw_t w;
    qt_lw_init(&w, err);
    float loss = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float l = qt_lin_get(logit, i);
        float t = (float)target[i] / 255.0f;
        float sig, lp;
        if (lut) {
            uint32_t q = logit->q[i];
            if (qt_f2u(lut[q]) == QT_LUT_EMPTY) {
                lut[q] = qt_bce_point(l, &lut[256 + q]);
            }
            sig = lut[q];
            lp = lut[256 + q];
        } else {
            sig = qt_bce_point(l, &lp);
        }
        float pos = l > 0.0f ? l : 0.0f;
        loss += (pos - l * t) + lp;
        qt_lw_put(&w, i, sig - t);
    }
    qt_lw_done(&w, err);
    stats[0] = loss;
    stats[1] = w.vmin;
    stats[2] = w.vmax;
}
