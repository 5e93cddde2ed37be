// Gaussian draws on top of xorshift32: see rng.h.
#include "rng.h"
#include "quant.h"
#include "mathf.h"

// Replacement for the state 0 (any nonzero constant would do).
#define QT_RNG_ZERO_STATE (0x9e3779b9u)

uint32_t qt_rng_seed(uint32_t seed) {
    // "lowbias32" integer hash (C. Wellons): a bijection on uint32 with good
    // avalanche, so nearby seeds give unrelated states.
    uint32_t x = seed;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x ? x : QT_RNG_ZERO_STATE;
}

// Uniform in [-1, 1) on a grid of 2^-23: the top 24 bits of one draw (the
// low bits of xorshift32 are the weakest).  Exact in float.
static inline float qt_rng_pm1(uint32_t *state) {
    int32_t k = (int32_t)(qt_rng_next(state) >> 8) - 0x800000;
    return (float)k * (1.0f / 8388608.0f);
}

void qt_rng_normal(uint32_t *state, float *out, size_t n) {
    if (*state == 0) {
        *state = QT_RNG_ZERO_STATE;    // xorshift32 would stay 0 and never accept
    }
    for (size_t i = 0; i < n; i += 2) {
        float u, v, s;
        do {
            u = qt_rng_pm1(state);
            v = qt_rng_pm1(state);
            s = u * u + v * v;
        } while (s >= 1.0f || s == 0.0f);
        // sqrt(-2 ln s / s): s in (2^-46, 1), so the factor is finite.
        float f = qt_sqrtf((-2.0f * qt_logf(s)) / s);
        out[i] = u * f;
        if (i + 1 < n) {
            out[i + 1] = v * f;
        }
    }
}
