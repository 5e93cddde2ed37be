// Element access shared by the loss and latent kernels: a tensor is either
// uint8 with a scale and zero point, or float32.  The heads touch few values
// per sample (784 pixels, 2x10 latents, 10 classes) next to an exp and a log
// each, so one well-predicted branch per element costs nothing, and one
// kernel serves the uint8, mixed and float32 modes.
#ifndef QT_LOSS_IO_H
#define QT_LOSS_IO_H
#include <stddef.h>
#include <stdint.h>
#include "quant.h"

// A tensor a kernel reads: q (uint8, real = scale * (q - zero)) if q != NULL,
// else f (float32).
typedef struct {
    const uint8_t *q;
    const float *f;
    float scale;
    int32_t zero;
} qt_lin_t;

// A tensor a kernel writes: q (uint8, quantized with the scale and zero point
// of the qparams record qp, quant.h) if q != NULL, else f (float32).  The
// exact real range of the written values is recorded in qp when q != NULL.
typedef struct {
    uint8_t *q;
    float *f;
    float *qp;
} qt_lout_t;

// Write-side state, set up once per call.
typedef struct {
    uint8_t *q;
    float *f;
    float inv_scale;   // 1 / s, so each element costs a multiply, not a divide
    int32_t zero;
    float vmin, vmax;  // exact range of the values written so far
} qt_lw_t;

static inline float qt_lin_get(const qt_lin_t *t, size_t i) {
    if (t->q) {
        return (float)((int32_t)t->q[i] - t->zero) * t->scale;
    }
    return t->f[i];
}

static inline void qt_lw_init(qt_lw_t *w, const qt_lout_t *o) {
    w->q = o->q;
    w->f = o->f;
    w->inv_scale = o->q ? 1.0f / o->qp[QT_QP_SCALE] : 1.0f;
    w->zero = o->q ? (int32_t)o->qp[QT_QP_ZERO] : 0;
    w->vmin = 0.0f;
    w->vmax = 0.0f;
}

// Store v at i: float as is, or q = clamp(floor(v / s + 0.5) + z, 0, 255)
// (round half up, as everywhere in qtrain).  The product is clamped to
// +-1024 first so the int conversion is defined for any v (NaN -> 0).
// i == 0 starts the range.
static inline void qt_lw_put(qt_lw_t *w, size_t i, float v) {
    if (i == 0 || v < w->vmin) {
        w->vmin = v;
    }
    if (i == 0 || v > w->vmax) {
        w->vmax = v;
    }
    if (w->q) {
        float u = v * w->inv_scale;
        if (!(u > -1024.0f)) {
            u = -1024.0f;
        }
        if (u > 1024.0f) {
            u = 1024.0f;
        }
        int32_t k = qt_round_f32(u) + w->zero;
        w->q[i] = (uint8_t)(k < 0 ? 0 : (k > 255 ? 255 : k));
    } else {
        w->f[i] = v;
    }
}

// After the last put: record the observed range in the output's qparams.
static inline void qt_lw_done(const qt_lw_t *w, const qt_lout_t *o) {
    if (o->q) {
        qt_qp_observe(o->qp, w->vmin, w->vmax);
    }
}

#endif
