"""The three modes (uint8, mixed, float32) train the paper's ConvVAE and the
MLP VAE on the Unix port: the -ELBO of the training samples goes down over
a few hundred MNIST samples, with and without DSGU, and every public entry
point (encode/decode/reconstruct/evaluate, the head) runs in every mode."""
import os

import pytest

from subset import prepare_subset


@pytest.fixture(scope="module")
def train_stream(tmp_path_factory):
    return os.path.join(prepare_subset(tmp_path_factory.mktemp("data")), "train.qtds")


SCRIPT = """
from qtrain import models
from qtrain.data import Stream
N, W = %(n)d, %(w)d
for mode in ("uint8", "mixed", "float32"):
    opt = models.Options(mode=mode, lr=%(lr)r, dsgu=%(dsgu)r, seed=3)
    vae = models.build_vae(%(kind)r, opt, hidden=64)
    s = Stream(%(path)r, shuffle=True, seed=1, limit=N)
    first = last = 0.0
    for i in range(N):
        s.next()
        rec, kl = vae.train_step(s.image)
        if i < W:
            first += rec + kl
        elif i >= N - W:
            last += rec + kl
    s.close()
    mu = models.zeros("f", 10)
    vae.encode(s.image, mu)
    img = bytearray(784)
    vae.reconstruct(s.image, img)
    vae.decode(mu, img)
    r, k = vae.evaluate(s.image)
    head = models.Head(vae)
    head.train_step(s.image, 3)
    head.predict(s.image)
    print("@mode %%s first=%%.2f last=%%.2f eval=%%.2f" %% (mode, first / W, last / W, r + k))
"""


def _parse(out):
    res = {}
    for line in out.splitlines():
        if line.startswith("@mode "):
            f = line.split()
            res[f[1]] = {k: float(v) for k, v in (kv.split("=") for kv in f[2:])}
    return res


@pytest.mark.parametrize("kind,dsgu", [("conv", None), ("conv", (0.1, 1.0)), ("mlp", None)])
def test_each_mode_elbo_goes_down(run, target, train_stream, kind, dsgu):
    if target != "unix":
        pytest.skip("training runs on the Unix port (instruction counts: qtrain_host.bench)")
    out = run(SCRIPT % dict(n=400, w=100, lr=0.001, dsgu=dsgu, kind=kind, path=train_stream))
    res = _parse(out)
    assert sorted(res) == ["float32", "mixed", "uint8"], out
    for mode, r in res.items():
        # -ELBO per sample (nats): ~540 at the start, ~200 after 400 samples.
        assert r["last"] < r["first"] - 40, (mode, r)
        assert r["eval"] == r["eval"] and r["eval"] < 1e4, (mode, r)  # finite


def test_mode_is_checked(run, target):
    if target != "unix":
        pytest.skip("Unix port only")
    out = run("""
from qtrain import models
try:
    models.Options(mode="int4")
except ValueError as e:
    print("E", e)
o = models.Options(mode="mixed", lr=0.01)
print(o.replace(mode="float32").mode, o.replace(mode="float32").lr, o.mode)
""")
    assert "E mode must be one of" in out
    assert "float32 0.01 mixed" in out


def test_error_copy_helper_import_errors(run, target):
    """layers_float._quant8(): a firmware without a native emitter falls back
    to the Python copy, but a MemoryError while importing the viper helpers is
    raised (it was taken for 'no emitter': a 20x slower mixed mode, silently)."""
    if target != "unix":
        pytest.skip("Unix port only (builtins.__import__ is overridable there)")
    out = run("""
import builtins
from qtrain import layers_float as lf
real = builtins.__import__
for exc in (MemoryError, ImportError):
    def imp(name, *a, exc=exc):
        if name.endswith("_quant8"):
            raise exc("test")
        return real(name, *a)
    lf._q8 = None
    builtins.__import__ = imp
    try:
        got = lf._quant8()
        print(exc.__name__, "returned", got)
    except MemoryError:
        print(exc.__name__, "raised", lf._q8)
    builtins.__import__ = real
lf._q8 = None
print("viper", type(lf._quant8()).__name__)
""")
    assert "MemoryError raised None" in out
    assert "ImportError returned False" in out
    assert "viper tuple" in out
