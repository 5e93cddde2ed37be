// Weight/bias update with gradient standardization: see update.h.
// Float math happens once per structure (or per element only in the batch
// path, once per batch); every float operation is a single binary32 op in the
// order written here, mirrored by host_tools/qtrain_host/golden/dense.py.
#include "update.h"

// Per-call and per-row work off the M0's per-weight paths at -Os on armv6m
// (the module is loaded into the Pico's heap: ~0.5 KB less code, the same
// instruction counts within noise); the file is -O2 for its asm loops.
#if defined(__ARM_ARCH_6M__)
#define QT_M0_SMALL __attribute__((optimize("Os")))
#else
#define QT_M0_SMALL
#endif

void qt_std_blend(float *st, float mu, float sig, float alpha, int first) {
    if (first) {
        st[0] = mu;
        st[1] = sig;
    } else {
        float b = 1.0f - alpha;
        st[0] = b * st[0] + alpha * mu;
        st[1] = b * st[1] + alpha * sig;
    }
}

int qt_rows_distinct(const int32_t *rows, int32_t k) {
    for (int32_t t = 1; rows && t < k; t++) {
        if (rows[t] <= rows[t - 1]) {
            return 0;
        }
    }
    return 1;
}

static float clampf(float v, float lim) {
    return v > lim ? lim : (v < -lim ? -lim : v);
}

static inline int32_t gb_at(const int32_t *gb, const uint8_t *e, int32_t ze, int32_t i) {
    return gb ? gb[i] : (int32_t)e[i] - ze;
}

QT_M0_SMALL void qt_update_bias_i32(int32_t *b, const int32_t *gb, const uint8_t *e, int32_t ze,
    int32_t rows_total, const int32_t *rows, int32_t k, float s_g, float s_b,
    const qt_update_t *u, float *state, int first) {
    int32_t cnt = rows ? k : rows_total;
    float sq = 0.0f;
    int32_t nz = 0;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t gi = gb_at(gb, e, ze, i);
        if (gi != 0) {
            float g = (float)gi;
            sq = sq + g * g;
            nz++;
        }
    }
    if (nz == 0) {
        return;
    }
    float sig = qt_bias_rms_sigma(state, sq, nz, s_g, u->alpha_norm, first);
    if (!(sig > 0.0f)) {
        return;
    }
    float c = u->lr / (s_b * sig);
    float mu = state[3];
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t gi = gb_at(gb, e, ze, i);
        if (gi == 0) {
            continue;
        }
        float d = c * (s_g * (float)gi - mu);
        float r = (float)qt_round_offset(u) * (1.0f / 65536.0f);
        int64_t nb = (int64_t)b[i] + qt_floor_f32(clampf(r - d, 1.0e9f));
        b[i] = nb > INT32_MAX ? INT32_MAX : (nb < -INT32_MAX ? -INT32_MAX : (int32_t)nb);
    }
}

// Row statistics in integers (one int -> float conversion per row instead of
// a float multiply-add per element, which is soft float on the M0):
//   sum    the exact sum of g;
//   sq     sum of g^2, exact when every |g| < 2^24 (batch-1 conv gradients
//          of up to 258 products per weight, and in practice batches too);
//          otherwise of (|g| >> sh)^2 times 2^(2 sh), sh = bitlen(OR_j |g_j|) - 24,
//          so that the uint64 sum of at most 32767 squares cannot overflow.
// int64 -> float with the bits of the plain conversion; the 32-bit one when
// the value fits (on the M0 __aeabi_i2f is much cheaper than __aeabi_l2f).
static inline float i64_to_f32(int64_t v) {
    return v == (int64_t)(int32_t)v ? (float)(int32_t)v : (float)v;
}

static inline float u64_to_f32(uint64_t v) {
    return i64_to_f32((int64_t)v);      // v < 2^63 here (sums of squares)
}

typedef struct {
    int64_t sum;
    float sq;
    uint32_t amax;      // OR of |g| (0: no gradient)
} qt_row_stats_t;

#if defined(__ARM_ARCH_6M__)
// a^2 for a <= 2^24, exact.  GCC would call __aeabi_lmul (64 x 64); 16-bit
// halves instead (ah <= 2^8): a^2 = ah^2 2^32 + 2 ah al 2^16 + al^2.
static inline uint64_t sq_u24(uint32_t a) {
    uint32_t al = a & 0xffffu, ah = a >> 16;
    uint32_t ll = al * al, m = ah * al;
    uint32_t lo = ll + (m << 17);
    uint32_t hi = ah * ah + (m >> 15) + (lo < ll);
    return ((uint64_t)hi << 32) | lo;
}
#else
static inline uint64_t sq_u24(uint32_t a) {
    return (uint64_t)a * a;
}
#endif

static inline uint32_t abs_u32(int32_t v) {
    return v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
}

#if defined(__ARM_ARCH_6M__)
// Cortex-M0: GCC spills badly in the fused loop; two passes in the 8 low
// registers instead: sum and OR of |g| (9 instructions per element), then,
// when every |g| < 2^24, the exact squares (4.5 when every |g| < 2^16, else
// 11 per |g| < 2^16 and 21 per larger one).
static void row_stats(const int32_t *g, int32_t len, qt_row_stats_t *rs) {
    rs->sum = 0;
    rs->amax = 0;
    rs->sq = 0.0f;
    if (len <= 0) {
        return;
    }
    const int32_t *pg = g, *end = g + len;
    uint32_t sl = 0, m = 0;
    int32_t sh = 0, v, t;
    __asm__ volatile(
        ".syntax unified\n\t"
        "1:\n\t"
        "ldm %[pg]!, {%[v]}\n\t"
        "asrs %[t], %[v], #31\n\t"
        "adds %[sl], %[sl], %[v]\n\t"
        "adcs %[sh], %[t]\n\t"
        "eors %[v], %[t]\n\t"
        "subs %[v], %[v], %[t]\n\t"
        "orrs %[m], %[v]\n\t"
        "cmp %[pg], %[end]\n\t"
        "bne 1b\n\t"
        : [pg] "+l"(pg), [sl] "+l"(sl), [sh] "+l"(sh), [m] "+l"(m), [v] "=&l"(v), [t] "=&l"(t)
        : [end] "h"(end)
        : "cc", "memory");
    rs->sum = (int64_t)(((uint64_t)(uint32_t)sh << 32) | sl);
    if (!m) {
        return;
    }
    rs->amax = m;
    int32_t shift = 8 - __builtin_clz(m);      // bitlen(m) - 24
    uint32_t ql = 0, qh = 0;
    if (m < 65536u) {
        // Every |g| < 2^16: g^2 < 2^32 is one MULS (4.5 instructions per
        // element, two per pass; Conv2d's batch-1 rows, 49 products each).
        // (a, b) in ascending registers: LDM fills its list in register order.
        register uint32_t a __asm__("r2"), b __asm__("r3");
        pg = g;
        if (len & 1) {
            a = (uint32_t)g[0] * (uint32_t)g[0];
            ql = a;
            pg++;
        }
        if (pg != end) {
            __asm__ volatile(
                ".syntax unified\n\t"
                "1:\n\t"
                "ldm %[pg]!, {%[a], %[b]}\n\t"
                "muls %[a], %[a], %[a]\n\t"
                "muls %[b], %[b], %[b]\n\t"
                "adds %[ql], %[ql], %[a]\n\t"
                "adcs %[qh], %[z]\n\t"
                "adds %[ql], %[ql], %[b]\n\t"
                "adcs %[qh], %[z]\n\t"
                "cmp %[pg], %[end]\n\t"
                "bne 1b\n\t"
                : [pg] "+&l"(pg), [ql] "+&l"(ql), [qh] "+&l"(qh), [a] "=&l"(a), [b] "=&l"(b)
                : [z] "l"(0), [end] "h"(end)     // early clobbers: z in a register of its own
                : "cc", "memory");
        }
        shift = 0;
    } else if (shift <= 0) {
        // |g| < 2^24: 16-bit halves, a^2 = ah^2 2^32 + ah al 2^17 + al^2
        // (ah = 0, i.e. |g| < 2^16, takes the one-MULS form: 11 instead of 19).
        uint32_t a, ah;
        pg = g;
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            "ldm %[pg]!, {%[a]}\n\t"
            "asrs %[t], %[a], #31\n\t"
            "eors %[a], %[t]\n\t"
            "subs %[a], %[a], %[t]\n\t"
            "lsrs %[ah], %[a], #16\n\t"
            "beq 2f\n\t"
            "uxth %[a], %[a]\n\t"
            "movs %[t], %[a]\n\t"
            "muls %[t], %[ah], %[t]\n\t"
            "muls %[a], %[a], %[a]\n\t"
            "muls %[ah], %[ah], %[ah]\n\t"
            "adds %[ql], %[ql], %[a]\n\t"
            "adcs %[qh], %[ah]\n\t"
            "lsls %[a], %[t], #17\n\t"
            "lsrs %[t], %[t], #15\n\t"
            "adds %[ql], %[ql], %[a]\n\t"
            "adcs %[qh], %[t]\n\t"
            "cmp %[pg], %[end]\n\t"
            "bne 1b\n\t"
            "b 3f\n\t"
            "2:\n\t"
            "muls %[a], %[a], %[a]\n\t"
            "adds %[ql], %[ql], %[a]\n\t"
            "adcs %[qh], %[ah]\n\t"       /* ah = 0 here */
            "cmp %[pg], %[end]\n\t"
            "bne 1b\n\t"
            "3:\n\t"
            : [pg] "+l"(pg), [ql] "+l"(ql), [qh] "+l"(qh), [a] "=&l"(a), [ah] "=&l"(ah), [t] "=&l"(t)
            : [end] "h"(end)
            : "cc", "memory");
        shift = 0;
    } else {
        uint64_t q = 0;
        for (int32_t j = 0; j < len; j++) {
            q += sq_u24(abs_u32(g[j]) >> shift);
        }
        ql = (uint32_t)q;
        qh = (uint32_t)(q >> 32);
    }
    uint64_t q = ((uint64_t)qh << 32) | ql;
    rs->sq = qt_scale2_f32(u64_to_f32(q), 2 * shift);
}
#else
static void row_stats(const int32_t *g, int32_t len, qt_row_stats_t *rs) {
    int64_t s = 0;
    uint64_t q = 0;
    uint32_t m = 0;
    // One pass: sum, OR of the magnitudes, squares (exact when sh = 0).
    for (int32_t j = 0; j < len; j++) {
        int32_t v = g[j];
        uint32_t a = abs_u32(v);
        s += v;
        m |= a;
        q += sq_u24(a);
    }
    rs->sum = s;
    rs->amax = m;
    int32_t sh = m ? 8 - __builtin_clz(m) : 0;     // bitlen(m) - 24
    if (sh > 0) {
        q = 0;
        for (int32_t j = 0; j < len; j++) {
            q += sq_u24(abs_u32(g[j]) >> sh);
        }
    } else {
        sh = 0;
    }
    // 2^(2 sh) <= 2^16: an exact float scaling.
    rs->sq = qt_scale2_f32(u64_to_f32(q), 2 * sh);
}
#endif

// One row of the update from int32 gradients, integer only:
//   v_j = w_j + (D_j >> 16),  D_j = sat26(r_j + B - T_j),  T_j = sat29(round(K g_j)),
// sat_b(x) = clamp(x, -2^b, 2^b - 1) (SSAT), B = round(c mu 2^16) and
// K = c s_g 2^16: the float step w + floor(r/2^16 - c (s_g g - mu)) in Q16
// fixed point, at most 1024 steps.  K g in 32-bit integers (one MULS on the
// Cortex-M0, which has no long multiply):
//   g is first rounded to 15 bits, g' = round(g / 2^gs), gs = max(0, bitlen(amax) - 14)
//   (amax = OR of |g| over the row, or over the tensor when standardizing per
//   tensor), so |g'| <= 2^14, exact when every |g| < 2^14;
//   K 2^gs ~ m 2^-s with a 16-bit mantissa m in [2^15, 2^16) (the float's
//   mantissa truncated), |g' m| < 2^30;
//   round(K g) = ((g' m >> (s - 1)) + 1) >> 1 (= (g' m + 2^(s-1)) >> s).
// Relative errors 2^-14 of amax and 2^-15 of K: far below a rounding step.
// r_j: rb - B (deterministic modes), or stochastic: the 16-bit halves of one
// xorshift32 draw per two weights (high half for even j, low half for odd j).
typedef struct {
    int32_t gs;     // g' = round(g / 2^gs)
    int32_t m;      // 0 or in [2^15, 2^16)
    int32_t s;      // <= 31
} qt_rowmul_t;

static void rowmul_setup(float k, uint32_t amax, qt_rowmul_t *r) {
    int32_t b = amax ? 32 - __builtin_clz(amax) : 0;
    r->gs = b > 14 ? b - 14 : 0;
    qt_fixmul_t f = qt_fixmul_from_f32(qt_scale2_f32(k, r->gs));   // exact scaling
    r->m = f.mult >> 15;
    r->s = f.shift - 15;
    if (r->s >= 32) {           // |g' m| < 2^30 < 2^(s-1): round(K g) = 0
        r->m = 0;
        r->s = 31;
    }
}

// g' in place (the caller zeroes g afterwards anyway).
static void round_g(int32_t *g, int32_t len, int32_t gs) {
    const int32_t s1 = gs - 1;
    for (int32_t j = 0; j < len; j++) {
        g[j] = ((g[j] >> s1) + 1) >> 1;
    }
}

static inline int32_t sat_i32(int32_t v, int32_t b) {
    const int32_t hi = (1 << b) - 1;
    return v > hi ? hi : (v < -hi - 1 ? -hi - 1 : v);
}

// round(K g) from g' (sat29).
static inline int32_t round_kg(int32_t gn, const qt_rowmul_t *K) {
    int32_t p = gn * K->m;
    if (K->s >= 1) {
        return sat_i32(((p >> (K->s - 1)) + 1) >> 1, 29);
    }
    int64_t q = (int64_t)p * ((int64_t)1 << -K->s);
    return q > 536870911 ? 536870911 : (q < -536870912 ? -536870912 : (int32_t)q);
}

static inline void step_g32(uint8_t *w, int32_t t, int32_t rbj, int32_t *lo, int32_t *hi) {
    int32_t v = (int32_t)*w + (sat_i32(rbj - t, 26) >> 16);
    *lo = v < *lo ? v : *lo;
    *hi = v > *hi ? v : *hi;
    *w = qt_clamp_u8(v, 0);
}

// Weights [j, len) in plain C (j even: the pairs of draws stay aligned).
QT_M0_SMALL static void row_g32_c(uint8_t *wr, const int32_t *g, int32_t j, int32_t len, const qt_rowmul_t *K,
    int32_t rb, uint32_t *rng, int32_t *lo, int32_t *hi) {
    uint32_t s = rng ? *rng : 0;
    for (; j < len; j += 2) {
        int32_t r0 = rb, r1 = rb;
        if (rng) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            r0 += (int32_t)(s >> 16);
            r1 += (int32_t)(s & 0xffffu);
        }
        step_g32(wr + j, round_kg(g[j], K), r0, lo, hi);
        if (j + 1 < len) {
            step_g32(wr + j + 1, round_kg(g[j + 1], K), r1, lo, hi);
        }
    }
    if (rng) {
        *rng = s;
    }
}

// The fast loops below take weights [j, n2) (pairs when stochastic), K->s in
// 1..31, with a first value already in [*lo, *hi]: the extremes are kept as
// lo and span = hi - lo, and one unsigned compare finds a new one.
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Cortex-M4: MLA (g' m + 2^(s-1): below 2^31, as |g' m| < 2^30), ASR, SSAT
// form T (any s >= 1); 15 instructions per weight (+ 2.5 for the draw and offset when
// stochastic).
static void row_g32_fast(uint8_t *wr, const int32_t *g, int32_t j, int32_t n2, const qt_rowmul_t *K,
    int32_t rb, uint32_t *rng, int32_t *plo, int32_t *phi) {
    if (n2 <= j) {
        return;
    }
    const int32_t *pg = g + j, *end = g + n2;
    uint8_t *pw = wr + j;
    int32_t lo = *plo;
    uint32_t span = (uint32_t)(*phi - lo);
    const int32_t m = K->m, sh = K->s, half = (int32_t)(1u << (K->s - 1));
    int32_t t, v;
    uint32_t s = rng ? *rng : 0;
#define QT_G32_ONE(R, L) \
    "ldr %[t], [%[pg]], #4\n\t" \
    "mla %[t], %[t], %[m], %[half]\n\t" \
    "asr %[t], %[t], %[sh]\n\t" \
    "ssat %[t], #30, %[t]\n\t" \
    "sub %[t], %[rb], %[t]\n\t" \
    R \
    "ssat %[t], #27, %[t]\n\t" \
    "ldrb %[v], [%[pw]]\n\t" \
    "add %[v], %[v], %[t], asr #16\n\t" \
    "sub %[t], %[v], %[lo]\n\t" \
    "cmp %[t], %[span]\n\t" \
    "bhi " L "f\n\t" \
    L "0:\n\t" \
    "usat %[v], #8, %[v]\n\t" \
    "strb %[v], [%[pw]], #1\n\t"
#define QT_G32_EXT(L) \
    L ":\n\t"                /* a new extreme: below lo, or above lo + span */ \
    "cmp %[v], %[lo]\n\t" \
    "bge " L "5f\n\t" \
    "sub %[t], %[lo], %[v]\n\t" \
    "add %[span], %[span], %[t]\n\t" \
    "mov %[lo], %[v]\n\t" \
    "b " L "0b\n\t" \
    L "5:\n\t" \
    "mov %[span], %[t]\n\t" \
    "b " L "0b\n\t"
    if (rng) {
        __asm__ volatile(
            "1:\n\t"
            "eor %[s], %[s], %[s], lsl #13\n\t"
            "eor %[s], %[s], %[s], lsr #17\n\t"
            "eor %[s], %[s], %[s], lsl #5\n\t"
            QT_G32_ONE("add %[t], %[t], %[s], lsr #16\n\t", "3")
            QT_G32_ONE("uxtah %[t], %[t], %[s]\n\t", "4")
            "cmp %[pg], %[end]\n\t"
            "bne 1b\n\t"
            "b 9f\n\t"
            QT_G32_EXT("3")
            QT_G32_EXT("4")
            "9:\n\t"
            : [pg] "+r"(pg), [pw] "+r"(pw), [lo] "+r"(lo), [span] "+r"(span), [s] "+r"(s),
            [t] "=&r"(t), [v] "=&r"(v)
            : [m] "r"(m), [sh] "r"(sh), [half] "r"(half), [rb] "r"(rb), [end] "r"(end)
            : "cc", "memory");
        *rng = s;
    } else {
        __asm__ volatile(
            "1:\n\t"
            QT_G32_ONE("", "3")
            "cmp %[pg], %[end]\n\t"
            "bne 1b\n\t"
            "b 9f\n\t"
            QT_G32_EXT("3")
            "9:\n\t"
            : [pg] "+r"(pg), [pw] "+r"(pw), [lo] "+r"(lo), [span] "+r"(span),
            [t] "=&r"(t), [v] "=&r"(v)
            : [m] "r"(m), [sh] "r"(sh), [half] "r"(half), [rb] "r"(rb), [end] "r"(end)
            : "cc", "memory");
    }
#undef QT_G32_ONE
#undef QT_G32_EXT
    *plo = lo;
    *phi = lo + (int32_t)span;
}
#define QT_ROW_G32_MIN_S 1
#define QT_ROW_G32_FAST 1
#elif defined(__ARM_ARCH_6M__)
// Cortex-M0, K->s >= 2 (so |T| < 2^29: no sat29), 15 instructions per
// weight (+ 4.5 for the draw and offset when stochastic; was 27 + 4.5):
//   -T = (g' (-m) + 2^(s-1) - 1) >> s      (= -round(K g), one MULS)
//   v  = w + ((rb + r - T) >> 16)
// and one unsigned compare against a window [wlo, wlo + wspan] inside both
// the extremes seen [lo, hi] and 0..255: a v in it is no new extreme, needs
// no clamp and came from an unsaturated D (|D >> 16| <= 255 < 2^10), so it
// is stored as is.  Anything else (a new extreme, a clamp, a D outside
// [-2^26, 2^26)) takes the out-of-line path, which saturates D, tracks
// [lo, hi], clamps and moves the window.  An empty window (the extremes
// all outside 0..255) is wlo = 2^31, wspan = 0: nothing passes.
#define QT_ROW_G32_MIN_S 2
static void row_g32_fast(uint8_t *wr, const int32_t *g, int32_t j, int32_t n2, const qt_rowmul_t *K,
    int32_t rb, uint32_t *rng, int32_t *plo, int32_t *phi) {
    if (n2 <= j) {
        return;
    }
    const int32_t *pg = g + j, *end = g + n2;
    uint8_t *pw = wr + j;
    int32_t lo = *plo, hi = *phi;
    const int32_t wl = lo < 0 ? 0 : lo, wh = hi > 255 ? 255 : hi;
    int32_t wlo = wh >= wl ? wl : INT32_MIN;
    uint32_t wspan = wh >= wl ? (uint32_t)(wh - wl) : 0u;
    int32_t m = -K->m, sr = K->s, hm1 = (int32_t)(1u << (K->s - 1)) - 1;
    int32_t t, u;
    uint32_t s = rng ? *rng : 0;
#define QT_G32_M0(R, L) \
    "ldm %[pg]!, {%[t]}\n\t" \
    "muls %[t], %[m], %[t]\n\t" \
    "add %[t], %[hm1]\n\t" \
    "asrs %[t], %[sr]\n\t" \
    "add %[t], %[rb]\n\t" \
    R \
    "asrs %[t], %[t], #16\n\t" \
    "ldrb %[u], [%[pw]]\n\t" \
    "adds %[t], %[t], %[u]\n\t" \
    "subs %[u], %[t], %[wlo]\n\t" \
    "cmp %[u], %[wspan]\n\t" \
    "bhi " L "1f\n\t" \
    L "2:\n\t" \
    "strb %[t], [%[pw]]\n\t" \
    "adds %[pw], #1\n\t"
// t = w + (D >> 16); m is borrowed (pushed) as a third temporary for the
// saturation; lo and hi stay in memory (no register left; this path is rare).
#define QT_G32_M0_EXT(L) \
    L "1:\n\t" \
    "ldrb %[u], [%[pw]]\n\t" \
    "subs %[t], %[t], %[u]\n\t"     /* D >> 16: saturate to [-1024, 1023] */ \
    "push {%[m]}\n\t" \
    "movs %[m], #1\n\t" \
    "lsls %[m], %[m], #10\n\t" \
    "cmp %[t], %[m]\n\t" \
    "blt " L "3f\n\t" \
    "subs %[t], %[m], #1\n\t" \
    "b " L "4f\n\t" \
    L "3:\n\t" \
    "negs %[m], %[m]\n\t" \
    "cmp %[t], %[m]\n\t" \
    "bge " L "4f\n\t" \
    "movs %[t], %[m]\n\t" \
    L "4:\n\t" \
    "adds %[t], %[t], %[u]\n\t"     /* v */ \
    "pop {%[m]}\n\t"                /* sp back: lo, hi may be sp-relative */ \
    "ldr %[u], %[lo]\n\t" \
    "cmp %[t], %[u]\n\t" \
    "bge " L "5f\n\t" \
    "str %[t], %[lo]\n\t" \
    L "5:\n\t" \
    "ldr %[u], %[hi]\n\t" \
    "cmp %[t], %[u]\n\t" \
    "ble " L "6f\n\t" \
    "str %[t], %[hi]\n\t" \
    L "6:\n\t"                      /* window [max(lo, 0), min(hi, 255)] */ \
    "ldr %[wlo], %[lo]\n\t" \
    "asrs %[u], %[wlo], #31\n\t" \
    "bics %[wlo], %[u]\n\t" \
    "ldr %[u], %[hi]\n\t" \
    "cmp %[u], #255\n\t" \
    "ble " L "7f\n\t" \
    "movs %[u], #255\n\t" \
    L "7:\n\t" \
    "subs %[u], %[u], %[wlo]\n\t" \
    "bge " L "8f\n\t" \
    "movs %[wlo], #1\n\t"           /* empty */ \
    "lsls %[wlo], %[wlo], #31\n\t" \
    "movs %[u], #0\n\t" \
    L "8:\n\t" \
    "mov %[wspan], %[u]\n\t" \
    "cmp %[t], #255\n\t"            /* clamp to 0..255 */ \
    "bls " L "2b\n\t" \
    "asrs %[t], %[t], #31\n\t" \
    "mvns %[t], %[t]\n\t" \
    "b " L "2b\n\t"
    if (rng) {
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            "lsls %[u], %[s], #13\n\t"
            "eors %[s], %[u]\n\t"
            "lsrs %[u], %[s], #17\n\t"
            "eors %[s], %[u]\n\t"
            "lsls %[u], %[s], #5\n\t"
            "eors %[s], %[u]\n\t"
            QT_G32_M0("lsrs %[u], %[s], #16\n\tadds %[t], %[t], %[u]\n\t", "2")
            QT_G32_M0("uxth %[u], %[s]\n\tadds %[t], %[t], %[u]\n\t", "3")
            "cmp %[pg], %[end]\n\t"
            "bne 1b\n\t"
            "b 99f\n\t"
            QT_G32_M0_EXT("2")
            QT_G32_M0_EXT("3")
            "99:\n\t"
            : [pg] "+l"(pg), [pw] "+l"(pw), [wlo] "+l"(wlo), [s] "+l"(s), [m] "+l"(m), [sr] "+l"(sr),
            [wspan] "+&h"(wspan), [lo] "+m"(lo), [hi] "+m"(hi), [t] "=&l"(t), [u] "=&l"(u)
            : [hm1] "h"(hm1), [rb] "h"(rb), [end] "h"(end)
            : "cc", "memory");
        *rng = s;
    } else {
        __asm__ volatile(
            ".syntax unified\n\t"
            "1:\n\t"
            QT_G32_M0("", "2")
            "cmp %[pg], %[end]\n\t"
            "bne 1b\n\t"
            "b 99f\n\t"
            QT_G32_M0_EXT("2")
            "99:\n\t"
            : [pg] "+l"(pg), [pw] "+l"(pw), [wlo] "+l"(wlo), [m] "+l"(m), [sr] "+l"(sr),
            [wspan] "+&h"(wspan), [lo] "+m"(lo), [hi] "+m"(hi), [t] "=&l"(t), [u] "=&l"(u)
            : [hm1] "h"(hm1), [rb] "h"(rb), [end] "h"(end)
            : "cc", "memory");
    }
#undef QT_G32_M0
#undef QT_G32_M0_EXT
    *plo = lo;
    *phi = hi;
}
#define QT_ROW_G32_FAST 1
#endif

// g holds g' (round_g done).  The extremes of v merge into [*plo, *phi]
// (*plo > *phi: nothing seen yet).
static void update_row_g32(uint8_t *wr, const int32_t *g, int32_t len, const qt_rowmul_t *K, int32_t rb,
    uint32_t *rng, int32_t *plo, int32_t *phi) {
    int32_t j = 0;
    if (*plo > *phi) {
        *plo = INT32_MAX;
        *phi = INT32_MIN;
    }
#ifdef QT_ROW_G32_FAST
    if (K->s >= QT_ROW_G32_MIN_S && len >= 2) {
        if (*plo > *phi) {
            // the out-of-range test needs a first value: the first pair in C
            row_g32_c(wr, g, 0, 2, K, rb, rng, plo, phi);
            j = 2;
        }
        const int32_t n2 = rng ? (len & ~1) : len;
        row_g32_fast(wr, g, j, n2, K, rb, rng, plo, phi);
        j = n2 > j ? n2 : j;
    }
#endif
    row_g32_c(wr, g, j, len, K, rb, rng, plo, phi);
}

static float var_of(int64_t sum, float sq, float cnt, float *mean) {
    float m = i64_to_f32(sum) / cnt;
    float var = sq / cnt - m * m;
    *mean = m;
    return var < 0.0f ? 0.0f : var;
}

QT_M0_SMALL void qt_update_rows_u8(uint8_t *w, int32_t *g, int32_t rows_total, int32_t len, float s_g,
    const qt_update_t *u, float *state, int first, qt_wrange_t *new_range) {
    int32_t qmin = INT32_MAX, qmax = INT32_MIN, updated = 0;
    float fl = (float)len;
    qt_row_stats_t rs;
    uint32_t amax = 0;
    // Per tensor: statistics over all rows that have a gradient.
    if (!u->per_row) {
        int64_t sum = 0;
        float sq = 0.0f;
        int32_t rows = 0;
        for (int32_t i = 0; i < rows_total; i++) {
            row_stats(g + (size_t)i * (size_t)len, len, &rs);
            amax |= rs.amax;
            if (rs.amax) {
                sum += rs.sum;
                sq = sq + rs.sq;
                rows++;
            }
        }
        if (rows) {
            float mean;
            // QT_UPD_RMS: a sum of 0 makes the mean 0, the variance the mean square
            float var = var_of(u->rms ? 0 : sum, sq, (float)rows * fl, &mean);
            qt_std_blend(state + 1, s_g * mean, s_g * qt_sqrt_f32(var), u->alpha_norm, first);
        }
    }
    const int32_t r0 = u->rounding == QT_ROUND_NEAREST ? 32768 : 0;
    for (int32_t i = 0; i < rows_total; i++) {
        int32_t *gr = g + (size_t)i * (size_t)len;
        uint8_t *wr = w + (size_t)i * (size_t)len;
        float *st = state + 1;
        if (u->per_row) {
            row_stats(gr, len, &rs);
            if (!rs.amax) {
                continue;
            }
            amax = rs.amax;
            st = state + QT_STD_STATE_HDR + 2 * i;
            float mean;
            float var = var_of(u->rms ? 0 : rs.sum, rs.sq, fl, &mean);
            // A row seen for the first time takes its statistics as they are.
            qt_std_blend(st, s_g * mean, s_g * qt_sqrt_f32(var), u->alpha_norm, first || !(st[1] > 0.0f));
        } else {
            int32_t j = 0;
            while (j < len && gr[j] == 0) {
                j++;
            }
            if (j == len) {
                continue;
            }
        }
        float sig = st[1];
        if (sig > 0.0f) {
            float c = u->lr / (u->s_w * sig);
            qt_rowmul_t K;
            rowmul_setup(qt_scale2_f32(c * s_g, 16), amax, &K);
            if (K.gs) {
                round_g(gr, len, K.gs);
            }
            float fb = qt_scale2_f32(c * st[0], 16);
            int32_t B = qt_round_f32(fb > 536870912.0f ? 536870912.0f : (fb < -536870912.0f ? -536870912.0f : fb));
            if (u->rounding == QT_ROUND_STOCHASTIC) {
                update_row_g32(wr, gr, len, &K, B, u->rng, &qmin, &qmax);
            } else {
                int32_t r = u->rounding == QT_ROUND_STOCH_ROW ? (int32_t)(qt_rng_next(u->rng) >> 16) : r0;
                update_row_g32(wr, gr, len, &K, B + r, NULL, &qmin, &qmax);
            }
            updated += len;
        }
        qt_fill_i32(gr, (size_t)len, 0);
    }
    new_range->lo = qmin;
    new_range->hi = qmax;
    new_range->n = updated;
}

// The stored weights' extremes merged into [*plo, *phi] (0 <= *plo <= *phi
// <= 255 on entry).  Most words hold no new extreme, so 16 bytes are tested
// at once and only a hit looks at its bytes; the scan stops once 0..255 is
// covered.  One pass over the weights per step, the cost of exactness:
// ~1.1 instructions per weight on the M4, ~2.6 on the M0 (see KERNELS.md).
static inline void extend_range(const uint8_t *p, const uint8_t *end, uint32_t *lo, uint32_t *hi) {
    for (; p < end; p++) {
        uint32_t v = *p;
        *lo = v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
    }
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
// Cortex-M4: per lane, (x - lo) mod 256 exceeds hi - lo exactly when x lies
// outside [lo, hi] (USUB8, then UQSUB8 against the span is 0 or not).
// Unaligned LDR is fine on the M4.
typedef struct __attribute__((packed)) {
    uint32_t v;
} qt_u32_unaligned_t;
static inline uint32_t outside4(const uint8_t *p, uint32_t lo4, uint32_t span4) {
    uint32_t x = ((const qt_u32_unaligned_t *)(const void *)p)->v;
    return __uqsub8(__usub8(x, lo4), span4);
}
#define QT_WORDS_OK(lo, hi) (1)
#define QT_WORD_ALIGN (1u)
#else
// Cortex-M0 / generic: SWAR "has a byte < n", (x - n*0x01..) & ~x & 0x80..,
// exact for n <= 128: x against lo, and ~x against 255 - hi; so it needs
// lo <= 128 <= hi + 1 (the usual case: the zero point inside the range),
// else bytes.  Word loads need alignment on the M0.
typedef uint32_t __attribute__((may_alias)) qt_u32_alias_t;
static inline uint32_t outside4(const uint8_t *p, uint32_t lo4, uint32_t m4) {
    uint32_t x = *(const qt_u32_alias_t *)(const void *)p;
    uint32_t nx = ~x;
    return (((x - lo4) & nx) | ((nx - m4) & x)) & 0x80808080u;
}
#define QT_WORDS_OK(lo, hi) ((lo) <= 128u && (hi) >= 127u)
#define QT_WORD_ALIGN (4u)
#endif

static void stored_range_u8(const uint8_t *w, size_t n, int32_t *plo, int32_t *phi) {
    uint32_t lo = (uint32_t)*plo, hi = (uint32_t)*phi;
    const uint8_t *p = w, *end = w + n;
    // bytes up to a word boundary (M0)
    const uint8_t *a = w + ((QT_WORD_ALIGN - ((uintptr_t)w & (QT_WORD_ALIGN - 1u))) & (QT_WORD_ALIGN - 1u));
    a = a < end ? a : end;
    extend_range(p, a, &lo, &hi);
    p = a;
    while ((size_t)(end - p) >= 16 && (lo > 0u || hi < 255u) && QT_WORDS_OK(lo, hi)) {
        const uint32_t lo4 = lo * 0x01010101u;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
        const uint32_t k4 = (hi - lo) * 0x01010101u;
#else
        const uint32_t k4 = (255u - hi) * 0x01010101u;
#endif
        const uint8_t *e16 = p + ((size_t)(end - p) & ~(size_t)15);
        while (p < e16 && !(outside4(p, lo4, k4) | outside4(p + 4, lo4, k4) |
                            outside4(p + 8, lo4, k4) | outside4(p + 12, lo4, k4))) {
            p += 16;
        }
        if (p == e16) {
            break;
        }
        extend_range(p, p + 16, &lo, &hi);
        p += 16;
    }
    if (lo > 0u || hi < 255u) {
        extend_range(p, end, &lo, &hi);
    }
    *plo = (int32_t)lo;
    *phi = (int32_t)hi;
}

// A re-scale's re-map, with dithered rounding: lut[v] = clamp(z2 +
// floor(((v - z) R + d_v) / 2^16)), R = round(2^16 s / s2), d_v = (o + 40503 v)
// mod 2^16, o from the new scale's bits.  Nearest rounding is biased for a
// small scale change, and the window test below re-scales by about one
// step of 255 at a time: a ratio within 1 +- 0.5/128 moves no stored weight,
// so each such re-scale multiplied every weight's real value by s2 / s (over
// 2 DSGU epochs Conv 16->32's and ConvT 32->16's ranges, and with them all
// their weights, grew by 45 % and 64 % that way; the rows DSGU leaves alone
// have no update to pull them back).  With the dither the expected new value
// is the exact one: o changes from re-scale to re-scale, and 40503 / 2^16
// (~ the golden ratio) spreads d_v evenly over the 256 values, so a layer's
// rounding errors also cancel within one re-map.  Still one table: the
// per-weight cost is a lookup.
QT_M0_SMALL static void remap_dither_u8(uint8_t *w, size_t n, float s, int32_t z, float s2, int32_t z2) {
    uint8_t lut[256];
    union {
        float f;
        uint32_t u;
    } b = {s2};
    uint32_t d = (b.u * 2654435761u) >> 16;
    const int32_t R = qt_fixmul_apply(65536, qt_fixmul_from_f32(s / s2));
    for (int32_t v = 0; v < 256; v++) {
        const int32_t dv = (int32_t)(d & 0xffffu);
        int32_t q;
        if (R < (1 << 23)) {            // |v - z| R < 2^31
            q = (((v - z) * R + dv) >> 16) + z2;
        } else {                        // s / s2 >= 128: a rare collapse of the range
            int64_t t = ((int64_t)(v - z) * R + dv) >> 16;
            t = t > 511 ? 511 : (t < -511 ? -511 : t);
            q = (int32_t)t + z2;
        }
        lut[v] = (uint8_t)(q < 0 ? 0 : (q > 255 ? 255 : q));
        d += 40503u;
    }
    for (size_t i = 0; i < n; i++) {
        w[i] = lut[w[i]];
    }
}

// How far (in steps) the tracked range may exceed the kept window at an end
// before the weights re-scale: a hysteresis.  Weights at 0/255 pushed
// outward are observed one step's overshoot beyond the window (the clamp
// eats the rest), so at a margin of half a step the window grew by about a
// step every few hundred samples for as long as any weight sat at an edge,
// and its extreme weights walked outward with it (Conv 16->32 and ConvT
// 32->16 +45-64 % over 2 DSGU epochs, -ELBO 1.3 nats worse).  At one step
// edge weights nudged by less than a step per sample keep the window; a
// range pushed out by larger steps still grows (docs/BENCHMARKS.md,
// accuracy: 1 and 2 steps were measured, 1 kept).
#ifndef QT_WRANGE_MARGIN
#define QT_WRANGE_MARGIN 1.0f
#endif

// The observed range is that of ALL weights after the update: the new values
// of the updated rows (before clamping, new_range) and the stored values of
// the rest.  Rows left alone (DSGU, no error, sigma guard) keep their values,
// so leaving them out would move the range toward the updated rows only and
// the next re-map would clip them (24-31 % of the decoder's weights at 0/255
// after 2 epochs at lmin 0.1).  Their range is found by scanning the stored
// bytes (exact, no state to keep in step with the weights; the updated rows'
// clamped values never extend the range, so scanning them too changes
// nothing).  A step that updated nothing observes nothing, as before.  When
// the update covered every weight, each stored value is the clamp of a new
// one, so the stored range is the clamped new range: no scan (the same bits).
QT_M0_SMALL int32_t qt_weights_qp_update(uint8_t *w, size_t n, float *wq, const qt_wrange_t *new_range, float tau) {
    float s = wq[QT_QP_SCALE];
    int32_t z = (int32_t)wq[QT_QP_ZERO];
    int32_t qlo = 0, qhi = 255;     // stored extremes (known when something was updated)
    const int32_t nlo = new_range->lo, nhi = new_range->hi;
    if (nlo <= nhi) {
        int32_t lo = nlo < 0 ? 0 : (nlo > 255 ? 255 : nlo);
        int32_t hi = nhi < 0 ? 0 : (nhi > 255 ? 255 : nhi);
        if ((size_t)new_range->n < n) {
            stored_range_u8(w, n, &lo, &hi);
        }
        qlo = lo;
        qhi = hi;
        lo = lo < nlo ? lo : nlo;
        hi = hi > nhi ? hi : nhi;
        qt_qp_observe(wq, s * (float)(lo - z), s * (float)(hi - z));
    }
    qt_qp_update(wq);
    float s2 = wq[QT_QP_SCALE];
    int32_t z2 = (int32_t)wq[QT_QP_ZERO];
    if (s2 == s && z2 == z) {
        return 0;
    }
    float d = s2 / s - 1.0f;
    if (d <= tau && d >= -tau) {
        // Keep the scale; follow the range with the zero point only.
        float zf = -wq[QT_QP_MIN] / s;
        int32_t z3 = zf > 300.0f ? 255 : qt_round_f32(zf);
        z3 = z3 < 0 ? 0 : (z3 > 255 ? 255 : z3);
        // The shift must not clip stored weights (q + z3 - z within 0..255):
        // the range can be up to tau wider than the kept scale's window, and
        // a window anchored at the range's min then cut off its top; the
        // values clipped there were observed as the new max, so the range
        // slid down step after step at a constant width without ever
        // re-scaling (27 % of ConvTranspose 32->16's weights at 0/255 after
        // 2 DSGU epochs).  A range that outgrows the window re-scales instead.
        int32_t dz = z3 - z;
        dz = dz < -qlo ? -qlo : (dz > 255 - qhi ? 255 - qhi : dz);
        z3 = z + dz;
        // The kept window must hold the range (to QT_WRANGE_MARGIN steps at
        // each end).  Weights clipped at both 0 and 255 block the shift, and
        // the observed range exceeds the window by at most one step's
        // overshoot (the clamp eats the rest), less than tau at a small lr:
        // without this test the range stalled at its initial width for
        // whole runs (Conv 16->32 at [-0.206, 0.205], 5-12 % of its weights
        // at 0/255).
        if (!(wq[QT_QP_MAX] > s * ((float)(255 - z3) + QT_WRANGE_MARGIN) ||
              wq[QT_QP_MIN] < s * ((float)(-z3) - QT_WRANGE_MARGIN))) {
            wq[QT_QP_SCALE] = s;
            wq[QT_QP_ZERO] = (float)z3;
            if (z3 != z) {
                qt_remap_u8(w, n, s, z, s, z3);
            }
            return 0;
        }
    }
    remap_dither_u8(w, n, s, z, s2, z2);
    return 1;
}
