// uint8 Conv2d kernels and the uint8 loop cores shared with ConvTranspose2d
// (conv2d_core.h).  METHOD.md 1-5: int32 accumulation of (w - z_w)(x - z_x),
// fixed-point requantization, ReLU as a clamp at the output zero point.
// Integer-only inner loops (the M0 has no FPU).
#include "conv2d_core.h"

// Dot product of n uint8 weights with n int16 (already zero-point-shifted)
// patch values.
static inline int32_t dot_u8_s16(const uint8_t *w, const int16_t *p, int32_t n) {
    int32_t acc = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        acc += w[i] * p[i] + w[i + 1] * p[i + 1] + w[i + 2] * p[i + 2] + w[i + 3] * p[i + 3];
    }
    for (; i < n; i++) {
        acc += w[i] * p[i];
    }
    return acc;
}

// small[o] <- sum over big taps.  The patch of one output pixel is copied once
// (im2col, x - z_x, zero outside the input = real zero padding) into scratch
// and reused by every filter: sum (w - z_w) p = sum w p - z_w sum p, so the
// inner loop is a plain dot product.
void qt_conv_gather_u8(const qt_conv_geom_t *g, const uint8_t *big, const uint8_t *w,
    const int32_t *b, uint8_t *small, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, int16_t *scratch) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t O = g->out_ch, OHW = g->out_h * g->out_w;
    const int32_t n = sel ? n_sel : C;
    const int32_t plen = n * KK;
    const int32_t zx = rq->zero_in, zw = rq->zero_w;
    const int32_t lo = rq->relu ? rq->zero_out : 0;
    int32_t amin = INT32_MAX, amax = INT32_MIN;
    int32_t pix = 0;
    for (int32_t oy = 0; oy < g->out_h; oy++) {
        const int32_t iy0 = oy * g->stride_h - g->pad_h;
        for (int32_t ox = 0; ox < g->out_w; ox++, pix++) {
            const int32_t ix0 = ox * g->stride_w - g->pad_w;
            int16_t *p = scratch;
            int32_t psum = 0;
            for (int32_t j = 0; j < n; j++) {
                const int32_t c = sel ? sel[j] : j;
                const uint8_t *xc = big + c * H * W;
                for (int32_t ky = 0; ky < KH; ky++) {
                    // Rows and columns outside the input are real zeros.  (One
                    // loop for both cases: a separate zero-fill loop would be
                    // turned into a memset call, which a natmod cannot link.)
                    const int32_t iy = iy0 + ky;
                    const int32_t row_ok = iy >= 0 && iy < H;
                    const uint8_t *xr = xc + (row_ok ? iy * W : 0);
                    for (int32_t kx = 0; kx < KW; kx++) {
                        const int32_t ix = ix0 + kx;
                        const int32_t v = (row_ok && ix >= 0 && ix < W) ? xr[ix] - zx : 0;
                        psum += v;
                        *p++ = (int16_t)v;
                    }
                }
            }
            const int32_t off = zw * psum;
            for (int32_t o = 0; o < O; o++) {
                const uint8_t *wo = w + o * C * KK;
                int32_t acc = -off;
                if (sel) {
                    for (int32_t j = 0; j < n; j++) {
                        acc += dot_u8_s16(wo + sel[j] * KK, scratch + j * KK, KK);
                    }
                } else {
                    acc += dot_u8_s16(wo, scratch, plen);
                }
                if (b) {
                    acc = qt_conv_add_bias(acc, b[o], rq->bias);
                }
                small[o * OHW + pix] = qt_conv_out(acc, rq, lo, &amin, &amax);
            }
        }
    }
    if (stats) {
        stats[0] = amin;
        stats[1] = amax;
    }
}

// big[c] <- sum over the small pixels whose window covers it, computed pixel
// by pixel (gather form: no int32 image buffer).  For big row by: taps
// ky = ky0, ky0 + s, ... with small row sy = sy0, sy0 - 1, ...
void qt_conv_scatter_u8(const qt_conv_geom_t *g, const uint8_t *small, const uint8_t *w,
    const int32_t *b, uint8_t *big, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel) {
    const int32_t C = g->in_ch, H = g->in_h, W = g->in_w;
    const int32_t SH = g->out_h, SW = g->out_w, SHW = SH * SW;
    const int32_t KH = g->k_h, KW = g->k_w, KK = KH * KW;
    const int32_t sh = g->stride_h, sw = g->stride_w;
    const int32_t n = sel ? n_sel : g->out_ch;
    const int32_t zs = rq->zero_in, zw = rq->zero_w;
    const int32_t lo = rq->relu ? rq->zero_out : 0;
    int32_t amin = INT32_MAX, amax = INT32_MIN;
    const int32_t kx0_start = g->pad_w % sw;
    const int32_t sx0_start = (g->pad_w - kx0_start) / sw;
    uint8_t *out = big;
    for (int32_t c = 0; c < C; c++) {
        for (int32_t by = 0; by < H; by++) {
            const int32_t ty = by + g->pad_h;
            const int32_t ky0 = ty % sh;
            const int32_t sy0 = (ty - ky0) / sh;
            int32_t kx0 = kx0_start, sx0 = sx0_start;
            for (int32_t bx = 0; bx < W; bx++) {
                int32_t acc = 0;
                for (int32_t j = 0; j < n; j++) {
                    const int32_t o = sel ? sel[j] : j;
                    const uint8_t *so = small + o * SHW;
                    const uint8_t *wo = w + (o * C + c) * KK;
                    for (int32_t ky = ky0, sy = sy0; ky < KH && sy >= 0; ky += sh, sy--) {
                        if (sy >= SH) {
                            continue;
                        }
                        const uint8_t *sr = so + sy * SW;
                        const uint8_t *wr = wo + ky * KW;
                        for (int32_t kx = kx0, sx = sx0; kx < KW && sx >= 0; kx += sw, sx--) {
                            if (sx < SW) {
                                acc += (wr[kx] - zw) * (sr[sx] - zs);
                            }
                        }
                    }
                }
                if (b) {
                    acc = qt_conv_add_bias(acc, b[c], rq->bias);
                }
                *out++ = qt_conv_out(acc, rq, lo, &amin, &amax);
                if (++kx0 == sw) {
                    kx0 = 0;
                    sx0++;
                }
            }
        }
    }
    if (stats) {
        stats[0] = amin;
        stats[1] = amax;
    }
}

void qt_conv_corr_pair_u8(const qt_conv_geom_t *g, const uint8_t *small_ch, int32_t zero_s,
    const uint8_t *big_ch, int32_t zero_b, int32_t *grow, int accumulate) {
    const int32_t H = g->in_h, W = g->in_w, SH = g->out_h, SW = g->out_w;
    const int32_t sw = g->stride_w;
    for (int32_t ky = 0; ky < g->k_h; ky++) {
        int32_t y_lo, y_hi;
        qt_conv_tap_range(ky, g->stride_h, g->pad_h, H, SH, &y_lo, &y_hi);
        for (int32_t kx = 0; kx < g->k_w; kx++) {
            int32_t x_lo, x_hi;
            qt_conv_tap_range(kx, sw, g->pad_w, W, SW, &x_lo, &x_hi);
            int32_t acc = 0;
            for (int32_t sy = y_lo; sy < y_hi; sy++) {
                const uint8_t *sr = small_ch + sy * SW;
                const uint8_t *br = big_ch + (sy * g->stride_h - g->pad_h + ky) * W - g->pad_w + kx;
                for (int32_t sx = x_lo; sx < x_hi; sx++) {
                    acc += (sr[sx] - zero_s) * (br[sx * sw] - zero_b);
                }
            }
            *grow = (accumulate ? *grow : 0) + acc;
            grow++;
        }
    }
}

int32_t conv2d_scratch_len_u8(const qt_conv_geom_t *g) {
    return g->in_ch * g->k_h * g->k_w;
}

void conv2d_forward_u8(const qt_conv_geom_t *g, const uint8_t *x, const uint8_t *w,
    const int32_t *b, uint8_t *y, const qt_conv_rq_t *rq, int32_t *stats,
    int16_t *scratch) {
    qt_conv_gather_u8(g, x, w, b, y, rq, stats, NULL, 0, scratch);
}

void conv_relu_mask_u8(uint8_t *e, const uint8_t *y, int32_t n, int32_t zero_e, int32_t zero_y) {
    for (int32_t i = 0; i < n; i++) {
        if (y[i] <= zero_y) {
            e[i] = (uint8_t)zero_e;
        }
    }
}

void conv_channel_scores_u8(const uint8_t *e, int32_t ch, int32_t hw, int32_t zero_e,
    uint32_t *scores) {
    for (int32_t c = 0; c < ch; c++) {
        int32_t acc = 0;
        for (int32_t i = 0; i < hw; i++) {
            const int32_t d = *e++ - zero_e;
            acc += d < 0 ? -d : d;
        }
        scores[c] = (uint32_t)acc;
    }
}

void conv2d_backward_input_u8(const qt_conv_geom_t *g, const uint8_t *e, const uint8_t *w,
    uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel) {
    qt_conv_scatter_u8(g, e, w, NULL, ex, rq, stats, sel, n_sel);
}

int32_t qt_conv_map_sum_u8(const uint8_t *e, int32_t n, int32_t zero) {
    int32_t acc = 0;
    for (int32_t i = 0; i < n; i++) {
        acc += e[i];
    }
    return acc - n * zero;
}

int32_t conv2d_filter_grad_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, int32_t o, int32_t *grow) {
    const int32_t OHW = g->out_h * g->out_w, HW = g->in_h * g->in_w;
    const int32_t KK = g->k_h * g->k_w;
    const uint8_t *eo = e + o * OHW;
    for (int32_t c = 0; c < g->in_ch; c++) {
        qt_conv_corr_pair_u8(g, eo, zero_e, x + c * HW, zero_x, grow + c * KK, 0);
    }
    return qt_conv_map_sum_u8(eo, OHW, zero_e);
}

void conv2d_grad_acc_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, int32_t *gw, int32_t *gb,
    const int32_t *sel, int32_t n_sel) {
    const int32_t OHW = g->out_h * g->out_w, HW = g->in_h * g->in_w;
    const int32_t KK = g->k_h * g->k_w, C = g->in_ch;
    const int32_t n = sel ? n_sel : g->out_ch;
    for (int32_t j = 0; j < n; j++) {
        const int32_t o = sel ? sel[j] : j;
        const uint8_t *eo = e + o * OHW;
        for (int32_t c = 0; c < C; c++) {
            qt_conv_corr_pair_u8(g, eo, zero_e, x + c * HW, zero_x, gw + (o * C + c) * KK, 1);
        }
        if (gb) {
            gb[o] += qt_conv_map_sum_u8(eo, OHW, zero_e);
        }
    }
}
