// DSGU paths of the uint8 conv kernels whose work follows k, the number of
// selected filters (METHOD 5), where the full-k cores (conv2d_core.h) pay a
// cost that does not (internal header).
#ifndef QT_CONV_DSGU_H
#define QT_CONV_DSGU_H
#include "conv2d.h"

// Built on every arch; on the M0 (no SIMD: ~6 instructions per MAC in
// plain C against the re-sampled input's 3.4) it pays for fewer filters
// than on the M4 (QT_CORR_DIRECT_MAX in conv_dsgu_u8.c).
#define QT_CONV_CORR_DIRECT 1

// Conv2d weight gradients of a few filters without the re-sampled input
// (the full update's cols: all in_ch k_h k_w rows over the output grid,
// built whatever k: 73 k instructions of a Conv 16->32 update on qemu-m4).  Each selected filter's
// gradient is correlated directly from the input, padded once per call
// with its zero point, so that every tap of every output position reads a
// real or a zero-point value:
//   grow[c][ky][kx] = sum_pix de[pix] xp[c][sy s + ky][sx s + kx] - z_x D,
// de = e_o - z_e, D = sum de.  The padding adds z_x de where the re-sampled
// input holds z_x, and z_x D takes it out again: the int32 row is the one
// conv2d_filter_grad_u8 gives, bit for bit.
//
// Bytes of scratch the padded planes and de take (at scratch), if n filters
// make the direct path pay and it fits in the first `room` bytes; else 0.
int32_t qt_conv_corr_direct_bytes(const qt_conv_geom_t *g, int32_t n, int32_t room);
// The padded planes of x (once per call) into scratch.
void qt_conv_corr_pad_u8(const qt_conv_geom_t *g, const uint8_t *x, int32_t zero_x, uint8_t *scratch);
// Filter o's gradient row (in_ch k_h k_w int32) into grow; returns the bias
// gradient sum (e_o - z_e), as conv2d_filter_grad_u8.  scratch as padded
// by qt_conv_corr_pad_u8 (de lives after the planes).
int32_t qt_conv_corr_direct_filter_u8(const qt_conv_geom_t *g, const uint8_t *e, int32_t zero_e,
    int32_t zero_x, int32_t o, uint8_t *scratch, int32_t *grow);

#endif
