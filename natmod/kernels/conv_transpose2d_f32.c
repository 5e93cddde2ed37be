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
