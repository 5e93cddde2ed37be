"""No allocation inside per-sample calls: a whole uint8 training step of a
two-layer Dense net (forward, ReLU backward, DSGU selection, error
propagation, update, range updates) repeated many times, and the float32,
mixed and batch entry points, leave gc.mem_alloc() unchanged, on every
target."""

SCRIPT = r"""
import gc
from array import array
import _qtrain as Q
import _qtrain_float as QF
def qp(lo, hi, alpha):
    r = array('f', [1, 0, lo, hi, alpha, 0, 0, 0]); Q.qp_from_range(r); return r
n0, n1, n2 = 64, 24, 10
x = bytearray((i * 37) & 255 for i in range(n0)); xq = qp(0, 1, 0)
w1 = bytearray((i * 91 + 7) & 255 for i in range(n1 * n0)); w1q = qp(-0.3, 0.3, 0.001)
w2 = bytearray((i * 53 + 1) & 255 for i in range(n2 * n1)); w2q = qp(-0.3, 0.3, 0.001)
b1 = array('i', [0] * n1); b2 = array('i', [0] * n2); bq = array('f', [1e-5, 0, -1, 1, 0, 0, 0, 0])
h = bytearray(n1); hq = qp(-2, 2, 0.1); y = bytearray(n2); yq = qp(-4, 4, 0.1)
e2 = bytearray(n2); e2q = qp(-1, 1, 0); e1 = bytearray(n1); e1q = qp(-1, 1, 0.1)
acc1 = array('i', [0] * n1); acc0 = array('i', [0] * n0)
sel2 = array('i', [0] * n2); scr2 = array('I', [0] * (2 * n2)); ds2 = array('f', [0])
sel1 = array('i', [0] * n1); scr1 = array('I', [0] * (2 * n1)); ds1 = array('f', [0])
dhp = array('f', [0.5, 1.0]); uhp = array('f', [0.01, 0.85, 0.02])
st1 = array('f', [0] * (5 + 2 * n1)); st2 = array('f', [0] * (5 + 2 * n2)); rng = array('I', [12345])
def step(t):
    Q.dense_forward_u8(x, xq, w1, w1q, b1, bq, h, hq, 1)
    Q.dense_forward_u8(h, hq, w2, w2q, b2, bq, y, yq, 0)
    for i in range(n2):
        e2[i] = (y[i] + t * 7 + i * 13) & 255
    k2 = Q.dense_select_u8(e2, e2q, dhp, ds2, sel2, scr2)
    Q.dense_backward_u8(e2, e2q, w2, w2q, e1, e1q, sel2, k2, acc1)
    Q.relu_backward_u8(e1, e1q, h, hq)
    Q.dense_update_u8(e2, e2q, h, hq, w2, w2q, b2, bq, sel2, k2, uhp, 2, st2, rng)
    k1 = Q.dense_select_u8(e1, e1q, dhp, ds1, sel1, scr1)
    Q.dense_update_u8(e1, e1q, x, xq, w1, w1q, b1, bq, sel1, k1, uhp, 4, st1, rng)
    Q.qp_update(hq); Q.qp_update(yq); Q.qp_update(e1q)
# float32 and mixed steps, and the batch paths
fx = array('f', [0.5] * n0); fw1 = array('f', [0.01] * (n1 * n0)); fh = array('f', [0] * n1)
fb1 = array('f', [0] * n1); fe1 = array('f', [(i % 7 - 3) / 10 for i in range(n1)]); fep = array('f', [0] * n0)
fst = array('f', [0] * (5 + 2 * n1)); fg = array('f', [0] * (n1 * n0)); fgb = array('f', [0] * n1)
g1 = array('i', [0] * (n1 * n0)); gb1 = array('i', [0] * n1); gs = array('f', [1e-3, 1e-2])
def step_f(t):
    QF.dense_forward_f32(fx, fw1, fb1, fh, 1)
    # (no float arithmetic here: a float result is a heap object in MicroPython)
    QF.dense_backward_f32(fe1, fw1, fep, None, 0)
    QF.relu_backward_f32(fe1, fh)
    k = QF.dense_select_f32(fe1, dhp, ds1, sel1, scr1)
    QF.dense_backward_f32(fe1, fw1, fep, sel1, k)
    QF.dense_update_f32(fe1, fx, fw1, fb1, sel1, k, uhp, 0, fst)
    QF.dense_grad_acc_f32(fe1, fx, fg, fgb, None, 0)
    QF.update_rows_f32(fg, fw1, fgb, fb1, uhp, 4, fst)
    # mixed: uint8 forward, float errors
    QF.relu_backward_mixed(fe1, h, hq)
    QF.dense_backward_mixed(fe1, w1, w1q, fep, None, 0)
    QF.dense_update_mixed(fe1, x, xq, w1, w1q, b1, bq, None, 0, uhp, 3, st1, rng)
    QF.dense_grad_acc_mixed(fe1, x, xq, fg, fgb, None, 0)
    QF.update_rows_mixed(fg, w1, w1q, fgb, b1, bq, uhp, 3, st1, rng)
    QF.dense_grad_acc_u8(e1, e1q, x, xq, g1, gb1, None, 0)
    QF.update_rows_u8(g1, gs, w1, w1q, gb1, b1, bq, uhp, 3, st1, rng)
step(0)
step_f(0)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for t in range(1, 101):
    step(t)
a1 = gc.mem_alloc()
for t in range(1, 51):
    step_f(t)
a2 = gc.mem_alloc()
gc.enable()
print('mem', a0, a1, a2)
"""


def test_dense_training_step_does_not_allocate(run):
    out = run(SCRIPT)
    line = [l for l in out.splitlines() if l.startswith("mem ")][0]
    _, a0, a1, a2 = line.split()
    assert a0 == a1 == a2, out
