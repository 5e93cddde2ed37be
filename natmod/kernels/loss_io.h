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
#include "mathf.h"

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

// On cores without an FPU (Cortex-M0, -M3) each float compare or float->int
// conversion is a libgcc call (~40-100 instructions); there the range
// tracking and the rounding below work on the float's bits with integer
// instructions instead.  Both paths give identical results (same min/max,
// including how -0/+0 ties and NaN are treated, same rounding); the tests
// check both against the same golden model (x64/M4 use the float path, M0
// the integer one).  QT_LOSS_INT_FLOAT=0/1 forces a path (host builds).
#ifndef QT_LOSS_INT_FLOAT
#if defined(__arm__) && !defined(__ARM_FP)
#define QT_LOSS_INT_FLOAT 1
#else
#define QT_LOSS_INT_FLOAT 0
#endif
#endif

// Write-side state, set up once per call.
typedef struct {
    uint8_t *q;
    float *f;
    float inv_scale;   // 1 / s, so each element costs a multiply, not a divide
    int32_t zero;
    float vmin, vmax;  // exact range of the values written so far
    int32_t kmin, kmax; // their order keys (integer path)
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
    w->kmin = 0;
    w->kmax = 0;
}

// Integer key of a non-NaN float's bits that orders like the float compare:
// sign-magnitude to two's complement, with -0 mapped onto +0 (they compare
// equal).
static inline int32_t qt_fkey(uint32_t b) {
    if ((int32_t)b >= 0) {
        return (int32_t)b;
    }
    return b == 0x80000000u ? 0 : (int32_t)(b ^ 0x7fffffffu);
}

static inline int qt_isnan_bits(uint32_t b) {
    return (b & 0x7fffffffu) > 0x7f800000u;
}

// floor(x) for |x| < 2^23 from the bits (equals qt_floor_f32).
static inline int32_t qt_floor_bits(float x) {
    uint32_t b = qt_f2u(x);
    int32_t e = (int32_t)((b >> 23) & 0xffu) - 127;
    uint32_t neg = b >> 31;
    if (e < 0) {                                   // |x| < 1: 0, or -1 below 0
        return (neg && (b & 0x7fffffffu)) ? -1 : 0;
    }
    uint32_t m = (b & 0x007fffffu) | 0x00800000u;
    int32_t sh = 23 - e;
    if (sh <= 0) {                                 // |x| >= 2^23: an integer
        int32_t ip = (int32_t)(m << -sh);
        return neg ? -ip : ip;
    }
    int32_t ip = (int32_t)(m >> sh);
    if (!neg) {
        return ip;
    }
    return (m & ((1u << sh) - 1u)) ? -ip - 1 : -ip;
}

// Store v at i: float as is, or q = clamp(floor(v / s + 0.5) + z, 0, 255)
// (round half up, as everywhere in qtrain).  The product is clamped to
// +-1024 first so the int conversion is defined for any v (NaN -> 0).
// i == 0 starts the range; later values replace the min (max) only if
// strictly smaller (larger), and NaN never does (the float compare's rule).
//
// On the Cortex-M0 GCC keeps it out of line in each kernel file that uses it
// (-Os): one copy (loss_bce.c defines QT_LW_PUT_DEFINE) instead of two saves
// 280 bytes of the module (the Pico's heap), at no cost (a call either way).
#if defined(__ARM_ARCH_6M__)
void qt_lw_put(qt_lw_t *w, size_t i, float v);
#endif
#if !defined(__ARM_ARCH_6M__) || defined(QT_LW_PUT_DEFINE)
#if defined(__ARM_ARCH_6M__)
void qt_lw_put(qt_lw_t *w, size_t i, float v) {
#else
static inline void qt_lw_put(qt_lw_t *w, size_t i, float v) {
#endif
#if QT_LOSS_INT_FLOAT
    uint32_t b = qt_f2u(v);
    if (!qt_isnan_bits(b)) {
        int32_t k = qt_fkey(b);
        if (i == 0 || k < w->kmin) {
            w->kmin = k;
            w->vmin = v;
        }
        if (i == 0 || k > w->kmax) {
            w->kmax = k;
            w->vmax = v;
        }
    } else if (i == 0) {
        w->vmin = w->vmax = v;                     // stays NaN, as with floats
        w->kmin = INT32_MIN;
        w->kmax = INT32_MAX;
    }
    if (w->q) {
        float u = v * w->inv_scale;
        uint32_t ub = qt_f2u(u);
        int32_t k;
        if (qt_isnan_bits(ub) || qt_fkey(ub) <= (int32_t)(0xc4800000u ^ 0x7fffffffu)) {
            k = -1024;                             // u <= -1024 (0xc4800000) or NaN
        } else if (qt_fkey(ub) > (int32_t)0x44800000) {
            k = 1024;                              // u > 1024 (0x44800000)
        } else {
            k = qt_floor_bits(u + 0.5f);
        }
        k += w->zero;
        w->q[i] = (uint8_t)(k < 0 ? 0 : (k > 255 ? 255 : k));
    } else {
        w->f[i] = v;
    }
#else
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
#endif
}
#endif

// After the last put: record the observed range in the output's qparams.
static inline void qt_lw_done(const qt_lw_t *w, const qt_lout_t *o) {
    if (o->q) {
        qt_qp_observe(o->qp, w->vmin, w->vmax);
    }
}

#endif
