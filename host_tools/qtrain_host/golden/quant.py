"""Golden model of natmod/kernels/quant.c (bit-exact).

Every float step is one numpy float32 operation in the same order as the C
code, so results match the native module bit for bit on every arch.

qparams record (array('f', 8)):
  [scale, zero, range_min, range_max, alpha, obs_min, obs_max, obs_n]
Fixed-point multiplier: real m == mult * 2**-shift exactly (mult in
[2**30, 2**31), shift 1..62), applied as (x * mult + 2**(shift-1)) >> shift.
"""
import numpy as np

F = np.float32
QP_LEN = 8
SCALE, ZERO, RMIN, RMAX, ALPHA, OBS_MIN, OBS_MAX, OBS_N = range(8)
MIN_RANGE = F(1.0e-6)


def floor_f32(x):
    """qt_floor_f32: int(trunc) then -1 if above (|x| < 2**31)."""
    x = F(x)
    i = int(x)
    if F(i) > x:
        i -= 1
    return i


def round_f32(x):
    """qt_round_f32: floor(x + 0.5) in float32."""
    return floor_f32(F(x) + F(0.5))


def quant_params(fmin, fmax):
    """METHOD 1: (s, z) from [fmin, fmax] widened to include 0 (float32 s, int z)."""
    fmin, fmax = F(fmin), F(fmax)
    if fmin > 0:
        fmin = F(0)
    if fmax < 0:
        fmax = F(0)
    w = F(fmax - fmin)
    if not (w >= MIN_RANGE):
        w = MIN_RANGE
    s = F(w / F(255.0))
    zf = F(-fmin / s)
    z = 255 if zf > F(300.0) else round_f32(zf)
    return s, min(255, max(0, z))


def quantize_multiplier(real):
    """qt_fixmul_from_f32: float32 real -> (mult, shift), real = mult * 2**-shift."""
    b = int(np.array([real], np.float32).view(np.uint32)[0])
    e = (b >> 23) & 0xff
    if (b >> 31) or e == 0 or e == 0xff:
        return 0, 1
    mult = ((b & 0x7fffff) | 0x800000) << 7
    shift = 157 - e
    if shift < 1:
        return 0x7fffffff, 1
    if shift > 62:
        d = shift - 62
        mult = 0 if d > 31 else mult >> d
        shift = 62
    return mult, shift


def requantize(acc, mult, shift):
    """round(acc * mult * 2**-shift), halves up, as int64 (qt_fixmul_apply)."""
    acc = np.asarray(acc, np.int64)
    return (acc * np.int64(mult) + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)


def fixmul(acc, real):
    return requantize(acc, *quantize_multiplier(real))


def requant_u8(acc, real, z, lo=0):
    """qt_requant_u8: clamp(round(acc * real) + z, lo, 255)."""
    return np.clip(fixmul(acc, real) + z, lo, 255).astype(np.uint8)


def new_qp(fmin, fmax, alpha=0.0):
    """A qparams record (np.float32[8]) for the range [fmin, fmax]."""
    qp = np.zeros(QP_LEN, np.float32)
    qp[RMIN], qp[RMAX], qp[ALPHA] = fmin, fmax, alpha
    qp[SCALE], qp[ZERO] = quant_params(fmin, fmax)
    return qp


def qp_observe(qp, rmin, rmax):
    rmin, rmax = F(rmin), F(rmax)
    if qp[OBS_N] > 0:
        rmin = min(rmin, qp[OBS_MIN])
        rmax = max(rmax, qp[OBS_MAX])
    qp[OBS_MIN], qp[OBS_MAX] = rmin, rmax
    qp[OBS_N] = F(qp[OBS_N] + F(1))


def qp_update(qp):
    a = F(qp[ALPHA])
    if a > 0 and qp[OBS_N] > 0:
        b = F(F(1) - a)
        lo = F(F(b * qp[RMIN]) + F(a * qp[OBS_MIN]))
        hi = F(F(b * qp[RMAX]) + F(a * qp[OBS_MAX]))
        lo = min(lo, F(0))
        hi = max(hi, F(0))
        qp[RMIN], qp[RMAX] = lo, hi
        qp[SCALE], qp[ZERO] = quant_params(lo, hi)
    qp[OBS_MIN] = qp[OBS_MAX] = qp[OBS_N] = 0


def masked_finish(acc, mult, z, keep):
    """The mask-aware error finish (qt_conv_fin with a mask, conv cores and
    Dense): where keep, clamp(requantize(acc) + z, 0, 255); elsewhere z (the
    receiving ReLU would zero it: not computed).  The range (for the
    moving average) is over the kept accumulators and 0, the value of every
    masked position: (0, 0) when nothing is kept."""
    keep = np.asarray(keep, bool)
    acc = np.asarray(acc, np.int64)
    y = np.clip(requantize(acc, *mult) + z, 0, 255).astype(np.uint8)
    y[~keep] = z
    kept = acc[keep]
    return y, (min(0, int(kept.min())) if kept.size else 0, max(0, int(kept.max())) if kept.size else 0)


def remap_u8(q, s_old, z_old, s_new, z_new):
    v = np.arange(256, dtype=np.int64)
    lut = requant_u8(v - z_old, F(F(s_old) / F(s_new)), z_new)
    return lut[np.asarray(q, np.uint8)]


def sqrt_f32(x):
    """qt_sqrt_f32: the correctly rounded float32 sqrt for x > 0, else 0."""
    x = F(x)
    if not (x > 0):
        return F(0)
    return np.sqrt(x)


def rng_next(state):
    """xorshift32: returns (new_state, value); value == new_state."""
    x = state & 0xffffffff
    x ^= (x << 13) & 0xffffffff
    x ^= x >> 17
    x ^= (x << 5) & 0xffffffff
    return x, x


def quantize(a, s, z):
    """Float -> uint8 for building test data (round half up like the kernels)."""
    return np.clip(np.floor(np.asarray(a, np.float64) / s + 0.5) + z, 0, 255).astype(np.uint8)


def dequantize(q, s, z):
    return (np.asarray(q, np.float64) - z) * float(s)
