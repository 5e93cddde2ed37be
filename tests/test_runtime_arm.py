"""natmod/runtime_arm.c's soft-float helpers (linked into the ARM modules in
place of libgcc's) against IEEE single precision (numpy float32 on the host),
and its signed integer divide against C's.

The helpers use integer operations only (and, on the M0, one asm loop of
the divide), so the same C built for the host computes what the Cortex-M0
build computes; on qemu-m0 every kernel's golden test runs through them as
well, and test_divide_on_target checks the module's divide there directly.
"""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME = os.path.join(ROOT, "natmod", "runtime_arm.c")
CC = shutil.which("cc") or shutil.which("gcc")

DRIVER = r"""
#include <stddef.h>
#include <stdint.h>
int __aeabi_fcmpeq(float a, float b);
int __aeabi_fcmplt(float a, float b);
int __aeabi_fcmple(float a, float b);
int __aeabi_fcmpgt(float a, float b);
int __aeabi_fcmpge(float a, float b);
float __aeabi_fmul(float a, float b);
float __aeabi_fdiv(float a, float b);
// In the module, libgcc's add; here the host's IEEE add.
float __aeabi_fadd(float a, float b) {
    return a + b;
}
float __aeabi_fsub(float a, float b);
float __aeabi_i2f(int32_t v);
float __aeabi_ui2f(uint32_t v);
void fsub_all(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = __aeabi_fsub(a[i], b[i]);
    }
}
// out[2 i], out[2 i + 1]: v[i] as int32 and as uint32, converted.
void i2f_all(const uint32_t *v, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = __aeabi_i2f((int32_t)v[i]);
        out[2 * i + 1] = __aeabi_ui2f(v[i]);
    }
}
void fdiv_all(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = __aeabi_fdiv(a[i], b[i]);
    }
}
void fmul_all(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = __aeabi_fmul(a[i], b[i]);
    }
}
// In the module, libgcc's unsigned divide (the signed one is ours); here C's.
uint64_t __aeabi_uidivmod(uint32_t n, uint32_t d) {
    return (uint64_t)(n / d) | ((uint64_t)(n % d) << 32);
}
int32_t __aeabi_idiv(int32_t n, int32_t d);
int64_t __aeabi_idivmod(int32_t n, int32_t d);
// out[3 i + k]: idiv's quotient, idivmod's quotient and remainder (r0, r1:
// the low and high word) of n[i], d[i].
void idiv_all(const int32_t *n, const int32_t *d, int32_t *out, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        const uint64_t qr = (uint64_t)__aeabi_idivmod(n[i], d[i]);
        out[3 * i] = __aeabi_idiv(n[i], d[i]);
        out[3 * i + 1] = (int32_t)(uint32_t)qr;
        out[3 * i + 2] = (int32_t)(uint32_t)(qr >> 32);
    }
}
// out[5 i + k]: eq, lt, le, gt, ge of a[i], b[i].
void fcmp_all(const float *a, const float *b, int8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int8_t *o = out + 5 * i;
        o[0] = (int8_t)__aeabi_fcmpeq(a[i], b[i]);
        o[1] = (int8_t)__aeabi_fcmplt(a[i], b[i]);
        o[2] = (int8_t)__aeabi_fcmple(a[i], b[i]);
        o[3] = (int8_t)__aeabi_fcmpgt(a[i], b[i]);
        o[4] = (int8_t)__aeabi_fcmpge(a[i], b[i]);
    }
}
"""

# Zeros of both signs, the smallest/largest subnormals and normals, one,
# infinities, quiet and signalling NaNs of both signs.
EDGE_BITS = [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000,
             0x80800000, 0x3f800000, 0xbf800000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
             0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if not CC:
        pytest.skip("no host C compiler")
    d = tmp_path_factory.mktemp("runtime")
    drv = d / "drv.c"
    drv.write_text(DRIVER)
    so = d / "libqtrt.so"
    subprocess.run([CC, "-O2", "-std=c99", "-shared", "-fPIC", "-DQT_RUNTIME_FCMP=1", "-DQT_RUNTIME_SOFTFP=1", "-DQT_RUNTIME_IDIV=1", "-ffp-contract=off", str(drv), RUNTIME,
                    "-o", str(so)], check=True)
    return ctypes.CDLL(str(so))


def _fcmp(lib, a, b):
    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    out = np.empty((a.size, 5), np.int8)
    lib.fcmp_all(a.ctypes.data_as(ctypes.c_void_p), b.ctypes.data_as(ctypes.c_void_p),
                 out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(a.size))
    return out


def test_float_compares_equal_ieee(lib):
    rng = np.random.default_rng(3)
    edge = np.array(EDGE_BITS, np.uint32)
    ea, eb = np.meshgrid(edge, edge)
    bits_a = [ea.ravel(), rng.integers(0, 2 ** 32, 200000, dtype=np.uint32)]
    bits_b = [eb.ravel(), rng.integers(0, 2 ** 32, 200000, dtype=np.uint32)]
    # Near ties: equal magnitudes, neighbouring bit patterns, opposite signs.
    near = rng.integers(0, 2 ** 32, 50000, dtype=np.uint32)
    for d in (0, 1, 0x80000000, 0x80000001):
        bits_a.append(near)
        bits_b.append(near ^ np.uint32(d) if d >= 0x80000000 else near + np.uint32(d))
    a = np.concatenate(bits_a).view(np.float32)
    b = np.concatenate(bits_b).view(np.float32)
    got = _fcmp(lib, a, b)
    with np.errstate(invalid="ignore"):
        want = np.stack([a == b, a < b, a <= b, a > b, a >= b], axis=1).astype(np.int8)
    bad = np.nonzero((got != want).any(axis=1))[0]
    assert bad.size == 0, ["%08x %08x got %s want %s" % (a[i:i + 1].view(np.uint32)[0],
                                                         b[i:i + 1].view(np.uint32)[0], got[i], want[i])
                           for i in bad[:5]]


def _assert_binary_op_ieee(lib_fn, bits, want_fn, sym):
    """lib_fn over the float pairs `bits` (2 x n uint32) gives want_fn's bits
    (numpy float32, IEEE round to nearest even); any NaN for a NaN."""
    a, b = bits[0].view(np.float32), bits[1].view(np.float32)
    out = np.empty_like(a)
    lib_fn(a.ctypes.data_as(ctypes.c_void_p), b.ctypes.data_as(ctypes.c_void_p),
           out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(a.size))
    with np.errstate(all="ignore"):
        want = want_fn(a, b)
    got_u, want_u = out.view(np.uint32), want.view(np.uint32)
    nan = np.isnan(want) & np.isnan(out)
    bad = np.nonzero((got_u != want_u) & ~nan)[0]
    assert bad.size == 0, ["%08x %s %08x = %08x, want %08x" % (bits[0, i], sym, bits[1, i], got_u[i], want_u[i])
                           for i in bad[:5]]


def _operand_pairs(rng, n):
    """Operand pairs (2 x m uint32 float bits) every binary-op check uses:
    all pairs of EDGE_BITS, n pairs of any bits, n with random exponents and
    n with exponents near the normal range's ends (results that overflow,
    underflow or just stay normal).  -> (list of those parts, and the
    exponents, signs and mantissas drawn, for the caller's own parts)."""
    edge = np.array(EDGE_BITS, np.uint32)
    ea, eb = np.meshgrid(edge, edge)
    exps = rng.integers(0, 256, (2, n), dtype=np.uint32)
    near = np.where(rng.random((2, n)) < 0.5, rng.integers(1, 40, (2, n)), rng.integers(215, 255, (2, n)))
    sign = rng.integers(0, 2, (2, n), dtype=np.uint32) << np.uint32(31)
    mant = rng.integers(0, 1 << 23, (2, n), dtype=np.uint32)
    parts = [np.stack([ea.ravel(), eb.ravel()]), rng.integers(0, 2 ** 32, (2, n), dtype=np.uint32),
             sign | (exps << np.uint32(23)) | mant, sign | (near.astype(np.uint32) << np.uint32(23)) | mant]
    return parts, exps, sign, mant


def test_float_multiply_equals_ieee(lib):
    rng = np.random.default_rng(4)
    n = 300000
    parts, exps, sign, _ = _operand_pairs(rng, n)
    # And 13-bit mantissas, whose 25-26-bit products are exact or exact ties
    # (round half to even).
    short = (rng.integers(1 << 12, 1 << 13, (2, n), dtype=np.uint32) << np.uint32(11)) & np.uint32(0x7fffff)
    parts += [sign | (exps << np.uint32(23)) | short, sign | (np.uint32(127) << np.uint32(23)) | short]
    _assert_binary_op_ieee(lib.fmul_all, np.concatenate(parts, axis=1), lambda a, b: a * b, "*")


def test_float_divide_equals_ieee(lib):
    rng = np.random.default_rng(5)
    n = 300000
    parts, exps, sign, mant = _operand_pairs(rng, n)
    # And a = fl(b c), whose quotient by b is c or next to it (tiny
    # remainders: the sticky bit).
    b = (sign[1] | (np.uint32(127) << np.uint32(23)) | mant[1]).view(np.float32)
    c = (sign[0] | (exps[0] % np.uint32(64) + np.uint32(95)) << np.uint32(23) | mant[0]).view(np.float32)
    prod = (b * c).view(np.uint32)
    parts.append(np.stack([prod, b.view(np.uint32)]))
    _assert_binary_op_ieee(lib.fdiv_all, np.concatenate(parts, axis=1), lambda a, b: a / b, "/")


def test_float_subtract_equals_ieee(lib):
    # a - b is libgcc's add of -b in the module (here the host's add): the
    # sign flip of every kind of operand, NaNs and zeros included.
    parts, _, _, _ = _operand_pairs(np.random.default_rng(7), 100000)
    _assert_binary_op_ieee(lib.fsub_all, np.concatenate(parts, axis=1), lambda a, b: a - b, "-")


def test_int_to_float_equals_ieee(lib):
    rng = np.random.default_rng(8)
    # Every magnitude 2^k and its neighbours, ties at each shift, random bits.
    p2 = np.uint64(1) << np.arange(32, dtype=np.uint64)
    v = np.concatenate([p2 - 1, p2, p2 + 1, (p2 << np.uint64(1)) + (p2 >> np.uint64(24)),
                        rng.integers(0, 2 ** 32, 200000, dtype=np.uint64),
                        (rng.integers(0, 2 ** 26, 50000, dtype=np.uint64) << np.uint64(7)) | np.uint64(0x40)])
    v = (v & np.uint64(0xffffffff)).astype(np.uint32)
    out = np.empty(2 * v.size, np.float32)
    lib.i2f_all(v.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(v.size))
    # numpy converts int64 -> float32 correctly rounded (32 significant bits fit)
    assert out[0::2].tobytes() == v.view(np.int32).astype(np.float32).tobytes()
    assert out[1::2].tobytes() == v.astype(np.float32).tobytes()


def test_signed_divide_equals_c(lib):
    # The M0's signed divide (QT_RUNTIME_IDIV, on the unsigned one) against
    # C's truncating division: every power of two and its neighbours as
    # dividend and divisor, both signs, the extremes (INT32_MIN / -1 wraps
    # as in libgcc), random operands of every magnitude.
    rng = np.random.default_rng(9)
    p2 = np.int64(1) << np.arange(32, dtype=np.int64)
    edge = np.concatenate([p2 - 1, p2, p2 + 1, [0, 3, 5, 7, 9, 10, 255, 2 ** 31 - 1]])
    edge = np.concatenate([edge, -edge])
    n, d = np.meshgrid(edge, edge)
    rand = rng.integers(-2 ** 31, 2 ** 31, (2, 200000), dtype=np.int64) >> rng.integers(0, 32, (2, 200000))
    n = np.concatenate([n.ravel(), rand[0]])
    d = np.concatenate([d.ravel(), rand[1]])
    n = ((n + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)   # 2^31 -> INT32_MIN
    d = ((d + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)
    n, d = n[d != 0], d[d != 0]
    out = np.empty(3 * n.size, np.int32)
    lib.idiv_all(n.ctypes.data_as(ctypes.c_void_p), d.ctypes.data_as(ctypes.c_void_p),
                 out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(n.size))
    n64, d64 = n.astype(np.int64), d.astype(np.int64)
    q = np.abs(n64) // np.abs(d64) * np.sign(n64) * np.sign(d64)   # toward zero
    r = n64 - q * d64                                              # the dividend's sign
    q = ((q + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)       # INT32_MIN / -1 wraps
    assert np.array_equal(out[0::3], q)
    assert np.array_equal(out[1::3], q)
    assert np.array_equal(out[2::3], r.astype(np.int32))


QP_DIV_SCRIPT = r"""
from array import array
import _qtrain as Q
w = array('f', open('widths.bin', 'rb').read())
qp = array('f', [0.0] * 8)
s = array('f', [0.0] * len(w))
for i in range(len(w)):
    qp[2] = 0.0
    qp[3] = w[i]
    Q.qp_from_range(qp)
    s[i] = qp[0]
b = bytearray(s)
print('S ', end='')
for i in range(0, len(b), 32):   # a piece at a time: little heap on the boards
    print(''.join(['%02x' % v for v in b[i:i + 32]]), end='')
print()
"""


def test_divide_on_target(run):
    # On the boards the divide is the module's own (qemu-m0) or the FPU's:
    # qp_from_range's scale is one float divide, width / 255.
    rng = np.random.default_rng(6)
    w = np.exp(rng.uniform(np.log(1e-6), np.log(3e38), 1500)).astype(np.float32)
    w = np.concatenate([w, (np.arange(1, 301) * 255).astype(np.float32) * np.float32(2.0 ** -7)])
    out = run(QP_DIV_SCRIPT, files={"widths.bin": w.tobytes()})
    got = np.frombuffer(bytes.fromhex(out.split("S ", 1)[1].split()[0]), np.float32)
    w = np.clip(w, np.float32(1e-6), np.float32(3e38))   # qp_from_range's width limits
    want = w / np.float32(255.0)
    assert got.tobytes() == want.tobytes(), np.nonzero(got != want)[0][:5]
