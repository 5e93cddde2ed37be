// Dense kernels, uint8: see dense.h.
#include "dense.h"
#include "conv2d_core.h"   // qt_conv_fin_run: the per-output finish shared with the conv cores

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
// (ld32u, uxtb16_ror8: conv2d_core.h)
// PKHBT/PKHTB: (lo16 of a, lo16 of b) and (hi16 of a, hi16 of b).
static inline uint32_t pk_lo(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t pk_hi(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#define SMLAD(a, b, c) __smlad((int16x2_t)(a), (int16x2_t)(b), (c))
#endif

uint32_t qt_dot_u8(const uint8_t *w, const uint8_t *x, int32_t n, uint32_t *wsum) {
    uint32_t acc = 0, ws = 0;
    int32_t j = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // 4 MACs per 2 loads + 4 UXTB16 + 2 SMLAD (the values 0..255 are valid
    // int16 lanes) + 1 USADA8 for the row sum.
    int32_t sacc = 0;
    for (; j + 8 <= n; j += 8) {
        uint32_t wv = ld32u(w + j), xv = ld32u(x + j);
        uint32_t wv2 = ld32u(w + j + 4), xv2 = ld32u(x + j + 4);
        sacc = SMLAD(__uxtb16(wv), __uxtb16(xv), sacc);
        sacc = SMLAD(uxtb16_ror8(wv), uxtb16_ror8(xv), sacc);
        ws = __usada8(wv, 0, ws);
        sacc = SMLAD(__uxtb16(wv2), __uxtb16(xv2), sacc);
        sacc = SMLAD(uxtb16_ror8(wv2), uxtb16_ror8(xv2), sacc);
        ws = __usada8(wv2, 0, ws);
    }
    acc = (uint32_t)sacc;
#else
    // Cortex-M0 / generic: byte loads only (the M0 faults on unaligned words);
    // unrolled by 4 so the loop overhead is spread over 4 MACs.
    for (; j + 4 <= n; j += 4) {
        uint32_t w0 = w[j], w1 = w[j + 1], w2 = w[j + 2], w3 = w[j + 3];
        acc += w0 * x[j];
        acc += w1 * x[j + 1];
        acc += w2 * x[j + 2];
        acc += w3 * x[j + 3];
        ws += w0 + w1 + w2 + w3;
    }
#endif
    for (; j < n; j++) {
        uint32_t wj = w[j];
        acc += wj * x[j];
        ws += wj;
    }
    *wsum = ws;
    return acc;
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Two rows against the same x: x is loaded and unpacked once for both, so
// 8 MACs cost 3 loads, 6 UXTB16, 4 SMLAD and 2 USADA8.
static void dot2_u8(const uint8_t *w0, const uint8_t *w1, const uint8_t *x, int32_t n,
    uint32_t d[2], uint32_t ws[2]) {
    int32_t a0 = 0, a1 = 0;
    uint32_t s0 = 0, s1 = 0;
    int32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        uint32_t xv = ld32u(x + j);
        uint32_t xe = __uxtb16(xv), xo = uxtb16_ror8(xv);
        uint32_t a = ld32u(w0 + j), b = ld32u(w1 + j);
        a0 = SMLAD(__uxtb16(a), xe, a0);
        a0 = SMLAD(uxtb16_ror8(a), xo, a0);
        s0 = __usada8(a, 0, s0);
        a1 = SMLAD(__uxtb16(b), xe, a1);
        a1 = SMLAD(uxtb16_ror8(b), xo, a1);
        s1 = __usada8(b, 0, s1);
    }
    uint32_t u0 = (uint32_t)a0, u1 = (uint32_t)a1;
    for (; j < n; j++) {
        uint32_t xj = x[j], p = w0[j], q = w1[j];
        u0 += p * xj;
        u1 += q * xj;
        s0 += p;
        s1 += q;
    }
    d[0] = u0;
    d[1] = u1;
    ws[0] = s0;
    ws[1] = s1;
}
#endif

// The scratch holds x - z_x: as int16 on the M4 (pairs for SMLAD), as int32
// elsewhere (the Cortex-M0 has no LDRSH with an immediate offset).
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
typedef int16_t qt_xs_t;
#else
typedef int32_t qt_xs_t;
#endif

// x - z_x into xs.  On the M4 each group of 4 is stored as (x0, x2, x1, x3),
// the lane order UXTB16 / UXTB16 ror 8 give the weights, so one LDRD feeds
// two SMLADs.  Returns sum_j (x_j - z_x).
static int32_t fill_xs(const uint8_t *x, int32_t n, int32_t zx, qt_xs_t *xs) {
    int32_t s = 0, j = 0;
    for (; j + 4 <= n; j += 4) {
        int32_t v0 = (int32_t)x[j] - zx, v1 = (int32_t)x[j + 1] - zx;
        int32_t v2 = (int32_t)x[j + 2] - zx, v3 = (int32_t)x[j + 3] - zx;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        xs[j] = (qt_xs_t)v0;
        xs[j + 1] = (qt_xs_t)v2;
        xs[j + 2] = (qt_xs_t)v1;
#else
        xs[j] = (qt_xs_t)v0;
        xs[j + 1] = (qt_xs_t)v1;
        xs[j + 2] = (qt_xs_t)v2;
#endif
        xs[j + 3] = (qt_xs_t)v3;
        s += v0 + v1 + v2 + v3;
    }
    for (; j < n; j++) {
        int32_t v = (int32_t)x[j] - zx;
        xs[j] = (qt_xs_t)v;
        s += v;
    }
    return s;
}

// sum_j w0[j] (x_j - z_x) and the same for w1, from xs (fill_xs).
static void dot2_xs(const uint8_t *w0, const uint8_t *w1, const qt_xs_t *xs, int32_t n, int32_t d[2]) {
    int32_t a0 = 0, a1 = 0, j = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // 8 MACs: 2 LDR + 1 LDRD + 4 UXTB16 + 4 SMLAD (+ CMP/BNE): 13 instructions.
    // Hand-scheduled: GCC spills in this loop (too many live values).
    int32_t n4 = n & ~3;
    if (n4) {
        const uint8_t *p0 = w0, *p1 = w1, *end = w0 + n4;
        const qt_xs_t *px = xs;
        uint32_t a, b, xl, xh, t;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[a], [%[p0]], #4\n\t"
            "ldr %[b], [%[p1]], #4\n\t"
            "ldrd %[xl], %[xh], [%[px]], #8\n\t"
            "uxtb16 %[t], %[a]\n\t"
            "smlad %[a0], %[t], %[xl], %[a0]\n\t"
            "uxtb16 %[a], %[a], ror #8\n\t"
            "smlad %[a0], %[a], %[xh], %[a0]\n\t"
            "uxtb16 %[t], %[b]\n\t"
            "smlad %[a1], %[t], %[xl], %[a1]\n\t"
            "uxtb16 %[b], %[b], ror #8\n\t"
            "smlad %[a1], %[b], %[xh], %[a1]\n\t"
            "cmp %[p0], %[end]\n\t"
            "bne 1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [p0] "+r"(p0), [p1] "+r"(p1), [px] "+r"(px),
            [a] "=&r"(a), [b] "=&r"(b), [xl] "=&r"(xl), [xh] "=&r"(xh), [t] "=&r"(t)
            : [end] "r"(end)
            : "cc", "memory");
        j = n4;
    }
#elif defined(__ARM_ARCH_6M__)
    // Cortex-M0: 8 MACs in 4 LDR + 8 LDRB + 8 MULS + 8 ADDS + 3 pointer
    // increments + CMP/BNE = 33 instructions, all in the 8 low registers.
    // One column (x byte offset XO, weight byte offset WO) of both rows:
#define QT_M0_DOT2_COL(XO, WO) \
            "ldr %[x], [%[px], #" XO "]\n\t" \
            "ldrb %[t0], [%[p0], #" WO "]\n\t" \
            "ldrb %[t1], [%[p1], #" WO "]\n\t" \
            "muls %[t0], %[x], %[t0]\n\t" \
            "muls %[t1], %[x], %[t1]\n\t" \
            "adds %[a0], %[a0], %[t0]\n\t" \
            "adds %[a1], %[a1], %[t1]\n\t"
    int32_t n4 = n & ~3;
    if (n4) {
        const uint8_t *p0 = w0, *p1 = w1, *end = w0 + n4;
        const qt_xs_t *px = xs;
        int32_t x, t0, t1;
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            QT_M0_DOT2_COL("0", "0")
            QT_M0_DOT2_COL("4", "1")
            QT_M0_DOT2_COL("8", "2")
            QT_M0_DOT2_COL("12", "3")
            "adds %[px], #16\n\t"
            "adds %[p0], #4\n\t"
            "adds %[p1], #4\n\t"
            "cmp %[p0], %[end]\n\t"
            "bne 1b\n\t"
            : [a0] "+l"(a0), [a1] "+l"(a1), [p0] "+l"(p0), [p1] "+l"(p1), [px] "+l"(px),
            [x] "=&l"(x), [t0] "=&l"(t0), [t1] "=&l"(t1)
            : [end] "h"(end)
            : "cc", "memory");
        j = n4;
    }
#else
    for (; j + 2 <= n; j += 2) {
        int32_t x0 = xs[j], x1 = xs[j + 1];
        a0 += (int32_t)w0[j] * x0;
        a1 += (int32_t)w1[j] * x0;
        a0 += (int32_t)w0[j + 1] * x1;
        a1 += (int32_t)w1[j + 1] * x1;
    }
#endif
    for (; j < n; j++) {
        a0 += (int32_t)w0[j] * xs[j];
        a1 += (int32_t)w1[j] * xs[j];
    }
    d[0] = a0;
    d[1] = a1;
}

static int32_t dot1_xs(const uint8_t *w0, const qt_xs_t *xs, int32_t n) {
    int32_t a0 = 0, j = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    const uint32_t *xp = (const uint32_t *)(const void *)xs;
    for (; j + 4 <= n; j += 4, xp += 2) {
        uint32_t a = ld32u(w0 + j);
        a0 = SMLAD(__uxtb16(a), xp[0], a0);
        a0 = SMLAD(uxtb16_ror8(a), xp[1], a0);
    }
#endif
    for (; j < n; j++) {
        a0 += (int32_t)w0[j] * xs[j];
    }
    return a0;
}

#if defined(__ARM_ARCH_6M__)
// The Cortex-M0's short form of round(x m) for an error step (|x| < 2^8)
// and a multiplier of 1/2 or more from a float (mult = m24 2^7, 8 <= shift
// <= 31): the update's per-row constants A_i and bias steps.  |x| m24 <
// 2^32 - 2^24, so one 32-bit product and a rounding in uint32 are exact
// (~15 instructions instead of the four-product form's ~45):
//   round(x m24 / 2^t), t = shift - 7 in 1..24, halves up.
// Its constants once per call (t = 0: the form does not apply), so a row
// costs a MULS, an add and a shift inline.
typedef struct {
    uint32_t m24, half;
    int32_t t;
} qt_short_mul_t;

static void short_mul_init(qt_short_mul_t *s, qt_fixmul_t f) {
    const int32_t t = f.shift - 7;
    s->t = (f.mult & 127) == 0 && t >= 1 && t <= 24 ? t : 0;
    s->m24 = (uint32_t)f.mult >> 7;
    s->half = s->t ? 1u << (t - 1) : 0u;
}

// round(x m) for |x| < 2^8 and s->t != 0; |result| < 2^31.
static inline int32_t short_mul(int32_t x, const qt_short_mul_t *s) {
    const uint32_t ax = x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
    const uint32_t p = ax * s->m24 + s->half;
    return x < 0 ? -(int32_t)((p - 1u) >> s->t) : (int32_t)(p >> s->t);
}
#endif

// qt_fixmul_apply64 for the per-row (not per-MAC) uses here: out of line on
// the Cortex-M0, where each inline expansion is ~180 bytes of code and the
// call costs little next to it; inline elsewhere, where it is one SMULL/IMUL
// (out of line it cost 13 % of a Dense 10 -> 1568 update on the Cortex-M4).
#if defined(__ARM_ARCH_6M__)
__attribute__((noinline))
#else
inline
#endif
static int64_t fixmul64(int32_t x, qt_fixmul_t f) {
#if defined(__ARM_ARCH_6M__)
    qt_short_mul_t s;
    short_mul_init(&s, f);
    if ((uint32_t)x + 255u < 511u && s.t) {
        return short_mul(x, &s);
    }
#endif
    return qt_fixmul_apply64(x, f);
}

// acc + round(b m) (the bias term, m = s_b / (s_w s_x)), saturated to
// +-(2^31 - 1) like the golden model's int64 sum.  |acc| <= n 255^2 <
// 2^31 - 2^24 (n <= 32767).  Short forms where they are exact: on the M0
// for |b| < 2^18 (a real bias below 4 at the package's bias scale 2^-16)
// with a multiplier below 1, two 32-bit products and a term below 2^18,
// so no saturation (~10 instructions instead of a call to the general
// form's ~60 a row); elsewhere the high word for a multiplier below 1/2 (SMLAL on
// the M4; the general form's 64-bit shift took ~40 instructions a row).
static inline int32_t add_bias(int32_t acc, int32_t bi, const qt_conv_fin_t *bf) {
#if defined(__ARM_ARCH_6M__)
    if (bf->fast && (uint32_t)bi + (1u << 18) < (1u << 19)) {
        return acc + qt_conv_fin_short(bi, bf);
    }
#else
    if (bf->shift >= 32) {
        return qt_sat_add_i32(acc, qt_mul_hi(bi, bf->mult, (uint64_t)bf->rnd, bf->shift - 32));
    }
#endif
    const qt_fixmul_t m = { bf->mult, bf->shift };
    const int64_t t = (int64_t)acc + fixmul64(bi, m);
    return t > INT32_MAX ? INT32_MAX : (t < -INT32_MAX ? -INT32_MAX : (int32_t)t);
}

// Rows per block of the forward pass (an int32 array on the stack).
#define QT_DENSE_FWD_BLOCK 32

// Blocks of rows: the accumulators (dot products with the zero-point terms,
// then the bias) into acc, then the conv cores' finish over the block (ReLU,
// exact range, requantization: one call per block with the constants in
// registers, the hand-written loop on the M0) instead of a call per row,
// which dominated a layer with few inputs (10 -> 1568: ~120 of ~230
// instructions a row on the M0).
void dense_forward_u8(const uint8_t *x, const uint8_t *w, const int32_t *b, uint8_t *y,
    int32_t m, int32_t n, const qt_dense_fwd_t *q, int32_t acc_range[2], int32_t *xs_buf) {
    qt_xs_t *xs = (qt_xs_t *)xs_buf;
    const qt_conv_rq_t rq = { 0, 0, q->zy, q->out, q->bias, q->relu, NULL, 0 };
    const qt_conv_rq_t brq = { 0, 0, 0, q->bias, q->bias, 0, NULL, 0 };
    qt_conv_fin_t fin, bfin;
    qt_conv_fin_init(&fin, &rq, y);
    qt_conv_fin_init(&bfin, &brq, y);
    // sum_j (w_ij - zw)(x_j - zx) = sum_j w_ij xs_j - zw sum_j xs_j (with xs),
    // = sum w x - zx sum_j w_ij - zw sum_j x_j + n zw zx (without: the row sum
    // comes out of the dot loop for free, USADA8 on the M4, one add per 4 MACs
    // elsewhere, so no cache has to follow weight updates).  Intermediate
    // terms may exceed int32; uint32 arithmetic wraps mod 2^32 and the true
    // result fits in int32, so the final cast is exact.
    const uint32_t zx = (uint32_t)q->zx, zw = (uint32_t)q->zw;
    uint32_t c0;
    if (xs) {
        c0 = 0u - zw * (uint32_t)fill_xs(x, n, q->zx, xs);
    } else {
        uint32_t xsum = 0;
        for (int32_t j = 0; j < n; j++) {
            xsum += x[j];
        }
        c0 = (uint32_t)n * zw * zx - zw * xsum;
    }
    int32_t mm[2] = { INT32_MAX, INT32_MIN };
    int32_t acc[QT_DENSE_FWD_BLOCK];
    for (int32_t i0 = 0; i0 < m; i0 += QT_DENSE_FWD_BLOCK) {
        const int32_t cnt = m - i0 < QT_DENSE_FWD_BLOCK ? m - i0 : QT_DENSE_FWD_BLOCK;
        const uint8_t *wr = w + (size_t)i0 * (size_t)n;
        int32_t r = 0;
        if (xs) {
            int32_t d[2];
            for (; r + 2 <= cnt; r += 2, wr += 2 * n) {
                dot2_xs(wr, wr + n, xs, n, d);
                acc[r] = (int32_t)((uint32_t)d[0] + c0);
                acc[r + 1] = (int32_t)((uint32_t)d[1] + c0);
            }
            if (r < cnt) {
                acc[r] = (int32_t)((uint32_t)dot1_xs(wr, xs, n) + c0);
            }
        } else {
            uint32_t d[2], ws[2];
            while (r < cnt) {
                int32_t np = 1;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
                if (r + 1 < cnt) {
                    dot2_u8(wr, wr + n, x, n, d, ws);
                    np = 2;
                } else
#endif
                {
                    d[0] = qt_dot_u8(wr, x, n, &ws[0]);
                }
                for (int32_t h = 0; h < np; h++, r++, wr += n) {
                    acc[r] = (int32_t)(d[h] - zx * ws[h] + c0);
                }
            }
        }
        if (b) {
            for (r = 0; r < cnt; r++) {
                acc[r] = add_bias(acc[r], b[i0 + r], &bfin);
            }
        }
        qt_conv_fin_run(acc, NULL, cnt, y + i0, 1, 0, &fin, mm);
    }
    acc_range[0] = mm[0];
    acc_range[1] = mm[1];
}

// ---- backward ---------------------------------------------------------------

// acc[j] += c * w[j] for one weight row (the transposed product, row by row, so
// w is read contiguously).  4 columns per iteration.
static void axpy_u8_i32(int32_t c, const uint8_t *w, int32_t *acc, int32_t n) {
    int32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        int32_t a0 = acc[j] + c * w[j];
        int32_t a1 = acc[j + 1] + c * w[j + 1];
        int32_t a2 = acc[j + 2] + c * w[j + 2];
        int32_t a3 = acc[j + 3] + c * w[j + 3];
        acc[j] = a0;
        acc[j + 1] = a1;
        acc[j + 2] = a2;
        acc[j + 3] = a3;
    }
    for (; j < n; j++) {
        acc[j] += c * w[j];
    }
}

#if defined(__ARM_ARCH_6M__)
// Cortex-M0: two rows at once, acc[j] += c0 w0[j] + c1 w1[j]; 4 columns per
// iteration in the 8 low registers: 8 LDRB, 8 MULS, 4 LDR, 8 ADDS, 4 STR and
// 5 loop instructions for 8 MACs (GCC's version spills: 7.8 per MAC).
// One column (weight byte offset WO, accumulator byte offset AO):
#define QT_M0_AXPY2_COL(WO, AO) \
            "ldrb %[t0], [%[p0], #" WO "]\n\t" \
            "ldrb %[t1], [%[p1], #" WO "]\n\t" \
            "muls %[t0], %[c0], %[t0]\n\t" \
            "muls %[t1], %[c1], %[t1]\n\t" \
            "ldr %[av], [%[pa], #" AO "]\n\t" \
            "adds %[av], %[av], %[t0]\n\t" \
            "adds %[av], %[av], %[t1]\n\t" \
            "str %[av], [%[pa], #" AO "]\n\t"
static void axpy2_u8_i32(int32_t c0, const uint8_t *w0, int32_t c1, const uint8_t *w1,
    int32_t *acc, int32_t n) {
    int32_t n4 = n & ~3, j = n4;
    if (n4) {
        const uint8_t *p0 = w0, *p1 = w1, *end = w0 + n4;
        int32_t *pa = acc;
        int32_t t0, t1, av;
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            QT_M0_AXPY2_COL("0", "0")
            QT_M0_AXPY2_COL("1", "4")
            QT_M0_AXPY2_COL("2", "8")
            QT_M0_AXPY2_COL("3", "12")
            "adds %[p0], #4\n\t"
            "adds %[p1], #4\n\t"
            "adds %[pa], #16\n\t"
            "cmp %[p0], %[end]\n\t"
            "bne 1b\n\t"
            : [p0] "+l"(p0), [p1] "+l"(p1), [pa] "+l"(pa), [t0] "=&l"(t0), [t1] "=&l"(t1), [av] "=&l"(av)
            : [c0] "l"(c0), [c1] "l"(c1), [end] "h"(end)
            : "cc", "memory");
    }
    for (; j < n; j++) {
        acc[j] += c0 * w0[j] + c1 * w1[j];
    }
}
#define QT_AXPY2 1
#elif defined(QT_HAVE_DSP) && QT_HAVE_DSP
#define QT_AXPY2 1
// Two rows at once with SMLAD: acc[j] += c0 w0[j] + c1 w1[j].  The pairs
// (w0[j], w1[j]) come from one word of each row by UXTB16 + PKHBT/PKHTB; the
// accumulators move in pairs by LDRD/STRD: 8 MACs in 21 instructions.
static void axpy2_u8_i32(int32_t c0, const uint8_t *w0, int32_t c1, const uint8_t *w1,
    int32_t *acc, int32_t n) {
    uint32_t cc = ((uint32_t)c0 & 0xffffu) | ((uint32_t)c1 << 16);
    int32_t n4 = n & ~3, j = n4;
    if (n4) {
        const uint8_t *p0 = w0, *p1 = w1, *end = w0 + n4;
        int32_t *pa = acc;
        uint32_t a, b, ae, be, t;
        int32_t s0, s1;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[a], [%[p0]], #4\n\t"
            "ldr %[b], [%[p1]], #4\n\t"
            "uxtb16 %[ae], %[a]\n\t"
            "uxtb16 %[be], %[b]\n\t"
            "uxtb16 %[a], %[a], ror #8\n\t"
            "uxtb16 %[b], %[b], ror #8\n\t"
            "ldrd %[s0], %[s1], [%[pa]]\n\t"
            "pkhbt %[t], %[ae], %[be], lsl #16\n\t"
            "smlad %[s0], %[cc], %[t], %[s0]\n\t"
            "pkhbt %[t], %[a], %[b], lsl #16\n\t"
            "smlad %[s1], %[cc], %[t], %[s1]\n\t"
            "strd %[s0], %[s1], [%[pa]], #8\n\t"
            "ldrd %[s0], %[s1], [%[pa]]\n\t"
            "pkhtb %[t], %[be], %[ae], asr #16\n\t"
            "smlad %[s0], %[cc], %[t], %[s0]\n\t"
            "pkhtb %[t], %[b], %[a], asr #16\n\t"
            "smlad %[s1], %[cc], %[t], %[s1]\n\t"
            "strd %[s0], %[s1], [%[pa]], #8\n\t"
            "cmp %[p0], %[end]\n\t"
            "bne 1b\n\t"
            : [p0] "+r"(p0), [p1] "+r"(p1), [pa] "+r"(pa), [a] "=&r"(a), [b] "=&r"(b),
            [ae] "=&r"(ae), [be] "=&r"(be), [t] "=&r"(t), [s0] "=&r"(s0), [s1] "=&r"(s1)
            : [cc] "r"(cc), [end] "r"(end)
            : "cc", "memory");
    }
    for (; j < n; j++) {
        acc[j] += c0 * w0[j] + c1 * w1[j];
    }
}
#endif

// ---- backward with at most two rows (DSGU's small k) ------------------------
//
// With one or two rows carrying an error (Dense 1568 -> 20 at DSGU's k = 2)
// the product is two MACs per input, and the general path's passes around
// it (zero the accumulators, add each row into them, reload them for the
// finish) cost more than the MACs; under a mask (the input of a ReLU layer:
// ~60 % zeros in the VAE) it also computes values the finish then discards.
// The M4's loop computes each unmasked value where it is finished:
//   a_j = c0 w0_j + c1 w1_j - zw (c0 + c1),  ep_j = the finish's value of a_j,
// the same integer as the general path's (sum c w - zw sum c), so the same
// output and range (w1 = w0 with c1 = 0 for one row; both 0 for none).
// The M4 only: the M0's version (the finish's short form with the MACs in
// front: 54.6 k -> 40.5 k instructions a call) took 496 bytes of the
// Pico's heap, where the gate failed (KERNELS.md).
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4, under a mask with zero point 0 (a ReLU output's; no mask: the
// general path) and the finish's fast form (QT_FIN_M4, shift 33..54): a
// masked value is a load, a CBZ and the store of the zero point (6
// instructions, ~14 in the general path), a computed one the pair (w0_j,
// w1_j) as int16 lanes into one SMLAD in front of the finish's SMMLA form
// (17, ~21).  One index j counts up to 0 from -n over the four arrays
// (their ends): no end compare.  14 registers: the lanes of (c0, c1), the
// zero-point term and the zero point from k.
typedef struct {
    uint32_t cc;     // c0 | c1 << 16
    int32_t a0;      // - zw (c0 + c1)
    int32_t zero;
} qt_dense_two_m4_t;

// Whether dense_two applies: tested before the rows are scanned, so a layer
// it never applies to (no mask: Dense 10 -> 1568) does not scan them.
static inline int dense_two_applies(const qt_dense_bwd_t *q, int32_t n) {
    return q->mask && !q->zm && q->out.shift >= 33 && q->out.shift <= 32 + 22 && n > 0;
}

static void dense_two(const uint8_t *w0, const uint8_t *w1, const int32_t c[2], uint8_t *ep, int32_t n,
    const qt_dense_bwd_t *q, int32_t *mm) {
    const int32_t sh = q->out.shift - 32;
    const int32_t mult = q->out.mult;
    const int32_t rz = (int32_t)((1u << (sh - 1)) + ((uint32_t)q->zep << sh));
    const qt_dense_two_m4_t kk = { ((uint32_t)c[0] & 0xffffu) | ((uint32_t)c[1] << 16),
        (int32_t)(0u - (uint32_t)q->zw * (uint32_t)(c[0] + c[1])), q->zep };
    const qt_dense_two_m4_t *k = &kk;
    uint8_t *oe = ep + n;
    const uint8_t *me = q->mask + n, *w0e = w0 + n, *w1e = w1 + n;
    int32_t j = -n;
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    int32_t a, t, u;
    __asm__ volatile(
        "1:\n\t"
        "ldrb %[a], [%[me], %[j]]\n\t"
        "cbz %[a], 7f\n\t"
        "ldrb %[t], [%[w0e], %[j]]\n\t"
        "ldrb %[u], [%[w1e], %[j]]\n\t"
        "orr %[t], %[t], %[u], lsl #16\n\t"
        "ldr %[u], [%[k]]\n\t"
        "ldr %[a], [%[k], #4]\n\t"
        "smlad %[a], %[t], %[u], %[a]\n\t"
        "cmp %[a], %[lo]\n\t"
        "blt 5f\n\t"
        "2:\n\t"
        "cmp %[a], %[hi]\n\t"
        "bgt 6f\n\t"
        "3:\n\t"
        "smmla %[a], %[a], %[mult], %[rz]\n\t"
        "asr %[a], %[a], %[sh]\n\t"
        "usat %[a], #8, %[a]\n\t"
        "strb %[a], [%[oe], %[j]]\n\t"
        "adds %[j], %[j], #1\n\t"
        "bne 1b\n\t"
        "b 9f\n\t"
        "5:\n\t"
        "mov %[lo], %[a]\n\t"
        "b 2b\n\t"
        "6:\n\t"
        "mov %[hi], %[a]\n\t"
        "b 3b\n\t"
        "7:\n\t"
        "ldr %[t], [%[k], #8]\n\t"
        "strb %[t], [%[oe], %[j]]\n\t"
        "adds %[j], %[j], #1\n\t"
        "bne 1b\n\t"
        "9:\n\t"
        : [j] "+r"(j), [lo] "+r"(lo), [hi] "+r"(hi), [a] "=&l"(a), [t] "=&r"(t), [u] "=&r"(u)
        : [oe] "r"(oe), [me] "r"(me), [w0e] "r"(w0e), [w1e] "r"(w1e), [k] "r"(k),
          [mult] "r"(mult), [rz] "r"(rz), [sh] "r"(sh)
        : "cc", "memory");
    mm[0] = lo;
    mm[1] = hi;
}
#define QT_DENSE_TWO 1
#endif

// The general path: the rows added into acc, then the finish.  Where the
// loop for two rows exists, out of line behind it (dense_backward_u8
// below), so its row loop keeps the registers it has alone (with the two
// rows' scan inlined in front of it, Dense 10 -> 1568's error cost 400
// instructions a call more on the M4); elsewhere it is dense_backward_u8
// itself (the same code as before).
#if defined(QT_DENSE_TWO)
__attribute__((noinline)) static void dense_backward_rows(
#else
void dense_backward_u8(
#endif
    const uint8_t *e, const uint8_t *w, uint8_t *ep, int32_t m, int32_t n,
    const int32_t *rows, int32_t k, const qt_dense_bwd_t *q, int32_t *acc, int32_t acc_range[2]) {
    qt_fill_i32(acc, (size_t)n, 0);
    // sum_i (w_ij - zw) c_i = sum_i c_i w_ij - zw sum_i c_i, c_i = e_i - ze.
    // Rows with c_i == 0 (no error, or zeroed by ReLU backward) are skipped:
    // the work shrinks with the error's sparsity as well as with DSGU.
    int32_t csum = 0;
    int32_t cnt = rows ? k : m;
#if defined(QT_AXPY2)
    int32_t pend = -1, pc = 0;   // a nonzero row waiting for a partner
#endif
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t c = (int32_t)e[i] - q->ze;
        if (c == 0) {
            continue;
        }
        csum += c;
#if defined(QT_AXPY2)
        if (pend < 0) {
            pend = i;
            pc = c;
            continue;
        }
        axpy2_u8_i32(pc, w + (size_t)pend * (size_t)n, c, w + (size_t)i * (size_t)n, acc, n);
        pend = -1;
#else
        axpy_u8_i32(c, w + (size_t)i * (size_t)n, acc, n);
#endif
    }
#if defined(QT_AXPY2)
    if (pend >= 0) {
        axpy_u8_i32(pc, w + (size_t)pend * (size_t)n, acc, n);
    }
#endif
    // The conv cores' finish (range, requantization) with - zw sum c as its
    // c0: a value costs 15 instructions on the M4 (33 on the M0) where a
    // qt_requant_u8 per value took ~29 (~60); with DSGU's few rows this pass
    // over the n inputs is most of the call.
    const qt_conv_rq_t rq = { 0, 0, q->zep, q->out, q->out, 0, q->mask, q->zm };
    qt_conv_fin_t fin;
    qt_conv_fin_init(&fin, &rq, ep);
    int32_t mm[2] = { INT32_MAX, INT32_MIN };
    qt_conv_fin_run(acc, NULL, n, ep, 1, 0u - (uint32_t)q->zw * (uint32_t)csum, &fin, mm);
    acc_range[0] = mm[0];
    acc_range[1] = mm[1];
}

#if defined(QT_DENSE_TWO)
void dense_backward_u8(const uint8_t *e, const uint8_t *w, uint8_t *ep, int32_t m, int32_t n,
    const int32_t *rows, int32_t k, const qt_dense_bwd_t *q, int32_t *acc, int32_t acc_range[2]) {
    if (dense_two_applies(q, n)) {
        // The rows with an error, up to a third (then the general path).
        const uint8_t *wr[2] = { w, w };
        int32_t c[2] = { 0, 0 }, nz = 0;
        const int32_t cnt = rows ? k : m;
        for (int32_t t = 0; t < cnt && nz <= 2; t++) {
            const int32_t i = rows ? rows[t] : t, ci = (int32_t)e[i] - q->ze;
            if (ci && nz < 2) {
                wr[nz] = w + (size_t)i * (size_t)n;
                c[nz] = ci;
            }
            nz += ci != 0;
        }
        if (nz <= 2) {
            dense_two(wr[0], nz == 2 ? wr[1] : wr[0], c, ep, n, q, acc_range);
            return;
        }
    }
    dense_backward_rows(e, w, ep, m, n, rows, k, q, acc, acc_range);
}
#endif

int32_t relu_backward_u8(uint8_t *e, const uint8_t *y, int32_t n, int32_t ze, int32_t zy) {
    int32_t cnt = 0;
    for (int32_t i = 0; i < n; i++) {
        if (y[i] <= zy) {
            cnt += e[i] != ze;
            e[i] = (uint8_t)ze;
        }
    }
    return cnt;
}

// ---- update -----------------------------------------------------------------


static float clamp_f(float v, float lim) {
    return v > lim ? lim : (v < -lim ? -lim : v);
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// The Cortex-M4 row loops below keep the running min/max of the updated
// weights as two int16 lanes each (SSUB16 + SEL); these convert from and to
// the scalar [lo, hi] (lo > hi: nothing seen yet -> an empty lane range).
static inline void range_to_lanes(int32_t lo, int32_t hi, uint32_t *lo2, uint32_t *hi2) {
    if (lo > hi) {
        *lo2 = 0x7fff7fffu;           // empty: +32767 / -32768 in both lanes
        *hi2 = 0x80008000u;
    } else {
        *lo2 = ((uint32_t)lo & 0xffffu) * 0x10001u;
        *hi2 = ((uint32_t)hi & 0xffffu) * 0x10001u;
    }
}

static inline void range_from_lanes(uint32_t lo2, uint32_t hi2, int32_t *lo, int32_t *hi) {
    int32_t l0 = (int16_t)(lo2 & 0xffffu), l1 = (int16_t)(lo2 >> 16);
    int32_t h0 = (int16_t)(hi2 & 0xffffu), h1 = (int16_t)(hi2 >> 16);
    *lo = l0 < l1 ? l0 : l1;
    *hi = h0 > h1 ? h0 : h1;
}

// Shared tail of both M4 row loops: x1/x2 hold the steps of 4 weights as
// int16 lanes (weights 0,2 and 1,3); add them to the stored weights, track
// the lane-wise min/max, clamp to 0..255, store 4 bytes, loop.
#define QT_M4_ROW_ADD_TRACK_STORE \
            "ldr %[t0], [%[pw]]\n\t" \
            "uxtb16 %[t1], %[t0]\n\t" \
            "uxtb16 %[t0], %[t0], ror #8\n\t" \
            "sadd16 %[x1], %[t1], %[x1]\n\t" \
            "sadd16 %[x2], %[t0], %[x2]\n\t" \
            "ssub16 %[t0], %[x1], %[lo2]\n\t" \
            "sel %[lo2], %[lo2], %[x1]\n\t" \
            "ssub16 %[t0], %[hi2], %[x1]\n\t" \
            "sel %[hi2], %[hi2], %[x1]\n\t" \
            "ssub16 %[t0], %[x2], %[lo2]\n\t" \
            "sel %[lo2], %[lo2], %[x2]\n\t" \
            "ssub16 %[t0], %[hi2], %[x2]\n\t" \
            "sel %[hi2], %[hi2], %[x2]\n\t" \
            "usat16 %[x1], #8, %[x1]\n\t" \
            "usat16 %[x2], #8, %[x2]\n\t" \
            "orr %[x1], %[x1], %[x2], lsl #8\n\t" \
            "str %[x1], [%[pw]], #4\n\t" \
            "cmp %[px], %[end]\n\t" \
            "bne 1b\n\t"

// What the M4 row loops carry from row to row: the xorshift32 state and the
// min/max lanes, so dense_update_u8 converts them once per call, not per
// row (rows of 10 weights, Dense 10 -> 1568, spent ~200 instructions each
// on conversions, calls and a C tail around 76 of SIMD work).
typedef struct {
    uint32_t s;
    uint32_t lo2, hi2;
} qt_m4_rows_t;

// One row, |A| < 2^15 (an = -A): v_j = w_j + ((rb [+ r_j] + an x_j) >> 16)
// (r_j from tr->s when stoch, as in row_stoch_c), any n >= 0.  Quads of
// weights in SIMD (7 instructions per weight deterministic, 9.5 stochastic),
// then a pair and a single weight with the same lane tracking.
__attribute__((noinline))
static void row_m4(uint8_t *wr, const uint8_t *x, int32_t n, int32_t an, int32_t rb, int stoch,
    qt_m4_rows_t *tr) {
    uint32_t lo2 = tr->lo2, hi2 = tr->hi2, s = tr->s;
    const int32_t n4 = n & ~3;
    if (n4) {
        const uint8_t *px = x, *end = x + n4;
        uint8_t *pw = wr;
        uint32_t x1, x2, t0, t1, tmp;
        if (stoch) {
            // two draws (3 EORs each), r + rb formed per weight by ADD (high
            // half) / UXTAH (low half) into SMLABB/SMLABT: 38 per 4 weights.
            __asm__ volatile(
                "1:\n\t"
                "ldr %[x1], [%[px]], #4\n\t"
                "eor %[s], %[s], %[s], lsl #13\n\t"
                "eor %[s], %[s], %[s], lsr #17\n\t"
                "eor %[s], %[s], %[s], lsl #5\n\t"
                "uxtb16 %[x2], %[x1], ror #8\n\t"
                "uxtb16 %[x1], %[x1]\n\t"
                "add %[tmp], %[rb], %[s], lsr #16\n\t"
                "smlabb %[t0], %[an], %[x1], %[tmp]\n\t"
                "uxtah %[tmp], %[rb], %[s]\n\t"
                "smlabb %[t1], %[an], %[x2], %[tmp]\n\t"
                "eor %[s], %[s], %[s], lsl #13\n\t"
                "eor %[s], %[s], %[s], lsr #17\n\t"
                "eor %[s], %[s], %[s], lsl #5\n\t"
                "add %[tmp], %[rb], %[s], lsr #16\n\t"
                "smlabt %[x1], %[an], %[x1], %[tmp]\n\t"
                "pkhtb %[x1], %[x1], %[t0], asr #16\n\t"
                "uxtah %[tmp], %[rb], %[s]\n\t"
                "smlabt %[x2], %[an], %[x2], %[tmp]\n\t"
                "pkhtb %[x2], %[x2], %[t1], asr #16\n\t"
                QT_M4_ROW_ADD_TRACK_STORE
                : [px] "+r"(px), [pw] "+r"(pw), [lo2] "+r"(lo2), [hi2] "+r"(hi2), [s] "+r"(s),
                [x1] "=&r"(x1), [x2] "=&r"(x2), [t0] "=&r"(t0), [t1] "=&r"(t1), [tmp] "=&r"(tmp)
                : [an] "r"(an), [rb] "r"(rb), [end] "r"(end)
                : "cc", "memory");
        } else {
            // SMLABB/SMLABT form rb - A x_j (x from UXTB16 lanes), PKHTB packs
            // the two >> 16 results as int16 lanes: 28 per 4 weights.
            __asm__ volatile(
                "1:\n\t"
                "ldr %[x1], [%[px]], #4\n\t"
                "uxtb16 %[x2], %[x1], ror #8\n\t"
                "uxtb16 %[x1], %[x1]\n\t"
                "smlabb %[t0], %[an], %[x1], %[rb]\n\t"
                "smlabt %[t1], %[an], %[x1], %[rb]\n\t"
                "pkhtb %[x1], %[t1], %[t0], asr #16\n\t"
                "smlabb %[t0], %[an], %[x2], %[rb]\n\t"
                "smlabt %[t1], %[an], %[x2], %[rb]\n\t"
                "pkhtb %[x2], %[t1], %[t0], asr #16\n\t"
                QT_M4_ROW_ADD_TRACK_STORE
                : [px] "+r"(px), [pw] "+r"(pw), [lo2] "+r"(lo2), [hi2] "+r"(hi2),
                [x1] "=&r"(x1), [x2] "=&r"(x2), [t0] "=&r"(t0), [t1] "=&r"(t1)
                : [an] "r"(an), [rb] "r"(rb), [end] "r"(end)
                : "cc", "memory");
            (void)tmp;
        }
    }
    int32_t j = n4;
    if (n - j >= 2) {
        // a last pair (rows of 10 weights: Dense 10 -> 1568) in the quads'
        // lanes: 22 instructions instead of ~45 in C.
        const uint8_t *px = x + j;
        uint8_t *pw = wr + j;
        uint32_t x1, t0, t1, tmp;
        __asm__ volatile(
            "ldrb %[t0], [%[px]]\n\t"
            "ldrb %[t1], [%[px], #1]\n\t"
            "cbz %[stoch], 1f\n\t"
            "eor %[s], %[s], %[s], lsl #13\n\t"
            "eor %[s], %[s], %[s], lsr #17\n\t"
            "eor %[s], %[s], %[s], lsl #5\n\t"
            "add %[tmp], %[rb], %[s], lsr #16\n\t"
            "smlabb %[t0], %[an], %[t0], %[tmp]\n\t"
            "uxtah %[tmp], %[rb], %[s]\n\t"
            "smlabb %[t1], %[an], %[t1], %[tmp]\n\t"
            "b 2f\n\t"
            "1:\n\t"
            "smlabb %[t0], %[an], %[t0], %[rb]\n\t"
            "smlabb %[t1], %[an], %[t1], %[rb]\n\t"
            "2:\n\t"
            "pkhtb %[x1], %[t1], %[t0], asr #16\n\t"
            "ldrb %[t0], [%[pw]]\n\t"
            "ldrb %[t1], [%[pw], #1]\n\t"
            "pkhbt %[t0], %[t0], %[t1], lsl #16\n\t"
            "sadd16 %[x1], %[x1], %[t0]\n\t"
            "ssub16 %[t0], %[x1], %[lo2]\n\t"
            "sel %[lo2], %[lo2], %[x1]\n\t"
            "ssub16 %[t0], %[hi2], %[x1]\n\t"
            "sel %[hi2], %[hi2], %[x1]\n\t"
            "usat16 %[x1], #8, %[x1]\n\t"
            "strb %[x1], [%[pw]]\n\t"
            "lsr %[x1], %[x1], #16\n\t"
            "strb %[x1], [%[pw], #1]\n\t"
            : [lo2] "+r"(lo2), [hi2] "+r"(hi2), [s] "+r"(s),
            [x1] "=&r"(x1), [t0] "=&r"(t0), [t1] "=&r"(t1), [tmp] "=&r"(tmp)
            : [px] "r"(px), [pw] "r"(pw), [an] "r"(an), [rb] "r"(rb), [stoch] "l"(stoch)
            : "cc", "memory");
        j += 2;
    }
    if (j < n) {
        // an odd row's last weight: the high half of a draw, the value in
        // both lanes for the extremes
        int32_t r0 = rb;
        if (stoch) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            r0 += (int32_t)(s >> 16);
        }
        const int32_t v = (int32_t)wr[j] + ((r0 + an * (int32_t)x[j]) >> 16);
        const uint32_t v2 = ((uint32_t)v & 0xffffu) * 0x10001u;
        uint32_t t;
        __asm__(
            "ssub16 %[t], %[v], %[lo2]\n\t"
            "sel %[lo2], %[lo2], %[v]\n\t"
            "ssub16 %[t], %[hi2], %[v]\n\t"
            "sel %[hi2], %[hi2], %[v]\n\t"
            : [lo2] "+r"(lo2), [hi2] "+r"(hi2), [t] "=&r"(t)
            : [v] "r"(v2)
            : "cc");
        wr[j] = qt_clamp_u8(v, 0);
    }
    tr->lo2 = lo2;
    tr->hi2 = hi2;
    tr->s = s;
}

// The exported row functions' M4 path: scalar [*plo, *phi] and *rng (NULL:
// deterministic) to and from one row_m4 call.
static void row_m4_once(uint8_t *wr, const uint8_t *x, int32_t n, int32_t A, int32_t rb, uint32_t *rng,
    int32_t *plo, int32_t *phi) {
    if (n <= 0) {
        return;
    }
    qt_m4_rows_t tr;
    tr.s = rng ? *rng : 0u;
    range_to_lanes(*plo, *phi, &tr.lo2, &tr.hi2);
    row_m4(wr, x, n, -A, rb, rng != NULL, &tr);
    range_from_lanes(tr.lo2, tr.hi2, plo, phi);
    if (rng) {
        *rng = tr.s;
    }
}
#endif

// Stochastic rounding, one xorshift32 draw per two weights:
// r_j = the high 16 bits of draw j/2 for even j, its low 16 bits for odd j;
// v_j = w_j + ((r_j + rb - A x_j) >> 16).  Plain C for weights [j, n), j even.
static void row_stoch_c(uint8_t *wr, const uint8_t *x, int32_t j, int32_t n, int32_t A, int32_t rb,
    uint32_t *rng, int32_t *plo, int32_t *phi) {
    int32_t lo = *plo, hi = *phi;
    uint32_t s = *rng;
    for (; j < n; j += 2) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        int32_t v = (int32_t)wr[j] + (((int32_t)(s >> 16) + rb - A * (int32_t)x[j]) >> 16);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        wr[j] = qt_clamp_u8(v, 0);
        if (j + 1 < n) {
            v = (int32_t)wr[j + 1] + (((int32_t)(s & 0xffffu) + rb - A * (int32_t)x[j + 1]) >> 16);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            wr[j + 1] = qt_clamp_u8(v, 0);
        }
    }
    *rng = s;
    *plo = lo;
    *phi = hi;
}

#if defined(__ARM_ARCH_6M__)
// What the M0 row loop carries from row to row (as qt_m4_rows_t on the M4):
// the xorshift32 state, the exact extremes [lo, hi] of the new values
// (lo > hi: nothing seen), and a window [wlo, wlo + span] inside both
// [lo, hi] and 0..255.  A value in the window is neither a new extreme nor
// in need of a clamp, so the hot path tests it with one unsigned compare
// (two before: extremes, then clamp).  wlo = -2^30, span = 0 is an empty
// window (every value takes the rare path, which sets the real one).
typedef struct {
    uint32_t s;
    int32_t lo, hi;
    int32_t wlo;
    uint32_t span;
} qt_m0_rows_t;

static inline void m0_rows_init(qt_m0_rows_t *tr, uint32_t s) {
    tr->s = s;
    tr->lo = INT32_MAX;
    tr->hi = INT32_MIN;
    tr->wlo = -(1 << 30);
    tr->span = 0;
}

// One weight (px at x_j, w_j at px + off): t = w_j + ((BASE - A x_j) >> 16),
// BASE = rb (deterministic) or r + rb already in t (stochastic); outside
// the window the rare path (a per-use stub L1 calling the block's shared
// body at 8) tracks, re-windows and clamps; stored, px advanced.
#define QT_M0_ROW_WEIGHT(L, BASE) \
            "ldrb %[xv], [%[px], #0]\n\t" \
            "muls %[xv], %[A], %[xv]\n\t" \
            "subs %[t], " BASE ", %[xv]\n\t" \
            "asrs %[t], %[t], #16\n\t" \
            "ldrb %[xv], [%[px], %[off]]\n\t" \
            "adds %[t], %[t], %[xv]\n\t" \
            "subs %[xv], %[t], %[wlo]\n\t" \
            "cmp %[xv], %[span]\n\t" \
            "bhi " L "1f\n\t" \
            L "2:\n\t" \
            "strb %[t], [%[px], %[off]]\n\t" \
            "adds %[px], #1\n\t"
#define QT_M0_ROW_STUB(L) \
            L "1:\n\t" \
            "bl 8f\n\t" \
            "b " L "2b\n\t"
// The shared rare body: new extremes into lo/hi (high registers), the
// window from them (empty if [lo, hi] misses 0..255), t clamped to 0..255.
#define QT_M0_ROW_RARE \
            "8:\n\t" \
            "cmp %[t], %[lo]\n\t" \
            "bge 81f\n\t" \
            "mov %[lo], %[t]\n\t" \
            "81:\n\t" \
            "cmp %[t], %[hi]\n\t" \
            "ble 82f\n\t" \
            "mov %[hi], %[t]\n\t" \
            "82:\n\t" \
            "mov %[wlo], %[lo]\n\t" \
            "cmp %[wlo], #0\n\t" \
            "bge 83f\n\t" \
            "movs %[wlo], #0\n\t" \
            "83:\n\t" \
            "mov %[xv], %[hi]\n\t" \
            "cmp %[xv], #255\n\t" \
            "ble 84f\n\t" \
            "movs %[xv], #255\n\t" \
            "84:\n\t" \
            "subs %[span], %[xv], %[wlo]\n\t" \
            "bge 85f\n\t" \
            "movs %[wlo], #1\n\t" \
            "lsls %[wlo], %[wlo], #30\n\t" \
            "negs %[wlo], %[wlo]\n\t" \
            "movs %[span], #0\n\t" \
            "85:\n\t" \
            "cmp %[t], #255\n\t" \
            "bls 86f\n\t" \
            "asrs %[t], %[t], #31\n\t" \
            "mvns %[t], %[t]\n\t" \
            "86:\n\t" \
            "bx lr\n\t"

// Both loops' end: back to the pair at 1 until px reaches end, then the
// stubs and the rare body out of the way.
#define QT_M0_ROW_TAIL \
            "cmp %[px], %[end]\n\t" \
            "bne 1b\n\t" \
            "b 9f\n\t" \
            QT_M0_ROW_STUB("1") \
            QT_M0_ROW_STUB("2") \
            QT_M0_ROW_RARE \
            "9:\n\t"

// One row on the Cortex-M0, any n >= 0: v_j = w_j + ((rb [+ r_j] - A x_j)
// >> 16), r_j from tr->s when stoch (as row_stoch_c), stored clamped to
// 0..255, extremes in tr.  Deterministic: 12 instructions per weight (pairs;
// an odd n enters at the second weight).  Stochastic: 34 per pair (one draw,
// 6); an odd last weight in C.
__attribute__((noinline))
static void row_m0(uint8_t *wr, const uint8_t *x, int32_t n, int32_t A, int32_t rb, int stoch,
    qt_m0_rows_t *tr) {
    int32_t lo = tr->lo, hi = tr->hi, wlo = tr->wlo;
    uint32_t span = tr->span, s = tr->s;
    const int32_t off = (int32_t)(wr - x);
    const uint8_t *px = x;
    int32_t t, xv;
    if (!stoch) {
        if (n <= 0) {
            return;
        }
        const uint8_t *end = x + n;
        xv = n & 1;
        __asm__ volatile(
            ".syntax unified\n\t"
            "cmp %[xv], #0\n\t"
            "bne 2f\n\t"
            "1:\n\t"
            QT_M0_ROW_WEIGHT("1", "%[rb]")
            "2:\n\t"
            QT_M0_ROW_WEIGHT("2", "%[rb]")
            QT_M0_ROW_TAIL
            : [px] "+l"(px), [wlo] "+l"(wlo), [span] "+l"(span), [lo] "+h"(lo), [hi] "+h"(hi),
            [t] "=&l"(t), [xv] "+&l"(xv)
            : [off] "l"(off), [A] "l"(A), [rb] "l"(rb), [end] "h"(end)
            : "cc", "memory", "lr");
    } else {
        const int32_t n2 = n & ~1;
        if (n2 > 0) {
            const uint8_t *end = x + n2;
            __asm__ volatile(
                ".syntax unified\n\t"
                "1:\n\t"
                "lsls %[t], %[s], #13\n\t"
                "eors %[s], %[t]\n\t"
                "lsrs %[t], %[s], #17\n\t"
                "eors %[s], %[t]\n\t"
                "lsls %[t], %[s], #5\n\t"
                "eors %[s], %[t]\n\t"
                "lsrs %[t], %[s], #16\n\t"
                "add %[t], %[rb]\n\t"
                QT_M0_ROW_WEIGHT("1", "%[t]")
                "uxth %[t], %[s]\n\t"
                "add %[t], %[rb]\n\t"
                QT_M0_ROW_WEIGHT("2", "%[t]")
                QT_M0_ROW_TAIL
                : [px] "+l"(px), [wlo] "+l"(wlo), [span] "+l"(span), [s] "+l"(s), [lo] "+h"(lo),
                [hi] "+h"(hi), [t] "=&l"(t), [xv] "=&l"(xv)
                : [off] "l"(off), [A] "l"(A), [rb] "h"(rb), [end] "h"(end)
                : "cc", "memory", "lr");
        }
        if (n2 < n) {
            row_stoch_c(wr, x, n2, n, A, rb, &s, &lo, &hi);
        }
    }
    tr->lo = lo;
    tr->hi = hi;
    tr->wlo = wlo;
    tr->span = span;
    tr->s = s;
}

// The exported row functions' M0 path: [*plo, *phi] and *rng (NULL:
// deterministic) to and from one row_m0 call, from an empty window.
static void row_m0_once(uint8_t *wr, const uint8_t *x, int32_t n, int32_t A, int32_t rb, uint32_t *rng,
    int32_t *plo, int32_t *phi) {
    qt_m0_rows_t tr;
    m0_rows_init(&tr, rng ? *rng : 0u);
    if (*plo <= *phi) {
        tr.lo = *plo;
        tr.hi = *phi;
    }
    row_m0(wr, x, n, A, rb, rng != NULL, &tr);
    if (tr.lo <= tr.hi) {
        *plo = tr.lo;
        *phi = tr.hi;
    }
    if (rng) {
        *rng = tr.s;
    }
}
#endif

// One row of the batch-1 update, deterministic rounding:
//   v_j = w_j + ((rb - A x_j) >> 16), stored clamped to 0..255, with the exact
// min/max of v tracked in [*plo, *phi] (*plo > *phi: nothing seen yet).
// Hot loop: one unsigned compare detects a new extreme (rare after the first
// few values) and one detects the need to clamp, so the common path is two
// loads, multiply, subtract, shift, add, two compares, store.
void dense_update_row_det_u8(uint8_t *wr, const uint8_t *x, int32_t n, int32_t A, int32_t rb,
    int32_t *plo, int32_t *phi) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Cortex-M4 SIMD when |A| < 2^15 (row_m4): the values are the same as
    // the scalar loop's, |v| < 2^15 in every lane.
    if (A > -32768 && A < 32768) {
        row_m4_once(wr, x, n, A, rb, NULL, plo, phi);
        return;
    }
#elif defined(__ARM_ARCH_6M__)
    // Cortex-M0 (row_m0): 12 instructions per weight.
    row_m0_once(wr, x, n, A, rb, NULL, plo, phi);
    return;
#endif
    int32_t lo = *plo, hi = *phi;
    if (lo > hi) {
        lo = hi = (int32_t)wr[0] + ((rb - A * (int32_t)x[0]) >> 16);
    }
    uint32_t span = (uint32_t)(hi - lo);
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Cortex-M4, 11 instructions per weight: LDRB x, LDRB w, MLS, ADD (asr),
    // SUB + CMP + BHI (new extreme?), USAT (clamp), STRB, CMP + BNE.
    if (n > 0) {
        const uint8_t *px = x, *end = x + n;
        uint8_t *pw = wr;
        int32_t t, xv, wv;
        __asm__ volatile(
            "1:\n\t"
            "ldrb %[xv], [%[px]], #1\n\t"
            "ldrb %[wv], [%[pw]]\n\t"
            "mls %[t], %[A], %[xv], %[rb]\n\t"
            "add %[t], %[wv], %[t], asr #16\n\t"
            "sub %[xv], %[t], %[lo]\n\t"
            "cmp %[xv], %[span]\n\t"
            "bhi 3f\n\t"
            "2:\n\t"
            "usat %[xv], #8, %[t]\n\t"
            "strb %[xv], [%[pw]], #1\n\t"
            "cmp %[px], %[end]\n\t"
            "bne 1b\n\t"
            "b 9f\n\t"
            "3:\n\t"
            "cmp %[t], %[lo]\n\t"
            "ite lt\n\t"
            "movlt %[lo], %[t]\n\t"
            "movge %[hi], %[t]\n\t"
            "sub %[span], %[hi], %[lo]\n\t"
            "b 2b\n\t"
            "9:\n\t"
            : [px] "+r"(px), [pw] "+r"(pw), [lo] "+r"(lo), [hi] "+r"(hi), [span] "+r"(span),
            [t] "=&r"(t), [xv] "=&r"(xv), [wv] "=&r"(wv)
            : [A] "r"(A), [rb] "r"(rb), [end] "r"(end)
            : "cc", "memory");
    }
#else
    for (int32_t j = 0; j < n; j++) {
        int32_t v = (int32_t)wr[j] + ((rb - A * (int32_t)x[j]) >> 16);
        if ((uint32_t)(v - lo) > span) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            span = (uint32_t)(hi - lo);
        }
        if ((uint32_t)v > 255u) {
            v = v < 0 ? 0 : 255;
        }
        wr[j] = (uint8_t)v;
    }
#endif
    *plo = lo;
    *phi = hi;
}

void dense_update_row_stoch_u8(uint8_t *wr, const uint8_t *x, int32_t n, int32_t A, int32_t rb,
    uint32_t *rng, int32_t *plo, int32_t *phi) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Cortex-M4 SIMD as in the deterministic loop (row_m4).
    if (A > -32768 && A < 32768) {
        row_m4_once(wr, x, n, A, rb, rng, plo, phi);
        return;
    }
#elif defined(__ARM_ARCH_6M__)
    // Cortex-M0 (row_m0): 17 instructions per weight.
    row_m0_once(wr, x, n, A, rb, rng, plo, phi);
    return;
#endif
    if (*plo > *phi && n > 0) {
        *plo = INT32_MAX;
        *phi = INT32_MIN;
    }
    row_stoch_c(wr, x, 0, n, A, rb, rng, plo, phi);
}

// Bias step of the batch-1 update (per tensor, like qt_update_bias_i32, but
// integer per row: the float work is once per call, which matters on a
// soft-float M0 with many rows, e.g. a 10 -> 1568 layer).  With
// c = lr / (s_b sigma_b):  b_i += (r + Bb - round(Kb ce_i)) >> 16  in int64,
// Kb = c s_e 2^16 as a fixed-point multiplier (saturating at 2^30),
// Bb = round(c mu_b 2^16), r the rounding offset (one draw per bias for the
// stochastic modes).
static int64_t round_f32_i64(float v) {
    const float lim = 70368744177664.0f;      // 2^46
    v = v > lim ? lim : (v < -lim ? -lim : v);
    if (v >= 8388608.0f || v <= -8388608.0f) {
        return (int64_t)v;                    // |v| >= 2^23: already an integer
    }
    return qt_round_f32(v);
}

// nz, see: the count and the sum of squares of the rows' nonzero e_i - z_e
// (the weights' statistics in dense_update_u8 have them already).
static void bias_update_rank1(int32_t *b, const uint8_t *e, int32_t ze, int32_t m, const int32_t *rows,
    int32_t k, int32_t nz, uint32_t see, float s_e, float s_b, const qt_update_t *u, float *state, int first) {
    int32_t cnt = rows ? k : m;
    if (nz == 0) {
        return;
    }
    float sig = qt_bias_rms_sigma(state, (float)see, nz, s_e, u->alpha_norm, first);
    if (!(sig > 0.0f)) {
        return;
    }
    float c = u->lr / (s_b * sig);
    qt_fixmul_t kb = qt_fixmul_from_f32(c * s_e * 65536.0f);
    int64_t bb = round_f32_i64(c * state[3] * 65536.0f);
    int32_t r0 = u->rounding == QT_ROUND_NEAREST ? 32768 : 0;
#if defined(__ARM_ARCH_6M__)
    qt_short_mul_t ks;              // round(Kb ce) inline (as A_i's)
    short_mul_init(&ks, kb);
#endif
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t ce = (int32_t)e[i] - ze;
        if (ce == 0) {
            continue;
        }
        int32_t r = u->rounding >= QT_ROUND_STOCHASTIC ? (int32_t)(qt_rng_next(u->rng) >> 16) : r0;
#if defined(__ARM_ARCH_6M__)
        const int64_t fm = ks.t ? short_mul(ce, &ks) : fixmul64(ce, kb);
#else
        const int64_t fm = fixmul64(ce, kb);
#endif
        int64_t nb = (int64_t)b[i] + ((r + bb - fm) >> 16);
        b[i] = nb > INT32_MAX ? INT32_MAX : (nb < -INT32_MAX ? -INT32_MAX : (int32_t)nb);
    }
}

// x's sum and sum of squares about zx: sum (x - zx) = S - n zx and
// sum (x - zx)^2 = Q - 2 zx S + n zx^2 from S = sum x, Q = sum x^2 (mod
// 2^32: exact, as the results fit, n <= 32767).  The M4 four bytes a step
// (USADA8, two SMLAD: the C loop took ~7 instructions per byte); on the M0
// 7 per byte instead of 8 (two a step: 5.5, for 44 bytes more).
static void x_stats(const uint8_t *x, int32_t n, int32_t zx, int32_t *psx, uint32_t *psxx) {
    uint32_t s = 0, q = 0;
    int32_t j = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    for (; j + 4 <= n; j += 4) {
        const uint32_t v = ld32u(x + j), lo = __uxtb16(v), hi = uxtb16_ror8(v);
        s = __usada8(v, 0u, s);
        q = (uint32_t)SMLAD(lo, lo, (int32_t)q);
        q = (uint32_t)SMLAD(hi, hi, (int32_t)q);
    }
#endif
    for (; j < n; j++) {
        const uint32_t a = x[j];
        s += a;
        q += a * a;
    }
    const uint32_t z = (uint32_t)zx, un = (uint32_t)n;
    *psx = (int32_t)(s - un * z);
    *psxx = q - 2u * z * s + un * z * z;
}

void dense_update_u8(const uint8_t *e, const uint8_t *x, uint8_t *w, int32_t *b, int32_t m, int32_t n,
    const int32_t *rows, int32_t k, const qt_dense_upd_t *d, const qt_update_t *u, float *state,
    qt_wrange_t *new_range) {
    const int32_t zx = d->zx, ze = d->ze;
    int32_t cnt = rows ? k : m;
    const int first = !(state[0] > 0.0f);
    int32_t sx;
    uint32_t sxx;
    x_stats(x, n, zx, &sx, &sxx);
    const float fn = (float)n;
    const float mxx = (float)sxx / fn;
    // QT_UPD_RMS: the statistics about 0 (x's mean taken as 0: every mean
    // below is then 0 and every variance the mean square, exactly)
    const float mx = (float)(u->rms ? 0 : sx) / fn;
    float varx = mxx - mx * mx;
    if (varx < 0.0f) {
        varx = 0.0f;
    }
    const float sdx = qt_sqrt_f32(varx);
    const float s_g = d->s_e * d->s_x;
    // Per tensor every row with an error is updated (unless the sigma guard
    // stops them all); per row the count is not kept (the range scan runs).
    new_range->n = 0;
    // The rows' errors: the weights' statistics per tensor, and the bias's.
    int32_t se = 0, kk = 0;
    uint32_t see = 0;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t c = (int32_t)e[rows ? rows[t] : t] - ze;
        if (c) {
            se += c;
            see += (uint32_t)(c * c);
            kk++;
        }
    }
    if (!u->per_row) {
        new_range->n = qt_rows_distinct(rows, cnt) ? kk * n : 0;
        if (kk) {
            float fk = (float)kk;
            float me = (float)se / fk;
            float mee = (float)see / fk;
            float mup = me * mx;
            float varp = mee * mxx - mup * mup;
            if (varp < 0.0f) {
                varp = 0.0f;
            }
            qt_std_blend(state + 1, s_g * mup, s_g * qt_sqrt_f32(varp), u->alpha_norm, first);
        }
    }
    int32_t qmin = INT32_MAX, qmax = INT32_MIN;
    const int stoch = u->rounding == QT_ROUND_STOCHASTIC;
    const int32_t r0 = u->rounding == QT_ROUND_NEAREST ? 32768 : 0;
    // Per tensor, sigma and mu are the same for every row: the per-row
    // constants come from two per-call ones, A_i = round(K e_i) by an integer
    // fixed-point multiply (no float per row: it matters on a soft-float M0).
    int32_t Bt = 0;
    qt_fixmul_t Kt = { 0, 1 };
    if (!u->per_row) {
        if (!(state[2] > 0.0f)) {
            cnt = 0;                    // sigma guard: no update at all
            new_range->n = 0;
        } else {
            float c = u->lr / (u->s_w * state[2]);
            Kt = qt_fixmul_from_f32(c * s_g * 65536.0f);
            Bt = qt_round_f32(clamp_f(c * state[1] * 65536.0f, 536870912.0f));
        }
    }
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // The Cortex-M4 rows with |A| < 2^15 keep the draws and extremes in tr.
    qt_m4_rows_t tr;
    tr.s = stoch ? *u->rng : 0u;
    range_to_lanes(1, 0, &tr.lo2, &tr.hi2);
#elif defined(__ARM_ARCH_6M__)
    // The Cortex-M0 rows keep the draws, extremes and window in tr, and A_i
    // comes from the short form inline when it applies.
    qt_m0_rows_t tr;
    m0_rows_init(&tr, stoch ? *u->rng : 0u);
    qt_short_mul_t ks;
    short_mul_init(&ks, Kt);
#endif
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t ce = (int32_t)e[i] - ze;
        if (ce == 0) {
            continue;
        }
        // delta_ij (weight steps, Q16) = A (x_j - z_x) - B
        int32_t A, B;
        if (!u->per_row) {
#if defined(__ARM_ARCH_6M__)
            if (ks.t) {
                const int32_t a = short_mul(ce, &ks);
                A = a > 2097152 ? 2097152 : (a < -2097152 ? -2097152 : a);
            } else
#endif
            {
                const int64_t a = fixmul64(ce, Kt);
                A = a > 2097152 ? 2097152 : (a < -2097152 ? -2097152 : (int32_t)a);
            }
            B = Bt;
        } else {
            float fce = (float)ce;
            float *st = state + QT_STD_STATE_HDR + 2 * i;
            float ace = ce < 0 ? -fce : fce;
            qt_std_blend(st, s_g * (fce * mx), s_g * (ace * sdx), u->alpha_norm, first || !(st[1] > 0.0f));
            float sig = st[1];
            if (!(sig > 0.0f)) {
                continue;
            }
            float c = u->lr / (u->s_w * sig);
            A = qt_round_f32(clamp_f(qt_scale2_f32(c * (s_g * fce), 16), 2097152.0f));
            B = qt_round_f32(clamp_f(qt_scale2_f32(c * st[0], 16), 536870912.0f));
        }
        uint8_t *wr = w + (size_t)i * (size_t)n;
        // w_new = w + floor((r - delta) / 2^16) = w + ((r + B + A zx - A x) >> 16)
        int32_t rb = B + A * zx;
        if (!stoch) {
            rb += u->rounding == QT_ROUND_STOCH_ROW ? (int32_t)(qt_rng_next(u->rng) >> 16) : r0;
        }
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        if (A > -32768 && A < 32768) {
            row_m4(wr, x, n, -A, rb, stoch, &tr);
        } else if (stoch) {
            dense_update_row_stoch_u8(wr, x, n, A, rb, &tr.s, &qmin, &qmax);
        } else {
            dense_update_row_det_u8(wr, x, n, A, rb, &qmin, &qmax);
        }
#elif defined(__ARM_ARCH_6M__)
        row_m0(wr, x, n, A, rb, stoch, &tr);
#else
        if (!stoch) {
            dense_update_row_det_u8(wr, x, n, A, rb, &qmin, &qmax);
        } else {
            dense_update_row_stoch_u8(wr, x, n, A, rb, u->rng, &qmin, &qmax);
        }
#endif
    }
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    if (stoch) {
        *u->rng = tr.s;
    }
    {
        int32_t lo, hi;
        range_from_lanes(tr.lo2, tr.hi2, &lo, &hi);
        if (lo <= hi) {
            qmin = lo < qmin ? lo : qmin;
            qmax = hi > qmax ? hi : qmax;
        }
    }
#elif defined(__ARM_ARCH_6M__)
    if (stoch) {
        *u->rng = tr.s;
    }
    qmin = tr.lo;
    qmax = tr.hi;
#endif
    if (b) {
        bias_update_rank1(b, e, ze, m, rows, k, kk, see, d->s_e, d->s_b, u, state, first);
    }
    state[0] += 1.0f;
    new_range->lo = qmin;
    new_range->hi = qmax;
}

void dense_grad_acc_u8(const uint8_t *e, const uint8_t *x, int32_t *g, int32_t *gb, int32_t m,
    int32_t n, const int32_t *rows, int32_t k, int32_t ze, int32_t zx) {
    const int32_t cnt = rows ? k : m;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t ce = (int32_t)e[i] - ze;
        if (ce == 0) {
            continue;
        }
        if (gb) {
            gb[i] = qt_sat_add_i32(gb[i], ce);
        }
        int32_t *gr = g + (size_t)i * (size_t)n;
        // g += ce * x - ce * zx: the constant folds into one subtraction.  The
        // caller accumulates over a batch: the sum saturates, never wraps.
        int32_t off = ce * zx;
        for (int32_t j = 0; j < n; j++) {
            gr[j] = qt_sat_add_i32(gr[j], ce * (int32_t)x[j] - off);
        }
    }
}
