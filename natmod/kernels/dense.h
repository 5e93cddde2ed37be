// Dense (fully connected, "Gemm") kernels, uint8 affine-quantized.
//
// Shapes: x[n] (input), w[m*n] row-major (row i = output i), y[m], b[m] int32.
// real(q) = s * (q - z) for every uint8 tensor; bias real = s_b * b (z = 0).
// Plain C99, no MicroPython headers.  See docs/KERNELS.md for the Python API.
#ifndef QT_DENSE_H
#define QT_DENSE_H
#include <stdint.h>
#include "quant.h"

// Largest n (inputs per row): keeps every int32 sum of n products of uint8
// values (<= 255*255*n) inside int32.
#define QT_DENSE_MAX_N (32767)

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
void dense_forward_u8(const uint8_t *x, const uint8_t *w, const int32_t *b, uint8_t *y,
    int32_t m, int32_t n, const qt_dense_fwd_t *q, int32_t acc_range[2]);

// sum_j w[j] * x[j] (uint8 * uint8) and sum_j w[j], n <= QT_DENSE_MAX_N.
// The hot loop of forward; integer only (SMLAD/UXTB16/USADA8 on Cortex-M4).
uint32_t qt_dot_u8(const uint8_t *w, const uint8_t *x, int32_t n, uint32_t *wsum);

#endif
