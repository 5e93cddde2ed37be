// uint8 ConvTranspose2d: the Conv2d cores on the swapped geometry (the
// transposed convolution's output is the "big" side).
#include "conv2d_core.h"
#include "conv_transpose2d.h"

static inline int32_t align4(int32_t n) {
    return (n + 3) & ~3;
}

void conv_transpose2d_forward_u8(const qt_conv_geom_t *t, const uint8_t *x, const uint8_t *w,
    const int32_t *b, uint8_t *y, const qt_conv_rq_t *rq, int32_t *stats, uint8_t *scratch) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    qt_conv_scatter_u8(&g, x, w, b, y, rq, stats, NULL, 0, scratch);
}

// Error propagation: a Conv2d of the error with the same weights; DSGU
// selects error channels, which are the gathered (big) channels.
void conv_transpose2d_backward_input_u8(const qt_conv_geom_t *t, const uint8_t *e,
    const uint8_t *w, uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    qt_conv_gather_u8(&g, e, w, NULL, ex, rq, stats, sel, n_sel, scratch);
}

int32_t conv_transpose2d_grad_scratch_u8(const qt_conv_geom_t *t) {
    const int32_t KK = t->k_h * t->k_w;
    const int32_t IHW = t->in_h * t->in_w;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // x's channels as lanes, four per group (conv_transpose2d_grad_prepare_u8)
    const int32_t xrows = (t->in_ch + 3) / 4 * qt_conv_lanes4_bytes(IHW);
#else
    const int32_t xrows = align4(t->in_ch * IHW);
#endif
    return 4 * t->in_ch + 4 * KK + align4(KK * IHW) + xrows;
}

int32_t conv_transpose2d_scratch_len_u8(const qt_conv_geom_t *t) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    int32_t fwd = qt_conv_scatter_scratch(&g);
    int32_t bwd = qt_conv_gather_scratch(&g, 1);
    // gradient + the fused update's row (int32 grow, uint8 weights, int32 gb)
    const int32_t CKK = t->in_ch * t->k_h * t->k_w;
    int32_t grad = conv_transpose2d_grad_scratch_u8(t) + 4 * CKK + align4(CKK) + 4 * t->out_ch
                   + qt_conv_corr2_work_bytes(t->in_h * t->in_w);
    int32_t n = fwd > bwd ? fwd : bwd;
    return n > grad ? n : grad;
}

#if QT_CONVT_SLICES_BUILT
// Only a layer switched to the slices (convt_slices.attach) takes these
// bytes, in a scratch of its own: the shared scratch of every other model
// stays at the filters path's size.
int32_t conv_transpose2d_slices_scratch_len_u8(const qt_conv_geom_t *t) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    // update: a slice's gradient row is out_ch k_h k_w items, then gb and
    // the lanes (conv_transpose2d_update_slices_u8)
    int32_t upd = conv_transpose2d_grad_scratch_u8(t) + 4 * t->out_ch * (t->k_h * t->k_w + 1)
                  + qt_conv_corr2_work_bytes(t->in_h * t->in_w);
    // error propagation: the gather's, then the selected slices side by side,
    // then (mask-aware) their channels' masks side by side
    // (in int64: each term is below 2^30 for an accepted geometry, the sum
    // need not be; a length past int32 is one no buffer has)
    int64_t bwd = (int64_t)qt_conv_gather_scratch(&g, 0) + align4(t->in_ch * t->out_ch * t->k_h * t->k_w)
                  + (int64_t)t->in_ch * t->in_h * t->in_w;
    bwd = bwd > INT32_MAX ? INT32_MAX : bwd;
    return upd > bwd ? upd : (int32_t)bwd;
}
#endif

#if defined(__thumb__) && !defined(__thumb2__)
// Cortex-M0, 3x3 taps: a filter's gradient from the patches of its error map
// (the k_h k_w taps of each input pixel side by side, qt_conv_cols_u8 with R
// < 0) and x's channels as they are, one channel at a time: the pixels
// where x is its zero point (a ReLU output's zeros: ~half of the VAE's) add
// nothing and are skipped, the rest take 9 MACs against their patch with
// the nine sums in registers.  (The rows form dotted every tap row with
// every channel, zeros too, and interleaved x's rows per call.)
// Only for up to four filters a call (ConvTranspose2d 16->1; 32->16 with
// DSGU's k <= 4): the rows form's interleave of x, once per call, is then
// shared by few, and with 16 (ConvTranspose2d 32->16, 7x7 inputs, all 16
// filters) it is the cheaper (bench_dsgu qemu-m0 --lmin 1.0, its update:
// 1075.7 k, this 1122.7 k; --lmin 0.1, k = 1: 111.3 k, this 91.6 k).
__attribute__((noinline)) static int corr9_on(const qt_conv_geom_t *t, int32_t n) {
    return t->k_h * t->k_w == 9 && n <= 4;
}
#define QT_CONVT_CORR9(t, n) corr9_on(t, n)

// out[t] = sum_p (x[p] - zx)(pat[9 p + t] - z) (mod 2^32), t < 9, over the
// n >= 1 pixels, z = out[0] on entry, as sum_p (x[p] - zx) pat[9 p + t] - z
// sum_p (x[p] - zx) (the second sum here: x's own sum per channel took a
// pass of 4 instructions per byte): the pixels with x[p] == zx are skipped,
// 38 instructions per pixel kept, 8 per skipped one.  All fourteen
// registers: the sums in r5-r7, r8-r12, lr, sum (x - zx) on the stack.
__attribute__((naked, noinline))
static void corr9_u8(const uint8_t *pat, const uint8_t *x, int32_t n, int32_t zx, int32_t *out) {
    __asm__ volatile (
        ".syntax unified\n"
        "push {r4, r5, r6, r7, lr}\n"
        "mov r4, r8\n" "mov r5, r9\n" "mov r6, r10\n" "mov r7, r11\n"
        "push {r4, r5, r6, r7}\n"
        "adds r2, r1, r2\n"
        "movs r5, #0\n"
        "push {r2, r5}\n"            // x + n at sp, sum (x - zx) at sp + 4; out now at sp + 44
        "mov r4, r1\n"
        "movs r6, #0\n" "movs r7, #0\n"
        "mov r8, r5\n" "mov r9, r5\n" "mov r10, r5\n" "mov r11, r5\n" "mov ip, r5\n" "mov lr, r5\n"
        "1:\n"
        "ldrb r1, [r4]\n"
        "adds r4, #1\n"
        "subs r1, r1, r3\n"
        "beq 2f\n"
        "ldr r2, [sp, #4]\n" "adds r2, r2, r1\n" "str r2, [sp, #4]\n"
        "ldrb r2, [r0, #0]\n" "muls r2, r1, r2\n" "adds r5, r5, r2\n"
        "ldrb r2, [r0, #1]\n" "muls r2, r1, r2\n" "adds r6, r6, r2\n"
        "ldrb r2, [r0, #2]\n" "muls r2, r1, r2\n" "adds r7, r7, r2\n"
        "ldrb r2, [r0, #3]\n" "muls r2, r1, r2\n" "add r8, r2\n"
        "ldrb r2, [r0, #4]\n" "muls r2, r1, r2\n" "add r9, r2\n"
        "ldrb r2, [r0, #5]\n" "muls r2, r1, r2\n" "add r10, r2\n"
        "ldrb r2, [r0, #6]\n" "muls r2, r1, r2\n" "add r11, r2\n"
        "ldrb r2, [r0, #7]\n" "muls r2, r1, r2\n" "add ip, r2\n"
        "ldrb r2, [r0, #8]\n" "muls r2, r1, r2\n" "add lr, r2\n"
        "2:\n"
        "adds r0, #9\n"
        "ldr r2, [sp]\n"
        "cmp r4, r2\n"
        "bne 1b\n"
        "ldr r2, [sp, #44]\n"
        "ldr r1, [r2]\n"
        "ldr r0, [sp, #4]\n"
        "muls r1, r0, r1\n"         // z sum (x - zx)
        "subs r5, r5, r1\n" "subs r6, r6, r1\n" "subs r7, r7, r1\n"
        "stm r2!, {r5, r6, r7}\n"
        "mov r5, r8\n" "mov r6, r9\n" "mov r7, r10\n"
        "subs r5, r5, r1\n" "subs r6, r6, r1\n" "subs r7, r7, r1\n"
        "stm r2!, {r5, r6, r7}\n"
        "mov r5, r11\n" "mov r6, ip\n" "mov r7, lr\n"
        "subs r5, r5, r1\n" "subs r6, r6, r1\n" "subs r7, r7, r1\n"
        "stm r2!, {r5, r6, r7}\n"
        "add sp, #8\n"
        "pop {r4, r5, r6, r7}\n"
        "mov r8, r4\n" "mov r9, r5\n" "mov r10, r6\n" "mov r11, r7\n"
        "pop {r4, r5, r6, r7, pc}\n"
        ".syntax divided\n");
}
#else
#define QT_CONVT_CORR9(t, n) 0
#endif

// work: colsum (4 KK bytes), cols (align4(KK IHW)), then x's rows.
const uint8_t *conv_transpose2d_grad_prepare_u8(const qt_conv_geom_t *t, const uint8_t *x, int32_t n,
    int32_t *xsum, uint8_t *work) {
    const int32_t IHW = t->in_h * t->in_w, KK = t->k_h * t->k_w;
    if (QT_CONVT_CORR9(t, n)) {
        return x;   // the M0's 3x3 taps read x itself, and sum it (corr9_u8): no xsum
    }
    for (int32_t ci = 0; ci < t->in_ch; ci++) {
        xsum[ci] = qt_conv_map_sum_u8(x + ci * IHW, IHW, 0);
    }
    uint8_t *xrows = work + 4 * KK + align4(KK * IHW);
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Cortex-M4: x's channels are the shared vectors, split into lanes once
    // per call in groups of four (a last short group repeats its last
    // channel), and each filter's re-sampled taps the rows.
    for (int32_t ci = 0; ci < t->in_ch; ci += 4) {
        const uint8_t *v[4];
        for (int32_t k = 0; k < 4; k++) {
            v[k] = x + (ci + k < t->in_ch ? ci + k : t->in_ch - 1) * IHW;
        }
        qt_conv_lanes4_u8(v, IHW, (uint32_t *)(void *)(xrows + ci / 4 * qt_conv_lanes4_bytes(IHW)));
    }
    return xrows;
#else
    return qt_conv_block_rows_u8(x, t->in_ch, IHW, xrows);
#endif
}

int32_t conv_transpose2d_filter_grad_u8(const qt_conv_geom_t *t, const uint8_t *e,
    int32_t zero_e, const uint8_t *xrows, int32_t zero_x, const int32_t *xsum, int32_t co,
    int32_t *grow, uint8_t *work, uint32_t *lanes) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    const int32_t IHW = t->in_h * t->in_w, OHW = t->out_h * t->out_w;
    const int32_t KK = t->k_h * t->k_w;
    const uint8_t *ec = e + co * OHW;
    // The filter's error map re-sampled per tap onto the input grid (plain
    // rows: R = 0; the M0's 3x3 taps: patches, corr9_u8), then per tap one
    // dot product with every input channel:
    // the in_ch channels are the rows (groups of four on the M0, pairs on
    // the M4) and the tap's row the shared vector.  (Per channel against
    // the k_h k_w taps left a ninth row alone at 4.5 instructions per MAC on
    // the M0 and split each channel into lanes once per filter on the M4.)
    int32_t *colsum = (int32_t *)(void *)work;
    uint8_t *cols = work + 4 * KK;
    qt_conv_cols_u8(&g, ec, zero_e, cols, colsum, 0, xsum ? 0 : -1);
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Cortex-M4: four input channels per pass over the filter's k_h k_w tap
    // rows (qt_conv_corr4_rows_u8; a tap row is read as align4(IHW) bytes,
    // those past the last are still cols' align4 or the lanes, and count
    // zero).  xrows: the lanes of conv_transpose2d_grad_prepare_u8.
    (void)lanes;
    for (int32_t ci = 0; ci < t->in_ch; ci += 4) {
        int32_t xs[4];
        int32_t *out[4];
        for (int32_t k = 0; k < 4; k++) {
            const int32_t c = ci + k < t->in_ch ? ci + k : t->in_ch - 1;
            xs[k] = xsum[c];
            out[k] = grow + c * KK;
        }
        qt_conv_corr4_rows_u8((const uint32_t *)(const void *)(xrows + ci / 4 * qt_conv_lanes4_bytes(IHW)), xs,
            zero_x, cols, colsum, zero_e, KK, IHW, out);
    }
#else
#if defined(__thumb__) && !defined(__thumb2__)
    if (!xsum) {
        // Cortex-M0: the patches (above) against x's channels one by one.
        for (int32_t ci = 0; ci < t->in_ch; ci++) {
            int32_t *gr = grow + ci * KK;
            gr[0] = zero_e;
            corr9_u8(cols, xrows + ci * IHW, IHW, zero_x, gr);
        }
        return qt_conv_map_sum_u8(ec, OHW, zero_e);
    }
#endif
    // Taps in pairs: on the M4 each input row is then read once per two taps.
    int32_t r = 0;
    for (; r + 2 <= KK; r += 2) {
        qt_conv_corr2_rows_u8(cols + r * IHW, cols + (r + 1) * IHW, zero_e, colsum[r], colsum[r + 1], xrows,
            xsum, zero_x, t->in_ch, IHW, grow + r, grow + r + 1, KK, lanes);
    }
    if (r < KK) {
        qt_conv_corr_rows_u8(cols + r * IHW, zero_e, colsum[r], xrows, xsum, zero_x, t->in_ch, IHW,
            grow + r, KK, 0, lanes);
    }
#endif
    return qt_conv_map_sum_u8(ec, OHW, zero_e);
}

void conv_transpose2d_grad_acc_u8(const qt_conv_geom_t *t, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, int32_t *gw, int32_t *gb,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    const int32_t KK = t->k_h * t->k_w, CO = t->out_ch;
    int32_t *xsum = (int32_t *)(void *)scratch;
    uint8_t *work = scratch + 4 * t->in_ch;
    int32_t *grow = (int32_t *)(void *)(scratch + conv_transpose2d_grad_scratch_u8(t));
    const int32_t CKK = t->in_ch * KK;
    uint32_t *lanes = (uint32_t *)(void *)((uint8_t *)(grow + CKK) + align4(CKK) + 4 * CO);
    const int32_t n = sel ? n_sel : CO;
    const uint8_t *xrows = conv_transpose2d_grad_prepare_u8(t, x, n, xsum, work);
    if (QT_CONVT_CORR9(t, n)) {
        xsum = NULL;   // (x as it is)
    }
    for (int32_t j = 0; j < n; j++) {
        const int32_t co = sel ? sel[j] : j;
        int32_t gbc = conv_transpose2d_filter_grad_u8(t, e, zero_e, xrows, zero_x, xsum, co, grow, work, lanes);
        for (int32_t ci = 0; ci < t->in_ch; ci++) {
            int32_t *dst = gw + (ci * CO + co) * KK;
            for (int32_t r = 0; r < KK; r++) {
                dst[r] = qt_sat_add_i32(dst[r], grow[ci * KK + r]);   // batch sums saturate
            }
        }
        if (gb) {
            gb[co] = qt_sat_add_i32(gb[co], gbc);
        }
    }
}

// nblk blocks of len bytes, the blocks dstride / sstride bytes apart: a
// filter's weights [ci][kk] (strided in [ci][co][kk]) to a row and back.
// Out of line with the pointers stepping (the indexed loops it replaces
// took ~11 instructions per byte on the M0).
QT_CONV_NO_LIBCALLS
__attribute__((noinline)) static void copy_blocks_u8(uint8_t *dst, int32_t dstride, const uint8_t *src, int32_t sstride, int32_t nblk,
    int32_t len) {
    for (; nblk > 0; nblk--, dst += dstride, src += sstride) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        int32_t r = 0;
        for (; r + 4 <= len; r += 4) {   // Cortex-M4: four bytes at a time (unaligned words)
            st32u(dst + r, ld32u(src + r));
        }
        for (; r < len; r++) {
            dst[r] = src[r];
        }
#elif defined(__ARM_ARCH_6M__)
        // Cortex-M0: down to 0 by hand, 4 instructions a byte (GCC -Os took
        // 5 inline and 6 out of line, where it reloaded len or split the
        // loop's test: +6 k of ConvT 32->16's update at k = 16).
        if (len > 0) {
            uint32_t r = (uint32_t)len, v;
            __asm__ volatile(
                ".syntax unified\n\t"
                "1:\n\t"
                "subs %[r], #1\n\t"
                "ldrb %[v], [%[s], %[r]]\n\t"
                "strb %[v], [%[d], %[r]]\n\t"
                "bne 1b\n\t"
                : [r] "+l"(r), [v] "=&l"(v)
                : [s] "l"(src), [d] "l"(dst)
                : "cc", "memory");
        }
#else
        for (int32_t r = 0; r < len; r++) {
            dst[r] = src[r];
        }
#endif
    }
}

QT_CONV_NO_LIBCALLS
void conv_transpose2d_update_u8(const qt_conv_geom_t *t, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint8_t *w, int32_t *b, const int32_t *sel, int32_t n_sel,
    float s_g, float s_gb, float s_b, const qt_update_t *u, float *state, int first,
    qt_wrange_t *new_range, uint8_t *scratch) {
    const int32_t KK = t->k_h * t->k_w, CO = t->out_ch, CI = t->in_ch, CKK = CI * KK;
    int32_t *xsum = (int32_t *)(void *)scratch;
    uint8_t *work = scratch + 4 * CI;
    int32_t *grow = (int32_t *)(void *)(scratch + conv_transpose2d_grad_scratch_u8(t));
    uint8_t *wrow = (uint8_t *)(grow + CKK);
    int32_t *gb = (int32_t *)(void *)(wrow + align4(CKK));
    uint32_t *lanes = (uint32_t *)(void *)(gb + CO);
    const int32_t n = sel ? n_sel : CO;
    const uint8_t *xrows = conv_transpose2d_grad_prepare_u8(t, x, n, xsum, work);
    if (QT_CONVT_CORR9(t, n)) {
        xsum = NULL;   // (x as it is)
    }
    qt_wrange_init(new_range);
    for (int32_t j = 0; j < n; j++) {
        const int32_t co = sel ? sel[j] : j;
        gb[co] = conv_transpose2d_filter_grad_u8(t, e, zero_e, xrows, zero_x, xsum, co, grow, work, lanes);
        copy_blocks_u8(wrow, KK, w + co * KK, CO * KK, CI, KK);
        qt_wrange_t r2;
        qt_update_rows_u8(wrow, grow, 1, CKK, s_g, u, state + 2 * co, first, &r2);
        copy_blocks_u8(w + co * KK, CO * KK, wrow, KK, CI, KK);
        qt_wrange_merge(new_range, &r2);
    }
    if (!qt_rows_distinct(sel, n)) {
        new_range->n = 0;
    }
    if (b) {
        qt_update_bias_i32(b, gb, NULL, 0, CO, sel ? sel : NULL, n, s_gb, s_b, u, state, first);
    }
}

// ---- DSGU over input-channel slices (the layer option 'input') ----------
// The structures are the in_ch slices w[ci] = w[ci, :, :, :], contiguous
// out_ch*k_h*k_w bytes in the [in][out][kh][kw] layout.  A slice's
// gradient is (x_ci - z_x) correlated with every output channel's error,
// and the error it propagates is the input channel ex[ci] alone: both
// shrink with k (a filter of a layer with one output channel is always
// selected).  See conv_transpose2d.h for the score.

#if QT_CONVT_SLICES_BUILT
// n bytes of v: words where dst is aligned (a byte loop took ~4
// instructions per byte, 12 k of a ConvT 16->1 call at k = 1 on the M4).
QT_CONV_NO_LIBCALLS
static void fill_bytes_u8(uint8_t *dst, int32_t n, uint8_t v) {
    for (; n > 0 && ((uintptr_t)dst & 3); n--) {
        *dst++ = v;
    }
    qt_fill_i32((int32_t *)(void *)dst, (size_t)(n >> 2), (int32_t)(v * 0x01010101u));
    dst += n & ~3;
    for (n &= 3; n > 0; n--) {
        *dst++ = v;
    }
}

QT_CONV_NO_LIBCALLS
void conv_transpose2d_backward_slices_u8(const qt_conv_geom_t *t, const uint8_t *e, const uint8_t *w,
    uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats, const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    const int32_t IHW = t->in_h * t->in_w, L = t->out_ch * t->k_h * t->k_w, CI = t->in_ch;
    // The selected slices side by side: a ConvTranspose2d of n_sel input
    // channels, whose error maps go to ex's first n_sel channels (the
    // gather's scratch for all in_ch is the most it needs with fewer).
    uint8_t *ws = scratch + qt_conv_gather_scratch(&g, 0);
    for (int32_t j = 0; j < n_sel; j++) {
        copy_blocks_u8(ws + j * L, 0, w + sel[j] * L, 0, 1, L);
    }
    g.out_ch = n_sel;
    qt_conv_rq_t mrq;
    if (rq->mask) {
        // Mask-aware: the finish reads the mask byte at the output's offset
        // (qt_conv_fin_t.moff), but slice j's map is computed in channel j,
        // not sel[j]: its mask is channel sel[j]'s, copied to channel j of
        // a copy side by side (read from the input's mask, it masked the
        // wrong channel).
        uint8_t *ms = ws + align4(CI * L);
        for (int32_t j = 0; j < n_sel; j++) {
            copy_blocks_u8(ms + j * IHW, 0, rq->mask + sel[j] * IHW, 0, 1, IHW);
        }
        mrq = *rq;
        mrq.mask = ms;
        rq = &mrq;
    }
    qt_conv_gather_u8(&g, e, ws, NULL, ex, rq, stats, NULL, 0, scratch);
    // Then each to its channel, from the last channel down (sel strictly
    // ascending: sel[j] >= j, and an unselected channel above sel[j] is
    // above j, so no map is overwritten before it moved); the other
    // channels get no error (their zero point; 0 joins the range).
    int32_t j = n_sel - 1;
    for (int32_t ci = CI - 1; ci >= 0; ci--) {
        if (j >= 0 && sel[j] == ci) {
            copy_blocks_u8(ex + ci * IHW, 0, ex + j * IHW, 0, ci != j, IHW);
            j--;
        } else {
            fill_bytes_u8(ex + ci * IHW, IHW, (uint8_t)rq->zero_out);
        }
    }
    if (n_sel < CI) {
        stats[0] = stats[0] < 0 ? stats[0] : 0;
        stats[1] = stats[1] > 0 ? stats[1] : 0;
    }
}

QT_CONV_NO_LIBCALLS
void conv_transpose2d_update_slices_u8(const qt_conv_geom_t *t, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint8_t *w, int32_t *b, const int32_t *sel, int32_t n_sel,
    float s_g, float s_gb, float s_b, const qt_update_t *u, float *state, int first,
    qt_wrange_t *new_range, uint8_t *scratch) {
    const int32_t KK = t->k_h * t->k_w, CO = t->out_ch, L = CO * KK, IHW = t->in_h * t->in_w;
    const int32_t OHW = t->out_h * t->out_w;
    // One input channel at a time: t1 is the layer with in_ch = 1 (swapped
    // twice: a field copy), whose per-filter gradient is the slice's row
    // for that output channel.  Scratch as conv_transpose2d_update_u8,
    // grow L = out_ch k_h k_w items (conv_transpose2d_scratch_len_u8).
    qt_conv_geom_t g1, t1;
    qt_conv_geom_swap(t, &g1);
    qt_conv_geom_swap(&g1, &t1);
    t1.in_ch = 1;
    int32_t *xsum = (int32_t *)(void *)scratch;
    uint8_t *work = scratch + 4 * t->in_ch;
    int32_t *grow = (int32_t *)(void *)(scratch + conv_transpose2d_grad_scratch_u8(t));
    int32_t *gb = grow + L;
    uint32_t *lanes = (uint32_t *)(void *)(gb + CO);
    qt_wrange_init(new_range);
    const int32_t n = sel ? n_sel : t->in_ch;
    for (int32_t j = 0; j < n; j++) {
        const int32_t ci = sel ? sel[j] : j;
        const uint8_t *xrows = conv_transpose2d_grad_prepare_u8(&t1, x + ci * IHW, CO, xsum, work);
        for (int32_t co = 0; co < CO; co++) {
            conv_transpose2d_filter_grad_u8(&t1, e, zero_e, xrows, zero_x, xsum, co, grow + co * KK, work, lanes);
        }
        qt_wrange_t r2;
        qt_update_rows_u8(w + ci * L, grow, 1, L, s_g, u, state + 2 * ci, first, &r2);
        qt_wrange_merge(new_range, &r2);
    }
    if (!qt_rows_distinct(sel, n)) {
        new_range->n = 0;
    }
    if (b) {   // a bias belongs to an output channel: all of them
        for (int32_t co = 0; co < CO; co++) {
            gb[co] = qt_conv_map_sum_u8(e + co * OHW, OHW, zero_e);
        }
        qt_update_bias_i32(b, gb, NULL, 0, CO, NULL, CO, s_gb, s_b, u, state, first);
    }
}
#endif
