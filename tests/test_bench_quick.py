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


def test_report_from_synthetic_counts():
    """The report's arithmetic on made-up counts: per-MAC figures, the ms
    estimate from the board files' clocks, DSGU ratios, the paper's rows."""
    assert bench.board_clock("qemu-m4") == ("nano33ble", 64e6)
    assert bench.est_ms("qemu-m4", 64e6) == 1000.0
    one = {"fwd": 1000, "bwd": 2000, "upd": 3000, "macs": 1000, "first": False, "kind": "dense"}
    lay = {name: dict(one, kind=kind, macs=bench.layer_macs(kind, a)) for name, kind, a in bench.VAE_LAYERS}
    lay["Sigmoid+BCE 784"] = dict(one, kind="bce", bwd=0, upd=0)
    R = {"layers": {("qemu-m4", "uint8"): lay}, "vae": {}, "dsgu": {}, "dsgu_vae": {},
         "mpy": {"x64": {"_qtrain": 1, "_qtrain_float": 2}}}
    for lmin, f in ((1.0, 1), (0.1, 4)):
        R["dsgu"][("qemu-m4", lmin)] = {n: dict(v, bwd=v["bwd"] // f, upd=v["upd"] // f, k=1)
                                        for n, v in lay.items() if v["kind"] != "bce"}
    text = bench.report(R, "test")
    step = 6 * 6000 + 1000                       # six layers + the loss
    assert "| qemu-m4 | uint8 | 6.0 k | 1.0 k | 30.0 k | %.1f k |" % (step / 1e3) in text
    assert "~%.0f (nano33ble, 64 MHz)" % (step / 64e3) in text
    assert "| qemu-m4 | 0.1 | 6.0 k | 7.5 k | 4.00x cheaper |" in text
    assert "| paper (STM32L4R5) | 0.1 | 45.0 ms | 66.5 ms | 2.76x cheaper | 2.05x cheaper |" in text
    assert "| x64 | 1 | 2 |" in text


def test_report_uses_the_real_heap_run_when_the_budget_does_not_fit():
    """A model that does not fit the 160 KB budget but fits the real board's
    heap: tables b and e take that run and say so; the budget's "no" stays."""
    R = {"layers": {}, "dsgu": {}, "dsgu_vae": {}, "mpy": {},
         "vae": {("qemu-m0", "uint8"): {"fits": 0, "why": "too big", "heap_base": 1}},
         "vae_real": {("qemu-m0", "uint8"): {"fits": 1, "heap": 194560, "heap_base": 1, "forward": 2000,
                                             "loss": 100, "backward": 3000, "step": 5100}}}
    assert bench.step_figures(R, "qemu-m0", "uint8")[3] == 5100
    text = bench.report(R, "test")
    assert "| 5.1 k | %.2f | " % (5100 / bench.vae_macs()["step"]) in text
    assert "measured (at the real board's heap, 194560 B)" in text
    assert "| qemu-m0 | uint8 | 1 | - | - | - | no: too big |" in text
    assert "| qemu-m0 at its real board's heap (194560) | uint8 | 1 |" in text


def test_report_step_without_remap():
    """The re-map run: its table (step with and without re-maps, per-layer
    re-map cost) and the target row taken from the step without re-map."""
    v = {"fits": 1, "forward": 2000, "loss": 100, "backward": 3000, "step": 5100}
    rm = {"remaps": 3, "step": 5200, "step_clean": 4000, "heap": None}
    rm.update({"remap%d" % i: 100 * (i + 1) for i in range(len(bench.VAE_LAYERS))})
    R = {"layers": {}, "dsgu": {}, "dsgu_vae": {}, "mpy": {}, "vae": {("qemu-m4", "uint8"): v},
         "remaps": {"qemu-m4": rm}}
    text = bench.report(R, "test")
    m = bench.vae_macs()["step"]
    assert "| qemu-m4 | 5.2 k | 1.5 | 4.0 k | %.2f | 0.1 k | 0.2 k |" % (4000 / m) in text
    row = [r for r in bench.targets(R) if "qemu-m4" in r[0]][0]
    assert row[0] == "uint8 step without a weight re-map <= 3 instr/MAC on qemu-m4"
    assert row[1] == "%.2f (with this bench's re-maps, 1.5 per step: %.2f)" % (4000 / m, 5200 / m)
