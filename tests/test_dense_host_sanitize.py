"""The Dense/quant/select kernels (plain C99, no MicroPython) built on the host
with AddressSanitizer + UndefinedBehaviorSanitizer and driven through ctypes
with random shapes, scales and zero points (incl. extremes): no sanitizer
report, and results bit-exact against the golden model."""
import ctypes as C
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = ["quant.c", "dense.c", "dense_f32.c", "update.c", "select.c"]


def _gcc_lib(name):
    p = subprocess.run(["gcc", "-print-file-name=" + name], capture_output=True, text=True).stdout.strip()
    return p if os.path.isabs(p) and os.path.exists(p) else None


pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or _gcc_lib("libasan.so") is None,
                                reason="host gcc with AddressSanitizer not available")

DRIVER = r'''
import ctypes as C, sys, numpy as np
sys.path.insert(0, sys.argv[2])
from qtrain_host.golden import dense as GD, quant as GQ
lib = C.CDLL(sys.argv[1])
class Fix(C.Structure): _fields_ = [("mult", C.c_int32), ("shift", C.c_int32)]
class Fwd(C.Structure): _fields_ = [("zx", C.c_int32), ("zw", C.c_int32), ("zy", C.c_int32), ("out", Fix), ("bias", Fix), ("relu", C.c_int32)]
class Bwd(C.Structure): _fields_ = [("ze", C.c_int32), ("zw", C.c_int32), ("zep", C.c_int32), ("out", Fix)]
class Upd(C.Structure): _fields_ = [("ze", C.c_int32), ("zx", C.c_int32), ("s_e", C.c_float), ("s_x", C.c_float), ("s_b", C.c_float)]
class U(C.Structure): _fields_ = [("lr", C.c_float), ("alpha_norm", C.c_float), ("s_w", C.c_float), ("zw", C.c_int32), ("rounding", C.c_int32), ("per_row", C.c_int32), ("rng", C.POINTER(C.c_uint32))]
P = lambda a: a.ctypes.data_as(C.c_void_p)
F = np.float32
def fix(r):
    m, s = GQ.quantize_multiplier(F(r)); return Fix(m, s)
def qp(rng, lo=-4, hi=4, alpha=0.0):
    sc = float(np.exp(rng.uniform(-6, 3)))
    a = float(rng.uniform(lo, 0)) * float(rng.choice([0, 1, 1])) * sc
    b = float(rng.uniform(0, hi)) * float(rng.choice([0, 1, 1])) * sc
    return GQ.new_qp(a, b if (a or b) else 1.0, alpha)
rng = np.random.default_rng(int(sys.argv[3]))
for case in range(int(sys.argv[4])):
    m = int(rng.integers(1, 40)); n = int(rng.integers(1, 300))
    x = rng.integers(0, 256, n, dtype=np.uint8); w = rng.integers(0, 256, (m, n), dtype=np.uint8)
    xq, wq = qp(rng), qp(rng, -1, 1, 0.001)
    if rng.random() < 0.2:
        x[:] = rng.choice([0, 255]); w[:] = rng.choice([0, 255]); xq[1] = rng.choice([0, 255]); wq[1] = rng.choice([0, 255])
    b = rng.integers(-2**31 + 1, 2**31 - 1, m, dtype=np.int64).astype(np.int32)
    bq = GQ.new_qp(-1, 1); bq[0] = F(10.0 ** rng.uniform(-8, 2)); bq[1] = 0
    yq = qp(rng, alpha=0.1)
    relu = int(rng.integers(0, 2))
    swx = F(F(wq[0]) * F(xq[0]))
    y = np.zeros(m, np.uint8); r = np.zeros(2, np.int32)
    q = Fwd(int(xq[1]), int(wq[1]), int(yq[1]), fix(F(swx / F(yq[0]))), fix(F(F(bq[0]) / swx)), relu)
    xs = np.zeros((n + 3) & ~3, np.int32) if case % 2 else None
    lib.dense_forward_u8(P(x), P(w), P(b), P(y), m, n, C.byref(q), P(r), P(xs) if xs is not None else None)
    gy, gyq = GD.forward_u8(x, xq, w, wq, b, bq, yq, relu)
    assert np.array_equal(y, gy), ("forward", case)
    # backward with a random row subset
    e = rng.integers(0, 256, m, dtype=np.uint8); eq = qp(rng, -1, 1); epq = qp(rng, -2, 2, 0.1)
    k = int(rng.integers(1, m + 1)); sel = np.sort(rng.choice(m, m, replace=False)).astype(np.int32)
    sel[:k] = np.sort(rng.choice(m, k, replace=False))
    use_sel = case % 3 == 0
    ep = np.zeros(n, np.uint8); acc = np.zeros(n, np.int32)
    swe = F(F(wq[0]) * F(eq[0]))
    qb = Bwd(int(eq[1]), int(wq[1]), int(epq[1]), fix(F(swe / F(epq[0]))))
    lib.dense_backward_u8(P(e), P(w), P(ep), m, n, P(sel) if use_sel else None, k, C.byref(qb), P(acc), P(r))
    gep, _ = GD.backward_u8(e, eq, w, wq, epq, sel if use_sel else None, k)
    assert np.array_equal(ep, gep), ("backward", case)
    # update, every rounding mode and granularity
    flags = int(case % 8)
    st = np.zeros(5 + 2 * m, np.float32); seed = np.array([int(rng.integers(1, 2**32))], np.uint32)
    lr = F(10.0 ** rng.uniform(-4, 0)); an = F(rng.choice([1.0, 0.85]))
    w2 = w.copy(); b2 = b.copy() // 4
    u = U(lr, an, F(wq[0]), int(wq[1]), flags & 3, (flags >> 2) & 1, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
    d = Upd(int(eq[1]), int(xq[1]), F(eq[0]), F(xq[0]), F(bq[0]))
    gw, gb, gst, gr, gnr = GD.update_u8(e, eq, x, xq, w, wq, b2, bq, lr, an, flags, st, int(seed[0]),
                                        sel if use_sel else None, k)
    lib.dense_update_u8(P(e), P(x), P(w2), P(b2), m, n, P(sel) if use_sel else None, k, C.byref(d), C.byref(u), P(st), P(r))
    assert np.array_equal(w2, gw) and np.array_equal(b2, gb) and st.tobytes() == gst.tobytes(), ("update", case, flags)
    assert int(seed[0]) == gr and (gnr[0] > gnr[1] or tuple(r) == gnr), ("update range", case)
    # select_topk with ties
    sc = rng.integers(0, int(rng.choice([2, 5, 1000])), m).astype(np.uint32)
    idx = np.zeros(m, np.int32); scr = np.zeros(m, np.uint32)
    lib.select_topk_u32(P(sc), m, k, P(idx), P(scr))
    assert np.array_equal(idx[:k], GD.select_topk(sc, k)), ("select", case)
print("ok")
'''


def test_kernels_under_sanitizers():
    tmp = tempfile.mkdtemp(prefix="qtrain-san-")
    try:
        so = os.path.join(tmp, "libqtk.so")
        srcs = [os.path.join(ROOT, "natmod", "kernels", f) for f in SRC]
        cmd = ["gcc", "-std=c99", "-O1", "-g", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
               "-Wno-unused-parameter", "-Wshadow", "-Wdouble-promotion", "-ffp-contract=off",
               "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-o", so] + srcs
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        drv = os.path.join(tmp, "drive.py")
        with open(drv, "w") as f:
            f.write(DRIVER)
        env = dict(os.environ, LD_PRELOAD=_gcc_lib("libasan.so"), ASAN_OPTIONS="detect_leaks=0",
                   UBSAN_OPTIONS="print_stacktrace=1")
        p = subprocess.run([sys.executable, drv, so, os.path.join(ROOT, "host_tools"), "5", "120"],
                           capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 0 and "ok" in p.stdout, p.stdout[-2000:] + p.stderr[-4000:]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
