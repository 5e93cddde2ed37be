"""Output heads, latent layer, Gaussian generator and portable float math of
_qtrain, bit-exact against the numpy golden model (golden/loss.py) on every
target.

The kernels use only correctly rounded float32 operations (no libm, no FMA),
so the golden model's float32 mirror predicts every output bit: float32
tensors, uint8 tensors, the stats and the qparams observations must all be
identical.  (Accuracy against float64 and finite differences are checked on
the host in test_loss_golden.py.)  Cases are generated on the host, passed as
one binary file, and many cases share one interpreter/QEMU boot.
"""
import numpy as np

from casefile import pack
from casefile import parse_fields as parse
from qtrain_host.golden import loss as GL
from qtrain_host.golden import quant as GQ

# ---- case file protocol --------------------------------------------------------

DEVICE_LIB = r"""
from array import array
import gc
import _qtrain as Q
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
    return array(tc, f.read(n))
def rdn(f, k):
    return [rd(f) for _ in range(k)]
def out(tag, i, *items):
    print(tag, i, end='')
    for it in items:
        if isinstance(it, (bytes, bytearray, memoryview, array)):
            b = bytes(it)
            print(' ', end='')
            for j in range(0, len(b), 64):
                print(''.join(['%02x' % v for v in b[j:j + 64]]), end='')
        else:
            print(' ' + str(it), end='')
    print()
def fz(n):
    return array('f', bytes(4 * n))
"""


def f32(h):
    return np.frombuffer(bytes.fromhex(h), np.float32)


def u8(h):
    return np.frombuffer(bytes.fromhex(h), np.uint8)


def same_f32(a, b):
    """Bit-identical float32 arrays (NaN == NaN; -0 == +0 only by value)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b)))) and \
        bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | (a == 0) | np.isnan(a)))


def i32(*v):
    return np.array(v, np.int32)


def rand_qp(rng, lo=None, hi=None, alpha=0.0):
    if lo is None:
        w = float(np.exp(rng.uniform(-3, 3)))
        c = float(rng.uniform(-0.9, 0.9))
        lo, hi = w * (c - 1), w * (c + 1)
    qp = GQ.new_qp(lo, hi, alpha)
    if rng.random() < 0.5:   # an earlier observation pending in the record
        a, b = sorted(rng.normal(0, 1, 2))
        qp[GQ.OBS_MIN], qp[GQ.OBS_MAX], qp[GQ.OBS_N] = a, b, 1
    return qp


# ---- portable float math -------------------------------------------------------------

VMATH_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
x = rd(f)
y = fz(len(x))
for op in range(6):
    Q.vmath(op, x, y)
    out('V', op, y)
print('done')
"""


def vmath_inputs(seed=5, n=1500):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    spec = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, 1.0, 2.0, 0.5,
                     88.7228317, 88.7228394, -87.3, -103.9, -104.0, 1e-8, -1e-8, -0.999999, 3e38],
                    np.float32)
    return np.concatenate([spec, bits,
                           rng.uniform(-110, 95, n).astype(np.float32),
                           np.exp(rng.uniform(-80, 80, n)).astype(np.float32),
                           rng.uniform(-1, 1, n).astype(np.float32) * np.float32(1e-3)])


def test_vmath_bit_exact(run):
    x = vmath_inputs()
    out = run(VMATH_SCRIPT, files={"cases.bin": pack(x)})
    assert "done" in out
    got = parse(out, "V")
    for op, fn in GL.VMATH.items():
        y = f32(got[op][0])
        ref = fn(x)
        bad = ~((y.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(y) & np.isnan(ref)))
        assert not bad.any(), (op, x[bad][:5], y[bad][:5], ref[bad][:5])


def test_vmath_accuracy_on_target(run):
    """expf/logf/log1pf/sigmoidf on the target vs numpy float64: max relative
    error over normal results (printed with -s; bounds 1.5 * 2^-24 for exp and
    log, 3.1 * 2^-24 for log1p and sigmoid, from the exhaustive host sweep in
    docs/KERNELS.md)."""
    x = vmath_inputs(seed=6)
    out = run(VMATH_SCRIPT, files={"cases.bin": pack(x)})
    got = parse(out, "V")
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        fin = np.isfinite(x64)
        for op, name, ref64, dom, bound in (
                (GL.VM_EXP, "expf", np.exp(x64), fin, 1.5),
                (GL.VM_LOG, "logf", np.log(x64), (x64 > 0) & fin, 1.5),
                (GL.VM_LOG1P, "log1pf", np.log1p(x64), (x64 > -1) & fin, 3.1),
                (GL.VM_SIGMOID, "sigmoidf", 1 / (1 + np.exp(-x64)), fin, 3.1)):
            y = f32(got[op][0]).astype(np.float64)
            ok = dom & (np.abs(ref64) >= 2.0 ** -126) & (np.abs(ref64) < 3.4e38)
            rel = np.max(np.abs(y[ok] - ref64[ok]) / np.abs(ref64[ok]))
            print("%s: %s max rel err %.3e (%.2f x 2^-24) over %d values"
                  % (run.target, name, rel, rel * 2 ** 24, ok.sum()))
            assert rel <= bound * 2.0 ** -24


# ---- Gaussian generator ------------------------------------------------------------------

RNG_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
seeds, sizes = rdn(f, 2)
st = array('I', [0])
for i in range(len(seeds)):
    Q.rng_seed(st, seeds[i])
    out('S', i, st)
    for j in range(len(sizes)):
        v = fz(sizes[j])
        Q.rng_normal(st, v)
        out('N', i * 100 + j, v, st)
print('done')
"""


def test_rng_normal_stream(run):
    seeds = np.array([1, 2, 3, 0, 12345, 0x7fffffff], np.int32)
    sizes = np.array([1, 2, 3, 10, 7, 500, 0, 1], np.int32)
    out = run(RNG_SCRIPT, files={"cases.bin": pack(seeds, sizes)})
    assert "done" in out
    S, N = parse(out, "S"), parse(out, "N")
    for i, seed in enumerate(seeds):
        st = GL.rng_seed(int(seed))
        assert int.from_bytes(bytes.fromhex(S[i][0]), "little") == st
        for j, n in enumerate(sizes):
            st, v = GL.rng_normal(st, int(n))
            got = N[i * 100 + j]
            if n:
                assert same_f32(f32(got[0]), v), (seed, n)
            assert int.from_bytes(bytes.fromhex(got[-1]), "little") == st, (seed, n)


# ---- sigmoid + BCE -------------------------------------------------------------------------

BCE_SCRIPT = DEVICE_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
nc = rd(f)[0]
stats = fz(3)
lut = fz(512)
for i in range(nc):
    mode, x, xq, t, eq = rdn(f, 5)
    n = len(t)
    if mode[0] == 0:
        e = bytearray(n)
        eq2 = array('f', eq)
        Q.bce_sigmoid_u8(x, xq, t, e, eq, stats)
        out('R', i, e, stats, eq)
        # the same with the LUT scratch: identical results
        Q.bce_sigmoid_u8(x, xq, t, e, eq2, stats, lut)
        out('L', i, e, stats, eq2)
    elif mode[0] == 1:
        e = fz(n)
        QF.bce_sigmoid_mixed(x, xq, t, e, stats)
        out('R', i, e, stats)
        QF.bce_sigmoid_mixed(x, xq, t, e, stats, None if i % 2 else lut)
        out('L', i, e, stats)
    else:
        e = fz(n)
        QF.bce_sigmoid_f32(x, t, e, stats)
        out('R', i, e, stats)
    gc.collect()
print('done')
"""


def bce_cases(seed, k):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(k):
        mode = i % 3
        n = int(rng.choice([1, 2, 17, 100, 784]))
        t = rng.integers(0, 256, n).astype(np.uint8)
        t[rng.random(n) < 0.3] = 0            # MNIST-like: many black pixels
        t[rng.random(n) < 0.1] = 255
        if mode == 2:
            x = (rng.normal(0, float(np.exp(rng.uniform(-2, 3))), n)).astype(np.float32)
            if i % 7 == 2:
                x[: min(n, 4)] = [95.0, -95.0, 0.0, -0.0][: min(n, 4)]   # exp underflow
            xq = eq = None
        else:
            xq = rand_qp(rng)
            x = rng.integers(0, 256, n).astype(np.uint8)
            eq = rand_qp(rng, -1.0, 1.0) if rng.random() < 0.5 else rand_qp(rng)
        cases.append((mode, x, xq, t, eq))
    return cases


def test_bce_sigmoid_bit_exact(run):
    cases = bce_cases(21, 60)
    blob = pack(i32(len(cases)))
    for mode, x, xq, t, eq in cases:
        blob += pack(i32(mode), x, xq, t, eq if mode == 0 else None)
    out = run(BCE_SCRIPT, files={"cases.bin": blob})
    assert "done" in out
    R, Lo = parse(out, "R"), parse(out, "L")
    for i, (mode, x, xq, t, eq) in enumerate(cases):
        if mode != 2:
            assert Lo[i] == R[i], i
        qp = eq.copy() if mode == 0 else None
        if mode == 2:
            e, stats = GL.bce_sigmoid(x, t, qp)
        else:
            e, stats = GL.bce_sigmoid_q(x, xq[GQ.SCALE], xq[GQ.ZERO], t, qp)
        got = R[i]
        if mode == 0:
            assert np.array_equal(u8(got[0]), e), i
            assert same_f32(f32(got[2]), qp), i
        else:
            assert same_f32(f32(got[0]), e), i
        assert same_f32(f32(got[1]), stats), (i, f32(got[1]), stats)


# ---- softmax + CE ---------------------------------------------------------------------------

CE_SCRIPT = DEVICE_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
nc = rd(f)[0]
stats = fz(3)
for i in range(nc):
    mode, x, xq, lab, eq = rdn(f, 5)
    c = len(x)
    if mode[0] == 0:
        e = bytearray(c)
        p = Q.softmax_ce_u8(x, xq, lab[0], e, eq, stats)
        out('R', i, e, stats, eq, p)
    elif mode[0] == 1:
        e = fz(c)
        p = QF.softmax_ce_mixed(x, xq, lab[0], e, stats)
        out('R', i, e, stats, p)
    else:
        e = fz(c)
        p = QF.softmax_ce_f32(x, lab[0], e, stats)
        out('R', i, e, stats, p)
print('done')
"""


def ce_cases(seed, k):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(k):
        mode = i % 3
        c = int(rng.choice([1, 2, 3, 10, 10, 47]))
        lab = int(rng.integers(0, c))
        if mode == 2:
            x = rng.normal(0, float(np.exp(rng.uniform(-2, 4))), c).astype(np.float32)
            if i % 5 == 2 and c > 2:
                x[1] = x[0]                   # tie: the first index wins
                x[0] = x[1] = np.max(x) + 1
            xq = eq = None
        else:
            xq = rand_qp(rng)
            x = rng.integers(0, 256, c).astype(np.uint8)
            eq = rand_qp(rng, -1.0, 1.0) if rng.random() < 0.5 else rand_qp(rng)
        cases.append((mode, x, xq, lab, eq))
    return cases


def test_softmax_ce_bit_exact(run):
    cases = ce_cases(31, 90)
    blob = pack(i32(len(cases)))
    for mode, x, xq, lab, eq in cases:
        blob += pack(i32(mode), x, xq, i32(lab), eq if mode == 0 else None)
    out = run(CE_SCRIPT, files={"cases.bin": blob})
    assert "done" in out
    R = parse(out, "R")
    for i, (mode, x, xq, lab, eq) in enumerate(cases):
        xf = x if mode == 2 else GL.dequant(x, xq[GQ.SCALE], xq[GQ.ZERO])
        qp = eq.copy() if mode == 0 else None
        pred, e, stats = GL.softmax_ce(xf, lab, qp)
        got = R[i]
        assert int(got[-1]) == pred, i
        if mode == 0:
            assert np.array_equal(u8(got[0]), e), i
            assert same_f32(f32(got[2]), qp), i
        else:
            assert same_f32(f32(got[0]), e), i
        assert same_f32(f32(got[1]), stats), (i, f32(got[1]), stats)


# ---- latent -----------------------------------------------------------------------------------

LATENT_SCRIPT = DEVICE_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
nc = rd(f)[0]
stats = fz(3)
for i in range(nc):
    mode, h, hq, rng, eps, zq, dz, dzq, dhq, hp = rdn(f, 10)
    L = len(h) // 2
    if mode[0] == 0:      # uint8 forward, uint8 backward
        z = bytearray(L)
        Q.latent_forward_u8(h, hq, rng, eps, z, zq, stats)
        out('F', i, z, stats, zq, eps, rng if rng else b'')
        dh = bytearray(2 * L)
        Q.latent_backward_u8(h, hq, eps, dz, dzq, dh, dhq, hp, stats)
        out('B', i, dh, stats, dhq)
    elif mode[0] == 1:    # uint8 forward, float backward (mixed)
        z = bytearray(L)
        Q.latent_forward_u8(h, hq, rng, eps, z, zq, stats)
        out('F', i, z, stats, zq, eps, rng if rng else b'')
        dh = fz(2 * L)
        QF.latent_backward_mixed(h, hq, eps, dz, dh, hp, stats)
        out('B', i, dh, stats)
    else:
        z = fz(L)
        QF.latent_forward_f32(h, rng, eps, z, stats)
        out('F', i, z, stats, eps, rng if rng else b'')
        dh = fz(2 * L)
        QF.latent_backward_f32(h, eps, dz, dh, hp, stats)
        out('B', i, dh, stats)
print('done')
"""


def latent_cases(seed, k):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(k):
        mode = i % 3
        L = int(rng.choice([1, 2, 3, 10, 10, 16]))
        use_rng = rng.random() < 0.7
        st = np.array([GL.rng_seed(int(rng.integers(0, 2 ** 31)))], np.uint32) if use_rng else None
        eps = (np.zeros(L, np.float32) if use_rng else
               (rng.normal(0, 1, L).astype(np.float32) if rng.random() < 0.7 else np.zeros(L, np.float32)))
        beta = np.array([float(rng.choice([0.0, 1.0, 0.5, 4.0]))], np.float32)
        if mode == 2:
            mu = rng.normal(0, 2, L)
            lv = rng.normal(-1, 3, L)
            if i % 4 == 2:
                lv[0] = rng.choice([-40.0, 40.0])       # clamped
            h = np.concatenate([mu, lv]).astype(np.float32)
            hq = zq = dzq = dhq = None
            dz = rng.normal(0, 0.3, L).astype(np.float32)
        else:
            hq = rand_qp(rng, -float(rng.uniform(2, 40)), float(rng.uniform(2, 40)))
            h = rng.integers(0, 256, 2 * L).astype(np.uint8)
            zq = rand_qp(rng, -4.0, 4.0)
            dhq = rand_qp(rng, -1.0, 1.0)
            if mode == 0:
                dzq = rand_qp(rng, -0.5, 0.5)
                dz = rng.integers(0, 256, L).astype(np.uint8)
            else:
                dzq = None
                dz = rng.normal(0, 0.3, L).astype(np.float32)
        cases.append((mode, h, hq, st, eps, zq, dz, dzq, dhq, beta))
    return cases


def test_latent_bit_exact(run):
    cases = latent_cases(41, 60)
    blob = pack(i32(len(cases)))
    for c in cases:
        blob += pack(i32(c[0]), *c[1:])
    out = run(LATENT_SCRIPT, files={"cases.bin": blob})
    assert "done" in out
    Fo, Bo = parse(out, "F"), parse(out, "B")
    for i, (mode, h, hq, st, eps, zq, dz, dzq, dhq, beta) in enumerate(cases):
        hf = h if mode == 2 else GL.dequant(h, hq[GQ.SCALE], hq[GQ.ZERO])
        if st is not None:
            st2, eps = GL.rng_normal(int(st[0]), h.size // 2)
        zqp = zq.copy() if mode != 2 else None
        z, fstats = GL.latent_forward(hf, eps, zqp)
        got = Fo[i]
        if mode == 2:
            assert same_f32(f32(got[0]), z), i
            assert same_f32(f32(got[2]), eps), i
        else:
            assert np.array_equal(u8(got[0]), z), (i, u8(got[0]), z)
            assert same_f32(f32(got[2]), zqp), i
            assert same_f32(f32(got[3]), eps), i
        assert same_f32(f32(got[1]), fstats), (i, f32(got[1]), fstats)
        if st is not None:
            assert int.from_bytes(bytes.fromhex(got[-1]), "little") == st2, i
        gz = GL.dequant(dz, dzq[GQ.SCALE], dzq[GQ.ZERO]) if mode == 0 else dz
        dqp = dhq.copy() if mode == 0 else None
        dh, bstats = GL.latent_backward(hf, eps, gz, beta[0], dqp)
        got = Bo[i]
        if mode == 0:
            assert np.array_equal(u8(got[0]), dh), i
            assert same_f32(f32(got[2]), dqp), i
        else:
            assert same_f32(f32(got[0]), dh), i
        assert same_f32(f32(got[1]), bstats), (i, f32(got[1]), bstats)


# ---- memory: no allocation per call -----------------------------------------------------------

MEM_SCRIPT = r"""
from array import array
import gc
import _qtrain as Q
import _qtrain_float as QF
qp = array('f', [2/255, 128, -1, 1, 0.1, 0, 0, 0])
x = bytearray(768)
for i in range(768):
    x[i] = (i * 7) & 255
t = bytearray(768)
e = bytearray(768)
ef = array('f', bytes(4 * 768))
st = array('f', [0, 0, 0])
rng = array('I', [0])
Q.rng_seed(rng, 1)
h = bytearray(range(100, 120))
eps = array('f', bytes(40))
z = bytearray(10)
dz = bytearray(range(10))
dh = bytearray(20)
hp = array('f', [1.0])
c = bytearray(range(0, 100, 10))
def step():
    Q.bce_sigmoid_u8(x, qp, t, e, qp, st)
    QF.bce_sigmoid_mixed(x, qp, t, ef, st)
    Q.latent_forward_u8(h, qp, rng, eps, z, qp, st)
    Q.latent_backward_u8(h, qp, eps, dz, qp, dh, qp, hp, st)
    Q.softmax_ce_u8(c, qp, 3, z, qp, st)
step()
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for i in range(20):
    step()
a1 = gc.mem_alloc()
gc.enable()
print('alloc', a1 - a0)
"""


def test_loss_no_allocation(run):
    out = run(MEM_SCRIPT)
    assert "alloc 0" in out, out
