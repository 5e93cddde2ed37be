// uint8 ConvTranspose2d: the Conv2d cores on the swapped geometry.
#include "conv2d_core.h"
#include "conv_transpose2d.h"

void conv_transpose2d_forward_u8(const qt_conv_geom_t *t, const uint8_t *x, const uint8_t *w,
    const int32_t *b, uint8_t *y, const qt_conv_rq_t *rq, int32_t *stats) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    qt_conv_scatter_u8(&g, x, w, b, y, rq, stats, NULL, 0);
}

int32_t conv_transpose2d_scratch_len_u8(const qt_conv_geom_t *t) {
    return t->out_ch * t->k_h * t->k_w;
}

// Error propagation: a Conv2d of the error with the same weights; DSGU
// selects error channels, which are the gathered (big) channels.
void conv_transpose2d_backward_input_u8(const qt_conv_geom_t *t, const uint8_t *e,
    const uint8_t *w, uint8_t *ex, const qt_conv_rq_t *rq, int32_t *stats,
    const int32_t *sel, int32_t n_sel, int16_t *scratch) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    qt_conv_gather_u8(&g, e, w, NULL, ex, rq, stats, sel, n_sel, scratch);
}

int32_t conv_transpose2d_filter_grad_u8(const qt_conv_geom_t *t, const uint8_t *e,
    int32_t zero_e, const uint8_t *x, int32_t zero_x, int32_t co, int32_t *grow) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    const int32_t IHW = t->in_h * t->in_w, OHW = t->out_h * t->out_w;
    const int32_t KK = t->k_h * t->k_w;
    const uint8_t *ec = e + co * OHW;
    for (int32_t ci = 0; ci < t->in_ch; ci++) {
        qt_conv_corr_pair_u8(&g, x + ci * IHW, zero_x, ec, zero_e, grow + ci * KK, 0);
    }
    return qt_conv_map_sum_u8(ec, OHW, zero_e);
}

void conv_transpose2d_grad_acc_u8(const qt_conv_geom_t *t, const uint8_t *e, int32_t zero_e,
    const uint8_t *x, int32_t zero_x, int32_t *gw, int32_t *gb,
    const int32_t *sel, int32_t n_sel) {
    qt_conv_geom_t g;
    qt_conv_geom_swap(t, &g);
    const int32_t IHW = t->in_h * t->in_w, OHW = t->out_h * t->out_w;
    const int32_t KK = t->k_h * t->k_w, CO = t->out_ch;
    const int32_t n = sel ? n_sel : CO;
    for (int32_t j = 0; j < n; j++) {
        const int32_t co = sel ? sel[j] : j;
        const uint8_t *ec = e + co * OHW;
        for (int32_t ci = 0; ci < t->in_ch; ci++) {
            qt_conv_corr_pair_u8(&g, x + ci * IHW, zero_x, ec, zero_e, gw + (ci * CO + co) * KK, 1);
        }
        if (gb) {
            gb[co] += qt_conv_map_sum_u8(ec, OHW, zero_e);
        }
    }
}
