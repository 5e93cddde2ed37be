// Reparameterization and KL term: see latent.h.
#include "latent.h"
#include "mathf.h"
#include "rng.h"

static inline float qt_clamp_logvar(float lv) {
    // NaN passes through (and then shows up in the loss, not hidden).
    if (lv < QT_LOGVAR_MIN) {
        return QT_LOGVAR_MIN;
    }
    if (lv > QT_LOGVAR_MAX) {
        return QT_LOGVAR_MAX;
    }
    return lv;
}

void qt_latent_forward(const qt_lin_t *h, size_t L, uint32_t *rng, float *eps,
    const qt_lout_t *z, float stats[3]) {
    if (rng) {
        qt_rng_normal(rng, eps, L);
    }
    qt_lw_t w;
    qt_lw_init(&w, z);
    float acc = 0.0f;
    for (size_t i = 0; i < L; i++) {
        float mu = qt_lin_get(h, i);
        float lv = qt_clamp_logvar(qt_lin_get(h, L + i));
        float sigma = qt_expf(0.5f * lv);
        qt_lw_put(&w, i, mu + sigma * eps[i]);
        // exp(lv) rather than sigma^2: one rounding instead of two.
        acc += ((1.0f + lv) - mu * mu) - qt_expf(lv);
    }
    qt_lw_done(&w, z);
    stats[0] = -0.5f * acc;
    stats[1] = w.vmin;
    stats[2] = w.vmax;
}

void qt_latent_backward(const qt_lin_t *h, size_t L, const float *eps,
    const qt_lin_t *dz, float beta, const qt_lout_t *dh, float stats[3]) {
    qt_lw_t w;
    qt_lw_init(&w, dh);
    float acc = 0.0f;
    // dL/dmu first (indices 0..L-1), then dL/dlogvar (L..2L-1): the write
    // order is the tensor order, so the range tracking sees index 0 first.
    for (size_t i = 0; i < L; i++) {
        float mu = qt_lin_get(h, i);
        qt_lw_put(&w, i, qt_lin_get(dz, i) + beta * mu);
    }
    for (size_t i = 0; i < L; i++) {
        float mu = qt_lin_get(h, i);
        float lv = qt_clamp_logvar(qt_lin_get(h, L + i));
        float ev = qt_expf(lv);
        float sigma = qt_expf(0.5f * lv);
        float g = qt_lin_get(dz, i);
        qt_lw_put(&w, L + i, 0.5f * ((g * sigma) * eps[i] + beta * (ev - 1.0f)));
        acc += ((1.0f + lv) - mu * mu) - ev;
    }
    qt_lw_done(&w, dh);
    stats[0] = -0.5f * acc;
    stats[1] = w.vmin;
    stats[2] = w.vmax;
}
