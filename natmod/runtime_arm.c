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

// A float's bits and back (through a union: C99's defined way to reinterpret).
static inline uint32_t float_bits(float f) {
    union {
        float f;
        uint32_t u;
    } b;
    b.f = f;
    return b.u;
}

static inline float float_from_bits(uint32_t u) {
    union {
        float f;
        uint32_t u;
    } b;
    b.u = u;
    return b.f;
}

int64_t __aeabi_f2lz(float f);
uint64_t __aeabi_f2ulz(float f);

#if QT_RUNTIME_L2F
float __aeabi_ul2f(uint64_t v);
float __aeabi_l2f(int64_t v);

// 2^k for 0 <= k <= 127, exactly.
static float pow2f(int32_t k) {
    return float_from_bits((uint32_t)(127 + k) << 23);
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
    const uint32_t u = float_bits(f);
    if (u >> 31) {
        uint64_t r = abs_f2u64(u, (uint64_t)INT64_MAX + 1u);
        return r > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)r;
    }
    return (int64_t)abs_f2u64(u, (uint64_t)INT64_MAX);
}

uint64_t __aeabi_f2ulz(float f) {
    const uint32_t u = float_bits(f);
    if (u >> 31) {
        return 0;
    }
    return abs_f2u64(u, UINT64_MAX);
}

#if QT_RUNTIME_FMUL || QT_RUNTIME_FDIV
// The multiply's and the divide's last step: the 24-bit mantissa m (leading
// one included) of a result with biased exponent e, rounded up if `up`
// (round to nearest, ties to even, decided by the caller), packed with the
// sign into *bits.  0 if the rounded result is not a normal float: the
// caller then hands the operands to libgcc.
static inline int round_pack_normal(uint32_t sign, int32_t e, uint32_t m, uint32_t up, uint32_t *bits) {
    if (up) {
        m++;
        if (m == 0x1000000u) {
            m >>= 1;
            e++;
        }
    }
    if (e < 1 || e > 254) {
        return 0;
    }
    *bits = sign + ((uint32_t)(e - 1) << 23) + m;
    return 1;
}
#endif

#if QT_RUNTIME_FMUL
// Float multiply for the Cortex-M0: libgcc's soft-fp __aeabi_fmul costs ~116
// instructions a call (~1900 calls per ConvVAE step: the standardization's
// and the latent's float work).  When both operands are normal and the
// product is normal (about every call), the product of the two 24-bit
// mantissas in 16-bit halves (four MULS), rounded to nearest, ties to even,
// is the IEEE result; everything else (zeros, subnormals, infinities, NaNs,
// overflow, underflow) goes to libgcc's, renamed qt_gcc_fmul in the module's
// copy of libgcc (natmod/Makefile), so every case has libgcc's bits.
float __aeabi_fmul(float a, float b);
float qt_gcc_fmul(float a, float b);

__attribute__((optimize("O2"))) float __aeabi_fmul(float a, float b) {
    const uint32_t xu = float_bits(a), yu = float_bits(b);
    const uint32_t ex = (xu >> 23) & 0xffu, ey = (yu >> 23) & 0xffu;
    if (ex - 1u < 254u && ey - 1u < 254u) {
        const uint32_t mx = (xu & 0x7fffffu) | 0x800000u, my = (yu & 0x7fffffu) | 0x800000u;
        const uint32_t xl = mx & 0xffffu, xh = mx >> 16, yl = my & 0xffffu, yh = my >> 16;
        const uint32_t ll = xl * yl, mid = xh * yl + xl * yh;     // mid < 2^25
        const uint32_t lo = ll + (mid << 16);
        const uint32_t hi = xh * yh + (mid >> 16) + (lo < ll);  // product hi:lo in [2^46, 2^48)
        int32_t e = (int32_t)(ex + ey) - 127;
        uint32_t m, rest;           // 24-bit mantissa, the bits below it (MSB = round bit)
        if (hi >= 0x8000u) {
            m = (hi << 8) | (lo >> 24);
            rest = lo << 8;
            e++;
        } else {
            m = (hi << 9) | (lo >> 23);
            rest = lo << 9;
        }
        uint32_t r;
        if (round_pack_normal((xu ^ yu) & 0x80000000u, e, m,
            rest > 0x80000000u || (rest == 0x80000000u && (m & 1u)), &r)) {
            return float_from_bits(r);
        }
    }
    return qt_gcc_fmul(a, b);
}
#endif

#if QT_RUNTIME_FDIV
// Float divide for the Cortex-M0, as the multiply above: libgcc's soft-fp
// __aeabi_fdiv costs ~375 instructions a call (~300 calls per ConvVAE step:
// the standardization's means and step sizes, the range records).  Normal
// operands and quotient: 25 quotient bits by restoring division (24 of
// mantissa and the round bit; the remainder is the sticky bit), rounded to
// nearest, ties to even.  Every other case goes to libgcc's, renamed
// qt_gcc_fdiv in the module's copy of libgcc.
float __aeabi_fdiv(float a, float b);
float qt_gcc_fdiv(float a, float b);

__attribute__((optimize("O2"))) float __aeabi_fdiv(float a, float b) {
    const uint32_t xu = float_bits(a), yu = float_bits(b);
    const uint32_t ex = (xu >> 23) & 0xffu, ey = (yu >> 23) & 0xffu;
    if (ex - 1u < 254u && ey - 1u < 254u) {
        uint32_t mx = (xu & 0x7fffffu) | 0x800000u;
        const uint32_t my = (yu & 0x7fffffu) | 0x800000u;
        int32_t e = (int32_t)ex - (int32_t)ey + 127;
        if (mx < my) {              // quotient in [1, 2): mx in [my, 2 my)
            mx <<= 1;
            e--;
        }
        uint32_t q = 0;             // rem < 2 my < 2^25 throughout
#if defined(__ARM_ARCH_6M__)
        // One bit: C = (rem >= my) from the compare (the subtract keeps it
        // set), q = 2 q + C, rem shifted.  4.5 instructions a bit; GCC's
        // loop took 12.
#define QT_FDIV_BIT(L) \
        "cmp %[r], %[d]\n\t" \
        "bcc " L "f\n\t" \
        "subs %[r], %[r], %[d]\n\t" \
        L ":\n\t" \
        "adcs %[q], %[q]\n\t" \
        "lsls %[r], %[r], #1\n\t"
        uint32_t n = 5;
        __asm__(
            ".syntax unified\n\t"
            "1:\n\t"
            QT_FDIV_BIT("2") QT_FDIV_BIT("3") QT_FDIV_BIT("4") QT_FDIV_BIT("5") QT_FDIV_BIT("6")
            "subs %[n], #1\n\t"
            "bne 1b\n\t"
            : [r] "+l"(mx), [q] "+l"(q), [n] "+l"(n)
            : [d] "l"(my)
            : "cc");
#undef QT_FDIV_BIT
#else
        for (int32_t i = 0; i < 25; i++) {
            const uint32_t ge = mx >= my;
            q = (q << 1) | ge;
            mx = (ge ? mx - my : mx) << 1;
        }
#endif
        const uint32_t m = q >> 1;
        uint32_t r;
        if (round_pack_normal((xu ^ yu) & 0x80000000u, e, m, (q & 1u) && (mx != 0u || (m & 1u)), &r)) {
            return float_from_bits(r);
        }
    }
    return qt_gcc_fdiv(a, b);
}
#endif

#if QT_RUNTIME_FCMP
// Float compares for the Cortex-M0 (AEABI __aeabi_fcmp*: 1 if the relation
// holds, 0 if not or if either operand is NaN).  libgcc's are a wrapper
// around the C soft-fp compare (~31 instructions a call, ~2300 calls per
// ConvVAE step: range checks, clamps, the update's guards); these compare
// the operands' bits as integers: a float's sign-magnitude bits made two's
// complement order like the float compare, -0 and +0 alike.
int __aeabi_fcmpeq(float a, float b);
int __aeabi_fcmplt(float a, float b);
int __aeabi_fcmple(float a, float b);
int __aeabi_fcmpgt(float a, float b);
int __aeabi_fcmpge(float a, float b);

// A NaN among the operands: exponent all ones and a nonzero mantissa, i.e.
// the magnitude shifted left above infinity's.
static inline int fcmp_nan(uint32_t x, uint32_t y) {
    return (x << 1) > 0xff000000u || (y << 1) > 0xff000000u;
}

// The bits in the order of the float compare: sign-magnitude made two's
// complement (-0 and +0 both 0).
static inline int32_t fcmp_key(uint32_t x) {
    const int32_t s = (int32_t)x >> 31;
    return (int32_t)((x ^ ((uint32_t)s >> 1)) - (uint32_t)s);
}

int __aeabi_fcmpeq(float a, float b) {
    const uint32_t x = float_bits(a), y = float_bits(b);
    return !fcmp_nan(x, y) && fcmp_key(x) == fcmp_key(y);
}

int __aeabi_fcmplt(float a, float b) {
    const uint32_t x = float_bits(a), y = float_bits(b);
    return !fcmp_nan(x, y) && fcmp_key(x) < fcmp_key(y);
}

int __aeabi_fcmple(float a, float b) {
    const uint32_t x = float_bits(a), y = float_bits(b);
    return !fcmp_nan(x, y) && fcmp_key(x) <= fcmp_key(y);
}

// a > b is b < a (a tail call: the module's size is the Pico's heap).
int __aeabi_fcmpgt(float a, float b) {
    return __aeabi_fcmplt(b, a);
}

int __aeabi_fcmpge(float a, float b) {
    return __aeabi_fcmple(b, a);
}
#endif
