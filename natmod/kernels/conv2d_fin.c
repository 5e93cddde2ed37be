// The per-output-value finish of the uint8 conv cores (conv2d_core.h), in
// its own file: it is -O2 on every arch (conv2d_u8.c is -Os on armv6m, where
// GCC cannot allocate the registers of the M0 loop below).
#include "conv2d_core.h"
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
#endif

// _qtrain_float links the uint8 cores for the mixed mode's updates but never
// calls them mask-aware (no mask: f->moff is 0) or in a loop where speed
// counts: that module leaves the mask's code out and calls the M4 finish
// (fin_run_m4) instead of inlining it twice (the Nano's heap holds both).
#if defined(QT_FLOAT_MODULE) && QT_FLOAT_MODULE
#define QT_MOFF(f) 0
#define QT_FIN_M4_INLINE __attribute__((noinline))
#else
#define QT_MOFF(f) ((f)->moff)
#define QT_FIN_M4_INLINE __attribute__((always_inline)) inline
#endif

#if defined(__thumb__) && !defined(__thumb2__)
// Cortex-M0, the short requantization of qt_conv_fin (|acc| < 2^18, f->fast)
// for one accumulator in a, by hand: the GCC code reloads every constant
// and took ~55 instructions per value; this is 27 (28 with ReLU).  t, u are
// temporaries, k = f; lo, hi, c0, stride, zm live in high registers.  lo and
// hi come in clamped to the short form's range (qt_conv_fin_run), so a value
// outside it is always a new extreme: the test whether the short form holds
// is taken only then (in the branch that stores the extreme), not per value
// (4 instructions).  Then the clamp to 0..255: one shift tests both ends.
#define QT_FIN_M0(MASK, RELU) \
    ".syntax unified\n" \
    "1:\n" \
    MASK \
    "ldm %[pa]!, {%[a]}\n" \
    "add %[a], %[c0]\n" \
    RELU \
    "cmp %[a], %[lo]\n" \
    "blt 6f\n" \
    "2:\n" \
    "cmp %[a], %[hi]\n" \
    "bgt 7f\n" \
    "3:\n" \
    "ldr %[t], [%[k], %[oml]]\n" \
    "muls %[t], %[a], %[t]\n" \
    "asrs %[t], %[t], #12\n" \
    "ldr %[u], [%[k], %[omh]]\n" \
    "muls %[u], %[a], %[u]\n" \
    "adds %[t], %[t], %[u]\n" \
    "ldr %[u], [%[k], %[ornd]]\n" \
    "adds %[t], %[t], %[u]\n" \
    "ldr %[u], [%[k], %[osh]]\n" \
    "asrs %[t], %[t], %[u]\n" \
    "ldr %[u], [%[k], %[oz]]\n" \
    "adds %[t], %[t], %[u]\n" \
    "lsrs %[u], %[t], #8\n" \
    "bne 10f\n" \
    "5:\n" \
    "strb %[t], [%[out]]\n" \
    "add %[out], %[st]\n" \
    "subs %[n], %[n], #1\n" \
    "bne 1b\n" \
    "b 9f\n" \
    "6:\n" \
    "asrs %[t], %[a], #18\n" \
    "adds %[t], %[t], #1\n" \
    "cmp %[t], #1\n" \
    "bhi 8f\n" \
    "mov %[lo], %[a]\n" \
    "b 2b\n" \
    "7:\n" \
    "asrs %[t], %[a], #18\n" \
    "adds %[t], %[t], #1\n" \
    "cmp %[t], #1\n" \
    "bhi 8f\n" \
    "mov %[hi], %[a]\n" \
    "b 3b\n" \
    "10:\n" \
    "asrs %[t], %[t], #31\n" \
    "mvns %[t], %[t]\n" \
    "b 5b\n" \
    "8:\n" \
    "subs %[pa], %[pa], #4\n" \
    "9:\n" \
    ".syntax divided\n"
#define QT_FIN_M0_RELU "asrs %[t], %[a], #31\n" "bics %[a], %[t]\n"
// Mask-aware (f->moff): a value whose mask byte is <= zm (signed: zm = -1
// masks nothing) skips its accumulator and stores the zero point (10
// instructions instead of 27; a computed one takes 3 more).
#define QT_FIN_M0_MASK \
    "ldrb %[t], [%[out], %[mo]]\n" \
    "cmp %[t], %[zm]\n" \
    "bgt 11f\n" \
    "adds %[pa], #4\n" \
    "ldr %[t], [%[k], %[oz]]\n" \
    "b 5f\n" \
    "11:\n"
#define QT_FIN_M0_ARGS \
    : [pa] "+l" (acc), [out] "+l" (out), [n] "+l" (n), [lo] "+h" (lo), [hi] "+h" (hi), \
      [a] "=&l" (a), [t] "=&l" (t), [u] "=&l" (u) \
    : [k] "l" (f), [c0] "h" (c0), [st] "h" (stride), [mo] "l" (mo), [zm] "h" (zm), \
      [oml] "i" (offsetof(qt_conv_fin_t, ml)), [omh] "i" (offsetof(qt_conv_fin_t, mh)), \
      [ornd] "i" (offsetof(qt_conv_fin_t, frnd)), [osh] "i" (offsetof(qt_conv_fin_t, fsh)), \
      [oz] "i" (offsetof(qt_conv_fin_t, zero)) \
    : "cc", "memory"
#endif

// On the M0 -Os: there the hand-written loop above finishes the values
// (this one only what it leaves: a bias that may saturate, a value outside
// the short form, a multiplier of 1/2 or more), and -O2 took 68 bytes more
// of the Pico's heap.
#if defined(__thumb__) && !defined(__thumb2__)
#define QT_FIN_C_SMALL __attribute__((optimize("Os")))
#else
#define QT_FIN_C_SMALL
#endif

// The general finish in C, the one copy of qt_conv_fin's general form
// (the hand-written loops fall back to it): accumulators astride apart,
// bacc as qt_conv_fin_run.  With a mask (f->moff: error propagation into
// a ReLU layer's output) a value whose mask byte (at out + moff) is <= f->zm
// gets the zero point and stays out of the range.
__attribute__((noinline)) QT_FIN_C_SMALL static void fin_run_c(const int32_t *acc, int32_t astride, const int32_t *bacc,
    int32_t n, uint8_t *out, int32_t stride, uint32_t c0, const qt_conv_fin_t *f, int32_t *mm) {
    int32_t lo = mm[0], hi = mm[1];
    const uint8_t *mk = (const uint8_t *)((uintptr_t)out + (uintptr_t)f->moff);
    const int32_t zm = QT_MOFF(f) ? f->zm : -1;   // no mask: every value computed
    for (int32_t i = 0; i < n; i++, out += stride, mk += stride, acc += astride) {
        uint8_t v = (uint8_t)f->zero;
        if ((int32_t)*mk > zm) {
            int32_t a = (int32_t)((uint32_t)*acc + c0);
            if (bacc) {
                a = qt_sat_add_i32(a, bacc[i]);
            }
            v = qt_conv_fin(a, f, &lo, &hi);
        }
        *out = v;
    }
    mm[0] = lo;
    mm[1] = hi;
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4 common case by hand (shift - 32 = sh in 1..22, see fin_run_m4):
// with rz = 2^(sh-1) + zero 2^sh, (hi(a mult) + rz) >> sh is one SMMLA
// (rz + the high word of a mult) and one ASR; USAT clamps to 0..255.  The
// range takes a compare and a branch not taken per bound (a new extreme
// is rare after the first values; IT + MOV cost one more each): 13
// instructions per value (14 with ReLU) where GCC's loop took 20: it kept
// lo/hi or the output stride on the stack and split SMMLA into SMULL + ADD.
// STEP: the bytes from one accumulator to the next (an immediate of the
// post-indexed load); RELU: clamp the accumulator at 0 first.
#define QT_FIN_M4(STEP, RELU, MASK) \
    "1:\n\t" \
    MASK \
    "ldr %[a], [%[pa]], #" STEP "\n\t" \
    "add %[a], %[a], %[c0]\n\t" \
    RELU \
    "cmp %[a], %[lo]\n\t" \
    "blt 5f\n\t" \
    "2:\n\t" \
    "cmp %[a], %[hi]\n\t" \
    "bgt 6f\n\t" \
    "3:\n\t" \
    "smmla %[a], %[a], %[mult], %[rz]\n\t" \
    "asr %[a], %[a], %[sh]\n\t" \
    "usat %[a], #8, %[a]\n\t" \
    "strb %[a], [%[out]]\n\t" \
    "add %[out], %[out], %[st]\n\t" \
    "cmp %[pa], %[end]\n\t" \
    "bne 1b\n\t" \
    "b 9f\n\t" \
    "5:\n\t" \
    "mov %[lo], %[a]\n\t" \
    "b 2b\n\t" \
    "6:\n\t" \
    "mov %[hi], %[a]\n\t" \
    "b 3b\n\t" \
    "7:\n\t" \
    "add %[pa], %[pa], #" STEP "\n\t" \
    "asr %[a], %[rz], %[sh]\n\t" \
    "strb %[a], [%[out]]\n\t" \
    "add %[out], %[out], %[st]\n\t" \
    "cmp %[pa], %[end]\n\t" \
    "bne 1b\n\t" \
    "9:\n\t"
#define QT_FIN_M4_RELU "bic %[a], %[a], %[a], asr #31\n\t"
// Mask-aware, mask zero point 0 (a ReLU output's): a masked value skips its
// accumulator and stores the zero point (rz >> sh): 8 instructions instead
// of 13, a computed one 2 more.
#define QT_FIN_M4_MASK "ldrb %[a], [%[out], %[moff]]\n\t" "cbz %[a], 7f\n\t"
#define QT_FIN_M4_ARGS \
    : [pa] "+r" (acc), [out] "+r" (out), [lo] "+r" (lo), [hi] "+r" (hi), [a] "=&l" (a) \
    : [end] "r" (end), [st] "r" (stride), [c0] "r" (c0), [mult] "r" (mult), [rz] "r" (rz), [sh] "r" (sh), \
      [moff] "r" (moff) \
    : "cc", "memory"

// What the M4's hand-written loops cover: no mask, or a mask with zero point 0
// (a ReLU output's) and no ReLU of its own.
#define QT_FIN_M4_OK(f) (!QT_MOFF(f) || (!(f)->zm && !(f)->relu))

// Cortex-M4, no bias: accumulators astride apart (inlined in both callers:
// the scatter finishes rows of 7 values, where a second call shows).
QT_FIN_M4_INLINE static void fin_run_m4(const int32_t *acc, int32_t astride, int32_t n,
    uint8_t *out, int32_t stride, uint32_t c0, const qt_conv_fin_t *f, int32_t *mm) {
    int32_t lo = mm[0], hi = mm[1];
    if (n > 0 && f->shift >= 33 && f->shift <= 32 + 22 && (astride == 1 || astride == 4)) {
        // The common case.  With sh = shift - 32 >= 1, t = floor(a mult /
        // 2^32) (the high word of the product) and rz = 2^(sh-1) + zero 2^sh,
        // (t + rz) >> sh = floor((a mult + 2^(31+sh)) / 2^(32+sh)) + zero
        // by nested floors: qt_mul_hi's value plus the zero point, in one
        // add and one shift (|t| < 2^30, rz < 2^30 for sh <= 22: no wrap).
        const int32_t mult = f->mult, sh = f->shift - 32;
        const int32_t rz = (int32_t)((1u << (sh - 1)) + ((uint32_t)f->zero << sh));
        const int32_t *end = acc + n * astride;
        const intptr_t moff = QT_MOFF(f);
        int32_t a;
        if (moff) {   // (zm 0, no ReLU: the callers' condition)
            if (astride == 1) {
                __asm__ volatile (QT_FIN_M4("4", "", QT_FIN_M4_MASK) QT_FIN_M4_ARGS);
            } else {
                __asm__ volatile (QT_FIN_M4("16", "", QT_FIN_M4_MASK) QT_FIN_M4_ARGS);
            }
        } else if (astride == 1) {
            if (f->relu) {
                __asm__ volatile (QT_FIN_M4("4", QT_FIN_M4_RELU, "") QT_FIN_M4_ARGS);
            } else {
                __asm__ volatile (QT_FIN_M4("4", "", "") QT_FIN_M4_ARGS);
            }
        } else if (f->relu) {
            __asm__ volatile (QT_FIN_M4("16", QT_FIN_M4_RELU, "") QT_FIN_M4_ARGS);
        } else {
            __asm__ volatile (QT_FIN_M4("16", "", "") QT_FIN_M4_ARGS);
        }
    } else {
        fin_run_c(acc, astride, NULL, n, out, stride, c0, f, mm);
        return;
    }
    mm[0] = lo;
    mm[1] = hi;
}
#undef QT_FIN_M4_ARGS
#undef QT_FIN_M4_RELU
#undef QT_FIN_M4_MASK
#undef QT_FIN_M4
#endif

// Finish n accumulators of one pixel: + c0 (the pixel's zero-point term,
// mod 2^32), + bias (saturating; bacc NULL: none or already in acc),
// requantize, out[i * stride]; range into mm[0], mm[1].  One call per pixel
// with the requantization inlined once: the constants and the range stay in
// registers (on the M0 a call per value cost ~25 instructions more).
void qt_conv_fin_run(const int32_t *acc, const int32_t *bacc, int32_t n, uint8_t *out,
    int32_t stride, uint32_t c0, const qt_conv_fin_t *f, int32_t *mm) {
#if defined(__thumb__) && !defined(__thumb2__)
    // No mask: the masked loop with zm = -1 (every value computed; it reads
    // the output's own byte), 3 instructions per value more than a loop of
    // its own, whose ~100 bytes the Pico's heap has no room for (it is only
    // used by a layer without ReLU, the VAE's last, or without mask-aware
    // error propagation).
    const intptr_t mo = QT_MOFF(f);
    const int32_t zm = mo ? f->zm : -1;
    while (!bacc && f->fast && n > 0) {
        // The asm loop stops before a value outside the short form's range
        // (acc left pointing at it; a computed one, past the mask check);
        // that one takes the general form.  Its bounds: the range so far
        // clamped to the short form's (-2^18 .. 2^18 - 1), min / max with
        // the range so far after it.
        int32_t a, t, u;
        int32_t lo = mm[0] > -(1 << 18) ? mm[0] : -(1 << 18);
        int32_t hi = mm[1] < (1 << 18) - 1 ? mm[1] : (1 << 18) - 1;
        if (f->relu && !mo) {   // (a mask is error propagation: no ReLU)
            __asm__ volatile (QT_FIN_M0("", QT_FIN_M0_RELU) QT_FIN_M0_ARGS);
        } else {
            __asm__ volatile (QT_FIN_M0(QT_FIN_M0_MASK, "") QT_FIN_M0_ARGS);
        }
        mm[0] = lo < mm[0] ? lo : mm[0];
        mm[1] = hi > mm[1] ? hi : mm[1];
        if (n == 0) {
            return;   // (not through fin_run_c below: ~38 instructions a call)
        }
        fin_run_c(acc++, 1, NULL, 1, out, stride, c0, f, mm);
        out += stride;
        n--;
    }
#else
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    if (!bacc && QT_FIN_M4_OK(f)) {
        fin_run_m4(acc, 1, n, out, stride, c0, f, mm);
        return;
    }
#endif
    if (!bacc && !QT_MOFF(f) && f->shift >= 32) {
        // The common case off the M0 (no bias to saturate, a multiplier
        // below 1/2) with every constant in a register: ~18 instructions per
        // value on the M4 instead of ~35 (GCC reloaded each constant from f
        // after every store to out).  Same value as qt_conv_fin: the high
        // word of acc * mult + rnd shifted, the ReLU as a mask.
        int32_t lo = mm[0], hi = mm[1];
        const int32_t mult = f->mult, sh = f->shift - 32, zero = f->zero;
        const uint64_t rnd = (uint64_t)f->rnd;
        const uint32_t rmask = f->relu ? 0xffffffffu : 0u;
        for (int32_t i = 0; i < n; i++, out += stride) {
            int32_t a = (int32_t)((uint32_t)acc[i] + c0);
            a = (int32_t)((uint32_t)a & ~((uint32_t)(a >> 31) & rmask));
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
            const int32_t r = qt_mul_hi(a, mult, rnd, sh) + zero;
            *out = (uint8_t)(r < 0 ? 0 : (r > 255 ? 255 : r));
        }
        mm[0] = lo;
        mm[1] = hi;
        return;
    }
#endif
    fin_run_c(acc, 1, bacc, n, out, stride, c0, f, mm);
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
void qt_conv_fin_run_st(const int32_t *acc, int32_t astride, int32_t n, uint8_t *out, int32_t stride, uint32_t c0,
    const qt_conv_fin_t *f, int32_t *mm) {
    if (!QT_FIN_M4_OK(f)) {
        fin_run_c(acc, astride, NULL, n, out, stride, c0, f, mm);
        return;
    }
    fin_run_m4(acc, astride, n, out, stride, c0, f, mm);
}
#endif
