// Quantization core shared by every kernel (Dense, Conv, losses).
//
// Plain C99, no MicroPython headers: builds on the host for sanitizers/fuzzing.
// Every float operation here is a single IEEE-754 binary32 operation in a fixed
// order (no libm, no fused multiply-add: -std=c99 implies -ffp-contract=off),
// so x64, Cortex-M4F (FPU) and Cortex-M0 (libgcc soft float) produce the same
// bits, and the numpy golden model (host_tools/qtrain_host/golden/quant.py)
// reproduces them exactly.
//
// Tensor quantization record ("qparams"), Python side array('f', QT_QP_LEN):
//   [0] scale s (> 0)         real = s * (q - z)
//   [1] zero point z          integer 0..255
//   [2] range min  (<= 0)     the (moving-average) real range s, z come from
//   [3] range max  (>= 0)
//   [4] alpha                 moving-average factor, 0 = fixed range
//   [5] observed min          exact real min/max of the values produced since
//   [6] observed max          the last qt_qp_update (merged over a batch)
//   [7] observation count     0 = nothing observed yet
// A kernel that produces a tensor only *records* what it saw ([5..7]); the range
// and s, z change only in qt_qp_update, which the caller runs once per step (or
// batch) after the backward pass.  So a tensor's s, z stay the same between its
// forward use and its backward use (ReLU backward needs the forward z).
#ifndef QT_QUANT_H
#define QT_QUANT_H
#include <stdint.h>
#include <stddef.h>

enum {
    QT_QP_SCALE = 0,
    QT_QP_ZERO = 1,
    QT_QP_MIN = 2,
    QT_QP_MAX = 3,
    QT_QP_ALPHA = 4,
    QT_QP_OBS_MIN = 5,
    QT_QP_OBS_MAX = 6,
    QT_QP_OBS_N = 7,
    QT_QP_LEN = 8,
};

// Smallest real range width: a tensor that is all zeros still gets a valid
// scale (s = QT_MIN_RANGE / 255) instead of s = 0.
#define QT_MIN_RANGE (1.0e-6f)

// Fixed-point multiplier: real m ~= mult * 2^-shift, mult in [2^30, 2^31)
// (or 0), shift in 1..62.  Built once per call from the float scales, applied
// to int32 accumulators with one 64-bit multiply, an add and a shift.
typedef struct {
    int32_t mult;
    int32_t shift;
} qt_fixmul_t;

// Largest range width: a scale stays finite (w / 255) for any finite range.
#define QT_MAX_RANGE (3.0e38f)

// round(x), halves rounded up (floor(x + 0.5)).
int32_t qt_round_f32(float x);
// floor(x), saturating: x >= 2^31 (or +inf) gives INT32_MAX, x < -2^31 (or
// -inf) INT32_MIN, NaN gives 0.  Never undefined behaviour; callers that add
// to the result clamp x first.
int32_t qt_floor_f32(float x);

// a + b saturated to +-(2^31 - 1) (symmetric, so the result can be negated):
// gradient sums that a caller accumulates over a batch must not wrap.
static inline int32_t qt_sat_add_i32(int32_t a, int32_t b) {
    int32_t s;
    if (__builtin_add_overflow(a, b, &s)) {
        return b > 0 ? INT32_MAX : -INT32_MAX;
    }
    return s == INT32_MIN ? -INT32_MAX : s;
}

// METHOD 1: [fmin, fmax] widened to include 0 -> s = (fmax - fmin) / 255,
// z = round(-fmin / s) clamped to 0..255.  Width below QT_MIN_RANGE is widened.
void qt_qparams_from_range(float fmin, float fmax, float *s, int32_t *z);

// m > 0 (finite) -> fixed-point multiplier; m <= 0 gives mult 0.  Exact: the
// 24-bit float mantissa is shifted into mult, so no rounding happens here.
qt_fixmul_t qt_fixmul_from_f32(float m);

// round(x * m) with halves rounded up, |x| < 2^31, as int64 (never overflows:
// |x * mult| < 2^62).
static inline int64_t qt_fixmul_apply64(int32_t x, qt_fixmul_t f) {
#if defined(__ARM_ARCH_6M__)
    // Cortex-M0: no 32x32->64 multiply instruction, and GCC calls libgcc's
    // generic __aeabi_lmul (64x64) plus a 64-bit shift helper.  The same
    // exact result from four 16x16 products and 32-bit halves, inline.
    uint32_t m = (uint32_t)f.mult;
    int32_t s = f.shift;
    if ((uint32_t)x + 32768u < 65536u && s >= 32) {
        // -2^15 <= x < 2^15 and shift >= 32 (a multiplier below 1/2: most
        // requantizations of small accumulators): two 32-bit products.
        // x m = x mh 2^16 + x ml with |x mh|, |x ml| < 2^31, so
        // floor((x m + 2^(s-1)) / 2^s)
        //   = floor((x mh + floor(x ml / 2^16) + 2^(t-1)) / 2^t), t = s - 16,
        // where -2^30 - 2^15 <= X < 2^30 - 2^15 (so X + 2^(t-1) fits for
        // t <= 31), and t >= 32 gives 0.
        int32_t t = s - 16;
        int32_t X = x * (int32_t)(m >> 16) + ((x * (int32_t)(m & 0xffffu)) >> 16);
        return t > 31 ? 0 : (int64_t)((X + (1 << (t - 1))) >> t);
    }
    uint32_t ax = x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
    uint32_t al = ax & 0xffffu, ah = ax >> 16, ml = m & 0xffffu, mh = m >> 16;
    uint32_t ll = al * ml, mid = al * mh + ah * ml;   // mid < 2^32: mh < 2^15, ah <= 2^15
    uint32_t lo = ll + (mid << 16);
    uint32_t hi = ah * mh + (mid >> 16) + (lo < ll);
    if (x < 0) {                       // negate the 64-bit product
        lo = ~lo + 1u;
        hi = ~hi + (lo == 0u);
    }
    // + 2^(shift-1), then arithmetic shift right by shift (1..62)
    uint32_t rl = s <= 32 ? (1u << (s - 1)) : 0u, rh = s > 32 ? (1u << (s - 33)) : 0u;
    uint32_t nl = lo + rl;
    hi = hi + rh + (nl < lo);
    lo = nl;
    int32_t rhi;
    uint32_t rlo;
    if (s >= 32) {
        rlo = (uint32_t)((int32_t)hi >> (s - 32));
        rhi = (int32_t)hi >> 31;
    } else {
        rlo = (lo >> s) | (hi << (32 - s));
        rhi = (int32_t)hi >> s;
    }
    return (int64_t)(((uint64_t)(uint32_t)rhi << 32) | rlo);
#else
    int64_t p = (int64_t)x * f.mult;
    return (p + ((int64_t)1 << (f.shift - 1))) >> f.shift;
#endif
}

// The same, saturated to int32 (m may exceed 1).
static inline int32_t qt_fixmul_apply(int32_t x, qt_fixmul_t f) {
    int64_t v = qt_fixmul_apply64(x, f);
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

static inline uint8_t qt_clamp_u8(int32_t v, int32_t lo) {
    return (uint8_t)(v < lo ? lo : (v > 255 ? 255 : v));
}

// Requantize an int32 accumulator to uint8: clamp(round(acc * m) + z, lo, 255).
// lo = 0 for no activation, lo = z for a fused ReLU (clamp at the real 0).
// The int64 result is clamped before narrowing, so any multiplier is safe.
static inline uint8_t qt_requant_u8(int32_t acc, qt_fixmul_t f, int32_t z, int32_t lo) {
    // Multipliers below 1/2 (the usual case) have shift >= 32: the result
    // fits in 32 bits (|acc * m| < 2^30), so the clamp is 32-bit, and on ARMv7
    // it is the high word of one SMLAL, shifted.  Same value as below.
    if (f.shift >= 32) {
#if defined(__ARM_ARCH_6M__)
        int32_t v = (int32_t)qt_fixmul_apply64(acc, f) + z;
#else
        int64_t p = (int64_t)acc * f.mult + ((int64_t)1 << (f.shift - 1));
        int32_t v = ((int32_t)(p >> 32) >> (f.shift - 32)) + z;
#endif
        return (uint8_t)(v < lo ? lo : (v > 255 ? 255 : v));
    }
    int64_t v = qt_fixmul_apply64(acc, f) + z;
    return (uint8_t)(v < lo ? lo : (v > 255 ? 255 : (int32_t)v));
}

// Record the exact real range [rmin, rmax] of values just produced into a
// qparams record (items 5..7), merging with earlier observations.
void qt_qp_observe(float *qp, float rmin, float rmax);

// Apply the recorded observation: range = (1 - alpha) * range + alpha * obs
// (skipped if alpha == 0 or nothing was observed), widen to include 0, then s, z
// from the range (only if alpha > 0: a fixed range keeps the caller's s, z);
// clears the observation.
void qt_qp_update(float *qp);

// Re-map stored values from (s_old, z_old) to (s_new, z_new):
// q' = clamp(round((q - z_old) * s_old / s_new) + z_new).  Uses a 256-entry
// table on the stack (so the cost per value is one lookup).
void qt_remap_u8(uint8_t *q, size_t n, float s_old, int32_t z_old, float s_new, int32_t z_new);

// The PRNG for stochastic rounding and sampling: xorshift32, state in a
// caller-owned uint32 (never 0), so a run is reproducible from its seed.
static inline uint32_t qt_rng_next(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

// sqrt for x >= 0, correctly rounded (qt_sqrtf: integer digit by digit, no
// libm, no float division), so the same bits on every arch and in the golden
// model (numpy's float32 sqrt).  x <= 0 (or nan) gives 0.
float qt_sqrt_f32(float x);

// f * 2^k (|k| <= 126) with the bits of the float multiply.  On the Cortex-M0
// (soft float) an exponent add instead of an __aeabi_fmul call when f and the
// result are normal; the multiply otherwise (zero, denormal, inf/nan, or a
// result out of the normal range).  Elsewhere simply the multiply.
#if defined(__ARM_ARCH_6M__)
float qt_scale2_f32(float f, int32_t k);
#else
static inline float qt_scale2_f32(float f, int32_t k) {
    union {
        float f;
        uint32_t u;
    } p;
    p.u = (uint32_t)(127 + k) << 23;       // 2^k, a normal float
    return f * p.f;
}
#endif

// Fill helpers: a plain fill loop would be turned into a memset call by GCC,
// which a natmod cannot link; these are compiled without that pattern.
void qt_fill_i32(int32_t *p, size_t n, int32_t v);
void qt_fill_u8(uint8_t *p, size_t n, uint8_t v);
void qt_fill_f32(float *p, size_t n, float v);

#endif
