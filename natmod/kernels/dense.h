// Dense (fully connected, "Gemm") kernels, uint8 affine-quantized.
//
// Shapes: x[n] (input), w[m*n] row-major (row i = output i), y[m], b[m] int32.
// real(q) = s * (q - z) for every uint8 tensor; bias real = s_b * b (z = 0).
// Plain C99, no MicroPython headers.  See docs/KERNELS.md for the Python API.
#ifndef QT_DENSE_H
#define QT_DENSE_H
#include <stdint.h>
#include "quant.h"
#include "update.h"

// Largest n (inputs per row): keeps every int32 sum of n products of uint8
// values (<= 255*255*n) inside int32.
#define QT_DENSE_MAX_N (32767)
// Largest m (rows): the same bound for the transposed sums of backward.
#define QT_DENSE_MAX_M (32767)

// Per-call constants of a forward pass, computed once from the float scales.
typedef struct {
    int32_t zx, zw, zy;
    qt_fixmul_t out;    // s_w * s_x / s_y: int32 accumulator -> y steps
    qt_fixmul_t bias;   // s_b / (s_w * s_x): bias steps -> accumulator steps
    int32_t relu;       // 1: fused ReLU, y clamped below at zy
} qt_dense_fwd_t;

// y_i = clamp(round(acc_i * s_w s_x / s_y) + z_y), with
// acc_i = sum_j (w_ij - z_w)(x_j - z_x) + round(b_i * s_b / (s_w s_x)).
// acc_range[0..1] receives the exact min/max of acc_i (after ReLU if fused),
// so the caller can record the real range (acc * s_w * s_x) without a float
// copy of y.  b may be NULL.
// xs: optional scratch int32[QT_XS_LEN(n)] (NULL: none).  With it, x - z_x is
// unpacked once per call (in an arch-specific layout) instead of once per
// row, and the row sums are not needed: the fast path (two rows per pass).
#define QT_XS_LEN(n) (((n) + 3) & ~3)
void dense_forward_u8(const uint8_t *x, const uint8_t *w, const int32_t *b, uint8_t *y,
    int32_t m, int32_t n, const qt_dense_fwd_t *q, int32_t acc_range[2], int32_t *xs);

// sum_j w[j] * x[j] (uint8 * uint8) and sum_j w[j], n <= QT_DENSE_MAX_N.
// The hot loop of forward; integer only (SMLAD/UXTB16/USADA8 on Cortex-M4).
uint32_t qt_dot_u8(const uint8_t *w, const uint8_t *x, int32_t n, uint32_t *wsum);

#endif

// ---- backward ---------------------------------------------------------------

// Error propagated to the input (the transposed product):
//   ep_j = clamp(round(s_w s_e / s_ep * sum_{i in rows} (w_ij - z_w)(e_i - z_e)) + z_ep)
// rows: the k row indices that propagate error (DSGU), or NULL for all m rows.
// acc: int32[n] scratch.  acc_range[0..1]: exact min/max of the int32 sums.
// mask (x, NULL = none; not overlapping ep), zm: mask-aware as the conv
// cores (conv2d.h, qt_conv_rq_t): where x <= zm, ep = z_ep is not computed
// and stays out of acc_range.
typedef struct {
    int32_t ze, zw, zep;
    qt_fixmul_t out;    // s_w * s_e / s_ep
    const uint8_t *mask;
    int32_t zm;
} qt_dense_bwd_t;

void dense_backward_u8(const uint8_t *e, const uint8_t *w, uint8_t *ep, int32_t m, int32_t n,
    const int32_t *rows, int32_t k, const qt_dense_bwd_t *q, int32_t *acc, int32_t acc_range[2]);

// ReLU backward, in place: e_i = z_e where the forward output was clamped
// (y_i <= z_y).  Returns the number of errors zeroed.
int32_t relu_backward_u8(uint8_t *e, const uint8_t *y, int32_t n, int32_t ze, int32_t zy);

// ---- update, batch size 1 (no gradient buffer) ------------------------------

// The gradient of a sample is the outer product g_ij = s_e s_x (e_i - z_e)(x_j - z_x):
// its statistics follow from sums of e, e^2, x, x^2 and each row's update is
// w_ij += R(-(A_i (x_j - z_x) - B_i) / 2^16) with two per-row fixed-point
// constants, so the inner loop is integer only.  Rows: the k selected rows
// (DSGU) or NULL for all; rows with e_i == z_e get no update.
// b (int32, real s_b * b) may be NULL.  See update.h for state and options.
typedef struct {
    int32_t ze, zx;
    float s_e, s_x, s_b;
} qt_dense_upd_t;

void dense_update_u8(const uint8_t *e, const uint8_t *x, uint8_t *w, int32_t *b, int32_t m, int32_t n,
    const int32_t *rows, int32_t k, const qt_dense_upd_t *d, const qt_update_t *u, float *state,
    qt_wrange_t *new_range);

// The row loops of the batch-1 update (shared with the mixed mode):
// v_j = w_j + ((rb [+ r_j] - A x_j) >> 16) clamped to 0..255, the exact min/max
// of v merged into [*lo, *hi] (*lo > *hi: empty).  Stochastic: r_j = top 16
// bits of the next xorshift32 output of *rng.
void dense_update_row_det_u8(uint8_t *wr, const uint8_t *x, int32_t n, int32_t A, int32_t rb,
    int32_t *lo, int32_t *hi);
void dense_update_row_stoch_u8(uint8_t *wr, const uint8_t *x, int32_t n, int32_t A, int32_t rb,
    uint32_t *rng, int32_t *lo, int32_t *hi);

// Batch > 1: g[i*n + j] += (e_i - z_e)(x_j - z_x), gb[i] += e_i - z_e for the
// selected rows (int32 buffers; the caller keeps e's and x's scales fixed over
// the batch and updates with qt_update_rows_u8 / qt_update_bias_i32).
void dense_grad_acc_u8(const uint8_t *e, const uint8_t *x, int32_t *g, int32_t *gb, int32_t m,
    int32_t n, const int32_t *rows, int32_t k, int32_t ze, int32_t zx);

// ---- float32 reference and mixed (uint8 forward, float32 errors) ------------
// Same shapes; float tensors are plain float arrays (no qparams).  Updates use
// the same standardization options and state layout as the uint8 path (plus
// QT_UPD_PLAIN: plain SGD, w -= lr g, for the float32 reference).
#define QT_UPD_PLAIN (8)

void dense_forward_f32(const float *x, const float *w, const float *b, float *y, int32_t m, int32_t n,
    int32_t relu);
// ep_j = sum_{i in rows} e_i w_ij
void dense_backward_f32(const float *e, const float *w, float *ep, int32_t m, int32_t n,
    const int32_t *rows, int32_t k);
// mixed: ep_j = s_w sum_{i in rows} e_i (w_ij - z_w), w uint8
void dense_backward_mixed(const float *e, const uint8_t *w, int32_t zw, float s_w, float *ep, int32_t m,
    int32_t n, const int32_t *rows, int32_t k);
// e_i = 0 where y_i <= 0 (float) / y_i <= z_y (uint8); returns the count zeroed.
int32_t relu_backward_f32(float *e, const float *y, int32_t n);
int32_t relu_backward_mixed(float *e, const uint8_t *y, int32_t n, int32_t zy);
// Batch-1 update from e x^T (rows with e_i == 0 are skipped, like uint8).
void dense_update_f32(const float *e, const float *x, float *w, float *b, int32_t m, int32_t n,
    const int32_t *rows, int32_t k, const qt_update_t *u, int32_t plain, float *state);
// mixed: float e, uint8 x (s_x, z_x) and uint8 w (u->s_w, u->zw), int32 b (s_b):
// the uint8 integer row loops with per-row constants from the float error.
void dense_update_mixed(const float *e, const uint8_t *x, int32_t zx, float s_x, uint8_t *w, int32_t *b,
    float s_b, int32_t m, int32_t n, const int32_t *rows, int32_t k, const qt_update_t *u, float *state,
    qt_wrange_t *new_range);
// Batch > 1: g += e x^T, gb += e (float buffers); update_rows_f32 applies and zeroes.
void dense_grad_acc_f32(const float *e, const float *x, float *g, float *gb, int32_t m, int32_t n,
    const int32_t *rows, int32_t k);
void update_rows_f32(float *w, float *g, float *b, float *gb, int32_t rows_total, int32_t len,
    const qt_update_t *u, int32_t plain, float *state);
// A float bias vector alone, b -= lr gb / RMS(gb) over the entries with
// gb != 0 (statistics in state[3..4], steps counted in state[0]; plain:
// lr gb); zeroes gb.  For biases whose weights are not rows of one per
// structure (float32 ConvTranspose2d: its rows are in_ch slabs).
void bias_update_f32(float *b, float *gb, int32_t n, const qt_update_t *u, int32_t plain, float *state);
// Mixed, batch > 1: g (float, real units) += e_i s_x (x_j - z_x), gb += e;
// update_rows_mixed applies them to uint8 w / int32 b (steps of s_b) like the
// uint8 batch path (rounding, range tracking) and zeroes g, gb.
void dense_grad_acc_mixed(const float *e, const uint8_t *x, int32_t zx, float s_x, float *g, float *gb,
    int32_t m, int32_t n, const int32_t *rows, int32_t k);
void update_rows_mixed(uint8_t *w, float *g, int32_t *b, float *gb, float s_b, int32_t rows_total,
    int32_t len, const qt_update_t *u, float *state, qt_wrange_t *new_range);
