"""One uint8 training step of a Dense layer written in MicroPython: what a
MicroPython user without _qtrain would write.  MicroPython source (sent to
the port by `python -m qtrain_host.bench_alternatives` and the tests).

    import dense_step, loops_pure            # or loops_viper
    layer = dense_step.DenseStep(loops_pure, w, wq, b, bq, yq, epq, state, rng, relu=True,
                                 lr=0.001, alpha_norm=0.15, tau=0.01)
    y = layer.forward(x, xq)
    ep = layer.backward(e, eq)               # ReLU mask, error propagation, update

The same integer math as _qtrain's dense_forward_u8 / relu_backward_u8 /
dense_backward_u8 / dense_update_u8 (per-tensor gradient standardization,
stochastic rounding from the same xorshift32, the weight range step), i.e.
what qtrain.layers.Dense does in 'uint8' mode, so the results are bit-exact
(tests/test_alternatives.py).  Scalar float work (scales, multipliers,
statistics) is done once per call in float32 (`f32()` rounds each
operation's double result to float32, which gives the correctly rounded
float32 result for + - * / of float32 values).  The O(m n) loops come from
a `loops` module: loops_pure (plain Python) or loops_viper (@micropython.viper).
"""
import array
import struct

INT32_MAX = 2147483647
_F = array.array("f", [0.0])


def f32(v):
    _F[0] = v
    return _F[0]


def f32_bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


def floor_f32(x):
    i = int(x)
    return i - 1 if i > x else i


def round_f32(x):
    return floor_f32(f32(x + 0.5))


def fixmul_from_f32(m):
    """qt_fixmul_from_f32: (mult, shift) with m == mult * 2^-shift."""
    b = f32_bits(m)
    e = (b >> 23) & 0xFF
    if (b >> 31) or e == 0 or e == 0xFF:
        return 0, 1
    mult = ((b & 0x7FFFFF) | 0x800000) << 7
    shift = 157 - e
    if shift < 1:
        return 0x7FFFFFFF, 1
    if shift > 62:
        d = shift - 62
        mult = 0 if d > 31 else mult >> d
        shift = 62
    return mult, shift


def fixmul(x, f):
    """round(x * m), halves up (qt_fixmul_apply64)."""
    return (x * f[0] + (1 << (f[1] - 1))) >> f[1]


def sqrt_f32(x):
    """qt_sqrt_f32: correctly rounded, from the float's bits (integers only,
    so the same on every port, single or double precision floats)."""
    if not x > 0:
        return 0.0
    b = f32_bits(x)
    e, m = b >> 23, b & 0x7FFFFF
    if e == 0:                   # subnormal
        while not m & 0x800000:
            m <<= 1
            e -= 1
        e += 1
    else:
        m |= 0x800000
    e -= 127
    if e & 1:
        m <<= 1
        e -= 1
    # 25-bit root of m 2^25 (24 bits of mantissa and a rounding bit; no tie)
    q, r = 0, m << 25
    for bit in range(24, -1, -1):
        t = ((q << 1) + (1 << bit)) << bit      # (q + 2^bit)^2 - q^2
        if t <= r:
            r -= t
            q |= 1 << bit
    q = (q + (q & 1)) >> 1
    return struct.unpack("<f", struct.pack("<I", ((e // 2 + 126) << 23) + q))[0]


def qparams_from_range(lo, hi):
    if lo > 0:
        lo = 0.0
    if hi < 0:
        hi = 0.0
    w = f32(hi - lo)
    if not w >= f32(1.0e-6):
        w = f32(1.0e-6)
    s = f32(w / 255.0)
    zf = f32(-lo / s)
    z = 255 if zf > 300.0 else round_f32(zf)
    return s, min(255, max(0, z))


def qp_observe(qp, rmin, rmax):
    if qp[7] > 0:
        rmin = min(rmin, qp[5])
        rmax = max(rmax, qp[6])
    qp[5] = rmin
    qp[6] = rmax
    qp[7] = qp[7] + 1.0


def qp_update(qp):
    a = qp[4]
    if a > 0 and qp[7] > 0:
        b = f32(1.0 - a)
        lo = f32(f32(b * qp[2]) + f32(a * qp[5]))
        hi = f32(f32(b * qp[3]) + f32(a * qp[6]))
        lo = min(lo, 0.0)
        hi = max(hi, 0.0)
        qp[2] = lo
        qp[3] = hi
        qp[0], z = qparams_from_range(lo, hi)
        qp[1] = z
    qp[5] = qp[6] = qp[7] = 0.0


def std_blend(st, off, mu, sig, alpha, first):
    if first:
        st[off] = mu
        st[off + 1] = sig
    else:
        b = f32(1.0 - alpha)
        st[off] = f32(f32(b * st[off]) + f32(alpha * mu))
        st[off + 1] = f32(f32(b * st[off + 1]) + f32(alpha * sig))


def requant(acc, f, z, lo):
    v = fixmul(acc, f) + z
    return lo if v < lo else (255 if v > 255 else v)


def remap_u8(w, s_old, z_old, s_new, z_new):
    f = fixmul_from_f32(f32(s_old / s_new))
    lut = bytearray(256)
    for v in range(256):
        lut[v] = requant(v - z_old, f, z_new, 0)
    for i in range(len(w)):
        w[i] = lut[w[i]]


def remap_dither_u8(w, s_old, z_old, s_new, z_new):
    """A re-scale's re-map with dithered rounding (update.c remap_dither_u8)."""
    d = (f32_bits(s_new) * 2654435761 & 0xFFFFFFFF) >> 16
    R = min(fixmul(65536, fixmul_from_f32(f32(s_old / s_new))), 0x7FFFFFFF)
    lut = bytearray(256)
    for v in range(256):
        q = (((v - z_old) * R + (d & 0xFFFF)) >> 16) + z_new
        lut[v] = 0 if q < 0 else (255 if q > 255 else q)
        d += 40503
    for i in range(len(w)):
        w[i] = lut[w[i]]


def weights_qp_update(w, wq, lo, hi, tau):
    """qt_weights_qp_update: observe the new weight range, move wq, re-map w."""
    s = wq[0]
    z = int(wq[1])
    qlo, qhi = 0, 255
    if lo <= hi:
        # the range of all weights: rows left alone keep their stored values
        qlo, qhi = min(max(lo, 0), 255, min(w)), max(min(hi, 255), 0, max(w))
        lo, hi = min(lo, qlo), max(hi, qhi)
        qp_observe(wq, f32(s * (lo - z)), f32(s * (hi - z)))
    qp_update(wq)
    s2 = wq[0]
    z2 = int(wq[1])
    if s2 == s and z2 == z:
        return 0
    d = f32(f32(s2 / s) - 1.0)
    if -tau <= d <= tau:
        zf = f32(-wq[2] / s)
        z3 = 255 if zf > 300.0 else round_f32(zf)
        z3 = max(0, min(255, z3))
        z3 = z + max(-qlo, min(255 - qhi, z3 - z))     # a shift never clips a stored weight
        # the kept window must hold the range to 1 step (QT_WRANGE_MARGIN, update.c)
        if not (wq[3] > f32(s * (256.0 - z3)) or wq[2] < f32(s * (-1.0 - z3))):
            wq[0] = s
            wq[1] = z3
            if z3 != z:
                remap_u8(w, s, z, s, z3)
            return 0
    remap_dither_u8(w, s, z, s2, z2)
    return 1


class DenseStep:
    """A uint8 Dense layer (not the first: it propagates its error) whose
    buffers are the caller's (e.g. copies of a qtrain.layers.Dense's)."""

    def __init__(self, loops, n_in, n_out, w, wq, b, bq, yq, epq, state, rng, relu=True,
                 lr=0.001, alpha_norm=0.15, tau=0.01):
        self.loops = loops
        self.n, self.m = n_in, n_out
        self.w, self.wq, self.b, self.bq, self.yq, self.epq = w, wq, b, bq, yq, epq
        self.state, self.rng = state, rng
        self.relu = relu
        self.lr, self.alpha_norm, self.tau = f32(lr), f32(alpha_norm), f32(tau)
        self.y = bytearray(n_out)
        self.ep = bytearray(n_in)
        self.xs = array.array("i", bytes(4 * n_in))     # x - z_x
        self.acc = array.array("i", bytes(4 * max(n_in, n_out)))
        self.c = array.array("i", bytes(4 * n_out))     # e - z_e
        self.A = array.array("i", bytes(4 * n_out))
        self.lohi = array.array("i", [0, 0])
        self.x = self.xq = None

    def forward(self, x, xq):
        self.x, self.xq = x, xq
        n, m, wq, yq = self.n, self.m, self.wq, self.yq
        zx, zw, zy = int(xq[1]), int(wq[1]), int(yq[1])
        swx = f32(wq[0] * xq[0])
        out = fixmul_from_f32(f32(swx / yq[0]))
        bias = fixmul_from_f32(f32(self.bq[0] / swx))
        xs = self.xs
        sx = 0
        for j in range(n):
            v = x[j] - zx
            xs[j] = v
            sx += v
        acc = self.acc
        self.loops.dot_rows(self.w, xs, n, m, acc)
        c0 = -zw * sx
        lo = zy if self.relu else 0
        amin, amax = INT32_MAX, -INT32_MAX - 1
        b, y = self.b, self.y
        for i in range(m):
            a = acc[i] + c0 + fixmul(b[i], bias)
            a = INT32_MAX if a > INT32_MAX else (-INT32_MAX if a < -INT32_MAX else a)
            if self.relu and a < 0:
                a = 0
            amin = a if a < amin else amin
            amax = a if a > amax else amax
            y[i] = requant(a, out, zy, lo)
        qp_observe(yq, f32(f32(amin) * swx), f32(f32(amax) * swx))
        return y

    def backward(self, e, eq):
        """ReLU mask on e (in place), error to the input, update.  -> ep."""
        n, m, w, wq = self.n, self.m, self.w, self.wq
        ze = int(eq[1])
        if self.relu:
            zy = int(self.yq[1])
            y = self.y
            for i in range(m):
                if y[i] <= zy:
                    e[i] = ze
        c = self.c
        csum = 0
        for i in range(m):
            v = e[i] - ze
            c[i] = v
            csum += v
        # error propagation: ep_j = requant(sum_i c_i (w_ij - z_w))
        epq = self.epq
        swe = f32(wq[0] * eq[0])
        out = fixmul_from_f32(f32(swe / epq[0]))
        acc = self.acc
        self.loops.axpy_rows(w, c, n, m, acc)
        off = int(wq[1]) * csum
        zep = int(epq[1])
        amin, amax = INT32_MAX, -INT32_MAX - 1
        ep = self.ep
        for j in range(n):
            a = acc[j] - off
            amin = a if a < amin else amin
            amax = a if a > amax else amax
            ep[j] = requant(a, out, zep, 0)
        qp_observe(epq, f32(f32(amin) * swe), f32(f32(amax) * swe))
        self.update(c, eq)
        return ep

    def update(self, c, eq):
        """dense_update_u8, per tensor, stochastic rounding, then the weight range step."""
        n, m, st = self.n, self.m, self.state
        xs = self.xs
        first = not st[0] > 0
        sx = sxx = 0
        for j in range(n):
            v = xs[j]
            sx += v
            sxx += v * v
        fn = f32(n)
        mx = f32(f32(sx) / fn)
        mxx = f32(f32(sxx) / fn)   # (float) of a uint32: rounded, like the C
        s_e, s_x = f32(eq[0]), f32(self.xq[0])
        s_g = f32(s_e * s_x)
        se = see = kk = 0
        for i in range(m):
            v = c[i]
            if v:
                se += v
                see += v * v
                kk += 1
        if kk:
            fk = f32(kk)
            me = f32(f32(se) / fk)
            mee = f32(f32(see) / fk)
            mup = f32(me * mx)
            varp = f32(f32(mee * mxx) - f32(mup * mup))
            if varp < 0:
                varp = 0.0
            std_blend(st, 1, f32(s_g * mup), f32(s_g * sqrt_f32(varp)), self.alpha_norm, first)
        lr = self.lr
        lohi = self.lohi
        lohi[0], lohi[1] = INT32_MAX, -INT32_MAX - 1
        if st[2] > 0:
            cc = f32(lr / f32(self.wq[0] * st[2]))
            K = fixmul_from_f32(f32(f32(cc * s_g) * 65536.0))
            t = f32(f32(cc * st[1]) * 65536.0)
            Bt = round_f32(536870912.0 if t > 536870912.0 else (-536870912.0 if t < -536870912.0 else t))
            A = self.A
            for i in range(m):
                a = fixmul(c[i], K)
                A[i] = 2097152 if a > 2097152 else (-2097152 if a < -2097152 else a)
            # w_ij += ((r + B - A_i (x_j - z_x)) >> 16), r = the top 16 bits of one draw per weight
            self.loops.update_rows(self.w, self.x, n, m, c, A, Bt, int(self.xq[1]), self.rng, lohi)
        self._bias(c, s_e, st, first)
        st[0] = st[0] + 1.0
        return weights_qp_update(self.w, self.wq, lohi[0], lohi[1], self.tau)

    def _bias(self, c, s_e, st, first):
        m = self.m
        see = nz = 0
        for i in range(m):
            v = c[i]
            if v:
                see += v * v
                nz += 1
        if nz == 0:
            return
        var = f32(f32(see) / f32(nz))   # the RMS, mean 0 (bias_update_rank1)
        std_blend(st, 3, 0.0, f32(s_e * sqrt_f32(var)), self.alpha_norm, first)
        sig = st[4]
        if not sig > 0:
            return
        cc = f32(self.lr / f32(self.bq[0] * sig))
        kb = fixmul_from_f32(f32(f32(cc * s_e) * 65536.0))
        t = f32(f32(cc * st[3]) * 65536.0)
        lim = 70368744177664.0
        t = lim if t > lim else (-lim if t < -lim else t)
        bb = int(t) if (t >= 8388608.0 or t <= -8388608.0) else round_f32(t)
        b, rng = self.b, self.rng
        s = rng[0]
        for i in range(m):
            ce = c[i]
            if ce == 0:
                continue
            s ^= (s << 13) & 0xFFFFFFFF
            s ^= s >> 17
            s ^= (s << 5) & 0xFFFFFFFF
            nb = b[i] + (((s >> 16) + bb - fixmul(ce, kb)) >> 16)
            b[i] = INT32_MAX if nb > INT32_MAX else (-INT32_MAX if nb < -INT32_MAX else nb)
        rng[0] = s
