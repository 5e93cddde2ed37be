"""Biases standardized over one or two structures still learn, each against
its own gradient: DSGU at k = 1 (Conv 1->16 and ConvT 32->16 at lmin = lmax
= 0.1), k = 2 (Dense 1568->20) and a one-filter layer (the VAE's ConvT
16->1, in every mode) hand the per-tensor bias statistics one or two
gradients.  Centred, one has spread 0 (the sigma guard froze that bias for
the whole run) and two become exactly +-1 whatever their signs (the lmin =
lmax = 0.1 ConvVAE diverged, KERNELS.md "DSGU at k = 1").  Biases are
standardized by their RMS (mean 0).  Bit-exact against the golden model on
every target; each case checks that the selected biases moved against their
gradients."""
import numpy as np

from casefile import parse_fields
from qtrain_host.golden import dense as GD
from qtrain_host.golden import quant as GQ
from test_conv_kernels import G, UPD_SCRIPT as CONV_UPD_SCRIPT, VAE_GEOMS, pack, parse, u8_case
from test_dense_u8 import DEVICE_LIB
from test_dense_train_u8 import _case

DENSE_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    x, xq, w, wq, b, bq, hp, st, rng, sel, fl = rdn(f, 11)
    flags, nsteps, k = fl[0], fl[1], fl[2]
    for s in range(nsteps):
        e, eq = rdn(f, 2)
        Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, sel, k, hp, flags, st, rng)
    out('U', i, w, wq, b, st, rng)
print('done')
"""


def run_dense_cases(run, cases):
    """Each case (keys c, b, bq, hp, st, seed, sel, k, flags, steps) through
    DENSE_SCRIPT -> its output fields (w, wq, b, state, rng)."""
    data = b""
    for cs in cases:
        c = cs["c"]
        data += pack(c["x"], c["xq"], c["w"].ravel(), c["wq"], cs["b"], cs["bq"], cs["hp"], cs["st"], cs["seed"],
                     cs["sel"], np.array([cs["flags"], len(cs["steps"]), cs["k"]], np.int32))
        for e, eq in cs["steps"]:
            data += pack(e, eq)
    out = run(DENSE_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    assert "done" in out, out[-2000:]
    lines = parse_fields(out, "U")
    assert len(lines) == len(cases)
    return lines


def run_conv_update_cases(run, cases):
    """Each case (c, sel, k, flags, hp, state, wq, seed, ...: c from
    test_conv_kernels.u8_case) through CONV_UPD_SCRIPT -> its parsed
    outputs (w, wq, b, state, ...)."""
    data = bytearray()
    for c, sel, k, flags, hp, state, wq, seed in (cs[:8] for cs in cases):
        fl = np.array([int(c["t"]), flags, k] + list(c["geom"]), np.int32)
        data += pack(fl, c["x"].ravel(), c["xq"], c["w"].ravel(), wq, c["b"], c["bq"],
                     c["e"].ravel(), c["eq"], sel, hp, state, seed)
    out = run(CONV_UPD_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + bytes(data)})
    assert "done" in out, out[-2000:]
    res = parse(out, "U")
    assert len(res) == len(cases)
    return res


def dense_rows_case(rng, k_of_m):
    """A DENSE_SCRIPT case of m >= 2 rows with k = k_of_m(m) of them
    selected (keys c, rows, sel, k, b, bq, hp, st, seed; the caller adds
    flags and steps): a fresh state, biases at scale 1e-4."""
    c = _case(rng)
    while c["m"] < 2:
        c = _case(rng)
    m = c["m"]
    k = k_of_m(m)
    rows = np.sort(rng.choice(m, k, replace=False)).astype(np.int32)
    sel = np.concatenate([rows, np.zeros(m - k, np.int32)])   # only sel[:k] counts
    b = rng.integers(-3000, 3000, m, dtype=np.int32)
    bq = GQ.new_qp(-1, 1)
    bq[GQ.SCALE], bq[GQ.ZERO] = np.float32(1e-4), 0
    hp = np.array([0.01, float(rng.choice([1.0, 0.15])), 0.02], np.float32)
    st = np.zeros(5 + 2 * m, np.float32)
    seed = np.array([int(rng.integers(1, 2**32))], np.uint32)
    return dict(c=c, rows=rows, sel=sel, k=k, b=b, bq=bq, hp=hp, st=st, seed=seed)


def dense_golden(cs, sel, k, flags):
    """The golden model's w, wq, b, state after the steps of a
    DENSE_SCRIPT case (keys c, b, bq, hp, st, seed, steps)."""
    c = cs["c"]
    m = c["m"]
    w, wq, b, st, r = c["w"], c["wq"], cs["b"], cs["st"], int(cs["seed"][0])
    for e, eq in cs["steps"]:
        w, b, st, r, nr = GD.update_u8(e, eq, c["x"], c["xq"], w.reshape(m, -1), wq, b, cs["bq"],
                                       cs["hp"][0], cs["hp"][1], flags, st, r, sel, k)
        w, wq, _ = GD.weights_qp_update(w.ravel(), wq, nr, cs["hp"][2])
    return w, wq, b, st


def test_dense_bias_at_k1_k2_moves_bit_exact(run):
    """dense_update_u8 with one or two selected rows, 4 steps from a fresh
    state, every selected row's error above its zero point."""
    rng = np.random.default_rng(31)
    cases = []
    for ci in range(12):
        cs = dense_rows_case(rng, lambda m: 1 + ci % 2)
        m, k, rows = cs["c"]["m"], cs["k"], cs["rows"]
        cs["flags"] = int(ci % 4) | (4 if ci % 3 == 0 else 0)
        steps = []
        for _ in range(4):
            e, eq = rng.integers(0, 256, m, dtype=np.uint8), GQ.new_qp(-1, 1)
            # the rows' errors above their zero point at every step: their bias steps
            # add up, all downwards (centred, one of two would go up)
            e[rows] = np.minimum(255, int(eq[GQ.ZERO]) + rng.integers(40, 100, k))
            steps.append((e, eq))
        cs["steps"] = steps
        cases.append(cs)
    lines = run_dense_cases(run, cases)
    for i, cs in enumerate(cases):
        m, rows = cs["c"]["m"], cs["rows"]
        w, wq, b, st = dense_golden(cs, cs["sel"], cs["k"], cs["flags"])
        tag = "case %d (m %d rows %s flags %d)" % (i, m, list(rows), cs["flags"])
        gw, gwq, gb, gst, grng = lines[i]
        assert bytes.fromhex(gb) == np.asarray(b, np.int32).tobytes(), tag + ": b"
        assert bytes.fromhex(gst) == st.tobytes(), tag + ": state"
        assert bytes.fromhex(gw) == w.tobytes(), tag + ": w"
        assert bytes.fromhex(gwq) == wq.tobytes(), tag + ": wq"
        # the selected rows' biases moved down (lr 0.01 / s_b 1e-4: ~40-140 per step), the others not
        moved = np.asarray(b, np.int64) - cs["b"]
        assert np.all(moved[rows] <= -50), tag + ": a selected bias did not move down: %s" % moved[rows]
        assert not np.any(np.delete(moved, rows)), tag + ": a row left alone moved"


def test_conv_bias_of_one_filter_moves_bit_exact(run):
    """conv2d / conv_transpose2d_update_u8: the VAE's ConvT 16->1 (one filter,
    no selection) and its Conv 1->16 and ConvT 32->16 with one selected
    filter, plus small random geometries with one filter or one selected."""
    rng = np.random.default_rng(41)
    geoms = [(VAE_GEOMS[3], None), (VAE_GEOMS[0], 5), (VAE_GEOMS[2], 11)]
    while len(geoms) < 9:
        t = bool(len(geoms) % 2)
        geom, ok = G.random_geom(rng, t, (6, 5, 9))
        if ok:
            co = G.geom_shapes(t, geom)[2][0]
            geoms.append(((t, geom), None if co == 1 else int(rng.integers(0, co))))
    cases = []
    for (t, geom), filt in geoms:
        while True:
            c = u8_case(rng, t, geom)
            if c["b"] is not None:
                break
        co = c["e"].shape[0]
        # the filter's bias gradient (its errors' sum) must not be 0
        ze = int(c["eq"][GQ.ZERO])
        f0 = filt or 0
        if int(c["e"][f0].astype(np.int64).sum()) - ze * c["e"][f0].size == 0:
            c["e"][f0].flat[0] = ze + 1 if ze < 255 else ze - 1
        sel, k = (None, co) if filt is None else (np.array([filt], np.int32), 1)
        flags = 4 | int(rng.integers(0, 4))   # the batch-1 conv update is per filter
        hp = np.array([0.01, 0.15, 0.02], np.float32)
        state = np.zeros(5 + 2 * co, np.float32)
        wq = c["wq"].copy()
        wq[GQ.ALPHA] = 0.001
        seed = np.array([int(rng.integers(1, 2**32 - 1))], np.uint32)
        cases.append((c, sel, k, flags, hp, state, wq, seed, f0))
    res = run_conv_update_cases(run, cases)
    for i, (c, sel, k, flags, hp, state, wq, seed, f0) in enumerate(cases):
        what = "case %d (%s %s flags=%d filter %s of %d)" % (i, "convT" if c["t"] else "conv", c["geom"],
                                                             flags, f0, c["e"].shape[0])
        w, wq2, b, st, rng2, rem = G.update_u8_qp(c["t"], c["e"], c["eq"], c["x"], c["xq"], c["w"], wq,
                                                  c["b"], c["bq"], c["geom"], sel, hp, flags,
                                                  state, int(seed[0]))
        got = res[i]
        assert got[3] == np.asarray(b, np.int32).tobytes(), what + ": b"
        assert got[4] == np.asarray(st, np.float32).tobytes(), what + ": state"
        assert got[1] == np.asarray(w, np.uint8).tobytes(), what + ": w"
        assert got[2] == np.asarray(wq2, np.float32).tobytes(), what + ": wq"
        moved = np.asarray(b, np.int64) - c["b"]
        assert moved[f0] != 0, what + ": the one filter's bias did not move"
