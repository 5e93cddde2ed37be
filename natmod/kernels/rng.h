// Reproducible random numbers for the latent layer (eps ~ N(0, 1)).
//
// The generator is the module's xorshift32 (qt_rng_next in quant.h): its
// whole state is one uint32 in a caller buffer (array('I', 1) on the Python
// side), so a run is reproducible from its seed, two generators never share
// state, and checkpoints can save it.  Only integer operations and
// correctly rounded float operations are used (qt_logf, qt_sqrtf), so the
// sequence is the same on every arch and in the golden model, bit for bit.
#ifndef QT_RNG_H
#define QT_RNG_H
#include <stddef.h>
#include <stdint.h>

// A state from any seed: the seed is hashed (so seeds 1, 2, 3 give unrelated
// streams; xorshift32 started from a small number gives small numbers first),
// and 0 (a fixed point of xorshift32) is replaced by a constant.
uint32_t qt_rng_seed(uint32_t seed);

// n standard normal draws (Marsaglia's polar method: two 24-bit uniforms in
// (-1, 1) per try, accepted when inside the unit circle, ~1.27 tries per
// pair).  Draws come in pairs; for odd n the second draw of the last pair is
// dropped, so the stream depends only on the state and the sequence of n.
// A state of 0 is replaced as in qt_rng_seed(0) first.
void qt_rng_normal(uint32_t *state, float *out, size_t n);

#endif
