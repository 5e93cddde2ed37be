// float32 ConvTranspose2d: the Conv2d cores run on the swapped geometry
// (the transposed convolution's output is the "big" side).
#include "conv2d_core.h"
#include "conv_transpose2d.h"

void qt_conv_bias_grad_f32(const float *e, int32_t hw, float *gb, const int32_t *sel,
    int32_t n_sel, int32_t ch);
void qt_conv_relu_mask_f32(float *e, const float *y, int32_t n);

void conv_transpose2d_forward_f32(const qt_conv_geom_t *t, const float *x, const float *w,
    const float *b, float *y, int relu) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    qt_conv_scatter_f32(&g, x, w, b, y, relu, NULL, 0);
}

void conv_transpose2d_backward_f32(const qt_conv_geom_t *t, float *e, const float *y_relu,
    const float *x, const float *w, float *ex, float *gw, float *gb,
    const int32_t *sel, int32_t n_sel) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    const int32_t ohw = t->out_h * t->out_w;
    if (y_relu) {
        qt_conv_relu_mask_f32(e, y_relu, t->out_ch * ohw);
    }
    // The error is on the big side: DSGU selects big channels here.
    if (ex) {
        qt_conv_gather_f32(&g, e, w, NULL, ex, 0, sel, n_sel);
    }
    if (gw) {
        qt_conv_corr_f32(&g, x, e, gw, NULL, 0, sel, n_sel);
    }
    if (gb) {
        qt_conv_bias_grad_f32(e, ohw, gb, sel, n_sel, t->out_ch);
    }
}

// dst[j][i][t] = src[i][j][t] for i < a, j < b, t < inner: ConvTranspose2d
// weights/gradients [in][out][k] <-> filter-major [out][in][k], so the
// row-wise updates (update_rows_*) see one filter per row.
QT_CONV_NO_LIBCALLS
void conv_swap_axes_u8(const uint8_t *src, uint8_t *dst, int32_t a, int32_t b, int32_t inner) {
    for (int32_t i = 0; i < a; i++) {
        for (int32_t j = 0; j < b; j++) {
            const uint8_t *s = src + (i * b + j) * inner;
            uint8_t *d = dst + (j * a + i) * inner;
            for (int32_t t = 0; t < inner; t++) {
                d[t] = s[t];
            }
        }
    }
}

QT_CONV_NO_LIBCALLS
void conv_swap_axes_u32(const uint32_t *src, uint32_t *dst, int32_t a, int32_t b, int32_t inner) {
    for (int32_t i = 0; i < a; i++) {
        for (int32_t j = 0; j < b; j++) {
            const uint32_t *s = src + (i * b + j) * inner;
            uint32_t *d = dst + (j * a + i) * inner;
            for (int32_t t = 0; t < inner; t++) {
                d[t] = s[t];
            }
        }
    }
}
