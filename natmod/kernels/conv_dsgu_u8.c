// DSGU paths of the uint8 conv kernels whose work follows k (conv_dsgu.h).
#include "conv_dsgu.h"
#include "conv2d_core.h"   // QT_CONV_NO_LIBCALLS, ld32u, uxtb16_ror8
#include "conv_transpose2d.h"   // the slice scores

#if QT_CONV_CORR_DIRECT
// Filters up to which the direct gradients pay: on qemu-m4 a Conv 16->32
// update costs ~29 k + 29 k per filter direct, ~87 k + 18 k with the
// re-sampled input (docs/KERNELS.md), even at k = 5.  On qemu-m0 ~161 k +
// 33 k with the re-sampled input, ~32 k + ~13 k per filter the input's
// list (72 % zeros; its limit not re-measured since the padded planes').
#ifndef QT_CORR_DIRECT_MAX
#if defined(__ARM_ARCH_6M__)
#define QT_CORR_DIRECT_MAX 5
#else
#define QT_CORR_DIRECT_MAX 4
#endif
#endif

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
// The one-filter gradients' C around its asm loop at -Os (-200 B of
// armv7emsp; +40 instructions a Conv 16->32 update on qemu-m4)
#define QT_DIRECT_OS __attribute__((optimize("Os", "no-tree-loop-distribute-patterns")))

static inline __attribute__((always_inline)) int32_t pad_h(const qt_conv_geom_t *g) {
    return (g->out_h - 1) * g->stride_h + g->k_h;
}
static inline __attribute__((always_inline)) int32_t pad_w(const qt_conv_geom_t *g) {
    return (g->out_w - 1) * g->stride_w + g->k_w;
}
// A padded plane's rows are stored by stride class (py mod stride_h, then
// py / stride_h), rows of pitch() bytes: tap row ky of the output rows sy
// = 0, 1, ... is then one run of rows, pitch() bytes apart.  At stride_w 2,
// k_w 3 and an odd out_w (Conv 16->32: 7) the pitch is rounded up to the
// pairs' bytes, 4 ceil(out_w / 2), so that the pair loops below run a
// whole tap row as one loop (flat()).
static inline __attribute__((always_inline)) int32_t flat(const qt_conv_geom_t *g) {
    return g->stride_w == 2 && g->k_w == 3 && (g->out_w & 1);
}
static inline __attribute__((always_inline)) int32_t pitch(const qt_conv_geom_t *g) {
    return pad_w(g) + flat(g);
}
// a class's bytes (its rows: ceil(pad_h / stride_h))
static inline __attribute__((always_inline)) int32_t class_bytes(const qt_conv_geom_t *g) {
    return (pad_h(g) + g->stride_h - 1) / g->stride_h * pitch(g);
}
static inline __attribute__((always_inline)) int32_t plane_bytes(const qt_conv_geom_t *g) {
    return g->stride_h * class_bytes(g);
}
// The planes, with 4 bytes of slack (the M4 row loop reads up to 3 bytes
// past a row); de follows them.
static inline __attribute__((always_inline)) int32_t planes_bytes(const qt_conv_geom_t *g) {
    return (g->in_ch * plane_bytes(g) + 4 + 3) & ~3;
}
// byte offset of tap row ky's run in a plane (S = stride_h, CB =
// class_bytes, RW = pitch: held in locals, as the asm's memory clobber would
// reload g's fields)
static inline __attribute__((always_inline)) int32_t tap_row(int32_t ky, int32_t S, int32_t CB, int32_t RW) {
    return ky % S * CB + ky / S * RW;
}

// xp[c] = x[c] inside, z_x around it: every plane filled with z_x by words
// (4-byte aligned; the slack after the planes too), then the input rows
// copied in four bytes a step (unaligned words; two bytes a step took
// ~10 k of a Conv 16->32 update on qemu-m4, 14-byte rows), the last word
// ending at the row's end (a byte loop for the rest: ~1.7 k more there).
QT_CONV_NO_LIBCALLS
static void corr_pad_u8(const qt_conv_geom_t *g, const uint8_t *x, int32_t zero_x, uint8_t *xp) {
    const int32_t H = g->in_h, W = g->in_w, PH = pad_h(g), PW = pad_w(g), S = g->stride_h, RW = pitch(g);
    const int32_t left = g->pad_w < PW ? g->pad_w : PW;
    const int32_t inside = W < PW - left ? W : PW - left;
    const int32_t y0 = g->pad_h, y1 = g->pad_h + H < PH ? g->pad_h + H : PH;   // padded rows holding input
    qt_fill_i32((int32_t *)(void *)xp, (size_t)planes_bytes(g) / 4u, (int32_t)((uint32_t)zero_x * 0x01010101u));
    for (int32_t c = 0; c < g->in_ch; c++, x += H * W) {
        for (int32_t cls = 0; cls < S; cls++, xp += class_bytes(g)) {
            uint8_t *dst = xp + left;
            for (int32_t py = cls; py < y1; py += S, dst += RW) {
                if (py < y0) {
                    continue;
                }
                const uint8_t *src = x + (py - y0) * W;
                if (inside < 4) {
                    for (int32_t j = 0; j < inside; j++) {
                        dst[j] = src[j];
                    }
                    continue;
                }
                // words (unaligned: the M4 allows them), the last one ending
                // at the row's end (over bytes already copied)
                const uint8_t *s = src, *last = src + inside - 4;
                uint8_t *d = dst;
                for (; s < last; s += 4, d += 4) {
                    st32u(d, ld32u(s));
                }
                st32u(dst + inside - 4, ld32u(last));
            }
        }
    }
}

// The three taps (k_w = 3) of tap row ky of one padded plane, summed over
// the output positions: a[kx] = sum_pix de[pix] p[off[pix] + kx] - zd, p =
// the plane's row ky, zd = z_x sum de (the padding's part, taken out).  dl lists only the positions with de != 0, packed as
// de << 16 | off (off = sy pitch + sx sw < 2^16): a masked position (the
// ReLU layer's output error, most of it after training) costs nothing, and
// one loop per tap row replaces one per output row (on the M0 14
// instructions per listed position; the rows' loop took 12 per position and
// ~16 per row).
__attribute__((noinline))
static void corr_taps3_u8(const uint32_t *dl, int32_t n, const uint8_t *p, uint32_t zd, int32_t *a) {
    uint32_t a0 = 0, a1 = 0, a2 = 0;
    for (const uint32_t *end = dl + n; dl != end; dl++) {
        const uint32_t v = *dl;
        const uint32_t d = (uint32_t)((int32_t)v >> 16);
        const uint8_t *q = p + (v & 0xffffu);
        a0 += d * q[0];
        a1 += d * q[1];
        a2 += d * q[2];
    }
    a[0] = (int32_t)(a0 - zd);
    a[1] = (int32_t)(a1 - zd);
    a[2] = (int32_t)(a2 - zd);
}

// Cortex-M4, stride_w 2, k_w 3: de as int16 pairs (two output positions,
// rows of n2 pairs, an odd row ending with a 0), so one word of the plane
// row holds both positions' taps 0 and 1 (bytes 0, 2 and 1, 3: UXTB16) and
// the word 2 bytes on their taps 2: 3 loads, 3 UXTB16, 3 SMLAD per 6 MACs.
// A row is read up to 3 bytes past its end (the next row, or the slack
// after the planes), where the odd position's de is 0.
static void corr_taps3_s2_m4(const uint32_t *d2, int32_t n4, int32_t skip, int32_t rows, const uint8_t *p,
    uint32_t zd, int32_t *a) {
    // In asm: GCC's loops took 12 instructions per pair and 9 per row (q
    // not post-incremented, the row's end and step reloaded from the
    // stack); here 11 and 4 (a Conv 16->32 update on qemu-m4: ~3 k less per
    // filter).  n4 = 4 n2, skip = the rest of the pitch, rows = out_h
    // (out_h, out_w >= 1: n2, rows >= 1); with skip 0 the caller makes it
    // one row of all the pairs.
    uint32_t a0 = 0, a1 = 0, a2 = 0, d, w, t;
    const uint32_t *end;
    __asm__ volatile(
        ".syntax unified\n\t"
        "1:\n\t"
        "add %[end], %[dp], %[n4]\n\t"
        "2:\n\t"
        "ldr %[d], [%[dp]], #4\n\t"
        "ldr %[w], [%[q]], #4\n\t"
        "uxtb16 %[t], %[w]\n\t"
        "smlad %[a0], %[t], %[d], %[a0]\n\t"
        "uxtb16 %[t], %[w], ror #8\n\t"
        "smlad %[a1], %[t], %[d], %[a1]\n\t"
        "ldr %[w], [%[q], #-2]\n\t"
        "uxtb16 %[t], %[w]\n\t"
        "smlad %[a2], %[t], %[d], %[a2]\n\t"
        "cmp %[dp], %[end]\n\t"
        "bne 2b\n\t"
        "add %[q], %[q], %[skip]\n\t"
        "subs %[rows], %[rows], #1\n\t"
        "bne 1b\n\t"
        : [dp] "+r"(d2), [q] "+r"(p), [rows] "+r"(rows), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2),
          [end] "=&r"(end), [d] "=&r"(d), [w] "=&r"(w), [t] "=&r"(t)
        : [n4] "r"(n4), [skip] "r"(skip)
        : "cc", "memory");
    a[0] = (int32_t)(a0 - zd);
    a[1] = (int32_t)(a1 - zd);
    a[2] = (int32_t)(a2 - zd);
}

// Two filters' tap row at once: de of filters A and B interleaved by pair
// (A's pair, B's pair: one LDRD), so a plane word and its UXTB16 serve both
// filters' SMLAD: 14 instructions per pair for two filters (two passes of
// corr_taps3_s2_m4: 22).  Its 13 registers leave none for a row loop: one
// run of pairs from d2 to end (flat(): the pitch is the pairs' bytes).
static void corr_taps3x2_s2_m4(const uint32_t *d2, const uint32_t *end, const uint8_t *p, uint32_t zda,
    uint32_t zdb, int32_t *ga, int32_t *gb) {
    uint32_t a0 = 0, a1 = 0, a2 = 0, b0 = 0, b1 = 0, b2 = 0, da, db, w, t;
    __asm__ volatile(
        ".syntax unified\n\t"
        "1:\n\t"
        "ldrd %[da], %[db], [%[dp]], #8\n\t"
        "ldr %[w], [%[q]], #4\n\t"
        "uxtb16 %[t], %[w]\n\t"
        "smlad %[a0], %[t], %[da], %[a0]\n\t"
        "smlad %[b0], %[t], %[db], %[b0]\n\t"
        "uxtb16 %[t], %[w], ror #8\n\t"
        "smlad %[a1], %[t], %[da], %[a1]\n\t"
        "smlad %[b1], %[t], %[db], %[b1]\n\t"
        "ldr %[w], [%[q], #-2]\n\t"
        "uxtb16 %[t], %[w]\n\t"
        "smlad %[a2], %[t], %[da], %[a2]\n\t"
        "smlad %[b2], %[t], %[db], %[b2]\n\t"
        "cmp %[dp], %[end]\n\t"
        "bne 1b\n\t"
        : [dp] "+r"(d2), [q] "+r"(p), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [b0] "+r"(b0),
          [b1] "+r"(b1), [b2] "+r"(b2), [da] "=&r"(da), [db] "=&r"(db), [w] "=&r"(w), [t] "=&r"(t)
        : [end] "r"(end)
        : "cc", "memory");
    ga[0] = (int32_t)(a0 - zda);
    ga[1] = (int32_t)(a1 - zda);
    ga[2] = (int32_t)(a2 - zda);
    gb[0] = (int32_t)(b0 - zdb);
    gb[1] = (int32_t)(b1 - zdb);
    gb[2] = (int32_t)(b2 - zdb);
}

// Filter o's de = e_o - z_e as int16 pairs (two output positions a word)
// at d[sy rs + (sx >> 1) ps], an odd row's last pair ending with a 0;
// returns sum de.  Two bytes a step: their halfword spread to the two
// lanes (UXTB16 of h | h << 8), z_e taken off both (SSUB16), their sum
// by USADA8.
typedef struct __attribute__((packed)) {
    uint16_t v;
} u16u_t;
__attribute__((noinline))
static uint32_t de_pairs(const uint8_t *eo, const qt_conv_geom_t *g, int32_t zero_e, uint32_t *d, int32_t rs,
    int32_t ps) {
    const uint32_t zz = (uint32_t)zero_e * 0x00010001u;
    uint32_t bsum = 0;
    for (int32_t sy = 0; sy < g->out_h; sy++, d += rs) {
        uint32_t *q = d;
        for (const uint8_t *rend = eo + (g->out_w & ~1); eo != rend; eo += 2, q += ps) {
            const uint32_t h = ((const u16u_t *)(const void *)eo)->v;
            *q = __ssub16(__uxtb16(h | h << 8), zz);
            bsum = __usada8(h, 0, bsum);
        }
        if (g->out_w & 1) {
            const uint32_t h = *eo++;
            *q = (h - (uint32_t)zero_e) & 0xffffu;
            bsum += h;
        }
    }
    return bsum - (uint32_t)(g->out_h * g->out_w) * (uint32_t)zero_e;
}

QT_DIRECT_OS
int32_t qt_conv_corr_direct_filter_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    int32_t zero_x, int32_t o, uint8_t *scratch, int32_t *grow) {
    const int32_t SH = g->out_h, SW = g->out_w, SHW = SH * SW, KH = g->k_h, C = g->in_ch, S = g->stride_h;
    const int32_t RW = pitch(g), CB = class_bytes(g), PB = S * CB, step = 3 * KH;
    int32_t *de = (int32_t *)(void *)(scratch + planes_bytes(g));
    const uint8_t *eo = e + o * SHW;
    uint32_t dsum = 0;
    int32_t n2 = 0;
    if (g->stride_w == 2) {
        n2 = (SW + 1) >> 1;
        dsum = de_pairs(eo, g, zero_e, (uint32_t *)de, n2, 1);
    }
    uint32_t *dl = (uint32_t *)de, *dp = dl;   // corr_taps3_u8's list of the nonzero de
    const uint32_t sw = (uint32_t)g->stride_w;
    for (uint32_t sy = 0, row = 0; !n2 && sy < (uint32_t)SH; sy++, row += (uint32_t)RW) {
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
    // (rows of pairs that fill the pitch: one run, no row steps)
    const int32_t one = 4 * n2 == RW, n4 = one ? 4 * n2 * SH : 4 * n2, rows = one ? 1 : SH;
    for (int32_t ky = 0; ky < KH; ky++) {
        const uint8_t *p = scratch + tap_row(ky, S, CB, RW);
        int32_t *a = grow + 3 * ky;
        for (int32_t c = 0; c < C; c++, p += PB, a += step) {
            if (n2) {
                corr_taps3_s2_m4((const uint32_t *)(const void *)de, n4, RW - 4 * n2, rows, p, zd, a);
            } else {
                corr_taps3_u8(dl, nl, p, zd, a);
            }
        }
    }
    return (int32_t)dsum;
}

QT_CONV_NO_LIBCALLS
void qt_conv_corr_direct_filter2_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e, int32_t zero_x,
    int32_t o0, int32_t o1, uint8_t *scratch, int32_t *grow0, int32_t *grow1, int32_t *gb) {
    if (!flat(g)) {   // (one filter at a time)
        gb[o0] = qt_conv_corr_direct_filter_u8(g, e, zero_e, zero_x, o0, scratch, grow0);
        gb[o1] = qt_conv_corr_direct_filter_u8(g, e, zero_e, zero_x, o1, scratch, grow1);
        return;
    }
    const int32_t SHW = g->out_h * g->out_w, KH = g->k_h, C = g->in_ch, S = g->stride_h, step = 3 * KH;
    const int32_t RW = pitch(g), CB = class_bytes(g), PB = S * CB, np = g->out_h * RW / 4;   // pairs per tap row
    uint32_t *de = (uint32_t *)(void *)(scratch + planes_bytes(g));
    const uint32_t s0 = de_pairs(e + o0 * SHW, g, zero_e, de, RW / 2, 2);
    const uint32_t s1 = de_pairs(e + o1 * SHW, g, zero_e, de + 1, RW / 2, 2);
    const uint32_t zd0 = (uint32_t)zero_x * s0, zd1 = (uint32_t)zero_x * s1;   // the padding's z_x de
    gb[o0] = (int32_t)s0;
    gb[o1] = (int32_t)s1;
    for (int32_t ky = 0; ky < KH; ky++) {
        const uint8_t *p = scratch + tap_row(ky, S, CB, RW);
        int32_t *a = grow0 + 3 * ky, *b = grow1 + 3 * ky;
        for (int32_t c = 0; c < C; c++, p += PB, a += step, b += step) {
            corr_taps3x2_s2_m4(de, de + 2 * np, p, zd0, zd1, a, b);
        }
    }
}

QT_CONV_NO_LIBCALLS
int32_t qt_conv_corr_direct_u8(const qt_conv_geom_t *g, int32_t n, const uint8_t *x, int32_t zero_x,
    uint8_t *scratch, int32_t room_cols, int32_t room_all) {
    (void)room_all;
    // de: a list of out_h out_w words, rows of pairs, or two filters' pairs
    // (flat(): 4 out_h (out_w + 1) bytes)
    const int32_t de = 4 * g->out_h * (g->out_w + 1);
    // (3 taps per row only; a plane's offsets in 16 bits: corr_taps3_u8's list)
    if (g->k_w == 3 && n <= QT_CORR_DIRECT_MAX && planes_bytes(g) + de <= room_cols && plane_bytes(g) <= 65536) {
        corr_pad_u8(g, x, zero_x, scratch);
        return room_cols;
    }
    return 0;
}
#else
// A ReLU layer's output is mostly zeros (Conv 16->32's input: 72 % in the
// trained state), and a tap reads x - z_x: so a selected filter's gradients
// are summed over x's values other than z_x, listed once per call, not
// over the output grid.  At stride 2 a padded input position (py, px)
// meets the taps of one parity class: py odd only ky = 1 (at sy = (py - 1)
// / 2), py even ky = 2 and ky = 0 (at sy = py / 2 - 1 and py / 2), the same
// across; so with b = ((py - 1) >> 1, (px - 1) >> 1) an (even, even) value
// v = x - z_x adds v de[b], v de[b + (0, 1)], v de[b + (1, 0)], v de[b +
// (1, 1)] to the taps (2, 2), (2, 0), (0, 2), (0, 0), an (odd, odd) one
// v de[b] to (1, 1) alone: 2.25 products per value, each class a loop of
// its own with fixed taps.  de (e_o - z_e) is a map of (SH + 1) x (SW + 1)
// int32 whose last row and column are 0 (taps past the output grid;
// padding 1 keeps b >= 0 and every input row and column in the planes).
// The list holds v << 16 | (byte offset of b in the map), per channel and
// class.  A value at z_x adds nothing, so the
// padding needs no term of its own: the sums are conv2d_filter_grad_u8's
// integers.  Scratch: the map, the classes' ends (4 per channel), the list.
// The list's builder (C around its asm loop) at -Os on the M0: the module
// is loaded into the Pico's heap.
#if defined(__ARM_ARCH_6M__)
#define QT_XLIST_FN __attribute__((optimize("Os", "no-tree-loop-distribute-patterns")))
#else
#define QT_XLIST_FN QT_CONV_NO_LIBCALLS
#endif

static inline int32_t dmap_w(const qt_conv_geom_t *g) {
    return g->out_w + 1;
}
static inline int32_t dmap_bytes(const qt_conv_geom_t *g) {
    return 4 * (g->out_h + 1) * dmap_w(g);
}

// The values other than z_x of one class's rows onto the list at dp: nrow
// rows of cnt bytes at p, p + 2, ... (a row 2 W after the last), entry
// offsets from 0 (the first row's), DW4 bytes more per row.
#if defined(__ARM_ARCH_6M__)
// 6 instructions per z_x (GCC took 12, forming each entry before the
// test) and 5 per row (GCC's call per row took ~27): off = base + 2 p.
static uint32_t *scan_rows(const uint8_t *p, int32_t cnt, int32_t nrow, int32_t W, int32_t zx, int32_t DW4,
    uint32_t *dp) {
    if (nrow <= 0 || cnt <= 0) {
        return dp;
    }
    const uint8_t *end = p + 2 * cnt, *last = end + (nrow - 1) * 2 * W;
    uint32_t base = 0u - 2u * (uint32_t)(uintptr_t)p - 4u, dbase = (uint32_t)DW4 - 4u * (uint32_t)W;
    const int32_t cnt2 = 2 * cnt, W2 = 2 * W;
    uint32_t t, u;
    __asm__ volatile(
        ".syntax unified\n\t"
        "1:\n\t"
        "ldrb %[t], [%[p]]\n\t"
        "adds %[p], #2\n\t"
        "cmp %[t], %[zx]\n\t"
        "beq 2f\n\t"
        "subs %[t], %[t], %[zx]\n\t"
        "lsls %[t], %[t], #16\n\t"
        "lsls %[u], %[p], #1\n\t"
        "add %[u], %[base]\n\t"
        "orrs %[t], %[u]\n\t"
        "stm %[dp]!, {%[t]}\n\t"
        "2:\n\t"
        "cmp %[p], %[end]\n\t"
        "bne 1b\n\t"
        "cmp %[end], %[last]\n\t"
        "beq 3f\n\t"
        "add %[end], %[W2]\n\t"
        "subs %[p], %[end], %[cnt2]\n\t"
        "add %[base], %[dbase]\n\t"
        "b 1b\n\t"
        "3:\n\t"
        : [p] "+l"(p), [end] "+l"(end), [dp] "+l"(dp), [base] "+h"(base), [t] "=&l"(t), [u] "=&l"(u)
        : [zx] "l"(zx), [cnt2] "l"(cnt2), [W2] "h"(W2), [dbase] "h"(dbase), [last] "h"(last)
        : "cc", "memory");
    return dp;
}
#else
static uint32_t *scan_rows(const uint8_t *p, int32_t cnt, int32_t nrow, int32_t W, int32_t zx, int32_t DW4,
    uint32_t *dp) {
    uint32_t row = 0;
    for (; nrow > 0; nrow--, p += 2 * W, row += (uint32_t)DW4) {
        uint32_t off = row;
        for (int32_t j = 0; j < 2 * cnt; j += 2, off += 4) {
            const int32_t v = (int32_t)p[j] - zx;
            if (v) {
                *dp++ = ((uint32_t)v << 16) | off;
            }
        }
    }
    return dp;
}
#endif

QT_XLIST_FN
int32_t qt_conv_corr_direct_u8(const qt_conv_geom_t *g, int32_t n, const uint8_t *x, int32_t zero_x,
    uint8_t *scratch, int32_t room_cols, int32_t room_all) {
    const int32_t room = room_all & ~3;
    (void)room_cols;
    const int32_t H = g->in_h, W = g->in_w;
    // (padding 1: every input row and column lies inside the padded planes,
    // a row iy has b = iy >> 1, and the classes' first values b = 0)
    if (!(n <= QT_CORR_DIRECT_MAX && g->k_h == 3 && g->k_w == 3 && g->stride_h == 2 && g->stride_w == 2
          && g->pad_h == 1 && g->pad_w == 1 && dmap_bytes(g) <= 65536 && dmap_bytes(g) + 16 * g->in_ch <= room)) {
        return 0;
    }
    uint32_t *ends = (uint32_t *)(void *)(scratch + dmap_bytes(g));
    uint32_t *const list = ends + 4 * g->in_ch, *dp = list;
    const uint32_t *const cap = (const uint32_t *)(const void *)(scratch + room);
    for (int32_t c = 0; c < g->in_ch; c++, x += H * W) {
        for (int32_t cls = 0; cls < 4; cls++) {
            // cls bit 1: py odd (iy even), bit 0: px odd
            const int32_t y0 = 1 - (cls >> 1), x0 = 1 - (cls & 1);
            const int32_t cnt = (W + 1 - x0) >> 1, nrow = (H + 1 - y0) >> 1;
            if (cap - dp < cnt * nrow) {
                return 0;
            }
            dp = scan_rows(x + y0 * W + x0, cnt, nrow, W, zero_x, 4 * dmap_w(g), dp);
            *ends++ = (uint32_t)(dp - list);
        }
    }
    return room;
}

// A class's sums over its entries [p, end): sum v de[b + o] for its taps'
// offsets o: (0, 4, DW4, DW4 + 4) bytes (taps4), (0, S4) (taps2), 0 (taps1).
#if defined(__ARM_ARCH_6M__)
// 19, 12 and 8 instructions per entry (GCC: 22, 15, 9).
static void taps4(const uint32_t *p, const uint32_t *end, const uint8_t *dm, int32_t DW4, int32_t *a) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t v, q, t;
    if (p != end) {
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            "ldm %[p]!, {%[v]}\n\t"
            "uxth %[q], %[v]\n\t"
            "asrs %[v], %[v], #16\n\t"
            "adds %[q], %[q], %[dm]\n\t"
            "ldr %[t], [%[q]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a0], %[t]\n\t"
            "ldr %[t], [%[q], #4]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a1], %[t]\n\t"
            "ldr %[t], [%[q], %[DW4]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a2], %[t]\n\t"
            "adds %[q], #4\n\t"
            "ldr %[t], [%[q], %[DW4]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a3], %[t]\n\t"
            "cmp %[p], %[end]\n\t"
            "bne 1b\n\t"
            : [p] "+l"(p), [a0] "+h"(a0), [a1] "+h"(a1), [a2] "+h"(a2), [a3] "+h"(a3), [v] "=&l"(v),
              [q] "=&l"(q), [t] "=&l"(t)
            : [dm] "l"(dm), [DW4] "l"(DW4), [end] "h"(end)
            : "cc", "memory");
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

static void taps2(const uint32_t *p, const uint32_t *end, const uint8_t *dm, int32_t S4, int32_t *a) {
    int32_t a0 = 0, a1 = 0;
    uint32_t v, q, t;
    if (p != end) {
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            "ldm %[p]!, {%[v]}\n\t"
            "uxth %[q], %[v]\n\t"
            "asrs %[v], %[v], #16\n\t"
            "adds %[q], %[q], %[dm]\n\t"
            "ldr %[t], [%[q]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a0], %[t]\n\t"
            "ldr %[t], [%[q], %[S4]]\n\t"
            "muls %[t], %[v], %[t]\n\t"
            "add %[a1], %[t]\n\t"
            "cmp %[p], %[end]\n\t"
            "bne 1b\n\t"
            : [p] "+l"(p), [a0] "+h"(a0), [a1] "+h"(a1), [v] "=&l"(v), [q] "=&l"(q), [t] "=&l"(t)
            : [dm] "l"(dm), [S4] "l"(S4), [end] "h"(end)
            : "cc", "memory");
    }
    a[0] = a0;
    a[1] = a1;
}

static int32_t taps1(const uint32_t *p, const uint32_t *end, const uint8_t *dm) {
    int32_t a0 = 0;
    uint32_t v, q;
    if (p != end) {
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            "ldm %[p]!, {%[v]}\n\t"
            "uxth %[q], %[v]\n\t"
            "asrs %[v], %[v], #16\n\t"
            "ldr %[q], [%[dm], %[q]]\n\t"
            "muls %[q], %[v], %[q]\n\t"
            "add %[a0], %[q]\n\t"
            "cmp %[p], %[end]\n\t"
            "bne 1b\n\t"
            : [p] "+l"(p), [a0] "+h"(a0), [v] "=&l"(v), [q] "=&l"(q)
            : [dm] "l"(dm), [end] "h"(end)
            : "cc", "memory");
    }
    return a0;
}
#else
static inline int32_t dm_at(const uint8_t *dm, uint32_t v, int32_t o) {
    return *(const int32_t *)(const void *)(dm + (uint16_t)v + o);
}

static void taps4(const uint32_t *p, const uint32_t *end, const uint8_t *dm, int32_t DW4, int32_t *a) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (; p != end; p++) {
        const int32_t v = (int32_t)*p >> 16;
        a0 += v * dm_at(dm, *p, 0);
        a1 += v * dm_at(dm, *p, 4);
        a2 += v * dm_at(dm, *p, DW4);
        a3 += v * dm_at(dm, *p, DW4 + 4);
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

static void taps2(const uint32_t *p, const uint32_t *end, const uint8_t *dm, int32_t S4, int32_t *a) {
    int32_t a0 = 0, a1 = 0;
    for (; p != end; p++) {
        const int32_t v = (int32_t)*p >> 16;
        a0 += v * dm_at(dm, *p, 0);
        a1 += v * dm_at(dm, *p, S4);
    }
    a[0] = a0;
    a[1] = a1;
}

static int32_t taps1(const uint32_t *p, const uint32_t *end, const uint8_t *dm) {
    int32_t a0 = 0;
    for (; p != end; p++) {
        a0 += ((int32_t)*p >> 16) * dm_at(dm, *p, 0);
    }
    return a0;
}
#endif

QT_CONV_NO_LIBCALLS
int32_t qt_conv_corr_direct_filter_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    int32_t zero_x, int32_t o, uint8_t *scratch, int32_t *grow) {
    (void)zero_x;
    const int32_t SH = g->out_h, SW = g->out_w, DW = dmap_w(g);
    int32_t *dm = (int32_t *)(void *)scratch;
    const uint32_t *ends = (const uint32_t *)(const void *)(scratch + dmap_bytes(g));
    const uint32_t *const list = ends + 4 * g->in_ch;
    const uint8_t *eo = e + o * SH * SW;
    int32_t dsum = 0;
    qt_fill_i32(dm, (size_t)((SH + 1) * DW), 0);
    for (int32_t sy = 0; sy < SH; sy++) {
        for (int32_t sx = 0; sx < SW; sx++) {
            const int32_t v = (int32_t)*eo++ - zero_e;
            dm[sy * DW + sx] = v;
            dsum += v;
        }
    }
    const uint8_t *dmb = (const uint8_t *)dm;
    const uint32_t *p = list;
    for (int32_t c = 0; c < g->in_ch; c++, grow += 9, ends += 4) {
        int32_t a[4];
        // (py, px) even: taps (ky kx) 22, 20, 02, 00
        taps4(p, list + ends[0], dmb, 4 * DW, a);
        grow[8] = a[0];
        grow[6] = a[1];
        grow[2] = a[2];
        grow[0] = a[3];
        // py even, px odd: 21, 01
        taps2(list + ends[0], list + ends[1], dmb, 4 * DW, a);
        grow[7] = a[0];
        grow[1] = a[1];
        // py odd, px even: 12, 10
        taps2(list + ends[1], list + ends[2], dmb, 4, a);
        grow[5] = a[0];
        grow[3] = a[1];
        // (py, px) odd: 11
        p = list + ends[3];
        grow[4] = taps1(list + ends[2], p, dmb);
    }
    return dsum;
}
#endif
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
