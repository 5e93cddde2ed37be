// DSGU paths of the uint8 conv kernels whose work follows k, the number of
// selected filters (METHOD 5), where the full-k cores (conv2d_core.h) pay a
// cost that does not (internal header).
#ifndef QT_CONV_DSGU_H
#define QT_CONV_DSGU_H
#include "conv2d.h"

#define QT_CONV_CORR_DIRECT 1

// Conv2d weight gradients of a few selected filters without the re-sampled
// input (the full update's cols: all in_ch k_h k_w rows over the output
// grid, built whatever k: 73 k instructions of a Conv 16->32 update on
// qemu-m4), in integers equal to conv2d_filter_grad_u8's, bit for bit.
//   Cortex-M4: correlated directly from the input, padded once per call
// with its zero point, so that every tap of every output position reads a
// real or a zero-point value:
//   grow[c][ky][kx] = sum_pix de[pix] xp[c][sy s + ky][sx s + kx] - z_x D,
// de = e_o - z_e, D = sum de (the padding's z_x de taken out again); 3
// taps per row (k_w = 3), any stride, SIMD over de's pairs at stride 2.
//   Elsewhere (the M0, no SIMD): summed over the input's values other than
// its zero point, listed once per call (conv_dsgu_u8.c): stride 2, 3 x 3
// taps, padding 1, as Conv 1->16 and Conv 16->32.
// qt_conv_corr_direct_u8 prepares the input into scratch if n filters make
// the direct path pay, the geometry is one it takes and it fits: in the
// first room_cols bytes (the M4) or room_all (elsewhere); returns where
// grow may go (its byte offset in scratch: room_cols or room_all rounded
// down to 4), or 0 (then the re-sampled input).
int32_t qt_conv_corr_direct_u8(const qt_conv_geom_t *g, int32_t n, const uint8_t *x, int32_t zero_x,
    uint8_t *scratch, int32_t room_cols, int32_t room_all);
// Filter o's gradient row (in_ch k_h k_w int32) into grow; returns the bias
// gradient sum (e_o - z_e), as conv2d_filter_grad_u8.  scratch as prepared
// by qt_conv_corr_direct_u8.
int32_t qt_conv_corr_direct_filter_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    int32_t zero_x, int32_t o, uint8_t *scratch, int32_t *grow);
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
// Filters o0 and o1 into grow0 and grow1, their bias sums into gb[o0] and
// gb[o1]: on the M4 at once where the planes allow it (stride_w 2, k_w 3,
// an odd out_w: each plane word read once for both), else one at a time.
void qt_conv_corr_direct_filter2_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e, int32_t zero_x,
    int32_t o0, int32_t o1, uint8_t *scratch, int32_t *grow0, int32_t *grow1, int32_t *gb);
#endif

#endif
