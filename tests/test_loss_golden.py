"""Host checks of the loss/latent golden model (golden/loss.py):

* the float32 mirror of mathf.c / rng.c is bit-exact against the C code built
  with the host compiler (the same plain C99 files the natmod uses);
* accuracy of expf/logf/log1pf/sigmoidf against float64, and of every head
  against its float64 reference, within bounds derived from that accuracy;
* finite differences: each gradient the kernels return is the derivative of
  the loss they report.

The device side (same bits on unix, qemu-m0, qemu-m4) is test_loss_kernels.py.
Set QTRAIN_SLOW=1 to also sweep all 2^32 float inputs of the math functions.
"""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

from qtrain_host.golden import loss as GL
from qtrain_host.golden import quant as GQ

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "natmod", "kernels")
U = 2.0 ** -24          # unit roundoff of float32
CC = shutil.which("cc") or shutil.which("gcc")

# Max error over all float inputs (exhaustive sweep, QTRAIN_SLOW=1), in ulps of
# the correctly rounded result; the sampled tests below assert these bounds.
ULP_BOUND = {"exp": 1.03, "log": 0.86, "log1p": 2.47, "sigmoid": 2.41, "log1p_unit": 1.29}


def _ulp_err(got, ref):
    """|got - ref| in ulps of ref (float32 spacing at ref), finite normal refs."""
    ref = np.asarray(ref, np.float64)
    e = np.floor(np.log2(np.abs(ref)))
    ulp = 2.0 ** (np.maximum(e, -126) - 23)
    return np.abs(got.astype(np.float64) - ref) / ulp


def _sample(rng, n=400000):
    bits = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return np.concatenate([bits, rng.uniform(-110, 95, n).astype(np.float32),
                           rng.uniform(-1, 1, n).astype(np.float32),
                           np.exp(rng.uniform(-85, 85, n)).astype(np.float32)])


# ---- host build of the kernels -------------------------------------------------------

HOST_DRIVER = r"""
#include <stddef.h>
#include <stdint.h>
#include "mathf.h"
void vmath(int op, const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        switch (op) {
            case 0: v = qt_expf(v); break;
            case 1: v = qt_logf(v); break;
            case 2: v = qt_log1pf(v); break;
            case 3: v = qt_sqrtf(v); break;
            case 4: v = qt_sigmoidf(v); break;
            default: v = qt_log1p_unitf(v); break;
        }
        y[i] = v;
    }
}
"""


@pytest.fixture(scope="module")
def hostlib(tmp_path_factory):
    if not CC:
        pytest.skip("no host C compiler")
    d = tmp_path_factory.mktemp("losshost")
    drv = d / "drv.c"
    drv.write_text(HOST_DRIVER)
    so = d / "libqtloss.so"
    # -std=c99 -ffp-contract=off: the natmod build's float semantics.
    cmd = [CC, "-O2", "-std=c99", "-ffp-contract=off", "-shared", "-fPIC", "-I" + KERNELS, str(drv)] + \
        [os.path.join(KERNELS, f) for f in ("mathf.c", "rng.c", "quant.c")] + ["-o", str(so)]
    subprocess.run(cmd, check=True)
    lib = ctypes.CDLL(str(so))
    lib.qt_rng_seed.restype = ctypes.c_uint32
    lib.qt_rng_seed.argtypes = [ctypes.c_uint32]
    return lib


def _host_vmath(lib, op, x):
    x = np.ascontiguousarray(x, np.float32)
    y = np.empty_like(x)
    lib.vmath(ctypes.c_int(op), x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
              ctypes.c_size_t(x.size))
    return y


def test_math_mirror_bit_exact_vs_host_c(hostlib):
    x = _sample(np.random.default_rng(1), 250000)
    for op, fn in GL.VMATH.items():
        c = _host_vmath(hostlib, op, x)
        g = fn(x)
        bad = ~((c.view(np.uint32) == g.view(np.uint32)) | (np.isnan(c) & np.isnan(g)))
        assert not bad.any(), (op, x[bad][:5], c[bad][:5], g[bad][:5])


def test_rng_mirror_bit_exact_vs_host_c(hostlib):
    for s in (0, 1, 2, 12345, 2 ** 32 - 1):
        assert hostlib.qt_rng_seed(s) == GL.rng_seed(s)
    st = ctypes.c_uint32(GL.rng_seed(7))
    gs = GL.rng_seed(7)
    for n in (1, 2, 3, 10, 11, 1000, 0, 1):
        buf = (ctypes.c_float * max(n, 1))()
        hostlib.qt_rng_normal(ctypes.byref(st), buf, ctypes.c_size_t(n))
        gs, gv = GL.rng_normal(gs, n)
        assert st.value == gs, n
        assert np.array_equal(np.frombuffer(buf, np.float32)[:n].view(np.uint32), gv.view(np.uint32)), n
    # state 0 is replaced, not stuck
    st = ctypes.c_uint32(0)
    buf = (ctypes.c_float * 4)()
    hostlib.qt_rng_normal(ctypes.byref(st), buf, ctypes.c_size_t(4))
    assert st.value == GL.rng_normal(0, 4)[0] != 0


# ---- accuracy of the math ----------------------------------------------------------------

def test_math_accuracy_sampled():
    x = _sample(np.random.default_rng(2))
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        refs = {"exp": (GL.expf, np.exp(x64)), "log": (GL.logf, np.log(x64)),
                "log1p": (GL.log1pf, np.log1p(x64)), "sigmoid": (GL.sigmoidf, 1 / (1 + np.exp(-x64))),
                "log1p_unit": (GL.log1p_unitf, np.log1p(x64))}
        for name, (fn, ref) in refs.items():
            got = fn(x)
            ok = np.isfinite(ref) & (np.abs(ref) >= 2.0 ** -126) & (np.abs(ref) <= 3.4e38)
            if name == "log1p_unit":
                ok &= (x64 >= 0) & (x64 <= 1)
            err = _ulp_err(got[ok], ref[ok])
            assert err.max() <= ULP_BOUND[name], (name, err.max(), x[ok][np.argmax(err)])
        # special values (C99 Annex F)
        sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0], np.float32)
        assert np.array_equal(GL.expf(sp)[:4], [1, 1, np.inf, 0]) and np.isnan(GL.expf(sp)[4])
        lg = GL.logf(sp)
        assert lg[0] == -np.inf and lg[1] == -np.inf and lg[2] == np.inf and np.isnan(lg[3]) and np.isnan(lg[5])
        assert GL.log1pf(np.float32(-1.0))[0] == -np.inf
        assert np.array_equal(GL.sigmoidf(np.array([np.inf, -np.inf, 200, -200], np.float32)), [1, 0, 1, 0])
        # subnormal results of exp and log of subnormals
        assert GL.expf(np.float32(-103.9))[0] == np.float32(2.0 ** -149)
        assert abs(GL.logf(np.float32(1e-45))[0] - np.log(1.401298464324817e-45)) < 1e-5


@pytest.mark.skipif(not os.environ.get("QTRAIN_SLOW"), reason="QTRAIN_SLOW=1: exhaustive 2^32 sweep (~1 min)")
def test_math_accuracy_exhaustive(hostlib, tmp_path):
    src = tmp_path / "exh.c"
    src.write_text(EXHAUSTIVE_C)
    exe = tmp_path / "exh"
    subprocess.run([CC, "-O2", "-std=c99", "-ffp-contract=off", "-I" + KERNELS, str(src),
                    os.path.join(KERNELS, "mathf.c"), "-lm", "-o", str(exe)], check=True)
    names = ["exp", "log", "log1p", "sqrt", "sigmoid", "log1p_unit"]
    procs = [subprocess.Popen([str(exe), str(i)], stdout=subprocess.PIPE, text=True) for i in range(6)]
    for name, p in zip(names, procs):
        out = p.communicate()[0]
        print(out.strip())
        ulp, bad = float(out.split()[3]), int(out.split()[-1])
        assert bad == 0, out
        if name == "sqrt":
            assert ulp == 0.0
        else:
            assert ulp <= ULP_BOUND[name], out


EXHAUSTIVE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "mathf.h"
int main(int argc, char **argv) {
    int op = atoi(argv[1]);
    double maxu = 0, maxrel = 0;
    uint32_t worst = 0, bad = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u++) {
        uint32_t b = (uint32_t)u;
        float x, got;
        double ref;
        memcpy(&x, &b, 4);
        if (isnan(x)) continue;
        switch (op) {
            case 0: got = qt_expf(x); ref = exp((double)x); break;
            case 1: if (x < 0) continue; got = qt_logf(x); ref = log((double)x); break;
            case 2: if (x < -1) continue; got = qt_log1pf(x); ref = log1p((double)x); break;
            case 3: { if (x < 0) continue; got = qt_sqrtf(x); float r = sqrtf(x);
                      if (memcmp(&got, &r, 4)) bad++; continue; }
            case 5: if (x < 0 || x > 1) continue; got = qt_log1p_unitf(x); ref = log1p((double)x); break;
            default: got = qt_sigmoidf(x); ref = 1.0 / (1.0 + exp(-(double)x)); break;
        }
        float rf = (float)ref;
        if (isinf(rf) || ref == 0) {
            /* must give the correctly rounded inf / 0 (or the nearest subnormal) */
            if (!(got == rf || (fabs((double)got - ref) <= ldexp(1.0, -149)))) bad++;
            continue;
        }
        int e;
        frexp(ref, &e);
        double ulp = ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 23);
        double ue = fabs((double)got - ref) / ulp;
        if (ue > maxu) { maxu = ue; worst = b; }
        if (fabs(ref) >= ldexp(1.0, -126)) {
            double re = fabs((double)got - ref) / fabs(ref);
            if (re > maxrel) maxrel = re;
        }
    }
    printf("op %d maxulp %.4f at_bits %08x maxrel_normal %.3e bad %u\n", op, maxu, worst, maxrel, bad);
    return 0;
}
"""


# ---- heads against float64 ------------------------------------------------------------------

def test_bce_golden_vs_float64():
    rng = np.random.default_rng(3)
    worst = 0.0
    for k in range(40):
        n = int(rng.choice([1, 10, 784]))
        l = rng.normal(0, float(np.exp(rng.uniform(-2, 3))), n).astype(np.float32)
        t = rng.integers(0, 256, n).astype(np.uint8)
        err, st = GL.bce_sigmoid(l, t)
        loss64, g64 = GL.bce_ref(l, t)
        l64, t64 = l.astype(np.float64), t / 255.0
        terms = np.logaddexp(0, l64) - t64 * l64
        # per term: the product l*t, the subtraction, log1p (<= 2.5 ulp) and the
        # add, each <= u relative to their operands; then recursive summation
        # (<= n u per partial sum magnitude).
        bound = U * (np.sum(np.abs(l64 * t64) + np.abs(np.maximum(l64, 0) - l64 * t64)
                            + 7 * np.log1p(np.exp(-np.abs(l64))) + 2 * np.abs(terms))
                     + n * np.sum(np.abs(terms)))
        assert abs(float(st[0]) - loss64) <= bound, (k, st[0], loss64, bound)
        worst = max(worst, abs(float(st[0]) - loss64) / max(abs(loss64), 1e-30))
        # error: sigmoid within ~5u relative, t = q/255 within u, one subtraction
        assert np.max(np.abs(err - g64)) <= 8 * U
        assert st[1] == err.min() and st[2] == err.max()
        # uint8 error: within one step of the float64 error quantized the same way
        qp = GQ.new_qp(-1.0, 1.0)
        q32, _ = GL.bce_sigmoid(l, t, qp.copy())
        s, z = float(qp[GQ.SCALE]), int(qp[GQ.ZERO])
        q64 = np.clip(np.floor(g64 / s + 0.5) + z, 0, 255)
        assert np.max(np.abs(q32.astype(np.int64) - q64)) <= 1
    print("bce loss worst relative error vs float64: %.2e" % worst)


def test_bce_int_point_vs_float64():
    """uint8 logits: the Q24 integer sigmoid and softplus term of every logit
    magnitude, over scales from 1e-6 to 1e3, within 2 units (2^-23) of the
    float64 values of the exact logit a s; the sigmoid of -a s is the
    complement."""
    rng = np.random.default_rng(11)
    scales = np.concatenate([np.exp(rng.uniform(np.log(1e-6), np.log(1e3), 120)),
                             [1 / 255, 0.125, 1.0, 16 / 255]]).astype(np.float32)
    worst_s = worst_l = 0.0
    for s in scales:
        for a in range(256):
            sig, lp = GL.bce_int_point(a, s)
            l = a * float(s)
            worst_s = max(worst_s, abs(sig - 2.0 ** 24 / (1 + np.exp(-l))))
            worst_l = max(worst_l, abs(lp - 2.0 ** 24 * np.log1p(np.exp(-l))))
            assert 0 <= sig <= 1 << 24
    assert worst_s <= 2 and worst_l <= 2, (worst_s, worst_l)
    print("bce integer point: sigmoid within %.2f, softplus within %.2f units of 2^-24" % (worst_s, worst_l))


def test_bce_u8_logits_golden_vs_float64():
    """uint8 logits: sigmoid and softplus terms in Q24 integers (each within
    2^-23, test above), the softplus sum exact, the linear part an exact
    integer sum; both scaled once (one conversion, s/255 and a product:
    <= 3u of it, then one addition)."""
    rng = np.random.default_rng(13)
    for k in range(40):
        n = int(rng.choice([1, 10, 784]))
        qp = GQ.new_qp(-float(rng.uniform(1, 30)), float(rng.uniform(1, 30)))
        s, z = qp[GQ.SCALE], int(qp[GQ.ZERO])
        q = rng.integers(0, 256, n).astype(np.uint8)
        t = rng.integers(0, 256, n).astype(np.uint8)
        err, st = GL.bce_sigmoid_q(q, s, z, t)
        l = GL.dequant(q, s, z)
        loss64, g64 = GL.bce_ref(l, t)
        l64 = l.astype(np.float64)
        lin = np.sum(np.maximum(l64, 0) - l64 * t / 255.0)
        # the integer terms use the exact logit (q - z) s, the reference the
        # float32 one (within u |l|)
        bound = n * 2.0 ** -23 + U * (3 * abs(lin) + 2 * abs(loss64) + np.sum(np.abs(l64)))
        assert abs(float(st[0]) - loss64) <= bound, (k, st[0], loss64, bound)
        # float error (mixed mode): sigmoid within 2^-23 (+ u |l| / 4), t and
        # the subtraction within u each
        assert np.max(np.abs(err - g64) - U * np.abs(l64) / 4) <= 2.0 ** -23 + 2 * U
        # uint8 error (computed in Q24 integers): its range within 2^-24 of
        # the float error's, and within one step of the float64 error
        # quantized the same way while the step is >> 2^-23 (here >= 7.8e-7:
        # an error range at least 2e-4 wide; BCE errors span up to (-1, 1))
        for lo, hi in ((-1.0, 1.0), (-0.01, 0.02), (-1e-4, 1e-4)):
            eqp = GQ.new_qp(lo, hi)
            q8, st8 = GL.bce_sigmoid_q(q, s, z, t, eqp.copy())
            assert abs(float(st8[1]) - float(err.min())) <= 2.0 ** -24
            assert abs(float(st8[2]) - float(err.max())) <= 2.0 ** -24
            assert st8[0] == st[0]
            se, ze = float(eqp[GQ.SCALE]), int(eqp[GQ.ZERO])
            q64 = np.clip(np.floor(np.clip(g64 / se, -1024, 1024) + 0.5) + ze, 0, 255)
            assert np.max(np.abs(q8.astype(np.int64) - q64)) <= 1, (k, lo, hi)


def test_softmax_ce_golden_vs_float64():
    rng = np.random.default_rng(4)
    for k in range(200):
        c = int(rng.choice([2, 3, 10, 100]))
        l = rng.normal(0, float(np.exp(rng.uniform(-2, 4))), c).astype(np.float32)
        lab = int(rng.integers(0, c))
        pred, err, st = GL.softmax_ce(l, lab)
        loss64, g64 = GL.softmax_ce_ref(l, lab)
        assert pred == int(np.argmax(l))
        # exp terms <= 1.03 ulp, sum of c terms in [1, c] (c u), log <= 0.86 ulp,
        # final subtraction: absolute error <= (c + 4) u (log S + |l_y - m|)
        m = float(np.max(l))
        assert abs(float(st[0]) - loss64) <= (c + 4) * U * (np.log(c) + abs(float(l[lab]) - m) + 1)
        # p = exp * (1/S): <= (c + 4) u relative; minus 1 at the label
        assert np.max(np.abs(err - g64)) <= (c + 6) * U
        assert abs(float(np.sum(err, dtype=np.float64))) <= (c + 6) * c * U


def test_latent_golden_vs_float64():
    rng = np.random.default_rng(5)
    for k in range(200):
        L = int(rng.choice([1, 10, 32]))
        h = np.concatenate([rng.normal(0, 2, L), rng.normal(-1, 4, L)]).astype(np.float32)
        eps = rng.normal(0, 1, L).astype(np.float32)
        dz = rng.normal(0, 0.3, L).astype(np.float32)
        beta = float(rng.choice([0.0, 0.5, 1.0, 3.0]))
        z, fst = GL.latent_forward(h, eps)
        dh, bst = GL.latent_backward(h, eps, dz, beta)
        z64, kl64, dh64 = GL.latent_ref(h, eps, dz, beta)
        mu = np.abs(h[:L].astype(np.float64))
        se = np.abs(z64 - h[:L])
        # sigma within 1.03 ulp, product and sum: <= 4u of the operands
        assert np.all(np.abs(z - z64) <= 4 * U * (mu + se) + 1e-45)
        lv = np.clip(h[L:].astype(np.float64), -16, 16)
        mag = np.sum(1 + np.abs(lv) + mu * mu + np.exp(lv))
        assert abs(float(fst[0]) - kl64) <= (L + 4) * U * mag
        assert fst[0] == bst[0]
        g = np.abs(dz.astype(np.float64))
        tol = 4 * U * np.concatenate([g + beta * mu, g * se + beta * (np.exp(lv) + 1)])
        assert np.all(np.abs(dh - dh64) <= tol + 1e-45), k


# ---- finite differences --------------------------------------------------------------------------

def test_bce_gradient_finite_difference():
    rng = np.random.default_rng(6)
    for _ in range(10):
        n = 12
        l = rng.normal(0, 3, n).astype(np.float32)
        t = rng.integers(0, 256, n).astype(np.uint8)
        err, _ = GL.bce_sigmoid(l, t)
        fd = GL.finite_diff(lambda v: GL.bce_ref(v, t)[0], l.astype(np.float64))
        assert np.max(np.abs(fd - err)) < 1e-6


def test_softmax_ce_gradient_finite_difference():
    rng = np.random.default_rng(7)
    for _ in range(10):
        c = 10
        l = rng.normal(0, 3, c).astype(np.float32)
        lab = int(rng.integers(0, c))
        _, err, _ = GL.softmax_ce(l, lab)
        fd = GL.finite_diff(lambda v: GL.softmax_ce_ref(v, lab)[0], l.astype(np.float64))
        assert np.max(np.abs(fd - err)) < 1e-6


def test_latent_gradient_finite_difference():
    rng = np.random.default_rng(8)
    for _ in range(10):
        L = 6
        h = np.concatenate([rng.normal(0, 1.5, L), rng.uniform(-6, 3, L)]).astype(np.float32)
        eps = rng.normal(0, 1, L).astype(np.float32)
        dz = rng.normal(0, 0.5, L).astype(np.float32)
        beta = float(rng.choice([0.0, 0.7, 2.0]))
        dh, _ = GL.latent_backward(h, eps, dz, beta)
        fd = GL.finite_diff(lambda v: GL.latent_objective_ref(v, eps, dz, beta), h.astype(np.float64))
        assert np.max(np.abs(fd - dh) / (1 + np.abs(fd))) < 1e-5


def test_latent_clamp_is_straight_through():
    """Outside [-16, 16] the logvar gradient is the one at the clamp edge (the
    KL term keeps pulling logvar back), and z uses the clamped value."""
    h = np.array([0.5, 0.5, 40.0, 16.0], np.float32)       # mu = [.5, .5], logvar = [40, 16]
    eps = np.array([0.3, 0.3], np.float32)
    dz = np.array([0.1, 0.1], np.float32)
    z, _ = GL.latent_forward(h, eps)
    dh, _ = GL.latent_backward(h, eps, dz, 1.0)
    assert z[0] == z[1] and dh[2] == dh[3] and dh[2] > 0
    h2 = np.array([0.5, 0.5, -40.0, -16.0], np.float32)
    dh2, _ = GL.latent_backward(h2, eps, dz, 1.0)
    assert dh2[2] == dh2[3] and dh2[2] < 0


# ---- the Gaussian stream ------------------------------------------------------------------------

def test_rng_normal_statistics():
    st, v = GL.rng_normal(GL.rng_seed(3), 200000)
    v = v.astype(np.float64)
    assert abs(v.mean()) < 0.01 and abs(v.std() - 1) < 0.01
    assert abs(np.mean(np.abs(v) < 1) - 0.682689) < 0.005
    assert abs(np.mean(v ** 4) - 3) < 0.1                # kurtosis of a normal
    assert abs(np.corrcoef(v[:-1], v[1:])[0, 1]) < 0.01   # consecutive draws
    # odd n drops the second draw of the last pair
    s1, a = GL.rng_normal(GL.rng_seed(9), 3)
    s2, b = GL.rng_normal(GL.rng_seed(9), 4)
    assert s1 == s2 and np.array_equal(a, b[:3])


# ---- sanitizers: the plain C kernels on random and extreme input -------------------------

SANITIZE_DRIVER = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "quant.h"
#include "mathf.h"
#include "rng.h"
#include "loss.h"
#include "latent.h"

static uint32_t g = 12345u;
static uint32_t nx(void) { return qt_rng_next(&g); }
static float rf(void) {
    /* mostly ordinary values, sometimes any bit pattern (NaN, inf, subnormal) */
    uint32_t k = nx() % 8;
    if (k == 0) return qt_u2f(nx());
    float v = (float)((int32_t)(nx() >> 8) - 0x800000) * (1.0f / 8388608.0f);
    return k == 1 ? v * 1e30f : v * 20.0f;
}
static void rqp(float *qp) {
    memset(qp, 0, QT_QP_LEN * sizeof(float));
    qp[QT_QP_SCALE] = (nx() % 4 == 0) ? qt_u2f((nx() % 0x7f000000u) + 0x00800000u) : 0.05f;
    qp[QT_QP_ZERO] = (float)(nx() % 256);
    qp[QT_QP_ALPHA] = 0.1f;
}
int main(void) {
    static uint8_t q[1024], t[1024], eq[1024];
    static float f[1024], ef[1024], lut[QT_BCE_LUT_LEN], eps[64], st[3];
    float xq[QT_QP_LEN], oq[QT_QP_LEN];
    for (int it = 0; it < 3000; it++) {
        size_t n = 1 + nx() % 1024;
        for (size_t i = 0; i < n; i++) { q[i] = (uint8_t)nx(); t[i] = (uint8_t)nx(); f[i] = rf(); }
        rqp(xq); rqp(oq);
        qt_lin_t inq = { q, NULL, xq[QT_QP_SCALE], (int32_t)xq[QT_QP_ZERO] };
        qt_lin_t inf = { NULL, f, 1.0f, 0 };
        qt_lout_t outq = { eq, NULL, oq };
        qt_lout_t outf = { NULL, ef, NULL };
        qt_bce_sigmoid(&inq, t, n, (it & 1) ? &outq : &outf, st, (it & 2) ? lut : NULL);
        qt_bce_sigmoid(&inf, t, n, (it & 1) ? &outq : &outf, st, NULL);
        size_t c = 1 + nx() % 64;
        qt_softmax_ce(&inq, c, (int32_t)(nx() % c), &outq, st);
        qt_softmax_ce(&inf, c, (int32_t)(nx() % c), &outf, st);
        size_t L = 1 + nx() % 32;
        uint32_t s = nx();
        for (size_t i = 0; i < L; i++) eps[i] = rf();
        qt_latent_forward(&inq, L, (it & 4) ? &s : NULL, eps, &outq, st);
        qt_latent_forward(&inf, L, &s, eps, &outf, st);
        qt_lin_t dzq = { q + 100, NULL, 0.01f, 128 };
        qt_latent_backward(&inq, L, eps, &dzq, rf() < 0 ? 0.0f : 1.0f, &outq, st);
        qt_latent_backward(&inf, L, eps, &inf, 2.0f, &outf, st);
        uint32_t s0 = 0;
        qt_rng_normal(&s0, eps, L);
        volatile float sink = qt_expf(rf()) + qt_logf(rf()) + qt_log1pf(rf()) + qt_sqrtf(rf()) + qt_sigmoidf(rf());
        (void)sink;
    }
    printf("ok\n");
    return 0;
}
"""


def test_kernels_under_sanitizers(tmp_path):
    """ASan + UBSan (incl. float-to-int overflow) over random and extreme
    input (any float bit pattern, huge scales, NaN/inf logits)."""
    if not CC:
        pytest.skip("no host C compiler")
    drv = tmp_path / "san.c"
    drv.write_text(SANITIZE_DRIVER)
    srcs = [os.path.join(KERNELS, f) for f in ("mathf.c", "rng.c", "quant.c", "loss_bce.c", "loss_ce.c", "latent.c")]
    for flag in (0, 1):      # float path (x64, M4) and integer path (M0, M3) of loss_io.h
        exe = tmp_path / ("san%d" % flag)
        cmd = [CC, "-O1", "-g", "-std=c99", "-ffp-contract=off", "-Wall", "-Wextra", "-Wshadow",
               "-Wdouble-promotion", "-Werror", "-Wno-unused-parameter", "-DQT_LOSS_INT_FLOAT=%d" % flag,
               "-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
               "-I" + KERNELS, str(drv)] + srcs + ["-o", str(exe)]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0 and "sanitize" in r.stdout and "unrecognized" in r.stdout:
            pytest.skip("compiler without sanitizers")
        assert r.returncode == 0, r.stdout
        r = subprocess.run([str(exe)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        assert r.returncode == 0 and "ok" in r.stdout, r.stdout[-3000:]


# ---- the integer (no-FPU) and float paths of the output writer agree -------------------------

PUT_DRIVER = r"""
#include <stddef.h>
#include <stdint.h>
#include "loss_io.h"
/* write n values through qt_lw_put; mm <- [vmin, vmax] */
void put_all(const float *v, size_t n, float scale, int32_t zero, uint8_t *q, float *mm) {
    float qp[QT_QP_LEN] = {0};
    qp[QT_QP_SCALE] = scale;
    qp[QT_QP_ZERO] = (float)zero;
    qt_lout_t o = { q, NULL, qp };
    qt_lw_t w;
    qt_lw_init(&w, &o);
    for (size_t i = 0; i < n; i++) {
        qt_lw_put(&w, i, v[i]);
    }
    mm[0] = w.vmin;
    mm[1] = w.vmax;
}
void floors(const float *x, size_t n, int32_t *a, int32_t *b) {
    for (size_t i = 0; i < n; i++) {
        a[i] = qt_floor_f32(x[i]);
        b[i] = qt_floor_bits(x[i]);
    }
}
"""


def test_loss_writer_integer_path_equals_float_path(tmp_path):
    """QT_LOSS_INT_FLOAT=1 (what Cortex-M0/M3 builds use) and =0 (x64, M4)
    must give the same uint8 values and the same min/max bits for any input."""
    if not CC:
        pytest.skip("no host C compiler")
    src = tmp_path / "put.c"
    src.write_text(PUT_DRIVER)
    libs = []
    for flag in (0, 1):
        so = tmp_path / ("put%d.so" % flag)
        subprocess.run([CC, "-O2", "-std=c99", "-ffp-contract=off", "-shared", "-fPIC", "-Wall", "-Werror",
                        "-DQT_LOSS_INT_FLOAT=%d" % flag, "-I" + KERNELS, str(src),
                        os.path.join(KERNELS, "quant.c"), os.path.join(KERNELS, "mathf.c"), "-o", str(so)],
                       check=True)
        libs.append(ctypes.CDLL(str(so)))
    rng = np.random.default_rng(17)
    vp = ctypes.c_void_p
    # floor from the bits == qt_floor_f32 on |x| < 2^23 (dense near the halves)
    x = np.concatenate([rng.uniform(-1100, 1100, 2_000_000), np.arange(-2100, 2100) + 0.5,
                        np.arange(-2100, 2100), rng.uniform(-1, 1, 100000),
                        rng.uniform(-8e6, 8e6, 100000)]).astype(np.float32)
    x = np.concatenate([x, -x, np.nextafter(x, np.float32(np.inf)), np.array([0.0, -0.0], np.float32)])
    a = np.empty(x.size, np.int32)
    b = np.empty(x.size, np.int32)
    libs[1].floors(x.ctypes.data_as(vp), ctypes.c_size_t(x.size), a.ctypes.data_as(vp), b.ctypes.data_as(vp))
    assert np.array_equal(a, b), x[a != b][:5]
    assert np.array_equal(a, np.floor(x).astype(np.int32))
    special = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45], np.float32)
    for k in range(3000):
        n = int(rng.integers(1, 40))
        kind = k % 4
        if kind == 0:
            v = rng.uniform(-1, 1, n).astype(np.float32)
        elif kind == 1:
            v = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
        elif kind == 2:
            v = rng.choice(special, n)
        else:
            v = (rng.integers(-600, 600, n) * np.float32(0.5) * np.float32(2 / 255)).astype(np.float32)
        scale = float(rng.choice([2 / 255, 1e-3, 1e-30, 1e30, float(rng.uniform(1e-4, 1))]))
        zero = int(rng.integers(0, 256))
        res = []
        for lib in libs:
            q = np.zeros(n, np.uint8)
            mm = np.zeros(2, np.float32)
            lib.put_all(v.ctypes.data_as(vp), ctypes.c_size_t(n), ctypes.c_float(scale), ctypes.c_int32(zero),
                        q.ctypes.data_as(vp), mm.ctypes.data_as(vp))
            res.append((q, mm.view(np.uint32)))
        assert np.array_equal(res[0][0], res[1][0]), (k, v, res)
        assert np.array_equal(res[0][1], res[1][1]), (k, v, res)
