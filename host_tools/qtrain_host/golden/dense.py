"""Golden model of the Dense kernels (natmod/kernels/dense*.c).

Shapes: x[n], w[m, n] (row i -> output i), y[m]; bias int32[m] with real
value s_b * b.  Every uint8 tensor comes with a qparams record (see quant.py).
uint8 functions are bit-exact mirrors of the C code.
"""
import numpy as np

from . import quant as Q

F = np.float32
INT32_MAX = 2**31 - 1


def forward_u8(x, xq, w, wq, b, bq, yq, relu=False):
    """dense_forward_u8 -> (y uint8[m], yq updated copy with the observation)."""
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    m, n = w.shape
    zx, zw, zy = int(xq[Q.ZERO]), int(wq[Q.ZERO]), int(yq[Q.ZERO])
    swx = F(F(wq[Q.SCALE]) * F(xq[Q.SCALE]))
    acc = ((w - zw) * (x - zx)[None, :]).sum(axis=1)
    if b is not None:
        t = acc + Q.fixmul(np.asarray(b, np.int64), F(F(bq[Q.SCALE]) / swx))
        acc = np.clip(t, -INT32_MAX, INT32_MAX)
    if relu:
        acc = np.maximum(acc, 0)
    y = Q.requant_u8(acc, F(swx / F(yq[Q.SCALE])), zy, zy if relu else 0)
    yq = np.array(yq, np.float32)
    Q.qp_observe(yq, F(F(int(acc.min())) * swx), F(F(int(acc.max())) * swx))
    return y, yq


def forward_f32(x, w, b, relu=False):
    y = np.asarray(w, np.float64) @ np.asarray(x, np.float64)
    if b is not None:
        y = y + b
    return np.maximum(y, 0) if relu else y


# --------------------------------------------------------------------------
# backward, uint8
# --------------------------------------------------------------------------

def _rows(m, sel, k):
    return list(range(m)) if sel is None else [int(i) for i in sel[:k]]


def backward_u8(e, eq, w, wq, epq, sel=None, k=None, x=None, xq=None):
    """dense_backward_u8 -> (ep uint8[n], epq updated copy); x, xq given (x
    came from a ReLU): ep only where x > xq's zero point (Q.masked_finish)."""
    w = np.asarray(w, np.int64)
    m, n = w.shape
    ze, zw, zep = int(eq[Q.ZERO]), int(wq[Q.ZERO]), int(epq[Q.ZERO])
    rows = _rows(m, sel, k)
    c = np.asarray(e, np.int64)[rows] - ze
    acc = ((w[rows] - zw) * c[:, None]).sum(axis=0) if rows else np.zeros(n, np.int64)
    swe = F(F(wq[Q.SCALE]) * F(eq[Q.SCALE]))
    if x is not None:
        ep, r = Q.masked_finish(acc, Q.quantize_multiplier(F(swe / F(epq[Q.SCALE]))), zep,
                                np.asarray(x, np.int64) > int(xq[Q.ZERO]))
    else:
        ep = Q.requant_u8(acc, F(swe / F(epq[Q.SCALE])), zep, 0)
        r = (int(acc.min()), int(acc.max()))
    epq = np.array(epq, np.float32)
    Q.qp_observe(epq, F(F(r[0]) * swe), F(F(r[1]) * swe))
    return ep, epq


def relu_backward_u8(e, eq, y, yq):
    e = np.array(e, np.uint8)
    ze, zy = int(eq[Q.ZERO]), int(yq[Q.ZERO])
    mask = np.asarray(y) <= zy
    cnt = int(np.sum(e[mask] != ze))
    e[mask] = ze
    return e, cnt


# --------------------------------------------------------------------------
# DSGU
# --------------------------------------------------------------------------

def select_topk(score, k):
    """Indices of the k largest scores, ascending; ties -> lower index."""
    score = np.asarray(score, np.int64)
    n = len(score)
    if k >= n:
        return np.arange(n)
    order = sorted(range(n), key=lambda i: (-score[i], i))
    return np.array(sorted(order[:k]), np.int64)


EBAR_MAX_DECAY = F(1 - 2 ** -10)  # QT_DSGU_EBAR_MAX_DECAY in kernels/select.h


def dsgu_k(ebar, ebar_max, lmin, lmax, n):
    """-> (k, new ebar_max), float32 ops as select.c (ebar_max: a running max
    that decays by EBAR_MAX_DECAY per call)."""
    ebar = F(ebar)
    ebar_max = F(F(ebar_max) * EBAR_MAX_DECAY)
    if ebar > ebar_max:
        ebar_max = ebar
    r = F(ebar / ebar_max) if ebar_max > 0 else F(0)
    r = min(max(r, F(0)), F(1))
    frac = F(F(lmin) + F(r * F(F(lmax) - F(lmin))))
    k = Q.floor_f32(F(frac * F(n)))
    return max(1, min(n, k)), ebar_max


def select_u8(e, eq, lmin, lmax, ebar_max):
    """dense_select_u8 -> (k, sel indices, new ebar_max)."""
    score = np.abs(np.asarray(e, np.int64) - int(eq[Q.ZERO]))
    m = len(score)
    ebar = F(F(F(int(score.sum())) / F(m)) * F(eq[Q.SCALE]))
    k, emax = dsgu_k(ebar, ebar_max, F(lmin), F(lmax), m)
    return k, select_topk(score, k), emax


# --------------------------------------------------------------------------
# update, uint8 (see natmod/kernels/update.h)
# --------------------------------------------------------------------------

ROUND_NEAREST, ROUND_FLOOR, ROUND_STOCHASTIC, ROUND_STOCH_ROW = 0, 1, 2, 3
PER_ROW = 4
RMS = 16      # weights standardized by their RMS, mean 0 (QT_UPD_RMS)
HDR = 5


def _blend(st, off, mu, sig, alpha, first):
    if first:
        st[off], st[off + 1] = mu, sig
    else:
        b = F(F(1) - F(alpha))
        st[off] = F(F(b * st[off]) + F(F(alpha) * F(mu)))
        st[off + 1] = F(F(b * st[off + 1]) + F(F(alpha) * F(sig)))


def _clampf(v, lim):
    lim = F(lim)
    return lim if v > lim else (-lim if v < -lim else v)


class _Rounder:
    def __init__(self, rounding, rng_state):
        self.rounding = rounding
        self.state = int(rng_state)

    def offset(self):
        if self.rounding >= ROUND_STOCHASTIC:
            self.state, v = Q.rng_next(self.state)
            return v >> 16
        return 32768 if self.rounding == ROUND_NEAREST else 0

    def pairs(self, n):
        """Per-weight stochastic offsets of a row of n weights: one xorshift32
        draw per two weights, high 16 bits for even j, low 16 bits for odd j."""
        draws = []
        for _ in range((n + 1) // 2):
            self.state, v = Q.rng_next(self.state)
            draws += [v >> 16, v & 0xffff]
        return np.array(draws[:n], np.int64)


def _update_bias(b, gb, rows, s_g, s_b, lr, alpha, rnd, st, first):
    """qt_update_bias_i32 (gb: list of int gradients per row, in `rows` order)."""
    sq, nz = F(0), 0
    for i in rows:
        g = int(gb[i])
        if g:
            sq = F(sq + F(F(g) * F(g)))
            nz += 1
    if nz == 0:
        return
    # the RMS, mean 0 (not the spread: DSGU's k = 1, 2 froze a lone bias and
    # gave two +-lr whatever their signs)
    var = F(sq / F(nz))
    _blend(st, 3, F(0), F(F(s_g) * Q.sqrt_f32(var)), alpha, first)
    sig = st[4]
    if not sig > 0:
        return
    c = F(F(lr) / F(F(s_b) * sig))
    mu = st[3]
    for i in rows:
        g = int(gb[i])
        if g == 0:
            continue
        d = F(c * F(F(F(s_g) * F(g)) - mu))
        r = F(F(rnd.offset()) * F(1.0 / 65536.0))
        nb = int(b[i]) + Q.floor_f32(_clampf(F(r - d), 1.0e9))
        b[i] = max(-INT32_MAX, min(INT32_MAX, nb))


def _round_f32_i64(v):
    lim = F(70368744177664.0)
    v = F(min(max(F(v), -lim), lim))
    if v >= F(8388608.0) or v <= F(-8388608.0):
        return int(v)
    return Q.round_f32(v)


def _update_bias_rank1(b, ce_all, rows, s_e, s_b, lr, alpha_norm, rnd, st, first):
    """bias_update_rank1 in dense.c: float work once per call, int64 per row."""
    cs = [int(ce_all[i]) for i in rows if ce_all[i]]
    if not cs:
        return
    var = F(F(sum(c * c for c in cs)) / F(len(cs)))   # the RMS, mean 0: as _update_bias
    _blend(st, 3, F(0), F(F(s_e) * Q.sqrt_f32(var)), alpha_norm, first)
    sig = st[4]
    if not sig > 0:
        return
    c = F(F(lr) / F(F(s_b) * sig))
    kb = Q.quantize_multiplier(F(F(c * F(s_e)) * F(65536.0)))
    bb = _round_f32_i64(F(F(c * st[3]) * F(65536.0)))
    for i in rows:
        ce = int(ce_all[i])
        if ce == 0:
            continue
        r = rnd.offset()
        nb = int(b[i]) + ((r + bb - int(Q.requantize(ce, *kb))) >> 16)
        b[i] = max(-INT32_MAX, min(INT32_MAX, nb))


def update_u8(e, eq, x, xq, w, wq, b, bq, lr, alpha_norm, flags, state, rng,
              sel=None, k=None):
    """dense_update_u8 before the weight-range step -> (w, b, state, rng, new_range).
    Arrays are copied, not modified."""
    w = np.array(w, np.int64)
    m, n = w.shape
    b = None if b is None else [int(v) for v in b]
    st = np.array(state, np.float32)
    rounding, per_row, rms = flags & 3, bool(flags & PER_ROW), bool(flags & RMS)
    rnd = _Rounder(rounding, rng)
    ze, zx = int(eq[Q.ZERO]), int(xq[Q.ZERO])
    s_e, s_x, s_w = F(eq[Q.SCALE]), F(xq[Q.SCALE]), F(wq[Q.SCALE])
    s_b = F(bq[Q.SCALE]) if b is not None else F(1)
    rows = _rows(m, sel, k)
    first = not (st[0] > 0)
    cx = np.asarray(x, np.int64) - zx
    fn = F(n)
    mxx = F(F(int((cx * cx).sum())) / fn)
    # RMS: x's mean taken as 0 (every mean below 0, every variance the mean square)
    mx = F(0) if rms else F(F(int(cx.sum())) / fn)
    varx = F(mxx - F(mx * mx))
    if varx < 0:
        varx = F(0)
    sdx = Q.sqrt_f32(varx)
    s_g = F(s_e * s_x)
    ce_all = np.asarray(e, np.int64) - ze
    if not per_row:
        cs = [int(ce_all[i]) for i in rows if ce_all[i]]
        if cs:
            fk = F(len(cs))
            me = F(F(sum(cs)) / fk)
            mee = F(F(sum(c * c for c in cs)) / fk)
            mup = F(me * mx)
            varp = F(F(mee * mxx) - F(mup * mup))
            if varp < 0:
                varp = F(0)
            _blend(st, 1, F(s_g * mup), F(s_g * Q.sqrt_f32(varp)), alpha_norm, first)
    qmin, qmax = INT32_MAX, -INT32_MAX - 1
    lr = F(lr)
    wrows = rows
    if not per_row:
        # per tensor: A_i = round(K ce_i) by the fixed-point multiplier of K
        if not st[2] > 0:
            wrows = []
        else:
            c = F(lr / F(s_w * st[2]))
            K = F(F(c * s_g) * F(65536.0))
            Bt = Q.round_f32(_clampf(F(F(c * st[1]) * F(65536.0)), 536870912.0))
    for i in wrows:
        ce = int(ce_all[i])
        if ce == 0:
            continue
        if not per_row:
            A = int(np.clip(Q.fixmul(np.int64(ce), K), -2097152, 2097152))
            B = Bt
        else:
            fce = F(ce)
            off = HDR + 2 * i
            ace = F(abs(ce))
            _blend(st, off, F(s_g * F(fce * mx)), F(s_g * F(ace * sdx)), alpha_norm,
                   first or not (st[off + 1] > 0))
            sig = st[off + 1]
            if not sig > 0:
                continue
            c = F(lr / F(s_w * sig))
            A = Q.round_f32(_clampf(F(F(c * F(s_g * fce)) * F(65536.0)), 2097152.0))
            B = Q.round_f32(_clampf(F(F(c * st[off]) * F(65536.0)), 536870912.0))
        if rounding == ROUND_STOCHASTIC:
            r = rnd.pairs(n)
        elif rounding == ROUND_STOCH_ROW:
            r = np.int64(rnd.offset())
        else:
            r = np.int64(32768 if rounding == ROUND_NEAREST else 0)
        v = w[i] + ((r + B - A * cx) >> 16)
        qmin, qmax = min(qmin, int(v.min())), max(qmax, int(v.max()))
        w[i] = np.clip(v, 0, 255)
    if b is not None:
        _update_bias_rank1(b, ce_all, rows, s_e, s_b, lr, alpha_norm, rnd, st, first)
    st[0] = F(st[0] + F(1))
    return (w.astype(np.uint8), None if b is None else np.array(b, np.int32), st, rnd.state,
            (qmin, qmax))


def sat_add_i32(a, b):
    """qt_sat_add_i32: a + b saturated to +-(2**31 - 1)."""
    return np.clip(np.asarray(a, np.int64) + b, -(2**31 - 1), 2**31 - 1)


def grad_acc_u8(e, eq, x, xq, g, gb, sel=None, k=None):
    """g += ce cx^T, gb += ce for the selected rows; every add saturates (a
    batch sum never wraps)."""
    g = np.array(g, np.int64)
    m, n = g.shape
    gb = None if gb is None else np.array(gb, np.int64)
    ce = np.asarray(e, np.int64) - int(eq[Q.ZERO])
    cx = np.asarray(x, np.int64) - int(xq[Q.ZERO])
    for i in _rows(m, sel, k):
        if ce[i]:
            g[i] = sat_add_i32(g[i], ce[i] * cx)
            if gb is not None:
                gb[i] = sat_add_i32(gb[i], ce[i])
    return g.astype(np.int32), None if gb is None else gb.astype(np.int32)


def int_to_f32(v):
    """(float)(int64_t)v in C: the integer rounded to float32, to nearest even
    (np.float32(int) may round twice, through float64)."""
    v = int(v)
    a = abs(v)
    e = a.bit_length() - 24
    if e > 0:
        q, rem = divmod(a, 1 << e)
        half = 1 << (e - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
        a = q << e
    return F(-float(a) if v < 0 else float(a))


def _row_stats(gr):
    """row_stats in update.c -> (amax, exact sum, float32 sum of squares):
    amax = OR of |g|; the squares summed exactly of (|g| >> sh),
    sh = max(0, bitlen(amax) - 24)."""
    a = np.abs(np.asarray(gr, np.int64))
    amax = int(np.bitwise_or.reduce(a)) if len(a) else 0
    total = int(np.asarray(gr, np.int64).sum())
    if amax == 0:
        return 0, total, F(0)
    sh = max(0, amax.bit_length() - 24)
    q = a >> sh
    sq = int((q * q).sum())
    return amax, total, F(int_to_f32(sq) * F(1 << (2 * sh)))


def _update_row_g32(w, gr, k, amax, rb, rnd, stochastic):
    """update_row_g32 in update.c: g rounded to 15 bits (gs from amax), K = k 2^gs
    with a 16-bit mantissa, T = round(K g) in 32-bit integers."""
    gs = max(0, amax.bit_length() - 14)
    g = np.asarray(gr, np.int64)
    if gs:
        g = ((g >> (gs - 1)) + 1) >> 1
    mult, shift = Q.quantize_multiplier(F(F(k) * F(1 << gs)))
    m, sft = mult >> 15, shift - 15
    if sft >= 32:
        m, sft = 0, 31
    p = g * m
    p = (((p >> (sft - 1)) + 1) >> 1) if sft >= 1 else p << (-sft)
    t = np.clip(p, -(1 << 29), (1 << 29) - 1)
    r = rnd.pairs(len(gr)) if stochastic else np.int64(0)
    d = np.clip(r + rb - t, -(1 << 26), (1 << 26) - 1)
    return w + (d >> 16)


def _mean_var(total, sq, cnt, rms):
    """(mean, variance) of cnt values from their integer sum and float32
    sum of squares (update.c's var_of); rms: the sum taken as 0, so the
    mean is 0 and the variance the mean square."""
    mean = F(int_to_f32(0 if rms else total) / cnt)
    var = F(F(sq / cnt) - F(mean * mean))
    return mean, (F(0) if var < 0 else var)


def update_rows_u8(g, s_g, w, wq, gb, b, s_gb, s_b, lr, alpha_norm, flags, state, rng):
    """update_rows_u8 before the weight-range step -> (w, b, state, rng, new_range)."""
    g = np.asarray(g, np.int64)
    rows_total, length = g.shape
    w = np.array(w, np.int64).reshape(rows_total, length)
    st = np.array(state, np.float32)
    rounding, per_row, rms = flags & 3, bool(flags & PER_ROW), bool(flags & RMS)
    rnd = _Rounder(rounding, rng)
    first = not (st[0] > 0)
    s_g, s_w, lr = F(s_g), F(wq[Q.SCALE]), F(lr)
    fl = F(length)
    stats = [_row_stats(g[i]) for i in range(rows_total)]
    amax_t = 0
    if not per_row:
        total, sq, nrows = 0, F(0), 0
        for am, t, q in stats:
            amax_t |= am
            if am:
                total += t
                sq = F(sq + q)
                nrows += 1
        if nrows:
            fn = F(F(nrows) * fl)
            mean, var = _mean_var(total, sq, fn, rms)
            _blend(st, 1, F(s_g * mean), F(s_g * Q.sqrt_f32(var)), alpha_norm, first)
    qmin, qmax = INT32_MAX, -INT32_MAX - 1
    r0 = 32768 if rounding == ROUND_NEAREST else 0
    for i in range(rows_total):
        am, t, q = stats[i]
        if not am:
            continue
        off = 1
        if per_row:
            off = HDR + 2 * i
            mean, var = _mean_var(t, q, fl, rms)
            _blend(st, off, F(s_g * mean), F(s_g * Q.sqrt_f32(var)), alpha_norm,
                   first or not (st[off + 1] > 0))
        sig = st[off + 1]
        if sig > 0:
            c = F(lr / F(s_w * sig))
            k = F(F(c * s_g) * F(65536.0))
            B = Q.round_f32(_clampf(F(F(c * st[off]) * F(65536.0)), 536870912.0))
            amax = am if per_row else amax_t
            if rounding == ROUND_STOCHASTIC:
                v = _update_row_g32(w[i], g[i], k, amax, B, rnd, True)
            else:
                r = rnd.offset() if rounding == ROUND_STOCH_ROW else r0
                v = _update_row_g32(w[i], g[i], k, amax, B + r, rnd, False)
            qmin, qmax = min(qmin, int(v.min())), max(qmax, int(v.max()))
            w[i] = np.clip(v, 0, 255)
    if b is not None and gb is not None:
        b = [int(v) for v in b]
        _update_bias(b, [int(v) for v in gb], range(rows_total), s_gb, s_b, lr, alpha_norm,
                     rnd, st, first)
        b = np.array(b, np.int32)
    st[0] = F(st[0] + F(1))
    return w.astype(np.uint8).ravel(), b, st, rnd.state, (qmin, qmax)


def remap_dither_u8(w, s, z, s2, z2):
    """update.c remap_dither_u8: a re-scale's re-map with dithered rounding,
    lut[v] = clamp(z2 + floor(((v - z) R + d_v) / 2^16)), R = round(2^16 s / s2),
    d_v = (o + 40503 v) mod 2^16, o from the new scale's bits: the expected new
    value is the exact one (nearest rounding left every weight in place at a
    small scale change and so inflated the layer's real weights)."""
    o = (int(np.array([s2], np.float32).view(np.uint32)[0]) * 2654435761 & 0xffffffff) >> 16
    R = min(int(Q.fixmul(65536, F(F(s) / F(s2)))), 0x7fffffff)
    v = np.arange(256, dtype=np.int64)
    d = (o + 40503 * v) & 0xffff
    lut = np.clip((((v - z) * R + d) >> 16) + z2, 0, 255).astype(np.uint8)
    return lut[np.asarray(w, np.uint8)]


WRANGE_MARGIN = 1.0     # QT_WRANGE_MARGIN in kernels/update.c


def weights_qp_update(w, wq, new_range, tau):
    """qt_weights_qp_update -> (w, wq, remapped)."""
    w = np.array(w, np.uint8)
    wq = np.array(wq, np.float32)
    s, z = F(wq[Q.SCALE]), int(wq[Q.ZERO])
    qlo, qhi = 0, 255
    if new_range[0] <= new_range[1]:
        # the range of ALL weights: the updated rows' new values (before
        # clamping) and the stored values of the rows left alone (update.c)
        qlo = min(max(int(new_range[0]), 0), 255, int(w.min()))     # stored extremes
        qhi = max(min(int(new_range[1]), 255), 0, int(w.max()))
        lo, hi = min(int(new_range[0]), qlo), max(int(new_range[1]), qhi)
        Q.qp_observe(wq, F(s * F(lo - z)), F(s * F(hi - z)))
    Q.qp_update(wq)
    s2, z2 = F(wq[Q.SCALE]), int(wq[Q.ZERO])
    if s2 == s and z2 == z:
        return w, wq, 0
    d = F(F(s2 / s) - F(1))
    tau = F(tau)
    if -tau <= d <= tau:
        zf = F(-wq[Q.RMIN] / s)
        z3 = 255 if zf > F(300) else Q.round_f32(zf)
        z3 = max(0, min(255, z3))
        z3 = z + max(-qlo, min(255 - qhi, z3 - z))     # a shift never clips a stored weight
        # the kept window must hold the range to WRANGE_MARGIN steps (update.c)
        if not (wq[Q.RMAX] > F(s * F(255 - z3 + WRANGE_MARGIN)) or wq[Q.RMIN] < F(s * F(-z3 - WRANGE_MARGIN))):
            wq[Q.SCALE], wq[Q.ZERO] = s, z3
            if z3 != z:
                w = Q.remap_u8(w, s, z, s, z3)
            return w, wq, 0
    return remap_dither_u8(w, s, z, s2, z2), wq, 1


# --------------------------------------------------------------------------
# float32 reference and mixed mode (float64 math: compared within tolerance)
# --------------------------------------------------------------------------

def backward_f32(e, w, sel=None, k=None):
    w = np.asarray(w, np.float64)
    rows = _rows(w.shape[0], sel, k)
    return w[rows].T @ np.asarray(e, np.float64)[rows] if rows else np.zeros(w.shape[1])


def backward_mixed(e, w, wq, sel=None, k=None):
    wf = (np.asarray(w, np.float64) - int(wq[Q.ZERO])) * float(wq[Q.SCALE])
    return backward_f32(e, wf, sel, k)


def relu_backward_f32(e, y):
    e = np.array(e, np.float64)
    e[np.asarray(y) <= 0] = 0
    return e


def _std(vals):
    v = np.asarray(vals, np.float64)
    return v.mean(), v.std()


def update_f32(e, x, w, b, lr, alpha_norm, flags, state, sel=None, k=None):
    """dense_update_f32 in float64 -> (w, b, state)."""
    w = np.array(w, np.float64)
    m, n = w.shape
    b = None if b is None else np.array(b, np.float64)
    st = np.array(state, np.float64)
    e = np.asarray(e, np.float64)
    x = np.asarray(x, np.float64)
    plain, per_row = bool(flags & 8), bool(flags & PER_ROW)
    rows = [i for i in _rows(m, sel, k) if e[i] != 0]
    first = not st[0] > 0

    def blend(off, mu, sig, first_):
        if first_:
            st[off], st[off + 1] = mu, sig
        else:
            st[off] = (1 - alpha_norm) * st[off] + alpha_norm * mu
            st[off + 1] = (1 - alpha_norm) * st[off + 1] + alpha_norm * sig

    if rows and not plain and not per_row:
        g = np.outer(e[rows], x)
        blend(1, g.mean(), g.std(), first)
    for i in rows:
        g = e[i] * x
        if plain:
            w[i] -= lr * g
            continue
        off = 1
        if per_row:
            off = HDR + 2 * i
            blend(off, g.mean(), g.std(), first or not st[off + 1] > 0)
        if st[off + 1] > 0:
            w[i] -= lr * (g - st[off]) / st[off + 1]
    if b is not None and rows:
        gb = e[rows]
        if plain:
            b[rows] -= lr * gb
        else:
            # the RMS, mean 0 (bias_update_from_f32; as _update_bias for uint8)
            blend(3, 0.0, np.sqrt(np.mean(gb * gb)), first)
            if st[4] > 0:
                b[rows] -= lr * (gb - st[3]) / st[4]
    st[0] += 1
    return w, b, st
