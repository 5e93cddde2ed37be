"""Dense forward (uint8) bit-exact against the numpy golden model, on every target.

Cases are generated on the host, passed to the target as one binary file
(typecode + length + bytes per buffer), and the target prints each output as
hex; many cases share one interpreter/QEMU boot.
"""
import numpy as np

from casefile import pack, parse  # noqa: F401 (the test_dense*/test_quant* files import them from here)
from qtrain_host.golden import dense as GD
from qtrain_host.golden import quant as GQ

# ---- case file protocol, shared by the other test_dense*/test_quant* files --

# MicroPython side: read buffers back, print outputs as hex.
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
    gc.collect()
    return [rd(f) for _ in range(k)]
def hx(b):
    b = bytes(b)
    parts = []
    for i in range(0, len(b), 64):
        parts.append(''.join(['%02x' % v for v in b[i:i + 64]]))
    return ''.join(parts)
def out(tag, i, *items):
    # print one result line piece by piece (little memory on small boards)
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
"""


def f32(b):
    return np.frombuffer(b, np.float32)


def rand_qp(rng, lo=-4.0, hi=4.0, alpha=0.0):
    """A random valid qparams record (random range -> s, z; some extreme z)."""
    a = float(rng.uniform(lo, 0)) * float(rng.choice([0, 1, 1, 1]))
    b = float(rng.uniform(0, hi)) * float(rng.choice([0, 1, 1, 1]))
    if a == 0 and b == 0:
        b = 1.0
    scale = float(np.exp(rng.uniform(-4, 2)))
    return GQ.new_qp(a * scale, b * scale, alpha)


def forward_case(rng, m=None, n=None):
    m = m or int(rng.integers(1, 40))
    n = n or int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257]))
    x = rng.integers(0, 256, n, dtype=np.uint8)
    w = rng.integers(0, 256, (m, n), dtype=np.uint8)
    xq, wq = rand_qp(rng), rand_qp(rng)
    has_b = rng.random() < 0.7
    b = rng.integers(-2**20, 2**20, m, dtype=np.int32) if has_b else None
    bq = GQ.new_qp(-1.0, 1.0)
    bq[GQ.SCALE] = xq[GQ.SCALE] * wq[GQ.SCALE] * np.float32(rng.choice([1.0, 0.37, 3.0]))
    bq[GQ.ZERO] = 0
    # Output range near the spread of the accumulator, so y is not all clamped.
    acc = ((w.astype(np.int64) - int(wq[1])) * (x.astype(np.int64) - int(xq[1]))).sum(axis=1)
    spread = float(np.abs(acc).max() + 1) * float(xq[0] * wq[0])
    yq = GQ.new_qp(-spread * rng.uniform(0.1, 1.0), spread * rng.uniform(0.1, 1.0),
                   alpha=float(rng.choice([0.0, 0.1])))
    relu = int(rng.random() < 0.5)
    return dict(x=x, xq=xq, w=w, wq=wq, b=b, bq=bq, yq=yq, relu=relu)


FWD_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    x, xq, w, wq, b, bq, yq, fl = rdn(f, 8)
    y = bytearray(fl[1]); y2 = bytearray(fl[1]); yq2 = array('f', yq)
    Q.dense_forward_u8(x, xq, w, wq, b, bq, y, yq, fl[0])
    xs = array('i', [0] * ((len(x) + 3) & ~3))
    Q.dense_forward_u8(x, xq, w, wq, b, bq, y2, yq2, fl[0], xs)
    print('R', i, hx(y), hx(yq), hx(y2), hx(yq2))
print('done')
"""


def test_dense_forward_u8_bit_exact(run):
    rng = np.random.default_rng(1234)
    cases = [forward_case(rng) for _ in range(60)]
    cases.append(forward_case(rng, m=3, n=1500))
    cases.append(forward_case(rng, m=64, n=784))
    # Few inputs, many rows (the VAE decoder's 10 -> 1568 shape): the xs path
    # works in blocks of rows; m not a multiple of the block.
    cases += [forward_case(rng, m=m, n=n) for m, n in ((200, 10), (97, 3), (65, 1))]
    # A bias term near INT32_MAX in one block (the saturating row-by-row
    # fallback) next to blocks where it folds into the accumulators.
    c = forward_case(rng, m=80, n=5)
    c["b"] = rng.integers(-2**20, 2**20, 80, dtype=np.int32)
    c["b"][40] = 2**31 - 1
    c["b"][41] = -2**31 + 1
    c["bq"][GQ.SCALE] = c["xq"][GQ.SCALE] * c["wq"][GQ.SCALE]
    cases.append(c)
    # Multipliers in [1/2, 1) (the M0's short form from shift 31): the bias
    # term's (0.64 in the VAE's 10 -> 1568) with |b| around the short form's
    # 2^18 bound, and the output's.
    c = forward_case(rng, m=70, n=10)
    c["b"] = rng.integers(-2**18 - 64, 2**18 + 64, 70, dtype=np.int32)
    c["b"][:4] = [2**18 - 1, -2**18 + 1, 2**18, -2**18]
    c["bq"][GQ.SCALE] = c["xq"][GQ.SCALE] * c["wq"][GQ.SCALE] * np.float32(0.64)
    cases.append(c)
    c = forward_case(rng, m=50, n=3)
    c["yq"][GQ.SCALE] = c["xq"][GQ.SCALE] * c["wq"][GQ.SCALE] / np.float32(0.75)
    cases.append(c)
    data = pack(np.array([len(cases)], np.int32))
    for c in cases:
        m = c["w"].shape[0]
        data += pack(c["x"], c["xq"], c["w"].ravel(), c["wq"], c["b"], c["bq"], c["yq"],
                     np.array([c["relu"], m], np.int32))
    out = run(FWD_SCRIPT, files={"cases.bin": data})
    assert "done" in out
    res = parse(out, "R")
    assert len(res) == len(cases)
    for i, c in enumerate(cases):
        y, yq = GD.forward_u8(c["x"], c["xq"], c["w"], c["wq"], c["b"], c["bq"], c["yq"], c["relu"])
        got_y, got_yq, got_y2, got_yq2 = res[i]
        assert np.array_equal(np.frombuffer(got_y, np.uint8), y), "case %d y" % i
        assert f32(got_yq).tobytes() == yq.tobytes(), "case %d yq %s vs %s" % (i, f32(got_yq), yq)
        assert np.array_equal(np.frombuffer(got_y2, np.uint8), y), "case %d y (xs path)" % i
        assert got_yq2 == yq.tobytes(), "case %d yq (xs path)" % i


def test_dense_forward_u8_matches_float():
    """Sanity of the golden model itself: y dequantized ~ float Dense within a step."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        c = forward_case(rng)
        y, _ = GD.forward_u8(c["x"], c["xq"], c["w"], c["wq"], c["b"], c["bq"], c["yq"], c["relu"])
        xf = GQ.dequantize(c["x"], c["xq"][0], c["xq"][1])
        wf = GQ.dequantize(c["w"], c["wq"][0], c["wq"][1])
        bf = None if c["b"] is None else c["b"].astype(np.float64) * float(c["bq"][0])
        ref = GD.forward_f32(xf, wf, bf, c["relu"])
        s, z = float(c["yq"][0]), int(c["yq"][1])
        lo = -z * s
        hi = (255 - z) * s
        ref = np.clip(ref, lo, hi)
        got = GQ.dequantize(y, s, z)
        # one output step, plus the bias rounding (half an accumulator step)
        assert np.all(np.abs(got - ref) <= 0.5 * s + 1e-6 * (1 + np.abs(ref)) + 0.5 * float(c["xq"][0] * c["wq"][0]) * 1.01 + 1e-9)


def test_kernels_md_example_runs(run):
    """The runnable example of docs/KERNELS.md (Dense section) runs on every target."""
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "KERNELS.md")
    text = open(path).read()
    i = text.index("### Example (runs on the Unix port")
    j = text.index("```python", i) + len("```python\n")
    out = run(text[j:text.index("```", j)])
    assert "y [160, 127, 138]" in out
    assert "w [129, 199, 227, 184, 60, 100, 128, 30, 251, 251, 11, 201]" in out
