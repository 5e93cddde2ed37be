// uint8 Conv2d kernels and the uint8 loop cores shared with ConvTranspose2d
// (conv2d_core.h).  METHOD.md 1-5: int32 accumulation of (w - z_w)(x - z_x),
// fixed-point requantization, ReLU as a clamp at the output zero point.
//
// Every multiply-accumulate runs in one routine, dot_u8 (uint8 x uint8; SMLAD
// on Cortex-M4), over contiguous rows.  The cores only arrange the data so
// that rows are contiguous:
//   gather : the input patch of one output pixel (im2col, padding = the
//            input zero point, i.e. real 0) against each filter row;
//   scatter: the same with the stride "phases": output pixels whose
//            (y + pad) mod stride agree use the same taps, so the weights are
//            repacked once per call into one row per (phase, output channel);
//   corr   : the input re-sampled per tap into rows over the output pixels
//            ("cols") against each error map.
// Zero points are applied after the dot product:
//   sum (w - zw)(x - zx) = sum w x - zx sum w - zw sum x + n zw zx,
// with the row sums computed once per call (weights) or per patch.  All sums
// are taken mod 2^32 (uint32) and the true value fits in int32, so the final
// cast is exact.  Integer-only inner loops (the M0 has no FPU).
#include "conv2d_core.h"
#include "conv_dsgu.h"

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
// Bytes i..i+3 of a row of L bytes as one word, zero bytes past L (lanes
// of a row padded to a multiple of 4: the padding then adds nothing).
static inline uint32_t ld32z(const uint8_t *r, int32_t i, int32_t L) {
    if (i + 4 <= L) {
        return ld32u(r + i);
    }
    uint32_t v = 0;
    for (int32_t k = 0; i + k < L; k++) {
        v |= (uint32_t)r[i + k] << (8 * k);
    }
    return v;
}
// Bytes 0, 2 and bytes 1, 3 of a word as two uint16 lanes.  The rotation is
// part of the UXTB16 instruction (GCC does not fold a separate ROR into it).
static inline int16x2_t lanes02(uint32_t v) {
    return (int16x2_t)__uxtb16(v);
}
static inline int16x2_t lanes13(uint32_t v) {
    return (int16x2_t)uxtb16_ror8(v);
}
#endif

#define QT_MAC1(o) \
    "ldrb %[t0], [%[pa], #" o "]\n" \
    "ldrb %[t1], [%[pb], #" o "]\n" \
    "muls %[t1], %[t0], %[t1]\n" \
    "adds %[s], %[s], %[t1]\n"

// sum a[i] b[i] (mod 2^32), uint8 x uint8.
static inline uint32_t dot_u8(const uint8_t *a, const uint8_t *b, int32_t n) {
    uint32_t acc = 0;
    int32_t i = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // 4 MACs: 2 loads, 4 UXTB16 (values 0..255 are valid int16 lanes), 2 SMLAD.
    int32_t s = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t av = ld32u(a + i), bv = ld32u(b + i);
        s = __smlad(lanes02(av), lanes02(bv), s);
        s = __smlad(lanes13(av), lanes13(bv), s);
    }
    acc = (uint32_t)s;
#elif defined(__thumb__) && !defined(__thumb2__)
    // Cortex-M0: 8 MACs per pass by hand, 4.5 instructions per MAC (GCC's
    // -Os loop took ~7).
    const int32_t n8 = n & ~7;
    if (n8) {
        const uint8_t *end = b + n8;
        const uint8_t *pa = a, *pb = b;
        uint32_t t0, t1;
        __asm__ volatile (
            ".syntax unified\n"
            "1:\n"
            QT_MAC1("0") QT_MAC1("1") QT_MAC1("2") QT_MAC1("3")
            QT_MAC1("4") QT_MAC1("5") QT_MAC1("6") QT_MAC1("7")
            "adds %[pa], %[pa], #8\n"
            "adds %[pb], %[pb], #8\n"
            "cmp %[pb], %[end]\n"
            "bne 1b\n"
            ".syntax divided\n"
            : [s] "+l" (acc), [pb] "+l" (pb), [pa] "+l" (pa), [t0] "=&l" (t0), [t1] "=&l" (t1)
            : [end] "h" (end)
            : "cc", "memory");
        i = n8;
    }
#else
    // Generic: byte loads, unrolled so the loop overhead is spread over 4 MACs.
    for (; i + 4 <= n; i += 4) {
        acc += (uint32_t)a[i] * b[i];
        acc += (uint32_t)a[i + 1] * b[i + 1];
        acc += (uint32_t)a[i + 2] * b[i + 2];
        acc += (uint32_t)a[i + 3] * b[i + 3];
    }
#endif
    for (; i < n; i++) {
        acc += (uint32_t)a[i] * b[i];
    }
    return acc;
}

// Two rows against one shared vector: each b value is loaded (and on the M4
// split into lanes) once for both rows.
static inline void dot2_u8(const uint8_t *a0, const uint8_t *a1, const uint8_t *b, int32_t n,
    uint32_t *r0, uint32_t *r1) {
    uint32_t acc0 = 0, acc1 = 0;
    int32_t i = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // 8 MACs: 3 loads, 6 UXTB16, 4 SMLAD.
    int32_t s0 = 0, s1 = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t bv = ld32u(b + i);
        int16x2_t b02 = lanes02(bv), b13 = lanes13(bv);
        uint32_t x = ld32u(a0 + i), y = ld32u(a1 + i);
        s0 = __smlad(lanes02(x), b02, s0);
        s1 = __smlad(lanes02(y), b02, s1);
        s0 = __smlad(lanes13(x), b13, s0);
        s1 = __smlad(lanes13(y), b13, s1);
    }
    acc0 = (uint32_t)s0;
    acc1 = (uint32_t)s1;
#elif defined(__thumb__) && !defined(__thumb2__)
    // Cortex-M0 (Thumb-1): GCC runs out of low registers here and spills;
    // by hand it is 7 instructions per pair of MACs plus 5 per 4 columns:
    // each b byte is loaded once for both rows.
    const int32_t n4 = n & ~3;
    if (n4) {
        const uint8_t *end = b + n4;
        const uint8_t *pa0 = a0, *pa1 = a1, *pb = b;
        uint32_t t0, t1;
        // (GCC wraps Thumb-1 inline asm in divided syntax: switch to unified
        // and back.)
        __asm__ volatile (
            ".syntax unified\n"
            "1:\n"
            "ldrb %[t0], [%[pb], #0]\n"
            "ldrb %[t1], [%[pa0], #0]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s0], %[s0], %[t1]\n"
            "ldrb %[t1], [%[pa1], #0]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s1], %[s1], %[t1]\n"
            "ldrb %[t0], [%[pb], #1]\n"
            "ldrb %[t1], [%[pa0], #1]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s0], %[s0], %[t1]\n"
            "ldrb %[t1], [%[pa1], #1]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s1], %[s1], %[t1]\n"
            "ldrb %[t0], [%[pb], #2]\n"
            "ldrb %[t1], [%[pa0], #2]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s0], %[s0], %[t1]\n"
            "ldrb %[t1], [%[pa1], #2]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s1], %[s1], %[t1]\n"
            "ldrb %[t0], [%[pb], #3]\n"
            "ldrb %[t1], [%[pa0], #3]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s0], %[s0], %[t1]\n"
            "ldrb %[t1], [%[pa1], #3]\n"
            "muls %[t1], %[t0], %[t1]\n"
            "adds %[s1], %[s1], %[t1]\n"
            "adds %[pb], %[pb], #4\n"
            "adds %[pa0], %[pa0], #4\n"
            "adds %[pa1], %[pa1], #4\n"
            "cmp %[pb], %[end]\n"
            "bne 1b\n"
            ".syntax divided\n"
            : [s0] "+l" (acc0), [s1] "+l" (acc1), [pb] "+l" (pb), [pa0] "+l" (pa0), [pa1] "+l" (pa1),
              [t0] "=&l" (t0), [t1] "=&l" (t1)
            : [end] "h" (end)
            : "cc", "memory");
        i = n4;
    }
#else
    for (; i + 2 <= n; i += 2) {
        uint32_t b0 = b[i], b1 = b[i + 1];
        acc0 += a0[i] * b0;
        acc1 += a1[i] * b0;
        acc0 += a0[i + 1] * b1;
        acc1 += a1[i + 1] * b1;
    }
#endif
    for (; i < n; i++) {
        acc0 += (uint32_t)a0[i] * b[i];
        acc1 += (uint32_t)a1[i] * b[i];
    }
    *r0 = acc0;
    *r1 = acc1;
}

#if defined(__thumb__) && !defined(__thumb2__)
// Cortex-M0: rows come in groups of four, interleaved column by column
// (a[4i + h] = row h, column i; row_pos below), so one pointer with
// immediate offsets reaches all four rows and each b byte is loaded once
// for four MACs: 13 instructions per 4 MACs plus 4 per 8 columns (3.4 per
// MAC; the row pairs of dot2_u8 take 4.1).  Eight low registers exactly.
#define QT_CONV_ROWS4 1
#define QT_CONV_GROUP 4
// One column of a group: b's byte (r1) times the group's four bytes of
// that column (r2), into r4-r7; pb r3, pa r0.
#define QT_GMAC4(bo, a0, a1, a2, a3) \
    "ldrb r1, [r3, #" bo "]\n" \
    "ldrb r2, [r0, #" a0 "]\n" "muls r2, r1, r2\n" "adds r4, r4, r2\n" \
    "ldrb r2, [r0, #" a1 "]\n" "muls r2, r1, r2\n" "adds r5, r5, r2\n" \
    "ldrb r2, [r0, #" a2 "]\n" "muls r2, r1, r2\n" "adds r6, r6, r2\n" \
    "ldrb r2, [r0, #" a3 "]\n" "muls r2, r1, r2\n" "adds r7, r7, r2\n"

// ng >= 1 interleaved groups against b (n >= 1 columns): group j at a + j
// (4 n + askip), d[4 j + h] = init[4 j + h] (init NULL: 0) + sum_i a_j[4 i
// + h] b[i] (mod 2^32).  Starting from the caller's per-row terms (zero
// points, bias) saves a pass over the sums.  All groups in one call, by
// hand: ~20 instructions per group around the column loop, where a call
// per group (inline asm in C) cost ~75; the error propagations' rows are
// short (9 columns in a ConvTranspose2d's gather, 3 to 12 in the scatter's
// patches), so that was a third of their MACs' cost.  The column loop
// does 8 columns per pass (13 instructions per 4 MACs plus 4 per pass); the
// first pass does the n mod 8 left over, entered that many blocks from its
// end with the pointers moved back as far (k = -n mod 8), so no column
// takes a loop of its own (one did: 17 instructions where a block takes 13).
__attribute__((naked, noinline))
static void dot4g_u8(const uint8_t *a, int32_t askip, int32_t ng, const uint8_t *b, int32_t n,
    const int32_t *init, int32_t *d) {
    __asm__ volatile (
        ".syntax unified\n"
        "push {r4, r5, r6, r7, lr}\n"
        "mov r4, r8\n" "mov r5, r9\n" "mov r6, r10\n" "mov r7, r11\n"
        "push {r4, r5, r6, r7}\n"   // n, init, d now at sp + 36, 40, 44
        "ldr r4, [sp, #36]\n"
        "rsbs r5, r4, #0\n"
        "movs r6, #7\n"
        "ands r5, r6\n"             // k
        "adds r4, r3, r4\n"
        "mov r9, r4\n"              // b + n: the loop's end
        "subs r3, r3, r5\n"
        "mov r8, r3\n"              // b - k: each group's pass start
        "lsls r6, r5, #2\n"
        "subs r0, r0, r6\n"         // a - 4 k
        "subs r1, r1, r6\n"
        "mov r11, r1\n"             // askip - 4 k: from a group's end to the next one's - 4 k
        "movs r6, #26\n"            // bytes per block (13 instructions)
        "muls r6, r5, r6\n"
        "adr r5, 4f\n"
        "adds r5, r5, r6\n"
        "mov r10, r5\n"             // the entry: block k
        "mov ip, r2\n"              // groups left
        "1:\n"
        "ldr r1, [sp, #40]\n"
        "cmp r1, #0\n"
        "beq 2f\n"
        "ldm r1!, {r4, r5, r6, r7}\n"
        "str r1, [sp, #40]\n"
        "b 3f\n"
        "2:\n"
        "movs r4, #0\n" "movs r5, #0\n" "movs r6, #0\n" "movs r7, #0\n"
        "3:\n"
        "mov r3, r8\n"
        "mov pc, r10\n"
        ".balign 4\n"   // (adr's target; the padding is never run)
        "4:\n"
        QT_GMAC4("0", "0", "1", "2", "3")
        QT_GMAC4("1", "4", "5", "6", "7")
        QT_GMAC4("2", "8", "9", "10", "11")
        QT_GMAC4("3", "12", "13", "14", "15")
        QT_GMAC4("4", "16", "17", "18", "19")
        QT_GMAC4("5", "20", "21", "22", "23")
        QT_GMAC4("6", "24", "25", "26", "27")
        QT_GMAC4("7", "28", "29", "30", "31")
        "adds r3, #8\n"
        "adds r0, #32\n"
        "cmp r3, r9\n"
        "bne 4b\n"
        "ldr r1, [sp, #44]\n"
        "stm r1!, {r4, r5, r6, r7}\n"
        "str r1, [sp, #44]\n"
        "add r0, r11\n"
        "mov r1, ip\n"
        "subs r1, #1\n"
        "mov ip, r1\n"
        "beq 9f\n"
        "b 1b\n"   // (out of a conditional branch's reach)
        "9:\n"
        "pop {r4, r5, r6, r7}\n"
        "mov r8, r4\n" "mov r9, r5\n" "mov r10, r6\n" "mov r11, r7\n"
        "pop {r4, r5, r6, r7, pc}\n"
        ".syntax divided\n");
}
#undef QT_GMAC4

// Zero skipping.  With zero points, a dot product is sum_i (a_i - z_a)(b_i -
// z_b), and a column with b_i == z_b adds exactly 0: over the other columns
// only, sum a_i b'_i - z_a sum b'_i (b' = b - z_b, signed) is the same int32
// value.  ReLU outputs (clamped to their zero point) and masked errors have
// ~50-85 % such columns in the VAE's big layers.  The shared vector b is
// compacted once into entries (b'_i << 16) | 4 i, column order (UXTH gives
// the offset into an interleaved group, ASRS the value), and the groups of
// four rows run over the entries only, two groups per pass (dot8s_u8): 15
// instructions per entry and group against 13.5 per column dense, so it
// pays below ~90 % density (QT_SPARSE_PAYS).
#define QT_SPARSE_MAX_N 16384   // 4 i must fit in the entry's 16 bits

// Entries of v's n values that differ from z (v - z in the high half, c4 +
// 4 i in the low; c4 != 0: v is a piece of a longer vector, the scatter's
// runs), then a 0 entry that ends them (value 0: no entry has it; ent: n +
// 1 words); returns their count, *sum = sum (v - z) over all n.  6
// instructions per skipped value, 10 per entry.
__attribute__((noinline))
static int32_t compact_u8(const uint8_t *v, int32_t n, uint32_t z, uint32_t *ent, int32_t *sum, uint32_t c4) {
    uint32_t *pe = ent;
    int32_t s = 0;
    if (n > 0) {
        const uint8_t *end = v + n;
        int32_t i = -n;   // counts up to 0: the loop's end test is the add's flag
        uint32_t t;
        __asm__ volatile (
            ".syntax unified\n"
            "1:\n"
            "ldrb %[t], [%[end], %[i]]\n"
            "subs %[t], %[t], %[z]\n"
            "beq 2f\n"
            "adds %[s], %[s], %[t]\n"
            "lsls %[t], %[t], #16\n"
            "adds %[t], %[t], %[c4]\n"
            "stm %[pe]!, {%[t]}\n"
            "2:\n"
            "adds %[c4], %[c4], #4\n"
            "adds %[i], %[i], #1\n"
            "bne 1b\n"
            ".syntax divided\n"
            : [pe] "+l" (pe), [s] "+l" (s), [i] "+l" (i), [c4] "+l" (c4), [t] "=&l" (t)
            : [end] "l" (end), [z] "l" (z)
            : "cc", "memory");
    }
    *pe = 0;
    *sum = s;
    return (int32_t)(pe - ent);
}

// Whether cnt entries of n columns go sparse (measured: KERNELS.md's M0
// section).
#define QT_SPARSE_PAYS(cnt, n) (8 * (cnt) < 7 * (n) && (n) <= QT_SPARSE_MAX_N)

// One entry against two groups: the value times each group's four bytes at
// column i (base + 4 i + h), base ip and ip + lr; ends at the 0 entry (ASRS
// sets Z).  Accumulators r4-r7 (first group), r8-r11 (ADD takes high
// registers), so each entry is decoded once for eight MACs.
#define QT_SMAC8 \
    "ldm r2!, {r1}\n" \
    "uxth r0, r1\n" \
    "asrs r1, r1, #16\n" \
    "beq 9f\n" \
    "add r0, ip\n" \
    "ldrb r3, [r0, #0]\n" "muls r3, r1, r3\n" "adds r4, r4, r3\n" \
    "ldrb r3, [r0, #1]\n" "muls r3, r1, r3\n" "adds r5, r5, r3\n" \
    "ldrb r3, [r0, #2]\n" "muls r3, r1, r3\n" "adds r6, r6, r3\n" \
    "ldrb r3, [r0, #3]\n" "muls r3, r1, r3\n" "adds r7, r7, r3\n" \
    "add r0, lr\n" \
    "ldrb r3, [r0, #0]\n" "muls r3, r1, r3\n" "add r8, r3\n" \
    "ldrb r3, [r0, #1]\n" "muls r3, r1, r3\n" "add r9, r3\n" \
    "ldrb r3, [r0, #2]\n" "muls r3, r1, r3\n" "add r10, r3\n" \
    "ldrb r3, [r0, #3]\n" "muls r3, r1, r3\n" "add r11, r3\n"

// The hand-written M0 dots below use all of r4-r11: the high registers
// are saved through r4-r7 (Thumb-1 pushes only low registers) and restored
// the same way on return.
#define QT_M0_HI_TO_LO "mov r4, r8\n" "mov r5, r9\n" "mov r6, r10\n" "mov r7, r11\n"
#define QT_M0_LO_TO_HI "mov r8, r4\n" "mov r9, r5\n" "mov r10, r6\n" "mov r11, r7\n"
#define QT_M0_POP_HI_RET "pop {r4, r5, r6, r7}\n" QT_M0_LO_TO_HI "pop {r4, r5, r6, r7, pc}\n"

// acc[4 k + h] += sum_j a[k astep + 4 i_j + h] v_j, k = 0, 1, over the
// entries (i_j, v_j) of compact_u8 up to its 0 entry (mod 2^32): two
// interleaved groups (dot4g_u8) astep bytes apart.  By hand, all fourteen
// registers: 15 instructions per entry and group (GCC's named-register
// version with one group: 17).
__attribute__((naked, noinline))
static void dot8s_u8(const uint8_t *a, int32_t astep, const uint32_t *ent, int32_t *acc) {
    __asm__ volatile (
        ".syntax unified\n"
        "push {r4, r5, r6, r7, lr}\n"
        QT_M0_HI_TO_LO
        "push {r3, r4, r5, r6, r7}\n"
        "mov ip, r0\n"
        "mov lr, r1\n"
        "ldr r4, [r3, #16]\n"
        "mov r8, r4\n"
        "ldr r4, [r3, #20]\n"
        "mov r9, r4\n"
        "ldr r4, [r3, #24]\n"
        "mov r10, r4\n"
        "ldr r4, [r3, #28]\n"
        "mov r11, r4\n"
        "ldm r3!, {r4, r5, r6, r7}\n"
        "1:\n"
        QT_SMAC8
        QT_SMAC8
        "b 1b\n"
        "9:\n"
        "pop {r3}\n"
        "stm r3!, {r4, r5, r6, r7}\n"
        QT_M0_HI_TO_LO
        "stm r3!, {r4, r5, r6, r7}\n"
        QT_M0_POP_HI_RET
        ".syntax divided\n");
}
#undef QT_SMAC8

// ng interleaved groups (dot4g_u8) astep bytes apart against the entries of
// compact_u8: d[4 j + h] = init[4 j + h] (init NULL: 0) + sum_k a_j[4 i_k +
// h] v_k (mod 2^32).  Pairs of groups (dot8s_u8); an odd last group runs
// as a pair with itself into a copy.
QT_CONV_NO_LIBCALLS __attribute__((noinline))
static void dot4s_u8(const uint8_t *a, int32_t astep, int32_t ng, const uint32_t *ent, const int32_t *init,
    int32_t *d) {
    for (int32_t j = 0; j < ng; j += 2, a += 2 * astep, d += 8) {
        int32_t tmp[8];
        const int32_t pair = j + 2 <= ng;
        int32_t *acc = pair ? d : tmp;
        const int32_t *in = init ? init + 4 * j : NULL;
        acc[0] = in ? in[0] : 0;
        acc[1] = in ? in[1] : 0;
        acc[2] = in ? in[2] : 0;
        acc[3] = in ? in[3] : 0;
        acc[4] = in && pair ? in[4] : 0;
        acc[5] = in && pair ? in[5] : 0;
        acc[6] = in && pair ? in[6] : 0;
        acc[7] = in && pair ? in[7] : 0;
        dot8s_u8(a, pair ? astep : 0, ent, acc);
        for (int32_t h = 0; !pair && h < 4; h++) {
            d[h] = tmp[h];
        }
    }
}

// _qtrain_float never propagates mask-aware (conv2d_fin.c): its copy of the
// cores leaves the masked rows' code out.
#if !(defined(QT_FLOAT_MODULE) && QT_FLOAT_MODULE)
#define QT_MASK_ROWS 1
// Mask-aware error propagation (KERNELS.md): the rows of outputs the previous
// ReLU masked need no MACs (their output is the zero point).  One pixel's
// kept rows (dotk_u8): its mask bytes (the first at mk, hw apart, masked
// where <= zm; the outputs at mk + out_off), its rows' start terms and
// accumulators (C each; the ends: indexed from -4 C up to 0 by the loop's
// one counter), the pixel's zero-point term c0, and the finish (f: zm,
// zero and the short form's constants, read at the offsets below; lim =
// 2^19 where the short form holds for |acc| < 2^18, 0 where it never
// does) with the range of the values it finished (lo, hi).
typedef struct {
    const uint8_t *mk;
    const int32_t *init_end;
    int32_t *acc_end;
    int32_t hw, c4;   // c4 = -4 C
    int32_t c0, out_off, lo, hi;
    const qt_conv_fin_t *f;
    int32_t redo, lim;    // redo: set where a value needs the general finish
} qt_dotk_t;
_Static_assert(offsetof(qt_conv_fin_t, zero) == 20 && offsetof(qt_conv_fin_t, mh) == 32
    && offsetof(qt_conv_fin_t, ml) == 36 && offsetof(qt_conv_fin_t, fsh) == 40
    && offsetof(qt_conv_fin_t, frnd) == 44 && offsetof(qt_conv_fin_t, zm) == 52, "dotk_u8's offsets");
// For each of C plain rows of L >= 1 columns (row c at rows + c L): a
// masked row's output is the zero point; a kept one's accumulator acc[c] =
// init[c] + sum_i rows[c L + i] b[i] (mod 2^32) is stored and finished
// there (+ c0, the short form, the range), or, outside the short form's
// range, k->redo is set and the caller finishes the pixel again
// (qt_conv_fin_run; it reads acc).  One row at a time, so only the kept
// rows cost MACs (Conv 16->32's input: 72 % masked, spread over any rows):
// 8 instructions per masked row, 4 per MAC and ~45 per kept row, the
// columns 4 per pass (+1 per MAC; 8 per pass took 32 bytes more than the
// Pico's heap had), the first pass entered L mod 4 blocks from its end (as
// dot4g_u8).  It replaced the groups of four over every row
// (dot4g_u8: 3.4 instructions per MAC) and a qt_conv_fin_run per pixel
// (~80 instructions a call, 10 per masked value) in the patches, and the
// kept rows four at a time over compacted runs (dot4m_u8, dot4r_u8) in the
// inside pixels: see KERNELS.md, "Kept rows one at a time".
#define QT_KMAC(o) "ldrb r3, [r0, #" o "]\n" "ldrb r4, [r1, #" o "]\n" "muls r4, r3, r4\n" "adds r2, r2, r4\n"
// (a + 2^18) < lim (unsigned), a in r2: the short form holds; else redo.
#define QT_KSHORT "movs r4, #1\n" "lsls r4, r4, #18\n" "adds r4, r2, r4\n" "ldr r0, [r3, #44]\n" "cmp r4, r0\n" \
    "bhs 8f\n"
__attribute__((naked, noinline))
static void dotk_u8(const uint8_t *rows, int32_t L, const uint8_t *b, qt_dotk_t *k) {
    __asm__ volatile (
        ".syntax unified\n"
        "push {r4, r5, r6, r7, lr}\n"
        QT_M0_HI_TO_LO
        "push {r3, r4, r5, r6, r7}\n"   // k at sp
        "mov r8, r1\n"                  // L: from a row to the next
        "ldr r4, [r3, #12]\n"
        "mov r9, r4\n"                  // hw: from a mask byte to the next
        "ldr r4, [r3, #36]\n"           // f
        "ldr r4, [r4, #52]\n"
        "mov r10, r4\n"                 // zm
        "adds r4, r2, r1\n"
        "mov ip, r4\n"                  // b + L: the passes' end
        "rsbs r4, r1, #0\n"
        "movs r5, #3\n"
        "ands r4, r5\n"                 // j = -L mod 4
        "subs r2, r2, r4\n"
        "mov lr, r2\n"                  // b - j: each row's pass start
        "subs r6, r0, r4\n"             // row 0 - j
        "lsls r4, r4, #3\n"             // 8 bytes per column (4 instructions)
        "adr r0, 4f\n"
        "adds r0, r0, r4\n"
        "mov r11, r0\n"                 // the entry: block j
        "ldr r5, [r3, #0]\n"            // mk
        "ldr r7, [r3, #16]\n"           // -4 C
        "ldr r0, [r3, #36]\n"
        "ldr r0, [r0, #20]\n"           // the masked rows' zero point and out_off
        "ldr r1, [r3, #24]\n"
        "1:\n"
        "ldrb r4, [r5]\n"
        "cmp r4, r10\n"
        "bgt 3f\n"
        "strb r0, [r5, r1]\n"           // masked: the zero point
        "2:\n"
        "add r5, r9\n"
        "add r6, r8\n"
        "adds r7, #4\n"
        "bne 1b\n"
        "pop {r3, r4, r5, r6, r7}\n"
        QT_M0_LO_TO_HI
        "pop {r4, r5, r6, r7, pc}\n"
        "3:\n"
        "mov r0, r6\n"
        "mov r1, lr\n"
        "movs r2, #0\n"
        "mov pc, r11\n"
        ".balign 4\n"   // (adr's target; the padding is never run)
        "4:\n"
        QT_KMAC("0") QT_KMAC("1") QT_KMAC("2") QT_KMAC("3")
        "adds r0, #4\n"
        "adds r1, #4\n"
        "cmp r1, ip\n"
        "bne 4b\n"
        "ldr r3, [sp]\n"
        "ldr r4, [r3, #4]\n"
        "ldr r4, [r4, r7]\n"
        "adds r2, r2, r4\n"             // + init
        "ldr r4, [r3, #8]\n"
        "str r2, [r4, r7]\n"            // acc (for a redo)
        "ldr r4, [r3, #20]\n"
        "adds r2, r2, r4\n"             // a = acc + c0
        "ldr r0, [r3, #28]\n"
        "cmp r2, r0\n"
        "blt 6f\n"                      // a new low
        "10:\n"
        "ldr r0, [r3, #32]\n"
        "cmp r2, r0\n"
        "bgt 7f\n"                      // a new high
        "11:\n"                         // the short form (qt_conv_fin, conv2d_fin.c's loop)
        "ldr r4, [r3, #36]\n"           // f
        "ldr r0, [r4, #36]\n"
        "muls r0, r2, r0\n"
        "asrs r0, r0, #12\n"
        "ldr r1, [r4, #32]\n"
        "muls r1, r2, r1\n"
        "adds r0, r0, r1\n"
        "ldr r1, [r4, #44]\n"
        "adds r0, r0, r1\n"
        "ldr r1, [r4, #40]\n"
        "asrs r0, r1\n"
        "ldr r1, [r4, #20]\n"
        "adds r0, r0, r1\n"
        "lsrs r1, r0, #8\n"
        "beq 5f\n"
        "asrs r0, r0, #31\n"            // below 0: 0, above 255: 255
        "mvns r0, r0\n"
        "5:\n"
        "ldr r1, [r3, #24]\n"
        "strb r0, [r5, r1]\n"
        "12:\n"
        "ldr r0, [r3, #36]\n"
        "ldr r0, [r0, #20]\n"
        "ldr r1, [r3, #24]\n"
        "b 2b\n"
        "6:\n"
        QT_KSHORT
        "str r2, [r3, #28]\n"
        "b 10b\n"
        "7:\n"
        QT_KSHORT
        "str r2, [r3, #32]\n"
        "b 11b\n"
        "8:\n"
        "str r3, [r3, #40]\n"           // redo (k: not 0)
        "b 12b\n"
        ".syntax divided\n");
}
#undef QT_KSHORT
#undef QT_KMAC
#undef QT_M0_HI_TO_LO
#undef QT_M0_LO_TO_HI
#undef QT_M0_POP_HI_RET

#else
#define QT_MASK_ROWS 0
#endif
#else
// (A four-row version spilled registers under GCC and was no faster.)
#define QT_CONV_ROWS4 0
#define QT_MASK_ROWS 0
#define QT_CONV_GROUP 2
#endif

// Where row r of an R x n block of rows starts and how far apart its values
// are: plain rows (r n, 1), except on the M0, where the first R & ~3 rows are
// interleaved in groups of four (dot4g_u8).  A group takes 4 n bytes, so the
// rows after the groups, and the walk "cnt rows at a time, n bytes each", are
// the same in both layouts.
static inline int32_t row_pos(int32_t r, int32_t R, int32_t n, int32_t *step) {
#if QT_CONV_ROWS4
    if (r < (R & ~3)) {
        *step = 4;
        return (r & ~3) * n + (r & 3);
    }
#else
    (void)R;
#endif
    *step = 1;
    return r * n;
}

static inline int32_t align4(int32_t n) {
    return (n + 3) & ~3;
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// The shared vector split into int16 lanes once (per pixel, per filter):
// for each 4 values two words (b0, b2) and (b1, b3).  Then each 4 MACs of a
// row cost one load, two UXTB16 and two SMLAD.
static inline void lanes_u8(const uint8_t *b, int32_t n, uint32_t *bx) {
    for (int32_t i = 0; i + 4 <= n; i += 4, bx += 2) {
        uint32_t v = ld32u(b + i);
        bx[0] = (uint32_t)lanes02(v);
        bx[1] = (uint32_t)lanes13(v);
    }
}

static inline void dot2x_u8(const uint8_t *a0, const uint8_t *a1, const uint8_t *b,
    const uint32_t *bx, int32_t n, uint32_t *r0, uint32_t *r1) {
    int32_t s0 = 0, s1 = 0;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8, bx += 4) {
        uint32_t x = ld32u(a0 + i), y = ld32u(a1 + i);
        const int16x2_t q0 = (int16x2_t)bx[0], q1 = (int16x2_t)bx[1];
        s0 = __smlad(lanes02(x), q0, s0);
        s0 = __smlad(lanes13(x), q1, s0);
        s1 = __smlad(lanes02(y), q0, s1);
        s1 = __smlad(lanes13(y), q1, s1);
        x = ld32u(a0 + i + 4);
        y = ld32u(a1 + i + 4);
        const int16x2_t q2 = (int16x2_t)bx[2], q3 = (int16x2_t)bx[3];
        s0 = __smlad(lanes02(x), q2, s0);
        s0 = __smlad(lanes13(x), q3, s0);
        s1 = __smlad(lanes02(y), q2, s1);
        s1 = __smlad(lanes13(y), q3, s1);
    }
    for (; i + 4 <= n; i += 4, bx += 2) {
        uint32_t x = ld32u(a0 + i), y = ld32u(a1 + i);
        s0 = __smlad(lanes02(x), (int16x2_t)bx[0], s0);
        s0 = __smlad(lanes13(x), (int16x2_t)bx[1], s0);
        s1 = __smlad(lanes02(y), (int16x2_t)bx[0], s1);
        s1 = __smlad(lanes13(y), (int16x2_t)bx[1], s1);
    }
    uint32_t acc0 = (uint32_t)s0, acc1 = (uint32_t)s1;
    for (; i < n; i++) {
        acc0 += (uint32_t)a0[i] * b[i];
        acc1 += (uint32_t)a1[i] * b[i];
    }
    *r0 = acc0;
    *r1 = acc1;
}
#endif

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4: one row against two vectors whose lanes are interleaved per 4
// values as (v0 02, v0 13, v1 02, v1 13): per 4 columns one LDR and two
// UXTB16 of the row, one LDM of the four lane words, four SMLAD (8 MACs),
// 9 instructions per 8 MACs with the loop unrolled twice.  Row pairs
// against one vector (dot2x_u8) take ~12.  (GCC's loop took 12 here.)
#define QT_MAC1X2 \
    "ldr %[x], [%[pa]], #4\n\t" \
    "ldm %[pb]!, {%[q0], %[q1], %[q2], %[q3]}\n\t" \
    "uxtb16 %[t], %[x]\n\t" \
    "uxtb16 %[x], %[x], ror #8\n\t" \
    "smlad %[s0], %[t], %[q0], %[s0]\n\t" \
    "smlad %[s1], %[t], %[q2], %[s1]\n\t" \
    "smlad %[s0], %[x], %[q1], %[s0]\n\t" \
    "smlad %[s1], %[x], %[q3], %[s1]\n\t"
// Accumulating form, n a multiple of 4: r0/r1 += the two dot
// products of a[0..n) against the lanes at *pbx, which it advances by n
// words (the next lanes in a run of them, as the scatter's segments use).
static inline void dot1x2_acc_u8(const uint8_t *a, const uint32_t **pbx, int32_t n, uint32_t *r0,
    uint32_t *r1) {
    uint32_t s0 = *r0, s1 = *r1;
    const uint8_t *pa = a;
    const uint32_t *pb = *pbx;
    uint32_t x, t;
    // LDM fills registers in ascending number order: pin the four.
    register uint32_t q0 __asm__("r8"), q1 __asm__("r9"), q2 __asm__("r10"), q3 __asm__("r12");
    if (n & ~7) {
        const uint8_t *end = a + (n & ~7);
        __asm__ volatile(
            "1:\n\t"
            QT_MAC1X2
            QT_MAC1X2
            "cmp %[pa], %[end]\n\t"
            "bne 1b\n\t"
            : [s0] "+r"(s0), [s1] "+r"(s1), [pa] "+r"(pa), [pb] "+r"(pb), [x] "=&r"(x), [t] "=&r"(t),
            [q0] "=&r"(q0), [q1] "=&r"(q1), [q2] "=&r"(q2), [q3] "=&r"(q3)
            : [end] "r"(end)
            : "cc", "memory");
    }
    if (n & 4) {
        __asm__ volatile(
            QT_MAC1X2
            : [s0] "+r"(s0), [s1] "+r"(s1), [pa] "+r"(pa), [pb] "+r"(pb), [x] "=&r"(x), [t] "=&r"(t),
            [q0] "=&r"(q0), [q1] "=&r"(q1), [q2] "=&r"(q2), [q3] "=&r"(q3)
            :
            : "memory");
    }
    *r0 = s0;
    *r1 = s1;
    *pbx = pb;
}
#undef QT_MAC1X2

static inline void dot1x2_u8(const uint8_t *a, const uint8_t *b0, const uint8_t *b1, const uint32_t *bx,
    int32_t n, uint32_t *r0, uint32_t *r1) {
    const int32_t n4 = n & ~3;
    uint32_t acc0 = 0, acc1 = 0;
    dot1x2_acc_u8(a, &bx, n4, &acc0, &acc1);
    for (int32_t i = n4; i < n; i++) {
        acc0 += (uint32_t)a[i] * b0[i];
        acc1 += (uint32_t)a[i] * b1[i];
    }
    *r0 = acc0;
    *r1 = acc1;
}

// One row against four vectors whose lanes are interleaved per 4 values as
// (v0 02, v0 13, v1 02, v1 13, v2 02, v2 13, v3 02, v3 13): per 4 columns
// one LDR and two UXTB16 of the row, two LDM of four lane words, eight
// SMLAD: 13 instructions per 16 MACs (dot1x2_u8: 18), and the code around
// a row (its pointers, start sums and result stores) is shared by four.
#define QT_MAC1X4 \
    "ldr %[x], [%[pa]], #4\n\t" \
    "ldm %[pb]!, {%[q0], %[q1], %[q2], %[q3]}\n\t" \
    "uxtb16 %[t], %[x]\n\t" \
    "uxtb16 %[x], %[x], ror #8\n\t" \
    "smlad %[s0], %[t], %[q0], %[s0]\n\t" \
    "smlad %[s0], %[x], %[q1], %[s0]\n\t" \
    "smlad %[s1], %[t], %[q2], %[s1]\n\t" \
    "smlad %[s1], %[x], %[q3], %[s1]\n\t" \
    "ldm %[pb]!, {%[q0], %[q1], %[q2], %[q3]}\n\t" \
    "smlad %[s2], %[t], %[q0], %[s2]\n\t" \
    "smlad %[s2], %[x], %[q1], %[s2]\n\t" \
    "smlad %[s3], %[t], %[q2], %[s3]\n\t" \
    "smlad %[s3], %[x], %[q3], %[s3]\n\t"
typedef struct {
    uint32_t s0, s1, s2, s3;
} qt_acc4_t;
// s += the four dot products of a[0 .. 4 groups) against the lanes at *pbx,
// which it advances by 8 groups words (the next lanes in a run of them).
static inline void dot1x4_acc_u8(const uint8_t *a, const uint32_t **pbx, int32_t groups, qt_acc4_t *s) {
    uint32_t s0 = s->s0, s1 = s->s1, s2 = s->s2, s3 = s->s3;
    const uint8_t *pa = a;
    const uint32_t *pb = *pbx;
    uint32_t x, t;
    register uint32_t q0 __asm__("r8"), q1 __asm__("r9"), q2 __asm__("r10"), q3 __asm__("r12");
    if (groups & 1) {
        __asm__ volatile(
            QT_MAC1X4
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [pa] "+r"(pa), [pb] "+r"(pb),
            [x] "=&r"(x), [t] "=&r"(t), [q0] "=&r"(q0), [q1] "=&r"(q1), [q2] "=&r"(q2), [q3] "=&r"(q3)
            :
            : "memory");
    }
    if (groups >> 1) {
        const uint8_t *end = pa + 8 * (groups >> 1);
        __asm__ volatile(
            "1:\n\t"
            QT_MAC1X4
            QT_MAC1X4
            "cmp %[pa], %[end]\n\t"
            "bne 1b\n\t"
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [pa] "+r"(pa), [pb] "+r"(pb),
            [x] "=&r"(x), [t] "=&r"(t), [q0] "=&r"(q0), [q1] "=&r"(q1), [q2] "=&r"(q2), [q3] "=&r"(q3)
            : [end] "r"(end)
            : "cc", "memory");
    }
    s->s0 = s0;
    s->s1 = s1;
    s->s2 = s2;
    s->s3 = s3;
    *pbx = pb;
}
// QT_MAC1X4 stays defined: the scatter's pixel loop below uses it too.

// Two rows a and a + off against one vector's lanes (lanes_u8: 02, 13 per 4
// values): per 4 columns two LDR, four UXTB16, one LDRD, four SMLAD (11
// instructions per 8 MACs).  r0/r1 += the two dot products of groups x 4
// bytes; *pbx advances by 2 groups words.
#define QT_MAC2X1 \
    "ldr %[y], [%[pa], %[off]]\n\t" \
    "ldr %[x], [%[pa]], #4\n\t" \
    "ldrd %[q0], %[q1], [%[pb]], #8\n\t" \
    "uxtb16 %[t], %[x]\n\t" \
    "uxtb16 %[x], %[x], ror #8\n\t" \
    "smlad %[s0], %[t], %[q0], %[s0]\n\t" \
    "smlad %[s0], %[x], %[q1], %[s0]\n\t" \
    "uxtb16 %[t], %[y]\n\t" \
    "uxtb16 %[y], %[y], ror #8\n\t" \
    "smlad %[s1], %[t], %[q0], %[s1]\n\t" \
    "smlad %[s1], %[y], %[q1], %[s1]\n\t"
static inline void dot2x1_acc_u8(const uint8_t *a, int32_t off, const uint32_t **pbx, int32_t groups,
    uint32_t *r0, uint32_t *r1) {
    uint32_t s0 = *r0, s1 = *r1;
    const uint8_t *pa = a;
    const uint32_t *pb = *pbx;
    uint32_t x, y, t, q0, q1;
    if (groups & 1) {
        __asm__ volatile(
            QT_MAC2X1
            : [s0] "+r"(s0), [s1] "+r"(s1), [pa] "+r"(pa), [pb] "+r"(pb), [x] "=&r"(x), [y] "=&r"(y),
            [t] "=&r"(t), [q0] "=&r"(q0), [q1] "=&r"(q1)
            : [off] "r"(off)
            : "memory");
    }
    if (groups >> 1) {
        const uint8_t *end = pa + 8 * (groups >> 1);
        __asm__ volatile(
            "1:\n\t"
            QT_MAC2X1
            QT_MAC2X1
            "cmp %[pa], %[end]\n\t"
            "bne 1b\n\t"
            : [s0] "+r"(s0), [s1] "+r"(s1), [pa] "+r"(pa), [pb] "+r"(pb), [x] "=&r"(x), [y] "=&r"(y),
            [t] "=&r"(t), [q0] "=&r"(q0), [q1] "=&r"(q1)
            : [off] "r"(off), [end] "r"(end)
            : "cc", "memory");
    }
    *r0 = s0;
    *r1 = s1;
    *pbx = pb;
}
#undef QT_MAC2X1

// Rows v[0..3] (L bytes each) as dot1x4_acc_u8's lanes, zero lanes past L
// up to align4(L).
static void lanes_quad_u8(const uint8_t *const *v, int32_t L, uint32_t *bx) {
    int32_t i = 0;
    // Whole words first, the four rows' pointers in registers: ~1.4
    // instructions per byte where the loop below (ld32z's bound test, the
    // inner loop) took 3.5 (x's lanes: 11 k of ConvTranspose2d 16->1's
    // update on qemu-m4).
    const uint8_t *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3];
    for (; i + 4 <= L; i += 4, bx += 8) {
        const uint32_t w0 = ld32u(v0 + i), w1 = ld32u(v1 + i), w2 = ld32u(v2 + i), w3 = ld32u(v3 + i);
        bx[0] = (uint32_t)lanes02(w0);
        bx[1] = (uint32_t)lanes13(w0);
        bx[2] = (uint32_t)lanes02(w1);
        bx[3] = (uint32_t)lanes13(w1);
        bx[4] = (uint32_t)lanes02(w2);
        bx[5] = (uint32_t)lanes13(w2);
        bx[6] = (uint32_t)lanes02(w3);
        bx[7] = (uint32_t)lanes13(w3);
    }
    for (; i < L; i += 4, bx += 8) {
        for (int32_t k = 0; k < 4; k++) {
            const uint32_t w = ld32z(v[k], i, L);
            bx[2 * k] = (uint32_t)lanes02(w);
            bx[2 * k + 1] = (uint32_t)lanes13(w);
        }
    }
}
#endif

// Lanes of the shared vector where they pay (M4); bytes of work they need.
static inline const uint32_t *prep_lanes(const uint8_t *b, int32_t n, uint32_t *work) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    lanes_u8(b, n, work);
    return work;
#else
    (void)b;
    (void)n;
    (void)work;
    return NULL;
#endif
}
static inline int32_t lanes_bytes(int32_t n) {
    return 2 * align4(n) + 8;
}
// The shared vector's work bytes: its lanes (M4, unused elsewhere), or its
// entries (M0, compact_u8).
static inline int32_t vec_work_bytes(int32_t n) {
#if QT_CONV_ROWS4
    return 4 * n + 4;
#else
    return lanes_bytes(n);
#endif
}

// Rows (stride st, laid out by row_pos) of n values against b, each plus
// its init term (int32, mod 2^32; init NULL: none); returns how many rows it
// did: on the M0 all rows & ~3 (the groups of four), else 2 (1 at the end).
static inline int32_t dot_rows_u8(const uint8_t *a, int32_t st, int32_t rows, const uint8_t *b,
    const uint32_t *bx, int32_t n, const int32_t *init, int32_t *d) {
#if QT_CONV_ROWS4
    if (rows >= 4 && n > 0) {   // every whole interleaved group (row_pos), 4 st bytes apart
        dot4g_u8(a, 4 * (st - n), rows >> 2, b, n, init, d);
        return rows & ~3;
    }
#endif
    if (rows >= 2) {
        uint32_t r0, r1;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        dot2x_u8(a, a + st, b, bx, n, &r0, &r1);
#else
        (void)bx;
        dot2_u8(a, a + st, b, n, &r0, &r1);
#endif
        d[0] = (int32_t)(r0 + (init ? (uint32_t)init[0] : 0));
        d[1] = (int32_t)(r1 + (init ? (uint32_t)init[1] : 0));
        return 2;
    }
    d[0] = (int32_t)(dot_u8(a, b, n) + (init ? (uint32_t)init[0] : 0));
    return 1;
}

static inline uint32_t sum_u8(const uint8_t *a, int32_t n) {
    uint32_t s = 0;
    int32_t i = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    for (; i + 4 <= n; i += 4) {
        s = __usada8(ld32u(a + i), 0, s);   // 4 bytes summed per instruction
    }
#else
    for (; i + 4 <= n; i += 4) {   // unrolled: 2 instructions per byte on the M0
        s += (uint32_t)a[i] + a[i + 1] + a[i + 2] + a[i + 3];
    }
#endif
    for (; i < n; i++) {
        s += a[i];
    }
    return s;
}

// Number of taps k < K with k = phase (mod s).
static inline int32_t phase_taps(int32_t phase, int32_t K, int32_t s) {
    return phase < K ? (K - 1 - phase) / s + 1 : 0;
}

// Whether the bias can go into the accumulators' start terms: an
// accumulator of L products is at most L 255^2 in magnitude, so with
// |bias| <= INT32_MAX - L 255^2 the saturating add never saturates and a
// plain (mod 2^32) add is the same value.  Otherwise fin_run adds it.
static int bias_folds(const int32_t *bacc, int32_t n, int32_t L) {
    const int32_t lim = (int32_t)(0x7fffffffu - (uint32_t)L * 65025u);   // L <= 32767
    for (int32_t i = 0; i < n; i++) {
        if (bacc[i] > lim || bacc[i] < -lim) {
            return 0;
        }
    }
    return 1;
}

// ---- gather ------------------------------------------------------------------------
// dst[i dstep] = src[i sstep] for i < n; returns the sum of the values.  The
// weight repacks per call (gather, scatter; ~4.6 KB each on the VAE's big
// layers): out of line so that GCC keeps the loop in registers at -Os
// (inline, the M0's took 15-20 instructions per byte, ~7 now).
#if !(defined(QT_HAVE_DSP) && QT_HAVE_DSP)
__attribute__((noinline))
static uint32_t copy_strided_u8(uint8_t *dst, int32_t dstep, const uint8_t *src, int32_t sstep, int32_t n) {
    uint32_t s = 0;
    for (const uint8_t *end = src + n * sstep; src != end; src += sstep, dst += dstep) {
        const uint8_t v = *src;
        *dst = v;
        s += v;
    }
    return s;
}
#endif


// im2col: the patch of the output pixel whose taps start at input (iy0,
// ix0), n channels (sel[j], or j) of KH x KW values; outside the input = the
// zero point zx.
QT_CONV_NO_LIBCALLS
static void im2col_u8(const qt_conv_geom_t *g, const uint8_t *big, const int32_t *sel, int32_t n,
    int32_t iy0, int32_t ix0, uint8_t zx, uint8_t *p) {
    const int32_t H = g->in_h, W = g->in_w, HW = H * W, KH = g->k_h, KW = g->k_w;
    // Taps [kx_lo, kx_hi) fall inside the input row (0 <= lo <= hi <= KW).
    const int32_t kx_lo = ix0 < 0 ? (-ix0 < KW ? -ix0 : KW) : 0;
    const int32_t kx_hi0 = W - ix0 < KW ? W - ix0 : KW;
    const int32_t kx_hi = kx_hi0 < kx_lo ? kx_lo : kx_hi0;
    if (iy0 >= 0 && iy0 + KH <= H && kx_lo == 0 && kx_hi == KW) {
        // Inside: plain row copies.
        for (int32_t j = 0; j < n; j++) {
            const uint8_t *xr = big + (sel ? sel[j] : j) * HW + iy0 * W + ix0;
            for (int32_t ky = 0; ky < KH; ky++, xr += W) {
                if (KW == 3) {   // the usual kernel: no loop per byte
                    p[0] = xr[0];
                    p[1] = xr[1];
                    p[2] = xr[2];
                    p += 3;
                    continue;
                }
                for (int32_t kx = 0; kx < KW; kx++) {
                    *p++ = xr[kx];
                }
            }
        }
        return;
    }
    for (int32_t j = 0; j < n; j++) {
        const uint8_t *xc = big + (sel ? sel[j] : j) * HW;
        for (int32_t ky = 0; ky < KH; ky++) {
            const int32_t iy = iy0 + ky;
            if (iy < 0 || iy >= H) {
                for (int32_t kx = 0; kx < KW; kx++) {
                    *p++ = zx;
                }
                continue;
            }
            const uint8_t *xr = xc + iy * W + ix0;
            int32_t kx = 0;
            for (; kx < kx_lo; kx++) {
                *p++ = zx;
            }
            for (; kx < kx_hi; kx++) {
                *p++ = xr[kx];
            }
            for (; kx < KW; kx++) {
                *p++ = zx;
            }
        }
    }
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4 gather, four filters per pass over the input: the patches of
// every output pixel first (im2col of the whole output, OHW x align4(C KK)
// bytes: no more than the Conv2d's gradient takes), then per group of four
// filters their rows split into lanes once (dot1x4_acc_u8's interleaved
// layout) and each patch read once for all four: 13 instructions per 16
// MACs (pairs, dot1x2_u8: 18; a patch split into lanes per pixel against
// filter-row pairs, dot2x_u8: ~28).  The four output maps are finished a
// map at a time.  Scratch: wsum[O], the accumulators of four maps (first
// bacc[O], and the group's rows when sel gathers them), c0 per pixel, the
// lanes, the patches.
static int32_t gather_acc_bytes(const qt_conv_geom_t *g) {
    const int32_t OHW = g->out_h * g->out_w, Lp = align4(g->in_ch * g->k_h * g->k_w);
    int32_t n = 16 * OHW;
    n = n > 4 * g->out_ch ? n : 4 * g->out_ch;
    return n > 4 * Lp ? n : 4 * Lp;
}

int32_t qt_conv_gather_scratch(const qt_conv_geom_t *g, int32_t n_sel_max) {
    (void)n_sel_max;
    const int32_t OHW = g->out_h * g->out_w, Lp = align4(g->in_ch * g->k_h * g->k_w);
    return 4 * g->out_ch + gather_acc_bytes(g) + 8 * Lp + OHW * Lp;
}

// Lanes of the int16 values w - zw (zw2 = zw in both halves; the weight
// zero point folded in, so a dot product needs no sum of its data), zero
// lanes past L: bytes i..i+3 of a row as its two lane words at bx.
static inline void lanes_zw_word(const uint8_t *r, int32_t i, int32_t L, uint32_t zw2, uint32_t *bx) {
    // the lanes of positions i + 2 (high half of 02) and i + 1, i + 3 (13) that lie past L
    const uint32_t m02 = (i + 2 < L ? 0xffff0000u : 0u) | 0xffffu;
    const uint32_t m13 = (i + 1 < L ? 0xffffu : 0u) | (i + 3 < L ? 0xffff0000u : 0u);
    const uint32_t w = ld32z(r, i, L);
    bx[0] = __ssub16((int16x2_t)lanes02(w), (int16x2_t)zw2) & m02;
    bx[1] = __ssub16((int16x2_t)lanes13(w), (int16x2_t)zw2) & m13;
}

// Four rows interleaved (dot1x4_acc_u8's lanes; one row's, dot2x1_acc_u8's:
// two words per four bytes, as scatter_lanes_u8 writes them).
static void lanes_quad_zw_u8(const uint8_t *const *v, int32_t L, uint32_t zw2, uint32_t *bx) {
    for (int32_t i = 0; i < L; i += 4, bx += 8) {
        for (int32_t k = 0; k < 4; k++) {
            lanes_zw_word(v[k], i, L, zw2, bx + 2 * k);
        }
    }
}

// Every patch (OHW of them, 4 G bytes each, back to back) against four
// filters' lanes (lanes_quad_zw_u8, 8 G words): acc[4 pix + k] = sum of the
// patch's bytes times filter k's lanes (mod 2^32), pixel-major.  By hand:
// the first group starts the four sums (SMUAD), the rest run two groups per
// loop pass (13 instructions per group), one STM stores a pixel's four sums
// (~7 per pixel around the groups; the C loop around dot1x4_acc_u8 took
// ~50).  All fourteen registers: the lanes' start and the end of acc are
// read from the stack.
#define QT_FIRST1X4 \
    "ldr %[x], [%[pa]], #4\n\t" \
    "ldm %[pb]!, {%[q0], %[q1], %[q2], %[q3]}\n\t" \
    "uxtb16 %[t], %[x]\n\t" \
    "uxtb16 %[x], %[x], ror #8\n\t" \
    "smuad %[s0], %[t], %[q0]\n\t" \
    "smlad %[s0], %[x], %[q1], %[s0]\n\t" \
    "smuad %[s1], %[t], %[q2]\n\t" \
    "smlad %[s1], %[x], %[q3], %[s1]\n\t" \
    "ldm %[pb]!, {%[q0], %[q1], %[q2], %[q3]}\n\t" \
    "smuad %[s2], %[t], %[q0]\n\t" \
    "smlad %[s2], %[x], %[q1], %[s2]\n\t" \
    "smuad %[s3], %[t], %[q2]\n\t" \
    "smlad %[s3], %[x], %[q3], %[s3]\n\t"
#define QT_QUAD_PIXELS(ODD) \
    "1:\n\t" \
    QT_FIRST1X4 \
    ODD \
    "cmp %[pb], %[lend]\n\t" \
    "beq 3f\n\t" \
    "2:\n\t" \
    QT_MAC1X4 \
    QT_MAC1X4 \
    "cmp %[pb], %[lend]\n\t" \
    "bne 2b\n\t" \
    "3:\n\t" \
    "stmia %[pout]!, {%[s0], %[s1], %[s2], %[s3]}\n\t" \
    "ldr %[pb], %[lanes]\n\t" \
    "ldr %[x], %[oend]\n\t" \
    "cmp %[pout], %[x]\n\t" \
    "bne 1b\n\t"
__attribute__((noinline))
static void gather_quad_u8(const uint8_t *patches, int32_t OHW, const uint32_t *lanes, int32_t G, int32_t *acc) {
    register uint32_t s0 __asm__("r0"), s1 __asm__("r1"), s2 __asm__("r2"), s3 __asm__("r3");
    register uint32_t q0 __asm__("r8"), q1 __asm__("r9"), q2 __asm__("r10"), q3 __asm__("r12");
    const uint8_t *pa = patches;
    const uint32_t *pb = lanes, *lend = lanes + 8 * G;
    int32_t *pout = acc;
    const int32_t *oend = acc + 4 * OHW;
    uint32_t x, t;
    if ((G - 1) & 1) {
        __asm__ volatile(QT_QUAD_PIXELS(QT_MAC1X4)
            : [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3), [q0] "=&r"(q0), [q1] "=&r"(q1),
            [q2] "=&r"(q2), [q3] "=&r"(q3), [x] "=&r"(x), [t] "=&r"(t), [pa] "+r"(pa), [pb] "+r"(pb),
            [pout] "+r"(pout)
            : [lend] "r"(lend), [lanes] "m"(lanes), [oend] "m"(oend)
            : "cc", "memory");
    } else {
        __asm__ volatile(QT_QUAD_PIXELS("")
            : [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3), [q0] "=&r"(q0), [q1] "=&r"(q1),
            [q2] "=&r"(q2), [q3] "=&r"(q3), [x] "=&r"(x), [t] "=&r"(t), [pa] "+r"(pa), [pb] "+r"(pb),
            [pout] "+r"(pout)
            : [lend] "r"(lend), [lanes] "m"(lanes), [oend] "m"(oend)
            : "cc", "memory");
    }
}
#undef QT_QUAD_PIXELS
#undef QT_FIRST1X4
#undef QT_MAC1X4

// One gathered channel of 3x3 taps, mask-aware (ConvTranspose2d 16->1's
// error: 54 % of its outputs are dropped by the next ReLU), one filter per
// pass, the dot product and the finish fused: out[p] for the n >= 1
// patches whose mask byte out[p + moff] is nonzero gets
// usat8((smmla(dot + c0, mult, rz)) >> sh) (fin_run_m4's common case:
// same value), its accumulator dot + c0 joins the range mm[0..1]; the
// others get the zero point unread.  The patches are already lanes
// (gather1_lanes_u8: five words a pixel, taps 0/2, 1/3, 4/6, 5/7, 8/-),
// so a dot is five SMLADs and four loads.  kp: c0, the weights w - z_w as
// the same five lane words, one word unused, mult, rz, sh, zero.  By hand:
// 23 instructions per kept output, 7 per dropped one (with the 9-byte
// patches split per output: 29 / 7).  Fourteen registers: pa r0, out r1,
// end r2, kp r3, moff r4, lo r5, hi r6; a r7, the weights, the patch's
// lanes and the finish's constants in r8-r12, lr.
__attribute__((naked, noinline))
static void gather1_fin_u8(const uint32_t *pa, uint8_t *out, int32_t n, const int32_t *kp, intptr_t moff,
    int32_t *mm) {
    __asm__ volatile (
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldr r4, [sp, #36]\n\t"           // moff
        "ldr r12, [sp, #40]\n\t"          // mm
        "ldrd r5, r6, [r12]\n\t"          // lo, hi
        "add r2, r1, r2\n\t"              // end
        "1:\n\t"
        "ldrb r7, [r1, r4]\n\t"
        "cbz r7, 7f\n\t"
        "ldm r3, {r7, r8, r9, r10}\n\t"   // c0, w02, w13, w46
        "ldm r0!, {r11, r12, lr}\n\t"     // the patch's 02, 13, 46
        "smlad r7, r11, r8, r7\n\t"
        "smlad r7, r12, r9, r7\n\t"
        "smlad r7, lr, r10, r7\n\t"
        "ldrd r8, r9, [r3, #16]\n\t"      // w57, w8
        "ldrd r11, r12, [r0], #8\n\t"     // the patch's 57, 8
        "smlad r7, r11, r8, r7\n\t"
        "smlad r7, r12, r9, r7\n\t"
        "cmp r7, r5\n\t"
        "blt 5f\n\t"
        "2:\n\t"
        "cmp r7, r6\n\t"
        "bgt 6f\n\t"
        "3:\n\t"
        "ldrd r10, r11, [r3, #28]\n\t"    // mult, rz
        "ldr r12, [r3, #36]\n\t"          // sh
        "smmla r7, r7, r10, r11\n\t"
        "asr r7, r7, r12\n\t"
        "usat r7, #8, r7\n\t"
        "strb r7, [r1], #1\n\t"
        "cmp r1, r2\n\t"
        "bne 1b\n\t"
        "b 9f\n\t"
        "5:\n\t"
        "mov r5, r7\n\t"
        "b 2b\n\t"
        "6:\n\t"
        "mov r6, r7\n\t"
        "b 3b\n\t"
        "7:\n\t"
        "add r0, r0, #20\n\t"
        "ldr r7, [r3, #40]\n\t"           // zero
        "strb r7, [r1], #1\n\t"
        "cmp r1, r2\n\t"
        "bne 1b\n\t"
        "9:\n\t"
        "ldr r12, [sp, #40]\n\t"
        "strd r5, r6, [r12]\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}

// The patches of gather1_fin_u8 (one channel xc, 3x3 taps): per output
// pixel its taps t0..t8 (row by row) as the lane words (t0, t2), (t1, t3),
// (t4, t6), (t5, t7), (t8, 0), 20 bytes a pixel, at lp.  The channel is
// copied with its padding first (after the patches: the zero point zx
// outside the input, every tap then inside; ~1 k instructions for
// ConvTranspose2d 16->1's 28x28), then each pixel's three tap rows are
// three unaligned words, packed by hand: 16 instructions a pixel, where
// gather_patches_u8's 9-byte patch took ~45 (its border pixels ~100) and
// splitting it into lanes per filter and output 8 more.  Returns 0 (and
// writes nothing) when the two do not fit below lim.
QT_CONV_NO_LIBCALLS __attribute__((noinline, optimize("Os")))
static int gather1_lanes_u8(const qt_conv_geom_t *g, const uint8_t *xc, uint32_t zx, uint32_t *lp,
    const uint8_t *lim) {
    const int32_t H = g->in_h, W = g->in_w, OW = g->out_w, sw = g->stride_w, pw = g->pad_w;
    const int32_t Wp = (OW - 1) * sw + 3, Hp = (g->out_h - 1) * g->stride_h + 3;
    uint8_t *pad = (uint8_t *)(lp + 5 * g->out_h * OW);
    const int32_t npad = (Hp * Wp + 4 + 3) >> 2;   // words; the last row's last word reads 1 byte past
    if (lim - pad < 4 * npad) {
        return 0;
    }
    qt_fill_i32((int32_t *)(void *)pad, (size_t)npad, (int32_t)(zx * 0x01010101u));
    // columns [c0, c1) of a padded row lie inside the input
    const int32_t c0 = pw < Wp ? pw : Wp, c1 = pw + W < Wp ? pw + W : Wp;
    for (int32_t py = 0; py < Hp; py++) {
        const int32_t iy = py - g->pad_h;
        if (iy < 0 || iy >= H) {
            continue;
        }
        const uint8_t *src = xc + iy * W - pw;
        uint8_t *d = pad + py * Wp;
        int32_t px = c0;
        for (; px + 4 <= c1; px += 4) {
            st32u(d + px, ld32u(src + px));
        }
        for (; px < c1; px++) {
            d[px] = src[px];
        }
    }
    const int32_t W2 = 2 * Wp;
    const uint8_t *r0 = pad;
    for (int32_t oy = 0; oy < g->out_h; oy++, r0 += g->stride_h * Wp) {
        const uint8_t *r = r0;
        uint32_t *end = lp + 5 * OW;
        // stm stores in register order: the five lanes in ascending registers
        register uint32_t a __asm__("r4"), b __asm__("r5"), c __asm__("r6"), e __asm__("r7"), f __asm__("r8");
        __asm__ volatile (
            "1:\n\t"
            "ldr %[a], [%[r]]\n\t"
            "ldr %[b], [%[r], %[W]]\n\t"
            "ldr %[f], [%[r], %[W2]]\n\t"
            "add %[r], %[r], %[sw]\n\t"
            "bfi %[a], %[b], #24, #8\n\t"         // t0 t1 t2 t3
            "ubfx %[b], %[b], #8, #16\n\t"
            "orr %[c], %[b], %[f], lsl #16\n\t"   // t4 t5 t6 t7
            "ubfx %[f], %[f], #16, #8\n\t"        // t8
            "uxtb16 %[b], %[a], ror #8\n\t"
            "uxtb16 %[a], %[a]\n\t"
            "uxtb16 %[e], %[c], ror #8\n\t"
            "uxtb16 %[c], %[c]\n\t"
            "stm %[lp]!, {%[a], %[b], %[c], %[e], %[f]}\n\t"
            "cmp %[lp], %[end]\n\t"
            "bne 1b\n\t"
            : [lp] "+r"(lp), [r] "+r"(r), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [e] "=&r"(e), [f] "=&r"(f)
            : [W] "r"(Wp), [W2] "r"(W2), [sw] "r"(sw), [end] "r"(end)
            : "cc", "memory");
    }
    return 1;
}

// gather1_fin_u8's kp per filter from its nine weights w9 (C KK bytes
// apart): c0 = - z_x sum (w - z_w) and the lane words of w - z_w in the
// order gather1_fin_u8 reads them ((w0, w2), (w1, w3), (w4, w6), (w5, w7),
// (w8, 0)), the sum from the same two words and byte (USADA8).  ~20
// instructions a filter, where qt_conv_gather_u8's sums per filter and its
// lanes per filter (a helper since removed) took ~150
// (5 k of ConvTranspose2d 32->16's error at k = 1 on qemu-m4, 32 filters).
static inline void gather1_kp_u8(const uint8_t *w9, uint32_t zw, uint32_t zx, int32_t *kp) {
    const uint32_t a = ld32u(w9), b = ld32u(w9 + 4), t8 = w9[8], zw2 = zw * 0x10001u;
    kp[0] = (int32_t)(0u - zx * (__usada8(a, 0, __usada8(b, 0, t8)) - 9u * zw));
    kp[1] = (int32_t)__ssub16((int16x2_t)lanes02(a), (int16x2_t)zw2);
    kp[2] = (int32_t)__ssub16((int16x2_t)lanes13(a), (int16x2_t)zw2);
    kp[3] = (int32_t)__ssub16((int16x2_t)lanes02(b), (int16x2_t)zw2);
    kp[4] = (int32_t)__ssub16((int16x2_t)lanes13(b), (int16x2_t)zw2);
    kp[5] = (int32_t)((t8 - zw) & 0xffffu);
}

// qt_conv_gather_u8 for one gathered channel xc of 3x3 taps (w0: its
// filter 0's nine weights), mask-aware, without a bias: a filter at a time,
// the dropped outputs skipped (gather1_fin_u8), the patches as lanes built
// once (gather1_lanes_u8, at lp, below lim).  Returns 0 (nothing written)
// when the finish is not the fused form or the lanes do not fit.
QT_CONV_NO_LIBCALLS __attribute__((noinline))
static int gather1_u8(const qt_conv_geom_t *g, const uint8_t *xc, const uint8_t *w0, const qt_conv_rq_t *rq,
    uint8_t *small, int32_t *stats, uint32_t *lp, const uint8_t *lim) {
    const int32_t OHW = g->out_h * g->out_w, CKK = g->in_ch * 9;
    qt_conv_fin_t fin;
    qt_conv_fin_init(&fin, rq, small);
    const int32_t rz = qt_conv_fin_fused_rz(&fin);
    if (!rz || !gather1_lanes_u8(g, xc, (uint32_t)rq->zero_in, lp, lim)) {
        return 0;
    }
    int32_t mm[2] = {INT32_MAX, INT32_MIN};
    int32_t kp[11];
    kp[7] = fin.mult;
    kp[8] = rz;
    kp[9] = fin.shift - 32;
    kp[10] = fin.zero;
    for (int32_t o = 0; o < g->out_ch; o++, w0 += CKK, small += OHW) {
        gather1_kp_u8(w0, (uint32_t)rq->zero_w, (uint32_t)rq->zero_in, kp);
        gather1_fin_u8(lp, small, OHW, kp, fin.moff, mm);
    }
    if (stats) {
        stats[0] = mm[0];
        stats[1] = mm[1];
    }
    return 1;
}

// The patches of every output pixel, Ln bytes apart (the selected channels'
// when sel).  3x3 taps inside the input (all but the border pixels): a tap
// row of three bytes is one unaligned word copy (its fourth byte is the
// next row's first, overwritten by it; a channel's last tap row is copied
// by bytes, the word could read past the input), with the pixel's channel
// offsets in registers: im2col_u8's range tests and loops per pixel took
// ~140 instructions per 9-byte patch (ConvTranspose2d 16->1's error:
// 27 k of its 111 k), this ~20.
QT_CONV_NO_LIBCALLS
static void gather_patches_u8(const qt_conv_geom_t *g, const uint8_t *big, const int32_t *sel, int32_t n,
    uint8_t zx, uint8_t *p, int32_t Ln) {
    const int32_t H = g->in_h, W = g->in_w, HW = H * W, sw = g->stride_w;
    const int k3 = g->k_h == 3 && g->k_w == 3;
    for (int32_t oy = 0; oy < g->out_h; oy++) {
        const int32_t iy0 = oy * g->stride_h - g->pad_h;
        const int row_in = k3 && iy0 >= 0 && iy0 + 3 <= H;
        for (int32_t ox = 0; ox < g->out_w; ox++, p += Ln) {
            const int32_t ix0 = ox * sw - g->pad_w;
            if (!row_in || ix0 < 0 || ix0 + 3 > W) {
                im2col_u8(g, big, sel, n, iy0, ix0, zx, p);
                continue;
            }
            const uint8_t *xr = big + iy0 * W + ix0;
            uint8_t *q = p;
            for (int32_t j = 0; j < n; j++, q += 9) {
                const uint8_t *r = xr + (sel ? sel[j] : j) * HW;
                st32u(q, ld32u(r));
                st32u(q + 3, ld32u(r + W));
                q[6] = r[2 * W];
                q[7] = r[2 * W + 1];
                q[8] = r[2 * W + 2];
            }
        }
    }
}

// Filter o's row over the selected channels, gathered into dst (L bytes).
QT_CONV_NO_LIBCALLS
static void gather_row_u8(const uint8_t *w, int32_t o, int32_t C, int32_t KK, const int32_t *sel,
    int32_t n, uint8_t *dst) {
    for (int32_t j = 0; j < n; j++) {
        const uint8_t *src = w + (o * C + sel[j]) * KK;
        for (int32_t t = 0; t < KK; t++) {
            *dst++ = src[t];
        }
    }
}

QT_CONV_NO_LIBCALLS
void qt_conv_gather_u8(const qt_conv_geom_t *g, const uint8_t *big, const uint8_t *w,
    const int32_t *b, uint8_t *small, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    const int32_t C = g->in_ch, KK = g->k_h * g->k_w, O = g->out_ch, OHW = g->out_h * g->out_w;
    const int32_t n = sel ? n_sel : C;
    const int32_t L = n * KK, Ln = align4(L), Lp = align4(C * KK);
    const uint32_t zx = (uint32_t)rq->zero_in, zw = (uint32_t)rq->zero_w;
    int32_t *wsum = (int32_t *)(void *)scratch;
    int32_t *acc = wsum + O;   // four output maps
    int32_t *bacc = acc;
    uint8_t *rowbuf = (uint8_t *)acc;
    uint32_t *lanes = (uint32_t *)(void *)((uint8_t *)acc + gather_acc_bytes(g));
    uint8_t *patches = (uint8_t *)(lanes + 2 * Lp);
    // One channel, 3x3 taps, mask-aware, no bias (ConvTranspose2d's error
    // at DSGU's k = 1, and 16->1's): gather1_u8, before the sums per filter
    // below (it takes them from its own lane words).
    if (!b && n == 1 && g->k_h == 3 && g->k_w == 3 && OHW > 0
        && gather1_u8(g, big + (sel ? sel[0] : 0) * g->in_h * g->in_w, w + (sel ? sel[0] : 0) * 9, rq, small,
            stats, (uint32_t *)(void *)acc, patches + OHW * Lp)) {
        return;
    }
    for (int32_t o = 0; o < O; o++) {
        bacc[o] = b ? qt_fixmul_apply(b[o], rq->bias) : 0;   // the bias in accumulator steps
    }
    // wsum: each filter's term - z_x sum (w - z_w) (+ the bias when it cannot
    // saturate; else it is added per value: bsat), the finish's c0; the
    // lanes hold w - z_w, so sum (w - z_w)(x - z_x) needs nothing per patch.
    const int bsat = b && !bias_folds(bacc, O, L);
    for (int32_t o = 0; o < O; o++) {
        uint32_t s = 0;
        for (int32_t j = 0; j < n; j++) {
            s += sum_u8(w + (o * C + (sel ? sel[j] : j)) * KK, KK);
        }
        wsum[o] = (int32_t)((bsat ? 0u : (uint32_t)bacc[o]) - zx * (s - (uint32_t)L * zw));
    }
    qt_conv_fin_t fin;
    qt_conv_fin_init(&fin, rq, small);
    int32_t mm[2] = {INT32_MAX, INT32_MIN};
    gather_patches_u8(g, big, sel, n, (uint8_t)zx, patches, Ln);
    for (int32_t o = 0; o < O; o += 4) {
        // Four filters per pass (gather_quad_u8); a short last group repeats its last filter.
        const int32_t nf = O - o < 4 ? O - o : 4;
        const uint8_t *v[4];
        uint32_t s[4];
        for (int32_t k = 0; k < 4; k++) {
            const int32_t ok = o + (k < nf ? k : nf - 1);
            if (sel) {
                if (k < nf) {
                    gather_row_u8(w, ok, C, KK, sel, n, rowbuf + k * Ln);
                }
                v[k] = rowbuf + (k < nf ? k : nf - 1) * Ln;
            } else {
                v[k] = w + ok * L;
            }
            s[k] = (uint32_t)wsum[ok];
        }
        lanes_quad_zw_u8(v, L, zw * 0x10001u, lanes);
        if (L > 0 && OHW > 0) {
            gather_quad_u8(patches, OHW, lanes, Ln >> 2, acc);
        } else {
            qt_fill_i32(acc, (size_t)(4 * OHW), 0);   // no selected channel: the sums are 0
        }
        for (int32_t k = 0; k < nf; k++) {
            uint32_t ck = s[k];
            if (bsat) {   // rare: a bias near the int32 limits, added saturating
                const int32_t bk = qt_fixmul_apply(b[o + k], rq->bias);
                for (int32_t pix = 0; pix < OHW; pix++) {
                    acc[4 * pix + k] = qt_sat_add_i32((int32_t)((uint32_t)acc[4 * pix + k] + ck), bk);
                }
                ck = 0;
            }
            qt_conv_fin_run_st(acc + k, 4, OHW, small + (o + k) * OHW, 1, ck, &fin, mm);
        }
    }
    if (stats) {
        stats[0] = mm[0];
        stats[1] = mm[1];
    }
}
#else
#if QT_CONV_ROWS4
// Cortex-M0, one gathered channel of 3x3 taps, mask-aware (ConvTranspose2d
// 16->1's error): per filter, not per pixel.  The patches of every
// output pixel are copied once (KK OHW bytes, qt_conv_cols_u8), then each filter's nine weights w - z_w run over them in
// registers, skipping the outputs the mask drops (their MACs were computed
// and thrown away: 54 % of ConvTranspose2d 16->1's), and one finish per
// filter map (stride 1) instead of one per pixel across the maps.
#define QT_GATHER1(g, n) ((n) == 1 && (g)->k_h * (g)->k_w == 9)

// acc[p] = sum_t wv[t] pat[9 p + t] (mod 2^32) for the p < n (n >= 1) whose
// mask byte mk[p] is above zm (the others left as they were: the finish
// does not read them).  By hand: 41 instructions per output kept, 9 per
// one dropped (GCC -O2: 47 and 8); w0, w1 in r6, r7, w2..w5 in r10, r11,
// ip, lr, w6..w8 on the stack.
#define QT_G1MAC(t, wload) \
    "ldrb r1, [r0, #" t "]\n" wload "muls r1, r5, r1\n" "adds r2, r2, r1\n"
__attribute__((naked, noinline))
static void gather1_dots_u8(const uint8_t *pat, int32_t n, const int32_t *wv, const uint8_t *mk, int32_t zm,
    int32_t *acc) {
    __asm__ volatile (
        ".syntax unified\n"
        "push {r4, r5, r6, r7, lr}\n"
        "mov r4, r8\n" "mov r5, r9\n" "mov r6, r10\n" "mov r7, r11\n"
        "push {r4, r5, r6, r7}\n"
        "sub sp, #12\n"               // w6..w8; zm, acc now at sp + 48, 52
        "ldr r4, [r2, #24]\n" "str r4, [sp, #0]\n"
        "ldr r4, [r2, #28]\n" "str r4, [sp, #4]\n"
        "ldr r4, [r2, #32]\n" "str r4, [sp, #8]\n"
        "ldr r4, [r2, #8]\n" "mov r10, r4\n"
        "ldr r4, [r2, #12]\n" "mov r11, r4\n"
        "ldr r4, [r2, #16]\n" "mov ip, r4\n"
        "ldr r4, [r2, #20]\n" "mov lr, r4\n"
        "ldr r6, [r2, #0]\n"
        "ldr r7, [r2, #4]\n"
        "lsls r4, r1, #3\n"
        "adds r4, r4, r1\n"
        "adds r4, r0, r4\n"
        "mov r9, r4\n"               // pat + 9 n: the end
        "ldr r4, [sp, #48]\n"
        "mov r8, r4\n"               // zm
        "ldr r4, [sp, #52]\n"        // acc
        "1:\n"
        "ldrb r1, [r3]\n"
        "cmp r1, r8\n"
        "ble 3f\n"
        "ldrb r2, [r0, #0]\n" "muls r2, r6, r2\n"
        "ldrb r1, [r0, #1]\n" "muls r1, r7, r1\n" "adds r2, r2, r1\n"
        QT_G1MAC("2", "mov r5, r10\n")
        QT_G1MAC("3", "mov r5, r11\n")
        QT_G1MAC("4", "mov r5, ip\n")
        QT_G1MAC("5", "mov r5, lr\n")
        QT_G1MAC("6", "ldr r5, [sp, #0]\n")
        QT_G1MAC("7", "ldr r5, [sp, #4]\n")
        QT_G1MAC("8", "ldr r5, [sp, #8]\n")
        "stm r4!, {r2}\n"
        "2:\n"
        "adds r3, #1\n"
        "adds r0, #9\n"
        "cmp r0, r9\n"
        "bne 1b\n"
        "add sp, #12\n"
        "pop {r4, r5, r6, r7}\n"
        "mov r8, r4\n" "mov r9, r5\n" "mov r10, r6\n" "mov r11, r7\n"
        "pop {r4, r5, r6, r7, pc}\n"
        "3:\n"
        "adds r4, #4\n"
        "b 2b\n"
        ".syntax divided\n");
}
#undef QT_G1MAC
#else
#define QT_GATHER1(g, n) 0
#endif

int32_t qt_conv_gather_scratch(const qt_conv_geom_t *g, int32_t n_sel_max) {
    const int32_t KK = g->k_h * g->k_w;
    int32_t n = 12 * g->out_ch + align4(g->in_ch * KK) + vec_work_bytes(g->in_ch * KK);
    if (n_sel_max || QT_CONV_ROWS4) {   // the filter rows repacked
        n += align4(g->out_ch * g->in_ch * KK);
    }
#if QT_CONV_ROWS4
    if (QT_GATHER1(g, g->in_ch)) {   // the patches and one map's accumulators
        n += 13 * g->out_h * g->out_w + 4;
    }
#endif
    return n;
}

// One patch (im2col) per output pixel against every filter row.
QT_CONV_NO_LIBCALLS
void qt_conv_gather_u8(const qt_conv_geom_t *g, const uint8_t *big, const uint8_t *w,
    const int32_t *b, uint8_t *small, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    const int32_t C = g->in_ch, KK = g->k_h * g->k_w;
    const int32_t O = g->out_ch, OHW = g->out_h * g->out_w;
    const int32_t n = sel ? n_sel : C;
    const int32_t L = n * KK;
    const uint32_t zx = (uint32_t)rq->zero_in, zw = (uint32_t)rq->zero_w;
    int32_t mm[2] = {INT32_MAX, INT32_MIN};
    qt_conv_fin_t fin;
    qt_conv_fin_init(&fin, rq, small);
    int32_t *wsum = (int32_t *)(void *)scratch;
    int32_t *bacc = wsum + O;
    int32_t *accv = bacc + O;   // one pixel's accumulators
    uint8_t *patch = scratch + 12 * O;
    uint32_t *lanes = (uint32_t *)(void *)(patch + align4(C * KK));
    const uint8_t *rows = w;
    int32_t rstride = C * KK;
    if (sel || QT_CONV_ROWS4) {
        // Only the selected input channels (and on the M0 the groups of four
        // rows): repack each filter's chunks into one row of L values.
        uint8_t *ws = (uint8_t *)lanes + vec_work_bytes(C * KK);
        for (int32_t o = 0; o < O; o++) {
            int32_t step;
            uint8_t *dst = ws + row_pos(o, O, L, &step);
            uint32_t s = 0;
            if (!sel) {   // the filter's row is contiguous
                s = copy_strided_u8(dst, step, w + o * C * KK, 1, L);
            }
            for (int32_t j = 0; sel && j < n; j++, dst += KK * step) {
                s += copy_strided_u8(dst, step, w + (o * C + sel[j]) * KK, 1, KK);
            }
            wsum[o] = (int32_t)s;
        }
        rows = ws;
        rstride = L;
    } else {
        for (int32_t o = 0; o < O; o++) {
            wsum[o] = (int32_t)sum_u8(rows + o * rstride, L);
        }
    }
    for (int32_t o = 0; o < O; o++) {
        // the bias in accumulator steps, once per call
        bacc[o] = b ? qt_fixmul_apply(b[o], rq->bias) : 0;
    }
    // wsum becomes each filter's start term: - z_x sum w (+ the bias when it
    // cannot saturate; else fin_run adds it: bsat).
    const int32_t *bsat = b && !bias_folds(bacc, O, L) ? bacc : NULL;
    for (int32_t o = 0; o < O; o++) {
        wsum[o] = (int32_t)((bsat ? 0u : (uint32_t)bacc[o]) - zx * (uint32_t)wsum[o]);
    }
#if QT_CONV_ROWS4
    if (QT_GATHER1(g, C) && n == 1 && fin.moff) {   // (error propagation: no bias)
        // One channel (above), mask-aware: sum (w - z_w)(x - z_x) = sum (w -
        // z_w) x - z_x sum (w - z_w); the filter's start term wsum[o] (- z_x
        // sum w, + the bias) plus 9 z_w z_x is its finish's c0.
        uint8_t *pat = scratch + 12 * O;
        int32_t *acc = (int32_t *)(void *)(pat + align4(9 * OHW));
        int32_t wv[9];
        qt_conv_cols_u8(g, big, (int32_t)zx, pat, wv, 0, -1);   // (wv: the taps' sums, unused)
        const uint8_t *mk = small + fin.moff;
        for (int32_t o = 0; o < O; o++) {
            const uint8_t *wo = w + o * 9;
            for (int32_t t = 0; t < 9; t++) {
                wv[t] = (int32_t)wo[t] - (int32_t)zw;
            }
            gather1_dots_u8(pat, OHW, wv, mk + o * OHW, fin.zm, acc);
            qt_conv_fin_run(acc, NULL, OHW, small + o * OHW, 1, (uint32_t)wsum[o] + 9u * zw * zx, &fin, mm);
        }
    } else
#else
    const uint32_t cn = (uint32_t)L * zw * zx;
#endif
    for (int32_t oy = 0, pix = 0; oy < g->out_h; oy++) {
        const int32_t iy0 = oy * g->stride_h - g->pad_h;
        for (int32_t ox = 0; ox < g->out_w; ox++, pix++) {
            im2col_u8(g, big, sel, n, iy0, ox * g->stride_w - g->pad_w, (uint8_t)zx, patch);
#if QT_CONV_ROWS4
            // Cortex-M0: the patch's entries (compact_u8); c0 = - z_w sum x'
            // for both forms (sum x = sum x' + L z_x).  Sparse, the groups
            // start from the bias alone (their - z_x sum w is the skipped
            // columns' share); the rows past the groups stay dense.
            int32_t sx;
            const int32_t cnt = compact_u8(patch, L, zx, lanes, &sx, 0);
            const uint32_t c0 = 0u - zw * (uint32_t)sx;
            const uint32_t *bx = NULL;
            int32_t o = 0;
            if (QT_SPARSE_PAYS(cnt, L)) {
                o = O & ~3;
                dot4s_u8(rows, 4 * L, O >> 2, lanes, bsat ? NULL : bacc, accv);
            }
            while (o < O) {
#else
            const uint32_t c0 = cn - zw * sum_u8(patch, L);
            const uint32_t *bx = O >= 2 ? prep_lanes(patch, L, lanes) : NULL;
            for (int32_t o = 0; o < O;) {
#endif
                o += dot_rows_u8(rows + o * rstride, rstride, O - o, patch, bx, L, wsum + o, accv + o);
            }
            qt_conv_fin_run(accv, bsat, O, small + pix, OHW, c0, &fin, mm);
        }
    }
    if (stats) {
        stats[0] = mm[0];
        stats[1] = mm[1];
    }
}
#endif

// ---- scatter -----------------------------------------------------------------------

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// One pixel of the small side, channel-last: the n selected channels' values
// at pos (channel planes of hw bytes) into dst; returns their sum, which the
// zero-point correction of every dot product over this pixel needs.  (Only
// the M4 scatter below calls it: clang's -Wunused-function stops the host
// fuzz build on an unused one.)
static inline uint32_t small_pixel_channels_u8(const uint8_t *small, const int32_t *sel, int32_t n,
    int32_t hw, int32_t pos, uint8_t *dst) {
    uint32_t t = 0;
    for (int32_t j = 0; j < n; j++) {
        const uint8_t v = small[(sel ? sel[j] : j) * hw + pos];
        dst[j] = v;
        t += v;
    }
    return t;
}

// Cortex-M4 scatter with two or more big channels, by stride phase: the big
// pixels whose (y + pad) mod stride agree use the same taps, nky x nkx of
// them.  The small side is made channel-last once (hwc[pos][j], its sums
// per position), so a pixel's taps of one tap row are one contiguous run of
// hwc (n nkx bytes, the segment).  Per phase and pair of big channels the
// two tap rows are split into lanes once (dot1x2_u8's layout, each segment
// padded with zero lanes to a multiple of 4) and every pixel's segments are
// read once for both: 9 instructions per 8 MACs, where the per-pixel patch
// (strided byte copies) against channel pairs took ~3.4 per MAC in all.
// hwc has a border of zero points wide enough for every tap, so no segment
// needs a bounds check.
typedef struct {
    int32_t seg_max, row_max, p_max;
    int32_t top, left, hp, wp;   // the zero-point border around hwc, padded sizes
} qt_scatter_dims_t;

static void scatter_dims(const qt_conv_geom_t *g, qt_scatter_dims_t *d) {
    const int32_t sh = g->stride_h, sw = g->stride_w;
    const int32_t nky = phase_taps(0, g->k_h, sh), nkx = phase_taps(0, g->k_w, sw);   // phase 0 has the most
    d->seg_max = align4(g->out_ch * nkx);
    d->row_max = nky * d->seg_max;
    d->p_max = ((g->in_h + sh - 1) / sh) * ((g->in_w + sw - 1) / sw);
    // Small positions a tap reaches: sy0 - tky, sy0 = (y + pad) / s for big rows y.
    const int32_t top = nky - 1 - g->pad_h / sh, bottom = (g->in_h - 1 + g->pad_h) / sh - (g->out_h - 1);
    const int32_t left = nkx - 1 - g->pad_w / sw, right = (g->in_w - 1 + g->pad_w) / sw - (g->out_w - 1);
    d->top = top > 0 ? top : 0;
    d->left = left > 0 ? left : 0;
    d->hp = g->out_h + d->top + (bottom > 0 ? bottom : 0);
    d->wp = g->out_w + d->left + (right > 0 ? right : 0);
}

static int32_t scatter_phases_scratch(const qt_conv_geom_t *g) {
    qt_scatter_dims_t d;
    scatter_dims(g, &d);
    const int32_t PHW = d.hp * d.wp;
    return align4(PHW * g->out_ch) + 4 + 4 * g->in_ch + 4 * d.row_max + 8 * d.row_max + 16 * d.p_max;
}

// The lanes of big channel c in phase (fy, fx), straight from w: tap rows
// tky, per row the taps kx = fx + tkx sw for tkx descending (ascending small
// positions, the order of a segment of hwc), per tap the n selected small
// channels (so[j]: filter j's offset in w).  Patch byte p (tky seg + its
// place in the segment) is the int16 w - zw at half (p >> 1) & 1 of lane
// word ST (p >> 2) + (p & 1) from lk: ST = 8 for slot k of a group of four
// (lanes_quad_zw_u8's layout, lk = the lanes + 2 k words), 2 for one big
// channel (dot2x1_acc_u8's); qs = log2 (2 ST).  The lanes past each
// segment's n nkx values are zeroed by the caller, once per phase.
// Returns sum (w - zw), the finish's c0 part.  (The row bytes of each
// group's four channels, then their lanes, took ~30 instructions per
// weight at n = 3, most of it loop and call overhead around a few values.)
QT_CONV_NO_LIBCALLS
static int32_t scatter_lanes_u8(const qt_conv_geom_t *g, const uint8_t *w, int32_t c, int32_t fy, int32_t fx,
    int32_t nky, int32_t nkx, const int32_t *so, int32_t n, int32_t seg, int32_t zw, int16_t *lk, int32_t qs) {
    const int32_t KW = g->k_w, KK = g->k_h * KW;
    int32_t s = 0;
    for (int32_t tky = 0; tky < nky; tky++) {
        const uint8_t *wr = w + c * KK + (fy + tky * g->stride_h) * KW + fx;
        for (int32_t tkx = nkx - 1, p = tky * seg; tkx >= 0; tkx--) {
            const uint8_t *wt = wr + tkx * g->stride_w;
            for (int32_t j = 0; j < n; j++, p++) {
                const int32_t v = (int32_t)wt[so[j]] - zw;
                lk[((p >> 2) << qs) + 2 * (p & 1) + ((p >> 1) & 1)] = (int16_t)v;
                s += v;
            }
        }
    }
    return s;
}

// Most small channels for which a phase of scatter_phases_u8 copies each
// pixel's taps into a patch for gather_quad_u8 (or scatter1_fin_u8).
#define QT_SCATTER_FEW 4

// The taps of each big pixel (m, k) of a phase: its nky segments of seg
// bytes of hwc (the first at sp0 + m rs + k n, each one small row, rs
// bytes, before the last), one after the other.  Out of
// line: inlined, it cost the pixel loops of scatter_phases_u8 registers.
__attribute__((noinline))
static void scatter_patches_u8(const uint8_t *sp0, int32_t rs, int32_t n, int32_t ny, int32_t nx, int32_t nky,
    int32_t seg, uint8_t *patches) {
    uint32_t *pw = (uint32_t *)(void *)patches;
    for (int32_t m = 0; m < ny; m++, sp0 += rs) {
        for (int32_t k = 0; k < nx; k++) {
            const uint8_t *sp = sp0 + k * n;
            for (int32_t tky = 0; tky < nky; tky++, sp -= rs) {
                for (int32_t i = 0; i < seg; i += 4) {
                    *pw++ = ld32u(sp + i);
                }
            }
        }
    }
}

// One big channel of a phase, mask-aware (Conv2d 16->32's error at DSGU's
// few selected filters: 72 % of its outputs are dropped by the ReLU before
// it), the dot product and the finish fused: for each of the phase's
// pixels (rows of out, sw apart; patches of pb bytes, scatter_patches_u8's)
// whose mask byte out[moff] is nonzero, out = usat8(smmla(c0 + the patch
// against the channel's lanes, mult, rz) >> sh) (fin_run_m4's common case,
// same value), its accumulator joins lo / hi; the others get the zero
// point unread.  kp: c0, the channel's lanes (lanes_quad_zw_u8's: two
// words per patch word, 32 bytes apart), lo, hi, mult, rz, sh, the row
// skip and step, the last row's end from out, moff, sw, pb, zero, the
// row's length.  By hand: 7 instructions per dropped output and ~20 + 8
// per patch word per kept one, where gather_quad_u8 took ~4 per patch word
// and output and the finish 8 / 15 per output plus ~60 per row of 7 (a
// call).  Fourteen registers: pa r0, out r1, the row's end r2, kp r3,
// moff r4, sw r5, pb r6, the accumulator r7, zero r8 (the patch's end in
// the dot, then reloaded), r9-r12 and lr the dot's and the finish's; the
// last row's end on the stack.
__attribute__((naked, noinline))
static void scatter1_fin_u8(const uint8_t *pa, uint8_t *out, int32_t *kp) {
    __asm__ volatile (
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "mov r3, r2\n\t"
        "ldr r2, [r3, #36]\n\t"
        "add r2, r2, r1\n\t"
        "push {r2}\n\t"                   // the last row's end
        "add r12, r3, #40\n\t"
        "ldm r12, {r4, r5, r6, r8, r9}\n\t"   // moff, sw, pb, zero, the row's length
        "add r2, r1, r9\n\t"              // the row's end
        "1:\n\t"
        "ldrb r7, [r1, r4]\n\t"
        "cbnz r7, 4f\n\t"
        "strb r8, [r1]\n\t"
        "add r0, r0, r6\n\t"
        "2:\n\t"
        "add r1, r1, r5\n\t"
        "cmp r1, r2\n\t"
        "bne 1b\n\t"
        "ldr r11, [sp]\n\t"
        "cmp r2, r11\n\t"
        "beq 9f\n\t"
        "ldrd r9, r10, [r3, #28]\n\t"     // row skip, row step
        "add r1, r1, r9\n\t"
        "add r2, r2, r10\n\t"
        "b 1b\n\t"
        "4:\n\t"
        "ldm r3, {r7, r10}\n\t"           // c0, the lanes
        "add r8, r0, r6\n\t"              // the patch's end
        "5:\n\t"
        "ldr r9, [r0], #4\n\t"
        "ldrd r12, lr, [r10], #32\n\t"
        "uxtb16 r11, r9\n\t"
        "smlad r7, r11, r12, r7\n\t"
        "uxtb16 r11, r9, ror #8\n\t"
        "smlad r7, r11, lr, r7\n\t"
        "cmp r0, r8\n\t"
        "bne 5b\n\t"
        "ldrd r9, r10, [r3, #8]\n\t"      // lo, hi
        "cmp r7, r9\n\t"
        "blt 6f\n\t"
        "3:\n\t"
        "cmp r7, r10\n\t"
        "bgt 7f\n\t"
        "8:\n\t"
        "ldrd r9, r10, [r3, #16]\n\t"     // mult, rz
        "ldr r11, [r3, #24]\n\t"          // sh
        "smmla r7, r7, r9, r10\n\t"
        "asr r7, r7, r11\n\t"
        "usat r7, #8, r7\n\t"
        "strb r7, [r1]\n\t"
        "ldr r8, [r3, #52]\n\t"          // zero again
        "b 2b\n\t"
        "6:\n\t"
        "str r7, [r3, #8]\n\t"
        "b 3b\n\t"
        "7:\n\t"
        "str r7, [r3, #12]\n\t"
        "b 8b\n\t"
        "9:\n\t"
        "pop {r2, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}

QT_CONV_NO_LIBCALLS
static void scatter_phases_u8(const qt_conv_geom_t *g, const uint8_t *small, const uint8_t *w,
    const int32_t *b, uint8_t *big, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n, uint8_t *scratch) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w, HW = H * W;
    const int32_t SH = g->out_h, SW = g->out_w, SHW = SH * SW;
    const int32_t sh = g->stride_h, sw = g->stride_w;
    const uint32_t zs = (uint32_t)rq->zero_in, zw = (uint32_t)rq->zero_w;
    qt_scatter_dims_t d;
    scatter_dims(g, &d);
    const int32_t WP = d.wp, PHW = d.hp * WP;
    uint8_t *hwc = scratch;
    int32_t *bacc = (int32_t *)(void *)(hwc + align4(PHW * g->out_ch) + 4);
    int32_t *so = bacc + C;   // the selected filters' offsets in w (n <= row_max)
    uint32_t *lanes = (uint32_t *)(void *)(so + d.row_max);
    int32_t *acc = (int32_t *)(lanes + 2 * d.row_max);   // four maps of p_max
    uint32_t *hw4 = (uint32_t *)(void *)hwc;
    for (int32_t i = 0; i < align4(PHW * n) >> 2; i++) {   // the border: zero points
        hw4[i] = zs * 0x01010101u;
    }
    for (int32_t sy = 0; sy < SH; sy++) {
        for (int32_t sx = 0; sx < SW; sx++) {
            const int32_t pp = (sy + d.top) * WP + sx + d.left;
            (void)small_pixel_channels_u8(small, sel, n, SHW, sy * SW + sx, hwc + pp * n);
        }
    }
    for (int32_t c = 0; c < C; c++) {
        bacc[c] = b ? qt_fixmul_apply(b[c], rq->bias) : 0;
    }
    for (int32_t j = 0; j < n; j++) {
        so[j] = (sel ? sel[j] : j) * C * g->k_h * g->k_w;
    }
    const int bsat = b && !bias_folds(bacc, C, n * g->k_h * g->k_w);
    qt_conv_fin_t fin;
    qt_conv_fin_init(&fin, rq, big);
    // scatter1_fin_u8's constants (kp), the range in kp[2..3] (fmask: it applies)
    const int32_t fmask = qt_conv_fin_fused_rz(&fin);
    int32_t kp[15];
    kp[2] = INT32_MAX;
    kp[3] = INT32_MIN;
    kp[4] = fin.mult;
    kp[5] = fmask;   // rz
    kp[6] = fin.shift - 32;
    kp[8] = sh * W;
    kp[10] = (int32_t)fin.moff;
    kp[11] = sw;
    kp[13] = fin.zero;
    int32_t *mm = kp + 2;
    for (int32_t fy = 0; fy < sh; fy++) {
        // big rows by = by0 + m sh of this phase: (by + pad) mod sh == fy
        const int32_t by0 = ((fy - g->pad_h) % sh + sh) % sh, ny = by0 < H ? (H - by0 + sh - 1) / sh : 0;
        const int32_t nky = phase_taps(fy, g->k_h, sh);
        for (int32_t fx = 0; fx < sw; fx++) {
            const int32_t bx0 = ((fx - g->pad_w) % sw + sw) % sw, nx = bx0 < W ? (W - bx0 + sw - 1) / sw : 0;
            const int32_t nkx = phase_taps(fx, g->k_w, sw);
            const int32_t seg = align4(n * nkx), P = ny * nx;
            if (P == 0) {
                continue;
            }
            // Pixel (m, k) is at small position (sy0 + m, sx0 + k): (y + pad) / s
            // for y = y0 + m s is (y0 + pad) / s + m.  sp0: its first segment's.
            const int32_t sy0 = (by0 + g->pad_h) / sh, sx0 = (bx0 + g->pad_w) / sw, rs = WP * n;
            const uint8_t *sp0 = hwc + ((sy0 + d.top) * WP + sx0 - nkx + 1 + d.left) * n;
            // A few small channels (DSGU's error propagation of a few
            // selected filters): the pixel loop below costs about the same
            // per pixel and group of four big channels whatever n, at n = 3
            // mostly the code around a few MACs.  Then each pixel's taps
            // (its nky segments of hwc) are copied once into a patch after
            // the lanes, and gather_quad_u8 runs every patch against each
            // group's lanes (13 instructions per 16 MACs, ~7 per pixel).
            const int32_t G = nky * seg / 4;
            uint8_t *patches = (uint8_t *)(lanes + 2 * nky * seg);
            const int few = C >= 2 && !bsat && G > 0 && n <= QT_SCATTER_FEW && 8 * nky * seg + P * 4 * G <= 8 * d.row_max;
            // Mask-aware into a ReLU layer's output (mask zero point 0): 72 %
            // of Conv2d 16->32's outputs are dropped there, so a big channel
            // at a time, only its kept outputs computed (scatter1_fin_u8, on
            // the group's lanes).  Without a mask gather_quad_u8's four
            // filters per patch pass stay (every output computed: faster).
            // kp's row geometry: the phase's.
            const int fused = few && fmask;
            kp[7] = sh * W - nx * sw;
            kp[9] = (ny - 1) * sh * W + nx * sw;
            kp[12] = 4 * G;
            kp[14] = nx * sw;
            if (few) {
                scatter_patches_u8(sp0, rs, n, ny, nx, nky, seg, patches);
            }
            // the lanes past the segments' values: zero for every channel
            qt_fill_i32((int32_t *)(void *)lanes, (size_t)(2 * nky * seg), 0);
            for (int32_t c = 0; c < C; c += 4) {
                // Four big channels per pass (the slots of a short last group unused).
                const int32_t nc = C - c < 4 ? C - c : 4;
                uint32_t s[4];
                for (int32_t k = 0; k < nc; k++) {
                    const int32_t ws = scatter_lanes_u8(g, w, c + k, fy, fx, nky, nkx, so, n, seg, (int32_t)zw,
                        (int16_t *)(void *)(lanes + 2 * k), C == 1 ? 2 : 4);
                    // The finish's c0: - zs sum (w - zw) (+ the bias when it
                    // cannot saturate); the lanes hold w - zw, so a pixel's
                    // sums need no zero-point term of their own.
                    s[k] = (bsat ? 0u : (uint32_t)bacc[c + k]) - zs * (uint32_t)ws;
                    if (fused) {
                        kp[0] = (int32_t)s[k];
                        kp[1] = (int32_t)(intptr_t)(lanes + 2 * k);
                        scatter1_fin_u8(patches, big + (c + k) * HW + by0 * W + bx0, kp);
                    }
                }
                if (fused) {
                    continue;
                }
                if (few) {
                    gather_quad_u8(patches, P, lanes, G, acc);   // acc[4 pix + k]
                } else if (C == 1) {
                    // One big channel (ConvTranspose2d 16->1): two pixels per
                    // pass against its one vector (dot2x1_acc_u8, 11
                    // instructions per 8 MACs), not four channels.
                    for (int32_t m = 0, pix = 0; m < ny; m++) {
                        for (int32_t k = 0; k < nx; k += 2) {
                            // the next pixel's segments start n bytes on (its sx0 is one more)
                            const int32_t two = k + 1 < nx;
                            uint32_t d0 = 0, d1 = 0;
                            const uint32_t *lt = lanes;
                            const uint8_t *sp = sp0 + m * rs + k * n;
                            for (int32_t tky = 0; tky < nky; tky++, sp -= rs) {
                                dot2x1_acc_u8(sp, two ? n : 0, &lt, seg >> 2, &d0, &d1);
                            }
                            acc[pix] = (int32_t)d0;
                            acc[pix + two] = (int32_t)d1;
                            pix += 1 + two;
                        }
                    }
                } else {
                    int32_t *a0 = acc, *a1 = a0 + d.p_max, *a2 = a1 + d.p_max, *a3 = a2 + d.p_max;
                    for (int32_t m = 0, pix = 0; m < ny; m++) {
                        for (int32_t k = 0; k < nx; k++, pix++) {
                            qt_acc4_t dd = {0, 0, 0, 0};
                            const uint32_t *lt = lanes;
                            const uint8_t *sp = sp0 + m * rs + k * n;
                            for (int32_t tky = 0; tky < nky; tky++, sp -= rs) {
                                dot1x4_acc_u8(sp, &lt, seg >> 2, &dd);   // seg: a multiple of 4
                            }
                            a0[pix] = (int32_t)dd.s0;
                            a1[pix] = (int32_t)dd.s1;
                            a2[pix] = (int32_t)dd.s2;
                            a3[pix] = (int32_t)dd.s3;
                        }
                    }
                }
                for (int32_t k = 0; k < nc; k++) {
                    int32_t *ak = acc + k * d.p_max;
                    uint32_t ck = s[k];
                    if (bsat) {   // rare: a bias near the int32 limits, added saturating
                        for (int32_t pix = 0; pix < P; pix++) {
                            ak[pix] = qt_sat_add_i32((int32_t)((uint32_t)ak[pix] + ck), bacc[c + k]);
                        }
                        ck = 0;
                    }
                    for (int32_t m = 0; m < ny; m++) {
                        uint8_t *out = big + (c + k) * HW + (by0 + m * sh) * W + bx0;
                        if (few) {
                            qt_conv_fin_run_st(acc + 4 * m * nx + k, 4, nx, out, sw, ck, &fin, mm);
                        } else {
                            qt_conv_fin_run(ak + m * nx, NULL, nx, out, sw, ck, &fin, mm);
                        }
                    }
                }
            }
        }
    }
    if (stats) {
        stats[0] = mm[0];
        stats[1] = mm[1];
    }
}
int32_t qt_conv_scatter_scratch(const qt_conv_geom_t *g) {
    return scatter_phases_scratch(g);
}

void qt_conv_scatter_u8(const qt_conv_geom_t *g, const uint8_t *small, const uint8_t *w,
    const int32_t *b, uint8_t *big, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    scatter_phases_u8(g, small, w, b, big, rq, stats, sel, sel ? n_sel : g->out_ch, scratch);
}
#else
int32_t qt_conv_scatter_scratch(const qt_conv_geom_t *g) {
    const int32_t KK = g->k_h * g->k_w, nph = g->stride_h * g->stride_w;
    int32_t n = 4 * nph + 4 * g->stride_w + 4 * nph * g->in_ch + 8 * g->in_ch + 4 * g->out_ch
                + align4(g->out_ch * g->in_ch * KK) + align4(g->out_ch * KK) + vec_work_bytes(g->out_ch * KK);
    // the small side channel-last and its sums per position; with one
    // output channel also a row of accumulators
    const int32_t SHW = g->out_h * g->out_w;
    n += align4(g->out_ch * SHW) + 4 * SHW + (g->in_ch == 1 ? 4 * g->in_w : 0);
    return n;
}


// Fewest small channels (n) for which an inside pixel's tap rows are dotted
// in place in the channel-last copy (with two or more big channels).
#define QT_SCATTER_RUN_MIN 8

QT_CONV_NO_LIBCALLS
void qt_conv_scatter_u8(const qt_conv_geom_t *g, const uint8_t *small, const uint8_t *w,
    const int32_t *b, uint8_t *big, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w, HW = H * W;
    const int32_t SH = g->out_h, SW = g->out_w, SHW = SH * SW;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t sh = g->stride_h, sw = g->stride_w, nph = sh * sw;
    const int32_t n = sel ? n_sel : g->out_ch;
    const uint32_t zs = (uint32_t)rq->zero_in, zw = (uint32_t)rq->zero_w;
    qt_conv_fin_t fin;
    qt_conv_fin_init(&fin, rq, big);
    int32_t *phase_off = (int32_t *)(void *)scratch;
    int32_t *taps_x = phase_off + nph;   // phase_taps per column phase (no divide per pixel)
    int32_t *wsum = taps_x + sw;
    int32_t *bacc = wsum + nph * C;
    int32_t *accv = bacc + C;   // one pixel's accumulators
    int32_t *chan = accv + C;
    uint8_t *prow = (uint8_t *)(chan + g->out_ch);
    uint8_t *patch = prow + align4(g->out_ch * C * KK);
    uint32_t *lanes = (uint32_t *)(void *)(patch + align4(g->out_ch * KK));
    for (int32_t c = 0; c < C; c++) {
        bacc[c] = b ? qt_fixmul_apply(b[c], rq->bias) : 0;
    }
    for (int32_t j = 0; j < n; j++) {
        chan[j] = (sel ? sel[j] : j) * SHW;
    }
    // The small side channel-last once (hwc[pos][j], hsum[pos] = sum over
    // j): the taps of one tap row of an inside pixel are then one contiguous
    // run of hwc, dotted in place, where a per-pixel patch of strided bytes
    // cost ~7 instructions per byte (as much as the MACs with one output
    // channel; ~100 k per call on Conv 16->32's error and ConvT 32->16's
    // forward).  With one output channel the accumulators of a whole output
    // row are finished in one call (rowacc; unless the bias may saturate,
    // a per-value add).
    // A few selected small channels (DSGU) make short runs, where a dot
    // product per tap row costs more than the patch: patches then.
    // The patches are copied from hwc too (a tap's n values contiguous).
    uint8_t *hwc = (uint8_t *)lanes + vec_work_bytes(g->out_ch * KK);
    const int runs = C == 1 || n >= QT_SCATTER_RUN_MIN;
    int32_t *hsum = (int32_t *)(void *)(hwc + align4(g->out_ch * SHW));
    int32_t *rowacc = C == 1 ? hsum + SHW : NULL;
    for (int32_t pos = 0; pos < SHW; pos++) {
        uint8_t *dst = hwc + pos * n;
        uint32_t t = 0;
        for (int32_t j = 0; j < n; j++) {
            const uint8_t v = small[chan[j] + pos];
            dst[j] = v;
            t += v;
        }
        hsum[pos] = (int32_t)t;
    }
    // chan is free now: n zero points, a tap outside the small side.
    uint8_t *zrow = (uint8_t *)chan;
    for (int32_t j = 0; j < n; j++) {
        zrow[j] = (uint8_t)zs;
    }
#if QT_CONV_ROWS4
    // Whether the inside pixels compact their runs: the small side under 7/8
    // density (above, the compaction per pixel and tap row is the cost:
    // ConvT 32->16 forward on data without zeros 1117.8 k -> 1252.2 k per
    // call without this test), estimated from every fifth value (a count of
    // all took ~18 k per call on the VAE's scatters, this ~4 k).
    int32_t nzc = 0, ns = 0;
    for (int32_t i = 0; runs && C >= 4 && i < n * SHW; i += 5, ns++) {
        nzc += hwc[i] != zs;
    }
    const int sparse = C >= 4 && 8 * nzc < 7 * ns;
#endif
    const int32_t *bsat = b && !bias_folds(bacc, C, n * KK) ? bacc : NULL;
#if QT_MASK_ROWS
    // Mask-aware (error propagation into a ReLU layer's output): every
    // pixel's patch against its kept rows only (dotk_u8), the rows plain
    // (row_pos with R = 0).  (Even with 32 small channels the patches and
    // their kept rows cost less than the inside pixels' runs: bench_dsgu
    // qemu-m0 Conv 16->32 lmin 1.0, 752.7 k -> 708.8 k per call.)
    const int kept = fin.moff && C >= 4 && !bsat;
    qt_dotk_t dk;
    dk.acc_end = accv + C;
    dk.hw = HW;
    dk.c4 = -4 * C;
    dk.out_off = (int32_t)-fin.moff;
    dk.lo = INT32_MAX;
    dk.hi = INT32_MIN;
    dk.f = &fin;
    dk.redo = 0;
    dk.lim = fin.fast ? 1 << 19 : 0;
#else
    const int kept = 0;
#endif
    // Repack: for each phase (fy, fx) and output channel c one row over
    // (tap ky = fy + tky*sh, tap kx = fx + tkx*sw, small channel j): tap-major,
    // so the patch of a pixel is n values per tap at a fixed stride; tkx
    // descending, so the taps of one tky are ascending small positions (one
    // contiguous run of hwc below).
    int32_t off = 0;
    for (int32_t fy = 0; fy < sh; fy++) {
        const int32_t nky = phase_taps(fy, KH, sh);
        for (int32_t fx = 0; fx < sw; fx++) {
            const int32_t nkx = phase_taps(fx, KW, sw);
            const int32_t L = n * nky * nkx;
            const int32_t ph = fy * sw + fx;
            phase_off[ph] = off;
            for (int32_t c = 0; c < C; c++) {
                int32_t step;
                uint8_t *row = prow + off + row_pos(c, kept ? 0 : C, L, &step);
                uint32_t s = 0;
                for (int32_t tky = 0; tky < nky; tky++) {
                    for (int32_t tkx = nkx - 1; tkx >= 0; tkx--) {
                        const uint8_t *wt = w + c * KK + (fy + tky * sh) * KW + fx + tkx * sw;
                        if (!sel) {
                            s += copy_strided_u8(row, step, wt, C * KK, n);
                            row += n * step;
                            continue;
                        }
                        for (int32_t j = 0; j < n; j++, row += step) {
                            const uint8_t v = wt[sel[j] * C * KK];
                            *row = v;
                            s += v;
                        }
                    }
                }
                wsum[ph * C + c] = (int32_t)s;
            }
            off += C * L;
        }
    }
    // wsum becomes each (phase, channel) row's start term, as in the gather.
    if (bsat || !QT_CONV_ROWS4) {   // (on the M4 the inline finish per pixel is cheaper)
        rowacc = NULL;
    }
    for (int32_t i = 0; i < nph * C; i++) {
        wsum[i] = (int32_t)((bsat ? 0u : (uint32_t)bacc[i % C]) - zs * (uint32_t)wsum[i]);
    }
    for (int32_t fx = 0; fx < sw; fx++) {
        taps_x[fx] = phase_taps(fx, KW, sw);
    }
    int32_t mm[2] = {INT32_MAX, INT32_MIN};
    const int32_t fx_start = g->pad_w % sw, sx_start = g->pad_w / sw;
    for (int32_t by = 0; by < H; by++) {
        const int32_t ty = by + g->pad_h;
        const int32_t fy = ty % sh, sy0 = ty / sh;
        const int32_t nky = phase_taps(fy, KH, sh);
        int32_t fx = fx_start, sx0 = sx_start;
        for (int32_t bx = 0; bx < W; bx++) {
            const int32_t nkx = taps_x[fx];
            const int32_t L = n * nky * nkx;
            if (runs && !kept && L && sy0 - nky + 1 >= 0 && sy0 < SH && sx0 - nkx + 1 >= 0 && sx0 < SW) {
                // Inside: per tap row, the big channels' row segments
                // against the run of hwc.
                const int32_t ph = fy * sw + fx;
                const uint8_t *wr = prow + phase_off[ph];
                const int32_t seg = nkx * n;
                uint32_t psum = 0;
                if (C == 1) {   // one row: a plain dot product per tap row
                    uint32_t d = (uint32_t)wsum[ph];
                    for (int32_t tky = 0; tky < nky; tky++, wr += seg) {
                        const int32_t pos = (sy0 - tky) * SW + sx0 - nkx + 1;
                        d += dot_u8(wr, hwc + pos * n, seg);
                        for (int32_t tkx = 0; tkx < nkx; tkx++) {
                            psum += (uint32_t)hsum[pos + tkx];
                        }
                    }
                    accv[0] = (int32_t)d;
                } else {   // the sums carried from segment to segment
                    const int32_t *init = wsum + ph * C;
                    int32_t c_from = 0;
#if QT_CONV_ROWS4
                    // Cortex-M0: the runs' entries side by side (run tky's
                    // columns from tky seg: the phase rows' order, as a
                    // patch's), the groups of four over them when sparse
                    // (as the gather; c0 below is the same in both forms).
                    if (sparse && L <= QT_SPARSE_MAX_N) {
                        int32_t cnt = 0, s;
                        for (int32_t tky = 0; tky < nky; tky++) {
                            const int32_t pos = (sy0 - tky) * SW + sx0 - nkx + 1;
                            cnt += compact_u8(hwc + pos * n, seg, zs, lanes + cnt, &s, (uint32_t)(4 * tky * seg));
                        }
                        if (QT_SPARSE_PAYS(cnt, L)) {
                            dot4s_u8(wr, 4 * L, C >> 2, lanes, bsat ? NULL : bacc, accv);
                            c_from = C & ~3;
                        }
                    }
#endif
                    for (int32_t tky = 0; tky < nky; tky++) {
                        const int32_t pos = (sy0 - tky) * SW + sx0 - nkx + 1;
                        const uint8_t *run = hwc + pos * n;
                        for (int32_t c = c_from; c < C;) {
                            int32_t step;
                            const uint8_t *a = wr + row_pos(c, C, L, &step) + tky * seg * step;
                            c += dot_rows_u8(a, L, C - c, run, NULL, seg, init + c, accv + c);
                        }
                        init = accv;
                        for (int32_t tkx = 0; tkx < nkx; tkx++) {
                            psum += (uint32_t)hsum[pos + tkx];
                        }
                    }
                }
                const uint32_t c0 = (uint32_t)L * zw * zs - zw * psum;
                if (rowacc) {
                    rowacc[bx] = (int32_t)((uint32_t)accv[0] + c0);
                } else {
                    qt_conv_fin_run(accv, bsat, C, big + by * W + bx, HW, c0, &fin, mm);
                }
                if (++fx == sw) {
                    fx = 0;
                    sx0++;
                }
                continue;
            }
            // The small values under this pixel's taps (zero point outside):
            // per tap, one value of each selected channel.
            uint8_t *p = patch;
            uint32_t psum = 0;
            for (int32_t tky = 0; tky < nky; tky++) {
                const int32_t sy = sy0 - tky;
                for (int32_t tkx = nkx - 1; tkx >= 0; tkx--) {
                    const int32_t sx = sx0 - tkx;
                    const uint8_t *src = sy >= 0 && sy < SH && sx >= 0 && sx < SW ? hwc + (sy * SW + sx) * n : zrow;
                    for (int32_t j = 0; j < n; j++) {
                        const uint8_t v = src[j];
                        *p++ = v;
                        psum += v;
                    }
                }
            }
            const int32_t ph = fy * sw + fx;
            const uint8_t *wr = prow + phase_off[ph];
            const int32_t *ws = wsum + ph * C;
            const uint32_t c0 = (uint32_t)L * zw * zs - zw * psum;
            const uint32_t *bxl = C >= 2 ? prep_lanes(patch, L, lanes) : NULL;
            int32_t c = 0, done = 0;
#if QT_MASK_ROWS
            if (kept && L) {   // the kept rows only, finished there
                dk.mk = big + by * W + bx + fin.moff;
                dk.init_end = ws + C;
                dk.c0 = (int32_t)c0;
                dotk_u8(wr, L, patch, &dk);
                c = C;
                done = !dk.redo;
                dk.redo = 0;
            }
#endif
            while (c < C) {
                c += dot_rows_u8(wr + c * L, L, C - c, patch, bxl, L, ws + c, accv + c);
            }
            if (rowacc) {
                rowacc[bx] = (int32_t)((uint32_t)accv[0] + c0);
            } else if (!done) {
                qt_conv_fin_run(accv, bsat, C, big + by * W + bx, HW, c0, &fin, mm);
            }
            if (++fx == sw) {
                fx = 0;
                sx0++;
            }
        }
        if (rowacc) {
            qt_conv_fin_run(rowacc, NULL, W, big + by * W, 1, 0, &fin, mm);
        }
    }
#if QT_MASK_ROWS
    mm[0] = dk.lo < mm[0] ? dk.lo : mm[0];   // the values dotk_u8 finished
    mm[1] = dk.hi > mm[1] ? dk.hi : mm[1];
#endif
    if (stats) {
        stats[0] = mm[0];
        stats[1] = mm[1];
    }
}

#endif

// ---- corr (gradients) --------------------------------------------------------------

// rows x SW values of the re-sampled input at p (values step apart), row
// by row: lo zero points zb, src[x sw] for lo <= x < hi, zero points up to
// SW; src advances rstep per row.  Returns the sum of the values written.
// Out of line with one call per block of rows: inline, GCC -Os (armv6m)
// kept the indices on the stack, ~23 instructions per byte on the M0.
QT_CONV_NO_LIBCALLS __attribute__((noinline))
static uint32_t cols_rows_u8(uint8_t *p, int32_t step, const uint8_t *src, int32_t sw, int32_t rstep,
    int32_t rows, int32_t lo, int32_t hi, int32_t SW, uint8_t zb) {
    uint32_t s = (uint32_t)(rows * (SW - (hi - lo))) * zb;
    for (; rows > 0; rows--, src += rstep) {
        for (int32_t x = 0; x < lo; x++, p += step) {
            *p = zb;
        }
        const uint8_t *q = src + lo * sw;
        uint8_t *end = p + (hi - lo) * step;
#if defined(__ARM_ARCH_6M__)
        // 7 instructions per byte (GCC -Os: 11, the sum and sw on the stack).
        if (p != end) {
            uint32_t v;
            __asm__ volatile(
                ".syntax unified\n\t"
                "1:\n\t"
                "ldrb %[v], [%[q]]\n\t"
                "strb %[v], [%[p]]\n\t"
                "adds %[s], %[s], %[v]\n\t"
                "add %[q], %[sw]\n\t"
                "add %[p], %[step]\n\t"
                "cmp %[p], %[end]\n\t"
                "bne 1b\n\t"
                : [p] "+l"(p), [q] "+l"(q), [s] "+l"(s), [v] "=&l"(v)
                : [sw] "r"(sw), [step] "r"(step), [end] "r"(end)
                : "cc", "memory");
        }
#else
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        if (step == 1 && sw == 2) {
            // Cortex-M4, stride 2 into plain rows (every strided layer's
            // gradient): four values from two unaligned words, q[0], q[2]
            // (UXTB16), q[4], q[6], packed (ORR, PKHBT) and summed (USADA8)
            // in 11 instructions (the byte loop took 7 per value: 12.7 k of
            // ConvTranspose2d 16->1's update on qemu-m4).  While more than
            // four are left: the words read up to q[7], at most the next
            // value's own byte (the last one may be the input's last).
            for (; end - p > 4; p += 4, q += 8) {
                uint32_t a = __uxtb16(ld32u(q)), b = __uxtb16(ld32u(q + 4));
                a |= a >> 8;
                b |= b >> 8;
                const uint32_t v = (a & 0xffffu) | (b << 16);   // (PKHBT)
                st32u(p, v);
                s = __usada8(v, 0, s);
            }
        }
#endif
        for (; p != end; p += step, q += sw) {
            const uint8_t v = *q;
            *p = v;
            s += v;
        }
#endif
        for (int32_t x = hi; x < SW; x++, p += step) {
            *p = zb;
        }
    }
    return s;
}

// The KK rows of one big channel re-sampled on the small grid:
// cols[ky*KW + kx][sy*SW + sx] = big_ch[sy*s - p + ky][sx*s - p + kx] (zero
// point outside); colsum[r] = sum of row r.  Per tap: the rows above the
// input, the rows inside (their columns [x_lo, x_hi) inside), the rows below.
QT_CONV_NO_LIBCALLS
void qt_conv_cols_u8(const qt_conv_geom_t *g, const uint8_t *big_ch, int32_t zero_b,
    uint8_t *cols, int32_t *colsum, int32_t r0, int32_t R) {
    const int32_t H = g->in_h, W = g->in_w, SH = g->out_h, SW = g->out_w;
    const int32_t sh = g->stride_h, sw = g->stride_w;
    const uint8_t zb = (uint8_t)zero_b;
    for (int32_t ky = 0; ky < g->k_h; ky++) {
        int32_t y_lo, y_hi;
        qt_conv_tap_range(ky, sh, g->pad_h, H, SH, &y_lo, &y_hi);
        for (int32_t kx = 0; kx < g->k_w; kx++) {
            int32_t x_lo, x_hi, step;
            qt_conv_tap_range(kx, sw, g->pad_w, W, SW, &x_lo, &x_hi);
#if QT_CONV_ROWS4
            uint8_t *p = R < 0 ? cols + r0++ : cols + row_pos(r0++, R, SW * SH, &step);
            step = R < 0 ? g->k_h * g->k_w : step;
#else
            uint8_t *p = cols + row_pos(r0++, R, SW * SH, &step);
#endif
            const uint8_t *br = big_ch + (y_lo * sh - g->pad_h + ky) * W - g->pad_w + kx;
            uint32_t s = cols_rows_u8(p, step, br, 0, 0, y_lo, SW, SW, SW, zb);
            s += cols_rows_u8(p + y_lo * SW * step, step, br, sw, sh * W, y_hi - y_lo, x_lo, x_hi, SW, zb);
            s += cols_rows_u8(p + y_hi * SW * step, step, br, 0, 0, SH - y_hi, SW, SW, SW, zb);
            *colsum++ = (int32_t)s;
        }
    }
}

// out[r * ostride] = sum_pix (small_ch - zs)(cols_r - zb) for nrows rows of n pixels.
void qt_conv_corr_rows_u8(const uint8_t *small_ch, int32_t zero_s, int32_t small_sum,
    const uint8_t *cols, const int32_t *colsum, int32_t zero_b, int32_t nrows, int32_t n,
    int32_t *out, int32_t ostride, int accumulate, uint32_t *work) {
    const uint32_t zs = (uint32_t)zero_s, zb = (uint32_t)zero_b;
    const uint32_t *bx = nrows >= 2 ? prep_lanes(small_ch, n, work) : NULL;
    const uint32_t c0 = (uint32_t)n * zs * zb - zb * (uint32_t)small_sum;
#if QT_CONV_ROWS4
    // Cortex-M0: small_ch's entries (compact_u8) against the groups of four
    // rows when it pays (up to eight groups per call); a row's - z_s colsum
    // is then the skipped columns' share, and c0 = - z_b sum (small - z_s)
    // as before.
    int32_t ne = 0, ss;
    if (nrows >= 4) {
        ne = compact_u8(small_ch, n, zs, work, &ss, 0);
    }
    const int sparse = nrows >= 4 && QT_SPARSE_PAYS(ne, n);
    int32_t d[32];
#else
    int32_t d[QT_CONV_GROUP];
#endif
    for (int32_t r = 0; r < nrows;) {
        int32_t cnt;
        uint32_t zc = zs;
#if QT_CONV_ROWS4
        if (sparse && r + 4 <= nrows) {
            const int32_t ng = (nrows - r) >> 2 < 8 ? (nrows - r) >> 2 : 8;
            dot4s_u8(cols, 4 * n, ng, work, NULL, d);
            cnt = 4 * ng;
            zc = 0;
        } else
#endif
        {
            cnt = dot_rows_u8(cols, n, nrows - r < 32 ? nrows - r : 32, small_ch, bx, n, NULL, d);   // (d[32])
        }
        for (int32_t h = 0; h < cnt; h++) {
            int32_t v = (int32_t)((uint32_t)d[h] - zc * (uint32_t)colsum[r + h] + c0);
            // Accumulated over a batch by the caller: saturate, never wrap.
            int32_t *o = out + (r + h) * ostride;
            *o = accumulate ? qt_sat_add_i32(*o, v) : v;
        }
        r += cnt;
        cols += cnt * n;
    }
}

int32_t qt_conv_corr2_work_bytes(int32_t n) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    return 4 * align4(n) + 8;
#else
    return vec_work_bytes(n);
#endif
}

void qt_conv_corr2_rows_u8(const uint8_t *small0, const uint8_t *small1, int32_t zero_s, int32_t sum0,
    int32_t sum1, const uint8_t *cols, const int32_t *colsum, int32_t zero_b, int32_t nrows, int32_t n,
    int32_t *out0, int32_t *out1, int32_t ostride, uint32_t *work) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    const uint32_t zs = (uint32_t)zero_s, zb = (uint32_t)zero_b;
    uint32_t *bx = work;
    for (int32_t i = 0; i + 4 <= n; i += 4, bx += 4) {
        const uint32_t v0 = ld32u(small0 + i), v1 = ld32u(small1 + i);
        bx[0] = (uint32_t)lanes02(v0);
        bx[1] = (uint32_t)lanes13(v0);
        bx[2] = (uint32_t)lanes02(v1);
        bx[3] = (uint32_t)lanes13(v1);
    }
    const uint32_t nzz = (uint32_t)n * zs * zb;
    const uint32_t c0 = nzz - zb * (uint32_t)sum0, c1 = nzz - zb * (uint32_t)sum1;
    for (int32_t r = 0; r < nrows; r++, cols += n) {
        uint32_t d0, d1;
        dot1x2_u8(cols, small0, small1, work, n, &d0, &d1);
        const uint32_t zc = zs * (uint32_t)colsum[r];
        out0[r * ostride] = (int32_t)(d0 - zc + c0);
        out1[r * ostride] = (int32_t)(d1 - zc + c1);
    }
#else
    qt_conv_corr_rows_u8(small0, zero_s, sum0, cols, colsum, zero_b, nrows, n, out0, ostride, 0, work);
    qt_conv_corr_rows_u8(small1, zero_s, sum1, cols, colsum, zero_b, nrows, n, out1, ostride, 0, work);
#endif
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
int32_t qt_conv_lanes4_bytes(int32_t n) {
    return 8 * align4(n);
}

void qt_conv_lanes4_u8(const uint8_t *const *v, int32_t n, uint32_t *lanes) {
    lanes_quad_u8(v, n, lanes);
}

void qt_conv_corr4_rows_u8(const uint32_t *lanes, const int32_t *sum, int32_t zero_s, const uint8_t *rows,
    const int32_t *rowsum, int32_t zero_b, int32_t nrows, int32_t n, int32_t *const *out) {
    const uint32_t zs = (uint32_t)zero_s, zb = (uint32_t)zero_b, nzz = (uint32_t)n * zs * zb;
    const uint32_t c0 = nzz - zb * (uint32_t)sum[0], c1 = nzz - zb * (uint32_t)sum[1];
    const uint32_t c2 = nzz - zb * (uint32_t)sum[2], c3 = nzz - zb * (uint32_t)sum[3];
    int32_t *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];
    const int32_t groups = align4(n) >> 2;
    for (int32_t r = 0; r < nrows; r++, rows += n) {
        qt_acc4_t d = {0, 0, 0, 0};
        const uint32_t *bx = lanes;
        dot1x4_acc_u8(rows, &bx, groups, &d);
        const uint32_t zc = zs * (uint32_t)rowsum[r];
        o0[r] = (int32_t)(d.s0 - zc + c0);
        o1[r] = (int32_t)(d.s1 - zc + c1);
        o2[r] = (int32_t)(d.s2 - zc + c2);
        o3[r] = (int32_t)(d.s3 - zc + c3);
    }
}
#endif

QT_CONV_NO_LIBCALLS
const uint8_t *qt_conv_block_rows_u8(const uint8_t *src, int32_t R, int32_t n, uint8_t *dst) {
#if QT_CONV_ROWS4
    for (int32_t r = 0; r < R; r++) {
        int32_t step;
        uint8_t *p = dst + row_pos(r, R, n, &step);
        for (int32_t i = 0; i < n; i++, p += step) {
            *p = *src++;
        }
    }
    return dst;
#else
    (void)R;
    (void)n;
    (void)dst;
    return src;
#endif
}

int32_t qt_conv_map_sum_u8(const uint8_t *e, int32_t n, int32_t zero) {
    return (int32_t)(sum_u8(e, n) - (uint32_t)n * (uint32_t)zero);
}

// ---- Conv2d ------------------------------------------------------------------------

int32_t conv2d_scratch_len_u8(const qt_conv_geom_t *g) {
    const int32_t KK = g->k_h * g->k_w, CKK = g->in_ch * KK;
    int32_t fwd = qt_conv_gather_scratch(g, 0);
    int32_t bwd = qt_conv_scatter_scratch(g);
    int32_t grad = align4(CKK * g->out_h * g->out_w) + 4 * CKK + 4 * CKK + 4 * g->out_ch
                   + qt_conv_corr2_work_bytes(g->out_h * g->out_w);
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // The update's three more filter gradients and the lanes of four error
    // maps (conv2d_update_u8).
    grad += 3 * 4 * CKK + qt_conv_lanes4_bytes(g->out_h * g->out_w) - qt_conv_corr2_work_bytes(g->out_h * g->out_w);
#endif
    int32_t n = fwd > bwd ? fwd : bwd;
    return n > grad ? n : grad;
}

void conv2d_forward_u8(const qt_conv_geom_t *g, const uint8_t *x, const uint8_t *w,
    const int32_t *b, uint8_t *y, const qt_conv_rq_t *rq, int32_t *stats, uint8_t *scratch) {
    qt_conv_gather_u8(g, x, w, b, y, rq, stats, NULL, 0, scratch);
}


void conv_channel_scores_u8(const uint8_t *e, int32_t ch, int32_t hw, int32_t zero_e,
    uint32_t *scores) {
    for (int32_t c = 0; c < ch; c++) {
        uint32_t acc = 0;
        int32_t i = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        const uint32_t ze4 = (uint32_t)zero_e * 0x01010101u;
        for (; i + 4 <= hw; i += 4) {
            acc = __usada8(ld32u(e + i), ze4, acc);     // 4 |e - z_e| per instruction
        }
#endif
        for (; i < hw; i++) {
            const int32_t d = e[i] - zero_e;
            acc += (uint32_t)(d < 0 ? -d : d);
        }
        scores[c] = acc;
        e += hw;
    }
}

// The ReLU mask and the score of one run of n values: e[i] = z_e where
// y[i] <= z_y (such a value scores 0), the sum of |e[i] - z_e| of the rest.
static uint32_t relu_mask_score_run(uint8_t *e, const uint8_t *y, int32_t n, int32_t zero_e, int32_t zero_y) {
    uint32_t acc = 0;
#if defined(__thumb__) && !defined(__thumb2__)
    // Cortex-M0: 6 instructions per masked value, 9 or 10 per kept one (GCC
    // -Os reloaded both zero points from the stack in the loop: 10 and 14).
    // The index runs from -n up to 0 from the ends: its increment is the
    // loop's test; the sign of e - z_e is the subtraction's flags.  (GCC
    // wraps Thumb-1 inline asm in divided syntax: unified inside.)
    if (n > 0) {
        int32_t i = -n;
        uint32_t t, d;
        __asm__ volatile (
            ".syntax unified\n"
            "1: ldrb %[t], [%[y], %[i]]\n"
            "cmp %[t], %[zy]\n"
            "bhi 2f\n"
            "strb %[ze], [%[e], %[i]]\n"
            "adds %[i], %[i], #1\n"
            "bne 1b\n"
            "b 4f\n"
            "2: ldrb %[d], [%[e], %[i]]\n"
            "subs %[d], %[d], %[ze]\n"
            "bpl 3f\n"
            "rsbs %[d], %[d], #0\n"
            "3: adds %[acc], %[acc], %[d]\n"
            "adds %[i], %[i], #1\n"
            "bne 1b\n"
            "4:\n"
            ".syntax divided\n"
            : [i] "+l" (i), [acc] "+l" (acc), [t] "=&l" (t), [d] "=&l" (d)
            : [e] "l" (e + n), [y] "l" (y + n), [ze] "l" (zero_e), [zy] "r" (zero_y)
            : "cc", "memory");
    }
#else
    for (int32_t i = 0; i < n; i++) {
        if (y[i] <= zero_y) {
            e[i] = (uint8_t)zero_e;
        } else {
            const int32_t d = e[i] - zero_e;
            acc += (uint32_t)(d < 0 ? -d : d);
        }
    }
#endif
    return acc;
}

// The ReLU mask (conv_relu_mask_u8) and the scores (conv_channel_scores_u8)
// in one pass, for DSGU on a ReLU layer: the mask's loads of e are the
// scores' loads, and a masked value scores 0 (it is z_e).
void conv_relu_mask_scores_u8(uint8_t *e, const uint8_t *y, int32_t ch, int32_t hw, int32_t zero_e,
    int32_t zero_y, uint32_t *scores) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    const uint32_t ze4 = (uint32_t)zero_e * 0x01010101u, zy4 = (uint32_t)zero_y * 0x01010101u;
#endif
    for (int32_t c = 0; c < ch; c++) {
        uint32_t acc = 0;
        int32_t i = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        for (; i + 4 <= hw; i += 4) {
            const uint32_t v = relu_mask4(ld32u(e + i), ld32u(y + i), ze4, zy4);
            st32u(e + i, v);
            acc = __usada8(v, ze4, acc);
        }
#endif
        scores[c] = acc + relu_mask_score_run(e + i, y + i, hw - i, zero_e, zero_y);
        e += hw;
        y += hw;
    }
}

void conv_relu_mask_u8(uint8_t *e, const uint8_t *y, int32_t n, int32_t zero_e, int32_t zero_y) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // The M4: the fused pass as one map, its score unused (one USADA8 per 4
    // values more, ~110 bytes less of armv7emsp code than a loop of its own).
    uint32_t unused;
    conv_relu_mask_scores_u8(e, y, 1, n, zero_e, zero_y, &unused);
#else
    for (int32_t i = 0; i < n; i++) {
        if (y[i] <= zero_y) {
            e[i] = (uint8_t)zero_e;
        }
    }
#endif
}

void conv2d_backward_input_u8(const qt_conv_geom_t *g, const uint8_t *e, const uint8_t *w,
    uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    qt_conv_scatter_u8(g, e, w, NULL, ex, rq, stats, sel, n_sel, scratch);
}

uint8_t *conv2d_grad_prepare_u8(const qt_conv_geom_t *g, const uint8_t *x, int32_t zero_x,
    uint8_t *scratch, int32_t **colsum) {
    const int32_t KK = g->k_h * g->k_w, HW = g->in_h * g->in_w;
    const int32_t CKK = g->in_ch * KK;
    int32_t *cs = (int32_t *)(void *)scratch;
    uint8_t *cols = scratch + 4 * CKK;
    for (int32_t c = 0; c < g->in_ch; c++) {
        qt_conv_cols_u8(g, x + c * HW, zero_x, cols, cs + c * KK, c * KK, CKK);
    }
    *colsum = cs;
    return cols;
}

int32_t conv2d_filter_grad_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *cols, const int32_t *colsum, int32_t zero_x, int32_t o, int32_t *grow,
    int accumulate, uint32_t *work) {
    const int32_t SHW = g->out_h * g->out_w;
    const uint8_t *eo = e + o * SHW;
    const int32_t esum = (int32_t)sum_u8(eo, SHW);
    qt_conv_corr_rows_u8(eo, zero_e, esum, cols, colsum, zero_x, g->in_ch * g->k_h * g->k_w, SHW,
        grow, 1, accumulate, work);
    return (int32_t)((uint32_t)esum - (uint32_t)SHW * (uint32_t)zero_e);
}

void conv2d_grad_acc_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, int32_t *gw, int32_t *gb,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch) {
    const int32_t CKK = g->in_ch * g->k_h * g->k_w;
    const int32_t SHW = g->out_h * g->out_w;
    int32_t *colsum;
    const uint8_t *cols = conv2d_grad_prepare_u8(g, x, zero_x, scratch, &colsum);
    uint32_t *work = (uint32_t *)(void *)(scratch + 8 * CKK + align4(CKK * SHW) + 4 * g->out_ch);
    const int32_t n = sel ? n_sel : g->out_ch;
    for (int32_t j = 0; j < n; j++) {
        const int32_t o = sel ? sel[j] : j;
        int32_t gbo = conv2d_filter_grad_u8(g, e, zero_e, cols, colsum, zero_x, o, gw + o * CKK, 1, work);
        if (gb) {
            gb[o] = qt_sat_add_i32(gb[o], gbo);
        }
    }
}

void conv2d_update_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint8_t *w, int32_t *b, const int32_t *sel, int32_t n_sel,
    float s_g, float s_gb, float s_b, const qt_update_t *u, float *state, int first,
    qt_wrange_t *new_range, uint8_t *scratch) {
    const int32_t CKK = g->in_ch * g->k_h * g->k_w, SHW = g->out_h * g->out_w;
    const int32_t n = sel ? n_sel : g->out_ch;
    int32_t *colsum = NULL;
    const uint8_t *cols = NULL;
    int32_t *grow = (int32_t *)(void *)(scratch + 4 * CKK + align4(CKK * SHW));
#if QT_CONV_CORR_DIRECT
    // DSGU with few filters: no re-sampled input (conv_dsgu.h).  Its input
    // may take the cols' bytes, or all the scratch but grow and gb, which
    // then go to its end.
    const int32_t direct = sel ? qt_conv_corr_direct_u8(g, n, x, zero_x, scratch, 4 * CKK + align4(CKK * SHW),
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        0   // (the M4's padded input takes the cols' bytes only)
#else
        conv2d_scratch_len_u8(g) - 4 * CKK - 4 * g->out_ch
#endif
        ) : 0;
    if (direct) {
        grow = (int32_t *)(void *)(scratch + direct);
    } else
#else
    const int32_t direct = 0;
    (void)direct;
#endif
    {
        cols = conv2d_grad_prepare_u8(g, x, zero_x, scratch, &colsum);
    }
    int32_t *gb = grow + CKK;
    uint32_t *work = (uint32_t *)(void *)(gb + g->out_ch);
    qt_wrange_init(new_range);
    int32_t j = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Cortex-M4: four filters per pass over the re-sampled input (each row
    // of cols read once for four error maps, qt_conv_corr4_rows_u8; the
    // rows are read as align4(SHW) bytes, the bytes past the last one are
    // the scratch's grow and count zero), then the four updates in turn; a
    // pair, then single filters for the rest.
    int32_t *grow1 = (int32_t *)(void *)((uint8_t *)work + qt_conv_lanes4_bytes(SHW));
    int32_t *const gq[4] = {grow, grow1, grow1 + CKK, grow1 + 2 * CKK};
    for (; !direct && j + 4 <= n; j += 4) {
        const uint8_t *ev[4];
        int32_t es[4];
        for (int32_t k = 0; k < 4; k++) {
            ev[k] = e + (sel ? sel[j + k] : j + k) * SHW;
            es[k] = (int32_t)sum_u8(ev[k], SHW);
        }
        qt_conv_lanes4_u8(ev, SHW, work);
        qt_conv_corr4_rows_u8(work, es, zero_e, cols, colsum, zero_x, CKK, SHW, gq);
        for (int32_t k = 0; k < 4; k++) {
            const int32_t o = sel ? sel[j + k] : j + k;
            gb[o] = (int32_t)((uint32_t)es[k] - (uint32_t)SHW * (uint32_t)zero_e);
            qt_wrange_t r;
            qt_update_rows_u8(w + o * CKK, gq[k], 1, CKK, s_g, u, state + 2 * o, first, &r);
            qt_wrange_merge(new_range, &r);
        }
    }
    // (direct: two filters a pass, each plane word read once for both)
    for (; j + 2 <= n; j += 2) {
        const int32_t o0 = sel ? sel[j] : j, o1 = sel ? sel[j + 1] : j + 1;
#if QT_CONV_CORR_DIRECT
        if (direct) {
            qt_conv_corr_direct_filter2_u8(g, e, zero_e, zero_x, o0, o1, scratch, grow, grow1, gb);
        } else
#endif
        {
            const uint8_t *e0 = e + o0 * SHW, *e1 = e + o1 * SHW;
            const uint32_t s0 = sum_u8(e0, SHW), s1 = sum_u8(e1, SHW);
            qt_conv_corr2_rows_u8(e0, e1, zero_e, (int32_t)s0, (int32_t)s1, cols, colsum, zero_x, CKK, SHW, grow,
                grow1, 1, work);
            gb[o0] = (int32_t)(s0 - (uint32_t)SHW * (uint32_t)zero_e);
            gb[o1] = (int32_t)(s1 - (uint32_t)SHW * (uint32_t)zero_e);
        }
        qt_wrange_t r;
        qt_update_rows_u8(w + o0 * CKK, grow, 1, CKK, s_g, u, state + 2 * o0, first, &r);
        qt_wrange_merge(new_range, &r);
        qt_update_rows_u8(w + o1 * CKK, grow1, 1, CKK, s_g, u, state + 2 * o1, first, &r);
        qt_wrange_merge(new_range, &r);
    }
#endif
    for (; j < n; j++) {
        const int32_t o = sel ? sel[j] : j;
#if QT_CONV_CORR_DIRECT
        if (direct) {
            gb[o] = qt_conv_corr_direct_filter_u8(g, e, zero_e, zero_x, o, scratch, grow);
        } else
#endif
        {
            gb[o] = conv2d_filter_grad_u8(g, e, zero_e, cols, colsum, zero_x, o, grow, 0, work);
        }
        // One row: state + 2*o puts this filter's (mu, sigma) where
        // qt_update_rows_u8 reads row 0's (per-row mode reads no header).
        qt_wrange_t r;
        qt_update_rows_u8(w + o * CKK, grow, 1, CKK, s_g, u, state + 2 * o, first, &r);
        qt_wrange_merge(new_range, &r);
    }
    if (!qt_rows_distinct(sel, n)) {
        new_range->n = 0;
    }
    if (b) {
        qt_update_bias_i32(b, gb, NULL, 0, g->out_ch, sel ? sel : NULL, n, s_gb, s_b, u, state, first);
    }
}
