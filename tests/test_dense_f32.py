"""Dense float32 reference mode and mixed mode (uint8 forward, float32 errors)
on every target: against the float golden model within a tolerance, plus a
finite-difference check that the float32 gradients are right."""
import numpy as np

from qtrain_host.golden import dense as GD
from qtrain_host.golden import quant as GQ
from test_dense_u8 import DEVICE_LIB, pack, parse, f32, rand_qp

# Scripts that call only _qtrain_float load only it (qemu-m0's heap).
FLOAT_LIB = DEVICE_LIB.replace("import _qtrain as Q\n", "")

F32_SCRIPT = FLOAT_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    x, w, b, e, sel, hp, st, fl = rdn(f, 8)
    m = len(e); n = len(x)
    relu, flags, k = fl[0], fl[1], fl[2]
    y = array('f', [0.0] * m); ep = array('f', [0.0] * n)
    QF.dense_forward_f32(x, w, b, y, relu)
    ee = array('f', e)
    QF.relu_backward_f32(ee, y)
    QF.dense_backward_f32(ee, w, ep, sel, k)
    QF.dense_update_f32(ee, x, w, b, sel, k, hp, flags, st)
    out('F', i, y, ee, ep, w, b if b else '', st)
print('done')
"""


def test_dense_f32_against_golden(run):
    rng = np.random.default_rng(31)
    cases, data = [], b""
    for ci in range(30):
        m, n = int(rng.integers(1, 20)), int(rng.integers(1, 60))
        x = rng.normal(0, 1, n).astype(np.float32)
        w = rng.normal(0, 0.5, (m, n)).astype(np.float32)
        b = rng.normal(0, 0.5, m).astype(np.float32) if ci % 4 else None
        e = rng.normal(0, 1, m).astype(np.float32)
        relu = ci % 2
        flags = [0, 4, 8][ci % 3]
        sel, k = None, m
        if ci % 5 == 0:
            k = int(rng.integers(1, m + 1))
            sel = np.zeros(m, np.int32)
            sel[:k] = np.sort(rng.choice(m, k, replace=False))
        hp = np.array([0.01, 0.85, 0.0], np.float32)
        st = np.zeros(5 + 2 * m, np.float32)
        cases.append((x, w, b, e, sel, k, relu, flags, hp, st))
        data += pack(x, w.ravel(), b, e, sel, hp, st, np.array([relu, flags, k], np.int32))
    out = run(F32_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    res = parse(out, "F")
    assert len(res) == len(cases)
    for i, (x, w, b, e, sel, k, relu, flags, hp, st) in enumerate(cases):
        gy, ge, gep, gw, gb, gst = [f32(v) for v in res[i]] if b is not None else \
            [f32(v) for v in res[i][:4]] + [None] + [f32(res[i][4])]
        y = GD.forward_f32(x, w, b, relu)
        tol = 1e-5 * (1 + np.abs(w).sum(axis=1).max() * np.abs(x).max())
        assert np.allclose(gy, y, atol=tol, rtol=1e-5), "case %d y" % i
        ee = GD.relu_backward_f32(e, gy)
        assert np.array_equal(ge, ee.astype(np.float32)), "case %d relu" % i
        ep = GD.backward_f32(ee, w, sel, k)
        assert np.allclose(gep, ep, atol=1e-5 * (1 + np.abs(ep).max()), rtol=1e-5), "case %d ep" % i
        w2, b2, st2 = GD.update_f32(ee, x, w, b, float(hp[0]), float(hp[1]), flags, st, sel, k)
        assert np.allclose(gw, w2.ravel(), atol=1e-5, rtol=1e-5), "case %d w" % i
        if b is not None:
            assert np.allclose(gb, b2, atol=1e-5, rtol=1e-5), "case %d b" % i
        assert np.allclose(gst, st2, atol=1e-5, rtol=1e-4), "case %d state %s %s" % (i, gst, st2)


FD_SCRIPT = FLOAT_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
x, w, b, t = rdn(f, 4)
m = len(b); n = len(x)
def loss(x, w, b):
    y = array('f', [0.0] * m)
    QF.dense_forward_f32(x, w, b, y, 1)
    s = 0.0
    for i in range(m):
        s += 0.5 * (y[i] - t[i]) ** 2
    return s, y
L, y = loss(x, w, b)
e = array('f', [y[i] - t[i] for i in range(m)])
QF.relu_backward_f32(e, y)
ep = array('f', [0.0] * n)
QF.dense_backward_f32(e, w, ep, None, 0)
# the weight gradient through a plain SGD step with lr = 1: g = w - w_new
w2 = array('f', w); b2 = array('f', b)
QF.dense_update_f32(e, x, w2, b2, None, 0, array('f', [1.0, 1.0, 0.0]), 8, array('f', [0.0] * (5 + 2 * m)))
print('G', 0, hx(ep), hx(array('f', [w[j] - w2[j] for j in range(m * n)])), hx(array('f', [b[j] - b2[j] for j in range(m)])))
print('done')
"""


def test_dense_f32_finite_differences(run):
    """ep, dW, db from the kernels == numerical derivatives of a float64 loss."""
    rng = np.random.default_rng(8)
    m, n = 6, 9
    x = rng.normal(0, 1, n).astype(np.float32)
    w = rng.normal(0, 0.6, (m, n)).astype(np.float32)
    b = rng.normal(0.3, 0.3, m).astype(np.float32)
    t = rng.normal(0, 1, m).astype(np.float32)
    out = run(FD_SCRIPT, files={"cases.bin": pack(x, w.ravel(), b, t)})
    gep, gw, gb = [f32(v).astype(np.float64) for v in parse(out, "G")[0]]

    def L(x_, w_, b_):
        y = np.maximum(w_ @ x_ + b_, 0)
        return 0.5 * np.sum((y - t) ** 2)
    xd, wd, bd = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    h = 1e-6
    num_x = np.array([(L(xd + h * np.eye(n)[j], wd, bd) - L(xd - h * np.eye(n)[j], wd, bd)) / (2 * h)
                      for j in range(n)])
    num_w = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            d = np.zeros((m, n))
            d[i, j] = h
            num_w[i, j] = (L(xd, wd + d, bd) - L(xd, wd - d, bd)) / (2 * h)
    num_b = np.array([(L(xd, wd, bd + h * np.eye(m)[i]) - L(xd, wd, bd - h * np.eye(m)[i])) / (2 * h)
                      for i in range(m)])
    assert np.allclose(gep, num_x, atol=1e-4, rtol=1e-3), (gep, num_x)
    assert np.allclose(gw, num_w.ravel(), atol=1e-4, rtol=1e-3)
    assert np.allclose(gb, num_b, atol=1e-4, rtol=1e-3)


MIX_SCRIPT = FLOAT_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    x, xq, w, wq, y, yq, e, hp, st, fl = rdn(f, 10)
    m = len(e); n = len(x)
    ep = array('f', [0.0] * n)
    cnt = QF.relu_backward_mixed(e, y, yq)
    QF.dense_backward_mixed(e, w, wq, ep, None, 0)
    sel = array('i', [0] * m); scr = array('I', [0] * (2 * m)); dst = array('f', [0])
    k = QF.dense_select_f32(e, array('f', [0.3, 1.0]), dst, sel, scr)
    w0 = bytearray(w)
    rem = QF.dense_update_mixed(e, x, xq, w, wq, None, None, sel, k, hp, fl[0], st, array('I', [7]))
    print('X', i, hx(e), hx(ep), hx(w0), hx(w), hx(wq), hx(sel), '%04x' % k, '%02x' % rem)
print('done')
"""


def test_dense_mixed_against_float(run):
    rng = np.random.default_rng(12)
    cases, data = [], b""
    for ci in range(24):
        m, n = int(rng.integers(2, 20)), int(rng.integers(1, 70))
        x = rng.integers(0, 256, n, dtype=np.uint8)
        xq = rand_qp(rng)
        w = rng.integers(0, 256, (m, n), dtype=np.uint8)
        wq = rand_qp(rng, -1, 1)
        y = rng.integers(0, 256, m, dtype=np.uint8)
        yq = rand_qp(rng)
        e = rng.normal(0, 0.1, m).astype(np.float32)
        hp = np.array([0.01, 1.0, 0.0], np.float32)
        st = np.zeros(5 + 2 * m, np.float32)
        flags = [0, 4][ci % 2]
        cases.append((x, xq, w, wq, y, yq, e, hp, st, flags))
        data += pack(x, xq, w.ravel(), wq, y, yq, e, hp, st, np.array([flags], np.int32))
    out = run(MIX_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    res = parse(out, "X")
    assert len(res) == len(cases)
    for i, (x, xq, w, wq, y, yq, e, hp, st, flags) in enumerate(cases):
        ge, gep, gw0, gw, gwq, gsel, gk, grem = res[i]
        ee = np.array(e, np.float64)
        ee[y <= int(yq[1])] = 0
        assert np.array_equal(f32(ge), ee.astype(np.float32)), "case %d relu" % i
        ep = GD.backward_mixed(ee, w, wq)
        assert np.allclose(f32(gep), ep, atol=1e-5 * (1 + np.abs(ep).max()), rtol=1e-4), "case %d ep" % i
        k = int.from_bytes(gk, "big")
        sel = np.frombuffer(gsel, np.int32)[:k]
        # the k rows with the largest |e| (ties: lower index)
        assert np.array_equal(sel, GD.select_topk(np.abs(ee.astype(np.float32)).view(np.uint32), k))
        # Update: real weights move by -lr (g - mu)/sigma within one step (+ re-map step)
        wn = np.frombuffer(gw, np.uint8).reshape(w.shape)
        wqn = f32(gwq)
        before = GQ.dequantize(w, wq[0], wq[1])
        after = GQ.dequantize(wn, wqn[0], wqn[1])
        xf = GQ.dequantize(x, xq[0], xq[1])
        rows = [int(r) for r in sel if ee[r] != 0]
        lr = float(hp[0])
        if flags & 4:
            exp = before.copy()
            for r in rows:
                g = ee[r] * xf
                if g.std() > 0:
                    exp[r] -= lr * (g - g.mean()) / g.std()
        else:
            exp = before.copy()
            if rows:
                G = np.outer(ee[rows], xf)
                if G.std() > 0:
                    exp[rows] -= lr * (G - G.mean()) / G.std()
        lo, hi = -int(wqn[1]) * float(wqn[0]), (255 - int(wqn[1])) * float(wqn[0])
        exp = np.clip(exp, lo, hi)
        step = max(float(wq[0]), float(wqn[0]))
        assert np.all(np.abs(after - exp) <= 1.01 * step + 2 ** -16 * 2 * step), "case %d w" % i


BATCH_SCRIPT = FLOAT_LIB + r"""
import _qtrain_float as QF
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    xs, xq, w, wq, fw, E, hp, fl = rdn(f, 8)
    m = fl[0]; n = fl[1]; B = fl[2]; flags = fl[3]
    g = array('f', [0.0] * (m * n)); gb = array('f', [0.0] * m)
    fg = array('f', [0.0] * (m * n)); fgb = array('f', [0.0] * m)
    fx = array('f', [0.0] * n); fb = array('f', [0.0] * m); b = array('i', [0] * m)
    for s in range(B):
        x = memoryview(xs)[s * n:(s + 1) * n]; e = memoryview(E)[s * m:(s + 1) * m]
        QF.dense_grad_acc_mixed(e, x, xq, g, gb, None, 0)
        for j in range(n):
            fx[j] = xq[0] * (x[j] - xq[1])
        QF.dense_grad_acc_f32(e, fx, fg, fgb, None, 0)
    st = array('f', [0.0] * (5 + 2 * m)); st2 = array('f', [0.0] * (5 + 2 * m))
    rem = QF.update_rows_mixed(g, w, wq, gb, b, array('f', [1e-3, 0, -1, 1, 0, 0, 0, 0]), hp, flags, st, array('I', [9]))
    QF.update_rows_f32(fg, fw, fgb, fb, hp, flags & 4, st2)
    nz = 0
    for v in g:
        nz |= v != 0
    out('M', i, w, wq, fw, fb, st, st2, '%02x' % int(nz))
print('done')
"""


def test_dense_batch_mixed_and_f32(run):
    rng = np.random.default_rng(21)
    cases, data = [], b""
    for ci in range(16):
        m, n, B = int(rng.integers(2, 12)), int(rng.integers(2, 40)), int(rng.integers(2, 5))
        xs = rng.integers(0, 256, B * n, dtype=np.uint8)
        xq = rand_qp(rng, 0, 1)
        w = rng.integers(20, 236, (m, n), dtype=np.uint8)
        wq = GQ.new_qp(-0.5, 0.5)
        fw = GQ.dequantize(w, wq[0], wq[1]).astype(np.float32)
        E = rng.normal(0, 0.1, (B, m)).astype(np.float32)
        E[:, 0] = 0  # a row without gradient: no update
        hp = np.array([0.01, 1.0, 0.0], np.float32)
        flags = [3, 7][ci % 2]
        cases.append((xs, xq, w, wq, fw, E, hp, flags, m, n, B))
        data += pack(xs, xq, w.ravel(), wq, fw.ravel(), E.ravel(), hp, np.array([m, n, B, flags], np.int32))
    out = run(BATCH_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    res = parse(out, "M")
    assert len(res) == len(cases)
    for i, (xs, xq, w, wq, fw, E, hp, flags, m, n, B) in enumerate(cases):
        gw, gwq, gfw, gfb, gst, gst2, gnz = res[i]
        X = GQ.dequantize(xs.reshape(B, n), xq[0], xq[1])
        G = sum(np.outer(E[s].astype(np.float64), X[s]) for s in range(B))
        Gb = E.astype(np.float64).sum(axis=0)
        lr = float(hp[0])
        exp = GQ.dequantize(w, wq[0], wq[1]).astype(np.float64)
        rows = [r for r in range(m) if np.any(G[r] != 0)]
        if flags & 4:
            for r in rows:
                if G[r].std() > 0:
                    exp[r] -= lr * (G[r] - G[r].mean()) / G[r].std()
        else:
            exp[rows] -= lr * (G[rows] - G[rows].mean()) / G[rows].std()
        # float32 batch path
        assert np.allclose(f32(gfw).reshape(m, n), exp, atol=2e-5), "case %d f32 w" % i
        # mixed: uint8 weights within one step (+ rounding) of the float result
        wqn = f32(gwq)
        got = GQ.dequantize(np.frombuffer(gw, np.uint8).reshape(m, n), wqn[0], wqn[1])
        lo, hi = -int(wqn[1]) * float(wqn[0]), (255 - int(wqn[1])) * float(wqn[0])
        assert np.all(np.abs(got - np.clip(exp, lo, hi)) <= 1.01 * float(wqn[0]) + 1e-6), "case %d mixed w" % i
        assert np.array_equal(np.frombuffer(gw, np.uint8).reshape(m, n)[0], w[0]), "case %d row 0 untouched" % i
        assert f32(gst)[0] == 1 and gnz == b"\x00", "case %d: state steps / g zeroed" % i
