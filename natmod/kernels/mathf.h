// Portable single-precision math for the kernels (natmods cannot link libm).
//
// Every function here uses only IEEE-754 single-precision +, -, *, / (each
// correctly rounded on every target: SSE on x64, the FPv4 unit on Cortex-M4F,
// libgcc's soft float on Cortex-M0), integer operations and float<->int
// conversions.  No operation depends on the target, so each function returns
// the same bits on x64, armv6m, armv7m and armv7emsp; the numpy golden model
// (host_tools/qtrain_host/golden/loss.py) repeats the same operations and
// matches bit for bit.  This relies on the compiler not fusing a*b+c into an
// FMA: dynruntime.mk compiles with -std=c99, for which GCC's default is
// -ffp-contract=off.
//
// Accuracy (measured over all finite float inputs by tests/test_loss_mathf.py,
// against the correctly rounded result): see docs/KERNELS.md, "Losses and
// latent".  Special values follow C99 Annex F (NaN in -> NaN out, exp(-inf) =
// 0, log(0) = -inf, log(x<0) = NaN, sqrt(-0) = -0).
#ifndef QT_MATHF_H
#define QT_MATHF_H
#include <stdint.h>

// Bits of a float and back (type punning through a union is defined in C99 TC3
// and compiles to a register move; memcpy would need libc in a natmod).
static inline uint32_t qt_f2u(float x) {
    union { float f; uint32_t u; } v;
    v.f = x;
    return v.u;
}
static inline float qt_u2f(uint32_t u) {
    union { float f; uint32_t u; } v;
    v.u = u;
    return v.f;
}

// e^x.  Max error 1 ulp (normal results).
float qt_expf(float x);
// Natural log.  Max error 1 ulp.
float qt_logf(float x);
// log(1 + x), accurate also for tiny x (x >= -1).
float qt_log1pf(float x);
// log(1 + x) for x in [0, 1] only (the softplus term of the BCE head, where
// x = exp(-|l|)): the atanh series on x itself, so 1 + x is never rounded,
// one divide instead of qt_log1pf's two, no exponent handling.
float qt_log1p_unitf(float x);
// Square root, correctly rounded (integer digit-by-digit method), so it equals
// IEEE sqrt (and numpy.sqrt on float32) exactly.
float qt_sqrtf(float x);
// 1 / (1 + e^-x) without overflow for any x; in [0, 1].
float qt_sigmoidf(float x);

#endif
