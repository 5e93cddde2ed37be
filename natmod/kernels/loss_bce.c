// Sigmoid + binary cross-entropy head: see loss.h.
#include "loss.h"
#include "mathf.h"

void qt_bce_sigmoid(const qt_lin_t *logit, const uint8_t *target, size_t n,
    const qt_lout_t *err, float stats[3]) {
    qt_lw_t w;
    qt_lw_init(&w, err);
    float loss = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float l = qt_lin_get(logit, i);
        float t = (float)target[i] / 255.0f;
        // One exp serves both the loss and the gradient; e in (0, 1].
        float e = qt_expf(-(l >= 0.0f ? l : -l));
        float d = 1.0f + e;
        float sig = l >= 0.0f ? 1.0f / d : e / d;
        float pos = l > 0.0f ? l : 0.0f;
        loss += (pos - l * t) + qt_log1pf(e);
        qt_lw_put(&w, i, sig - t);
    }
    qt_lw_done(&w, err);
    stats[0] = loss;
    stats[1] = w.vmin;
    stats[2] = w.vmax;
}
