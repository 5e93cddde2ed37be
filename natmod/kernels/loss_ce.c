// Softmax + cross-entropy head: see loss.h.
#include "loss.h"
#include "mathf.h"

int32_t qt_softmax_ce(const qt_lin_t *logit, size_t c, int32_t label,
    const qt_lout_t *err, float stats[3]) {
    // Shift by the max so every exp is in (0, 1] and the sum in [1, c].
    float m = qt_lin_get(logit, 0);
    int32_t pred = 0;
    for (size_t j = 1; j < c; j++) {
        float l = qt_lin_get(logit, j);
        if (l > m) {
            m = l;
            pred = (int32_t)j;
        }
    }
    float sum = 0.0f;
    for (size_t j = 0; j < c; j++) {
        sum += qt_expf(qt_lin_get(logit, j) - m);
    }
    // The exps are computed again below instead of being kept: no scratch
    // buffer, and c is small (the cost is c more exps per sample).
    float inv = 1.0f / sum;
    qt_lw_t w;
    qt_lw_init(&w, err);
    for (size_t j = 0; j < c; j++) {
        float p = qt_expf(qt_lin_get(logit, j) - m) * inv;
        qt_lw_put(&w, j, (int32_t)j == label ? p - 1.0f : p);
    }
    qt_lw_done(&w, err);
    stats[0] = qt_logf(sum) - (qt_lin_get(logit, (size_t)label) - m);
    stats[1] = w.vmin;
    stats[2] = w.vmax;
    return pred;
}
