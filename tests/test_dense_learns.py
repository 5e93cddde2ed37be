"""A small uint8 MLP (196 -> 64 ReLU -> 10, MNIST subset at 14x14) trained with
the Dense kernels on the Unix port learns: test accuracy well above chance
after one pass over 3000 samples, in uint8 (each rounding mode, per-tensor and
per-row standardization, with and without DSGU) and in float32.

Run as a script for the option comparison reported in docs/KERNELS.md:
    PYTHONPATH=host_tools build/venv/bin/python tests/test_dense_learns.py
"""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

from qtrain_host import idx, runner  # noqa: E402

N_TRAIN, N_TEST = 3000, 1000

TRAIN = r"""
import math
from array import array
import _qtrain as Q
import _qtrain_float as QF
OPT = %(opt)r
f = open('data.bin', 'rb')
def rd(n):
    b = bytearray(n); f.readinto(b); return b
ntr, nte = %(ntr)d, %(nte)d
X = rd(196 * (ntr + nte)); L = rd(ntr + nte)
mode = OPT['mode']
seed = [OPT.get('seed', 12345)]
def rnd():
    s = seed[0]; s ^= (s << 13) & 0xffffffff; s ^= s >> 17; s ^= (s << 5) & 0xffffffff
    seed[0] = s; return s
def qp(lo, hi, alpha):
    r = array('f', [1, 0, lo, hi, alpha, 0, 0, 0]); Q.qp_from_range(r); return r
n0, n1, n2 = 196, 64, 10
def init_w(m, n):
    a = math.sqrt(6 / (m + n))
    if mode == 'f32':
        w = array('f', bytearray(4 * m * n))
        for i in range(m * n):
            w[i] = ((rnd() & 0xffff) / 32768 - 1) * a
        return w, None
    return bytearray(rnd() & 255 for _ in range(m * n)), qp(-a, a, OPT['alpha_w'])
w1, w1q = init_w(n1, n0); w2, w2q = init_w(n2, n1)
hp = array('f', [OPT['lr'], OPT['alpha_norm'], OPT['tau']])
flags = OPT['rounding'] | (4 if OPT['per_row'] else 0)
st1 = array('f', [0] * (5 + 2 * n1)); st2 = array('f', [0] * (5 + 2 * n2)); rng = array('I', [7])
dhp = array('f', [OPT['lmin'], 1.0])
sel1 = array('i', [0] * n1); scr1 = array('I', [0] * (2 * n1)); ds1 = array('f', [0])
sel2 = array('i', [0] * n2); scr2 = array('I', [0] * (2 * n2)); ds2 = array('f', [0])
ksum = [0, 0]
if mode == 'f32':
    x = array('f', [0] * n0); h = array('f', [0] * n1); y = array('f', [0] * n2)
    b1 = array('f', [0] * n1); b2 = array('f', [0] * n2)
    e2 = array('f', [0] * n2); e1 = array('f', [0] * n1)
else:
    x = bytearray(n0); xq = qp(0, 1, 0)
    h = bytearray(n1); hq = qp(0, 4, 0.1)
    y = bytearray(n2); yq = qp(-8, 8, 0.1)
    b1 = array('i', [0] * n1); b2 = array('i', [0] * n2)
    bq = array('f', [1e-4, 0, -1, 1, 0, 0, 0, 0])
    e2 = bytearray(n2); e2q = qp(-1, 1, 0)
    e1 = bytearray(n1); e1q = qp(-0.1, 0.1, 0.1)
    acc1 = array('i', [0] * n1)
    xs = array('i', [0] * n0); hs = array('i', [0] * n1)
def load(i):
    o = 196 * i
    if mode == 'f32':
        for j in range(196):
            x[j] = X[o + j] / 255
    else:
        x[:] = X[o:o + 196]
def forward():
    if mode == 'f32':
        QF.dense_forward_f32(x, w1, b1, h, 1); QF.dense_forward_f32(h, w2, b2, y, 0)
        return list(y)
    Q.dense_forward_u8(x, xq, w1, w1q, b1, bq, h, hq, 1, xs)
    Q.dense_forward_u8(h, hq, w2, w2q, b2, bq, y, yq, 0, hs)
    s, z = yq[0], yq[1]
    return [s * (v - z) for v in y]
def softmax(v):
    mx = max(v); ex = [math.exp(t - mx) for t in v]; s = sum(ex)
    return [t / s for t in ex]
def step(lab):
    p = softmax(forward())
    k2, k1 = n2, n1
    if mode == 'f32':
        for i in range(n2):
            e2[i] = p[i] - (1 if i == lab else 0)
        s2 = None
        if OPT['lmin'] < 1:
            k2 = QF.dense_select_f32(e2, dhp, ds2, sel2, scr2); s2 = sel2
        QF.dense_backward_f32(e2, w2, e1, s2, k2)
        QF.relu_backward_f32(e1, h)
        QF.dense_update_f32(e2, h, w2, b2, s2, k2, hp, flags & 4 | OPT['plain'], st2)
        s1 = None
        if OPT['lmin'] < 1:
            k1 = QF.dense_select_f32(e1, dhp, ds1, sel1, scr1); s1 = sel1
        QF.dense_update_f32(e1, x, w1, b1, s1, k1, hp, flags & 4 | OPT['plain'], st1)
    else:
        for i in range(n2):
            v = int((p[i] - (1 if i == lab else 0)) / e2q[0] + e2q[1] + 0.5)
            e2[i] = 0 if v < 0 else (255 if v > 255 else v)
        s2 = None
        if OPT['lmin'] < 1:
            k2 = Q.dense_select_u8(e2, e2q, dhp, ds2, sel2, scr2); s2 = sel2
        Q.dense_backward_u8(e2, e2q, w2, w2q, e1, e1q, s2, k2, acc1)
        Q.relu_backward_u8(e1, e1q, h, hq)
        Q.dense_update_u8(e2, e2q, h, hq, w2, w2q, b2, bq, s2, k2, hp, flags, st2, rng)
        s1 = None
        if OPT['lmin'] < 1:
            k1 = Q.dense_select_u8(e1, e1q, dhp, ds1, sel1, scr1); s1 = sel1
        Q.dense_update_u8(e1, e1q, x, xq, w1, w1q, b1, bq, s1, k1, hp, flags, st1, rng)
        Q.qp_update(hq); Q.qp_update(yq); Q.qp_update(e1q)
    ksum[0] += k1; ksum[1] += k2
for i in range(ntr):
    load(i); step(L[i])
ok = 0
for i in range(ntr, ntr + nte):
    load(i); v = forward()
    ok += v.index(max(v)) == L[i]
print('acc %%.4f k1 %%.2f k2 %%.2f' %% (ok / nte, ksum[0] / ntr / n1, ksum[1] / ntr / n2))
"""

BASE = dict(mode="u8", lr=0.001, alpha_norm=0.85, tau=0.02, rounding=0, per_row=0, lmin=1.0,
            alpha_w=0.001, plain=0)


def _data():
    d = os.path.join(ROOT, "data", "mnist-subset")
    X = idx.read_images(os.path.join(d, "train-images-idx3-ubyte.gz"))
    L = idx.read_labels(os.path.join(d, "train-labels-idx1-ubyte.gz"))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(L))[:N_TRAIN + N_TEST]
    X = np.asarray(X)[order].reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    return np.round(X).astype(np.uint8).tobytes() + np.asarray(L)[order].astype(np.uint8).tobytes()


def train(opt, data=None, target="unix"):
    o = dict(BASE)
    o.update(opt)
    script = TRAIN % dict(opt=o, ntr=N_TRAIN, nte=N_TEST)
    res = runner.run_script(target, script, files={"data.bin": data or _data()}, timeout=900)
    if res.returncode:
        raise RuntimeError(res.output[-3000:])
    line = [l for l in res.output.splitlines() if l.startswith("acc ")][0].split()
    return float(line[1]), float(line[3]), float(line[5])


OPTIONS = [
    ("uint8 nearest, per tensor", {}),
    ("uint8 floor, per tensor", dict(rounding=1)),
    ("uint8 stochastic, per tensor", dict(rounding=2)),
    ("uint8 nearest, per row", dict(per_row=1)),
    ("uint8 stochastic, per row", dict(rounding=2, per_row=1)),
    ("uint8 stochastic per row (3), per tensor", dict(rounding=3)),
    ("uint8 stochastic per row (3), DSGU lmin 0.1", dict(rounding=3, lmin=0.1)),
    ("uint8 stochastic, DSGU lmin 0.1", dict(rounding=2, lmin=0.1)),
    ("uint8 stochastic, DSGU lmin 0.5", dict(rounding=2, lmin=0.5)),
    ("uint8 nearest, per tensor, lr 0.005", dict(lr=0.005)),
    ("uint8 stochastic, per tensor, lr 0.005", dict(rounding=2, lr=0.005)),
    ("uint8 nearest, DSGU lmin 0.1", dict(lmin=0.1)),
    ("uint8 nearest, no smoothing (alpha_norm 1)", dict(alpha_norm=1.0)),
    ("float32 standardized", dict(mode="f32")),
    ("float32 plain SGD lr 0.01", dict(mode="f32", plain=8, lr=0.01)),
]


@pytest.mark.skipif(not runner.available("unix"), reason="Unix port not built")
def test_uint8_mlp_learns():
    data = _data()
    acc, _, _ = train(dict(rounding=2), data)
    assert acc > 0.65, acc
    acc, k1, k2 = train(dict(lmin=0.1, rounding=2), data)
    assert acc > 0.5 and k1 < 0.9, (acc, k1)


if __name__ == "__main__":
    # mean over 3 weight initialisations (seeds)
    data = _data()
    for name, opt in OPTIONS:
        rs = [train(dict(opt, seed=sd), data) for sd in (12345, 777, 4242)]
        acc = [r[0] for r in rs]
        print("%-45s acc %.3f (min %.3f max %.3f)  k1 %.2f  k2 %.2f" % (
            name, np.mean(acc), min(acc), max(acc), rs[0][1], rs[0][2]), flush=True)
