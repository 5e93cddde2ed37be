"""Dense kernel benchmark (a script, not a test): deterministic QEMU
instruction counts per MAC for a 784 -> 64 layer, as reported in
docs/KERNELS.md.

    PYTHONPATH=host_tools build/venv/bin/python tests/test_dense_bench.py qemu-m0 qemu-m4
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host_tools"))
from qtrain_host import runner  # noqa: E402

SCRIPT = r"""
import icount, gc
from array import array
import _qtrain as Q
def qp(lo, hi, alpha):
    r = array('f', [1, 0, lo, hi, alpha, 0, 0, 0]); Q.qp_from_range(r); return r
m, n = %d, %d
def z(tc, k):
    gc.collect()
    a = array(tc, [0])
    for _ in range(k - 1):
        a.append(0)
    return a
x = bytearray((i * 37) & 255 for i in range(n)); xq = qp(0, 1, 0)
w = bytearray(m * n); wq = qp(-0.3, 0.3, 0.001)
for i in range(m * n):
    w[i] = (i * 91 + 7) & 255
b = z('i', m); bq = array('f', [1e-5, 0, -1, 1, 0, 0, 0, 0])
y = bytearray(m); yq = qp(-2, 2, 0.1)
e = bytearray((i * 29 + 3) & 255 for i in range(m)); eq = qp(-1, 1, 0)
ep = bytearray(n); epq = qp(-1, 1, 0.1); acc = z('i', n)
sel = z('i', m); scr = z('I', 2 * m); ds = array('f', [0])
uhp = array('f', [0.01, 0.85, 0.02]); st = z('f', 5 + 2 * m); rng = array('I', [1])
def meas(name, f, reps=3):
    f()
    best = None
    for _ in range(reps):
        icount.start(); f(); c = icount.read()
        best = c if best is None or c < best else best
    print('@icount', name, best)
meas('call', lambda: Q.abi())
meas('fwd', lambda: Q.dense_forward_u8(x, xq, w, wq, b, bq, y, yq, 1))
xs = z('i', (n + 3) & ~3)
meas('fwd_xs', lambda: Q.dense_forward_u8(x, xq, w, wq, b, bq, y, yq, 1, xs))
meas('bwd', lambda: Q.dense_backward_u8(e, eq, w, wq, ep, epq, None, 0, acc))
meas('upd_near', lambda: Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, 0, st, rng))
meas('upd_stoch', lambda: Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, 2, st, rng))
hp10 = array('f', [0.1, 0.1])
k = Q.dense_select_u8(e, eq, hp10, array('f', [1e9]), sel, scr)
print('k', k)
meas('bwd_k', lambda: Q.dense_backward_u8(e, eq, w, wq, ep, epq, sel, k, acc))
meas('upd_k', lambda: Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, sel, k, uhp, 0, st, rng))
meas('select', lambda: Q.dense_select_u8(e, eq, hp10, ds, sel, scr))
"""

def main(targets, m=64, n=784):
    for t in targets:
        r = runner.run_script(t, SCRIPT % (m, n), timeout=600)
        if r.returncode:
            print(r.output)
            continue
        call = r.icount.get("call", 0)
        k = [line for line in r.output.splitlines() if line.startswith("k ")]
        print(t, k)
        for name, c in r.icount.items():
            macs = m * n
            if name.endswith("_k"):
                macs = int(k[0].split()[1]) * n
            print("  %-10s %9d instr  %.2f /MAC" % (name, c, (c - call) / macs))


if __name__ == "__main__":
    main(sys.argv[1:] or ["qemu-m0", "qemu-m4"])
