// Output heads: sigmoid + binary cross-entropy (reconstructions) and
// softmax + cross-entropy (classifier).  Plain C99, see loss_io.h for how
// tensors are passed (uint8 with qparams, or float32).
//
// Every kernel writes stats[0] = the loss (a sum over elements, not a mean),
// stats[1], stats[2] = exact min and max of the error tensor it wrote (also
// recorded into the error's qparams when the error is uint8).  The error is
// dL/dlogit of that sum.
#ifndef QT_LOSS_H
#define QT_LOSS_H
#include <stddef.h>
#include <stdint.h>
#include "loss_io.h"

// Reconstruction head on n logits l against a uint8 image (t = pixel / 255,
// computed as pixel * (1/255)):
//   loss = sum_i softplus(l_i) - t_i l_i       (= BCE(sigmoid(l), t))
//   err_i = sigmoid(l_i) - t_i                 in (-1, 1)
// softplus(l) = max(l, 0) + log1p(exp(-|l|)) has no overflow for any l.
// For uint8 logits the linear part max(l, 0) - l t is summed exactly in
// integers and scaled once: loss = sum_i log1p(exp(-|l_i|))
// + (float)(sum_i 255 max(q_i - z, 0) - (q_i - z) pixel_i) * (s / 255).
// lut: NULL, or QT_BCE_LUT_LEN floats of scratch for uint8 logits: the exp
// and log of each of the 256 possible logit values are then computed once per
// call instead of once per pixel (on Cortex-M0, whose floats are soft, this
// is most of the cost).  The results are the same bits either way: only the
// work is shared.
#define QT_BCE_LUT_LEN (512)
void qt_bce_sigmoid(const qt_lin_t *logit, const uint8_t *target, size_t n,
    const qt_lout_t *err, float stats[3], float *lut);

// Classifier head on C logits with an integer label in 0..C-1:
//   loss = log(sum_j exp(l_j - m)) - (l_label - m),  m = max_j l_j
//   err_j = softmax(l)_j - [j == label]        in [-1, 1]
// Returns the predicted class (the first index of the largest logit).
int32_t qt_softmax_ce(const qt_lin_t *logit, size_t c, int32_t label,
    const qt_lout_t *err, float stats[3]);

#endif
