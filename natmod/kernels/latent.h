// The VAE latent layer: reparameterization and KL term.
//
// The encoder's last layer produces h = [mu_0 .. mu_{L-1}, logvar_0 ..
// logvar_{L-1}] (one tensor of 2L values, so one set of qparams).  logvar is
// clamped to [QT_LOGVAR_MIN, QT_LOGVAR_MAX] before use (see below).
//
//   forward:  z_i = mu_i + exp(0.5 lv_i) eps_i,   eps_i ~ N(0, 1)
//             KL  = -0.5 sum_i (1 + lv_i - mu_i^2 - exp(lv_i))
//   backward, for the loss  R(z) + beta KL,  given g = dR/dz:
//             dL/dmu_i = g_i + beta mu_i
//             dL/dlv_i = 0.5 (g_i exp(0.5 lv_i) eps_i + beta (exp(lv_i) - 1))
// The clamp is straight-through: outside the range the gradient is the one at
// the clamped value (not 0), so the KL term keeps pulling logvar back instead
// of leaving it stuck where nothing trains it.
#ifndef QT_LATENT_H
#define QT_LATENT_H
#include <stddef.h>
#include <stdint.h>
#include "loss_io.h"

// exp(-16/2) = 3.4e-4 <= sigma <= exp(16/2) = 2981: far outside what a
// trained VAE uses (logvar ~ -8..2), yet exp(logvar) <= 8.9e6 keeps the KL term
// and its gradient finite in float32 for any L, and a uint8 logvar tensor with
// a wild scale cannot make exp overflow to inf or sigma underflow to 0.
#define QT_LOGVAR_MIN (-16.0f)
#define QT_LOGVAR_MAX (16.0f)

// Forward.  If rng != NULL, eps[0..L-1] is first filled with fresh N(0, 1)
// draws (qt_rng_normal); otherwise eps is used as given (e.g. zeros: z = mu,
// for evaluation).  Writes z (L values) and stats = [KL, min z, max z].
void qt_latent_forward(const qt_lin_t *h, size_t L, uint32_t *rng, float *eps,
    const qt_lout_t *z, float stats[3]);

// Backward.  h and eps as in the forward call, dz = dR/dz (L values),
// beta >= 0 the KL weight.  Writes dh (2L values: dL/dmu then dL/dlogvar) and
// stats = [KL, min dh, max dh].
void qt_latent_backward(const qt_lin_t *h, size_t L, const float *eps,
    const qt_lin_t *dz, float beta, const qt_lout_t *dh, float stats[3]);

#endif
