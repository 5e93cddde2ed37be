// 64-bit integer <-> float conversions for the ARM builds, in place of
// libgcc's.
//
// libgcc implements __aeabi_f2lz / __aeabi_f2ulz, and for armv6m also
// __aeabi_l2f / __aeabi_ul2f (QT_RUNTIME_L2F), through double precision; on cores without a double FPU (all of ours) that
// links the whole soft-double library (add, multiply, compare, conversions:
// ~5 KB) into the module, which is loaded into the board's heap.  These
// versions use 32-bit integer and single-precision operations only and give
// the same results: int -> float correctly rounded (nearest, ties to even),
// float -> int truncated toward zero; out-of-range inputs saturate and NaN
// gives 0 (what the C standard leaves undefined).  mpy_ld resolves symbols
// from our objects before it searches libgcc, so these are the ones used.
#include <stdint.h>

int64_t __aeabi_f2lz(float f);
uint64_t __aeabi_f2ulz(float f);

#if QT_RUNTIME_L2F
float __aeabi_ul2f(uint64_t v);
float __aeabi_l2f(int64_t v);

// 2^k for 0 <= k <= 127, exactly.
static float pow2f(int32_t k) {
    union {
        uint32_t u;
        float f;
    } p;
    p.u = (uint32_t)(127 + k) << 23;
    return p.f;
}

float __aeabi_ul2f(uint64_t v) {
    uint32_t hi = (uint32_t)(v >> 32);
    if (hi == 0) {
        return (float)(uint32_t)v;
    }
    // Keep the top 32 significant bits; the dropped ones only matter as a
    // sticky bit, which lands far below float's rounding position (bit 8 of
    // 32), so the 32-bit conversion rounds exactly as the 64-bit value would.
    int32_t k = 32 - __builtin_clz(hi);
    uint32_t top = (uint32_t)(v >> k);
    uint32_t sticky = ((uint32_t)v & ((1u << k) - 1u)) != 0u;
    return (float)(top | sticky) * pow2f(k);
}

float __aeabi_l2f(int64_t v) {
    if (v < 0) {
        return -__aeabi_ul2f((uint64_t)0 - (uint64_t)v);
    }
    return __aeabi_ul2f((uint64_t)v);
}
#endif

// |f| as an integer, truncated, saturated to `max`.
static uint64_t abs_f2u64(uint32_t bits, uint64_t max) {
    int32_t e = (int32_t)((bits >> 23) & 0xffu) - 127;   // unbiased exponent
    if (e < 0) {
        return 0;
    }
    if (e == 128) {                                      // inf or NaN (exponent bits all 1)
        return (bits & 0x7fffffu) ? 0 : max;
    }
    if (e > 63) {
        return max;
    }
    uint64_t m = (bits & 0x7fffffu) | 0x800000u;
    uint64_t r = e >= 23 ? m << (e - 23) : m >> (23 - e);
    return r > max ? max : r;
}

int64_t __aeabi_f2lz(float f) {
    union {
        float f;
        uint32_t u;
    } b;
    b.f = f;
    if (b.u >> 31) {
        uint64_t r = abs_f2u64(b.u, (uint64_t)INT64_MAX + 1u);
        return r > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)r;
    }
    return (int64_t)abs_f2u64(b.u, (uint64_t)INT64_MAX);
}

uint64_t __aeabi_f2ulz(float f) {
    union {
        float f;
        uint32_t u;
    } b;
    b.f = f;
    if (b.u >> 31) {
        return 0;
    }
    return abs_f2u64(b.u, UINT64_MAX);
}
