// Weight/bias update with gradient standardization (METHOD 4), uint8 weights.
//
//   w_new = (1/s_w) [ (w - z_w) s_w - lr (g - mu_g) / sigma_g ] + z_w
// computed in weight steps: w_new = w + R(-lr/(s_w sigma_g) (g - mu_g)), R the
// rounding (nearest / floor / stochastic / stochastic per row), then clamped.  The stored
// s_w, z_w are kept during the update; the exact real range of the new values
// (before clamping) is recorded in the weights' qparams, and
// qt_weights_qp_update() then moves s_w, z_w (moving average alpha_w) and
// re-maps the stored weights when the scale moved by more than `tau`.
//
// Standardization: per tensor, or per structure (Dense row / Conv filter);
// mu and sigma are smoothed over steps: m_s = (1 - alpha_norm) m_s + alpha_norm m
// (alpha_norm = weight of the new statistics; 1 = no smoothing; the first
// step takes the new statistics as they are).  Biases are always standardized
// per tensor (a structure has one bias: its sigma would be 0), by their RMS.
// Guard: where the smoothed sigma is not > 0 the structure is not updated
// (its gradient is constant, so the standardized gradient is 0/0).
// Structures with an all-zero gradient (not selected by DSGU, or no error)
// are treated as unselected: no statistics, no update.
//
// State (array('f', QT_STD_STATE_LEN(rows))):
//   [0] steps so far, [1] mu (tensor), [2] sigma (tensor), [3] mu bias,
//   [4] sigma bias, then (mu_i, sigma_i) per structure.
#ifndef QT_UPDATE_H
#define QT_UPDATE_H
#include <stdint.h>
#include "quant.h"

#define QT_STD_STATE_HDR (5)
#define QT_STD_STATE_LEN(rows) (QT_STD_STATE_HDR + 2 * (rows))

enum {
    QT_ROUND_NEAREST = 0,
    QT_ROUND_FLOOR = 1,
    // Stochastic per weight: one xorshift32 draw per two weights of a row,
    // its high 16 bits for the even weight, its low 16 bits for the odd one
    // (half the PRNG work of a draw per weight, same 16-bit resolution).
    QT_ROUND_STOCHASTIC = 2,
    // Stochastic with one random offset per structure (row/filter) and step,
    // shared by its weights: still unbiased for every weight (the offset is
    // uniform), but the per-weight loop is the deterministic one (no PRNG
    // step per weight).  Biases draw one offset each.
    QT_ROUND_STOCH_ROW = 3,
};
// flags: bits 0-1 rounding, bit 2 per-structure standardization, bit 4
// (uint8 updates) weights standardized by their RMS, mean 0, as the biases.
#define QT_UPD_ROUND_MASK (3)
#define QT_UPD_PER_ROW (4)
#define QT_UPD_RMS (16)

typedef struct {
    float lr;
    float alpha_norm;
    float s_w;
    int32_t zw;
    int32_t rounding;
    int32_t per_row;
    uint32_t *rng;      // xorshift32 state (stochastic rounding)
    int32_t rms;        // QT_UPD_RMS: sigma = sqrt(mean g^2), mu = 0 (last: soak_sanitize_cases' ctypes copy)
} qt_update_t;

// The rounding offset in 1/65536 of a step: floor(v + r/65536) rounds v
// to nearest (r = 32768), down (0) or stochastically (r uniform).
static inline int32_t qt_round_offset(const qt_update_t *u) {
    if (u->rounding >= QT_ROUND_STOCHASTIC) {
        return (int32_t)(qt_rng_next(u->rng) >> 16);
    }
    return u->rounding == QT_ROUND_NEAREST ? 32768 : 0;
}

// What an update saw of its new weights: the exact min/max of the new values
// in weight steps (before clamping; lo > hi: nothing was updated) and how many
// weights they are.  When that is every weight of the tensor, the stored
// range is [clamp(lo), clamp(hi)] and qt_weights_qp_update needs no scan.
typedef struct {
    int32_t lo, hi;
    int32_t n;
} qt_wrange_t;

static inline void qt_wrange_init(qt_wrange_t *r) {
    r->lo = INT32_MAX;
    r->hi = INT32_MIN;
    r->n = 0;
}

static inline void qt_wrange_merge(qt_wrange_t *acc, const qt_wrange_t *r) {
    acc->lo = r->lo < acc->lo ? r->lo : acc->lo;
    acc->hi = r->hi > acc->hi ? r->hi : acc->hi;
    acc->n += r->n;
}

// 1 if rows (a selection of k structures; NULL = all) names each structure
// at most once, i.e. is strictly ascending as select_topk writes it.  A
// caller's list may repeat a row; the weights an update covered are then
// fewer than its count says, so the count is not used (n = 0).
int qt_rows_distinct(const int32_t *rows, int32_t k);

// Smooth (mu, sigma) into state[0..1] (first: take as is); returns nothing.
void qt_std_blend(float *st, float mu, float sig, float alpha, int first);

// The bias rule of every mode: biases are standardized per tensor by their
// RMS over the nz biases with a gradient (sq = their sum of squares in steps
// of s), mean 0, not by their spread around the mean: over DSGU's few
// selected structures (k = 1, 2) the centred form froze a lone bias (spread
// 0: the sigma guard) and gave two +-lr whatever their gradients' signs
// (KERNELS.md, "DSGU at k = 1").  Blends (0, s sqrt(sq / nz)) into
// state[3..4] and returns the smoothed sigma (not > 0: no update).  Always
// inlined: its three callers keep the code they had (-Os on the M0 made it
// a call).
__attribute__((always_inline)) static inline float qt_bias_rms_sigma(float *state, float sq, int32_t nz, float s, float alpha_norm, int first) {
    qt_std_blend(state + 3, 0.0f, s * qt_sqrt_f32(sq / (float)nz), alpha_norm, first);
    return state[4];
}

// Bias update (per tensor): b_i += R(-lr/(s_b sig) (s_g gb_i - mu)) for the
// structures i with gb_i != 0 (rows: the candidates, or NULL for all).
// The bias gradient in steps of s_g is gb_i (int32 buffer), or, if gb is NULL,
// e_i - ze (a uint8 error tensor: the batch-1 case, no buffer).
void qt_update_bias_i32(int32_t *b, const int32_t *gb, const uint8_t *e, int32_t ze,
    int32_t rows_total, const int32_t *rows, int32_t k, float s_g, float s_b,
    const qt_update_t *u, float *state, int first);

// Update from an int32 gradient buffer g[rows_total*len] (real = s_g * g),
// one row per structure, then zero g.  Rows with an all-zero gradient are
// skipped.  Integer per weight: statistics from exact integer sums (one float
// conversion per row), then w += (r + B - round(K g)) >> 16 in Q16 fixed
// point with g rounded to 15 bits per row (per tensor when standardizing per
// tensor) and K to a 16-bit mantissa, so K g is one 32-bit multiply (see
// update.c for the exact definition the golden model mirrors).  new_range: what
// the update saw of the new values (qt_wrange_t).
void qt_update_rows_u8(uint8_t *w, int32_t *g, int32_t rows_total, int32_t len, float s_g,
    const qt_update_t *u, float *state, int first, qt_wrange_t *new_range);

// After an update: record the range of all n weights in wq (the new values
// of new_range, and the stored values of the weights it does not cover),
// apply the moving average (alpha in wq[4]) and, if the scale moved by more
// than tau (relative) or the kept window (s, shifted z) would not hold the
// tracked range to QT_WRANGE_MARGIN steps at each end (a hysteresis, see
// update.c), re-map the n stored weights to the new (s, z) with dithered
// rounding (unbiased: a small re-scale moves no weight with nearest rounding
// and so scaled every real weight by s2 / s); else keep s and only shift z
// (lossless but for clamping).
// Returns 1 if re-scaled.
int32_t qt_weights_qp_update(uint8_t *w, size_t n, float *wq, const qt_wrange_t *new_range, float tau);

#endif
