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
typedef union {
    float f;
    uint32_t u;
} qt_f32_bits_t;

static inline uint32_t float_bits(float f) {
    const qt_f32_bits_t b = { .f = f };
    return b.u;
}

static inline float float_from_bits(uint32_t u) {
    const qt_f32_bits_t b = { .u = u };
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

#if QT_RUNTIME_SOFTFP
// Float subtract, multiply, divide and int -> float for the Cortex-M0,
// every case IEEE single precision, round to nearest, ties to even
// (subnormals, zeros, infinities; any NaN operand gives a quiet NaN, an
// invalid operation the default NaN).  libgcc's soft-fp versions are one
// complete C implementation per operation (~2.5 KB for these four, the
// subtract a second copy of the add) and slow (~116 instructions a
// multiply, ~375 a divide); these share one rounding step and keep the
// normal case short.  A ConvVAE step makes a few thousand such calls (the
// standardization, the step sizes, the range records, the latent).
float __aeabi_fadd(float a, float b);     // libgcc's
float __aeabi_fsub(float a, float b);
float __aeabi_fmul(float a, float b);
float __aeabi_fdiv(float a, float b);
float __aeabi_i2f(int32_t v);
float __aeabi_ui2f(uint32_t v);

#define QT_F32_INF 0x7f800000u
#define QT_F32_DEFAULT_NAN 0x7fc00000u

// sig >> d, with a 1 in bit 0 if any 1 was shifted out (d >= 1).
static uint32_t shift_right_jam(uint32_t sig, uint32_t d) {
    if (d >= 31u) {
        return sig != 0u;
    }
    return (sig >> d) | ((sig << (32u - d)) != 0u);
}

// The result with sign `sign` (bit 31), biased exponent exp + 1 and the
// significand sig, whose leading one is at bit 30 (or below it for a
// subnormal with exp 0) and whose low 7 bits are the bits past float's
// (bit 0 sticky): rounded to nearest, ties to even.  A round up that
// carries out of the significand carries into the exponent (the pack adds).
__attribute__((always_inline)) static inline uint32_t round_pack_bits(uint32_t sign, int32_t exp, uint32_t sig) {
    const uint32_t rest = sig & 0x7fu;
    sig = (sig + 0x40u) >> 7;
    sig &= ~(uint32_t)(rest == 0x40u ? 1u : 0u);   // a tie: to even
    return sign + ((uint32_t)exp << 23) + sig;
}

// The same for exponents outside the normal range (exp < 0 or >= 0xfd):
// overflow to infinity, or a subnormal (or zero) from the significand
// shifted down with its sticky bit.  Out of line: rare.
__attribute__((noinline)) static uint32_t round_pack_edge(uint32_t sign, int32_t exp, uint32_t sig) {
    if (exp < 0) {
        sig = shift_right_jam(sig, (uint32_t)-exp);
        exp = 0;
    } else if (exp > 0xfd || sig + 0x40u >= 0x80000000u) {
        return sign | QT_F32_INF;
    }
    return round_pack_bits(sign, exp, sig);
}

__attribute__((always_inline)) static inline uint32_t round_pack(uint32_t sign, int32_t exp, uint32_t sig) {
    if ((uint32_t)exp >= 0xfdu) {
        return round_pack_edge(sign, exp, sig);
    }
    return round_pack_bits(sign, exp, sig);
}

// A NaN operand as a quiet NaN.
static inline uint32_t quiet_nan(uint32_t bits) {
    return bits | 0x400000u;
}

// A nonzero subnormal's mantissa m (biased exponent field 0) shifted so its
// leading one is at bit 23, and the exponent that makes it the same value.
static void normalize_subnormal(int32_t *e, uint32_t *m) {
    const int32_t shift = __builtin_clz(*m) - 8;
    *m <<= shift;
    *e = 1 - shift;
}

// a - b is a + (-b): libgcc's add (as fast as one of ours in C) without its
// separate ~800-byte subtract.
float __aeabi_fsub(float a, float b) {
    return __aeabi_fadd(a, float_from_bits(float_bits(b) ^ 0x80000000u));
}

// Zeros, infinities and NaNs among a product's or quotient's operands:
// *r the result and 1, or 0 (both finite and nonzero, perhaps subnormal).
// `div`: a / b instead of a * b.
static int mul_div_special(uint32_t xu, uint32_t yu, int div, uint32_t *r) {
    const uint32_t sign = (xu ^ yu) & 0x80000000u;
    const uint32_t x2 = xu << 1, y2 = yu << 1;     // magnitudes, shifted
    if (x2 > 0xff000000u || y2 > 0xff000000u) {
        *r = quiet_nan(x2 > 0xff000000u ? xu : yu);
        return 1;
    }
    const int xinf = x2 == 0xff000000u, yinf = y2 == 0xff000000u;
    const int xzero = x2 == 0u, yzero = y2 == 0u;
    if (div) {
        // a / b: inf / inf and 0 / 0 invalid; inf / y and x / 0 infinite;
        // 0 / y and x / inf zero
        if ((xinf && yinf) || (xzero && yzero)) {
            *r = QT_F32_DEFAULT_NAN;
        } else if (xinf || yzero) {
            *r = sign | QT_F32_INF;
        } else if (xzero || yinf) {
            *r = sign;
        } else {
            return 0;
        }
    } else {
        // a * b: inf * 0 invalid; else inf, zero
        if ((xinf && yzero) || (xzero && yinf)) {
            *r = QT_F32_DEFAULT_NAN;
        } else if (xinf || yinf) {
            *r = sign | QT_F32_INF;
        } else if (xzero || yzero) {
            *r = sign;
        } else {
            return 0;
        }
    }
    return 1;
}

// Multiply: the product of the two 24-bit mantissas (leading ones at bit
// 23) in 16-bit halves (four MULS: the M0 has no long multiply), in
// [2^46, 2^48), cut to 31 bits with a sticky bit and rounded once; exp is
// the sum of the operands' biased exponents - 128.
__attribute__((always_inline)) static inline uint32_t fmul_mantissas(uint32_t sign, int32_t exp, uint32_t mx,
    uint32_t my) {
    const uint32_t xl = mx & 0xffffu, xh = mx >> 16, yl = my & 0xffffu, yh = my >> 16;
    const uint32_t ll = xl * yl, mid = xh * yl + xl * yh;     // mid < 2^25
    const uint32_t lo = ll + (mid << 16);
    const uint32_t hi = xh * yh + (mid >> 16) + (lo < ll);  // product hi:lo in [2^46, 2^48)
    uint32_t sig;
    if (hi >= 0x8000u) {
        sig = (hi << 15) | (lo >> 17) | ((lo & 0x1ffffu) != 0u);
        exp++;
    } else {
        sig = (hi << 16) | (lo >> 16) | ((lo & 0xffffu) != 0u);
    }
    return round_pack(sign, exp, sig);
}

// Divide: 25 quotient bits of the mantissas (leading ones at bit 23) by
// restoring division (24 of mantissa and the round bit; the remainder is
// the sticky bit), rounded once; exp is the operands' biased exponents'
// difference + 126.
__attribute__((always_inline)) static inline uint32_t fdiv_mantissas(uint32_t sign, int32_t exp, uint32_t mx,
    uint32_t my) {
    if (mx < my) {                  // quotient in [1, 2): mx in [my, 2 my)
        mx <<= 1;
        exp--;
    }
    uint32_t q = 0;                 // rem < 2 my < 2^25 throughout
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
    return round_pack(sign, exp, (q << 6) | (mx != 0u));
}

// The product (div 0) or quotient (div 1) of two mantissas with their
// leading ones at bit 23 and biased exponents ex, ey (<= 0 for a
// normalized subnormal): the one place for each result's exponent.
__attribute__((always_inline)) static inline uint32_t mul_div_mantissas(uint32_t sign, int32_t ex, int32_t ey,
    uint32_t mx, uint32_t my, int div) {
    return div ? fdiv_mantissas(sign, ex - ey + 126, mx, my) : fmul_mantissas(sign, ex + ey - 128, mx, my);
}

// A product or quotient with an operand that is not a normal float: the
// special cases, else the subnormals normalized (exponent <= 0) and the
// mantissas' multiply or divide (its own copy: the normal operands' path
// has them inline, a call there costs ~20 instructions a multiply).
__attribute__((noinline)) static uint32_t mul_div_slow(uint32_t xu, uint32_t yu, int div) {
    uint32_t r;
    if (mul_div_special(xu, yu, div, &r)) {
        return r;
    }
    int32_t ex = (int32_t)((xu >> 23) & 0xffu), ey = (int32_t)((yu >> 23) & 0xffu);
    uint32_t mx = xu & 0x7fffffu, my = yu & 0x7fffffu;
    if (ex == 0) {
        normalize_subnormal(&ex, &mx);
    }
    if (ey == 0) {
        normalize_subnormal(&ey, &my);
    }
    return mul_div_mantissas((xu ^ yu) & 0x80000000u, ex, ey, mx | 0x800000u, my | 0x800000u, div);
}

// Both operands normal (about every call): straight to the mantissas
// (inline: the two entries below each get their own copy).
__attribute__((always_inline)) static inline float mul_div(float a, float b, int div) {
    const uint32_t xu = float_bits(a), yu = float_bits(b);
    const uint32_t ex = (xu >> 23) & 0xffu, ey = (yu >> 23) & 0xffu;
    if (ex - 1u < 254u && ey - 1u < 254u) {
        return float_from_bits(mul_div_mantissas((xu ^ yu) & 0x80000000u, (int32_t)ex, (int32_t)ey,
            (xu & 0x7fffffu) | 0x800000u, (yu & 0x7fffffu) | 0x800000u, div));
    }
    return float_from_bits(mul_div_slow(xu, yu, div));
}

__attribute__((optimize("O2"))) float __aeabi_fmul(float a, float b) {
    return mul_div(a, b, 0);
}

__attribute__((optimize("O2"))) float __aeabi_fdiv(float a, float b) {
    return mul_div(a, b, 1);
}

// int -> float: a magnitude below 2^24 is exact, its leading one moved to
// bit 23 (the common case: counts, indices); larger ones have the leading
// one moved to bit 30 (bit 0 sticky for magnitudes >= 2^31) and are
// rounded once.
static uint32_t u32_to_f32_bits(uint32_t sign, uint32_t u) {
    if (u == 0u) {
        return 0u;
    }
    if (u < 0x1000000u) {
        const int32_t shift = __builtin_clz(u) - 8;
        return sign + ((uint32_t)(149 - shift) << 23) + (u << shift);
    }
    if (u >= 0x80000000u) {
        return round_pack(sign, 0x9d, (u >> 1) | (u & 1u));
    }
    const int32_t shift = __builtin_clz(u) - 1;
    return round_pack(sign, 0x9c - shift, u << shift);
}

float __aeabi_ui2f(uint32_t v) {
    return float_from_bits(u32_to_f32_bits(0u, v));
}

float __aeabi_i2f(int32_t v) {
    return v < 0 ? float_from_bits(u32_to_f32_bits(0x80000000u, 0u - (uint32_t)v))
                 : float_from_bits(u32_to_f32_bits(0u, (uint32_t)v));
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

#if QT_RUNTIME_IDIV
// Signed 32-bit divide for the Cortex-M0 (no divide instruction): AEABI
// __aeabi_idiv (quotient) and __aeabi_idivmod (quotient in r0, remainder in
// r1: a 64-bit return value, low word first) on libgcc's unsigned divide.
// libgcc's signed one is a second 468-byte copy of the unsigned one's
// unrolled compare-subtract steps; this costs a few instructions a call
// (a tail call when both operands are >= 0), and the signs otherwise.  C's
// division truncates toward zero: the magnitudes' quotient, negative when
// the operands' signs differ; the remainder has the dividend's sign.
uint64_t __aeabi_uidivmod(uint32_t n, uint32_t d);   // libgcc's
int32_t __aeabi_idiv(int32_t n, int32_t d);
int64_t __aeabi_idivmod(int32_t n, int32_t d);

int64_t __aeabi_idivmod(int32_t n, int32_t d) {
    if ((n | d) >= 0) {
        // both >= 0 (about every call: positions, lengths, strides): the
        // unsigned divide's results, a tail call
        return (int64_t)__aeabi_uidivmod((uint32_t)n, (uint32_t)d);
    }
    // 0u - x: the magnitude, |INT32_MIN| included.
    const uint64_t qr = __aeabi_uidivmod(n < 0 ? 0u - (uint32_t)n : (uint32_t)n,
        d < 0 ? 0u - (uint32_t)d : (uint32_t)d);
    uint32_t q = (uint32_t)qr, r = (uint32_t)(qr >> 32);
    if ((n ^ d) < 0) {
        q = 0u - q;
    }
    if (n < 0) {
        r = 0u - r;
    }
    return (int64_t)((uint64_t)q | ((uint64_t)r << 32));
}

int32_t __aeabi_idiv(int32_t n, int32_t d) {
    return (int32_t)(uint32_t)__aeabi_idivmod(n, d);
}
#endif
