// DSGU selection: see select.h.
#include "select.h"
#include "quant.h"

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
    // A row's score |e_i - z_e| is < 256: counted into the table as it is
    // computed, and the error read again for the choice, two passes in all
    // (four over a score array before, ~45 instructions per row on the M0;
    // a test per row to share one loop with the path above cost ~4).  Same
    // threshold and ties as select_topk_u32.  The ReLU mask in the first
    // pass (a pass of its own was ~12 instructions per row on the M0).
    // (Masked rows, score 0, counted apart: they skip the table's update.)
    uint32_t *cnt = scratch;
    qt_fill_i32((int32_t *)cnt, QT_TOPK_BINS, 0);
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
    k = dsgu_k((float)sum / (float)m * s_e, ebar_max, lmin, lmax, m);
    if (k == m) {   // every row (lmin 1, or lmax 1 at the largest error): no choice to make
        for (int32_t i = 0; i < m; i++) {
            idx[i] = i;
        }
        return k;
    }
    int32_t above;
    const uint32_t thr = topk_threshold_from_counts(cnt, QT_TOPK_BINS - 1, k, &above);
    int32_t ties = k - above, t = 0;
    for (int32_t i = 0; i < m; i++) {
        const int32_t c = (int32_t)e[i] - zero_e;
        const uint32_t a = (uint32_t)(c < 0 ? -c : c);
        if (a > thr || (a == thr && ties-- > 0)) {
            idx[t++] = i;
        }
    }
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
