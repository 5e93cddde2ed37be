"""The benchmark's measuring path, tiny: one small Dense layer on qemu-m4,
twice.  Instruction counts must be positive and identical across runs
(QEMU -icount is deterministic).  The full benchmark is `make bench`."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host_tools"))

from qtrain_host import bench, runner  # noqa: E402


def test_bench_quick_deterministic():
    if not runner.available("qemu-m4"):
        if "qemu-m4" in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("qemu-m4 is not built (make setup dist)")
        pytest.skip("qemu-m4 is not built (make setup dist)")
    r1, r2 = bench.quick("qemu-m4")
    assert set(r1) == {"Dense 64->16"}
    v1, v2 = r1["Dense 64->16"], r2["Dense 64->16"]
    for key in ("fwd", "bwd", "upd"):
        assert v1[key] > 0, (key, v1)
        assert v1[key] == v2[key], (key, v1, v2)
    assert v1["macs"] == 64 * 16


def test_mac_counts():
    m = bench.vae_macs()
    assert m["forward"] == 555072            # ~0.56 M (issue 3)
    assert 1.6e6 < m["step"] < 1.65e6        # ~1.6 M per training step
