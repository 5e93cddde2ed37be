"""The bench's trained state (qtrain_host.bench_trained), small: a model
trained on 20 images on the Unix port, cached, its zero fractions, and its
steps on qemu-m4 loaded through the package's resume code.  The full bench
(`python -m qtrain_host.bench`) trains on 1500."""
import os

import numpy as np
import pytest

from qtrain_host import bench_trained as T
from qtrain_host import runner


def _need(target):
    if not runner.available(target):
        if target in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("%s is not built (make setup dist)" % target)
        pytest.skip("%s is not built (make setup dist)" % target)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(checkpoint path, info, zero fractions) of a model trained on 20 images,
    cached in a directory of its own."""
    _need("unix")
    cache = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    mp.setattr(T, "CACHE", str(cache))
    try:
        path, info = T.checkpoint(log=lambda s: None, n=20)
        # cached: a second call finds it without training again
        mp.setattr(T, "run_script", lambda *a, **k: pytest.fail("trained again"))
        assert T.checkpoint(log=lambda s: None, n=20) == (path, info)
        mp.undo()
        zeros = T.zero_fractions(path)
    finally:
        mp.undo()
    return path, info, zeros


def test_trained_checkpoint_and_zero_fractions(small):
    path, info, z = small
    assert os.path.exists(path) and info["n"] == 20 and info["opts"]["seed"] == T.SEED
    assert 0 < info["elbo_last100"] < 2000
    for state in ("trained", "synthetic"):
        for key in ("x", "e"):
            assert len(z[state][key]) == 6 and all(0 <= f <= 1 for f in z[state][key]), (state, key, z)
    # The first layer's input is the image (zero point 0): its fraction is the
    # test images' share of 0 pixels, and the blob's background (>= 592 of 784).
    imgs = np.frombuffer(T.images("test", T.N_TEST), np.uint8)
    assert z["trained"]["x"][0] == pytest.approx(float((imgs == 0).mean()), abs=5e-4)
    assert z["synthetic"]["x"][0] >= 592 / 784 - 5e-4
    # The error is counted after the ReLU mask: it is at its zero point wherever
    # the layer's output was (the next layer's input, the same steps), and more
    for state in ("trained", "synthetic"):
        for i in (0, 1, 3, 4):     # c1, c2, d2, t1 (d1's output goes to the latent layer)
            assert z[state]["e"][i] >= z[state]["x"][i + 1] - 1e-9, (state, i, z)
    # ReLU layers' inputs and masked errors hold zeros; the states differ
    assert min(z["trained"]["x"][1:3]) > 0.1 and min(z["trained"]["e"][0:2]) > 0.1
    assert z["trained"]["x"] != z["synthetic"]["x"]


def test_trained_steps_on_the_board_are_the_unix_ports(small):
    """The board loads the checkpoint with qtrain.vae_resume and makes the
    same steps as the Unix port: the same weights' CRC after them (a board
    that did not load it, or whose kernels differ, would not), and figures
    for every part.  DSGU at lmin 0.1 updates fewer rows than at 1.0."""
    _need("qemu-m4")
    path, _, z = small
    from qtrain_host import bench
    if not bench.has_real_heap_firmware("qemu-m4"):
        pytest.skip("no firmware at the real board's heap (make firmware)")
    t = T.board_steps("qemu-m4", path)["t"]
    assert t["crc"] == z["trained"]["crc"]
    assert t["n"] == T.N_TEST and t["heap"] == 204800
    assert t["step"] == pytest.approx(t["forward"] + t["loss"] + t["backward"], abs=2)
    assert t["forward"] > 0 and t["loss"] > 0 and t["backward"] > t["forward"]
    assert 0 <= t["clean"] <= T.N_TEST and ("step_clean" in t) == (t["clean"] > 0)
    d = T.board_steps("qemu-m4", path, (1.0, 0.1))
    assert d[1.0]["crc"] == z["trained"]["crc"]      # all rows selected: the same updates as without DSGU
    assert d[0.1]["crc"] != d[1.0]["crc"]
    assert d[0.1]["backward"] < d[1.0]["backward"] / 2
    assert d[0.1]["k"].split(",")[:2] == ["1.0", "3.0"]
