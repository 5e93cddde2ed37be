// DSGU paths of the uint8 conv kernels whose work follows k (conv_dsgu.h).
#include "conv_dsgu.h"
#include "conv2d_core.h"   // QT_CONV_NO_LIBCALLS, ld32u, uxtb16_ror8
#include "conv_transpose2d.h"   // the slice scores

#if QT_CONV_CORR_DIRECT
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
#endif

// Filters up to which the direct gradients pay: on qemu-m4 a Conv 16->32
// update costs ~29 k + 29 k per filter direct, ~87 k + 18 k with the
// re-sampled input (docs/KERNELS.md), even at k = 5.  On qemu-m0 (plain C,
// no SIMD) ~48 k + 52 k per filter direct against ~161 k + 33 k (k = 3:
// 204 k / 260 k, k = 8: 464 k / 426 k; bench_dsgu --lmin 0.1 / 0.25): even
// at k = 6, cheaper up to 5.
#ifndef QT_CORR_DIRECT_MAX
#if defined(__ARM_ARCH_6M__)
#define QT_CORR_DIRECT_MAX 5
#else
#define QT_CORR_DIRECT_MAX 4
#endif
#endif

static inline int32_t pad_h(const qt_conv_geom_t *g) {
    return (g->out_h - 1) * g->stride_h + g->k_h;
}
static inline int32_t pad_w(const qt_conv_geom_t *g) {
    return (g->out_w - 1) * g->stride_w + g->k_w;
}
// The planes, with 4 bytes of slack (the M4 row loop reads up to 3 bytes
// past a row), 4-byte aligned; de follows them.
static inline int32_t planes_bytes(const qt_conv_geom_t *g) {
    return (g->in_ch * pad_h(g) * pad_w(g) + 4 + 3) & ~3;
}

QT_CONV_NO_LIBCALLS
int32_t qt_conv_corr_direct_bytes(const qt_conv_geom_t *g, int32_t n, int32_t room) {
    const int32_t need = planes_bytes(g) + 4 * g->out_h * g->out_w;
    // (3 taps per row only; a plane's offsets in 16 bits: corr_taps3_u8's list)
    return g->k_w == 3 && n <= QT_CORR_DIRECT_MAX && need <= room && pad_h(g) * pad_w(g) <= 65536 ? need : 0;
}

// xp[c] = x[c] inside, z_x around it: every plane filled with z_x by words
// (4-byte aligned; the slack after the planes too), then the input rows
// copied in, two bytes a step (on the M0 a row of 14 bytes and its
// set-up took ~40 + 5 per byte, border bytes included, row by row).
QT_CONV_NO_LIBCALLS
void qt_conv_corr_pad_u8(const qt_conv_geom_t *g, const uint8_t *x, int32_t zero_x, uint8_t *xp) {
    const int32_t H = g->in_h, W = g->in_w, PH = pad_h(g), PW = pad_w(g);
    const int32_t left = g->pad_w < PW ? g->pad_w : PW;
    const int32_t inside = W < PW - left ? W : PW - left;
    const int32_t y0 = g->pad_h, y1 = g->pad_h + H < PH ? g->pad_h + H : PH;   // padded rows holding input
    qt_fill_i32((int32_t *)(void *)xp, (size_t)planes_bytes(g) / 4u, (int32_t)((uint32_t)zero_x * 0x01010101u));
    for (int32_t c = 0; c < g->in_ch; c++, x += H * W, xp += PH * PW) {
        for (int32_t py = y0; py < y1; py++) {
            const uint8_t *src = x + (py - y0) * W;
            uint8_t *dst = xp + py * PW + left;
            int32_t j = 0;
            for (; j + 2 <= inside; j += 2) {
                const uint8_t a = src[j], b = src[j + 1];
                dst[j] = a;
                dst[j + 1] = b;
            }
            if (j < inside) {
                dst[j] = src[j];
            }
        }
    }
}

// The three taps (k_w = 3) of tap row ky of one padded plane, summed over
// the output positions: a[kx] = sum_pix de[pix] p[off[pix] + kx], p = the
// plane's row ky.  dl lists only the positions with de != 0, packed as
// de << 16 | off (off = sy sh PW + sx sw < 2^16): a masked position (the
// ReLU layer's output error, most of it after training) costs nothing, and
// one loop per tap row replaces one per output row (on the M0 14
// instructions per listed position; the rows' loop took 12 per position and
// ~16 per row).
static void corr_taps3_u8(const uint32_t *dl, int32_t n, const uint8_t *p, uint32_t *a) {
    uint32_t a0 = 0, a1 = 0, a2 = 0;
#if defined(__ARM_ARCH_6M__)
    // By hand: GCC split the UXTH and added p to each offset twice (17).
    if (n > 0) {
        const uint32_t *end = dl + n;
        const uint8_t *p1 = p + 1, *p2 = p + 2;
        uint32_t v, off, t;
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            "ldm %[dl]!, {%[v]}\n\t"
            "uxth %[off], %[v]\n\t"
            "asrs %[v], %[v], #16\n\t"
            "ldrb %[t], [%[p0], %[off]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a0], %[t]\n\t"
            "ldrb %[t], [%[p1], %[off]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a1], %[t]\n\t"
            "ldrb %[t], [%[p2], %[off]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a2], %[t]\n\t"
            "cmp %[dl], %[end]\n\t"
            "bne 1b\n\t"
            : [dl] "+l"(dl), [a0] "+h"(a0), [a1] "+h"(a1), [a2] "+h"(a2), [v] "=&l"(v), [off] "=&l"(off),
              [t] "=&l"(t)
            : [p0] "l"(p), [p1] "l"(p1), [p2] "l"(p2), [end] "h"(end)
            : "cc", "memory");
    }
#else
    for (const uint32_t *end = dl + n; dl != end; dl++) {
        const uint32_t v = *dl;
        const uint32_t d = (uint32_t)((int32_t)v >> 16);
        const uint8_t *q = p + (v & 0xffffu);
        a0 += d * q[0];
        a1 += d * q[1];
        a2 += d * q[2];
    }
#endif
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4, stride_w 2, k_w 3: de as int16 pairs (two output positions,
// rows of n2 pairs, an odd row ending with a 0), so one word of the plane
// row holds both positions' taps 0 and 1 (bytes 0, 2 and 1, 3: UXTB16) and
// the word 2 bytes on their taps 2: 3 loads, 3 UXTB16, 3 SMLAD per 6 MACs.
// A row is read up to 3 bytes past its end (the next row, or the slack
// after the planes), where the odd position's de is 0.
static void corr_taps3_s2_m4(const qt_conv_geom_t *g, const uint32_t *d2, int32_t n2, const uint8_t *p,
    uint32_t *a) {
    const int32_t step = g->stride_h * pad_w(g);
    int32_t a0 = 0, a1 = 0, a2 = 0;
    for (int32_t sy = 0; sy < g->out_h; sy++, p += step) {
        const uint8_t *q = p;
        for (const uint32_t *end = d2 + n2; d2 != end; d2++, q += 4) {
            const int16x2_t dp = (int16x2_t)*d2;
            const uint32_t w0 = ld32u(q), w1 = ld32u(q + 2);
            a0 = __smlad((int16x2_t)__uxtb16(w0), dp, a0);
            a1 = __smlad((int16x2_t)uxtb16_ror8(w0), dp, a1);
            a2 = __smlad((int16x2_t)__uxtb16(w1), dp, a2);
        }
    }
    a[0] = (uint32_t)a0;
    a[1] = (uint32_t)a1;
    a[2] = (uint32_t)a2;
}
#endif

QT_CONV_NO_LIBCALLS
int32_t qt_conv_corr_direct_filter_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    int32_t zero_x, int32_t o, uint8_t *scratch, int32_t *grow) {
    const int32_t SH = g->out_h, SW = g->out_w, SHW = SH * SW, KH = g->k_h;
    const int32_t PW = pad_w(g), PHW = pad_h(g) * PW;
    const uint8_t *xp = scratch;
    int32_t *de = (int32_t *)(void *)(scratch + planes_bytes(g));
    const uint8_t *eo = e + o * SHW;
    uint32_t dsum = 0;
    int32_t n2 = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    if (g->stride_w == 2) {
        n2 = (SW + 1) >> 1;
        int16_t *d16 = (int16_t *)(void *)de;
        for (int32_t sy = 0; sy < SH; sy++, d16 += 2 * n2) {
            d16[2 * n2 - 1] = 0;
            for (int32_t sx = 0; sx < SW; sx++) {
                const int32_t v = (int32_t)*eo++ - zero_e;
                d16[sx] = (int16_t)v;
                dsum += (uint32_t)v;
            }
        }
    }
#endif
    uint32_t *dl = (uint32_t *)de, *dp = dl;   // corr_taps3_u8's list of the nonzero de
    const uint32_t sw = (uint32_t)g->stride_w, sh = (uint32_t)(g->stride_h * PW);
    for (uint32_t sy = 0, row = 0; !n2 && sy < (uint32_t)SH; sy++, row += sh) {
        uint32_t off = row;
        for (const uint8_t *rend = eo + SW; eo != rend; eo++, off += sw) {
            const int32_t v = (int32_t)*eo - zero_e;
            if (v) {
                *dp++ = ((uint32_t)v << 16) | off;
                dsum += (uint32_t)v;
            }
        }
    }
    const int32_t nl = (int32_t)(dp - dl);
    const uint32_t zd = (uint32_t)zero_x * dsum;   // the padding's z_x de, taken out
    for (int32_t c = 0; c < g->in_ch; c++, xp += PHW) {
        for (int32_t ky = 0; ky < KH; ky++) {
            const uint8_t *p = xp + ky * PW;
            uint32_t a[3];
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
            if (n2) {
                corr_taps3_s2_m4(g, (const uint32_t *)(const void *)de, n2, p, a);
            } else
#endif
            {
                corr_taps3_u8(dl, nl, p, a);
            }
            for (int32_t kx = 0; kx < 3; kx++) {
                *grow++ = (int32_t)(a[kx] - zd);
            }
        }
    }
    return (int32_t)dsum;
}
#endif

#if QT_CONVT_SLICES_BUILT
// ConvTranspose2d slice scores (conv_transpose2d.h): here at -O2, not in
// conv_transpose2d_u8.c's -Os; the inner loops out of line, where GCC keeps
// their operands in registers (inline they reloaded from the stack: ~13
// instructions per pixel on the M4).

// em[i] += |e[i stride] - ze|, i < n
__attribute__((noinline))
static void emap_row_u8(uint32_t *em, const uint8_t *e, int32_t stride, int32_t n, int32_t ze) {
    for (int32_t i = 0; i < n; i++, e += stride) {
        const int32_t d = *e - ze;
        em[i] += (uint32_t)(d < 0 ? -d : d);
    }
}

// sum |x - zx| em, saturated to uint32 (each product fits 32 bits)
__attribute__((noinline))
static uint32_t dot_abs_u8(const uint8_t *x, const uint32_t *em, int32_t n, int32_t zx) {
    uint64_t acc = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t d = x[i] - zx;
        acc += (uint64_t)((uint32_t)(d < 0 ? -d : d) * em[i]);
    }
    return acc > 0xffffffffu ? 0xffffffffu : (uint32_t)acc;
}

QT_CONV_NO_LIBCALLS
uint64_t conv_transpose2d_slice_scores_u8(const qt_conv_geom_t *t, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint32_t *scores, uint32_t *emap) {
    const int32_t IW = t->in_w, IHW = t->in_h * IW, OW = t->out_w, OHW = t->out_h * OW;
    uint64_t esum = 0;
    qt_fill_i32((int32_t *)emap, (size_t)IHW, 0);
    for (int32_t co = 0; co < t->out_ch; co++) {
        const uint8_t *ec = e + co * OHW;
        uint32_t s;
        conv_channel_scores_u8(ec, 1, OHW, zero_e, &s);
        esum += s;
        // emap[j] += |e - z_e| over the output positions input pixel j
        // reaches (out = in stride - pad + k; qt_conv_tap_range).
        for (int32_t ky = 0; ky < t->k_h; ky++) {
            int32_t ylo, yhi;
            qt_conv_tap_range(ky, t->stride_h, t->pad_h, t->out_h, t->in_h, &ylo, &yhi);
            for (int32_t kx = 0; kx < t->k_w; kx++) {
                int32_t xlo, xhi;
                qt_conv_tap_range(kx, t->stride_w, t->pad_w, OW, IW, &xlo, &xhi);
                for (int32_t iy = ylo; iy < yhi && xlo < xhi; iy++) {
                    const int32_t row = (iy * t->stride_h - t->pad_h + ky) * OW - t->pad_w + kx;
                    emap_row_u8(emap + iy * IW + xlo, ec + row + xlo * t->stride_w, t->stride_w, xhi - xlo,
                        zero_e);
                }
            }
        }
    }
    // emap <= 255 out_ch k_h k_w <= 255 * 32767, so a product fits 32 bits;
    // the sum over h w pixels may not (saturated: ties go to the lower index).
    for (int32_t ci = 0; ci < t->in_ch; ci++) {
        scores[ci] = dot_abs_u8(x + ci * IHW, emap, IHW, zero_x);
    }
    return esum;
}
#endif
