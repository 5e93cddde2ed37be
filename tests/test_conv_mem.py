"""No allocation inside per-sample calls: a uint8 training step through a
Conv2d and a ConvTranspose2d layer (forward with fused ReLU, ReLU backward,
DSGU channel selection, error propagation, batch-1 update, range updates),
plus the float32 calls, repeated many times leaves gc.mem_alloc() unchanged,
on every target."""

SCRIPT = r"""
import gc
from array import array
import _qtrain as Q
import _qtrain_float as QF
def qp(lo, hi, alpha):
    r = array('f', [1, 0, lo, hi, alpha, 0, 0, 0]); Q.qp_from_range(r); return r
g1 = (2, 8, 8, 4, 3, 3, 2, 2, 1, 1)               # 2x8x8 -> 4x4x4
g2 = (4, 4, 4, 2, 3, 3, 2, 2, 1, 1, 1, 1)         # 4x4x4 -> 2x8x8
x = bytearray((i * 37) & 255 for i in range(128)); xq = qp(0, 1, 0)
w1 = bytearray((i * 91 + 7) & 255 for i in range(72)); w1q = qp(-0.3, 0.3, 0.001)
w2 = bytearray((i * 53 + 1) & 255 for i in range(72)); w2q = qp(-0.3, 0.3, 0.001)
b1 = array('i', [0] * 4); b2 = array('i', [0] * 2); bq = array('f', [1e-5, 0, -1, 1, 0, 0, 0, 0])
h = bytearray(64); hq = qp(-2, 2, 0.1); y = bytearray(128); yq = qp(-4, 4, 0.1)
e2 = bytearray(128); e2q = qp(-1, 1, 0); e1 = bytearray(64); e1q = qp(-1, 1, 0.1)
sc = bytearray(max(Q.conv2d_scratch_len(g1), Q.conv_transpose2d_scratch_len(g2)))
sel1 = array('i', [0] * 4); ss1 = array('I', [0] * 8); ds1 = array('f', [0])
sel2 = array('i', [0] * 2); ss2 = array('I', [0] * 4); ds2 = array('f', [0])
dhp = array('f', [0.5, 1.0]); uhp = array('f', [0.01, 0.85, 0.02])
st1 = array('f', [0] * 13); st2 = array('f', [0] * 9); rng = array('I', [12345])
xf = array('f', [0.5] * 128); w1f = array('f', [0.1] * 72); hf = array('f', [0] * 64)
ef = array('f', [0.25] * 64); exf = array('f', [0] * 128); gwf = array('f', [0] * 72); gbf = array('f', [0] * 4)
def step(t):
    Q.conv2d_forward_u8(x, xq, w1, w1q, b1, bq, h, hq, g1, 1, sc)
    Q.conv_transpose2d_forward_u8(h, hq, w2, w2q, b2, bq, y, yq, g2, 0, sc)
    for i in range(128):
        e2[i] = (y[i] + t * 7 + i * 13) & 255
    k2 = Q.conv_select_u8(e2, e2q, dhp, ds2, sel2, ss2)
    Q.conv_transpose2d_backward_u8(e2, e2q, None, yq, w2, w2q, e1, e1q, g2, sel2, k2, sc)
    Q.conv_transpose2d_update_u8(e2, e2q, h, hq, w2, w2q, b2, bq, g2, sel2, k2, uhp, 6, st2, rng, sc)
    Q.conv2d_backward_u8(e1, e1q, h, hq, w1, w1q, None, xq, g1, None, 0, sc)
    k1 = Q.conv_select_u8(e1, e1q, dhp, ds1, sel1, ss1)
    Q.conv2d_update_u8(e1, e1q, x, xq, w1, w1q, b1, bq, g1, sel1, k1, uhp, 7, st1, rng, sc)
    Q.qp_update(hq); Q.qp_update(yq); Q.qp_update(e1q)
    QF.conv2d_forward_f32(xf, w1f, None, hf, g1, 1)
    QF.conv2d_backward_f32(ef, hf, xf, w1f, exf, gwf, gbf, g1, sel1, k1)
step(0)
t = a0 = a1 = 0  # globals set in the measured part exist before (a new one can grow the dict)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for t in range(1, 61):
    step(t)
a1 = gc.mem_alloc()
gc.enable()
print('mem', a0, a1)
"""


def test_conv_training_step_does_not_allocate(run):
    out = run(SCRIPT)
    line = [l for l in out.splitlines() if l.startswith("mem ")][0]
    _, a0, a1 = line.split()
    assert a0 == a1, out
