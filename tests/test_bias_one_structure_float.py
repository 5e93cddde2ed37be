"""The float32 and mixed bias updates at one or two structures (DSGU's k = 1,
2; the VAE's one-filter ConvT 16->1): standardized by their RMS (mean 0),
as the uint8 ones (tests/test_bias_one_structure.py, KERNELS.md "DSGU at
k = 1").  Centred, a lone bias had spread 0 and the sigma guard froze it for
the whole run, and two stepped +-lr whatever their gradients' signs; the
float32 ConvTranspose2d's biases went through update_rows_f32 as one row,
centred over all of them, so a step also moved the biases with no gradient
(by lr mu / sigma).

Every entry point that updates a float32 or mixed bias is called twice from a
fresh state with one or two structures holding a positive bias gradient of
different sizes; each such bias must move down by lr g / sigma (sigma: the
RMS, blended over the two steps as qt_std_blend does), the others not at all.
Then whole float32 and mixed ConvVAEs on the Unix port: every bias with a
gradient moves, the last layer's one included."""
import numpy as np
import pytest

from casefile import pack, parse
from qtrain_host.golden import quant as GQ
from test_dense_u8 import DEVICE_LIB

SCRIPT = DEVICE_LIB.replace("import _qtrain as Q\n", "") + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    fl, hp = rdn(f, 2)
    kind, steps = fl[0], fl[1]
    if kind == 0:       # dense_update_f32(e, x, w, b, sel, k, hp, flags, state)
        x, w, b, sel, st = rdn(f, 5)
        for s in range(steps):
            e = rd(f)
            QF.dense_update_f32(e, x, w, b, sel, fl[2], hp, fl[3], st)
    elif kind == 1:     # dense_update_mixed(e, x, xq, w, wq, b, bq, sel, k, hp, flags, state, rng)
        x, xq, w, wq, b, bq, sel, st, rng = rdn(f, 9)
        for s in range(steps):
            e = rd(f)
            QF.dense_update_mixed(e, x, xq, w, wq, b, bq, sel, fl[2], hp, fl[3], st, rng)
    elif kind == 2:     # update_rows_f32(g, w, gb, b, hp, flags, state)
        w, b, st = rdn(f, 3)
        for s in range(steps):
            g, gb = rdn(f, 2)
            QF.update_rows_f32(g, w, gb, b, hp, fl[3], st)
    elif kind == 3:     # update_rows_mixed(g, w, wq, gb, b, bq, hp, flags, state, rng)
        w, wq, b, bq, st, rng = rdn(f, 6)
        for s in range(steps):
            g, gb = rdn(f, 2)
            QF.update_rows_mixed(g, w, wq, gb, b, bq, hp, fl[3], st, rng)
    elif kind == 4:     # bias_update_f32(gb, b, hp, flags, state)
        b, st = rdn(f, 2)
        for s in range(steps):
            gb = rd(f)
            QF.bias_update_f32(gb, b, hp, fl[3], st)
    else:               # conv2d / conv_transpose2d_update_mixed
        x, xq, w, wq, b, bq, sel, st, rng, gm = rdn(f, 10)
        fn = QF.conv_transpose2d_update_mixed if kind == 6 else QF.conv2d_update_mixed
        scr = bytearray(8192)
        for s in range(steps):
            e = rd(f)
            fn(e, x, xq, w, wq, b, bq, tuple(gm), sel, fl[2] if sel else None, hp, fl[3], st, rng, scr)
    out('B', i, b, st)
print('done')
"""

CONV = (2, 5, 5, 3, 3, 3, 1, 1, 1, 1)                # Conv 2x5x5 -> 3x5x5
CONVT = (3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1)         # ConvT 3x3x3 -> 2x6x6
CONVT1 = (4, 3, 3, 1, 3, 3, 2, 2, 1, 1, 1, 1)        # one filter, as the VAE's ConvT 16->1
LR, ALPHA, S_B = 0.01, 0.15, 1e-4


def expected_steps(grads):
    """The bias steps (float64) of the RMS rule over the steps' gradients
    (one array per step, 0 where a structure has none)."""
    sig, out = None, []
    for g in grads:
        nz = g[g != 0]
        rms = np.sqrt(np.mean(nz * nz))
        sig = rms if sig is None else (1 - ALPHA) * sig + ALPHA * rms
        out.append(-LR * g / sig)
    return sum(out)


def make_cases(rng):
    """-> [(kind name, k, data bytes, b0, expected bias change, int bias?)]."""
    cases = []
    hp = np.array([LR, ALPHA, 0.02], np.float32)
    bq = GQ.new_qp(-1, 1)
    bq[GQ.SCALE], bq[GQ.ZERO] = np.float32(S_B), 0
    for kind in range(7):
        for k in (1, 2):
            if kind == 6 and k == 2:
                geom_k = [(CONVT, 2), (CONVT1, 1)]   # two filters; the one-filter layer
            elif kind == 5:
                geom_k = [(CONV, k)]
            elif kind == 6:
                geom_k = [(CONVT, 1)]
            else:
                geom_k = [(None, k)]
            for geom, kk in geom_k:
                cases.append(_case(rng, kind, kk, geom, hp, bq))
    return cases


def _positive_grads(rng, k):
    """k different positive bias gradients (their ratio matters for k = 2)."""
    return np.sort(rng.uniform(0.05, 1.0, k))[::-1] * np.array([1.0, 0.3][:k])


def _case(rng, kind, k, geom, hp, bq):
    steps = 2
    name = ["dense_update_f32", "dense_update_mixed", "update_rows_f32", "update_rows_mixed",
            "bias_update_f32", "conv2d_update_mixed", "conv_transpose2d_update_mixed"][kind]
    flags = 4 if kind >= 5 else int(rng.integers(0, 2)) * 4    # per tensor or per row (the batch-1 conv: per filter)
    m = 6 if geom is None else geom[3]
    rows = np.sort(rng.choice(m, k, replace=False)).astype(np.int32)
    data = pack(np.array([kind, steps, k, flags], np.int32), hp)
    integer = kind in (1, 3, 5, 6)
    b0 = (rng.integers(-3000, 3000, m).astype(np.int32) if integer
          else rng.uniform(-1, 1, m).astype(np.float32))
    st = np.zeros(5 + 2 * m, np.float32)
    seed = np.array([12345], np.uint32)
    n = 9
    grads = []
    if kind in (0, 1):
        x = rng.uniform(-1, 1, n).astype(np.float32)
        sel = np.concatenate([rows, np.setdiff1d(np.arange(m), rows)]).astype(np.int32)
        if kind == 0:
            w = rng.uniform(-0.5, 0.5, m * n).astype(np.float32)
            data += pack(x, w, b0, sel, st)
        else:
            xq = GQ.new_qp(-1, 1)
            wq = GQ.new_qp(-0.5, 0.5)
            data += pack(GQ.quantize(x, xq[GQ.SCALE], xq[GQ.ZERO]).astype(np.uint8), xq,
                         rng.integers(40, 216, m * n).astype(np.uint8), wq, b0, bq, sel, st, seed)
        for _ in range(steps):
            e = rng.uniform(-1, 1, m).astype(np.float32)     # rows outside sel[:k] carry errors too
            e[rows] = _positive_grads(rng, k)
            data += pack(e)
            g = np.zeros(m)
            g[rows] = e[rows]
            grads.append(g)
    elif kind in (2, 3, 4):
        length = 5
        if kind == 2:
            data += pack(rng.uniform(-0.5, 0.5, m * length).astype(np.float32), b0, st)
        elif kind == 3:
            data += pack(rng.integers(40, 216, m * length).astype(np.uint8), GQ.new_qp(-0.5, 0.5), b0, bq,
                         st, seed)
        else:
            data += pack(b0, np.zeros(7, np.float32))    # the float32 ConvTranspose2d's bias state
        for _ in range(steps):
            gb = np.zeros(m, np.float32)
            gb[rows] = _positive_grads(rng, k)
            g = np.zeros((m, length), np.float32)
            g[rows] = rng.uniform(-1, 1, (k, length))
            data += pack(gb) if kind == 4 else pack(g.ravel(), gb)
            grads.append(gb.astype(np.float64))
    else:
        t = kind == 6
        ci, ih, iw, co, kh, kw = geom[:6]
        if t:
            oh = (ih - 1) * geom[6] - 2 * geom[8] + kh + geom[10]
            ow = (iw - 1) * geom[7] - 2 * geom[9] + kw + geom[11]
        else:
            oh = (ih + 2 * geom[8] - kh) // geom[6] + 1
            ow = (iw + 2 * geom[9] - kw) // geom[7] + 1
        xq, wq = GQ.new_qp(0, 1), GQ.new_qp(-0.5, 0.5)
        sel = None if co == 1 else rows
        data += pack(rng.integers(0, 256, ci * ih * iw).astype(np.uint8), xq,
                     rng.integers(40, 216, ci * co * kh * kw).astype(np.uint8), wq, b0, bq, sel, st, seed,
                     np.array(geom, np.int32))
        for _ in range(steps):
            e = rng.uniform(-0.2, 0.2, (co, oh, ow)).astype(np.float32)
            for j, r in enumerate(rows):     # a positive error sum of the selected filters' maps
                e[r] = np.abs(e[r]) * (1.0 if j == 0 else 0.3)
            data += pack(e.ravel())
            g = np.zeros(co)
            g[rows] = e[rows].astype(np.float64).sum(axis=(1, 2))
            grads.append(g)
    exp = expected_steps(grads)
    if integer:
        exp = exp / S_B
    return dict(name=name, k=k, geom=geom, flags=flags, rows=rows, data=data, b0=b0, exp=exp,
                integer=integer, steps=steps)


def test_float_bias_rms_at_one_and_two_structures(run):
    rng = np.random.default_rng(7)
    cases = make_cases(rng)
    data = pack(np.array([len(cases)], np.int32)) + b"".join(c["data"] for c in cases)
    out = run(SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    res = parse(out, "B")
    assert len(res) == len(cases)
    for i, c in enumerate(cases):
        tag = "%s k=%d %s flags=%d rows %s" % (c["name"], c["k"], c["geom"], c["flags"], list(c["rows"]))
        b = np.frombuffer(res[i][0], np.int32 if c["integer"] else np.float32)
        moved = b.astype(np.float64) - c["b0"]
        rows = c["rows"]
        assert np.all(moved[rows] < 0), tag + ": a bias with a positive gradient did not move down: %s" % moved
        # floats: float32 sums; int32 biases: one rounding (nearest) per step
        tol = c["steps"] * 0.51 if c["integer"] else 1e-5 + 1e-4 * np.abs(c["exp"])
        assert np.all(np.abs(moved - c["exp"]) <= tol), tag + ": %s, expected %s" % (moved, c["exp"])
        st = np.frombuffer(res[i][1], np.float32)
        assert st[3] == 0 and st[4] > 0, tag + ": state %s" % st[:5]


VAE_SCRIPT = r"""
from qtrain import models, layers
opt = layers.Options(lr=0.0005, mode=%r, dsgu=%r)
vae = models.build_vae('conv', opt, latent=10)
imgs = []
s = 12345
for n in range(3):
    x = bytearray(784)
    for i in range(784):
        s = (s * 1103515245 + 12345) & 0x7fffffff
        r, c = i // 28, i %% 28
        x[i] = 255 if (6 + n <= c <= 19 and 6 <= r <= 21 and (s >> 16) %% 5) else 0
    imgs.append(x)
ls = vae.encoder.layers + vae.decoder.layers
b0 = [list(l.b) for l in ls]
for x in imgs:
    vae.train_step(x)
for i, l in enumerate(ls):
    print('M', i, len(l.b), sum(1 for a, c in zip(b0[i], l.b) if a != c))
print('done')
"""


@pytest.mark.parametrize("mode", ["float32", "mixed"])
@pytest.mark.parametrize("dsgu", [None, (0.1, 0.1)])
def test_vae_biases_move(run, mode, dsgu):
    """Three steps of the ConvVAE: without DSGU every bias moves (the last
    ConvT 16->1's one included: centred, it never trained in float32); at
    lmin = lmax = 0.1 (k = 1 in Conv 1->16, ConvT 32->16 and ConvT 16->1) the
    layers' few selected biases move and no more: at most one filter's per
    step there, at least one."""
    if run.target != "unix":
        pytest.skip("the float32 and mixed ConvVAEs need more than a board's heap")
    out = run(VAE_SCRIPT % (mode, dsgu))
    rows = [line.split() for line in out.splitlines() if line.startswith("M ")]
    assert len(rows) == 6, out[-2000:]
    for _, i, n, moved in rows:
        i, n, moved = int(i), int(n), int(moved)
        what = "%s dsgu=%s layer %d: %d of %d biases moved" % (mode, dsgu, i, moved, n)
        if i == 3:
            # Dense 10->1568 (ReLU): the outputs at 0 in all three steps have no
            # error, so no bias gradient (1377-1431 of 1568 move without DSGU)
            assert moved > n // 20 if dsgu else moved > n // 2, what
        elif dsgu is None or n == 1:
            assert moved == n, what
        elif i in (0, 4):    # Conv 1->16, ConvT 32->16 at k = 1: three steps
            assert 1 <= moved <= 3, what
        else:
            assert moved > 0, what
