// float32 Conv2d kernels and the float32 loop cores shared with
// ConvTranspose2d (conv2d_core.h).  Plain C99, no MicroPython headers.
#include "conv2d_core.h"

void qt_conv_gather_f32(const qt_conv_geom_t *g, const float *big, const float *w,
    const float *b, float *small, int relu, const int32_t *sel, int32_t n_sel) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t n = sel ? n_sel : C;
    float *yp = small;
    for (int32_t o = 0; o < g->out_ch; o++) {
        const float *wo = w + o * C * KK;
        for (int32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = oy * g->stride_h - g->pad_h;
            // Taps inside the input rows (padding contributes zero).
            const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
            const int32_t ky_hi = H - iy0 < KH ? H - iy0 : KH;
            for (int32_t ox = 0; ox < g->out_w; ox++) {
                const int32_t ix0 = ox * g->stride_w - g->pad_w;
                const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
                const int32_t kx_hi = W - ix0 < KW ? W - ix0 : KW;
                float acc = b ? b[o] : 0.0f;
                for (int32_t j = 0; j < n; j++) {
                    const int32_t c = sel ? sel[j] : j;
                    const float *xc = big + (c * H + iy0) * W + ix0;
                    const float *wc = wo + c * KK;
                    for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
                        const float *xr = xc + ky * W;
                        const float *wr = wc + ky * KW;
                        for (int32_t kx = kx_lo; kx < kx_hi; kx++) {
                            acc += wr[kx] * xr[kx];
                        }
                    }
                }
                *yp++ = (relu && acc < 0.0f) ? 0.0f : acc;
            }
        }
    }
}

void qt_conv_scatter_f32(const qt_conv_geom_t *g, const float *small, const float *w,
    const float *b, float *big, int relu, const int32_t *sel, int32_t n_sel) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w, HW = H * W;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t SHW = g->out_h * g->out_w;
    for (int32_t c = 0; c < C; c++) {
        const float v = b ? b[c] : 0.0f;
        for (int32_t i = 0; i < HW; i++) {
            big[c * HW + i] = v;
        }
    }
    const int32_t n = sel ? n_sel : g->out_ch;
    for (int32_t j = 0; j < n; j++) {
        const int32_t o = sel ? sel[j] : j;
        const float *so = small + o * SHW;
        const float *wo = w + o * C * KK;
        for (int32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = oy * g->stride_h - g->pad_h;
            const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
            const int32_t ky_hi = H - iy0 < KH ? H - iy0 : KH;
            for (int32_t ox = 0; ox < g->out_w; ox++) {
                const float v = so[oy * g->out_w + ox];
                if (v == 0.0f) {
                    continue;  // ReLU-masked and sparse errors cost nothing
                }
                const int32_t ix0 = ox * g->stride_w - g->pad_w;
                const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
                const int32_t kx_hi = W - ix0 < KW ? W - ix0 : KW;
                for (int32_t c = 0; c < C; c++) {
                    float *bc = big + (c * H + iy0) * W + ix0;
                    const float *wc = wo + c * KK;
                    for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
                        for (int32_t kx = kx_lo; kx < kx_hi; kx++) {
                            bc[ky * W + kx] += wc[ky * KW + kx] * v;
                        }
                    }
                }
            }
        }
    }
    if (relu) {
        for (int32_t i = 0; i < C * HW; i++) {
            if (big[i] < 0.0f) {
                big[i] = 0.0f;
            }
        }
    }
}

void qt_conv_corr_f32(const qt_conv_geom_t *g, const float *small, const float *big,
    float *gw, const int32_t *sel_small, int32_t n_small, const int32_t *sel_big,
    int32_t n_big) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w;
    const int32_t SH = g->out_h, SW = g->out_w;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t ni = sel_small ? n_small : g->out_ch;
    const int32_t nj = sel_big ? n_big : C;
    for (int32_t ii = 0; ii < ni; ii++) {
        const int32_t i = sel_small ? sel_small[ii] : ii;
        const float *si = small + i * SH * SW;
        for (int32_t jj = 0; jj < nj; jj++) {
            const int32_t jc = sel_big ? sel_big[jj] : jj;
            const float *bj = big + jc * H * W;
            float *gp = gw + (i * C + jc) * KK;
            for (int32_t ky = 0; ky < KH; ky++) {
                int32_t y_lo, y_hi;
                qt_conv_tap_range(ky, g->stride_h, g->pad_h, H, SH, &y_lo, &y_hi);
                for (int32_t kx = 0; kx < KW; kx++) {
                    int32_t x_lo, x_hi;
                    qt_conv_tap_range(kx, g->stride_w, g->pad_w, W, SW, &x_lo, &x_hi);
                    float acc = 0.0f;
                    for (int32_t sy = y_lo; sy < y_hi; sy++) {
                        const float *sr = si + sy * SW;
                        const float *br = bj + (sy * g->stride_h - g->pad_h + ky) * W
                            - g->pad_w + kx;
                        for (int32_t sx = x_lo; sx < x_hi; sx++) {
                            acc += sr[sx] * br[sx * g->stride_w];
                        }
                    }
                    gp[ky * KW + kx] += acc;
                }
            }
        }
    }
}

static void relu_mask_f32(float *e, const float *y, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        if (!(y[i] > 0.0f)) {
            e[i] = 0.0f;
        }
    }
}

static void bias_grad_f32(const float *e, int32_t hw, float *gb, const int32_t *sel,
    int32_t n_sel, int32_t ch) {
    const int32_t n = sel ? n_sel : ch;
    for (int32_t j = 0; j < n; j++) {
        const int32_t o = sel ? sel[j] : j;
        float acc = 0.0f;
        for (int32_t i = 0; i < hw; i++) {
            acc += e[o * hw + i];
        }
        gb[o] += acc;
    }
}

void conv2d_forward_f32(const qt_conv_geom_t *g, const float *x, const float *w,
    const float *b, float *y, int relu) {
    qt_conv_gather_f32(g, x, w, b, y, relu, NULL, 0);
}

void conv2d_backward_f32(const qt_conv_geom_t *g, float *e, const float *y_relu,
    const float *x, const float *w, float *ex, float *gw, float *gb,
    const int32_t *sel, int32_t n_sel) {
    const int32_t ohw = g->out_h * g->out_w;
    if (y_relu) {
        relu_mask_f32(e, y_relu, g->out_ch * ohw);
    }
    if (ex) {
        qt_conv_scatter_f32(g, e, w, NULL, ex, 0, sel, n_sel);
    }
    if (gw) {
        qt_conv_corr_f32(g, e, x, gw, sel, n_sel, NULL, 0);
    }
    if (gb) {
        bias_grad_f32(e, ohw, gb, sel, n_sel, g->out_ch);
    }
}

// Shared by conv_transpose2d_f32.c.
void qt_conv_bias_grad_f32(const float *e, int32_t hw, float *gb, const int32_t *sel,
    int32_t n_sel, int32_t ch);
void qt_conv_bias_grad_f32(const float *e, int32_t hw, float *gb, const int32_t *sel,
    int32_t n_sel, int32_t ch) {
    bias_grad_f32(e, hw, gb, sel, n_sel, ch);
}
void qt_conv_relu_mask_f32(float *e, const float *y, int32_t n);
void qt_conv_relu_mask_f32(float *e, const float *y, int32_t n) {
    relu_mask_f32(e, y, n);
}
