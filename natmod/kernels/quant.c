// Quantization core: see quant.h.
#include "quant.h"
#include "mathf.h"

typedef union {
    float f;
    uint32_t u;
} qt_f32_bits_t;

int32_t qt_floor_f32(float x) {
    // A float->int conversion of a value outside int32 (or NaN) is undefined
    // behaviour in C, and the targets disagree on it (x64: INT32_MIN, ARM: 0
    // for NaN).  Decide from the bits (integer work: cheap on a soft-float
    // M0): |x| >= 2^31 or inf saturates, NaN is 0.
    qt_f32_bits_t b;
    b.f = x;
    if (((b.u >> 23) & 0xffu) >= 127u + 31u) {
        if ((b.u & 0x7fffffffu) > 0x7f800000u) {
            return 0;                      // NaN
        }
        return (b.u >> 31) ? INT32_MIN : INT32_MAX;
    }
    int32_t i = (int32_t)x;               // truncates toward 0
    if ((float)i > x) {
        i -= 1;
    }
    return i;
}

int32_t qt_round_f32(float x) {
    return qt_floor_f32(x + 0.5f);
}

void qt_qparams_from_range(float fmin, float fmax, float *s, int32_t *z) {
    if (fmin > 0.0f) {
        fmin = 0.0f;
    }
    if (fmax < 0.0f) {
        fmax = 0.0f;
    }
    float w = fmax - fmin;
    if (!(w >= QT_MIN_RANGE)) {
        w = QT_MIN_RANGE;
    }
    if (w > QT_MAX_RANGE) {              // e.g. -3e38..3e38 overflows to inf
        w = QT_MAX_RANGE;
    }
    float sc = w / 255.0f;
    float zf = -fmin / sc;
    int32_t zi = zf > 300.0f ? 255 : qt_round_f32(zf);
    *s = sc;
    *z = zi < 0 ? 0 : (zi > 255 ? 255 : zi);
}

qt_fixmul_t qt_fixmul_from_f32(float m) {
    qt_fixmul_t r = { 0, 1 };
    qt_f32_bits_t b;
    b.f = m;
    int32_t e = (int32_t)((b.u >> 23) & 0xffu);
    if ((b.u >> 31) || e == 0 || e == 0xff) {
        return r;                          // <= 0, denormal, inf or nan: 0
    }
    // m = mant24 * 2^(e - 150); mult = mant24 << 7 in [2^30, 2^31).
    int32_t mult = (int32_t)(((b.u & 0x7fffffu) | 0x800000u) << 7);
    int32_t shift = 157 - e;
    if (shift < 1) {                       // m >= 2^30: saturate (never useful)
        mult = 0x7fffffff;
        shift = 1;
    }
    if (shift > 62) {                      // m < 2^-32: keep the product in range
        int32_t d = shift - 62;
        mult = d > 31 ? 0 : (mult >> d);
        shift = 62;
    }
    r.mult = mult;
    r.shift = shift;
    return r;
}

void qt_qp_observe(float *qp, float rmin, float rmax) {
    if (qp[QT_QP_OBS_N] > 0.0f) {
        if (rmin > qp[QT_QP_OBS_MIN]) {
            rmin = qp[QT_QP_OBS_MIN];
        }
        if (rmax < qp[QT_QP_OBS_MAX]) {
            rmax = qp[QT_QP_OBS_MAX];
        }
    }
    qp[QT_QP_OBS_MIN] = rmin;
    qp[QT_QP_OBS_MAX] = rmax;
    qp[QT_QP_OBS_N] += 1.0f;
}

void qt_qp_update(float *qp) {
    float a = qp[QT_QP_ALPHA];
    if (a > 0.0f && qp[QT_QP_OBS_N] > 0.0f) {
        float b = 1.0f - a;
        float lo = b * qp[QT_QP_MIN] + a * qp[QT_QP_OBS_MIN];
        float hi = b * qp[QT_QP_MAX] + a * qp[QT_QP_OBS_MAX];
        if (lo > 0.0f) {
            lo = 0.0f;
        }
        if (hi < 0.0f) {
            hi = 0.0f;
        }
        qp[QT_QP_MIN] = lo;
        qp[QT_QP_MAX] = hi;
        float s;
        int32_t z;
        qt_qparams_from_range(lo, hi, &s, &z);
        qp[QT_QP_SCALE] = s;
        qp[QT_QP_ZERO] = (float)z;
    }
    qp[QT_QP_OBS_MIN] = 0.0f;
    qp[QT_QP_OBS_MAX] = 0.0f;
    qp[QT_QP_OBS_N] = 0.0f;
}

void qt_remap_u8(uint8_t *q, size_t n, float s_old, int32_t z_old, float s_new, int32_t z_new) {
    uint8_t lut[256];
    qt_fixmul_t f = qt_fixmul_from_f32(s_old / s_new);
    for (int32_t v = 0; v < 256; v++) {
        lut[v] = qt_requant_u8(v - z_old, f, z_new, 0);
    }
    for (size_t i = 0; i < n; i++) {
        q[i] = lut[q[i]];
    }
}

#if defined(__ARM_ARCH_6M__)
float qt_scale2_f32(float f, int32_t k) {
    qt_f32_bits_t b;
    b.f = f;
    const int32_t e = (int32_t)((b.u >> 23) & 0xffu);
    if (e != 0 && e != 0xff && e + k >= 1 && e + k <= 254) {
        b.u += (uint32_t)k << 23;          // exact: the sign and mantissa stay
        return b.f;
    }
    b.u = (uint32_t)(127 + k) << 23;       // 2^k, a normal float
    return f * b.f;
}
#endif

float qt_sqrt_f32(float x) {
    // The correctly rounded integer square root (mathf.c): ~25 shift/compare
    // steps instead of the four float divisions of Newton's method, each a
    // ~200-instruction libgcc call in soft float on the M0, once per filter
    // and per call in every update.
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP && defined(__ARM_FP) && (__ARM_FP & 4)
    // The M4F's VSQRT.F32 is IEEE's correctly rounded root (round to
    // nearest, the FPSCR default), so the same bits as qt_sqrtf in ~14
    // cycles instead of ~280 instructions (three calls a Dense update).
    // Normal x only: a flush-to-zero FPSCR would zero a subnormal.
    if (x >= 1.17549435e-38f) {
        float r;
        __asm__("vsqrt.f32 %0, %1" : "=t"(r) : "t"(x));
        return r;
    }
#endif
    return x > 0.0f ? qt_sqrtf(x) : 0.0f;
}

#if defined(__GNUC__) && !defined(__clang__)
#define QT_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define QT_NO_LIBCALLS
#endif

#if defined(__ARM_ARCH_6M__)
// Four words per STM (the conv updates zero each filter's int32 gradient
// row, ~66 calls per ConvVAE step): GCC's loop stored a word in 4
// instructions.
QT_NO_LIBCALLS void qt_fill_i32(int32_t *p, size_t n, int32_t v) {
    int32_t *end = p + n, *end4 = p + (n & ~(size_t)3);
    if (p != end4) {
        register int32_t a __asm__("r2") = v, b __asm__("r3") = v, c __asm__("r4") = v, d __asm__("r5") = v;
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            "stmia %[p]!, {%[a], %[b], %[c], %[d]}\n\t"
            "cmp %[p], %[e]\n\t"
            "bne 1b\n\t"
            : [p] "+l"(p)
            : [a] "l"(a), [b] "l"(b), [c] "l"(c), [d] "l"(d), [e] "l"(end4)
            : "cc", "memory");
    }
    while (p != end) {
        *p++ = v;
    }
}
#elif defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4: four words a pass (the direct Conv2d update fills its padded
// planes, 900 words for Conv 16->32: GCC's loop took 3 instructions a word).
QT_NO_LIBCALLS void qt_fill_i32(int32_t *p, size_t n, int32_t v) {
    for (; n >= 4; n -= 4, p += 4) {
        p[0] = v;
        p[1] = v;
        p[2] = v;
        p[3] = v;
    }
    for (; n; n--) {
        *p++ = v;
    }
}
#else
QT_NO_LIBCALLS void qt_fill_i32(int32_t *p, size_t n, int32_t v) {
    for (size_t i = 0; i < n; i++) {
        p[i] = v;
    }
}
#endif

QT_NO_LIBCALLS void qt_fill_u8(uint8_t *p, size_t n, uint8_t v) {
    for (size_t i = 0; i < n; i++) {
        p[i] = v;
    }
}

QT_NO_LIBCALLS void qt_fill_f32(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) {
        p[i] = v;
    }
}
