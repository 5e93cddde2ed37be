"""Golden model of the output heads, the latent layer, the Gaussian generator and
the portable float math (natmod/kernels/mathf.c, rng.c, loss_bce.c, loss_ce.c,
latent.c).

Two levels:

* Bit-exact mirrors (``expf``, ``logf``, ..., ``bce_sigmoid``, ``softmax_ce``,
  ``latent_forward``, ``latent_backward``, ``rng_normal``): every float step is
  one numpy float32 operation in the same order as the C code, sums are
  sequential (``np.add.accumulate``), integers are Python ints.  The C code
  uses only correctly rounded IEEE operations and no FMA, so the native module
  gives these exact bits on x64, armv6m and armv7emsp.
* float64 references (``*_ref``): the textbook formulas in float64 with numpy's
  own exp/log, used to check the mirrors' accuracy and, by finite
  differences, that the gradients are the derivatives of the losses.

Tensors enter the kernels as float32 values: a uint8 tensor q with qparams
(s, z) is first dequantized exactly as the C code does (``dequant``).
"""
import numpy as np

from . import quant as GQ

F = np.float32
U32 = np.uint32


def _f(bits):
    return np.array([bits], U32).view(np.float32)[0]


# Constants with the exact bits the C compiler produces (mathf.c comments).
LN2_HI = _f(0x3f317200)
LN2_LO = _f(0x35bfbe8e)
LOG2E = _f(0x3fb8aa3b)
E2, E3, E4, E5, E6, E7 = (_f(b) for b in (0x3f000000, 0x3e2aaaab, 0x3d2aaaab,
                                          0x3c088889, 0x3ab60b61, 0x39500d01))
L1, L2, L3, L4 = (_f(b) for b in (0x3f2aaaab, 0x3ecccccd, 0x3e924925, 0x3e638e39))
L5, L6, L7 = (_f(b) for b in (0x3e3a2e8c, 0x3e1d89d9, 0x3e088889))
EXP_HI = _f(0x42b17217)          # 88.7228317: largest x with finite exp(x)
FLT_MAX = _f(0x7f7fffff)
INF = F(np.inf)
LOGVAR_MIN, LOGVAR_MAX = F(-16.0), F(16.0)
RNG_ZERO_STATE = 0x9e3779b9

# vmath op codes (bind_loss.c)
VM_EXP, VM_LOG, VM_LOG1P, VM_SQRT, VM_SIGMOID, VM_LOG1P_UNIT = range(6)


def _a32(x):
    return np.array(x, dtype=np.float32, copy=True, ndmin=1)


def _pow2(k):
    """2**k as float32 for integer arrays k in [-126, 127]."""
    return ((np.asarray(k, np.int64) + 127).astype(U32) << U32(23)).view(np.float32)


# ---- portable float math (mathf.c) -------------------------------------------

def expf(x):
    """qt_expf, elementwise on float32 (returns a float32 array)."""
    x = _a32(x)
    with np.errstate(all="ignore"):
        xc = np.clip(x, F(-104.0), F(89.0))
        xc = np.where(np.isnan(xc), F(0), xc)
        t = xc * LOG2E
        k = (t + np.where(t >= F(0), F(0.5), F(-0.5))).astype(np.int32)
        kf = k.astype(np.float32)
        r = (xc - kf * LN2_HI) - kf * LN2_LO
        q = E7
        for c in (E6, E5, E4, E3, E2):
            q = q * r + c
        p = F(1) + (r + (r * r) * q)
        k64 = k.astype(np.int64)
        normal = p * _pow2(np.clip(k64, -126, 127))
        big = (p * _pow2(np.full_like(k64, 127))) * F(2)
        small = (p * _pow2(np.clip(k64 + 64, -126, 127))) * _pow2(np.full_like(k64, -64))
        res = np.where(k64 > 127, big, np.where(k64 < -126, small, normal))
        res = np.where(x < F(-104.0), F(0), res)
        res = np.where(x > EXP_HI, INF, res)
        res = np.where(np.isnan(x), x, res)
    return res.astype(np.float32)


def logf(x):
    """qt_logf, elementwise on float32."""
    x = _a32(x)
    ix = x.view(U32).astype(np.int64)
    with np.errstate(all="ignore"):
        sub = (ix > 0) & (ix < 0x00800000)
        xs = np.where(sub, x * F(33554432.0), x)
        ix2 = xs.view(U32).astype(np.int64)
        e = np.where(sub, -25, 0) + ((ix2 >> 23) & 0x1ff) - 127
        mb = ix2 & 0x7fffff
        big = mb > 0x3504f3
        m = np.where(big, mb | 0x3f000000, mb | 0x3f800000).astype(U32).view(np.float32)
        e = e + big
        f = m - F(1)
        s = f / (F(2) + f)
        z = s * s
        R = z * (L1 + z * (L2 + z * (L3 + z * L4)))
        hfsq = (F(0.5) * f) * f
        ef = e.astype(np.float32)
        res = ef * LN2_HI - ((hfsq - (s * (hfsq + R) + ef * LN2_LO)) - f)
        absb = ix & 0x7fffffff
        res = np.where(ix == 0, -INF, res)
        neg = ix >= 0x80000000
        res = np.where(neg & (absb == 0), -INF, res)
        res = np.where(neg & (absb != 0), F(np.nan), res)
        res = np.where(ix == 0x7f800000, INF, res)
        res = np.where(absb > 0x7f800000, x, res)
    return res.astype(np.float32)


def log1pf(x):
    """qt_log1pf."""
    x = _a32(x)
    with np.errstate(all="ignore"):
        u = F(1) + x
        res = logf(u) * (x / (u - F(1)))
        res = np.where(u > FLT_MAX, u, res)
        res = np.where(u == F(1), x, res)
    return res.astype(np.float32)


def log1p_unitf(x):
    """qt_log1p_unitf (log(1+x) for x in [0, 1])."""
    f = _a32(x)
    with np.errstate(all="ignore"):
        s = f / (F(2) + f)
        z = s * s
        R = z * (L1 + z * (L2 + z * (L3 + z * (L4 + z * (L5 + z * (L6 + z * L7))))))
        hfsq = (F(0.5) * f) * f
        return (f - (hfsq - s * (hfsq + R))).astype(np.float32)


def sqrtf(x):
    """qt_sqrtf is correctly rounded, so it is IEEE sqrt (NaN for x < 0)."""
    with np.errstate(all="ignore"):
        return np.sqrt(_a32(x))


def sigmoidf(x):
    """qt_sigmoidf."""
    x = _a32(x)
    with np.errstate(all="ignore"):
        e = expf(-np.abs(x))
        d = F(1) + e
        return np.where(x >= F(0), F(1) / d, e / d).astype(np.float32)


VMATH = {VM_EXP: expf, VM_LOG: logf, VM_LOG1P: log1pf, VM_SQRT: sqrtf, VM_SIGMOID: sigmoidf,
         VM_LOG1P_UNIT: log1p_unitf}


def fsum(a):
    """Sequential float32 sum ((0 + a0) + a1) + ..., as the C loops do."""
    a = np.asarray(a, np.float32)
    if a.size == 0:
        return F(0)
    return F(np.add.accumulate(a, dtype=np.float32)[-1])


# ---- tensors in and out (loss_io.h) --------------------------------------------

def dequant(q, s, z):
    """A uint8 input as the kernels see it: float(q - z) * s in float32."""
    return (np.asarray(q, np.int64) - int(z)).astype(np.float32) * F(s)


def quant_out(v, qp):
    """qt_lw_put for a uint8 output with qparams qp: clamp(floor(v/s + 0.5) + z)."""
    v = _a32(v)
    inv = F(1) / F(qp[GQ.SCALE])
    with np.errstate(all="ignore"):
        u = v * inv
        u = np.where(u > F(-1024.0), u, F(-1024.0))
        u = np.where(u > F(1024.0), F(1024.0), u)
        k = np.floor(u + F(0.5)).astype(np.int64) + int(qp[GQ.ZERO])
    return np.clip(k, 0, 255).astype(np.uint8)


def _first_extreme(v, fn):
    """min/max as qt_lw_put keeps them: v[0] starts, a later value replaces
    it only if strictly smaller (larger), so NaN never does and of 0.0 and
    -0.0 the first one stays (np.min/np.max may return either)."""
    v = v.ravel()
    if np.isnan(v[0]):
        return F(v[0])
    ok = v[~np.isnan(v)]
    return F(ok[np.argmax(ok == fn(ok))])


def _put(v, qp):
    """Output tensor and its (min, max); records the range in qp if given."""
    v = _a32(v)
    lo, hi = _first_extreme(v, np.min), _first_extreme(v, np.max)
    if qp is None:
        return v, lo, hi
    GQ.qp_observe(qp, lo, hi)
    return quant_out(v, qp), lo, hi


# ---- heads ---------------------------------------------------------------------

INV255 = F(F(1.0) / F(255.0))


def _bce_point(l):
    """sigmoid(l) and log1p(exp(-|l|)) as qt_bce_point (log1p_unitf)."""
    with np.errstate(all="ignore"):
        e = expf(-np.abs(l))
        r = F(1) / (F(1) + e)
        return np.where(l >= F(0), r, e * r), log1p_unitf(e)


def bce_sigmoid(logit, target, eqp=None):
    """qt_bce_sigmoid on float32 logits and a uint8 target.  Returns (err,
    stats): err float32, or uint8 if eqp (a qparams record, updated in place
    like the C code) is given; stats = [loss, min err, max err] (float32)."""
    l = _a32(logit)
    t = np.asarray(target, np.uint8).astype(np.float32) * INV255
    with np.errstate(all="ignore"):
        sig, lp = _bce_point(l)
        pos = np.where(l > F(0), l, F(0))
        terms = (pos - l * t) + lp
        err = (sig - t).astype(np.float32)
    out, lo, hi = _put(err, eqp)
    return out, np.array([fsum(terms), lo, hi], np.float32)


# ---- uint8 logits: sigmoid and softplus in integers (loss_bce.c) ----------------

Q30_ONE = 1 << 30
Q30_LOG2E = 1549082005            # round(log2(e) 2^30)
Q30_LN2 = 744261118               # round(ln(2) 2^30)
BCE_XMAX = 1 << 29                # |l| = 32 in Q24
EXP2_Q30 = [round(2.0 ** 30 * 2.0 ** (-j / 16)) for j in range(16)]
INV1P16_Q30 = [-(-(Q30_ONE * 16) // (16 + j)) for j in range(17)]        # ceil
LN1P16_Q30 = [round(np.log1p(j / 16) * 2.0 ** 30) for j in range(17)]
RECIP_Q30 = [round(2.0 ** 30 / k) for k in range(2, 7)]


def _scale_q24(s):
    """qt_scale_q24: s = m 2^(sh - 24) from the float32 bits of s."""
    b = int(np.array([s], np.float32).view(U32)[0])
    ef = (b >> 23) & 0xff
    m = (b & 0x7fffff) | 0x800000 if ef else b & 0x7fffff
    return m, (ef - 150 if ef else -149) + 24


def _logit_q24(a, m, sh):
    p = a * m
    if p == 0:
        return 0
    if sh >= 0:
        return BCE_XMAX if (sh >= 30 or p > (BCE_XMAX >> sh)) else p << sh
    x = 0 if sh <= -32 else p >> -sh
    return min(x, BCE_XMAX)


def _mul_q30(a, b):
    return (a * b) >> 30


def _exp_neg_q30(x):
    y = _mul_q30(x, Q30_LOG2E)
    k = y >> 24
    if k > 30:
        return 0
    t = _mul_q30((y & 0xfffff) << 6, Q30_LN2)
    p = RECIP_Q30[4] - _mul_q30(t, Q30_ONE // 24)
    p = (Q30_ONE >> 1) - _mul_q30(t, p)
    p = Q30_ONE - _mul_q30(t, p)
    p = Q30_ONE - _mul_q30(t, p)
    return _mul_q30(EXP2_Q30[(y >> 20) & 15], p) >> k


def _ln1p_q24(e):
    j = e >> 26
    r = _mul_q30(Q30_ONE + e, INV1P16_Q30[j]) - Q30_ONE
    p = RECIP_Q30[3] - _mul_q30(r, RECIP_Q30[4])
    for c in (RECIP_Q30[2], RECIP_Q30[1], RECIP_Q30[0], Q30_ONE):
        p = c - _mul_q30(r, p)
    return (LN1P16_Q30[j] + _mul_q30(r, p) + 32) >> 6


def bce_int_point(a, s):
    """qt_bce_int_point: (sigmoid(+a s), softplus term log1p(exp(-a s))) in
    Q24 integers for the logit magnitude a (0..255) at scale s; the sigmoid
    of -a s is 2^24 minus the first."""
    m, sh = _scale_q24(s)
    sp = _ln1p_q24(_exp_neg_q30(_logit_q24(int(a), m, sh)))
    return (_exp_neg_q30(sp) + 32) >> 6, sp


def bce_int_tables(s, z):
    """Q24 sigmoid and softplus of every logit value q = 0..255 (int64 arrays)."""
    sig = np.zeros(256, np.int64)
    lp = np.zeros(256, np.int64)
    for q in range(256):
        d = q - int(z)
        sp, l = bce_int_point(abs(d), s)
        sig[q] = sp if d >= 0 else (1 << 24) - sp
        lp[q] = l
    return sig, lp


def bce_sigmoid_q(q, s, z, target, eqp=None):
    """qt_bce_sigmoid on uint8 logits q with scale s, zero point z: sigmoid
    and softplus terms in Q24 integers (bce_int_point), the linear part of
    the loss an exact integer sum, both scaled once (loss_bce.c)."""
    q = np.asarray(q, np.int64)
    d = q - int(z)
    tq = np.asarray(target, np.uint8).astype(np.int64)
    lin = int(np.sum(255 * np.maximum(d, 0) - d * tq))
    sigt, lpt = bce_int_tables(s, z)
    sq = sigt[q]
    lsum = int(np.sum(lpt[q]))
    loss = F(F(F(lsum) * INV_Q24) + F(F(lin) * F(F(s) / F(255.0))))
    if eqp is None:      # float error (mixed mode): sig_q24 2^-24 - t in float32
        with np.errstate(all="ignore"):
            err = (sq.astype(np.float32) * INV_Q24 - tq.astype(np.float32) * INV255).astype(np.float32)
        out, lo, hi = _put(err, None)
    else:
        out, lo, hi = _bce_err_q24(sq, tq, eqp)
    return out, np.array([loss, lo, hi], np.float32)


Q24 = F(2.0 ** 24)
INV_Q24 = F(2.0 ** -24)


def _bce_err_q24(sq, tq, qp):
    """The uint8 error of uint8 logits in integers (loss_bce.c): v =
    sig_q24 - round(t 2^24) (t = pixel / 255, rounded exactly),
    range = [min v, max v] 2^-24, uint8 = clamp(round(v (1/s_e) 2^-24) + z_e,
    0, 255) (qt_requant_u8).  Returns (uint8 error, lo, hi)."""
    v = np.asarray(sq, np.int64) - (tq * 65793 + (tq >> 7))
    lo, hi = F(F(int(v.min())) * INV_Q24), F(F(int(v.max())) * INV_Q24)
    GQ.qp_observe(qp, lo, hi)
    inv = F(F(1) / F(qp[GQ.SCALE]))
    return GQ.requant_u8(v, F(inv * INV_Q24), int(qp[GQ.ZERO])), lo, hi


def softmax_ce(logit, label, eqp=None):
    """qt_softmax_ce.  Returns (pred, err, stats [loss, min err, max err])."""
    l = _a32(logit)
    pred = int(np.argmax(l))
    m = l[pred]
    with np.errstate(all="ignore"):
        ex = expf(l - m)
        s = fsum(ex)
        inv = F(1) / s
        p = ex * inv
        p[label] = p[label] - F(1)
        loss = logf(s)[0] - (l[label] - m)
    out, lo, hi = _put(p, eqp)
    return pred, out, np.array([loss, lo, hi], np.float32)


# ---- latent (latent.c) -----------------------------------------------------------

def _split(h):
    h = _a32(h)
    L = h.size // 2
    mu = h[:L]
    lv = np.clip(h[L:], LOGVAR_MIN, LOGVAR_MAX)
    return mu, lv


def latent_forward(h, eps, zqp=None):
    """qt_latent_forward with given eps (float32, L).  Returns (z, stats
    [KL, min z, max z])."""
    mu, lv = _split(h)
    eps = _a32(eps)
    with np.errstate(all="ignore"):
        sigma = expf(F(0.5) * lv)
        z = mu + sigma * eps
        acc = fsum(((F(1) + lv) - mu * mu) - expf(lv))
    out, lo, hi = _put(z, zqp)
    return out, np.array([F(-0.5) * acc, lo, hi], np.float32)


def latent_backward(h, eps, dz, beta, dhqp=None):
    """qt_latent_backward.  Returns (dh [dmu, dlogvar], stats [KL, min, max])."""
    mu, lv = _split(h)
    eps, g, beta = _a32(eps), _a32(dz), F(beta)
    with np.errstate(all="ignore"):
        dmu = g + beta * mu
        ev = expf(lv)
        sigma = expf(F(0.5) * lv)
        dlv = F(0.5) * ((g * sigma) * eps + beta * (ev - F(1)))
        acc = fsum(((F(1) + lv) - mu * mu) - ev)
    out, lo, hi = _put(np.concatenate([dmu, dlv]), dhqp)
    return out, np.array([F(-0.5) * acc, lo, hi], np.float32)


# ---- random numbers (rng.c) --------------------------------------------------------

def rng_seed(seed):
    """qt_rng_seed: lowbias32 hash of the low 32 bits of seed, never 0."""
    x = seed & 0xffffffff
    x ^= x >> 16
    x = (x * 0x7feb352d) & 0xffffffff
    x ^= x >> 15
    x = (x * 0x846ca68b) & 0xffffffff
    x ^= x >> 16
    return x if x else RNG_ZERO_STATE


def _xorshift_stream(state, n):
    out = np.empty(n, np.int64)
    x = state
    for i in range(n):
        x ^= (x << 13) & 0xffffffff
        x ^= x >> 17
        x ^= (x << 5) & 0xffffffff
        out[i] = x
    return out


def rng_normal(state, n):
    """qt_rng_normal: returns (new_state, float32 array of n draws)."""
    if state == 0:
        state = RNG_ZERO_STATE
    pairs = (n + 1) // 2
    out = np.zeros(2 * pairs, np.float32)
    done = 0
    while done < pairs:
        need = pairs - done
        raw = _xorshift_stream(state, 2 * (need + need // 2 + 8))
        uv = ((raw >> 8) - 0x800000).astype(np.float32) * F(1.0 / 8388608.0)
        u, v = uv[0::2], uv[1::2]
        s = u * u + v * v
        ok = np.nonzero((s < F(1)) & (s != F(0)))[0][:need]
        with np.errstate(all="ignore"):
            f = sqrtf((F(-2) * logf(s[ok])) / s[ok])
        out[2 * done: 2 * (done + ok.size): 2] = u[ok] * f
        out[2 * done + 1: 2 * (done + ok.size): 2] = v[ok] * f
        done += ok.size
        # state after the last pair used (or after the whole chunk)
        last = (ok[-1] if (ok.size == need and ok.size) else s.size - 1)
        state = int(raw[2 * last + 1])
    return state, out[:n]


# ---- float64 references ---------------------------------------------------------------

def bce_ref(logit, target):
    """(loss, grad) in float64: sum softplus(l) - t l, and sigmoid(l) - t."""
    l = np.asarray(logit, np.float64)
    t = np.asarray(target, np.float64) / 255.0
    loss = np.sum(np.logaddexp(0.0, l) - t * l)
    return loss, 1.0 / (1.0 + np.exp(-l)) - t


def softmax_ce_ref(logit, label):
    l = np.asarray(logit, np.float64)
    m = np.max(l)
    lse = m + np.log(np.sum(np.exp(l - m)))
    p = np.exp(l - lse)
    g = p.copy()
    g[label] -= 1.0
    return lse - l[label], g


def latent_ref(h, eps, dz, beta):
    """float64 (z, KL, dh) for the loss dz . z + beta KL (the clamp applied)."""
    h = np.asarray(h, np.float64)
    L = h.size // 2
    mu, lv = h[:L], np.clip(h[L:], float(LOGVAR_MIN), float(LOGVAR_MAX))
    eps, g = np.asarray(eps, np.float64), np.asarray(dz, np.float64)
    sigma = np.exp(0.5 * lv)
    z = mu + sigma * eps
    kl = -0.5 * np.sum(1.0 + lv - mu * mu - np.exp(lv))
    dh = np.concatenate([g + beta * mu, 0.5 * (g * sigma * eps + beta * (np.exp(lv) - 1.0))])
    return z, kl, dh


def latent_objective_ref(h, eps, dz, beta):
    """The scalar whose gradient latent_backward returns: dz . z(h) + beta KL(h)."""
    z, kl, _ = latent_ref(h, eps, dz, beta)
    return float(np.dot(np.asarray(dz, np.float64), z) + beta * kl)


def finite_diff(fun, x, h=1e-6):
    """Central differences of a scalar float64 function at x."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += h
        xm.flat[i] -= h
        g.flat[i] = (fun(xp) - fun(xm)) / (2 * h)
    return g
