"""Conv benchmark (not a timed test): QEMU instruction counts per MAC for the
paper's VAE conv layers (uint8 forward, error propagation, gradient, batch-1
update; float32 forward/backward where they fit the heap), on qemu-m0 and
qemu-m4.  Runs only with QTRAIN_BENCH=1; prints the table:

    QTRAIN_BENCH=1 build/venv/bin/python -m pytest -s tests/test_conv_bench.py

Optional QTRAIN_BENCH_SEL=0.1: DSGU with k = max(1, 0.1 * out_ch) filters.
"""
import os

import pytest

from qtrain_host import runner

SCRIPT = r"""
import gc, icount
from array import array
import _qtrain as Q
import _qtrain_float as QF
def qp(s, z):
    return array('f', [s, z, -1.0, 1.0, 0.0, 0, 0, 0])
LAYERS = [
  (0, (1, 28, 28, 16, 3, 3, 2, 2, 1, 1)),
  (0, (16, 14, 14, 32, 3, 3, 2, 2, 1, 1)),
  (1, (32, 7, 7, 16, 3, 3, 2, 2, 1, 1, 1, 1)),
  (1, (16, 14, 14, 1, 3, 3, 2, 2, 1, 1, 1, 1)),
]
SEL = %SEL%
def region(name, f):
    icount.start(); f(); n = icount.read()
    print('@icount', name, n)
for t, g in LAYERS:
    gc.collect()
    oc, oh, ow = (Q.conv_transpose2d_out_shape if t else Q.conv2d_out_shape)(g)
    n_in = g[0] * g[1] * g[2]
    n_w = g[0] * g[3] * g[4] * g[5]
    x = bytearray((i * 37) & 255 for i in range(n_in))
    w = bytearray((i * 91 + 7) & 255 for i in range(n_w))
    b = array('i', [i * 100 for i in range(oc)])
    y = bytearray(oc * oh * ow)
    e = bytearray((i * 53 + 11) & 255 for i in range(len(y)))
    ex = bytearray(n_in)
    sc = bytearray((Q.conv_transpose2d_scratch_len if t else Q.conv2d_scratch_len)(g))
    xq = qp(0.01, 10); wq = qp(0.002, 128); bq = qp(0.00002, 0); yq = qp(0.05, 20)
    eq = qp(0.01, 128); exq = qp(0.02, 128)
    hp = array('f', [0.001, 0.85, 0.05]); st = array('f', [0.0] * (5 + 2 * oc)); rng = array('I', [1234])
    k = max(1, int(SEL * oc)) if SEL < 1 else oc
    sel = array('i', range(k)) if SEL < 1 else None
    name = ('T' if t else 'C') + '%d-%d' % (g[0], g[3])
    fw = Q.conv_transpose2d_forward_u8 if t else Q.conv2d_forward_u8
    bw = Q.conv_transpose2d_backward_u8 if t else Q.conv2d_backward_u8
    up = Q.conv_transpose2d_update_u8 if t else Q.conv2d_update_u8
    gr = QF.conv_transpose2d_grad_u8 if t else QF.conv2d_grad_u8
    region(name + '.fwd', lambda: fw(x, xq, w, wq, b, bq, y, yq, g, 1, sc))
    region(name + '.bwd', lambda: bw(e, eq, y, yq, w, wq, ex, exq, g, sel, k, sc))
    region(name + '.upd', lambda: up(e, eq, x, xq, w, wq, b, bq, g, sel, k, hp, 4, st, rng, sc))
    try:
        gc.collect()
        gw = array('i', bytes(4 * n_w)); gb = array('i', bytes(4 * oc))
        region(name + '.grad', lambda: gr(e, eq, x, xq, gw, gb, g, sel, k, sc))
    except MemoryError:
        pass
    x = w = y = e = ex = sc = gw = gb = None
    gc.collect()
    try:
        xf = array('f', [((i * 37) & 255) / 256 for i in range(n_in)])
        wf = array('f', [((i * 91 + 7) & 255) / 256 - 0.5 for i in range(n_w)])
        yf = array('f', bytes(4 * oc * oh * ow))
        region(name + '.ffwd', lambda: (QF.conv_transpose2d_forward_f32 if t else QF.conv2d_forward_f32)(
            xf, wf, None, yf, g, 1))
        ef = array('f', [((i * 53 + 11) & 255) / 256 - 0.5 for i in range(len(yf))])
        exf = array('f', bytes(4 * n_in)); gwf = array('f', bytes(4 * n_w))
        region(name + '.fbwd', lambda: (QF.conv_transpose2d_backward_f32 if t else QF.conv2d_backward_f32)(
            ef, yf, xf, wf, exf, gwf, None, g))
    except MemoryError:
        pass
    xf = wf = yf = ef = exf = gwf = None
print('done')
"""
MACS = {"C1-16": 16 * 196 * 9, "C16-32": 32 * 49 * 144, "T32-16": 32 * 49 * 144, "T16-1": 16 * 196 * 9}
PHASES = ("fwd", "bwd", "grad", "upd", "ffwd", "fbwd")


@pytest.mark.skipif(os.environ.get("QTRAIN_BENCH") != "1", reason="benchmark: set QTRAIN_BENCH=1")
@pytest.mark.parametrize("board", ["qemu-m0", "qemu-m4"])
def test_conv_bench(board):
    if not runner.available(board):
        pytest.skip("%s not built" % board)
    sel = float(os.environ.get("QTRAIN_BENCH_SEL", "1.0"))
    res = runner.run_script(board, SCRIPT.replace("%SEL%", repr(sel)), timeout=900)
    assert res.returncode == 0, res.output[-3000:]
    print("\n%s, DSGU sel %.2f: instructions per MAC" % (board, sel))
    print("%-7s %7s " % ("layer", "MACs") + " ".join("%6s" % p for p in PHASES))
    step = 0
    for layer, macs in MACS.items():
        row = []
        for p in PHASES:
            n = res.icount.get(layer + "." + p)
            row.append("%6s" % ("-" if n is None else "%.2f" % (n / macs)))
        print("%-7s %7d " % (layer, macs) + " ".join(row))
        step += res.icount[layer + ".fwd"] + res.icount[layer + ".upd"]
        if layer != "C1-16":      # the image needs no error
            step += res.icount[layer + ".bwd"]
    step_macs = 3 * sum(MACS.values()) - MACS["C1-16"]
    print("VAE conv training step: %d instructions, %.2f per MAC (%d MACs)" % (step, step / step_macs, step_macs))
