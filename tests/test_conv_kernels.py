"""Conv2d / ConvTranspose2d kernels against the numpy golden model, on every target.

Integer paths (forward with bias and fused ReLU, error propagation with the
ReLU mask and DSGU channel selection, integer weight/bias gradients, and the
range each call records in its qparams) must match bit for bit; float32 paths
within float32 rounding.  Random geometries (kernel size, stride, padding,
output padding, channels) plus the paper's VAE shapes.  Cases travel as one
binary file; the target prints every output as hex.
"""
import numpy as np
import pytest

from casefile import pack, parse
from qtrain_host.golden import conv as G
from qtrain_host.golden import quant as GQ

# MicroPython side: read buffers back (typecode + length + bytes), print hex.
# Each script imports the native module(s) it calls (_qtrain: uint8 kernels,
# _qtrain_float: float32/mixed), so the float32 ones fit qemu-m0's heap alone.
DEVICE_LIB = r"""
from array import array
import gc
def rd(f):
    h = f.read(5)
    tc = chr(h[0])
    n = h[1] | (h[2] << 8) | (h[3] << 16) | (h[4] << 24)
    if tc == 'N':
        return None
    if tc == 'B':
        d = bytearray(n)
        f.readinto(d)
        return d
    a = array(tc, bytes(n))
    gc.collect()
    f.readinto(a)
    return a
def rdn(f, k):
    gc.collect()
    return [rd(f) for _ in range(k)]
def phx(b, tc='B'):
    # hex in chunks: a whole line at once would not fit a small heap.
    # tc 'B': bytes as they are; 'i': int32 items, little-endian (no copy);
    # anything else (small float records): via a byte copy.
    print(' ', end='')
    if tc == 'i':
        for i in range(0, len(b), 16):
            print(''.join(['%02x%02x%02x%02x' % (v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255)
                           for v in b[i:i + 16]]), end='')
        return
    if tc != 'B':
        b = bytearray(b)
    for i in range(0, len(b), 64):
        print(''.join(['%02x' % v for v in b[i:i + 64]]), end='')
def zeros(tc, n):
    return array(tc, bytes(n * (1 if tc in 'bB' else (2 if tc in 'hH' else 4))))
BUF = {}
def buf(name, tc, n, zero=False):
    # Output buffers are allocated once at the largest size seen (cases come
    # largest first) and handed out as memoryviews: no heap churn per case.
    a = BUF.get(name)
    if a is None or len(a) < n:
        BUF[name] = a = None
        gc.collect()
        a = bytearray(n) if tc == 'B' else zeros(tc, n)
        BUF[name] = a
    m = memoryview(a)[:n]
    if zero:
        for j in range(n):
            m[j] = 0
    return m
"""

VAE_GEOMS = [
    (False, (1, 28, 28, 16, 3, 3, 2, 2, 1, 1)),          # 28x28 -> 14x14
    (False, (16, 14, 14, 32, 3, 3, 2, 2, 1, 1)),         # 14x14 -> 7x7
    (True, (32, 7, 7, 16, 3, 3, 2, 2, 1, 1, 1, 1)),      # 7x7 -> 14x14
    (True, (16, 14, 14, 1, 3, 3, 2, 2, 1, 1, 1, 1)),     # 14x14 -> 28x28
]


def rand_geom(rng, transposed, hi=(6, 5, 9)):
    while True:
        geom, ok = G.random_geom(rng, transposed, hi)
        if ok:
            return geom


shapes = G.geom_shapes


def rand_qp(rng):
    a = float(rng.uniform(-1, 0)) * float(rng.choice([0, 1, 1, 1]))
    b = float(rng.uniform(0, 1)) * float(rng.choice([0, 1, 1, 1]))
    if a == 0 and b == 0:
        b = 1.0
    scale = float(np.exp(rng.uniform(-4, 1)))
    return GQ.new_qp(a * scale, b * scale)


def spread_qp(rng, r, scale):
    """A range near the observed accumulator extremes, so outputs are not all clamped."""
    lo = min(r[0], 0) * float(scale) * rng.uniform(0.3, 1.0)
    hi = max(r[1], 0) * float(scale) * rng.uniform(0.3, 1.0)
    if hi - lo <= 0:
        hi = 1.0
    return GQ.new_qp(lo, hi, alpha=float(rng.choice([0.0, 0.1])))


def at_zero(rng, v, qp, zfrac):
    """v with a fraction zfrac of its values set to qp's zero point (an exact 0)."""
    if zfrac is not None:
        v[rng.random(v.shape) < zfrac] = int(qp[GQ.ZERO])


def u8_case(rng, transposed, geom, zfrac=None, big_bias=False):
    """zfrac: that fraction of x and of e at their zero points (the M0's
    sparse dots, conv2d_u8.c); big_bias: biases near the int32 limits (they
    cannot be folded into the accumulators' start terms)."""
    xs, wshape, ys = shapes(transposed, geom)
    x = rng.integers(0, 256, xs, dtype=np.uint8)
    w = rng.integers(0, 256, wshape, dtype=np.uint8)
    xq, wq = rand_qp(rng), rand_qp(rng)
    at_zero(rng, x, xq, zfrac)
    co = ys[0]
    b = rng.integers(-2**16, 2**16, co, dtype=np.int32) if rng.random() < 0.7 else None
    bq = GQ.new_qp(-1.0, 1.0)
    bq[GQ.SCALE] = xq[GQ.SCALE] * wq[GQ.SCALE] * np.float32(rng.choice([1.0, 0.37, 3.0]))
    bq[GQ.ZERO] = 0
    b_range = b
    if big_bias:
        # channel 0's bias at the int32 limit (its outputs saturate), the
        # others' small: they show a bias the start terms took twice or not
        bq[GQ.SCALE] = xq[GQ.SCALE] * wq[GQ.SCALE]
        b_range = rng.integers(-2**16, 2**16, co, dtype=np.int32)
        b = b_range.copy()
        b[0] = int(rng.choice([-1, 1])) * (2**31 - 2**8)
    relu = int(rng.random() < 0.5)
    # provisional output range -> accumulator extremes -> a sensible yq
    _, yq0 = G.forward_u8_qp(transposed, x, xq, w, wq, b_range, bq, GQ.new_qp(-1, 1), geom, relu)
    swx = np.float32(xq[GQ.SCALE] * wq[GQ.SCALE])
    yq = spread_qp(rng, (yq0[GQ.OBS_MIN] / swx, yq0[GQ.OBS_MAX] / swx), swx)
    e = rng.integers(0, 256, ys, dtype=np.uint8)
    eq = rand_qp(rng)
    at_zero(rng, e, eq, zfrac)
    # error range from the unmasked, unselected propagation
    _, _, exq0 = G.backward_u8_qp(transposed, e, eq, None, yq, x, w, wq, GQ.new_qp(-1, 1), geom)
    swe = np.float32(eq[GQ.SCALE] * wq[GQ.SCALE])
    exq = spread_qp(rng, (exq0[GQ.OBS_MIN] / swe, exq0[GQ.OBS_MAX] / swe), swe)
    if rng.random() < 0.5:
        k = int(rng.integers(0, co + 1))
        sel = rng.permutation(co).astype(np.int32)   # any order; first k used
    else:
        k, sel = co, None
    return dict(t=transposed, geom=geom, x=x, xq=xq, w=w, wq=wq, b=b, bq=bq, yq=yq, e=e, eq=eq,
                exq=exq, relu=relu, sel=sel, k=k)


U8_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
f = open('cases.bin', 'rb')
ncase, max_y, max_x = rd(f)
# the large output buffers first, before any case data fragments the heap
buf('y', 'B', max_y)
buf('ex', 'B', max_x)
for i in range(ncase):
    fl, x, xq, w, wq, b, bq, yq, e, eq, exq, sel = rdn(f, 12)
    t, relu, k = fl[0], fl[1], fl[2]
    geom = tuple(fl[3:])
    if t:
        oc, oh, ow = Q.conv_transpose2d_out_shape(geom)
        scratch = buf('s', 'B', Q.conv_transpose2d_scratch_len(geom))
    else:
        oc, oh, ow = Q.conv2d_out_shape(geom)
        scratch = buf('s', 'B', Q.conv2d_scratch_len(geom))
    y = buf('y', 'B', oc * oh * ow)
    if t:
        Q.conv_transpose2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
    else:
        Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
    print('F', i, end='')
    phx(y)
    phx(yq, 'f')
    print()
    ex = buf('ex', 'B', len(x))
    yy = y if relu else None
    if t:
        Q.conv_transpose2d_backward_u8(e, eq, yy, yq, w, wq, ex, exq, geom, sel, k, scratch)
    else:
        Q.conv2d_backward_u8(e, eq, yy, yq, w, wq, ex, exq, geom, sel, k, scratch)
    print('B', i, end='')
    phx(e)
    phx(ex)
    phx(exq, 'f')
    print()
    scratch = ex = y = yy = None
    fl = x = xq = w = wq = b = bq = yq = e = eq = exq = sel = None
print('done')
"""

# The batch gradients are in _qtrain_float (natmod/bind_batch.c), a script of
# their own: both modules and the VAE layers' buffers do not fit qemu-m4's
# heap together.  e is the error after the ReLU mask (the golden model's,
# which U8_SCRIPT's B lines show the target computes).
GRAD_SCRIPT = DEVICE_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
ncase, max_w, max_oc = rd(f)
buf('gw', 'i', max_w)
buf('gb', 'i', max_oc)
for i in range(ncase):
    fl, x, xq, e, eq, sel = rdn(f, 6)
    t, k = fl[0], fl[1]
    geom = tuple(fl[2:])
    oc = geom[3]
    n_w = geom[0] * geom[3] * geom[4] * geom[5]
    scratch = buf('s', 'B', (QF.conv_transpose2d_scratch_len if t else QF.conv2d_scratch_len)(geom))
    gw = buf('gw', 'i', n_w, True)
    gb = buf('gb', 'i', oc, True)
    (QF.conv_transpose2d_grad_u8 if t else QF.conv2d_grad_u8)(e, eq, x, xq, gw, gb, geom, sel, k, scratch)
    print('G', i, end='')
    phx(gw, 'i')
    phx(gb, 'i')
    print()
    scratch = gw = gb = None
    fl = x = xq = e = eq = sel = None
print('done')
"""


def saturating_case(rng, transposed, gain, zero):
    """Output and error scales `gain` times below s_w s_x (s_w s_e): the
    requantization multiplier is >= 1/2, the products far exceed int32 for
    the larger gains, and the outputs must saturate at 0 / 255 like Dense's
    (they used to wrap)."""
    while True:
        c = u8_case(rng, transposed, rand_geom(rng, transposed))
        if c["x"].size * c["w"].shape[0] >= 8:
            break
    for q, s in (("yq", c["xq"][GQ.SCALE] * c["wq"][GQ.SCALE]), ("exq", c["eq"][GQ.SCALE] * c["wq"][GQ.SCALE])):
        c[q] = GQ.new_qp(-1.0, 1.0, alpha=float(rng.choice([0.0, 0.1])))
        c[q][GQ.SCALE] = np.float32(s / gain)
        c[q][GQ.ZERO] = zero
    return c


def _u8_cases():
    rng = np.random.default_rng(2024)
    cases = [u8_case(rng, t, g) for t, g in VAE_GEOMS]   # largest first (see buf())
    cases += [u8_case(rng, bool(i % 2), rand_geom(rng, bool(i % 2))) for i in range(40)]
    cases += [saturating_case(rng, bool(i % 2), gain, zero)
              for i, (gain, zero) in enumerate([(0.6, 0), (1.0, 128), (3.0, 255), (1e3, 0), (1e3, 200),
                                                (2.0**20, 7), (1e9, 128), (1e9, 255)])]
    # 8 to 12 channels: the M0 / x64 scatter dots the runs of its channel-last
    # copy when 8 or more small channels take part, with a tail of big
    # channels past the groups of four
    cases += [u8_case(rng, bool(i % 2), rand_geom(rng, bool(i % 2), (13, 5, 9))) for i in range(8)]
    return cases


def test_conv_u8_bit_exact(run):
    check_u8_cases(run, _u8_cases())


def _sparse_cases():
    """Many exact zeros in x and e: the M0 runs the gather (Conv2d forward,
    ConvT error) and the corr (both gradients) over the non-zero columns
    when fewer than 7/8 of a vector's values are non-zero, densely else;
    both choices occur within one call (border patches hold padding).
    Zero points 0 and not, no zeros, all zeros, rows past the groups of
    four (5 to 12 channels), DSGU selections, a bias that does not fold."""
    rng = np.random.default_rng(77)
    cases = [u8_case(rng, t, g, zfrac=z) for (t, g), z in zip(VAE_GEOMS, (0.8, 0.6, 0.65, 0.3))]
    zfracs = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0)
    cases += [u8_case(rng, bool(i % 2), rand_geom(rng, bool(i % 2), (13, 5, 9)), zfrac=zfracs[i % 6])
              for i in range(24)]
    cases += [u8_case(rng, bool(i % 2), rand_geom(rng, bool(i % 2), (13, 5, 9)), zfrac=0.6, big_bias=True)
              for i in range(2)]
    return cases


def test_conv_u8_sparse_bit_exact(run):
    check_u8_cases(run, _sparse_cases())


def _scatter_geom(rng, transposed):
    """A geometry whose scatter (ConvT forward, Conv error propagation) has
    8-12 small channels and 4-9 big ones: the M0 compacts an inside pixel's
    runs of the channel-last small side (1-5 tap rows of 1-5 pixels: kernel
    1-5, stride 1-3) into one list of entries and runs its groups of four
    big channels over it, 0-3 big channels past the groups dense."""
    while True:
        n, c = int(rng.integers(8, 13)), int(rng.integers(4, 10))
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        ph, pw = (int(v) for v in rng.integers(0, 3, 2))
        H, W = (int(v) for v in rng.integers(2, 9, 2))
        try:
            if transposed:   # small = the input
                geom = (n, H, W, c, kh, kw, sh, sw, ph, pw, int(rng.integers(0, sh)), int(rng.integers(0, sw)))
                G.check_conv_transpose2d_geom((n, H, W), (kh, kw), (sh, sw), (ph, pw), geom[10:])
            else:            # small = the output's error
                geom = (c, H, W, n, kh, kw, sh, sw, ph, pw)
                G.check_conv2d_geom((c, H, W), (kh, kw), (sh, sw), (ph, pw))
        except ValueError:
            continue
        return geom


def _zero_rows(rng, v, qp, fracs):
    """Rows of v's channel planes (C, H, W) with the zero point at fracs[row
    mod len]: sparse and dense rows of the small side in one call."""
    for y in range(v.shape[1]):
        f = fracs[y % len(fracs)]
        row = v[:, y, :]
        row[rng.random(row.shape) < f] = int(qp[GQ.ZERO])


def _scatter_cases():
    """The M0's sparse scatter: the small side (a ConvT's input x, a Conv's
    output error e) with 0-100 % of its values at the zero point (over 7/8
    of them non-zero the call stays dense), rows of different density in
    one call (pixels sparse and dense), zero points 0, 255 and between,
    DSGU selections (8 or more selected filters run sparse, fewer over
    dense patches), a bias that does not fold."""
    rng = np.random.default_rng(4242)
    cases = []
    zfracs = (0.0, 0.4, 0.6, 0.9, 1.0)
    for i in range(30):
        t = bool(i % 2)
        c = u8_case(rng, t, _scatter_geom(rng, t), zfrac=zfracs[(i // 2) % 5], big_bias=i % 10 == 9)
        if i % 3 == 2:
            _zero_rows(rng, c["x"] if t else c["e"], c["xq"] if t else c["eq"], (0.95, 0.0, 0.5))
        if not t and i % 4 == 1:   # a DSGU selection of 8+ filters (runs) or fewer (patches)
            co = c["geom"][3]
            c["sel"] = rng.permutation(co).astype(np.int32)
            c["k"] = int(rng.integers(8, co + 1)) if i % 8 == 1 else int(rng.integers(1, 8))
        cases.append(c)
    # the zero point at 0 and at 255 (x' of one sign)
    for i, zero in enumerate((0, 255, 0, 255)):
        t = bool(i % 2)
        c = u8_case(rng, t, _scatter_geom(rng, t), zfrac=0.5)
        v, q = (c["x"], c["xq"]) if t else (c["e"], c["eq"])
        v[v == q[GQ.ZERO]] = zero
        q[GQ.ZERO] = zero
        cases.append(c)
    return cases


def test_conv_u8_sparse_scatter_bit_exact(run):
    check_u8_cases(run, _scatter_cases())


def check_u8_cases(run, cases):
    data = pack(np.array([len(cases), max(c["e"].size for c in cases), max(c["x"].size for c in cases)], np.int32))
    for c in cases:
        fl = np.array([int(c["t"]), c["relu"], c["k"]] + list(c["geom"]), np.int32)
        data += pack(fl, c["x"].ravel(), c["xq"], c["w"].ravel(), c["wq"], c["b"], c["bq"], c["yq"],
                     c["e"].ravel(), c["eq"], c["exq"], c["sel"])
    out = run(U8_SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    F, B = parse(out, "F"), parse(out, "B")
    assert len(F) == len(B) == len(cases)
    masked = []
    for i, c in enumerate(cases):
        t, geom = c["t"], c["geom"]
        what = "case %d (%s %s relu=%d k=%s)" % (i, "convT" if t else "conv", geom, c["relu"],
                                                 c["k"] if c["sel"] is not None else "all")
        y, yq = G.forward_u8_qp(t, c["x"], c["xq"], c["w"], c["wq"], c["b"], c["bq"], c["yq"], geom,
                                c["relu"])
        assert F[i][0] == y.tobytes(), what + ": y"
        assert F[i][1] == yq.tobytes(), what + ": yq %s vs %s" % (np.frombuffer(F[i][1], np.float32), yq)
        sel = None if c["sel"] is None else c["sel"][:c["k"]]
        e, ex, exq = G.backward_u8_qp(t, c["e"], c["eq"], y if c["relu"] else None, yq, c["x"], c["w"],
                                      c["wq"], c["exq"], geom, sel)
        assert B[i][0] == e.tobytes(), what + ": e after ReLU mask"
        assert B[i][1] == ex.tobytes(), what + ": ex"
        assert B[i][2] == exq.tobytes(), what + ": exq"
        masked.append(e)
    data = pack(np.array([len(cases), max(c["w"].size for c in cases), max(c["e"].shape[0] for c in cases)],
                         np.int32))
    for c, e in zip(cases, masked):
        fl = np.array([int(c["t"]), c["k"]] + list(c["geom"]), np.int32)
        data += pack(fl, c["x"].ravel(), c["xq"], e.ravel(), c["eq"], c["sel"])
    out = run(GRAD_SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    Gr = parse(out, "G")
    assert len(Gr) == len(cases)
    for i, (c, e) in enumerate(zip(cases, masked)):
        t, geom = c["t"], c["geom"]
        what = "case %d (%s %s k=%s)" % (i, "convT" if t else "conv", geom, c["k"] if c["sel"] is not None else "all")
        sel = None if c["sel"] is None else c["sel"][:c["k"]]
        gw, gb = G.grad_u8_qp(t, e, c["eq"], c["x"], c["xq"], geom, sel)
        assert Gr[i][0] == gw.tobytes(), what + ": gw"
        assert Gr[i][1] == gb.tobytes(), what + ": gb"


F32_SCRIPT = DEVICE_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    fl, x, w, b, e, sel = rdn(f, 6)
    t, relu, k = fl[0], fl[1], fl[2]
    geom = tuple(fl[3:])
    shape = QF.conv_transpose2d_out_shape(geom) if t else QF.conv2d_out_shape(geom)
    y = zeros('f', shape[0] * shape[1] * shape[2])
    (QF.conv_transpose2d_forward_f32 if t else QF.conv2d_forward_f32)(x, w, b, y, geom, relu)
    ex = zeros('f', len(x))
    gw = zeros('f', len(w))
    gb = zeros('f', shape[0])
    (QF.conv_transpose2d_backward_f32 if t else QF.conv2d_backward_f32)(
        e, y if relu else None, x, w, ex, gw, gb, geom, sel, k)
    print('R', i, end='')
    for v in (y, ex, gw, gb):
        phx(v, 'f')
    print()
    y = ex = gw = gb = None
    fl = x = w = b = e = sel = None
print('done')
"""


def test_conv_f32(run):
    rng = np.random.default_rng(99)
    geoms = [(bool(i % 2), rand_geom(rng, bool(i % 2))) for i in range(30)]
    # The two middle VAE layers need ~80 KB of float buffers: too much next to
    # the module in a board's 160 KB heap (their uint8 versions run everywhere).
    geoms += [(t, g) for t, g in VAE_GEOMS if run.target == "unix" or g[0] * g[3] <= 16]
    cases = []
    data = bytearray()
    for t, geom in geoms:
        xs, wshape, ys = shapes(t, geom)
        x = rng.standard_normal(xs).astype(np.float32)
        w = (rng.standard_normal(wshape) * 0.3).astype(np.float32)
        b = rng.standard_normal(ys[0]).astype(np.float32) if rng.random() < 0.7 else None
        e = rng.standard_normal(ys).astype(np.float32)
        relu = int(rng.random() < 0.5)
        if rng.random() < 0.4:
            k, sel = int(rng.integers(0, ys[0] + 1)), rng.permutation(ys[0]).astype(np.int32)
        else:
            k, sel = ys[0], None
        cases.append((t, geom, x, w, b, e, relu, sel, k))
        fl = np.array([int(t), relu, k] + list(geom), np.int32)
        data += pack(fl, x.ravel(), w.ravel(), b, e.ravel(), sel)
    data = pack(np.array([len(cases)], np.int32)) + bytes(data)
    out = run(F32_SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    res = parse(out, "R")
    assert len(res) == len(cases)
    for i, (t, geom, x, w, b, e, relu, sel, k) in enumerate(cases):
        stride, pad, op = G.geom_args(geom)
        bb = np.zeros(w.shape[1 if t else 0], np.float32) if b is None else b
        if t:
            y = G.conv_transpose2d_forward_f32(x, w, bb, stride, pad, op, relu)
        else:
            y = G.conv2d_forward_f32(x, w, bb, stride, pad, relu)
        eu = e.astype(np.float64)
        if sel is not None:
            m = np.zeros(e.shape[0], bool)
            m[sel[:k]] = True
            eu[~m] = 0
        bw = G.conv_transpose2d_backward_f32 if t else G.conv2d_backward_f32
        ex, gw, gb = bw(eu, x, w, stride, pad, y if relu else None)
        # float32 accumulation in a different order: error ~ eps * sum |terms|
        got = [np.frombuffer(v, np.float32) for v in res[i]]
        what = "case %d (%s %s)" % (i, "convT" if t else "conv", geom)
        for name, g, ref, scale in (("y", got[0], y, 1.0), ("ex", got[1], ex, 1.0),
                                    ("gw", got[2], gw, 1.0), ("gb", got[3], gb, 1.0)):
            ref = ref.ravel()
            tol = 2e-5 * (np.abs(ref).max() + 1) * np.sqrt(max(1, ref.size))
            assert np.abs(g - ref).max() <= tol, what + ": " + name
        if relu:
            assert np.all(got[0] >= 0)


UPD_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    fl, x, xq, w, wq, b, bq, e, eq, sel, hp, state, rng = rdn(f, 13)
    t, flags, k = fl[0], fl[1], fl[2]
    geom = tuple(fl[3:])
    scratch = buf('s', 'B', Q.conv_transpose2d_scratch_len(geom) if t else Q.conv2d_scratch_len(geom))
    fn = Q.conv_transpose2d_update_u8 if t else Q.conv2d_update_u8
    rem = fn(e, eq, x, xq, w, wq, b, bq, geom, sel, k, hp, flags, state, rng, scratch)
    print('U', i, end='')
    phx(bytearray([rem]))
    phx(w)
    phx(wq, 'f')
    if b is None:
        phx(bytearray(1))
    else:
        phx(b, 'i')
    phx(state, 'f')
    phx(rng, 'f')
    print()
    scratch = fl = x = xq = w = wq = b = bq = e = eq = sel = hp = state = rng = None
print('done')
"""


def test_conv_update_u8_bit_exact(run):
    """Batch-1 update with per-filter standardization, DSGU selection, the
    three rounding modes, moving-average state, weight range update/re-map."""
    rng = np.random.default_rng(77)
    geoms = VAE_GEOMS + [(bool(i % 2), rand_geom(rng, bool(i % 2))) for i in range(24)]
    run_update_cases(run, rng, (u8_case(rng, t, geom) for t, geom in geoms))   # (drawn in turn with the settings)


@pytest.mark.parametrize("t", [False, True], ids=["conv", "convt"])
def test_conv_update_u8_direct_bit_exact(run, t):
    """DSGU updates of 1 to 5 filters with 3 taps per row.  Conv2d: the
    direct gradients from the padded input (conv_dsgu_u8.c), whose list of
    an error map's nonzero values skips the zero points; ConvTranspose2d
    (32->16 among them): on the M0 with up to four filters each filter's
    error patches against x's channels as they are (corr9_u8, skipping x's
    zero points), whatever out_ch.  Half of e, and of x, at the zero
    points; with and without bias."""
    rng = np.random.default_rng(79 if t else 78)
    geoms = [g for tt, g in VAE_GEOMS if tt == t]
    while len(geoms) < 12:
        g = rand_geom(rng, t)
        if g[5] == 3:   # k_w
            geoms.append(g)
    cases = []
    for i, geom in enumerate(geoms):
        c = u8_case(rng, t, geom, zfrac=0.5)
        co = c["e"].shape[0]
        c["k"] = 1 + i % min(5, co)
        c["sel"] = rng.permutation(co).astype(np.int32)
        if i % 3 == 0:
            c["b"] = None
        cases.append(c)
    run_update_cases(run, rng, cases)


def test_conv_update_u8_xlist_bit_exact(run):
    """DSGU updates of 1 to 5 filters at stride 2, 3 x 3 taps, padding 1:
    on the M0 (and the Unix port) the gradients summed over the list of x's
    values other than its zero point (conv_dsgu_u8.c), each parity class of
    input positions with its own taps.  Odd and even sizes (a class with no
    column or row at 1), x a ReLU output (zero point 0, 72 % zeros: the
    list), half at any zero point, and dense (the list does not fit in
    Conv 16->32's scratch: the re-sampled input)."""
    rng = np.random.default_rng(83)
    geoms = [g for tt, g in VAE_GEOMS if not tt]
    geoms += [(int(rng.integers(1, 6)), h, w, int(rng.integers(1, 9)), 3, 3, 2, 2, 1, 1)
              for h, w in ((5, 6), (6, 5), (1, 4), (3, 1), (9, 9), (2, 2), (7, 8))]
    cases = []
    for i, geom in enumerate(geoms + geoms[:2]):
        c = u8_case(rng, False, geom)
        kind = i % 3 if i < len(geoms) else 2
        if kind == 0:       # a ReLU output
            c["xq"] = GQ.new_qp(0.0, float(rng.uniform(0.5, 4.0)))
            c["x"][rng.random(c["x"].shape) < 0.72] = 0
        elif kind == 1:
            at_zero(rng, c["x"], c["xq"], 0.5)
        at_zero(rng, c["e"], c["eq"], 0.3)
        co = c["e"].shape[0]
        c["k"] = 1 + i % min(5, co)
        c["sel"] = rng.permutation(co).astype(np.int32)
        cases.append(c)
    run_update_cases(run, rng, cases)


def run_update_cases(run, rng, ucases):
    """ucases (u8_case dicts, an iterable) through UPD_SCRIPT with random update
    settings, each against the golden model's update_u8_qp."""
    cases = []
    data = bytearray()
    for c in ucases:
        t, geom = c["t"], c["geom"]
        co = c["e"].shape[0]
        if c["sel"] is not None:
            c["k"] = max(1, c["k"])
            c["sel"] = np.sort(c["sel"][:c["k"]]).astype(np.int32)
        flags = 4 | int(rng.integers(0, 4))
        # lr 1e-4, 1e-5: multipliers below 2^-1 (the fast long-multiply path)
        hp = np.array([rng.choice([0.00001, 0.0001, 0.001, 0.01, 0.1]), rng.choice([1.0, 0.85, 0.3]),
                       rng.choice([0.0, 0.05, 0.5])], np.float32)
        state = np.zeros(5 + 2 * co, np.float32)
        if rng.random() < 0.5:
            state[0] = 3
            state[1:] = rng.uniform(0.001, 0.1, state.size - 1).astype(np.float32)
            state[5::2] = rng.uniform(-0.01, 0.01, co).astype(np.float32)
        wq = c["wq"].copy()
        wq[GQ.ALPHA] = rng.choice([0.0, 0.001, 0.5])
        seed = np.array([int(rng.integers(1, 2**32 - 1))], np.uint32)
        cases.append((c, flags, hp, state, wq, seed))
        fl = np.array([int(t), flags, c["k"]] + list(geom), np.int32)
        data += pack(fl, c["x"].ravel(), c["xq"], c["w"].ravel(), wq, c["b"], c["bq"],
                     c["e"].ravel(), c["eq"], c["sel"], hp, state, seed)
    data = pack(np.array([len(cases)], np.int32)) + bytes(data)
    out = run(UPD_SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    res = parse(out, "U")
    assert len(res) == len(cases)
    for i, (c, flags, hp, state, wq, seed) in enumerate(cases):
        what = "case %d (%s %s flags=%d k=%s)" % (i, "convT" if c["t"] else "conv", c["geom"], flags,
                                                  c["k"] if c["sel"] is not None else "all")
        w, wq2, b, st, rng2, rem = G.update_u8_qp(c["t"], c["e"], c["eq"], c["x"], c["xq"], c["w"], wq,
                                                  c["b"], c["bq"], c["geom"], c["sel"], hp, flags,
                                                  state, int(seed[0]))
        got = res[i]
        assert got[0][0] == rem, what + ": remapped"
        assert got[1] == np.asarray(w, np.uint8).tobytes(), what + ": w"
        assert got[2] == np.asarray(wq2, np.float32).tobytes(), what + ": wq"
        if c["b"] is not None:
            assert got[3] == np.asarray(b, np.int32).tobytes(), what + ": b"
        assert got[4] == np.asarray(st, np.float32).tobytes(), what + ": state"
        assert got[5] == np.array([rng2], np.uint32).tobytes(), what + ": rng"


SEL_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    e, eq, hp, st, fl = rdn(f, 5)
    ch = fl[0]
    sel = zeros('i', ch)
    scr = zeros('I', 2 * ch)
    k = Q.conv_select_u8(e, eq, hp, st, sel, scr)
    sc = zeros('I', ch)
    Q.conv_scores_u8(e, eq, sc)
    print('S', i, end='')
    phx(bytearray([k & 255, k >> 8]))
    phx(sel, 'i')
    phx(st, 'f')
    phx(sc, 'i')
    print()
print('done')
"""


def check_selection(got, i, k, sel, emax):
    """A selection's printed k (2 bytes), sel and running max (SEL_SCRIPT,
    SCORES_SCRIPT) against the golden k, rows and ebar_max."""
    got_k = got[0][0] | (got[0][1] << 8)
    assert got_k == k, "case %d: k %d vs %d" % (i, got_k, k)
    assert np.frombuffer(got[1], np.int32)[:k].tolist() == list(sel), "case %d: sel" % i
    assert np.frombuffer(got[2], np.float32)[0] == np.float32(emax), "case %d: state" % i


def test_conv_select_u8_bit_exact(run):
    """DSGU channel selection: k from lmin/lmax and the running max, top-k by
    sum |e - z_e| per channel (ties to the lower index)."""
    rng = np.random.default_rng(11)
    cases = []
    data = bytearray()
    for i in range(40):
        ch = int(rng.choice([1, 2, 3, 16, 32, 50]))
        hw = int(rng.choice([1, 4, 49, 196]))
        e = rng.integers(0, 256, (ch, hw), dtype=np.uint8)
        if i % 5 == 0:
            e[:] = rng.integers(120, 136, (ch, hw))     # many ties
        eq = rand_qp(rng)
        lmin = float(rng.choice([0.1, 0.5, 1.0]))
        hp = np.array([lmin, max(lmin, float(rng.choice([0.5, 1.0])))], np.float32)
        st = np.array([rng.choice([0.0, 0.001, 100.0])], np.float32)
        cases.append((e, eq, hp, st))
        data += pack(e.ravel(), eq, hp, st, np.array([ch], np.int32))
    data = pack(np.array([len(cases)], np.int32)) + bytes(data)
    out = run(SEL_SCRIPT, files={"cases.bin": data})
    res = parse(out, "S")
    assert len(res) == len(cases)
    for i, (e, eq, hp, st) in enumerate(cases):
        k, sel, emax = G.select_u8_qp(e, eq, hp[0], hp[1], st[0])
        check_selection(res[i], i, k, sel, emax)
        score = np.abs(e.astype(np.int64) - int(eq[1])).sum(axis=1)     # sum |e - z_e| per channel
        assert np.frombuffer(res[i][3], np.uint32).tolist() == score.tolist(), "case %d: scores" % i


SCORES_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    sc, ne, eq, hp, st = rdn(f, 5)
    ch = len(sc)
    sel = zeros('i', ch)
    k = Q.select_scores(sc, ne[0], eq, hp, st, sel, zeros('I', ch))
    print('T', i, end='')
    phx(bytearray([k & 255, k >> 8]))
    phx(sel, 'i')
    phx(st, 'f')
    print()
print('done')
"""


def test_select_scores_bit_exact(run):
    """select_scores (the conv layers' DSGU choice from conv_scores_u8's
    scores): ebar from the scores' exact sum rounded once, as conv_select_u8
    and the golden model.  Large scores whose sum passes 2^24 (a float
    running sum drops the small ones: [2^24, 1, 1, 1] gave ebar from
    2^24 instead of 2^24 + 4), then random ones, ties included."""
    rng = np.random.default_rng(29)
    cases = [np.array([1 << 24, 1, 1, 1], np.uint32),
             np.array([8355585] * 5 + [3, 1, 1], np.uint32),        # 32767 * 255 per channel
             np.array([1, 1, 1 << 24, 1, 1, 1, 1], np.uint32)]
    for i in range(30):
        ch = int(rng.choice([1, 2, 3, 16, 32, 50]))
        hi = int(rng.choice([300, 1 << 16, 8355585]))
        cases.append(rng.integers(0, hi, ch, dtype=np.uint32))
        if i % 4 == 0:
            cases[-1][:] = cases[-1][0]                              # all tied
    data = bytearray()
    params = []
    for sc in cases:
        n_err = int(len(sc) * rng.choice([1, 49, 32767]))
        eq = rand_qp(rng)
        lmin = float(rng.choice([0.1, 0.5, 1.0]))
        hp = np.array([lmin, max(lmin, float(rng.choice([0.5, 1.0])))], np.float32)
        st = np.array([rng.choice([0.0, 0.001, 100.0])], np.float32)
        params.append((n_err, eq, hp, st))
        data += pack(sc, np.array([n_err], np.int32), eq, hp, st)
    data = pack(np.array([len(cases)], np.int32)) + bytes(data)
    res = parse(run(SCORES_SCRIPT, files={"cases.bin": data}), "T")
    assert len(res) == len(cases)
    for i, (sc, (n_err, eq, hp, st)) in enumerate(zip(cases, params)):
        k, sel, emax = G.select_scores_qp(sc, n_err, eq[GQ.SCALE], hp[0], hp[1], st[0])
        check_selection(res[i], i, k, sel, emax)


MASK_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    e, eq, y, yq, fl = rdn(f, 5)
    sc = zeros('I', fl[0])
    e0 = bytearray(e)
    Q.conv_scores_u8(e0, eq, sc, None, yq)      # y None: the scores alone, e untouched
    sc0 = bytearray(sc)
    Q.conv_scores_u8(e, eq, sc, y, yq)          # the ReLU mask fused in
    print('M', i, end='')
    phx(e0)
    phx(sc0)
    phx(e)
    phx(sc, 'i')
    print()
print('done')
"""


def test_conv_relu_mask_scores_u8_bit_exact(run):
    """conv_scores_u8 with y: the ReLU mask on e in place (e = z_e where
    y <= z_y) and the scores of the masked error in one pass, as the golden
    relu_mask_u8 then sum |e - z_e| per channel; maps of 1 to 196 values
    (the M4's 4-byte steps and their tails), zero points 0 and 255 too."""
    rng = np.random.default_rng(23)
    cases = []
    data = bytearray()
    for i in range(40):
        ch = int(rng.choice([1, 2, 3, 16, 32]))
        hw = int(rng.choice([1, 3, 4, 5, 49, 196]))
        e = rng.integers(0, 256, (ch, hw), dtype=np.uint8)
        eq, yq = rand_qp(rng), rand_qp(rng)
        if i % 4 == 1:
            eq[GQ.ZERO], yq[GQ.ZERO] = 0.0, 255.0       # every y masked
        elif i % 4 == 2:
            eq[GQ.ZERO], yq[GQ.ZERO] = 255.0, 0.0
        zy = int(yq[GQ.ZERO])
        y = np.clip(zy + rng.integers(-3, 4, (ch, hw)), 0, 255).astype(np.uint8)   # around z_y: both sides
        cases.append((e, eq, y, yq))
        data += pack(e.ravel(), eq, y.ravel(), yq, np.array([ch], np.int32))
    data = pack(np.array([len(cases)], np.int32)) + bytes(data)
    out = run(MASK_SCRIPT, files={"cases.bin": data})
    res = parse(out, "M")
    assert len(res) == len(cases)
    for i, (e, eq, y, yq) in enumerate(cases):
        ze = int(eq[GQ.ZERO])
        score0 = np.abs(e.astype(np.int64) - ze).sum(axis=1)
        assert res[i][0] == e.tobytes(), "case %d: e changed without y" % i
        assert np.frombuffer(res[i][1], np.uint32).tolist() == score0.tolist(), "case %d: scores without y" % i
        em = G.relu_mask_u8(e, ze, y, int(yq[GQ.ZERO]))
        assert res[i][2] == em.tobytes(), "case %d: masked e" % i
        score = np.abs(em.astype(np.int64) - ze).sum(axis=1)
        assert np.frombuffer(res[i][3], np.uint32).tolist() == score.tolist(), "case %d: scores" % i


MIX_SCRIPT = DEVICE_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    fl, e, y, yq, w, wq, x, xq, sel = rdn(f, 9)
    t, relu, k = fl[0], fl[1], fl[2]
    geom = tuple(fl[3:])
    ex = zeros('f', len(x))
    gw = zeros('f', len(w))
    oc = (QF.conv_transpose2d_out_shape if t else QF.conv2d_out_shape)(geom)[0]
    gb = zeros('f', oc)
    (QF.conv_transpose2d_backward_mixed if t else QF.conv2d_backward_mixed)(
        e, y if relu else None, yq, w, wq, ex, geom, sel, k)
    (QF.conv_transpose2d_grad_mixed if t else QF.conv2d_grad_mixed)(e, x, xq, gw, gb, geom, sel, k)
    print('M', i, end='')
    for v in (e, ex, gw, gb):
        phx(v, 'f')
    print()
    fl = e = y = yq = w = wq = x = xq = sel = ex = gw = gb = None
print('done')
"""


def test_conv_mixed(run):
    """Mixed mode (uint8 forward, float32 errors): error propagation with the
    uint8 weights and float gradients from the uint8 inputs, against the
    float golden model on the dequantized tensors."""
    rng = np.random.default_rng(31)
    geoms = [(bool(i % 2), rand_geom(rng, bool(i % 2))) for i in range(24)]
    geoms += [(t, g) for t, g in VAE_GEOMS if run.target == "unix" or g[0] * g[3] <= 16]
    cases = []
    data = bytearray()
    for t, geom in geoms:
        xs, wshape, ys = shapes(t, geom)
        x = rng.integers(0, 256, xs, dtype=np.uint8)
        w = rng.integers(0, 256, wshape, dtype=np.uint8)
        y = rng.integers(0, 256, ys, dtype=np.uint8)
        xq, wq, yq = rand_qp(rng), rand_qp(rng), rand_qp(rng)
        e = rng.standard_normal(ys).astype(np.float32)
        relu = int(rng.random() < 0.5)
        if rng.random() < 0.4:
            k, sel = int(rng.integers(0, ys[0] + 1)), rng.permutation(ys[0]).astype(np.int32)
        else:
            k, sel = ys[0], None
        cases.append((t, geom, x, w, y, xq, wq, yq, e, relu, sel, k))
        fl = np.array([int(t), relu, k] + list(geom), np.int32)
        data += pack(fl, e.ravel(), y.ravel(), yq, w.ravel(), wq, x.ravel(), xq, sel)
    data = pack(np.array([len(cases)], np.int32)) + bytes(data)
    out = run(MIX_SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    res = parse(out, "M")
    assert len(res) == len(cases)
    for i, (t, geom, x, w, y, xq, wq, yq, e, relu, sel, k) in enumerate(cases):
        stride, pad, op = G.geom_args(geom)
        xd = G.dequantize(x, xq[0], xq[1])
        wd = G.dequantize(w, wq[0], wq[1])
        eu = e.astype(np.float64)
        if relu:
            eu = np.where(y.astype(np.int64) > int(yq[1]), eu, 0.0)
        if sel is not None:
            m = np.zeros(e.shape[0], bool)
            m[sel[:k]] = True
            eu[~m] = 0
        bw = G.conv_transpose2d_backward_f32 if t else G.conv2d_backward_f32
        ex, gw, gb = bw(eu, xd, wd, stride, pad, None)
        got = [np.frombuffer(v, np.float32) for v in res[i]]
        what = "case %d (%s %s)" % (i, "convT" if t else "conv", geom)
        if relu:
            emask = np.where(y.astype(np.int64) > int(yq[1]), e, 0.0).ravel()
            assert np.array_equal(got[0], emask.astype(np.float32)), what + ": e after ReLU mask"
        for name, g_, ref in (("ex", got[1], ex), ("gw", got[2], gw), ("gb", got[3], gb)):
            ref = ref.ravel()
            tol = 2e-5 * (np.abs(ref).max() + 1) * np.sqrt(max(1, ref.size)) * 10
            assert np.abs(g_ - ref).max() <= tol, what + ": " + name


BATCH_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
import _qtrain_float as QF
def qp(lo, hi, alpha):
    r = array('f', [1, 0, lo, hi, alpha, 0, 0, 0]); Q.qp_from_range(r); return r
for geom in [(3, 4, 4, 2, 3, 3, 2, 2, 1, 1, 1, 1), (2, 3, 5, 4, 2, 3, 2, 1, 0, 1, 1, 0)]:
    ci, co, kk = geom[0], geom[3], geom[4] * geom[5]
    oc, oh, ow = Q.conv_transpose2d_out_shape(geom)
    x = bytearray((i * 37 + 5) & 255 for i in range(ci * geom[1] * geom[2])); xq = qp(0, 1, 0)
    e = bytearray((i * 53 + 11) & 255 for i in range(oc * oh * ow)); eq = qp(-1, 1, 0)
    w0 = bytearray((i * 91 + 7) & 255 for i in range(ci * co * kk))
    b0 = array('i', [i * 1000 - 500 for i in range(co)]); bq = array('f', [1e-4, 0, -1, 1, 0, 0, 0, 0])
    hp = array('f', [0.01, 0.85, 0.05])
    sc = bytearray(Q.conv_transpose2d_scratch_len(geom))
    # fused batch-1 step
    w1 = bytearray(w0); b1 = array('i', b0); wq1 = qp(-0.3, 0.3, 0.01)
    st1 = array('f', [0] * (5 + 2 * co)); r1 = array('I', [99])
    Q.conv_transpose2d_update_u8(e, eq, x, xq, w1, wq1, b1, bq, geom, None, 0, hp, 6, st1, r1, sc)
    # batch path: int32 gradients, filter-major, update_rows_u8, back
    gw = array('i', [0] * len(w0)); gb = array('i', [0] * co)
    QF.conv_transpose2d_grad_u8(e, eq, x, xq, gw, gb, geom, None, 0, sc)
    gfm = array('i', [0] * len(w0)); QF.conv_swap_axes(gw, gfm, ci, co, kk)
    wfm = bytearray(len(w0)); QF.conv_swap_axes(w0, wfm, ci, co, kk)
    b2 = array('i', b0); wq2 = qp(-0.3, 0.3, 0.01)
    st2 = array('f', [0] * (5 + 2 * co)); r2 = array('I', [99])
    gs = array('f', [eq[0] * xq[0], eq[0]])
    QF.update_rows_u8(gfm, gs, wfm, wq2, gb, b2, bq, hp, 6, st2, r2)
    w2 = bytearray(len(w0)); QF.conv_swap_axes(wfm, w2, co, ci, kk)
    print('same', geom, w1 == w2, list(b1) == list(b2), list(st1) == list(st2), list(wq1) == list(wq2),
          list(r1) == list(r2), w1 != w0)
print('done')
"""


def test_conv_transpose2d_batch_path_matches_fused_update(run):
    """The batch path for ConvTranspose2d (int32 gradients, conv_swap_axes to
    filter-major, the shared update_rows_u8, swap back) gives exactly the
    fused batch-1 update: per-filter standardization either way."""
    out = run(BATCH_SCRIPT)
    assert "done" in out, out[-2000:]
    lines = [l for l in out.splitlines() if l.startswith("same")]
    assert len(lines) == 2
    for l in lines:
        assert l.endswith("True True True True True True"), l


MIXUPD_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
import _qtrain_float as QF
def qp(lo, hi, alpha):
    r = array('f', [1, 0, lo, hi, alpha, 0, 0, 0]); Q.qp_from_range(r); return r
GEOMS = [(0, (2, 6, 6, 3, 3, 3, 2, 2, 1, 1)), (0, (1, 5, 4, 4, 2, 3, 1, 2, 1, 0)),
         (1, (3, 4, 4, 2, 3, 3, 2, 2, 1, 1, 1, 1)), (1, (2, 3, 5, 4, 2, 3, 2, 1, 0, 1, 1, 0))]
for t, geom in GEOMS:
    ci, co, kk = geom[0], geom[3], geom[4] * geom[5]
    oc, oh, ow = (Q.conv_transpose2d_out_shape if t else Q.conv2d_out_shape)(geom)
    x = bytearray((i * 37 + 5) & 255 for i in range(ci * geom[1] * geom[2])); xq = qp(-0.5, 1, 0)
    e = array('f', [((i * 53 + 11) % 97) / 50.0 - 1.0 for i in range(oc * oh * ow)])
    w0 = bytearray((i * 91 + 7) & 255 for i in range(ci * co * kk))
    b0 = array('i', [i * 1000 - 500 for i in range(co)]); bq = array('f', [1e-4, 0, -1, 1, 0, 0, 0, 0])
    hp = array('f', [0.01, 0.85, 0.05])
    sc = bytearray((Q.conv_transpose2d_scratch_len if t else Q.conv2d_scratch_len)(geom))
    sel = array('i', [0, co - 1]) if co > 2 else None
    k = 2 if sel else 0
    for flags in (4, 5, 6, 7):
        # fused batch-1 step (twice: the second sees moving-average state)
        w1 = bytearray(w0); b1 = array('i', b0); wq1 = qp(-0.3, 0.3, 0.01)
        st1 = array('f', [0] * (5 + 2 * co)); r1 = array('I', [99])
        w2 = bytearray(w0); b2 = array('i', b0); wq2 = qp(-0.3, 0.3, 0.01)
        st2 = array('f', [0] * (5 + 2 * co)); r2 = array('I', [99])
        for step in range(2):
            (QF.conv_transpose2d_update_mixed if t else QF.conv2d_update_mixed)(
                e, x, xq, w1, wq1, b1, bq, geom, sel, k, hp, flags, st1, r1, sc)
            gw = array('f', [0] * len(w0)); gb = array('f', [0] * co)
            (QF.conv_transpose2d_grad_mixed if t else QF.conv2d_grad_mixed)(e, x, xq, gw, gb, geom, sel, k)
            if t:
                gfm = array('f', [0] * len(w0)); QF.conv_swap_axes(gw, gfm, ci, co, kk)
                wfm = bytearray(len(w0)); QF.conv_swap_axes(w2, wfm, ci, co, kk)
                QF.update_rows_mixed(gfm, wfm, wq2, gb, b2, bq, hp, flags, st2, r2)
                QF.conv_swap_axes(wfm, w2, co, ci, kk)
            else:
                QF.update_rows_mixed(gw, w2, wq2, gb, b2, bq, hp, flags, st2, r2)
        print('same', t, flags, w1 == w2, list(b1) == list(b2), list(st1) == list(st2),
              list(wq1) == list(wq2), list(r1) == list(r2), w1 != w0)
print('done')
"""


def test_conv_update_mixed_matches_batch_path(run):
    """Mixed mode: the fused batch-1 update (filter rows in scratch) gives
    exactly conv*_grad_mixed + (conv_swap_axes +) update_rows_mixed, for every
    rounding mode, over two steps, with DSGU selection."""
    out = run(MIXUPD_SCRIPT)
    assert "done" in out, out[-2000:]
    lines = [l for l in out.splitlines() if l.startswith("same")]
    assert len(lines) == 16
    for l in lines:
        assert l.endswith("True True True True True True"), l
