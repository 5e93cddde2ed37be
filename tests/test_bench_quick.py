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
    assert "| qemu-m4 | synthetic | 5.2 k | 1.5 | 4.0 k | %.2f | 0.1 k | 0.2 k |" % (4000 / m) in text
    row = [r for r in bench.targets(R) if "qemu-m4" in r[0]][0]
    assert row[0] == "uint8 step without a weight re-map <= 3 instr/MAC on qemu-m4"
    assert row[1] == "%.2f (with this bench's re-maps, 1.5 per step: %.2f)" % (4000 / m, 5200 / m)


def _trained_R(board_crc=7):
    """Made-up results with the trained state (bench_trained.collect's keys)
    next to the synthetic one, on qemu-m4."""
    v = {"fits": 1, "forward": 2000, "loss": 100, "backward": 3000, "step": 5100}
    rm = {"remaps": 0, "step": 5200, "step_clean": 5000, "heap": None}
    t = {"forward": 1000, "loss": 50, "backward": 2000, "step": 3050, "step_clean": 3000, "remaps": 3,
         "clean": 6, "n": 8, "crc": board_crc, "k": "16.0,32.0,20.0,1568.0,16.0,1.0", "heap": 204800}
    lay = {name: {"fwd": 1, "bwd": 1, "upd": 1, "k": 1, "kind": kind} for name, kind, _ in bench.VAE_LAYERS}
    return {"layers": {}, "vae": {("qemu-m4", "uint8"): v}, "remaps": {"qemu-m4": rm}, "mpy": {},
            "dsgu": {("qemu-m4", 1.0): lay, ("qemu-m4", 0.1): lay},
            "dsgu_vae": {("qemu-m4", 1.0): {"fits": 1, "forward": 2000, "backward": 3000},
                         ("qemu-m4", 0.1): {"fits": 1, "forward": 2000, "backward": 1000}},
            "trained": {"qemu-m4": t},
            "trained_dsgu": {("qemu-m4", 1.0): dict(t, backward=2400), ("qemu-m4", 0.1): dict(t, backward=600)},
            "trained_info": {"n": 1500, "opts": {"lr": 0.0005, "seed": 5}, "elbo_last100": 189.67},
            "zeros": {"trained": {"x": [0.785, 0.724, 0.6, 0.0, 0.49, 0.535], "e": [0.7, 0.6, 0.0, 0.56, 0.61, 0.18],
                                  "crc": 7},
                      "synthetic": {"x": [0.755, 0.765, 0.694, 0.05, 0.485, 0.518], "e": [0.1] * 6}}}


def test_report_trained_state():
    """The trained state's rows in tables b and c and the re-map table, its
    zero fractions, and the targets judged on it with the synthetic figure
    beside it."""
    R = _trained_R()
    text = bench.report(R, "test")
    m = bench.vae_macs()
    assert "| qemu-m4 | uint8 (synthetic) | 2.0 k | 0.1 k | 3.0 k | 5.1 k |" in text
    assert ("| qemu-m4 | uint8 (trained) | 1.0 k | 0.1 k | 2.0 k | 3.0 k | %.2f | %.2f |"
            % (3050 / m["step"], 1000 / m["forward"])) in text
    assert "measured (at the real board's heap, 204800 B), mean of 8 MNIST test images |" in text
    assert "first 1500 images of data/mnist-subset" in text and "-ELBO of its last 100 steps 189.7" in text
    # re-maps: the synthetic run's 2 steps, the trained run's 8
    assert "| qemu-m4 | synthetic | 5.2 k | 0.0 | 5.0 k |" in text
    assert ("| qemu-m4 (at the real board's heap, 204800 B) | trained (8 test images, 6 without a re-map) "
            "| 3.0 k | 0.4 | 3.0 k | %.2f |" % (3000 / m["step"])) in text
    # zero fractions, both states, and the CRC check of the boards' steps
    assert "| synthetic | input | 0.76 | 0.77 | 0.69 | 0.05 | 0.48 | 0.52 |" in text   # %.2f of 0.755 (binary) etc.
    assert "| trained | input | 0.79 | 0.72 | 0.60 | 0.00 | 0.49 | 0.54 |" in text
    assert "| trained | error after the ReLU mask | 0.70 | 0.60 | 0.00 | 0.56 | 0.61 | 0.18 |" in text
    assert "the same CRC-32 there as on qemu-m4" in text and "do not" not in text
    # table c: both states, each against its own lmin = 1.0
    assert "| qemu-m4 (synthetic) | 0.1 | 2.0 k | 1.0 k | 3.00x cheaper |" in text
    assert "| qemu-m4 (trained) | 0.1 | 1.0 k | 0.6 k | 4.00x cheaper | 2.12x cheaper |" in text
    rows = {r[0]: r for r in bench.targets(R)}
    step = rows["uint8 step without a weight re-map <= 3 instr/MAC on qemu-m4"]
    assert step[1] == ("%.2f trained (mean of the 6 of 8 test-image steps without a re-map; all 8: %.2f); "
                       "synthetic %.2f (with this bench's re-maps, 0.0 per step: %.2f)"
                       % (3000 / m["step"], 3050 / m["step"], 5000 / m["step"], 5200 / m["step"]))
    assert step[2] == "yes"
    assert rows["DSGU lmin=0.1 backward >= 6x cheaper (qemu-m4)"][1:] == ("4.00x trained; synthetic 3.00x",
                                                                         "no (1.5x short)")


def test_report_trained_state_flags_a_board_whose_steps_differ():
    """The zero fractions are counted on the Unix port: a board whose weights
    after the same steps have another CRC is named (its kernels are not
    bit-exact, so the fractions may not be its own)."""
    text = bench.report(_trained_R(board_crc=8), "test")
    assert "**on qemu-m4 they do not**" in text


def test_trained_settings_are_the_training_defaults():
    """The trained model uses qtrain.defaults.VAE_DEFAULTS (read from the
    MicroPython source) with the bench's seed, and its cache key changes with
    what the checkpoint depends on."""
    from qtrain_host import bench_trained as T
    o = T.training_options()
    assert o["lr"] == 0.0005 and o["seed"] == 5 and o["mode"] == "uint8" and o["rounding"] == "stochastic"
    if not os.path.exists(bench.paths.natmod_path("x64")):
        pytest.skip("no x64 natmod (make dist)")
    k = T.cache_key(b"abc", o, 10)
    assert k == T.cache_key(b"abc", dict(o), 10)
    assert len({k, T.cache_key(b"abd", o, 10), T.cache_key(b"abc", dict(o, lr=0.001), 10),
                T.cache_key(b"abc", o, 11)}) == 4
