// Geometry checks for Conv2d / ConvTranspose2d (see conv2d.h).
#include "conv2d.h"
#include "conv_transpose2d.h"

#define QT_CONV_MAX 32767

static int check_common(int32_t in_ch, int32_t in_h, int32_t in_w, int32_t out_ch,
    int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w) {
    if (in_ch < 1 || in_h < 1 || in_w < 1 || out_ch < 1 || k_h < 1 || k_w < 1) {
        return QT_CONV_BAD_SIZE;
    }
    if (stride_h < 1 || stride_w < 1) {
        return QT_CONV_BAD_STRIDE;
    }
    if (pad_h < 0 || pad_w < 0) {
        return QT_CONV_BAD_PAD;
    }
    if (in_ch > QT_CONV_MAX || in_h > QT_CONV_MAX || in_w > QT_CONV_MAX || out_ch > QT_CONV_MAX
        || k_h > 255 || k_w > 255 || stride_h > 255 || stride_w > 255 || pad_h > 255 || pad_w > 255) {
        return QT_CONV_TOO_BIG;
    }
    return QT_CONV_OK;
}

// int32 sums stay exact: one accumulator adds at most 32767 products of two
// values in -255..255 (forward/error: a channel*tap patch; gradient: a map).
static int check_sums(const qt_conv_geom_t *g) {
    int32_t kk = g->k_h * g->k_w;
    if (g->in_ch * kk > QT_CONV_MAX || g->out_ch * kk > QT_CONV_MAX
        || g->in_h * g->in_w > QT_CONV_MAX || g->out_h * g->out_w > QT_CONV_MAX) {
        return QT_CONV_TOO_BIG;
    }
    return QT_CONV_OK;
}

int conv2d_geom_init(qt_conv_geom_t *g, int32_t in_ch, int32_t in_h, int32_t in_w,
    int32_t out_ch, int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w,
    int32_t pad_h, int32_t pad_w) {
    int err = check_common(in_ch, in_h, in_w, out_ch, k_h, k_w, stride_h, stride_w, pad_h, pad_w);
    if (err) {
        return err;
    }
    if (k_h > in_h + 2 * pad_h || k_w > in_w + 2 * pad_w) {
        return QT_CONV_KERNEL_BIG;
    }
    g->in_ch = in_ch;
    g->in_h = in_h;
    g->in_w = in_w;
    g->out_ch = out_ch;
    g->out_h = (in_h + 2 * pad_h - k_h) / stride_h + 1;
    g->out_w = (in_w + 2 * pad_w - k_w) / stride_w + 1;
    g->k_h = k_h;
    g->k_w = k_w;
    g->stride_h = stride_h;
    g->stride_w = stride_w;
    g->pad_h = pad_h;
    g->pad_w = pad_w;
    return check_sums(g);
}

int conv_transpose2d_geom_init(qt_conv_geom_t *g, int32_t in_ch, int32_t in_h, int32_t in_w,
    int32_t out_ch, int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w,
    int32_t pad_h, int32_t pad_w, int32_t out_pad_h, int32_t out_pad_w) {
    int err = check_common(in_ch, in_h, in_w, out_ch, k_h, k_w, stride_h, stride_w, pad_h, pad_w);
    if (err) {
        return err;
    }
    if (out_pad_h < 0 || out_pad_w < 0) {
        return QT_CONV_BAD_PAD;
    }
    if (out_pad_h >= stride_h || out_pad_w >= stride_w) {
        return QT_CONV_BAD_OUT_PAD;
    }
    int32_t oh = (in_h - 1) * stride_h - 2 * pad_h + k_h + out_pad_h;
    int32_t ow = (in_w - 1) * stride_w - 2 * pad_w + k_w + out_pad_w;
    if (oh < 1 || ow < 1) {
        return QT_CONV_EMPTY_OUT;
    }
    if (oh > QT_CONV_MAX || ow > QT_CONV_MAX) {
        return QT_CONV_TOO_BIG;
    }
    g->in_ch = in_ch;
    g->in_h = in_h;
    g->in_w = in_w;
    g->out_ch = out_ch;
    g->out_h = oh;
    g->out_w = ow;
    g->k_h = k_h;
    g->k_w = k_w;
    g->stride_h = stride_h;
    g->stride_w = stride_w;
    g->pad_h = pad_h;
    g->pad_w = pad_w;
    return check_sums(g);
}
