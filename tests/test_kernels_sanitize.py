"""Every operator's C kernels built for the host with AddressSanitizer +
UndefinedBehaviorSanitizer (any report aborts) and checked against the
golden model through ctypes (qtrain_host.soak_sanitize): Dense (uint8,
float32 and mixed), Conv2d / ConvTranspose2d (uint8 forward, ReLU mask,
error propagation, gradient, update in every rounding mode, float32, mixed,
DSGU selection), sigmoid + BCE, softmax + CE, the latent layer, the
quantization core and the batch update, and the DSGU selections with the
fused ReLU mask (Dense rows, Conv channel scores).  A quick subset of `make
soak-sanitize`."""
import pytest

from qtrain_host import soak_sanitize

pytestmark = pytest.mark.skipif(bool(soak_sanitize.available()), reason="host gcc with AddressSanitizer not available")


def test_every_operator_under_sanitizers_matches_golden():
    r = soak_sanitize.run(cases=40, seed=5, log=lambda *a: None, timeout=600)
    assert not r["crashed"] and not r["memory"] and not r["ub"], r["crashed"] + "\n" + r["tail"]
    assert not r["mismatches"], r["mismatches"][:10]
    assert r["cases"] == {op: 40 for op in soak_sanitize.OPS}
