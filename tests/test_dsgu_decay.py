"""DSGU's ebar_max is a decaying running max (kernels/select.h): after one
large error, k must come back up once the error stays at a lower level (with
an all-time max it stayed low for the rest of training: the DSGU collapse in
docs/BENCHMARKS.md).  On every target, bit-exact against the golden model."""
import numpy as np

from qtrain_host.golden import dense as GD
from qtrain_host.golden import quant as GQ
from test_dense_u8 import DEVICE_LIB, pack

M = 20
STEPS = 3000       # ~3 time constants of the decay (1024 calls)

SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
hp, st, peak, low, eq = rdn(f, 5)
m = len(peak)
sel = array('i', [0] * m); scr = array('I', [0] * (2 * m))
ks = bytearray()
ks.append(Q.dense_select_u8(peak, eq, hp, st, sel, scr))
for s in range(%d):
    ks.append(Q.dense_select_u8(low, eq, hp, st, sel, scr))
for i in range(0, len(ks), 256):       # short lines: little heap on the M0
    print('K', hx(ks[i:i + 256]))
print('E', hx(st))
print('done')
""" % STEPS


def test_dsgu_k_recovers_after_a_peak(run):
    rng = np.random.default_rng(3)
    eq = GQ.new_qp(-1.0, 1.0, 0.0)
    zero = int(eq[GQ.ZERO])
    peak = np.full(M, 255, np.uint8)                                  # |e - z| ~127
    low = np.clip(zero + rng.integers(-20, 21, M), 0, 255).astype(np.uint8)  # ~10
    hp = np.array([0.1, 1.0], np.float32)
    out = run(SCRIPT, files={"cases.bin": pack(hp, np.zeros(1, np.float32), peak, low, eq)})
    got_k = [k for l in out.splitlines() if l.startswith("K ") for k in bytes.fromhex(l.split()[1])]
    got_emax = [bytes.fromhex(l.split()[1]) for l in out.splitlines() if l.startswith("E ")]
    emax, want_k = np.float32(0), []
    for e in [peak] + [low] * STEPS:
        k, _, emax = GD.select_u8(e, eq, hp[0], hp[1], emax)
        want_k.append(k)
    assert got_k == want_k
    assert got_emax == [np.float32(emax).tobytes()]
    assert want_k[0] == M
    assert want_k[1] < M // 2              # right after the peak: few rows
    assert want_k[-1] == M                 # the peak is forgotten: all rows again
