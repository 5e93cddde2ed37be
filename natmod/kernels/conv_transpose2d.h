// ConvTranspose2d kernels (float32 and uint8), batch 1.
//
// Layouts (PyTorch convention):
//   activations and errors  CHW
//   weights                 [in_ch][out_ch][k_h][k_w]
//   biases                  [out_ch]
// Output size: out_h = (in_h - 1) stride_h - 2 pad_h + k_h + out_pad_h, with
// 0 <= out_pad < stride (the extra rows/cols at the bottom/right that let a
// stride-2 layer exactly invert a Conv2d, e.g. 7 -> 14 with k 3, pad 1, op 1).
// A "filter" (DSGU structure, per-filter standardization) is one output
// channel co: the in_ch*k_h*k_w weights w[:, co, :, :] (strided in memory).
//
// ConvTranspose2d forward is Conv2d's error propagation and vice versa: both
// share conv2d_core.h.  Geometry: qt_conv_geom_t from conv2d.h.
#ifndef QT_CONV_TRANSPOSE2D_H
#define QT_CONV_TRANSPOSE2D_H
#include "conv2d.h"

int conv_transpose2d_geom_init(qt_conv_geom_t *g, int32_t in_ch, int32_t in_h, int32_t in_w,
    int32_t out_ch, int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w,
    int32_t pad_h, int32_t pad_w, int32_t out_pad_h, int32_t out_pad_w);

void conv_transpose2d_forward_f32(const qt_conv_geom_t *g, const float *x, const float *w,
    const float *b, float *y, int relu);
void conv_transpose2d_backward_f32(const qt_conv_geom_t *g, float *e, const float *y_relu,
    const float *x, const float *w, float *ex, float *gw, float *gb,
    const int32_t *sel, int32_t n_sel);

// uint8: as the Conv2d calls (conv2d.h); scratch is 4-byte aligned,
// conv_transpose2d_scratch_len_u8(g) bytes.
void conv_transpose2d_forward_u8(const qt_conv_geom_t *g, const uint8_t *x, const uint8_t *w,
    const int32_t *b, uint8_t *y, const qt_conv_rq_t *rq, int32_t *stats, uint8_t *scratch);
void conv_transpose2d_backward_input_u8(const qt_conv_geom_t *g, const uint8_t *e,
    const uint8_t *w, uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch);
int32_t conv_transpose2d_scratch_len_u8(const qt_conv_geom_t *g);

// Weight gradients of output channel co (one filter: w[:, co, :, :]):
// prepare once per sample for n filters (xsum: in_ch int32; returns x's
// channels as rows for the dot products, in work on the M0; or x itself
// when the M0 takes them as they are, 3x3 taps and n <= 4: then pass xsum
// NULL to the filter calls), then per filter
// grow[ci][ky][kx] = sum (x_ci - z_x)(e_co - z_e) (filter order, real
// s_e s_x grow); returns the bias gradient.  work: the scratch after the
// first 4*in_ch bytes (see conv_transpose2d_grad_acc_u8).
const uint8_t *conv_transpose2d_grad_prepare_u8(const qt_conv_geom_t *g, const uint8_t *x, int32_t n,
    int32_t *xsum, uint8_t *work);
// lanes: 2*align4(in_h*in_w) + 8 bytes of 4-byte aligned scratch (not used
// on the M4, where xrows are x's lanes).
int32_t conv_transpose2d_filter_grad_u8(const qt_conv_geom_t *g, const uint8_t *e,
    int32_t zero_e, const uint8_t *xrows, int32_t zero_x, const int32_t *xsum, int32_t co,
    int32_t *grow, uint8_t *work, uint32_t *lanes);
// Bytes of scratch the gradient calls use (xsum + colsum + cols + x rows,
// on the M4 x's lanes).
int32_t conv_transpose2d_grad_scratch_u8(const qt_conv_geom_t *g);

// Batch form: gw[ci][co][ky][kx] += ..., gb[co] += ... for co in sel (NULL = all).
void conv_transpose2d_grad_acc_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, int32_t *gw, int32_t *gb,
    const int32_t *sel, int32_t n_sel, uint8_t *scratch);

// As conv2d_update_u8; a filter is the strided w[:, co, :, :], gathered into
// a contiguous row in scratch, updated, and written back.
void conv_transpose2d_update_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint8_t *w, int32_t *b, const int32_t *sel, int32_t n_sel,
    float s_g, float s_gb, float s_b, const qt_update_t *u, float *state, int first,
    qt_wrange_t *new_range, uint8_t *scratch);

// Not built for armv6m: its ~1.7 KB would come out of the Pico's heap
// margin (tests/test_board_fit.py); the bindings raise ValueError there.
#if defined(__thumb__) && !defined(__thumb2__)
#define QT_CONVT_SLICES_BUILT 0
#else
#define QT_CONVT_SLICES_BUILT 1
#endif
// DSGU over the in_ch input-channel slices w[ci, :, :, :] instead of the
// filters (the layer option 'input'; contiguous rows of out_ch k_h k_w).
// Score of slice ci: sum_j |x_ci,j - z_x| E_j, where E_j = sum |e - z_e|
// over every output position (all output channels, all taps) input pixel
// j reaches: the error the slice's input channel fed, an upper bound of
// its gradient's L1 norm sum |g[ci]| (the slice's exact error, the
// propagated ex[ci], exists only after the propagation DSGU saves).
// O(in_h in_w (out_ch k_h k_w + in_ch)): emap (uint32[in_h
// in_w]) holds E; scores saturate at 2^32 - 1.  Returns sum |e - z_e| (the
// layer's mean error, for k).
uint64_t conv_transpose2d_slice_scores_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint32_t *scores, uint32_t *emap);
// Error propagation of the selected slices (sel strictly ascending): ex[ci]
// for ci in sel, ex's zero point (no error) in the other channels.
void conv_transpose2d_backward_slices_u8(const qt_conv_geom_t *g, const uint8_t *e, const uint8_t *w,
    uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats, const int32_t *sel, int32_t n_sel, uint8_t *scratch);
// As conv_transpose2d_update_u8 over the selected slices (NULL = all;
// standardized per slice: state 5 + 2 in_ch); every output channel's bias
// is updated.  The bindings' update flag for it:
#define QT_CONVT_SLICES (8)
void conv_transpose2d_update_slices_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, uint8_t *w, int32_t *b, const int32_t *sel, int32_t n_sel,
    float s_g, float s_gb, float s_b, const qt_update_t *u, float *state, int first,
    qt_wrange_t *new_range, uint8_t *scratch);
// The two slices calls take this many bytes of scratch (4-byte aligned),
// not conv_transpose2d_scratch_len_u8's (the filters path's).
int32_t conv_transpose2d_slices_scratch_len_u8(const qt_conv_geom_t *g);

// mixed mode, as conv2d.h.
void conv_transpose2d_backward_mixed(const qt_conv_geom_t *g, float *e, const uint8_t *y,
    int32_t zero_y, const uint8_t *w, int32_t zero_w, float s_w, float *ex, const int32_t *sel,
    int32_t n_sel);
void conv_transpose2d_grad_mixed(const qt_conv_geom_t *g, const float *e, const uint8_t *x,
    int32_t zero_x, float s_x, float *gw, float *gb, const int32_t *sel, int32_t n_sel);
void conv_transpose2d_update_mixed(const qt_conv_geom_t *g, const float *e, const uint8_t *x,
    int32_t zero_x, float s_x, uint8_t *w, int32_t *b, float s_b, const int32_t *sel, int32_t n_sel,
    const qt_update_t *u, float *state, qt_wrange_t *new_range, uint8_t *scratch);

// dst[j][i][:] = src[i][j][:] (src a x b x inner): PyTorch [in][out][kh][kw]
// <-> filter-major [out][in][kh][kw] for weights (uint8) or gradients
// (int32/float32 as uint32), so update_rows_* can standardize per filter.
void conv_swap_axes_u8(const uint8_t *src, uint8_t *dst, int32_t a, int32_t b, int32_t inner);
void conv_swap_axes_u32(const uint32_t *src, uint32_t *dst, int32_t a, int32_t b, int32_t inner);

#endif
