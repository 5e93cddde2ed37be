"""The quantization core (natmod/kernels/quant.c) bit-exact against the golden
model: range -> (s, z), moving-average range update, re-mapping, and the
fixed-point multiplier at extreme scales (through dense_forward_u8)."""
import numpy as np

from qtrain_host.golden import quant as GQ
from test_dense_u8 import DEVICE_LIB, pack, parse, f32

QP_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
qps, obs, remap = rdn(f, 3)
# qp_from_range on each record, then observe (via a 1x1 forward) and update
n = len(qps) // 8
for i in range(n):
    qp = memoryview(qps)[8 * i: 8 * i + 8]
    Q.qp_from_range(qp)
print('F', 0, hx(qps))
Q.qp_update(qps)
print('U', 0, hx(qps))
# remap: rows of 256 values 0..255 under (old, new) pairs
for i in range(len(remap) // 16):
    q = bytearray(range(256))
    Q.remap_u8(q, memoryview(remap)[16 * i: 16 * i + 8], memoryview(remap)[16 * i + 8: 16 * i + 16])
    print('M', i, hx(q))
print('done')
"""


def _ranges(rng, k):
    out = []
    for _ in range(k):
        kind = rng.integers(0, 6)
        if kind == 0:
            lo, hi = 0.0, 0.0
        elif kind == 1:
            lo, hi = float(rng.uniform(0.1, 3)), float(rng.uniform(3, 5))  # all positive
        elif kind == 2:
            lo, hi = -float(rng.uniform(0, 1e-7)), float(rng.uniform(0, 1e-7))
        else:
            sc = float(np.exp(rng.uniform(-12, 8)))
            lo, hi = -sc * float(rng.random()), sc * float(rng.random())
        out.append((lo, hi))
    return out


def test_quant_core_bit_exact(run):
    rng = np.random.default_rng(11)
    ranges = _ranges(rng, 40)
    qps = np.zeros((len(ranges), 8), np.float32)
    for i, (lo, hi) in enumerate(ranges):
        qps[i, :] = [1.0, 0, lo, hi, float(rng.choice([0.0, 0.1, 0.001, 1.0])), 0, 0, 0]
        if rng.random() < 0.7:  # an observation pending
            a, b = sorted(rng.normal(0, float(np.exp(rng.uniform(-3, 3))), 2))
            qps[i, 5:8] = [a, b, float(rng.integers(1, 4))]
    remap = []
    for _ in range(30):
        lo, hi = _ranges(rng, 1)[0]
        old = GQ.new_qp(lo, hi)
        new = GQ.new_qp(lo * float(rng.uniform(0.3, 3)), hi * float(rng.uniform(0.3, 3)))
        remap.append(np.concatenate([old, new]))
    data = pack(qps.ravel(), np.zeros(1, np.float32), np.array(remap, np.float32).ravel())
    out = run(QP_SCRIPT, files={"cases.bin": data})
    assert "done" in out
    got_f = f32(parse(out, "F")[0][0]).reshape(-1, 8)
    got_u = f32(parse(out, "U")[0][0]).reshape(-1, 8)
    for i in range(len(qps)):
        qp = qps[i].copy()
        qp[0], qp[1] = GQ.quant_params(qp[2], qp[3])
        assert got_f[i].tobytes() == qp.tobytes(), "from_range %d: %s vs %s" % (i, got_f[i], qp)
        GQ.qp_update(qp)
        assert got_u[i].tobytes() == qp.tobytes(), "update %d: %s vs %s" % (i, got_u[i], qp)
        assert qp[0] > 0 and 0 <= qp[1] <= 255
    res = parse(out, "M")
    for i, r in enumerate(remap):
        old, new = r[:8], r[8:]
        want = GQ.remap_u8(np.arange(256), old[0], int(old[1]), new[0], int(new[1]))
        assert res[i][0] == want.tobytes(), "remap %d" % i


def test_golden_quant_properties():
    """Host-only checks of the golden model's own math."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        m = np.float32(np.exp(rng.uniform(-40, 25)))
        mult, shift = GQ.quantize_multiplier(m)
        if 2.0**-32 <= m < 2.0**30:
            assert mult * 2.0**-shift == float(m)      # exact
        acc = int(rng.integers(-2**31 + 1, 2**31))
        got = int(GQ.requantize(acc, mult, shift))
        assert abs(got - acc * float(m)) <= 0.5 + 1e-9 * abs(acc * float(m)) or mult == 0x7fffffff
    for lo, hi in _ranges(rng, 500):
        s, z = GQ.quant_params(lo, hi)
        assert s > 0 and 0 <= z <= 255
        # 0 is exactly representable; the range fits within half a step
        assert GQ.dequantize(z, s, z) == 0
        assert -z * float(s) <= min(lo, 0) + 0.5 * float(s) + 1e-6 * abs(lo)
    for x in [0.0, 1e-30, 1e-6, 0.5, 2.0, 3.0, 1e6, 3e38]:
        assert abs(float(GQ.sqrt_f32(x)) - np.sqrt(x)) <= 2e-7 * np.sqrt(x)


FWD_EXTREME = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    x, xq, w, wq, b, bq, yq, fl = rdn(f, 8)
    y = bytearray(fl[1])
    Q.dense_forward_u8(x, xq, w, wq, b, bq, y, yq, fl[0])
    print('R', i, hx(y), hx(yq))
print('done')
"""


def test_forward_extreme_scales(run):
    """Multipliers from tiny to huge (saturation, shift clamping) stay bit-exact."""
    from qtrain_host.golden import dense as GD
    rng = np.random.default_rng(3)
    cases, data = [], b""
    for sy in [1e-30, 1e-12, 1e-6, 1.0, 1e6, 1e12, 1e30]:
        for relu in (0, 1):
            m, n = 5, 9
            x = rng.integers(0, 256, n, dtype=np.uint8)
            w = rng.integers(0, 256, (m, n), dtype=np.uint8)
            xq, wq = GQ.new_qp(-1, 1), GQ.new_qp(-0.5, 0.2)
            yq = GQ.new_qp(-1, 1)
            yq[0] = np.float32(sy)
            b = rng.integers(-2**31 + 1, 2**31 - 1, m, dtype=np.int64).astype(np.int32)
            bq = GQ.new_qp(-1, 1)
            bq[0], bq[1] = np.float32(1e-3), 0
            cases.append((x, xq, w, wq, b, bq, yq, relu))
            data += pack(x, xq, w.ravel(), wq, b, bq, yq, np.array([relu, m], np.int32))
    out = run(FWD_EXTREME, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    res = parse(out, "R")
    for i, (x, xq, w, wq, b, bq, yq, relu) in enumerate(cases):
        y, yq2 = GD.forward_u8(x, xq, w, wq, b, bq, yq, relu)
        assert res[i][0] == y.tobytes(), "case %d" % i
        assert res[i][1] == yq2.tobytes(), "case %d yq" % i


FIXMUL_M0_TEST = r"""
#include <stdio.h>
#include <stdint.h>
#define __ARM_ARCH_6M__ 1
#include "quant.h"
static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
int main(void) {
    long bad = 0;
    for (long i = 0; i < 3000000; i++) {
        int32_t x = (int32_t)rnd();
        if (i % 4 == 1) x = (int32_t)(rnd() % 2000001) - 1000000;
        if (i % 97 == 0) x = INT32_MIN;
        if (i % 89 == 0) x = INT32_MAX;
        qt_fixmul_t f;
        f.mult = (int32_t)(0x40000000u | (uint32_t)(rnd() & 0x3fffffffu));
        if (i % 13 == 0) f.mult = 0x7fffffff;
        if (i % 17 == 0) f.mult = (int32_t)(rnd() & 0x7fffffff);
        f.shift = 1 + (int32_t)(rnd() % 62);
        int64_t ref = ((int64_t)x * f.mult + ((int64_t)1 << (f.shift - 1))) >> f.shift;
        if (qt_fixmul_apply64(x, f) != ref) bad++;
    }
    printf("bad %ld\n", bad);
    return bad != 0;
}
"""


def test_fixmul_cortex_m0_path_exact():
    """The Cortex-M0 fixed-point multiply (16-bit partial products, no libgcc
    64-bit helpers) equals the int64 formula: 3 M random cases, on the host."""
    import os
    import shutil
    import subprocess
    import tempfile
    import pytest
    if shutil.which("gcc") is None:
        pytest.skip("no host gcc")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as f:
            f.write(FIXMUL_M0_TEST)
        exe = os.path.join(tmp, "t")
        subprocess.run(["gcc", "-O2", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                        "-I", os.path.join(root, "natmod", "kernels"), src,
                        os.path.join(root, "natmod", "kernels", "quant.c"),
                        os.path.join(root, "natmod", "kernels", "mathf.c"), "-o", exe], check=True)
        p = subprocess.run([exe], capture_output=True, text=True)
        assert p.returncode == 0 and "bad 0" in p.stdout, p.stdout + p.stderr
