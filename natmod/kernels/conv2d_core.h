// Loop cores shared by Conv2d and ConvTranspose2d (internal header).
//
// Every core works on a Conv2d-shaped geometry G: the "big" side is G's input
// (in_ch x in_h x in_w), the "small" side G's output, and the two are linked
// by   big_pos = small_pos * stride - pad + k.   Weights are [small_ch][big_ch][kh][kw].
//   gather : small <- big   (Conv2d forward, ConvTranspose2d error propagation)
//   scatter: big   <- small (Conv2d error propagation, ConvTranspose2d forward)
//   corr   : g[small_ch][big_ch][kh][kw] = sum small * big (weight gradients)
// A ConvTranspose2d with geometry T uses G = qt_conv_geom_swap(T).
#ifndef QT_CONV2D_CORE_H
#define QT_CONV2D_CORE_H
#include "conv2d.h"

static inline void qt_conv_geom_swap(const qt_conv_geom_t *t, qt_conv_geom_t *g) {
    // Field by field: a struct copy may become a memcpy call (no libc here).
    g->k_h = t->k_h;
    g->k_w = t->k_w;
    g->stride_h = t->stride_h;
    g->stride_w = t->stride_w;
    g->pad_h = t->pad_h;
    g->pad_w = t->pad_w;
    g->in_ch = t->out_ch;
    g->in_h = t->out_h;
    g->in_w = t->out_w;
    g->out_ch = t->in_ch;
    g->out_h = t->in_h;
    g->out_w = t->in_w;
}

// Range [*lo, *hi) of small positions whose tap k lands inside the big side.
static inline void qt_conv_tap_range(int32_t k, int32_t s, int32_t p, int32_t big,
    int32_t small, int32_t *lo, int32_t *hi) {
    int32_t d = p - k;
    int32_t l = d > 0 ? (d + s - 1) / s : 0;
    int32_t t = big - 1 + d;
    int32_t h = t >= 0 ? t / s + 1 : 0;
    if (h > small) {
        h = small;
    }
    if (l > small) {
        l = small;
    }
    *lo = l;
    *hi = h < l ? l : h;
}

// float32 cores.  sel selects small channels (scatter, corr) or big channels
// (gather); NULL = all.
void qt_conv_gather_f32(const qt_conv_geom_t *g, const float *big, const float *w,
    const float *b, float *small, int relu, const int32_t *sel, int32_t n_sel);
void qt_conv_scatter_f32(const qt_conv_geom_t *g, const float *small, const float *w,
    const float *b, float *big, int relu, const int32_t *sel, int32_t n_sel);
void qt_conv_corr_f32(const qt_conv_geom_t *g, const float *small, const float *big,
    float *gw, const int32_t *sel_small, int32_t n_small, const int32_t *sel_big,
    int32_t n_big);

// Keeps GCC from turning fill/copy loops into memset/memcpy calls (a natmod
// links no libc).
#define QT_CONV_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4 allows unaligned LDR/STR (not LDRD/LDM); a packed struct tells
// the compiler so without memcpy (no libc in a natmod).  The M4 word
// helpers of every uint8 kernel (conv, Dense, DSGU) live here.
typedef struct __attribute__((packed)) {
    uint32_t v;
} qt_conv_u32u_t;
static inline uint32_t ld32u(const uint8_t *p) {
    return ((const qt_conv_u32u_t *)(const void *)p)->v;
}
static inline void st32u(uint8_t *p, uint32_t v) {
    ((qt_conv_u32u_t *)(void *)p)->v = v;
}
// The ReLU's mask on four error bytes: z_e in the lanes where z_y >= y
// (the forward clamped there), e elsewhere.  USUB8 sets a lane's GE flag
// where z_y >= y and SEL takes z_e there, in one asm block: the GE flags
// must not be separated from the USUB8 that set them.  (The conv ReLU
// backward, conv2d_u8.c, and the Dense selection's first pass, select.c.)
static inline uint32_t relu_mask4(uint32_t ev, uint32_t yv, uint32_t ze4, uint32_t zy4) {
    uint32_t t, r;
    __asm__ ("usub8 %[t], %[zy], %[y]\n\tsel %[r], %[ze], %[e]"
        : [t] "=&r" (t), [r] "=r" (r) : [zy] "r" (zy4), [y] "r" (yv), [ze] "r" (ze4), [e] "r" (ev));
    return r;
}
// Bytes 1 and 3 of v as two uint16 lanes: UXTB16 with its free rotation
// (GCC does not fold a separate ROR into it).
static inline uint32_t uxtb16_ror8(uint32_t v) {
    uint32_t r;
    __asm__ ("uxtb16 %0, %1, ror #8" : "=r" (r) : "r" (v));
    return r;
}
#endif

// uint8 cores (rq: zero_in is the streamed source's zero point).  scratch:
// 4-byte aligned, qt_conv_gather_scratch / qt_conv_scatter_scratch bytes.
void qt_conv_gather_u8(const qt_conv_geom_t *g, const uint8_t *big, const uint8_t *w,
    const int32_t *b, uint8_t *small, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch);
void qt_conv_scatter_u8(const qt_conv_geom_t *g, const uint8_t *small, const uint8_t *w,
    const int32_t *b, uint8_t *big, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch);
int32_t qt_conv_gather_scratch(const qt_conv_geom_t *g, int32_t with_sel);
int32_t qt_conv_scatter_scratch(const qt_conv_geom_t *g);
// Gradient helpers: the k_h*k_w rows of one big channel on the small grid,
// and the dot products of a small map with such rows.  The rows are rows
// r0.. of a block of R rows at cols (colsum: from row r0), in the block
// layout the dot products read (groups of four interleaved on the M0);
// R < 0 (the M0 only): the patches of the small pixels instead
// (cols[pix k_h k_w + r]).
void qt_conv_cols_u8(const qt_conv_geom_t *g, const uint8_t *big_ch, int32_t zero_b,
    uint8_t *cols, int32_t *colsum, int32_t r0, int32_t R);
// out[r ostride] (=, or += if accumulate) sum (small - zs)(cols_r - zb); small_sum = sum small.
// work: 2*align4(n) + 8 bytes, 4-byte aligned (the M4 splits small_ch into lanes there).
void qt_conv_corr_rows_u8(const uint8_t *small_ch, int32_t zero_s, int32_t small_sum,
    const uint8_t *cols, const int32_t *colsum, int32_t zero_b, int32_t nrows, int32_t n,
    int32_t *out, int32_t ostride, int accumulate, uint32_t *work);
// Two small maps against the same rows (out0, out1 as out above, not
// accumulated): on the M4 each row is loaded and split into lanes once for
// both; elsewhere two qt_conv_corr_rows_u8 calls.  work: qt_conv_corr2_work_bytes(n).
void qt_conv_corr2_rows_u8(const uint8_t *small0, const uint8_t *small1, int32_t zero_s, int32_t sum0,
    int32_t sum1, const uint8_t *cols, const int32_t *colsum, int32_t zero_b, int32_t nrows, int32_t n,
    int32_t *out0, int32_t *out1, int32_t ostride, uint32_t *work);
int32_t qt_conv_corr2_work_bytes(int32_t n);
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4: four small maps v[0..3] (n bytes, sums sum[k]) against the same
// rows: lanes = qt_conv_lanes4_u8 of the four (qt_conv_lanes4_bytes(n),
// 4-byte aligned), out[k][r] = sum (v_k - zs)(row_r - zb) (not accumulated).
// Each row is read as align4(n) bytes: up to 3 bytes past the last row must
// be readable (scratch); they count zero.
int32_t qt_conv_lanes4_bytes(int32_t n);
void qt_conv_lanes4_u8(const uint8_t *const *v, int32_t n, uint32_t *lanes);
void qt_conv_corr4_rows_u8(const uint32_t *lanes, const int32_t *sum, int32_t zero_s, const uint8_t *rows,
    const int32_t *rowsum, int32_t zero_b, int32_t nrows, int32_t n, int32_t *const *out);
#endif
// R plain rows of n bytes in the block layout the dot products read: copied
// into dst (R n bytes) on the M0, where groups of four are interleaved;
// src itself elsewhere.
const uint8_t *qt_conv_block_rows_u8(const uint8_t *src, int32_t R, int32_t n, uint8_t *dst);
int32_t qt_conv_map_sum_u8(const uint8_t *e, int32_t n, int32_t zero);

// Per-call form of the requantization: y = clamp(round(acc * m) + z, lo, 255)
// exactly as qt_requant_u8 (quant.h), with the rounding constant and the
// shift split precomputed: for shift >= 32 the result is the high word of
// the 64-bit product (one SMLAL on the M4) shifted right.
typedef struct {
    int64_t rnd;
    int32_t mult, shift, relu, zero, lo;
#if defined(__ARM_ARCH_6M__)
    // Cortex-M0 short form (qt_conv_fin): mult = mant24 2^7 (quant.c), so
    // acc * mult / 2^shift = acc (mh 2^12 + ml) / 2^(shift - 7) with 12-bit
    // halves mh, ml; fast = it is exact in 32 bits for |acc| < 2^18 (a
    // multiplier below 1, shift 31..49: the Dense bias term's s_b / (s_w
    // s_x) is often in [1/2, 1), e.g. 0.64 in the VAE's Dense 10 -> 1568).
    int32_t fast, mh, ml, fsh, frnd;
#endif
    // rq->mask as a byte offset from the output (0: no mask; the mask never
    // is the output itself), and its zero point.
    intptr_t moff;
    int32_t zm;
} qt_conv_fin_t;

// out: the output buffer the finish writes (the mask's offset is from it).
static inline void qt_conv_fin_init(qt_conv_fin_t *f, const qt_conv_rq_t *rq, const uint8_t *out) {
    f->moff = rq->mask ? (intptr_t)((uintptr_t)rq->mask - (uintptr_t)out) : 0;
    f->zm = rq->zero_mask;
    f->mult = rq->out.mult;
    f->shift = rq->out.shift;
    f->rnd = (int64_t)1 << (rq->out.shift - 1);
    f->relu = rq->relu;
    f->zero = rq->zero_out;
    f->lo = rq->relu ? rq->zero_out : 0;
#if defined(__ARM_ARCH_6M__)
    const int32_t sh = rq->out.shift, m = rq->out.mult;
    f->fast = sh >= 31 && sh <= 49 && (m & 127) == 0;
    f->mh = (m >> 7) >> 12;
    f->ml = (m >> 7) & 0xfff;
    f->fsh = sh - 19;
    f->frnd = f->fast ? 1 << (sh - 20) : 0;
#endif
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4, the fused one-channel finishes (conv2d_u8.c: gather1_fin_u8,
// scatter1_fin_u8): they take a mask of zero point 0 (a ReLU output's), no
// ReLU of their own and sh = shift - 32 in 1..22, and then finish a value
// as usat8(smmla(acc, mult, rz) >> sh) with rz = 2^(sh-1) + zero 2^sh
// (fin_run_m4's common case, conv2d_fin.c: same value).  Returns rz, or 0
// when they do not apply (rz >= 1 when they do).
static inline int32_t qt_conv_fin_fused_rz(const qt_conv_fin_t *f) {
    const int32_t sh = f->shift - 32;
    if (!f->moff || f->zm || f->relu || sh < 1 || sh > 22) {
        return 0;
    }
    return (int32_t)((1u << (sh - 1)) + ((uint32_t)f->zero << sh));
}
#endif

// round(acc * mult / 2^(32 + sh)), sh >= 0 (a multiplier below 1/2), rnd =
// 2^(31 + sh): the high word of the 64-bit acc * mult + rnd, shifted (one
// SMLAL + ASR on the M4).  |acc * mult| < 2^62, so the sum never wraps, and
// the result fits in 31 bits.
static inline int32_t qt_mul_hi(int32_t acc, int32_t mult, uint64_t rnd, int32_t sh) {
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    // One SMLAL (GCC otherwise multiplies 64x64 when mult is hoisted).
    uint32_t lo = (uint32_t)rnd, hi = (uint32_t)(rnd >> 32);
    __asm__ ("smlal %0, %1, %2, %3" : "+r" (lo), "+r" (hi) : "r" (acc), "r" (mult));
    return (int32_t)hi >> sh;
#else
    return (int32_t)(uint32_t)((rnd + (uint64_t)((int64_t)acc * mult)) >> 32) >> sh;
#endif
}

#if defined(__ARM_ARCH_6M__)
// round(acc * m) in the Cortex-M0 short form: f->fast and |acc| < 2^18 only.
//   floor((acc m24 + 2^(t-1)) / 2^t), t = shift - 7,
//   = floor((acc mh + floor(acc ml / 2^12) + 2^(t-13)) / 2^(t-12)),
// exact by nested floors (2^(shift-8) is a multiple of 2^12), every term
// below 2^30 (t - 12 = fsh <= 30): two 32-bit products instead of four.
static inline int32_t qt_conv_fin_short(int32_t acc, const qt_conv_fin_t *f) {
    return (acc * f->mh + ((acc * f->ml) >> 12) + f->frnd) >> f->fsh;
}
#endif

// One accumulator -> uint8, with the range bookkeeping of every uint8 core
// (ReLU clamps the accumulator at 0 first, as Dense does).
__attribute__((always_inline)) static inline uint8_t qt_conv_fin(int32_t acc, const qt_conv_fin_t *f, int32_t *amin,
    int32_t *amax) {
    if (f->relu && acc < 0) {
        acc = 0;
    }
    if (acc < *amin) {
        *amin = acc;
    }
    if (acc > *amax) {
        *amax = acc;
    }
    int32_t r;
#if defined(__ARM_ARCH_6M__)
    if (f->fast && (uint32_t)acc + (1u << 18) < (1u << 19)) {
        // |acc| < 2^18: most accumulators of the VAE's layers; about a third
        // of the general form's instructions.
        r = qt_conv_fin_short(acc, f) + f->zero;
        return (uint8_t)(r < 0 ? 0 : (r > 255 ? 255 : r));
    }
    // Cortex-M0: the inline 16x16-product form of quant.h instead of
    // libgcc's 64x64 __aeabi_lmul and 64-bit shift calls (~45 instructions
    // fewer per output value).  Same value; |r| > 512 saturates like below
    // (with shift >= 32, |r| < 2^30 and any |r| > 512 clamps to 0 or 255
    // after the zero point anyway).
    const qt_fixmul_t m = {f->mult, f->shift};
    const int64_t q = qt_fixmul_apply64(acc, m);
    r = q > 512 ? 512 : (q < -512 ? -512 : (int32_t)q);
#else
    // (acc * mult + rnd) >> shift; with shift >= 32 only the high word is
    // needed (SMULL/SMLAL + ASR on the M4).
    if (f->shift >= 32) {
        r = qt_mul_hi(acc, f->mult, (uint64_t)f->rnd, f->shift - 32);   // |r| < 2^30
    } else {
        // A multiplier >= 1/2 (output scale below s_w s_x): the product may
        // not fit in int32; saturate it before the zero point is added, so a
        // large accumulator gives 255 (not a wrapped value).
        const int64_t q = ((int64_t)acc * (int64_t)f->mult + f->rnd) >> f->shift;
        r = q > 512 ? 512 : (q < -512 ? -512 : (int32_t)q);
    }
#endif
    // With a fused ReLU acc >= 0, so r >= 0 and the clamp at lo = zero is the
    // clamp at 0: one saturation to 0..255 covers both cases.
    r += f->zero;
    return (uint8_t)(r < 0 ? 0 : (r > 255 ? 255 : r));
}

// Finish n accumulators of one pixel: + c0 (the pixel's zero-point term,
// mod 2^32), + bias (saturating; bacc NULL: none, or already in acc),
// qt_conv_fin, out[i * stride]; range into mm[0], mm[1] (conv2d_fin.c).
// With a mask (f->moff) a masked value is the zero point, out of the range.
void qt_conv_fin_run(const int32_t *acc, const int32_t *bacc, int32_t n, uint8_t *out,
    int32_t stride, uint32_t c0, const qt_conv_fin_t *f, int32_t *mm);
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// The same without bias for accumulators astride apart (acc[i * astride]).
void qt_conv_fin_run_st(const int32_t *acc, int32_t astride, int32_t n, uint8_t *out, int32_t stride, uint32_t c0,
    const qt_conv_fin_t *f, int32_t *mm);
#endif

#endif
