// Portable single-precision math (see mathf.h for why and what is guaranteed).
//
// The algorithms are the textbook ones (range reduction by ln 2 with a
// two-part constant, then a short polynomial); the polynomials are plain
// Taylor series, truncated where the next term is < 0.15 ulp on the reduced
// range, so no fitted coefficients are involved.  Every constant is written
// with 9 significant digits, which the compiler rounds to the float whose bits
// are given in the comment; golden/loss.py uses those exact bits.
#include "mathf.h"

#define QT_INF_BITS  (0x7f800000u)
#define QT_NAN_BITS  (0x7fc00000u)

// ln 2 split in two: LN2_HI has 15 significant bits, so k * LN2_HI is exact
// for |k| < 512, and x - k * LN2_HI loses nothing.  LN2_LO = ln 2 - LN2_HI.
#define QT_LN2_HI    (0.693145752f)     // 0x3f317200
#define QT_LN2_LO    (1.42860677e-06f)  // 0x35bfbe8e
#define QT_LOG2E     (1.44269502f)      // 0x3fb8aa3b

// 1/k! for k = 2..7 (exp on |r| <= ln2/2: the r^8/8! term is < 0.13 ulp).
#define QT_E2 (0.5f)                // 0x3f000000
#define QT_E3 (0.166666672f)        // 0x3e2aaaab
#define QT_E4 (0.0416666679f)       // 0x3d2aaaab
#define QT_E5 (0.00833333377f)      // 0x3c088889
#define QT_E6 (0.00138888892f)      // 0x3ab60b61
#define QT_E7 (0.000198412701f)     // 0x39500d01

// 2/(2k+1) for k = 1..4: log(1+f) = 2 atanh(s), s = f/(2+f), |s| <= 0.1716;
// the next term contributes < 1e-9 absolute.
#define QT_L1 (0.666666687f)        // 0x3f2aaaab
#define QT_L2 (0.400000006f)        // 0x3ecccccd
#define QT_L3 (0.285714298f)        // 0x3e924925
#define QT_L4 (0.222222224f)        // 0x3e638e39
// and k = 5..7 for qt_log1p_unitf (|s| <= 1/3 there: the z^8 term is < 0.03 ulp)
#define QT_L5 (0.181818187f)        // 0x3e3a2e8c
#define QT_L6 (0.15384616f)         // 0x3e1d89d9
#define QT_L7 (0.13333334f)         // 0x3e088889

float qt_expf(float x) {
    if (x != x) {
        return x;                                   // NaN
    }
    // Largest float whose exp is finite: 88.7228317 (0x42b17217).
    if (x > 88.7228317f) {
        return qt_u2f(QT_INF_BITS);
    }
    // exp(-104) < 2^-150 (half the smallest subnormal): rounds to 0.
    if (x < -104.0f) {
        return 0.0f;
    }
    // x = k ln2 + r, k = nearest integer to x / ln2, |r| <= ~ln2/2.
    float t = x * QT_LOG2E;
    int32_t k = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f));
    float kf = (float)k;
    float r = (x - kf * QT_LN2_HI) - kf * QT_LN2_LO;
    // e^r = 1 + (r + r^2 * (1/2 + r/6 + ... + r^5/7!)); adding the two large
    // terms last keeps the rounding error of the tail small.
    float q = QT_E7;
    q = q * r + QT_E6;
    q = q * r + QT_E5;
    q = q * r + QT_E4;
    q = q * r + QT_E3;
    q = q * r + QT_E2;
    float p = 1.0f + (r + (r * r) * q);
    // Scale by 2^k, k in [-150, 128].  Outside the normal exponent range, in
    // two steps, so the only rounding is the final one (into a subnormal).
    if (k > 127) {
        return (p * qt_u2f(254u << 23)) * 2.0f;     // k == 128: p * 2^127 * 2
    }
    if (k < -126) {
        return (p * qt_u2f((uint32_t)(k + 64 + 127) << 23)) * qt_u2f((uint32_t)(127 - 64) << 23);
    }
    return p * qt_u2f((uint32_t)(k + 127) << 23);
}

float qt_logf(float x) {
    uint32_t ix = qt_f2u(x);
    if (ix >= QT_INF_BITS) {                        // +inf, NaN, or sign bit set
        if ((ix & 0x7fffffffu) > QT_INF_BITS || ix == QT_INF_BITS) {
            return x;                               // NaN or +inf
        }
        if ((ix & 0x7fffffffu) == 0) {
            return -qt_u2f(QT_INF_BITS);            // log(-0) = -inf
        }
        return qt_u2f(QT_NAN_BITS);                 // log(negative) = NaN
    }
    if (ix == 0) {
        return -qt_u2f(QT_INF_BITS);
    }
    int32_t e = 0;
    if (ix < 0x00800000u) {                         // subnormal: scale by 2^25
        ix = qt_f2u(x * 33554432.0f);
        e = -25;
    }
    e += (int32_t)(ix >> 23) - 127;
    uint32_t mb = ix & 0x007fffffu;
    // m in [sqrt(1/2), sqrt(2)] so that f = m - 1 is small on both sides.
    float m;
    if (mb > 0x3504f3u) {                           // mantissa of sqrt(2)
        m = qt_u2f(mb | 0x3f000000u);               // m/2, in [0.707, 1)
        e += 1;
    } else {
        m = qt_u2f(mb | 0x3f800000u);               // in [1, 1.414]
    }
    float f = m - 1.0f;                             // exact (Sterbenz)
    float s = f / (2.0f + f);
    float z = s * s;
    float R = z * (QT_L1 + z * (QT_L2 + z * (QT_L3 + z * QT_L4)));
    float hfsq = 0.5f * f * f;
    float ef = (float)e;
    // log(1+f) = f - hfsq + s*(hfsq + R): f carries the bulk exactly, the
    // correction terms are small, so their rounding errors stay small.
    return ef * QT_LN2_HI - ((hfsq - (s * (hfsq + R) + ef * QT_LN2_LO)) - f);
}

float qt_log1pf(float x) {
    float u = 1.0f + x;
    if (u == 1.0f) {
        return x;                                   // |x| < 2^-24: log1p(x) = x
    }
    if (u > 3.40282347e38f) {
        return u;                                   // +inf
    }
    // log(u) * x/(u-1) cancels the rounding error made in forming u = 1 + x
    // (Goldberg, "What every computer scientist should know...", thm. 4).
    return qt_logf(u) * (x / (u - 1.0f));
}

float qt_log1p_unitf(float f) {
    // The logf core with f = x exact: log(1+f) = f - hfsq + s*(hfsq + R),
    // s = f/(2+f) <= 1/3, R = sum 2 z^k/(2k+1), z = s^2 <= 1/9.
    float s = f / (2.0f + f);
    float z = s * s;
    float R = z * (QT_L1 + z * (QT_L2 + z * (QT_L3 + z * (QT_L4 + z * (QT_L5 + z * (QT_L6 + z * QT_L7))))));
    float hfsq = 0.5f * f * f;
    return f - (hfsq - s * (hfsq + R));
}

float qt_sqrtf(float x) {
    uint32_t ix = qt_f2u(x);
    if ((ix & 0x7fffffffu) == 0) {
        return x;                                   // +0, -0
    }
    if (ix >= QT_INF_BITS) {
        if (ix == QT_INF_BITS || (ix & 0x7fffffffu) > QT_INF_BITS) {
            return x;                               // +inf, NaN
        }
        return qt_u2f(QT_NAN_BITS);                 // negative
    }
    int32_t e = (int32_t)(ix >> 23);
    uint32_t m = ix & 0x007fffffu;
    if (e == 0) {                                   // subnormal: normalize
        while ((m & 0x00800000u) == 0) {
            m <<= 1;
            e--;
        }
        e++;
    } else {
        m |= 0x00800000u;
    }
    // x = (m / 2^23) * 2^e with m in [2^23, 2^24).  Make e even (fold one
    // factor 2 into m), then sqrt(x) = sqrt(m / 2^23) * 2^(e/2).
    e -= 127;
    if (e & 1) {
        m <<= 1;
        e -= 1;
    }
    // Digit-by-digit binary square root, one result bit per step: s holds
    // twice the root found so far, m the remainder (shifted left one bit per
    // step so it stays in 32 bits).  q gets 25 bits: 24 of mantissa and one
    // rounding bit.
    m <<= 1;
    uint32_t q = 0, s = 0, bit = 0x01000000u;
    while (bit != 0) {
        uint32_t t = s + bit;
        if (t <= m) {
            s = t + bit;
            m -= t;
            q += bit;
        }
        m <<= 1;
        bit >>= 1;
    }
    // Round to nearest.  An exact tie cannot happen (the square of a 25-bit
    // odd number has more than 24 significant bits), so round up iff the
    // rounding bit is set.
    q += (q & 1u);
    // q >> 1 is in [2^23, 2^24] including the implicit bit, which adds one to
    // the exponent field, hence 126; a carry from rounding lands there too.
    return qt_u2f(((uint32_t)(e / 2 + 126) << 23) + (q >> 1));
}

float qt_sigmoidf(float x) {
    // e = exp(-|x|) is in (0, 1], so neither branch overflows.
    float e = qt_expf(qt_u2f(qt_f2u(x) | 0x80000000u));
    float d = 1.0f + e;
    return x >= 0.0f ? 1.0f / d : e / d;
}
