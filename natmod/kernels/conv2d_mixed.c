// "mixed" mode Conv2d / ConvTranspose2d (uint8 forward, float32 errors):
// error propagation with uint8 weights and float errors, and float gradients
// from float errors and the stored uint8 inputs.  Same index patterns as the
// float32 cores (conv2d_f32.c); the zero points come off at the end:
//   sum (w - z_w) e = sum w e - z_w sum e,  then times s_w.
#include "conv2d_core.h"
#include "conv_transpose2d.h"
#include "dense.h"

void qt_conv_bias_grad_f32(const float *e, int32_t hw, float *gb, const int32_t *sel,
    int32_t n_sel, int32_t ch);

static void relu_mask_mixed(float *e, const uint8_t *y, int32_t n, int32_t zy) {
    for (int32_t i = 0; i < n; i++) {
        if (y[i] <= zy) {
            e[i] = 0.0f;
        }
    }
}

// big[c] = s_w sum_{o, taps} (w[o][c] - zw) small[o]   (Conv2d error)
QT_CONV_NO_LIBCALLS
static void scatter_mixed(const qt_conv_geom_t *g, const float *small, const uint8_t *w,
    int32_t zw, float s_w, float *big, const int32_t *sel, int32_t n_sel) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w, HW = H * W;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t SHW = g->out_h * g->out_w;
    for (int32_t i = 0; i < C * HW; i++) {
        big[i] = 0.0f;
    }
    // The z_w term needs, per big pixel, the sum of the small values that
    // reach it: accumulate it in the same pass through a second buffer would
    // cost memory; instead subtract z_w per tap (float, mixed mode is the
    // reference-speed mode).
    const float fzw = (float)zw;
    const int32_t n = sel ? n_sel : g->out_ch;
    for (int32_t j = 0; j < n; j++) {
        const int32_t o = sel ? sel[j] : j;
        const float *so = small + o * SHW;
        const uint8_t *wo = w + o * C * KK;
        for (int32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = oy * g->stride_h - g->pad_h;
            const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
            const int32_t ky_hi = H - iy0 < KH ? H - iy0 : KH;
            for (int32_t ox = 0; ox < g->out_w; ox++) {
                const float v = so[oy * g->out_w + ox];
                if (v == 0.0f) {
                    continue;
                }
                const int32_t ix0 = ox * g->stride_w - g->pad_w;
                const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
                const int32_t kx_hi = W - ix0 < KW ? W - ix0 : KW;
                for (int32_t c = 0; c < C; c++) {
                    float *bc = big + (c * H + iy0) * W + ix0;
                    const uint8_t *wc = wo + c * KK;
                    for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
                        for (int32_t kx = kx_lo; kx < kx_hi; kx++) {
                            bc[ky * W + kx] += ((float)wc[ky * KW + kx] - fzw) * v;
                        }
                    }
                }
            }
        }
    }
    for (int32_t i = 0; i < C * HW; i++) {
        big[i] = s_w * big[i];
    }
}

// small[o] = s_w sum_{c in sel, taps} (w[o][c] - zw) big[c]   (ConvTranspose2d error)
static void gather_mixed(const qt_conv_geom_t *g, const float *big, const uint8_t *w, int32_t zw,
    float s_w, float *small, const int32_t *sel, int32_t n_sel) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t n = sel ? n_sel : C;
    const float fzw = (float)zw;
    float *yp = small;
    for (int32_t o = 0; o < g->out_ch; o++) {
        const uint8_t *wo = w + o * C * KK;
        for (int32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = oy * g->stride_h - g->pad_h;
            const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
            const int32_t ky_hi = H - iy0 < KH ? H - iy0 : KH;
            for (int32_t ox = 0; ox < g->out_w; ox++) {
                const int32_t ix0 = ox * g->stride_w - g->pad_w;
                const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
                const int32_t kx_hi = W - ix0 < KW ? W - ix0 : KW;
                float acc = 0.0f;
                for (int32_t j = 0; j < n; j++) {
                    const int32_t c = sel ? sel[j] : j;
                    const float *xc = big + (c * H + iy0) * W + ix0;
                    const uint8_t *wc = wo + c * KK;
                    for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
                        for (int32_t kx = kx_lo; kx < kx_hi; kx++) {
                            acc += ((float)wc[ky * KW + kx] - fzw) * xc[ky * W + kx];
                        }
                    }
                }
                *yp++ = s_w * acc;
            }
        }
    }
}

// gw[i][j][ky][kx] += s * sum a_i(pix) * (b_j(tap pix) - zb) with one side
// float and the other uint8: a_f (float, small side) x b_u (uint8, big side)
// when small_is_float, else a_u (uint8 small) x b_f (float big).
// Gradient of pair (i, j) goes to gw + i*si + j*sj (weight layout: si =
// in_ch*KK, sj = KK; one filter's row: the fixed index's stride 0).
static void corr_mixed(const qt_conv_geom_t *g, const float *small_f, const uint8_t *small_u,
    const float *big_f, const uint8_t *big_u, int32_t zero_u, float s_u, float *gw,
    int32_t si, int32_t sj,
    const int32_t *sel_small, int32_t n_small, const int32_t *sel_big, int32_t n_big) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w;
    const int32_t SH = g->out_h, SW = g->out_w;
    const int32_t KH = g->k_h, KW = g->k_w;
    const int32_t ni = sel_small ? n_small : g->out_ch;
    const int32_t nj = sel_big ? n_big : C;
    const float fz = (float)zero_u;
    for (int32_t ii = 0; ii < ni; ii++) {
        const int32_t i = sel_small ? sel_small[ii] : ii;
        for (int32_t jj = 0; jj < nj; jj++) {
            const int32_t jc = sel_big ? sel_big[jj] : jj;
            float *gp = gw + i * si + jc * sj;
            for (int32_t ky = 0; ky < KH; ky++) {
                int32_t y_lo, y_hi;
                qt_conv_tap_range(ky, g->stride_h, g->pad_h, H, SH, &y_lo, &y_hi);
                for (int32_t kx = 0; kx < KW; kx++) {
                    int32_t x_lo, x_hi;
                    qt_conv_tap_range(kx, g->stride_w, g->pad_w, W, SW, &x_lo, &x_hi);
                    float acc = 0.0f;
                    for (int32_t sy = y_lo; sy < y_hi; sy++) {
                        const int32_t boff = (sy * g->stride_h - g->pad_h + ky) * W - g->pad_w + kx;
                        const int32_t soff = sy * SW;
                        if (small_f) {
                            const float *sr = small_f + i * SH * SW + soff;
                            const uint8_t *br = big_u + jc * H * W + boff;
                            for (int32_t sx = x_lo; sx < x_hi; sx++) {
                                acc += sr[sx] * ((float)br[sx * g->stride_w] - fz);
                            }
                        } else {
                            const uint8_t *sr = small_u + i * SH * SW + soff;
                            const float *br = big_f + jc * H * W + boff;
                            for (int32_t sx = x_lo; sx < x_hi; sx++) {
                                acc += ((float)sr[sx] - fz) * br[sx * g->stride_w];
                            }
                        }
                    }
                    gp[ky * KW + kx] += s_u * acc;
                }
            }
        }
    }
}

void conv2d_backward_mixed(const qt_conv_geom_t *g, float *e, const uint8_t *y, int32_t zero_y,
    const uint8_t *w, int32_t zero_w, float s_w, float *ex, const int32_t *sel, int32_t n_sel) {
    if (y) {
        relu_mask_mixed(e, y, g->out_ch * g->out_h * g->out_w, zero_y);
    }
    if (ex) {
        scatter_mixed(g, e, w, zero_w, s_w, ex, sel, n_sel);
    }
}

void conv2d_grad_mixed(const qt_conv_geom_t *g, const float *e, const uint8_t *x, int32_t zero_x,
    float s_x, float *gw, float *gb, const int32_t *sel, int32_t n_sel) {
    const int32_t KK = g->k_h * g->k_w;
    corr_mixed(g, e, NULL, NULL, x, zero_x, s_x, gw, g->in_ch * KK, KK, sel, n_sel, NULL, 0);
    if (gb) {
        qt_conv_bias_grad_f32(e, g->out_h * g->out_w, gb, sel, n_sel, g->out_ch);
    }
}

void conv_transpose2d_backward_mixed(const qt_conv_geom_t *t, float *e, const uint8_t *y,
    int32_t zero_y, const uint8_t *w, int32_t zero_w, float s_w, float *ex, const int32_t *sel,
    int32_t n_sel) {
    if (y) {
        relu_mask_mixed(e, y, t->out_ch * t->out_h * t->out_w, zero_y);
    }
    if (ex) {
        qt_conv_geom_t g;
        qt_conv_geom_swap(t, &g);
        gather_mixed(&g, e, w, zero_w, s_w, ex, sel, n_sel);
    }
}

void conv_transpose2d_grad_mixed(const qt_conv_geom_t *t, const float *e, const uint8_t *x,
    int32_t zero_x, float s_x, float *gw, float *gb, const int32_t *sel, int32_t n_sel) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    const int32_t KK = t->k_h * t->k_w;
    corr_mixed(&g, NULL, x, e, NULL, zero_x, s_x, gw, g.in_ch * KK, KK, NULL, 0, sel, n_sel);
    if (gb) {
        qt_conv_bias_grad_f32(e, t->out_h * t->out_w, gb, sel, n_sel, t->out_ch);
    }
}

// ---- batch-1 update, mixed mode --------------------------------------------------
// Per selected filter: its float gradient row (real units) in scratch, then
// the shared update_rows_mixed on that one row, with a 7-float state view
// (header + this filter's mu, sigma); the biases at the end through
// update_rows_mixed with rows of length 0 (bias only; it also counts the
// step in state[0]).  Bit-identical to conv*_grad_mixed + update_rows_mixed.
QT_CONV_NO_LIBCALLS
static void update_row_mixed(uint8_t *wrow, float *grow, int32_t len, const qt_update_t *u,
    float *state, int32_t f, qt_wrange_t *range) {
    float view[QT_STD_STATE_HDR + 2];
    for (int32_t t = 0; t < QT_STD_STATE_HDR; t++) {
        view[t] = state[t];
    }
    view[QT_STD_STATE_HDR] = state[QT_STD_STATE_HDR + 2 * f];
    view[QT_STD_STATE_HDR + 1] = state[QT_STD_STATE_HDR + 2 * f + 1];
    qt_wrange_t r;
    update_rows_mixed(wrow, grow, NULL, NULL, 1.0f, 1, len, u, view, &r);
    state[QT_STD_STATE_HDR + 2 * f] = view[QT_STD_STATE_HDR];
    state[QT_STD_STATE_HDR + 2 * f + 1] = view[QT_STD_STATE_HDR + 1];
    qt_wrange_merge(range, &r);
}

QT_CONV_NO_LIBCALLS
void conv2d_update_mixed(const qt_conv_geom_t *g, const float *e, const uint8_t *x, int32_t zero_x,
    float s_x, uint8_t *w, int32_t *b, float s_b, const int32_t *sel, int32_t n_sel,
    const qt_update_t *u, float *state, qt_wrange_t *new_range, uint8_t *scratch) {
    const int32_t KK = g->k_h * g->k_w, CKK = g->in_ch * KK, O = g->out_ch;
    const int32_t OHW = g->out_h * g->out_w;
    float *grow = (float *)(void *)scratch;
    float *gb = grow + CKK;
    qt_wrange_init(new_range);
    for (int32_t o = 0; o < O; o++) {
        gb[o] = 0.0f;
    }
    const int32_t n = sel ? n_sel : O;
    for (int32_t j = 0; j < n; j++) {
        const int32_t o = sel ? sel[j] : j;
        for (int32_t t = 0; t < CKK; t++) {
            grow[t] = 0.0f;
        }
        corr_mixed(g, e, NULL, NULL, x, zero_x, s_x, grow, 0, KK, &o, 1, NULL, 0);
        qt_conv_bias_grad_f32(e, OHW, gb, &o, 1, O);
        update_row_mixed(w + o * CKK, grow, CKK, u, state, o, new_range);
    }
    qt_wrange_t r;
    update_rows_mixed(w, grow, b, gb, s_b, O, 0, u, state, &r);
    if (!qt_rows_distinct(sel, n)) {
        new_range->n = 0;
    }
}

QT_CONV_NO_LIBCALLS
void conv_transpose2d_update_mixed(const qt_conv_geom_t *t, const float *e, const uint8_t *x,
    int32_t zero_x, float s_x, uint8_t *w, int32_t *b, float s_b, const int32_t *sel, int32_t n_sel,
    const qt_update_t *u, float *state, qt_wrange_t *new_range, uint8_t *scratch) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    const int32_t KK = t->k_h * t->k_w, CI = t->in_ch, CO = t->out_ch, CKK = CI * KK;
    const int32_t OHW = t->out_h * t->out_w;
    float *grow = (float *)(void *)scratch;
    float *gb = grow + CKK;
    uint8_t *wrow = (uint8_t *)(gb + CO);
    qt_wrange_init(new_range);
    for (int32_t c = 0; c < CO; c++) {
        gb[c] = 0.0f;
    }
    const int32_t n = sel ? n_sel : CO;
    for (int32_t j = 0; j < n; j++) {
        const int32_t co = sel ? sel[j] : j;
        for (int32_t q = 0; q < CKK; q++) {
            grow[q] = 0.0f;
        }
        // pair (ci, co) -> grow[ci*KK]: the fixed big index co gets stride 0
        corr_mixed(&g, NULL, x, e, NULL, zero_x, s_x, grow, KK, 0, NULL, 0, &co, 1);
        qt_conv_bias_grad_f32(e, OHW, gb, &co, 1, CO);
        for (int32_t ci = 0; ci < CI; ci++) {
            const uint8_t *src = w + (ci * CO + co) * KK;
            for (int32_t q = 0; q < KK; q++) {
                wrow[ci * KK + q] = src[q];
            }
        }
        update_row_mixed(wrow, grow, CKK, u, state, co, new_range);
        for (int32_t ci = 0; ci < CI; ci++) {
            uint8_t *dst = w + (ci * CO + co) * KK;
            for (int32_t q = 0; q < KK; q++) {
                dst[q] = wrow[ci * KK + q];
            }
        }
    }
    qt_wrange_t r;
    update_rows_mixed(w, grow, b, gb, s_b, CO, 0, u, state, &r);
    if (!qt_rows_distinct(sel, n)) {
        new_range->n = 0;
    }
}
