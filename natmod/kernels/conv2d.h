// Conv2d kernels (float32 and uint8), batch 1.
//
// Layouts (PyTorch convention):
//   activations and errors  CHW: x[c][y][x], contiguous
//   Conv2d weights          [out_ch][in_ch][k_h][k_w]   (one filter = one
//                           contiguous row of in_ch*k_h*k_w values)
//   biases                  [out_ch]; uint8 mode: int32 with its own scale s_b, zero 0
// Output size: out_h = (in_h + 2 pad_h - k_h) / stride_h + 1 (same for w).
//
// Gradients are produced in the weight layout.  The float32 backward
// accumulates (+=) into gw/gb so a caller can sum a batch; zero them first.
// The uint8 backward hands one filter's int32 gradient at a time to the
// caller-supplied row callback (standardize + update), so batch 1 needs no
// gradient buffer of the layer's size.
//
// A ConvTranspose2d is the transpose of a Conv2d with the same geometry; both
// operators share three loop cores (conv2d_core.h).
#ifndef QT_CONV2D_H
#define QT_CONV2D_H
#include <stdint.h>
#include <stddef.h>
#include "quant.h"
#include "update.h"

// Geometry of one Conv2d or ConvTranspose2d (in = the layer input).
typedef struct {
    int32_t in_ch, in_h, in_w;
    int32_t out_ch, out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
} qt_conv_geom_t;

// What is wrong with a geometry (the binding turns it into a message).
enum {
    QT_CONV_OK = 0,
    QT_CONV_BAD_SIZE,     // a channel count / size / kernel size < 1
    QT_CONV_BAD_STRIDE,   // stride < 1
    QT_CONV_BAD_PAD,      // padding < 0 (or output padding < 0)
    QT_CONV_KERNEL_BIG,   // kernel larger than the padded input (Conv2d)
    QT_CONV_BAD_OUT_PAD,  // output padding >= stride (ConvTranspose2d)
    QT_CONV_EMPTY_OUT,    // output would have no pixels
    QT_CONV_TOO_BIG,      // a size beyond 32767 (keeps int32 index math safe)
};

// Fill g from the layer arguments; out_h/out_w are derived.  Returns QT_CONV_*.
int conv2d_geom_init(qt_conv_geom_t *g, int32_t in_ch, int32_t in_h, int32_t in_w,
    int32_t out_ch, int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w,
    int32_t pad_h, int32_t pad_w);

static inline int32_t qt_conv_in_size(const qt_conv_geom_t *g) {
    return g->in_ch * g->in_h * g->in_w;
}
static inline int32_t qt_conv_out_size(const qt_conv_geom_t *g) {
    return g->out_ch * g->out_h * g->out_w;
}
static inline int32_t qt_conv_w_size(const qt_conv_geom_t *g) {
    return g->out_ch * g->in_ch * g->k_h * g->k_w;
}

// ---- float32 -----------------------------------------------------------------
// y = conv(x, w) + b, optional fused ReLU.  b may be NULL (no bias).
void conv2d_forward_f32(const qt_conv_geom_t *g, const float *x, const float *w,
    const float *b, float *y, int relu);

// e: dL/dy.  If y_relu is not NULL the layer had a fused ReLU: e is zeroed in
// place where y_relu <= 0.  ex (may be NULL: no propagation, e.g. first
// layer) receives dL/dx; gw, gb (may be NULL) accumulate dL/dw, dL/db.
// sel/n_sel: only these output filters contribute (DSGU); sel NULL = all.
void conv2d_backward_f32(const qt_conv_geom_t *g, float *e, const float *y_relu,
    const float *x, const float *w, float *ex, float *gw, float *gb,
    const int32_t *sel, int32_t n_sel);

// ---- uint8 -------------------------------------------------------------------
// Per-call constants, computed once from the float scales (quant.h):
// y = clamp(round(acc * s_w s_in / s_out) + zero_out, lo, 255), lo = zero_out
// with a fused ReLU (the accumulator is then clamped at 0 first, as in Dense).
typedef struct {
    int32_t zero_in;   // zero point of the streamed input (x, or e backward)
    int32_t zero_w;    // zero point of the weights
    int32_t zero_out;  // zero point of the output (y, or e_prev backward)
    qt_fixmul_t out;   // s_w s_in / s_out
    qt_fixmul_t bias;  // s_b / (s_w s_in): bias steps -> accumulator steps
    int32_t relu;      // forward only: fused ReLU
    // Error propagation only, mask-aware (the input x came from a ReLU):
    // mask = x (the output's layout, not overlapping it) or NULL.  Where
    // mask <= zero_mask the receiving ReLU zeroes the error anyway: the
    // value is not computed (zero_out written) and not in the range.
    const uint8_t *mask;
    int32_t zero_mask;
} qt_conv_rq_t;

// Every uint8 call takes `scratch`: 4-byte aligned, conv2d_scratch_len_u8(g)
// bytes (one buffer can serve every call of a layer, or of several layers).

// Forward.  stats[0], stats[1] receive min and max of the int32 accumulator
// (after the ReLU clamp if fused; real = acc * s_w s_x) for range tracking.
void conv2d_forward_u8(const qt_conv_geom_t *g, const uint8_t *x, const uint8_t *w,
    const int32_t *b, uint8_t *y, const qt_conv_rq_t *rq, int32_t *stats, uint8_t *scratch);
int32_t conv2d_scratch_len_u8(const qt_conv_geom_t *g);

// ReLU backward on a uint8 error: e[i] = zero_e where y[i] <= zero_y.
void conv_relu_mask_u8(uint8_t *e, const uint8_t *y, int32_t n, int32_t zero_e, int32_t zero_y);

// DSGU score of each output channel: sum |e - zero_e| over its map (uint32[ch]).
void conv_channel_scores_u8(const uint8_t *e, int32_t ch, int32_t hw, int32_t zero_e,
    uint32_t *scores);

// Both in one pass: the ReLU mask on e (ch maps of hw values) in place, then
// each channel's score of the masked error (same results as the two calls).
void conv_relu_mask_scores_u8(uint8_t *e, const uint8_t *y, int32_t ch, int32_t hw, int32_t zero_e,
    int32_t zero_y, uint32_t *scores);

// Error propagation e (out side) -> ex (in side), through the filters in
// sel (NULL = all).  rq: zero_in = z_e, zero_w = z_w, zero_out = z_ex,
// out = s_w s_e / s_ex, relu 0.  stats: min/max of the int32 accumulator.
void conv2d_backward_input_u8(const qt_conv_geom_t *g, const uint8_t *e, const uint8_t *w,
    uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch);

// Weight gradients.  Prepare once per sample (the input re-sampled per tap,
// in scratch), then per filter o: grow[c][ky][kx] = sum (e_o - z_e)(x - z_x)
// (real: s_e s_x grow; stored, or added if accumulate); returns the bias
// gradient sum (e_o - z_e) (real: s_e *).  The rows end 4*in_ch*k_h*k_w bytes
// plus the cols before conv2d_scratch_len_u8: the caller may put grow there.
uint8_t *conv2d_grad_prepare_u8(const qt_conv_geom_t *g, const uint8_t *x, int32_t zero_x,
    uint8_t *scratch, int32_t **colsum);
// work: 2*align4(out_h*out_w) + 8 bytes of 4-byte aligned scratch.
int32_t conv2d_filter_grad_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *cols, const int32_t *colsum, int32_t zero_x, int32_t o, int32_t *grow,
    int accumulate, uint32_t *work);

// Batch form: gw[o][c][ky][kx] += ..., gb[o] += sum (e_o - z_e) for o in sel
// (NULL = all; gb may be NULL).  int32, weight layout.
void conv2d_grad_acc_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, int32_t *gw, int32_t *gb,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch);

// One SGD step for batch size 1 without a gradient buffer (METHOD 4, per-
// filter standardization, u->per_row must be set): for each filter o in sel
// (NULL = all; ascending, as select_topk gives them) its int32 gradient row
// is formed in scratch and handed to qt_update_rows_u8 with that filter's
// (mu, sigma) state; then the biases of the selected filters (per tensor,
// qt_update_bias_i32).  s_g = s_e s_x, s_gb = s_e, s_b the bias scale (b may
// be NULL).  new_range: what the update saw of the new weights (qt_wrange_t, update.h).  The
// caller then runs qt_weights_qp_update and counts the step in state[0].
void conv2d_update_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint8_t *w, int32_t *b, const int32_t *sel, int32_t n_sel,
    float s_g, float s_gb, float s_b, const qt_update_t *u, float *state, int first,
    qt_wrange_t *new_range, uint8_t *scratch);

// ---- mixed (uint8 forward, float32 errors) ----------------------------------
// e: float dL/dy; y (uint8 forward output, may be NULL) with zero_y = fused
// ReLU: e zeroed in place where y <= zero_y.  ex (may be NULL) = s_w sum
// (w - z_w) e over the selected filters.  Gradients accumulate (+=) in real
// units, weight layout: gw += s_x sum e (x - z_x), gb += sum e.
void conv2d_backward_mixed(const qt_conv_geom_t *g, float *e, const uint8_t *y, int32_t zero_y,
    const uint8_t *w, int32_t zero_w, float s_w, float *ex, const int32_t *sel, int32_t n_sel);
void conv2d_grad_mixed(const qt_conv_geom_t *g, const float *e, const uint8_t *x, int32_t zero_x,
    float s_x, float *gw, float *gb, const int32_t *sel, int32_t n_sel);
// Batch-1 mixed update (per-filter standardization, u->per_row set): each
// selected filter's float gradient row in scratch (4*(in_ch*k_h*k_w + out_ch)
// bytes, 4-aligned), then update_rows_mixed (dense.h) on it; biases per
// tensor; counts the step in state[0].  new_range as conv2d_update_u8.
void conv2d_update_mixed(const qt_conv_geom_t *g, const float *e, const uint8_t *x, int32_t zero_x,
    float s_x, uint8_t *w, int32_t *b, float s_b, const int32_t *sel, int32_t n_sel,
    const qt_update_t *u, float *state, qt_wrange_t *new_range, uint8_t *scratch);

#endif
