"""Mask-aware error propagation (docs/KERNELS.md): conv2d_backward_u8,
conv_transpose2d_backward_u8 and dense_backward_u8 given the layer's input
x, xq from a ReLU layer write the error's zero point where x <= z_x (not
computed) and record the range of the computed values and 0.  Bit-exact
against the golden model on every target: the gather (ConvTranspose2d),
the scatter's paths (the M0's sparse inside pixels, the phases elsewhere),
DSGU's selected filters, Dense with and without rows, and the finish's
forms (the M0's short form, its general fallback, the C loop).

A masked position computed shows in ex (a value other than z_ex) or in the
range; an unmasked one skipped shows as z_ex where the golden model has its
value: the cases make both likely (half of x masked, ranges near the
accumulators' extremes), and test_mask_decides checks that on the golden
model itself.
"""
import numpy as np

from casefile import pack, parse
from qtrain_host.golden import conv as G
from qtrain_host.golden import dense as D
from qtrain_host.golden import quant as GQ
from test_conv_kernels import DEVICE_LIB, VAE_GEOMS, _scatter_geom, rand_geom, rand_qp, u8_case

SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
f = open('cases.bin', 'rb')
ncase, max_x = rd(f)
buf('ex', 'B', max_x)
for i in range(ncase):
    fl, e, eq, w, wq, exq, sel, xm, xmq = rdn(f, 9)
    kind, k = fl[0], fl[1]
    geom = tuple(fl[2:])
    ex = buf('ex', 'B', len(xm))
    if kind == 2:
        acc = zeros('i', len(xm))
        Q.dense_backward_u8(e, eq, w, wq, ex, exq, sel, k, acc, xm, xmq)
    else:
        t = kind == 1
        scratch = buf('s', 'B', (Q.conv_transpose2d_scratch_len if t else Q.conv2d_scratch_len)(geom))
        (Q.conv_transpose2d_backward_u8 if t else Q.conv2d_backward_u8)(
            e, eq, None, None, w, wq, ex, exq, geom, sel, k, scratch, False, xm, xmq)
    print('M', i, end='')
    phx(ex)
    phx(exq, 'f')
    print()
print('done')
"""


def _mask(rng, c, frac):
    """A mask input of x's shape: a ReLU layer's output (its zero point zm,
    values <= zm masked: zm itself, or below it when zm > 0), frac masked."""
    zm = int(rng.choice([0, 0, 3]))
    xm = rng.integers(zm + 1, 256, c["x"].shape).astype(np.uint8)
    m = rng.random(xm.shape) < frac
    xm[m] = rng.integers(0, zm + 1, int(m.sum())).astype(np.uint8)
    xmq = GQ.new_qp(0.0, float(rng.uniform(0.5, 4.0)))
    xmq[GQ.ZERO] = zm
    return xm, xmq


def _conv_cases():
    rng = np.random.default_rng(77)
    cases = []
    for i, (t, g) in enumerate(VAE_GEOMS):   # largest first (buf())
        c = u8_case(rng, t, g, zfrac=(0.5, 0.6, 0.5, 0.3)[i])
        c["mask"] = _mask(rng, c, (0.72, 0.6, 0.49, 0.54)[i])
        cases.append(c)
    for i in range(24):
        t = bool(i % 2)
        geom = _scatter_geom(rng, t) if i % 3 == 0 else rand_geom(rng, t)
        c = u8_case(rng, t, geom, zfrac=(None, 0.5, 0.9)[i % 3])
        c["mask"] = _mask(rng, c, (0.0, 0.5, 1.0, 0.9)[i % 4])
        cases.append(c)
    return cases


def _dense_case(rng, m, n, frac, rows):
    e = rng.integers(0, 256, m).astype(np.uint8)
    eq = rand_qp(rng)
    e[rng.random(m) < 0.4] = int(eq[GQ.ZERO])
    w = rng.integers(0, 256, (m, n)).astype(np.uint8)
    wq = rand_qp(rng)
    xm = rng.integers(1, 256, n).astype(np.uint8)
    xm[rng.random(n) < frac] = 0
    xmq = GQ.new_qp(0.0, 1.0)
    _, epq0 = D.backward_u8(e, eq, w, wq, GQ.new_qp(-1, 1))
    swe = np.float32(eq[GQ.SCALE] * wq[GQ.SCALE])
    lo, hi = float(epq0[GQ.OBS_MIN]) * 0.6, float(epq0[GQ.OBS_MAX]) * 0.6
    epq = GQ.new_qp(min(lo, 0.0), max(hi, 1e-3 * float(swe)), alpha=0.1)
    sel, k = None, m
    if rows:
        k = int(rng.integers(1, m + 1))
        sel = rng.permutation(m).astype(np.int32)   # the first k rows propagate
    return dict(kind=2, e=e, eq=eq, w=w, wq=wq, exq=epq, sel=sel, k=k, geom=(m, n), mask=(xm, xmq))


def _dense_cases():
    rng = np.random.default_rng(78)
    cases = [_dense_case(rng, 20, 1568, 0.6, False), _dense_case(rng, 20, 1568, 0.6, True)]
    for i in range(12):
        cases.append(_dense_case(rng, int(rng.integers(1, 9)), int(rng.integers(1, 40)),
                                 (0.0, 0.5, 1.0, 0.8)[i % 4], i % 2 == 1))
    return cases


def _golden(c):
    xm, xmq = c["mask"]
    if c["kind"] == 2:
        sel = None if c["sel"] is None else c["sel"]
        return D.backward_u8(c["e"], c["eq"], c["w"], c["wq"], c["exq"], sel, c["k"], xm, xmq)
    sel = None if c["sel"] is None else c["sel"][:c["k"]]
    _, ex, exq = G.backward_u8_qp(c["kind"] == 1, c["e"], c["eq"], None, None, xm, c["w"], c["wq"],
                                  c["exq"], c["geom"], sel, xq=xmq)
    return ex, exq


def _run_cases(run, cases):
    data = pack(np.array([len(cases), max(c["mask"][0].size for c in cases)], np.int32))
    for c in cases:
        fl = np.array([c["kind"], c["k"]] + list(c["geom"]), np.int32)
        data += pack(fl, c["e"].ravel(), c["eq"], c["w"].ravel(), c["wq"], c["exq"], c["sel"],
                     c["mask"][0].ravel(), c["mask"][1])
    out = run(SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    M = parse(out, "M")
    assert len(M) == len(cases)
    for i, c in enumerate(cases):
        ex, exq = _golden(c)
        what = "case %d (kind %d %s k=%s, %d of %d masked)" % (
            i, c["kind"], c["geom"], c["k"] if c["sel"] is not None else "all",
            int((c["mask"][0] <= c["mask"][1][GQ.ZERO]).sum()), c["mask"][0].size)
        assert M[i][0] == ex.tobytes(), what + ": ex"
        assert M[i][1] == exq.tobytes(), what + ": exq %s vs %s" % (np.frombuffer(M[i][1], np.float32), exq)


def _conv_kind(cases):
    for c in cases:
        c["kind"] = int(c["t"])
    return cases


def test_conv_mask_aware_bit_exact(run):
    _run_cases(run, _conv_kind(_conv_cases()))


def _one_channel_cases():
    """ConvTranspose2d error propagation that gathers one channel of 3x3
    taps into a mask with zero point 0 (a ReLU output's): out_ch 1, or k = 1
    of several selected (not the first: its weights are the selected
    channel's), strides 1 and 2, inside and border patches, half or more of
    the mask at 0.  The M4 runs these a filter at a time with the dot and the
    finish fused (conv2d_u8.c, gather1_fin_u8); every other target as any
    gather."""
    rng = np.random.default_rng(79)
    geoms = [(16, 14, 14, 1, 3, 3, 2, 2, 1, 1, 1, 1), (32, 7, 7, 16, 3, 3, 2, 2, 1, 1, 1, 1),
             (3, 5, 6, 1, 3, 3, 1, 1, 1, 1, 0, 0), (4, 6, 5, 3, 3, 3, 2, 2, 0, 0, 1, 1),
             (2, 4, 4, 2, 3, 3, 1, 1, 0, 0, 0, 0)]
    cases = []
    for i, g in enumerate(geoms * 2):
        c = u8_case(rng, True, g, zfrac=0.5)
        if g[3] > 1:
            sel = rng.permutation(g[3]).astype(np.int32)
            sel[[0, int(np.argmax(sel))]] = sel[[int(np.argmax(sel)), 0]]   # the last channel first
            c["sel"], c["k"] = sel, 1
        else:
            c["sel"], c["k"] = (None, 1) if i < len(geoms) else (np.zeros(1, np.int32), 1)
        xm = rng.integers(1, 256, c["x"].shape).astype(np.uint8)
        xm[rng.random(xm.shape) < (0.54, 0.9)[i // len(geoms)]] = 0
        xmq = GQ.new_qp(0.0, float(rng.uniform(0.5, 4.0)))
        c["mask"] = (xm, xmq)
        cases.append(c)
    return cases


def test_conv_mask_aware_one_channel_bit_exact(run):
    _run_cases(run, _conv_kind(_one_channel_cases()))


def test_dense_mask_aware_bit_exact(run):
    _run_cases(run, _dense_cases())


# qtrain.classifier.build_cnn()'s (and Head's) propagations after a ReLU
# layer: Conv 8->16 (14x14, s2) into Conv 1->8's output, Dense 784->32 into
# Conv 8->16's (flattened), Dense 32->10 into Dense 784->32's (the head's
# last Dense is the same 32->10).
CNN_CONV = (8, 14, 14, 16, 3, 3, 2, 2, 1, 1)
CNN_DENSE = ((32, 784), (10, 32))


def _cnn_cases():
    rng = np.random.default_rng(80)
    cases = []
    for i, frac in enumerate((0.5, 0.75, 0.3)):   # the trained CNN's ReLU outputs: about half at zero
        c = u8_case(rng, False, CNN_CONV, zfrac=(None, 0.5, 0.8)[i])
        c["mask"] = _mask(rng, c, frac)
        c["kind"] = 0
        cases.append(c)
    for m, n in CNN_DENSE:
        for frac in (0.5, 0.9):
            cases.append(_dense_case(rng, m, n, frac, False))
    return cases


def test_cnn_mask_aware_bit_exact(run):
    """The classifier CNN's and head's masked propagations (builder.mask_chain
    marks them; test_classifier.py test_cnn_mask_chain) against the golden model."""
    _run_cases(run, _cnn_cases())


def test_mask_decides():
    """The golden model's masked call: z_ex exactly at the masked positions,
    the full call's values at the others, the range from those and 0; and
    the cases above differ from the unmasked call at both kinds of position
    (so a kernel that ignored the mask, or skipped too much, fails them)."""
    cases = _conv_kind(_conv_cases()) + _dense_cases() + _cnn_cases()
    differs_masked = differs_kept = 0
    for c in cases:
        xm, xmq = c["mask"]
        keep = (xm > xmq[GQ.ZERO]).ravel()
        ex, exq = _golden(c)
        if c["kind"] == 2:
            full, _ = D.backward_u8(c["e"], c["eq"], c["w"], c["wq"], c["exq"], c["sel"], c["k"])
        else:
            sel = None if c["sel"] is None else c["sel"][:c["k"]]
            _, full, _ = G.backward_u8_qp(c["kind"] == 1, c["e"], c["eq"], None, None, xm, c["w"], c["wq"],
                                          c["exq"], c["geom"], sel)
        ex, full = ex.ravel(), full.ravel()
        z = int(c["exq"][GQ.ZERO])
        assert (ex[~keep] == z).all()
        assert (ex[keep] == full[keep]).all()
        differs_masked += int((full[~keep] != z).sum())
        differs_kept += int((full[keep] != z).sum())
        assert exq[GQ.OBS_MIN] <= 0 <= exq[GQ.OBS_MAX]
    assert differs_masked > 1000 and differs_kept > 1000


def _mask_rows_cases():
    """The M0's kept-rows dots (conv2d_u8.c dot4m_u8) on the VAE's two big
    propagations, the scatter (Conv 16->32: its inside pixels' runs and its
    border pixels' patches) and the gather (ConvT 32->16): errors dense and
    sparse, DSGU's selected filters (few: patches; 8 or more: runs), masks
    from a few to almost all positions (groups of four with 0 to 4 rows
    kept, the last group of a pixel short)."""
    rng = np.random.default_rng(79)
    cases = []
    for i in range(12):
        t, g = VAE_GEOMS[1 + i % 2]
        c = u8_case(rng, t, g, zfrac=(None, 0.5, 0.8)[i % 3])
        co = c["e"].shape[0]
        k = (co, 8, 5, co)[i % 4]
        c["sel"], c["k"] = (None, co) if k == co else (rng.permutation(co).astype(np.int32), k)
        c["mask"] = _mask(rng, c, (0.25, 0.8, 0.95, 0.5, 0.72, 0.1)[i % 6])
        cases.append(c)
    return cases


def test_conv_mask_rows_bit_exact(run):
    _run_cases(run, _conv_kind(_mask_rows_cases()))


def _few_filters_cases():
    """Conv2d error propagation of a few selected filters (DSGU's k = 1-4)
    into a masked input, as the M4 runs it mask-aware (conv2d_u8.c,
    scatter1_fin_u8: a big channel of a stride phase at a time over its
    patches, the dropped outputs skipped, the kept ones' dot and finish
    fused): the VAE's Conv 16->32 and scatter geometries of 4-9 big
    channels (a last group of four short), kernels 1-5 and strides 1-3
    (phases of 1 to several patch words), masks from none to all of x
    (zero point 0: that path; 3: the four-filter patches).  Every other
    target as any scatter."""
    rng = np.random.default_rng(80)
    geoms = [VAE_GEOMS[1][1]] + [_scatter_geom(rng, False) for _ in range(7)]
    cases = []
    for i in range(16):
        c = u8_case(rng, False, geoms[i % len(geoms)], zfrac=(None, 0.5)[i % 2])
        co = c["e"].shape[0]
        c["sel"], c["k"] = rng.permutation(co).astype(np.int32), min(co, 1 + i % 4)
        c["mask"] = _mask(rng, c, (0.72, 0.3, 0.95, 0.0, 1.0)[i % 5])
        cases.append(c)
    return cases


def test_conv_mask_few_filters_bit_exact(run):
    _run_cases(run, _conv_kind(_few_filters_cases()))


def _mask_scale_cases():
    """The scatter's kept rows (the M0's dotk_u8 finishes them in the short
    form) at multipliers s_e s_w / s_ex where it does not hold: 1/2 and
    above (r 0.6, 1.0) and below 2^-19 (r 2^20, 2^22): every kept value
    takes the general finish there (the pixel finished again); r 3.0 in the
    short form.  Conv 16->32's error, DSGU's few filters and all of them."""
    rng = np.random.default_rng(81)
    cases = []
    for i, r in enumerate((0.6, 1.0, 3.0, 2.0 ** 20, 2.0 ** 22)):
        t, g = VAE_GEOMS[1]
        c = u8_case(rng, t, g, zfrac=0.5)
        co = c["e"].shape[0]
        c["sel"], c["k"] = (rng.permutation(co).astype(np.int32), 3) if i % 2 == 0 else (None, co)
        c["exq"] = c["exq"].copy()
        c["exq"][GQ.SCALE] = np.float32(c["eq"][GQ.SCALE] * c["wq"][GQ.SCALE] * np.float32(r))
        c["mask"] = _mask(rng, c, 0.72)
        cases.append(c)
    return cases


def test_conv_mask_scales_bit_exact(run):
    _run_cases(run, _conv_kind(_mask_scale_cases()))


def _two_rows_cases():
    """Dense error propagation with at most two rows carrying an error
    (DSGU's k = 2 in Dense 1568 -> 20), which the M4 finishes where the two
    MACs are (dense.c, dense_two): DSGU's rows (k = 1-3, 0 to 2 of them
    with an error) or all rows of m = 1 or 2; masks with zero point 0 (the
    M4's loop) and 3 (the general path), from none to all of x masked;
    multipliers s_e s_w / s_ex where the loop's form holds and where it
    does not (1/2 and above, below 2^-22: the general path).  Every other
    target: the general path."""
    rng = np.random.default_rng(82)
    cases = []
    for i in range(24):
        m, n = ((20, 1568), (2, 37), (20, 1568), (1, 5), (7, 64), (2, 3))[i % 6]
        c = _dense_case(rng, m, n, (0.6, 0.0, 1.0, 0.9, 0.5)[i % 5], True)
        ze = int(c["eq"][GQ.ZERO])
        live = i % 3 if i % 4 else 2          # rows with an error: 0, 1, 2
        if m <= 2 and i % 2:
            c["sel"], c["k"] = None, m          # all rows
            rows = np.arange(m)
        else:
            c["k"] = min(m, 1 + (i // 2) % 3)   # k 1-3 of DSGU's rows
            rows = c["sel"][:c["k"]]
        c["e"][rows] = ze
        for r in rows[:live]:
            c["e"][r] = (ze + int(rng.integers(1, 256))) % 256
        if i % 7 == 3:                          # a mask with zero point 3
            xm = rng.integers(4, 256, n).astype(np.uint8)
            cut = rng.random(n) < 0.6
            xm[cut] = rng.integers(0, 4, int(cut.sum())).astype(np.uint8)
            xmq = GQ.new_qp(0.0, 1.0)
            xmq[GQ.ZERO] = 3
            c["mask"] = (xm, xmq)
        r = (None, None, 0.6, 1.5, 3.0, 2.0 ** 19, 2.0 ** 23, None)[i % 8]
        if r is not None:
            c["exq"] = c["exq"].copy()
            c["exq"][GQ.SCALE] = np.float32(c["eq"][GQ.SCALE] * c["wq"][GQ.SCALE] * np.float32(r))
        cases.append(c)
    return cases


def test_dense_two_rows_bit_exact(run):
    _run_cases(run, _two_rows_cases())
