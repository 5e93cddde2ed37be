// Dynamic sparse gradient updates (METHOD 5): how many structures, and which.
// Generic over the structure (Dense row, Conv filter): callers pass one uint32
// score per structure (sum |e - z_e| over the structure).
#ifndef QT_SELECT_H
#define QT_SELECT_H
#include <stdint.h>

// The k indices with the largest scores, in ascending index order; ties at
// the threshold go to the lower index (so the choice is deterministic and the
// golden model can reproduce it).  O(n): the k-th largest score from a
// counting table when every score is < 256 and n >= 256 (Dense rows), else
// by quickselect (expected O(n)) on a scratch copy (uint32[n]); then one
// pass.  1 <= k <= n.
void select_topk_u32(const uint32_t *score, int32_t n, int32_t k, int32_t *idx, uint32_t *scratch);

// Dense DSGU (dense_select_u8): scores |e_i - z_e| of the m rows' errors,
// ebar = sum / m * s_e, k = dsgu_k(ebar, ...), the top k rows into idx as
// select_topk_u32 chooses them; returns k.  scratch: uint32[2m].  y (NULL:
// none): a ReLU layer's output, its mask applied to e in place first (e_i =
// z_e where y_i <= z_y), in the scores' pass.
int32_t dense_select_rows_u8(uint8_t *e, int32_t m, int32_t zero_e, float s_e, float *ebar_max,
    float lmin, float lmax, int32_t *idx, uint32_t *scratch, const uint8_t *y, int32_t zero_y);

// k = max(floor((lmin + r (lmax - lmin)) n), 1), r = clip(ebar / ebar_max, 0, 1),
// where ebar_max is a decaying running max of ebar: *ebar_max =
// max(ebar, *ebar_max * QT_DSGU_EBAR_MAX_DECAY), updated first; 0 initially.
// It forgets a peak over ~1/(1 - decay) = 1024 calls (samples), so r follows
// the error as it falls during training instead of shrinking against the
// first samples' errors.  Float ops mirrored by the golden model.
#define QT_DSGU_EBAR_MAX_DECAY 0.9990234375f  // 1 - 2^-10, exact in float32
int32_t dsgu_k(float ebar, float *ebar_max, float lmin, float lmax, int32_t n);

#endif
