// DSGU selection: see select.h.
#include "select.h"
#include "quant.h"

// Dense rows (m >= 128): the M4 counts error values in its table and tests
// four rows a step (below); x64 compiles the same C (the M4's scalar tails)
// so the host tests it too.  The other ARM archs keep the table of scores
// (armv6m: the Pico's heap has no room for more code; branch dsel has an M0
// version).
#if (defined(QT_HAVE_DSP) && QT_HAVE_DSP) || !defined(__arm__)
#define QT_SEL_VALUES 1
#else
#define QT_SEL_VALUES 0
#endif
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
#include "conv2d_core.h"   // ld32u, st32u
#endif

// Scores below this are counted in a table (when n >= it: the scratch holds it).
#define QT_TOPK_BINS 256

// k-th largest (1-based) of a[0..n) by quickselect (Hoare-style partition with
// a median-of-three pivot); reorders a.
static uint32_t kth_largest(uint32_t *a, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    int32_t want = k - 1;                 // index in descending order
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        uint32_t x = a[lo], y = a[mid], z = a[hi];
        uint32_t piv = (x > y) ? ((y > z) ? y : (x > z ? z : x)) : ((x > z) ? x : (y > z ? z : y));
        int32_t i = lo, j = hi;
        while (i <= j) {                  // descending: big values to the left
            while (a[i] > piv) {
                i++;
            }
            while (a[j] < piv) {
                j--;
            }
            if (i <= j) {
                uint32_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j) {
            hi = j;
        } else if (want >= i) {
            lo = i;
        } else {
            return a[want];
        }
    }
    return a[want];
}

// The top-k threshold from a counting table cnt[0..top]: the largest thr
// with at least k scores >= thr; *above = how many are > thr (k <= their
// total: stops at 0 at the latest).  The k chosen are every score > thr and
// the first k - *above equal to it, in index order.
static uint32_t topk_threshold_from_counts(const uint32_t *cnt, uint32_t top, int32_t k, int32_t *above) {
    uint32_t thr = top;
    int32_t n = 0;
    while ((int32_t)(n + cnt[thr]) < k) {
        n += (int32_t)cnt[thr];
        thr--;
    }
    *above = n;
    return thr;
}

void select_topk_u32(const uint32_t *score, int32_t n, int32_t k, int32_t *idx, uint32_t *scratch) {
    if (k >= n) {
        for (int32_t i = 0; i < n; i++) {
            idx[i] = i;
        }
        return;
    }
    uint32_t thr, smax = 0;
    int32_t above = 0;
    for (int32_t i = 0; i < n; i++) {
        smax = score[i] > smax ? score[i] : smax;
    }
    if (smax < QT_TOPK_BINS && n >= QT_TOPK_BINS) {
        // Small scores (a Dense error's |e - z_e| <= 255) and room for a
        // counting table: the threshold from a histogram, two passes in all
        // (quickselect on 1568 rows was ~116 k instructions on the M0).
        uint32_t *cnt = scratch;
        qt_fill_i32((int32_t *)cnt, smax + 1u, 0);    // (a loop here became a memset call)
        for (int32_t i = 0; i < n; i++) {
            cnt[score[i]]++;
        }
        thr = topk_threshold_from_counts(cnt, smax, k, &above);
    } else {
        for (int32_t i = 0; i < n; i++) {
            scratch[i] = score[i];
        }
        thr = kth_largest(scratch, n, k);
        for (int32_t i = 0; i < n; i++) {
            above += score[i] > thr;
        }
    }
    int32_t ties = k - above, t = 0;
    for (int32_t i = 0; i < n; i++) {
        uint32_t s = score[i];
        if (s > thr || (s == thr && ties-- > 0)) {
            idx[t++] = i;
        }
    }
}

#if QT_SEL_VALUES
// ---- Dense rows (m >= 128): a counting table of the error values ----------
//
// Row i's score is |e_i - z_e| (< 256).  The first pass applies the ReLU
// mask and counts each kept row's error value v = e_i in cnt[v] (the
// value, not the score: no |.| per row on the M4, whose USADA8 gives the
// sum four rows at a time); the threshold walks the scores down, a score s
// being the values z_e + s and z_e - s.  A masked row (score 0) need not be
// counted: the walk never reads score 0's count (it stops at 0 at the
// latest, where the m >= k rows scoring >= 0 cover the rest).  The choice
// pass then tests each row against the threshold's two values only, and
// stops at the k-th row taken.

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// The four values of v counted (a table increment each: a load, an add and
// a store; UXTB's free rotation takes the byte).
static inline void count4(uint32_t *cnt, uint32_t v) {
    cnt[v & 0xffu]++;
    cnt[(v >> 8) & 0xffu]++;
    cnt[(v >> 16) & 0xffu]++;
    cnt[v >> 24]++;
}
#endif

// First pass: the mask (none where z_y = -1, y = e: dense_select_rows_u8's
// convention), the counts; returns sum |e_i - z_e|.
static uint32_t mask_count_rows(uint8_t *e, const uint8_t *y, int32_t m, int32_t zero_e, int32_t zero_y,
    uint32_t *cnt) {
    uint32_t sum = 0;
    int32_t i = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Four rows a step: USUB8/SEL for the mask, USADA8 for the sum (a masked
    // row is z_e: counted in cnt[z_e], which the walk never reads).
    const uint32_t ze4 = (uint32_t)zero_e * 0x01010101u, zy4 = (uint32_t)zero_y * 0x01010101u;
    for (; i + 4 <= m; i += 4) {
        uint32_t v = ld32u(e + i);
        if (zero_y >= 0) {
            v = relu_mask4(v, ld32u(y + i), ze4, zy4);   // the ReLU's mask (conv2d_core.h)
            st32u(e + i, v);
        }
        sum = __usada8(v, ze4, sum);
        count4(cnt, v);
    }
#endif
    for (; i < m; i++) {
        if (y[i] <= zero_y) {
            e[i] = (uint8_t)zero_e;
            continue;
        }
        const int32_t v = e[i], d = v - zero_e;
        cnt[v]++;
        sum += (uint32_t)(d < 0 ? -d : d);
    }
    return sum;
}

// The top-k threshold from the value counts: the largest thr with at least
// k rows scoring >= thr (0 at the latest); *above = how many score > thr.
static uint32_t topk_threshold_values(const uint32_t *cnt, int32_t zero_e, int32_t k, int32_t *above) {
    int32_t thr = zero_e > 255 - zero_e ? zero_e : 255 - zero_e, n = 0;
    for (; thr > 0; thr--) {
        int32_t c = (zero_e + thr <= 255 ? (int32_t)cnt[zero_e + thr] : 0)
                    + (zero_e >= thr ? (int32_t)cnt[zero_e - thr] : 0);
        if (n + c >= k) {
            break;
        }
        n += c;
    }
    *above = n;
    return (uint32_t)thr;
}

// A row scores >= thr where (uint32_t)(v - lo1) >= width, lo1 = z_e - thr + 1,
// width = 2 thr - 1 (thr 0: width 0, every row): one compare per row.  On
// the M4 four rows a step: UQSUB8 (v - h1) is nonzero in a lane where
// v >= z_e + thr (h1 = z_e + thr - 1), UQSUB8 (l1 - v) where v <= z_e - thr
// (l1 = z_e - thr + 1); each clamped to 0..255, which keeps the test exact
// (a bound past 255 or below 0 takes no lane; thr 0 takes every lane).
typedef struct {
    int32_t lo1;
    uint32_t width;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    uint32_t h1, l1;
#endif
} qt_row_test_t;

// The test of rows scoring >= thr (thr <= 256).
static void row_test_init(qt_row_test_t *q, int32_t zero_e, uint32_t thr) {
    q->lo1 = zero_e - (int32_t)thr + 1;
    q->width = thr ? 2u * thr - 1u : 0u;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    const int32_t h1 = zero_e + (int32_t)thr - 1, l1 = q->lo1;
    q->h1 = (uint32_t)(h1 > 255 ? 255 : (h1 < 0 ? 0 : h1)) * 0x01010101u;
    q->l1 = (uint32_t)(l1 > 255 ? 255 : (l1 < 0 ? 0 : l1)) * 0x01010101u;
#endif
}

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// The M4's scan from row i (while i <= m - 4): to label 3 with a's nonzero
// lanes the rows of the four from i that score >= thr, to 9 when no four
// rows are left.  9 instructions per four rows.
#define QT_SEL_SCAN4 \
    "1: ldr %[v], [%[e], %[i]]\n\t" \
    "uqsub8 %[a], %[v], %[h1]\n\t" \
    "uqsub8 %[v], %[l1], %[v]\n\t" \
    "orrs %[a], %[a], %[v]\n\t" \
    "bne 3f\n" \
    "2: adds %[i], %[i], #4\n\t" \
    "cmp %[i], %[last]\n\t" \
    "ble 1b\n\t" \
    "b 9f\n"
#endif

// Every row from i on that scores >= thr, in order, into idx until n are
// taken (there are at least n).
static void take_rows(const uint8_t *e, int32_t i, int32_t m, const qt_row_test_t *q, int32_t *idx, int32_t n) {
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // Each row of a four with lanes set taken in turn: the lowest lane from
    // RBIT/CLZ, then the lanes up to it shifted out of a.
    if (n > 0 && i + 4 <= m) {
        uint32_t a, v, r;
        __asm__ volatile (
            QT_SEL_SCAN4
            "3: rbit %[v], %[a]\n\t"
            "clz %[v], %[v]\n\t"
            "add %[r], %[i], %[v], lsr #3\n\t"
            "str %[r], [%[idx]], #4\n\t"
            "subs %[n], %[n], #1\n\t"
            "beq 9f\n\t"
            "bic %[v], %[v], #7\n\t"
            "adds %[v], %[v], #8\n\t"
            "lsrs %[a], %[a], %[v]\n\t"   // (by 32: 0)
            "lsls %[a], %[a], %[v]\n\t"
            "bne 3b\n\t"
            "b 2b\n"
            "9:"
            : [i] "+r" (i), [a] "=&r" (a), [v] "=&r" (v), [r] "=&r" (r), [idx] "+r" (idx), [n] "+r" (n)
            : [e] "r" (e), [last] "r" (m - 4), [h1] "r" (q->h1), [l1] "r" (q->l1)
            : "cc", "memory");
    }
#endif
    for (; n > 0 && i < m; i++) {
        if ((uint32_t)((int32_t)e[i] - q->lo1) >= q->width) {
            *idx++ = i;
            n--;
        }
    }
}

// Second pass: every row scoring > thr and the first `ties` scoring thr, in
// index order (as select_topk_u32 chooses), until the k-th.  Until the last
// tie every row scoring >= thr is taken, one at a time (a tie counted);
// then the test moves to thr + 1 and every row it finds is taken.
static void choose_rows(const uint8_t *e, int32_t m, int32_t zero_e, uint32_t thr, int32_t ties, int32_t k,
    int32_t *idx) {
    qt_row_test_t q;
    int32_t t = 0, i = 0;
    if (ties > 0) {
        row_test_init(&q, zero_e, thr);
        while (ties > 0) {   // (k - t >= ties rows left)
            idx[t] = m;
            take_rows(e, i, m, &q, idx + t, 1);   // (one at a time: take_rows's scan, no copy of it)
            i = idx[t++];
            if (i >= m) {   // (not reached)
                return;
            }
            const int32_t d = (int32_t)e[i++] - zero_e;
            ties -= d == (int32_t)thr || -d == (int32_t)thr;
        }
    }
    row_test_init(&q, zero_e, thr + 1u);
    take_rows(e, i, m, &q, idx + t, k - t);
}

#endif  // QT_SEL_VALUES

// Row i's score |e_i - z_e| after the ReLU mask: e_i = z_e (score 0) where
// y_i <= z_y (z_y = -1: never).
static inline uint32_t row_score(uint8_t *e, const uint8_t *y, int32_t i, int32_t zero_e, int32_t zero_y) {
    if (y[i] <= zero_y) {
        e[i] = (uint8_t)zero_e;
        return 0;
    }
    const int32_t c = (int32_t)e[i] - zero_e;
    return (uint32_t)(c < 0 ? -c : c);
}

int32_t dense_select_rows_u8(uint8_t *e, int32_t m, int32_t zero_e, float s_e, float *ebar_max,
    float lmin, float lmax, int32_t *idx, uint32_t *scratch, const uint8_t *y, int32_t zero_y) {
    uint32_t sum = 0;
    int32_t k;
    if (!y) {   // no mask: e as its own y, below every zero point
        y = e;
        zero_y = -1;
    }
    if (2 * m < QT_TOPK_BINS) {   // no room for the table: the scores, then select_topk_u32
        for (int32_t i = 0; i < m; i++) {
            scratch[i] = row_score(e, y, i, zero_e, zero_y);
            sum += scratch[i];
        }
        k = dsgu_k((float)sum / (float)m * s_e, ebar_max, lmin, lmax, m);
        select_topk_u32(scratch, m, k, idx, scratch + m);
        return k;
    }
    // A row's score |e_i - z_e| is < 256: a counting table, two passes in
    // all (the second reads the error again for the choice), same threshold
    // and ties as select_topk_u32.  The ReLU mask in the first pass.
    uint32_t *cnt = scratch;
    qt_fill_i32((int32_t *)cnt, QT_TOPK_BINS, 0);
#if QT_SEL_VALUES
    // The M4 and x64: the table of error values (above), the second pass
    // over the rows up to the k-th taken.
    sum = mask_count_rows(e, y, m, zero_e, zero_y, cnt);
#else
    // The table of scores, counted as they are computed (four passes over
    // a score array before, ~45 instructions per row on the M0; a test per
    // row to share one loop with the path above cost ~4; a mask pass of its
    // own ~12).  Masked rows (score 0) counted apart: they skip the table.
    uint32_t zeros = 0;
    for (int32_t i = 0; i < m; i++) {
        if (y[i] <= zero_y) {
            e[i] = (uint8_t)zero_e;
            zeros++;
            continue;
        }
        const int32_t c = (int32_t)e[i] - zero_e;
        const uint32_t a = (uint32_t)(c < 0 ? -c : c);
        cnt[a]++;
        sum += a;
    }
    cnt[0] += zeros;
#endif
    k = dsgu_k((float)sum / (float)m * s_e, ebar_max, lmin, lmax, m);
    if (k == m) {   // every row (lmin 1, or lmax 1 at the largest error): no choice to make
        for (int32_t i = 0; i < m; i++) {
            idx[i] = i;
        }
        return k;
    }
    int32_t above;
#if QT_SEL_VALUES
    const uint32_t thr = topk_threshold_values(cnt, zero_e, k, &above);
    choose_rows(e, m, zero_e, thr, k - above, k, idx);
#else
    const uint32_t thr = topk_threshold_from_counts(cnt, QT_TOPK_BINS - 1, k, &above);
    int32_t ties = k - above, t = 0;
    for (int32_t i = 0; i < m; i++) {
        const int32_t c = (int32_t)e[i] - zero_e;
        const uint32_t a = (uint32_t)(c < 0 ? -c : c);
        if (a > thr || (a == thr && ties-- > 0)) {
            idx[t++] = i;
        }
    }
#endif
    return k;
}

int32_t dsgu_k(float ebar, float *ebar_max, float lmin, float lmax, int32_t n) {
    // Decay before the max: an all-time max is set by the first samples'
    // large errors, so r (and k) shrank all through training and starved
    // the layers of updates (the DSGU collapse in docs/BENCHMARKS.md).
    float m = *ebar_max * QT_DSGU_EBAR_MAX_DECAY;
    *ebar_max = ebar > m ? ebar : m;
    float r = *ebar_max > 0.0f ? ebar / *ebar_max : 0.0f;
    r = r < 0.0f ? 0.0f : (r > 1.0f ? 1.0f : r);
    float frac = lmin + r * (lmax - lmin);
    int32_t k = qt_floor_f32(frac * (float)n);
    return k < 1 ? 1 : (k > n ? n : k);
}
