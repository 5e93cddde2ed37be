"""The cases of soak_sanitize, run inside the sanitized child process: each
operator group draws a random case, calls the C kernels through ctypes the
way the bindings (natmod/bind_*.c) do, and compares with the golden model.
A mismatch prints `@mismatch <op> case <i>: <what>` and the run goes on; a
sanitizer report aborts the process (the parent names the last `@case`)."""
import ctypes as C
import sys
import zlib

import numpy as np

from .golden import conv as GC, dense as GD, loss as GL, quant as GQ

F = np.float32
U = 2.0 ** -24
VP = C.c_void_p


class Fix(C.Structure):
    _fields_ = [("mult", C.c_int32), ("shift", C.c_int32)]


class DenseFwd(C.Structure):
    _fields_ = [("zx", C.c_int32), ("zw", C.c_int32), ("zy", C.c_int32), ("out", Fix), ("bias", Fix),
                ("relu", C.c_int32)]


class DenseBwd(C.Structure):
    _fields_ = [("ze", C.c_int32), ("zw", C.c_int32), ("zep", C.c_int32), ("out", Fix), ("mask", VP),
                ("zm", C.c_int32)]


class DenseUpd(C.Structure):
    _fields_ = [("ze", C.c_int32), ("zx", C.c_int32), ("s_e", C.c_float), ("s_x", C.c_float), ("s_b", C.c_float)]


class Update(C.Structure):
    _fields_ = [("lr", C.c_float), ("alpha_norm", C.c_float), ("s_w", C.c_float), ("zw", C.c_int32),
                ("rounding", C.c_int32), ("per_row", C.c_int32), ("rng", C.POINTER(C.c_uint32)),
                ("rms", C.c_int32)]   # qt_update_t's last field (flag 16), 0 here


class Geom(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("in_ch", "in_h", "in_w", "out_ch", "out_h", "out_w", "k_h", "k_w",
                                         "stride_h", "stride_w", "pad_h", "pad_w")]


class ConvRq(C.Structure):
    _fields_ = [("zero_in", C.c_int32), ("zero_w", C.c_int32), ("zero_out", C.c_int32), ("out", Fix),
                ("bias", Fix), ("relu", C.c_int32), ("mask", VP), ("zero_mask", C.c_int32)]


def rand_mask(rng, shape):
    """A ReLU output for the mask-aware propagation: (x, its record), about
    half of x at or below its zero point (0 or 3)."""
    zm = int(rng.choice([0, 3]))
    x = u8(rng, shape)
    x[rng.random(x.shape) < 0.5] = zm
    xq = GQ.new_qp(0.0, 1.0)
    xq[GQ.ZERO] = zm
    return exact(x, np.uint8), xq


def observe_masked(r, masked):
    """The bindings' range of a mask-aware call (qt_observe_masked): widened to 0."""
    return (min(int(r[0]), 0), max(int(r[1]), 0)) if masked else (int(r[0]), int(r[1]))


class Lin(C.Structure):
    _fields_ = [("q", VP), ("f", VP), ("scale", C.c_float), ("zero", C.c_int32)]


class Lout(C.Structure):
    _fields_ = [("q", VP), ("f", VP), ("qp", VP)]


class Mismatch(Exception):
    pass


def check(ok, what):
    if not ok:
        raise Mismatch(what)


def same(a, b):
    """float32 bits equal (NaN equals NaN), or equal integers."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype == np.float32 or b.dtype == np.float32:
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))))
    return np.array_equal(a, b)


def P(a):
    return None if a is None else a.ctypes.data_as(VP)


def exact(a, dtype):
    """A fresh C-contiguous copy whose malloc block is exactly its size, so
    ASan catches any access past its end."""
    return np.array(np.asarray(a, dtype).ravel(), dtype, copy=True)


def fix(real):
    m, s = GQ.quantize_multiplier(F(real))
    return Fix(m, s)


def load(so):
    lib = C.CDLL(so)
    lib.qt_crc32_update.restype = C.c_uint32
    lib.qt_crc32_update.argtypes = [C.c_uint32, VP, C.c_size_t]
    lib.qt_fixmul_from_f32.restype = Fix
    lib.qt_fixmul_from_f32.argtypes = [C.c_float]
    lib.qt_sqrt_f32.restype = C.c_float
    lib.qt_sqrt_f32.argtypes = [C.c_float]
    for fn in ("qt_floor_f32", "qt_round_f32"):
        getattr(lib, fn).argtypes = [C.c_float]
    lib.qt_qparams_from_range.argtypes = [C.c_float, C.c_float, VP, VP]
    lib.qt_qp_observe.argtypes = [VP, C.c_float, C.c_float]
    lib.qt_remap_u8.argtypes = [VP, C.c_size_t, C.c_float, C.c_int32, C.c_float, C.c_int32]
    lib.qt_weights_qp_update.argtypes = [VP, C.c_size_t, VP, VP, C.c_float]
    lib.qt_update_rows_u8.argtypes = [VP, VP, C.c_int32, C.c_int32, C.c_float, VP, VP, C.c_int, VP]
    lib.qt_update_bias_i32.argtypes = [VP, VP, VP, C.c_int32, C.c_int32, VP, C.c_int32, C.c_float, C.c_float,
                                       VP, VP, C.c_int]
    lib.dsgu_k.argtypes = [C.c_float, VP, C.c_float, C.c_float, C.c_int32]
    lib.dense_select_rows_u8.argtypes = [VP, C.c_int32, C.c_int32, C.c_float, VP, C.c_float, C.c_float, VP, VP,
                                         VP, C.c_int32]
    upd = [VP, VP, C.c_int32, VP, C.c_int32, VP, VP, VP, C.c_int32, C.c_float, C.c_float, C.c_float, VP, VP,
           C.c_int, VP, VP]
    lib.conv2d_update_u8.argtypes = upd
    lib.conv_transpose2d_update_u8.argtypes = upd
    lib.conv_transpose2d_update_slices_u8.argtypes = upd
    lib.conv_transpose2d_slice_scores_u8.restype = C.c_uint64
    lib.qt_bce_sigmoid.argtypes = [VP, VP, C.c_size_t, VP, VP, VP]
    lib.qt_softmax_ce.argtypes = [VP, C.c_size_t, C.c_int32, VP, VP]
    lib.qt_latent_forward.argtypes = [VP, C.c_size_t, VP, VP, VP, VP]
    lib.qt_latent_backward.argtypes = [VP, C.c_size_t, VP, VP, C.c_float, VP, VP]
    # mixed mode (float errors, uint8 weights / inputs): the float scales
    lib.dense_backward_mixed.argtypes = [VP, VP, C.c_int32, C.c_float, VP, C.c_int32, C.c_int32, VP, C.c_int32]
    lib.dense_update_mixed.argtypes = [VP, VP, C.c_int32, C.c_float, VP, VP, C.c_float, C.c_int32, C.c_int32,
                                       VP, C.c_int32, VP, VP, VP]
    lib.dense_grad_acc_mixed.argtypes = [VP, VP, C.c_int32, C.c_float, VP, VP, C.c_int32, C.c_int32, VP,
                                         C.c_int32]
    lib.update_rows_mixed.argtypes = [VP, VP, VP, VP, C.c_float, C.c_int32, C.c_int32, VP, VP, VP]
    for t in ("conv2d", "conv_transpose2d"):
        getattr(lib, t + "_backward_mixed").argtypes = [VP, VP, VP, C.c_int32, VP, C.c_int32, C.c_float, VP, VP,
                                                        C.c_int32]
        getattr(lib, t + "_grad_mixed").argtypes = [VP, VP, VP, C.c_int32, C.c_float, VP, VP, VP, C.c_int32]
        getattr(lib, t + "_update_mixed").argtypes = [VP, VP, VP, C.c_int32, C.c_float, VP, VP, C.c_float, VP,
                                                      C.c_int32, VP, VP, VP, VP]
    return lib


def rand_qp(rng, lo=-4.0, hi=4.0, alpha=0.0):
    """A qparams record: a range with either end possibly 0, scale over 9 decades."""
    sc = float(np.exp(rng.uniform(-6, 3)))
    a = float(rng.uniform(lo, 0)) * float(rng.choice([0, 1, 1])) * sc
    b = float(rng.uniform(0, hi)) * float(rng.choice([0, 1, 1])) * sc
    return GQ.new_qp(a, b if (a or b) else 1.0, alpha)


def near_qp(rng, r, scale):
    """A range around observed accumulator extremes r (steps of `scale`), so
    the outputs are spread; 1 case in 8 a scale far below (saturating)."""
    if rng.random() < 0.125:
        qp = GQ.new_qp(-1.0, 1.0, float(rng.choice([0.0, 0.1])))
        qp[GQ.SCALE] = F(scale / float(rng.choice([0.6, 3.0, 1e3, 2.0 ** 20, 1e9])))
        qp[GQ.ZERO] = int(rng.choice([0, 7, 128, 255]))
        return qp
    lo = min(r[0], 0) * float(scale) * rng.uniform(0.3, 1.0)
    hi = max(r[1], 0) * float(scale) * rng.uniform(0.3, 1.0)
    return GQ.new_qp(lo, hi if hi > lo else 1.0, float(rng.choice([0.0, 0.1])))


def u8(rng, shape, extreme=False):
    if extreme:
        return np.full(shape, rng.choice([0, 255]), np.uint8)
    return rng.integers(0, 256, shape, dtype=np.uint8)


# ---- dense -------------------------------------------------------------------------------

def case_dense(lib, rng, i):
    m, n = int(rng.integers(1, 40)), int(rng.integers(1, 300))
    ext = rng.random() < 0.2
    x, w = u8(rng, n, ext), u8(rng, (m, n), ext)
    xq, wq = rand_qp(rng), rand_qp(rng, -1, 1, 0.001)
    if ext:
        xq[1], wq[1] = rng.choice([0, 255]), rng.choice([0, 255])
    b = rng.integers(-2**31 + 1, 2**31 - 1, m, dtype=np.int64).astype(np.int32)
    bq = GQ.new_qp(-1, 1)
    bq[0], bq[1] = F(10.0 ** rng.uniform(-8, 2)), 0
    yq = rand_qp(rng, alpha=0.1)
    relu = int(rng.integers(0, 2))
    swx = F(F(wq[0]) * F(xq[0]))
    y, r = exact(np.zeros(m), np.uint8), exact(np.zeros(3), np.int32)   # 3: the update's qt_wrange_t
    q = DenseFwd(int(xq[1]), int(wq[1]), int(yq[1]), fix(F(swx / F(yq[0]))), fix(F(F(bq[0]) / swx)), relu)
    xs = exact(np.zeros((n + 3) & ~3), np.int32) if i % 2 else None
    x, w, b = exact(x, np.uint8), exact(w, np.uint8), exact(b, np.int32)
    lib.dense_forward_u8(P(x), P(w), P(b), P(y), m, n, C.byref(q), P(r), P(xs))
    check(same(y, GD.forward_u8(x, xq, w.reshape(m, n), wq, b, bq, yq, relu)[0]), "dense forward y")
    e, eq, epq = exact(u8(rng, m), np.uint8), rand_qp(rng, -1, 1), rand_qp(rng, -2, 2, 0.1)
    k = int(rng.integers(1, m + 1))
    sel = exact(np.sort(rng.choice(m, m, replace=False)), np.int32)
    sel[:k] = np.sort(rng.choice(m, k, replace=False))
    use_sel = i % 3 == 0
    ep, acc = exact(np.zeros(n), np.uint8), exact(np.zeros(n), np.int32)
    xm, xmq = rand_mask(rng, n) if i % 2 else (None, None)   # mask-aware
    qb = DenseBwd(int(eq[1]), int(wq[1]), int(epq[1]), fix(F(F(F(wq[0]) * F(eq[0])) / F(epq[0]))),
                  None if xm is None else xm.ctypes.data, 0 if xm is None else int(xmq[1]))
    lib.dense_backward_u8(P(e), P(w), P(ep), m, n, P(sel) if use_sel else None, k, C.byref(qb), P(acc), P(r))
    gep, gepq = GD.backward_u8(e, eq, w.reshape(m, n), wq, epq, sel if use_sel else None, k, xm, xmq)
    check(same(ep, gep), "dense backward ep")
    swe = F(F(wq[0]) * F(eq[0]))
    epq_c = exact(epq, np.float32)
    rr = observe_masked(r, xm is not None)
    lib.qt_qp_observe(P(epq_c), F(F(rr[0]) * swe), F(F(rr[1]) * swe))
    check(same(epq_c, gepq), "dense backward range")
    flags = int(rng.integers(0, 8))
    st = exact(np.zeros(5 + 2 * m), np.float32)
    seed = exact([int(rng.integers(1, 2**32))], np.uint32)
    lr, an = F(10.0 ** rng.uniform(-4, 0)), F(rng.choice([1.0, 0.85]))
    w2, b2 = exact(w, np.uint8), exact(b // 4, np.int32)
    u = Update(lr, an, F(wq[0]), int(wq[1]), flags & 3, (flags >> 2) & 1, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
    d = DenseUpd(int(eq[1]), int(xq[1]), F(eq[0]), F(xq[0]), F(bq[0]))
    gw, gb, gst, gr, gnr = GD.update_u8(e, eq, x, xq, w.reshape(m, n), wq, b // 4, bq, lr, an, flags, st,
                                        int(seed[0]), sel if use_sel else None, k)
    lib.dense_update_u8(P(e), P(x), P(w2), P(b2), m, n, P(sel) if use_sel else None, k, C.byref(d), C.byref(u),
                        P(st), P(r))
    check(same(w2, np.asarray(gw).ravel()) and same(b2, gb) and same(st, gst), "dense update flags=%d" % flags)
    check(int(seed[0]) == gr and (gnr[0] > gnr[1] or tuple(r[:2]) == tuple(gnr)), "dense update rng/range")
    # batch gradient, accumulated onto what the buffers held (saturating)
    big = rng.random() < 0.2
    g0 = rng.integers(-2**31 + 1, 2**31 - 1, m * n) if big else np.zeros(m * n)
    gb0 = rng.integers(-2**31 + 1, 2**31 - 1, m) if big else np.zeros(m)
    g, gb = exact(g0, np.int32), exact(gb0, np.int32)
    lib.dense_grad_acc_u8(P(e), P(x), P(g), P(gb), m, n, P(sel) if use_sel else None, k, int(eq[1]), int(xq[1]))
    gg, ggb = GD.grad_acc_u8(e, eq, x, xq, g0.reshape(m, n), gb0, sel if use_sel else None, k)
    check(same(g, gg.ravel()) and same(gb, ggb), "dense grad_acc_u8")
    sc = exact(rng.integers(0, int(rng.choice([2, 5, 1000])), m), np.uint32)
    idx, scr = exact(np.zeros(m), np.int32), exact(np.zeros(m), np.uint32)
    lib.select_topk_u32(P(sc), m, k, P(idx), P(scr))
    check(same(idx[:k], GD.select_topk(sc, k)), "select_topk")


# ---- dense, float32 reference and mixed mode -----------------------------------------------

def ref_update(w, G, present, gb, bpresent, lr, plain, per_row):
    """The standardized step of a fresh optimizer state in float64: rows
    `present` of w move by -lr (G - mu) / sigma (mu, sigma per tensor over
    the present rows, or per row), entries `bpresent` of the bias by -lr
    gb / RMS(gb) (mean 0, as bias_update_from_f32); plain SGD: -lr G.  -> (dw, dw_tol, db, db_tol):
    the tolerances bound float32 mean/std from sums (sum of squares minus
    the squared mean) and the rounding of the step; inf where sigma is too
    small against the mean for float32 to tell (C may skip or step)."""
    def step(g, cnt, centred=True):
        if plain:
            return lr * g, lr * 4 * U * np.abs(g)
        mu, sd = (g.mean(), g.std()) if centred else (0.0, np.sqrt(np.mean(g * g)))
        # float32 sums of cnt terms: mean within (cnt + 2) U mean|g|, variance
        # (sum of squares / cnt - mean^2) within ~(cnt + 4) U (sd^2 + mu^2)
        rel = 4 * (cnt + 4) * U * (1 + (mu / sd) ** 2) if sd > 0 else np.inf
        if not rel < 0.25:
            return np.zeros_like(g), np.full(g.shape, np.inf)
        return lr * (g - mu) / sd, lr * rel * (np.abs(g - mu) / sd + 1)

    G = np.asarray(G, np.float64)
    dw, tw = np.zeros(G.shape), np.zeros(G.shape)
    rows = np.flatnonzero(present)
    if len(rows) and per_row:
        for r in rows:
            dw[r], tw[r] = step(G[r], G.shape[1])
    elif len(rows):
        dw[rows], tw[rows] = step(G[rows], G[rows].size)
    db, tb = np.zeros(len(gb)), np.zeros(len(gb))
    bi = np.flatnonzero(bpresent)
    if len(bi):
        db[bi], tb[bi] = step(np.asarray(gb, np.float64)[bi], len(bi), centred=False)
    return dw, tw + 4 * U * np.abs(w), db, tb


def rows_mask(m, sel, k):
    r = np.zeros(m, bool)
    r[GD._rows(m, sel, k)] = True
    return r


def check_mixed_step(what, w, wq, w_new, wq_new, dw, tw):
    """uint8 weights after an update and re-map vs the float64 step: within
    one old step (floor / stochastic rounding) and half a new step (re-map)
    of the real target, clipped to the old range then to the new one."""
    so, sn = float(wq[GQ.SCALE]), float(wq_new[GQ.SCALE])
    zo, zn = int(wq[GQ.ZERO]), int(wq_new[GQ.ZERO])
    exp = np.clip(GQ.dequantize(w, so, zo) - dw.ravel(), -zo * so, (255 - zo) * so)
    exp = np.clip(exp, -zn * sn, (255 - zn) * sn)
    got = GQ.dequantize(w_new, sn, zn)
    check(np.all(np.abs(got - exp) <= 1.02 * so + 0.51 * sn + tw.ravel()), what)


def case_dense_float(lib, rng, i):
    m, n = int(rng.integers(1, 30)), int(rng.integers(1, 200))
    x = exact(rng.standard_normal(n) * float(np.exp(rng.uniform(-4, 4))), np.float32)
    w = exact(rng.standard_normal((m, n)) * float(np.exp(rng.uniform(-4, 1))), np.float32)
    b = exact(rng.standard_normal(m), np.float32) if rng.random() < 0.7 else None
    relu = int(rng.integers(0, 2))
    y = exact(np.zeros(m), np.float32)
    lib.dense_forward_f32(P(x), P(w), P(b), P(y), m, n, relu)
    w2d, bb = w.reshape(m, n), (np.zeros(m, np.float32) if b is None else b)
    tol = _tol(GD.forward_f32(np.abs(x), np.abs(w2d), np.abs(bb)), n + 1)
    check(np.all(np.abs(y - GD.forward_f32(x, w2d, bb, relu)) <= tol), "dense forward_f32")
    # ReLU mask (float and uint8 outputs), error propagation through row subsets
    e0 = (rng.standard_normal(m) * float(np.exp(rng.uniform(-6, 2)))).astype(np.float32)
    e0[rng.random(m) < 0.15] = 0
    e = exact(e0, np.float32)
    nz = lib.relu_backward_f32(P(e), P(y), m)
    check(same(e, np.where(y > 0, e0, F(0))) and nz == int(np.sum((y <= 0) & (e0 != 0))), "relu_backward_f32")
    yu, yq = exact(u8(rng, m), np.uint8), rand_qp(rng)
    em = exact(e0, np.float32)
    nz = lib.relu_backward_mixed(P(em), P(yu), m, int(yq[1]))
    check(same(em, np.where(yu > int(yq[1]), e0, F(0))) and nz == int(np.sum((yu <= int(yq[1])) & (e0 != 0))),
          "relu_backward_mixed")
    e = exact(e0, np.float32)
    k = int(rng.integers(0, m + 1))
    sel = exact(rng.permutation(m), np.int32) if i % 3 else None
    if sel is None:
        k = m
    ep = exact(np.zeros(n), np.float32)
    lib.dense_backward_f32(P(e), P(w), P(ep), m, n, P(sel), k)
    check(np.all(np.abs(ep - GD.backward_f32(e, w2d, sel, k)) <= _tol(GD.backward_f32(np.abs(e), np.abs(w2d), sel, k),
                                                                          m)), "dense backward_f32")
    wu, wq = exact(u8(rng, m * n), np.uint8), rand_qp(rng, -1, 1)
    lib.dense_backward_mixed(P(e), P(wu), int(wq[1]), F(wq[0]), P(ep), m, n, P(sel), k)
    # the kernel takes z_w off after the sum (sum e w - z_w sum e): both terms count
    aw = (wu.astype(np.float64) + int(wq[1])).reshape(m, n) * float(wq[0])
    check(np.all(np.abs(ep - GD.backward_mixed(e, wu.reshape(m, n), wq, sel, k)) <=
                 _tol(GD.backward_f32(np.abs(e), aw, sel, k), m)), "dense backward_mixed")
    # batch-1 updates from a fresh state: float32 (plain or standardized) and mixed
    per_row, lr = int(rng.integers(0, 2)), F(10.0 ** rng.uniform(-3, -1.3))
    live = rows_mask(m, sel, k) & (e0 != 0)
    plain = int(rng.integers(0, 2))
    state = exact(np.zeros(5 + 2 * m if per_row or rng.random() < 0.5 else 5), np.float32)
    u = Update(lr, F(rng.choice([1.0, 0.15])), F(1), 0, int(rng.integers(0, 2)), per_row, None)
    wf, bf = exact(w, np.float32), (exact(b, np.float32) if b is not None else None)
    lib.dense_update_f32(P(e), P(x), P(wf), P(bf), m, n, P(sel), k, C.byref(u), plain, P(state))
    dw, tw, db, tb = ref_update(w2d, np.outer(e0, x), live, e0, live, float(lr), plain, per_row)
    what = "dense update_f32 plain=%d per_row=%d" % (plain, per_row)
    check(np.all(np.abs(wf - (w2d - dw).ravel()) <= tw.ravel()), what + " (weights)")
    check(b is None or np.all(np.abs(bf - (b - db)) <= tb + 4 * U * np.abs(b)), what + " (bias)")
    check(state[0] == 1, what + " (step count)")
    n8 = max(n, 8)      # the mixed reference check: >= 8 inputs (a spread of x)
    xu, xq = exact(u8(rng, n8), np.uint8), rand_qp(rng)
    xd = GQ.dequantize(xu, xq[0], xq[1])
    wu, wq = exact(rng.integers(0, 256, m * n8), np.uint8), GQ.new_qp(-float(rng.uniform(0.1, 1)),
                                                                        float(rng.uniform(0.1, 1)))
    bi = exact(rng.integers(-2**20, 2**20, m), np.int32) if b is not None else None
    s_b = F(10.0 ** rng.uniform(-5, -3))
    lrm = F(float(wq[0]) * 10.0 ** rng.uniform(-0.5, 1.3))     # steps of 0.3 to 20 weight steps per sigma
    flags = int(rng.integers(0, 4)) | 4 * per_row
    state = exact(np.zeros(5 + 2 * m if per_row or rng.random() < 0.5 else 5), np.float32)
    seed = exact([int(rng.integers(1, 2**32))], np.uint32)
    u = Update(lrm, F(1), F(wq[0]), int(wq[1]), flags & 3, per_row, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
    w2, b2, wq2, nr = exact(wu, np.uint8), (exact(bi, np.int32) if bi is not None else None), exact(wq, np.float32), \
        exact(np.zeros(3), np.int32)
    lib.dense_update_mixed(P(e), P(xu), int(xq[1]), F(xq[0]), P(w2), P(b2), s_b, m, n8, P(sel), k, C.byref(u),
                           P(state), P(nr))
    tau = F(rng.choice([0.0, 0.01, 0.5]))
    lib.qt_weights_qp_update(P(w2), w2.size, P(wq2), P(nr), tau)
    dw, tw, db, tb = ref_update(GQ.dequantize(wu, wq[0], wq[1]).reshape(m, n8), np.outer(e0, xd), live, e0, live,
                                float(lrm), 0, per_row)
    what = "dense update_mixed flags=%d" % flags
    check_mixed_step(what + " (weights)", wu, wq, w2, wq2, dw, tw)
    check(bi is None or np.all(np.abs((b2 - bi.astype(np.int64)) * float(s_b) + db) <= 1.01 * float(s_b) + tb),
          what + " (bias)")
    case_dense_batch(lib, rng, m, per_row, lr, (x, w, b), (xu, xq, wu, wq, bi, s_b, lrm), sel, k)


def case_dense_batch(lib, rng, m, per_row, lr, f32, mixed, sel, k):
    """grad_acc_f32 / grad_acc_mixed over a batch of 1-3 samples onto what the
    buffers held, then update_rows_f32 / update_rows_mixed (which zero them)."""
    x, w, b = f32
    xu, xq, wu, wq, bi, s_b, lrm = mixed
    n, n8 = len(x), len(xu)
    B = int(rng.integers(1, 4))
    E = (rng.standard_normal((B, m)) * float(np.exp(rng.uniform(-6, 2)))).astype(np.float32)
    E[rng.random((B, m)) < 0.15] = 0
    X = (rng.standard_normal((B, n)) * float(np.exp(rng.uniform(-4, 4)))).astype(np.float32)
    XU = rng.integers(0, 256, (B, n8), dtype=np.uint8)
    rows = rows_mask(m, sel, k)
    lead = rng.random() < 0.3          # what the buffers held before this batch
    out = []
    for xs, gl, fn in ((X, n, "f32"), (XU, n8, "mixed")):
        g0 = (rng.standard_normal(m * gl) if lead else np.zeros(m * gl)).astype(np.float32)
        gb0 = (rng.standard_normal(m) if lead else np.zeros(m)).astype(np.float32)
        g, gb = exact(g0, np.float32), exact(gb0, np.float32)
        ref, agr = g0.astype(np.float64).reshape(m, gl), np.abs(g0).astype(np.float64).reshape(m, gl)
        for s in range(B):
            es = exact(E[s], np.float32)
            if fn == "f32":
                xs_ = exact(xs[s], np.float32)
                lib.dense_grad_acc_f32(P(es), P(xs_), P(g), P(gb), m, gl, P(sel), k)
                xr = xs[s].astype(np.float64)
            else:
                xs_ = exact(xs[s], np.uint8)
                lib.dense_grad_acc_mixed(P(es), P(xs_), int(xq[1]), F(xq[0]), P(g), P(gb), m, gl, P(sel), k)
                xr = GQ.dequantize(xs[s], xq[0], xq[1])
            live = rows & (E[s] != 0)
            ref[live] += np.outer(E[s][live], xr)
            agr[live] += np.abs(np.outer(E[s][live], xr))
        check(np.all(np.abs(g - ref.ravel()) <= (B + 3) * 2 * U * agr.ravel()), "dense grad_acc_%s" % fn)
        rgb = gb0.astype(np.float64) + np.where(rows[None, :] & (E != 0), E, 0).sum(axis=0)
        check(np.all(np.abs(gb - rgb) <= (B + 3) * 2 * U * (np.abs(gb0) + np.abs(E).sum(axis=0))),
              "dense grad_acc_%s (bias)" % fn)
        out.append((g.copy(), gb.copy(), g, gb))
    (g, gb, gc, gbc), (gm, gbm, gmc, gbmc) = out
    # update_rows_f32 from the buffers as accumulated (its input, exactly)
    plain = int(rng.integers(0, 2))
    state = exact(np.zeros(5 + 2 * m), np.float32)
    u = Update(lr, F(1), F(1), 0, int(rng.integers(0, 2)), per_row, None)
    wf, bf = exact(w, np.float32), (exact(b, np.float32) if b is not None else None)
    lib.update_rows_f32(P(wf), P(gc), P(bf), P(gbc) if b is not None else None, m, n, C.byref(u), plain, P(state))
    g2 = g.reshape(m, n)
    dw, tw, db, tb = ref_update(w.reshape(m, n), g2, np.any(g2 != 0, axis=1), gb, gb != 0, float(lr), plain, per_row)
    what = "update_rows_f32 plain=%d per_row=%d" % (plain, per_row)
    check(np.all(np.abs(wf - (w.reshape(m, n) - dw).ravel()) <= tw.ravel()), what + " (weights)")
    check(b is None or np.all(np.abs(bf - (b - db)) <= tb + 4 * U * np.abs(b)), what + " (bias)")
    check(not gc.any() and (b is None or not gbc.any()), what + ": g, gb not zeroed")
    # bias_update_f32 (a float32 bias alone, the float32 ConvTranspose2d's): the
    # accumulated gb, or one structure alone (DSGU's k = 1: sigma = |g|)
    gb1 = exact(gb, np.float32)
    if rng.random() < 0.3:
        gb1[:] = 0
        gb1[int(rng.integers(0, m))] = F(rng.standard_normal() * float(np.exp(rng.uniform(-20, 5))))
    bz = (b if b is not None else rng.standard_normal(m)).astype(np.float32)
    bc, gbr = exact(bz, np.float32), gb1.copy()
    state = exact(np.zeros(5), np.float32)
    u = Update(lr, F(1), F(1), 0, 0, 0, None)
    lib.bias_update_f32(P(bc), P(gb1), m, C.byref(u), plain, P(state))
    _, _, db, tb = ref_update(np.zeros((m, 1)), np.zeros((m, 1)), np.zeros(m, bool), gbr, gbr != 0, float(lr),
                              plain, 0)
    what = "bias_update_f32 plain=%d nonzero=%d" % (plain, int(np.count_nonzero(gbr)))
    check(np.all(np.abs(bc - (bz - db)) <= tb + 4 * U * np.abs(bz)), what)
    check(not gb1.any() and state[0] == 1, what + ": gb not zeroed or steps not counted")
    # update_rows_mixed
    flags = int(rng.integers(0, 4)) | 4 * per_row
    state = exact(np.zeros(5 + 2 * m), np.float32)
    seed = exact([int(rng.integers(1, 2**32))], np.uint32)
    u = Update(lrm, F(1), F(wq[0]), int(wq[1]), flags & 3, per_row, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
    w2, b2, wq2, nr = exact(wu, np.uint8), (exact(bi, np.int32) if bi is not None else None), exact(wq, np.float32), \
        exact(np.zeros(3), np.int32)
    lib.update_rows_mixed(P(w2), P(gmc), P(b2), P(gbmc), s_b, m, n8, C.byref(u), P(state), P(nr))
    lib.qt_weights_qp_update(P(w2), w2.size, P(wq2), P(nr), F(rng.choice([0.0, 0.01, 0.5])))
    g2 = gm.reshape(m, n8)
    dw, tw, db, tb = ref_update(GQ.dequantize(wu, wq[0], wq[1]).reshape(m, n8), g2, np.any(g2 != 0, axis=1), gbm,
                                gbm != 0, float(lrm), 0, per_row)
    what = "update_rows_mixed flags=%d" % flags
    check_mixed_step(what + " (weights)", wu, wq, w2, wq2, dw, tw)
    check(bi is None or np.all(np.abs((b2 - bi.astype(np.int64)) * float(s_b) + db) <= 1.01 * float(s_b) + tb),
          what + " (bias)")
    check(not gmc.any() and not gbmc.any(), what + ": g, gb not zeroed")


# ---- conv --------------------------------------------------------------------------------

def rand_geom(lib, rng, t):
    """A random geometry that C and the golden model both accept or both
    reject (checked); -> (geom tuple, Geom) of an accepted one."""
    while True:
        geom, ok = GC.random_geom(rng, t, hi=(7, 6, 11), bad_output_padding=True)
        g = Geom()
        rc = (lib.conv_transpose2d_geom_init if t else lib.conv2d_geom_init)(C.byref(g), *geom)
        check((rc == 0) == ok, "geom_init %s returned %d, golden %s" % (geom, rc, "accepts" if ok else "rejects"))
        if ok:
            return geom, g


def case_conv(lib, rng, i):
    t = bool(i % 2)
    geom, g = rand_geom(lib, rng, t)
    (ci, H, W), wshape, (co, oh, ow) = GC.geom_shapes(t, geom)
    check((g.out_ch, g.out_h, g.out_w) == (co, oh, ow), "geom out shape")
    name = "%s %s" % ("convT" if t else "conv", geom)
    ext = rng.random() < 0.15
    x, w = exact(u8(rng, (ci, H, W), ext), np.uint8), exact(u8(rng, wshape, ext), np.uint8)
    xq, wq = rand_qp(rng), rand_qp(rng, -1, 1, float(rng.choice([0.0, 0.001, 0.1])))
    if ext:
        xq[1], wq[1] = rng.choice([0, 255]), rng.choice([0, 255])
    b = exact(rng.integers(-2**20, 2**20, co), np.int32) if rng.random() < 0.7 else None
    bq = GQ.new_qp(-1.0, 1.0) if b is not None else None
    if b is not None:
        bq[0], bq[1] = F(F(xq[0]) * F(wq[0]) * F(rng.choice([1.0, 0.37, 3.0, 1e-4]))), 0
    relu = int(rng.integers(0, 2))
    x3, w4 = x.reshape(ci, H, W), w.reshape(wshape)
    _, yq0 = GC.forward_u8_qp(t, x3, xq, w4, wq, b, bq, GQ.new_qp(-1, 1), geom, relu)
    swx = F(F(wq[0]) * F(xq[0]))
    yq = near_qp(rng, (yq0[GQ.OBS_MIN] / swx, yq0[GQ.OBS_MAX] / swx), swx)
    fwd = lib.conv_transpose2d_forward_u8 if t else lib.conv2d_forward_u8
    scratch = exact(np.zeros((lib.conv_transpose2d_scratch_len_u8 if t else lib.conv2d_scratch_len_u8)(C.byref(g))),
                    np.uint8)
    y, r = exact(np.zeros(co * oh * ow), np.uint8), exact(np.zeros(2), np.int32)
    rq = ConvRq(int(xq[1]), int(wq[1]), int(yq[1]), fix(F(swx / F(yq[0]))),
                fix(F(F(bq[0]) / swx) if b is not None else F(0)), relu)
    fwd(C.byref(g), P(x), P(w), P(b), P(y), C.byref(rq), P(r), P(scratch))
    gy, gyq = GC.forward_u8_qp(t, x3, xq, w4, wq, b, bq, yq, geom, relu)
    yq_c = exact(yq, np.float32)
    lib.qt_qp_observe(P(yq_c), F(F(r[0]) * swx), F(F(r[1]) * swx))
    check(same(y, gy.ravel()), name + ": forward y")
    check(same(yq_c, gyq), name + ": forward range")
    # ReLU mask + error propagation through a channel subset (any order)
    e = exact(u8(rng, (co, oh, ow)), np.uint8)
    eq = rand_qp(rng, -1, 1)
    _, _, exq0 = GC.backward_u8_qp(t, e.reshape(co, oh, ow), eq, None, yq, x3, w4, wq, GQ.new_qp(-1, 1), geom)
    swe = F(F(wq[0]) * F(eq[0]))
    exq = near_qp(rng, (exq0[GQ.OBS_MIN] / swe, exq0[GQ.OBS_MAX] / swe), swe)
    if rng.random() < 0.5:
        k, sel = int(rng.integers(0, co + 1)), exact(rng.permutation(co), np.int32)
    else:
        k, sel = co, None
    gsel = None if sel is None else sel[:k]
    # mask-aware in half the cases of each of Conv2d and ConvTranspose2d (t is i % 2)
    xm, xmq = rand_mask(rng, ci * H * W) if (i >> 1) % 2 else (None, None)
    ge, gex, gexq = GC.backward_u8_qp(t, e.reshape(co, oh, ow), eq, gy if relu else None, yq,
                                      x3 if xm is None else xm.reshape(ci, H, W), w4, wq, exq, geom, gsel,
                                      xq=xmq)
    if relu:
        lib.conv_relu_mask_u8(P(e), P(y), co * oh * ow, int(eq[1]), int(yq[1]))
    check(same(e, ge.ravel()), name + ": ReLU mask")
    ex = exact(np.zeros(ci * H * W), np.uint8)
    rq = ConvRq(int(eq[1]), int(wq[1]), int(exq[1]), fix(F(swe / F(exq[0]))), fix(F(0)), 0,
                None if xm is None else xm.ctypes.data, 0 if xm is None else int(xmq[1]))
    (lib.conv_transpose2d_backward_input_u8 if t else lib.conv2d_backward_input_u8)(
        C.byref(g), P(e), P(w), P(ex), C.byref(rq), P(r), P(sel), k, P(scratch))
    exq_c = exact(exq, np.float32)
    rr = observe_masked(r, xm is not None)
    lib.qt_qp_observe(P(exq_c), F(F(rr[0]) * swe), F(F(rr[1]) * swe))
    check(same(ex, gex.ravel()), name + ": error propagation ex (k=%s)" % (k if sel is not None else "all"))
    check(same(exq_c, gexq), name + ": error range")
    # batch gradient, accumulated onto what the buffers held (saturating)
    big = rng.random() < 0.2
    gw0 = rng.integers(-2**31 + 1, 2**31 - 1, w.size) if big else np.zeros(w.size)
    gb0 = rng.integers(-2**31 + 1, 2**31 - 1, co) if big else np.zeros(co)
    gw, gb = exact(gw0, np.int32), exact(gb0, np.int32)
    (lib.conv_transpose2d_grad_acc_u8 if t else lib.conv2d_grad_acc_u8)(
        C.byref(g), P(e), int(eq[1]), P(x), int(xq[1]), P(gw), P(gb), P(sel), k, P(scratch))
    ggw, ggb = GC.grad_u8_qp(t, ge, eq, x3, xq, geom, gsel)
    check(same(gw, GD.sat_add_i32(gw0, ggw.ravel())), name + ": gradient gw")
    check(same(gb, GD.sat_add_i32(gb0, ggb)), name + ": gradient gb")
    # batch-1 update, per filter, twice (first step and a smoothed one), any rounding mode
    flags = 4 | int(rng.integers(0, 4))
    hp = np.array([10.0 ** rng.uniform(-4, -0.5), rng.choice([1.0, 0.15]), rng.choice([0.0, 0.01, 0.5])], F)
    state = exact(np.zeros(5 + 2 * co), np.float32)
    seed = exact([int(rng.integers(1, 2**32))], np.uint32)
    usel = None if sel is None else exact(np.sort(sel[:max(k, 1)]), np.int32)
    nsel = co if usel is None else len(usel)
    gw_, gwq, gb_, gst, grng = w4, wq, b, state.copy(), int(seed[0])
    wc, wqc, bc = exact(w, np.uint8), exact(wq, np.float32), (exact(b, np.int32) if b is not None else None)
    upd = lib.conv_transpose2d_update_u8 if t else lib.conv2d_update_u8
    for step in range(2):
        gw_, gwq, gb_, gst, grng, gre = GC.update_u8_qp(t, ge, eq, x3, xq, gw_, gwq, gb_, bq, geom, usel, hp, flags,
                                                         gst, grng)
        u = Update(hp[0], hp[1], F(wqc[0]), int(wqc[1]), flags & 3, 1, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
        nr = exact(np.zeros(3), np.int32)
        upd(C.byref(g), P(e), int(eq[1]), P(x), int(xq[1]), P(wc), P(bc), P(usel), nsel, F(F(eq[0]) * F(xq[0])),
            F(eq[0]), F(bq[0]) if bq is not None else F(1), C.byref(u), P(state), int(not state[0] > 0), P(nr),
            P(scratch))
        state[0] = F(state[0] + F(1))
        re = lib.qt_weights_qp_update(P(wc), wc.size, P(wqc), P(nr), F(hp[2]))
        what = name + ": update step %d flags=%d" % (step, flags)
        check(same(wc, gw_.ravel()) and same(wqc, gwq) and re == gre, what + " (weights)")
        check(same(state, gst) and int(seed[0]) == grng, what + " (state, rng)")
        check(b is None or same(bc, gb_), what + " (bias)")
    if t:
        case_convt_slices(lib, rng, g, geom, name, (ge, eq, x, x3, xq, w, w4, wq, b, bq, exq, xm, xmq))
    case_conv_f32(lib, rng, t, g, geom, wshape, name)
    case_conv_mixed(lib, rng, t, g, geom, name, (x3, xq, w4, wq, y, yq, relu), (b, bq, usel, nsel, scratch))
    case_conv_select(lib, rng, e.reshape(co, oh, ow), eq, name)


def case_convt_slices(lib, rng, g, geom, name, args):
    """ConvTranspose2d DSGU over input-channel slices (Options(dsgu_convt=
    'input'), bind_conv.c): the slices' scores, the error propagation of a
    strictly ascending subset (mask-aware as the caller drew it) and two
    batch-1 update steps over the selected slices (flag 8, every output
    channel's bias), in the slices' own scratch."""
    e, eq, x, x3, xq, w, w4, wq, b, bq, exq, xm, xmq = args      # e: after the ReLU mask
    ci = g.in_ch
    sscr = exact(np.zeros(lib.conv_transpose2d_slices_scratch_len_u8(C.byref(g))), np.uint8)
    stride, pad, _ = GC.geom_args(geom)
    sc, emap = exact(np.zeros(2 * ci), np.uint32), exact(np.zeros(g.in_h * g.in_w), np.uint32)
    tot = lib.conv_transpose2d_slice_scores_u8(C.byref(g), P(e), int(eq[1]), P(x), int(xq[1]), P(sc), P(emap))
    gsc = GC.slice_scores_u8(e.reshape(g.out_ch, g.out_h, g.out_w), int(eq[1]), x3, int(xq[1]), stride, pad,
                             (g.k_h, g.k_w))
    check(same(sc[:ci], gsc.astype(np.uint32)) and tot == int(np.abs(e.astype(np.int64) - int(eq[1])).sum()),
          name + ": slice scores")
    sel = exact(np.flatnonzero(rng.random(ci) < 0.5), np.int32)
    k = int(sel.size)
    sel = exact(np.concatenate([sel, np.zeros(ci - k, np.int32)]), np.int32)   # int32[in_ch], as bound
    _, gex, gexq = GC.backward_u8_qp(True, e.reshape(g.out_ch, g.out_h, g.out_w), eq, None, None,
                                     x3 if xm is None else xm.reshape(x3.shape), w4, wq, exq, geom, sel[:k],
                                     slices=True, xq=xmq)
    swe = F(F(wq[0]) * F(eq[0]))
    rq = ConvRq(int(eq[1]), int(wq[1]), int(exq[1]), fix(F(swe / F(exq[0]))), fix(F(0)), 0,
                None if xm is None else xm.ctypes.data, 0 if xm is None else int(xmq[1]))
    ex, r = exact(np.zeros(x.size), np.uint8), exact(np.zeros(2), np.int32)
    lib.conv_transpose2d_backward_slices_u8(C.byref(g), P(e), P(w), P(ex), C.byref(rq), P(r), P(sel), k, P(sscr))
    exq_c = exact(exq, np.float32)
    rr = observe_masked(r, xm is not None)
    lib.qt_qp_observe(P(exq_c), F(F(rr[0]) * swe), F(F(rr[1]) * swe))
    check(same(ex, gex.ravel()), name + ": slices error propagation ex (k=%d)" % k)
    check(same(exq_c, gexq), name + ": slices error range")
    flags = 4 | int(rng.integers(0, 4))
    hp = np.array([10.0 ** rng.uniform(-4, -0.5), rng.choice([1.0, 0.15]), rng.choice([0.0, 0.01, 0.5])], F)
    state = exact(np.zeros(5 + 2 * ci), np.float32)
    seed = exact([int(rng.integers(1, 2**32))], np.uint32)
    usel = None if rng.random() < 0.3 else sel
    nsel = ci if usel is None else k
    gw_, gwq, gb_, gst, grng = w4, wq, b, state.copy(), int(seed[0])
    wc, wqc, bc = exact(w, np.uint8), exact(wq, np.float32), (exact(b, np.int32) if b is not None else None)
    for step in range(2):
        gw_, gwq, gb_, gst, grng, gre = GC.update_u8_qp(True, e.reshape(g.out_ch, g.out_h, g.out_w), eq, x3, xq,
                                                         gw_, gwq, gb_, bq, geom, None if usel is None else
                                                         usel[:nsel], hp, flags | GC.SLICES, gst, grng)
        u = Update(hp[0], hp[1], F(wqc[0]), int(wqc[1]), flags & 3, 1, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
        nr = exact(np.zeros(3), np.int32)
        lib.conv_transpose2d_update_slices_u8(
            C.byref(g), P(e), int(eq[1]), P(x), int(xq[1]), P(wc), P(bc), P(usel), nsel, F(F(eq[0]) * F(xq[0])),
            F(eq[0]), F(bq[0]) if bq is not None else F(1), C.byref(u), P(state), int(not state[0] > 0), P(nr),
            P(sscr))
        state[0] = F(state[0] + F(1))
        re = lib.qt_weights_qp_update(P(wc), wc.size, P(wqc), P(nr), F(hp[2]))
        what = name + ": slices update step %d flags=%d k=%s" % (step, flags, nsel)
        check(same(wc, gw_.ravel()) and same(wqc, gwq) and re == gre, what + " (weights)")
        check(same(state, gst) and int(seed[0]) == grng, what + " (state, rng)")
        check(b is None or same(bc, gb_), what + " (bias)")


def _tol(ref_abs, terms):
    """float32 sums of `terms` products in any order vs float64: each result
    within (terms + 2) * 2^-24 * sum |products| (plus the final rounding)."""
    return (terms + 2) * U * np.asarray(ref_abs, np.float64).ravel() + 1e-37


def case_conv_f32(lib, rng, t, g, geom, wshape, name):
    stride, pad, op = GC.geom_args(geom)
    ci, H, W, co = geom[:4]
    oh, ow = g.out_h, g.out_w
    x = exact(rng.standard_normal(ci * H * W), np.float32)
    w = exact(rng.standard_normal(wshape) * float(np.exp(rng.uniform(-3, 1))), np.float32)
    b = exact(rng.standard_normal(co), np.float32) if rng.random() < 0.7 else None
    relu = int(rng.integers(0, 2))
    y = exact(np.zeros(co * oh * ow), np.float32)
    (lib.conv_transpose2d_forward_f32 if t else lib.conv2d_forward_f32)(C.byref(g), P(x), P(w), P(b), P(y), relu)
    x3, w4 = x.reshape(ci, H, W), w.reshape(wshape)
    bb = np.zeros(co, np.float32) if b is None else b
    fwd = (lambda xx, ww, bv: GC.conv_transpose2d_forward_f32(xx, ww, bv, stride, pad, op, False)) if t else \
        (lambda xx, ww, bv: GC.conv2d_forward_f32(xx, ww, bv, stride, pad, False))
    ref = fwd(x3, w4, bb)
    ref = np.maximum(ref, 0) if relu else ref
    terms = max(ci * geom[4] * geom[5] + 1, co * geom[4] * geom[5], oh * ow, H * W)
    check(np.all(np.abs(y - ref.ravel()) <= _tol(fwd(np.abs(x3), np.abs(w4), np.abs(bb)), terms)),
          name + ": float32 forward")
    e = exact(rng.standard_normal(co * oh * ow), np.float32)
    if rng.random() < 0.5:
        k, sel = int(rng.integers(0, co + 1)), exact(rng.permutation(co), np.int32)
    else:
        k, sel = co, None
    eu = e.reshape(co, oh, ow).astype(np.float64)
    if sel is not None:
        eu[np.setdiff1d(np.arange(co), sel[:k])] = 0
    ex, gw, gb = (exact(np.zeros(n), np.float32) for n in (x.size, w.size, co))
    (lib.conv_transpose2d_backward_f32 if t else lib.conv2d_backward_f32)(
        C.byref(g), P(e), P(y) if relu else None, P(x), P(w), P(ex), P(gw), P(gb), P(sel), k)
    bwd = GC.conv_transpose2d_backward_f32 if t else GC.conv2d_backward_f32
    yc = y.reshape(co, oh, ow) if relu else None     # the C output decides the ReLU mask
    rex, rgw, rgb = bwd(eu, x3, w4, stride, pad, yc)
    aex, agw, agb = bwd(np.abs(eu), np.abs(x3), np.abs(w4), stride, pad, yc)
    for what, got, r_, a_ in (("ex", ex, rex, aex), ("gw", gw, rgw, agw), ("gb", gb, rgb, agb)):
        check(np.all(np.abs(got - r_.ravel()) <= _tol(a_, terms)), name + ": float32 backward " + what)


def case_conv_mixed(lib, rng, t, g, geom, name, fwd, upd):
    """Mixed mode (uint8 forward, float32 errors): ReLU mask + error
    propagation with the uint8 weights and float gradients from the uint8
    inputs against the float golden model on the dequantized tensors; the
    fused batch-1 update bit-exact against the batch path it must equal
    (grad_mixed, conv_swap_axes for ConvTranspose2d, update_rows_mixed, whose
    own reference check is in the dense_float group)."""
    x3, xq, w4, wq, y, yq, relu = fwd
    b, bq, usel, nsel, scratch = upd
    stride, pad, op = GC.geom_args(geom)
    ci, H, W, co = geom[:4]
    oh, ow, kk = g.out_h, g.out_w, geom[4] * geom[5]
    terms = max(ci * kk + 1, co * kk, oh * ow, H * W)
    x, w = exact(x3, np.uint8), exact(w4, np.uint8)
    e0 = rng.standard_normal(co * oh * ow) * float(np.exp(rng.uniform(-6, 3)))
    e = exact(e0, np.float32)
    if rng.random() < 0.5:
        k, sel = int(rng.integers(0, co + 1)), exact(rng.permutation(co), np.int32)
    else:
        k, sel = co, None
    ex = exact(np.zeros(x.size), np.float32) if rng.random() < 0.9 else None
    (lib.conv_transpose2d_backward_mixed if t else lib.conv2d_backward_mixed)(
        C.byref(g), P(e), P(y) if relu else None, int(yq[1]), P(w), int(wq[1]), F(wq[0]), P(ex), P(sel), k)
    em = np.where(y.astype(np.int64) > int(yq[1]), e0.astype(np.float32), F(0)) if relu else e0.astype(np.float32)
    check(same(e, em), name + ": mixed ReLU mask")
    eu = em.reshape(co, oh, ow).astype(np.float64)
    if sel is not None:
        eu[np.setdiff1d(np.arange(co), sel[:k])] = 0
    xd, wd = GQ.dequantize(x3, xq[0], xq[1]), GQ.dequantize(w4, wq[0], wq[1])
    bwd = GC.conv_transpose2d_backward_f32 if t else GC.conv2d_backward_f32
    rex, rgw, rgb = bwd(eu, xd, wd, stride, pad, None)
    aex, agw, agb = bwd(np.abs(eu), np.abs(xd), np.abs(wd), stride, pad, None)
    if ex is not None:
        check(np.all(np.abs(ex - rex.ravel()) <= _tol(aex, terms)), name + ": mixed error propagation ex")
    # float gradients (real units), accumulated onto what the buffers held
    gw0 = rng.standard_normal(w.size) * float(rng.choice([0.0, 1.0])) * float(np.abs(rgw).max() + 1e-30)
    gb0 = rng.standard_normal(co) * float(rng.choice([0.0, 1.0]))
    gw, gb = exact(gw0, np.float32), (exact(gb0, np.float32) if rng.random() < 0.8 else None)
    (lib.conv_transpose2d_grad_mixed if t else lib.conv2d_grad_mixed)(
        C.byref(g), P(e), P(x), int(xq[1]), F(xq[0]), P(gw), P(gb), P(sel), k)
    f0 = gw0.astype(np.float32).astype(np.float64)
    check(np.all(np.abs(gw - (f0 + rgw.ravel())) <= _tol(agw, terms) + 2 * U * np.abs(f0)),
          name + ": mixed gradient gw")
    if gb is not None:
        f0 = gb0.astype(np.float32).astype(np.float64)
        check(np.all(np.abs(gb - (f0 + rgb)) <= _tol(agb, oh * ow + 1) + 2 * U * np.abs(f0)),
              name + ": mixed gradient gb")
    # fused batch-1 update == batch path, two steps, any rounding mode
    flags = 4 | int(rng.integers(0, 4))
    hp = np.array([10.0 ** rng.uniform(-4, -1), rng.choice([1.0, 0.15]), rng.choice([0.0, 0.01, 0.5])], F)
    s_b = F(bq[0]) if bq is not None else F(1)
    seed0 = int(rng.integers(1, 2**32))
    runs = []
    for fused in (True, False):
        wc, wqc = exact(w, np.uint8), exact(wq, np.float32)
        bc = exact(b, np.int32) if b is not None else None
        state, seed = exact(np.zeros(5 + 2 * co), np.float32), exact([seed0], np.uint32)
        res = []
        for step in range(2):
            u = Update(hp[0], hp[1], F(wqc[0]), int(wqc[1]), flags & 3, 1, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
            nr = exact(np.zeros(3), np.int32)
            if fused:
                (lib.conv_transpose2d_update_mixed if t else lib.conv2d_update_mixed)(
                    C.byref(g), P(e), P(x), int(xq[1]), F(xq[0]), P(wc), P(bc), s_b, P(usel), nsel, C.byref(u),
                    P(state), P(nr), P(scratch))
            else:
                gw, gb = exact(np.zeros(w.size), np.float32), exact(np.zeros(co), np.float32)
                (lib.conv_transpose2d_grad_mixed if t else lib.conv2d_grad_mixed)(
                    C.byref(g), P(e), P(x), int(xq[1]), F(xq[0]), P(gw), P(gb), P(usel), nsel)
                if t:      # filter-major rows [out][in][kh][kw] and back
                    gfm, wfm = exact(np.zeros(w.size), np.float32), exact(np.zeros(w.size), np.uint8)
                    lib.conv_swap_axes_u32(P(gw), P(gfm), ci, co, kk)
                    lib.conv_swap_axes_u8(P(wc), P(wfm), ci, co, kk)
                    lib.update_rows_mixed(P(wfm), P(gfm), P(bc), P(gb), s_b, co, ci * kk, C.byref(u), P(state), P(nr))
                    lib.conv_swap_axes_u8(P(wfm), P(wc), co, ci, kk)
                else:
                    lib.update_rows_mixed(P(wc), P(gw), P(bc), P(gb), s_b, co, ci * kk, C.byref(u), P(state), P(nr))
            res.append(lib.qt_weights_qp_update(P(wc), wc.size, P(wqc), P(nr), F(hp[2])))
        runs.append((wc, wqc, bc, state, int(seed[0]), res))
    (w1, wq1, b1, st1, r1, re1), (w2, wq2, b2, st2, r2, re2) = runs
    what = name + ": mixed update flags=%d, fused vs batch path" % flags
    check(same(w1, w2) and same(wq1, wq2) and re1 == re2, what + " (weights)")
    check(same(st1, st2) and r1 == r2, what + " (state, rng)")
    check(b is None or same(b1, b2), what + " (bias)")


def case_conv_select(lib, rng, e, eq, name):
    co = e.shape[0]
    lmin = F(rng.choice([0.0, 0.05, 0.3]))
    lmax = F(max(lmin, F(rng.choice([0.1, 0.5, 1.0]))))
    emax0 = F(rng.choice([0.0, 1e-3, 10.0]))
    scores = exact(np.zeros(co), np.uint32)
    lib.conv_channel_scores_u8(P(e), co, e[0].size, int(eq[1]), P(scores))
    ebar = F(F(F(int(scores.sum())) / F(e.size)) * F(eq[0]))
    st = exact([emax0], np.float32)
    k = lib.dsgu_k(ebar, P(st), lmin, lmax, co)
    sel, scr = exact(np.zeros(co), np.int32), exact(np.zeros(co), np.uint32)
    lib.select_topk_u32(P(scores), co, k, P(sel), P(scr))
    gk, gsel, gemax = GC.select_u8_qp(e, eq, lmin, lmax, emax0)
    check(k == gk and same(sel[:k], gsel) and same(st[0], F(gemax)), name + ": DSGU select")


# ---- loss heads ------------------------------------------------------------------------

def _qp_out(rng):
    return rand_qp(rng, -1, 1) if rng.random() < 0.5 else rand_qp(rng)


def case_loss(lib, rng, i):
    stats, lut = exact(np.zeros(3), np.float32), exact(np.zeros(512), np.float32)
    n = int(rng.choice([1, 2, 17, 100, 784]))
    tgt = exact(rng.integers(0, 256, n), np.uint8)
    tgt[rng.random(n) < 0.3] = 0
    mode = i % 3          # uint8 logits + uint8 error, uint8 logits + float error, float32
    if mode == 2:
        x = exact(rng.normal(0, float(np.exp(rng.uniform(-2, 3))), n), np.float32)
        if rng.random() < 0.2:
            x[: min(n, 4)] = np.array([95.0, -95.0, 0.0, -0.0], np.float32)[: min(n, 4)]
        lin = Lin(None, P(x), F(1), 0)
        ge, gst = GL.bce_sigmoid(x, tgt, None)
    else:
        xq = rand_qp(rng)
        x = exact(u8(rng, n), np.uint8)
        lin = Lin(P(x), None, F(xq[0]), int(xq[1]))
    eq = _qp_out(rng) if mode == 0 else None
    if mode != 2:
        ge, gst = GL.bce_sigmoid_q(x, xq[0], xq[1], tgt, eq.copy() if eq is not None else None)
    use_lut = mode != 2 and rng.random() < 0.5
    e = exact(np.zeros(n), np.uint8 if mode == 0 else np.float32)
    eqc = exact(eq, np.float32) if eq is not None else None
    out = Lout(P(e), None, P(eqc)) if mode == 0 else Lout(None, P(e), None)
    lib.qt_bce_sigmoid(C.byref(lin), P(tgt), n, C.byref(out), P(stats), P(lut) if use_lut else None)
    what = "bce mode=%d n=%d lut=%d" % (mode, n, use_lut)
    check(same(e, ge) and same(stats, gst), what)
    if mode == 0:
        gq = eq.copy()
        GL.bce_sigmoid_q(x, xq[0], xq[1], tgt, gq)
        check(same(eqc, gq), what + " (error range)")
    # softmax + CE
    c = int(rng.integers(1, 40))
    label = int(rng.integers(0, c))
    if i % 2:
        l = exact(rng.normal(0, float(np.exp(rng.uniform(-2, 4))), c), np.float32)
        lin, lf = Lin(None, P(l), F(1), 0), l
    else:
        lq = rand_qp(rng, -30, 30)
        l = exact(u8(rng, c), np.uint8)
        lin, lf = Lin(P(l), None, F(lq[0]), int(lq[1])), GL.dequant(l, lq[0], lq[1])
    eq = _qp_out(rng) if rng.random() < 0.5 else None
    e = exact(np.zeros(c), np.uint8 if eq is not None else np.float32)
    eqc = exact(eq, np.float32) if eq is not None else None
    out = Lout(P(e), None, P(eqc)) if eq is not None else Lout(None, P(e), None)
    pred = lib.qt_softmax_ce(C.byref(lin), c, label, C.byref(out), P(stats))
    gq = eq.copy() if eq is not None else None
    gpred, ge, gst = GL.softmax_ce(lf, label, gq)
    what = "softmax_ce c=%d uint8 logits=%d uint8 error=%d" % (c, i % 2 == 0, eq is not None)
    check(pred == gpred and same(e, ge) and same(stats, gst), what)
    check(eq is None or same(eqc, gq), what + " (error range)")


def latent_signed_zero_tie(lib):
    """eps = 0, beta = 0: dL/dlogvar is +0 or -0 by the sign of dz and of
    exp(lv) - 1, and the largest error is a tie of 0.0 and -0.0; the kernel
    keeps the first (the golden model took np.max's pick until this case)."""
    h = exact([3.87, -5.15, 2.26, -5.32], np.float32)
    eps, dz = exact(np.zeros(2), np.float32), exact([-0.0186, -0.0885], np.float32)
    dh, stats = exact(np.zeros(4), np.float32), exact(np.zeros(3), np.float32)
    hin, dzin, out = Lin(None, P(h), F(1), 0), Lin(None, P(dz), F(1), 0), Lout(None, P(dh), None)
    lib.qt_latent_backward(C.byref(hin), 2, P(eps), C.byref(dzin), F(0), C.byref(out), P(stats))
    gdh, gst = GL.latent_backward(h, eps, dz, F(0))
    check(same(dh, gdh) and same(stats, gst), "latent backward, tie of 0.0 and -0.0 at the max")


def case_latent(lib, rng, i):
    if i == 0:
        latent_signed_zero_tie(lib)
    stats = exact(np.zeros(3), np.float32)
    L = int(rng.choice([1, 2, 3, 10, 16, 32]))
    quant = i % 2 == 0
    if quant:
        hq = rand_qp(rng, -float(rng.uniform(2, 40)), float(rng.uniform(2, 40)))
        h = exact(u8(rng, 2 * L), np.uint8)
        hin, hf = Lin(P(h), None, F(hq[0]), int(hq[1])), GL.dequant(h, hq[0], hq[1])
    else:
        mu, lv = rng.normal(0, 2, L), rng.normal(-1, 3, L)
        if rng.random() < 0.3:
            lv[0] = rng.choice([-40.0, 40.0])       # clamped logvar
        h = exact(np.concatenate([mu, lv]), np.float32)
        hin, hf = Lin(None, P(h), F(1), 0), h
    draw = rng.random() < 0.6
    st = exact([GL.rng_seed(int(rng.integers(0, 2**31)))], np.uint32) if draw else None
    eps = exact(np.zeros(L) if draw or rng.random() < 0.3 else rng.normal(0, 1, L), np.float32)
    geps = GL.rng_normal(int(st[0]), L)[1] if draw else eps.copy()
    gstate = GL.rng_normal(int(st[0]), L)[0] if draw else None
    zq = rand_qp(rng, -4, 4) if quant else None
    z = exact(np.zeros(L), np.uint8 if quant else np.float32)
    zqc = exact(zq, np.float32) if quant else None
    out = Lout(P(z), None, P(zqc)) if quant else Lout(None, P(z), None)
    lib.qt_latent_forward(C.byref(hin), L, P(st), P(eps), C.byref(out), P(stats))
    gq = zq.copy() if quant else None
    gz, gst = GL.latent_forward(hf, geps, gq)
    what = "latent forward L=%d uint8=%d drawn=%d" % (L, quant, draw)
    check(same(eps, geps) and (not draw or int(st[0]) == gstate), what + " (eps, generator)")
    check(same(z, gz) and same(stats, gst) and (not quant or same(zqc, gq)), what)
    beta = F(rng.choice([0.0, 0.5, 1.0, 4.0]))
    if quant and rng.random() < 0.5:
        dzq = rand_qp(rng, -0.5, 0.5)
        dz = exact(u8(rng, L), np.uint8)
        dzin, dzf = Lin(P(dz), None, F(dzq[0]), int(dzq[1])), GL.dequant(dz, dzq[0], dzq[1])
    else:
        dz = exact(rng.normal(0, 0.3, L), np.float32)
        dzin, dzf = Lin(None, P(dz), F(1), 0), dz
    dhq = rand_qp(rng, -1, 1) if quant else None
    dh = exact(np.zeros(2 * L), np.uint8 if quant else np.float32)
    dhqc = exact(dhq, np.float32) if quant else None
    out = Lout(P(dh), None, P(dhqc)) if quant else Lout(None, P(dh), None)
    lib.qt_latent_backward(C.byref(hin), L, P(eps), C.byref(dzin), beta, C.byref(out), P(stats))
    gq = dhq.copy() if quant else None
    gdh, gst = GL.latent_backward(hf, geps, dzf, beta, gq)
    check(same(dh, gdh) and same(stats, gst) and (not quant or same(dhqc, gq)), "latent backward L=%d" % L)


# ---- quantization core and the batch update ---------------------------------------------

def _f32s(rng, n):
    """Floats over many magnitudes, signs, zeros and halves."""
    v = rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))
    v[rng.random(n) < 0.1] = 0.0
    half = rng.random(n) < 0.1
    v[half] = rng.integers(-1000, 1000, int(half.sum())) + 0.5
    return v.astype(np.float32)


def case_quant(lib, rng, i):
    for a, b in _f32s(rng, 16).reshape(8, 2):
        s, z = exact([0], np.float32), exact([0], np.int32)
        lib.qt_qparams_from_range(a, b, P(s), P(z))
        gs, gz = GQ.quant_params(a, b)
        check(same(s[0], F(gs)) and int(z[0]) == gz, "qparams_from_range(%r, %r)" % (a, b))
    for v in _f32s(rng, 16):
        f = lib.qt_fixmul_from_f32(v)
        check((f.mult, f.shift) == GQ.quantize_multiplier(v), "fixmul_from_f32(%r)" % v)
        if abs(v) < 2.0 ** 30:
            check(lib.qt_floor_f32(v) == GQ.floor_f32(v) and lib.qt_round_f32(v) == GQ.round_f32(v),
                  "floor/round(%r)" % v)
        check(same(F(lib.qt_sqrt_f32(abs(v))), GQ.sqrt_f32(abs(v))), "sqrt(%r)" % v)
    # a record through a few observations and updates
    qp = rand_qp(rng, alpha=float(rng.choice([0.0, 0.01, 0.5, 1.0])))
    qc = exact(qp, np.float32)
    for _ in range(int(rng.integers(1, 5))):
        for _ in range(int(rng.integers(0, 3))):
            lo, hi = np.sort(_f32s(rng, 2))
            lib.qt_qp_observe(P(qc), lo, hi)
            GQ.qp_observe(qp, lo, hi)
        lib.qt_qp_update(P(qc))
        GQ.qp_update(qp)
        check(same(qc, qp), "qp observe/update")
    # re-map
    q = exact(u8(rng, int(rng.integers(1, 600))), np.uint8)
    s0, s1 = F(np.exp(rng.uniform(-8, 3))), F(np.exp(rng.uniform(-8, 3)))
    z0, z1 = int(rng.integers(0, 256)), int(rng.integers(0, 256))
    gq = GQ.remap_u8(q, s0, z0, s1, z1)
    lib.qt_remap_u8(P(q), q.size, s0, z0, s1, z1)
    check(same(q, gq), "remap_u8")
    # CRC-32 of checkpoints and streams, continued from any running value (zlib's)
    data, c0 = exact(u8(rng, int(rng.integers(0, 300))), np.uint8), int(rng.integers(0, 2**32))
    check(lib.qt_crc32_update(c0, P(data), data.size) == zlib.crc32(data.tobytes(), c0), "crc32_update")
    case_update_rows(lib, rng)


def case_update_rows(lib, rng):
    """update_rows_u8 + the bias update + weights_qp_update, as bind_batch.c
    runs them (the batch path): every rounding mode, per tensor or per row."""
    rows, n = int(rng.integers(1, 20)), int(rng.integers(1, 200))
    g = rng.integers(-2**int(rng.integers(1, 31)), 2**20, (rows, n)).astype(np.int32)
    g[rng.random(rows) < 0.2] = 0                      # unselected rows
    w = exact(u8(rng, rows * n), np.uint8)
    wq = rand_qp(rng, -1, 1, float(rng.choice([0.0, 0.01, 0.3])))
    b = exact(rng.integers(-2**24, 2**24, rows), np.int32) if rng.random() < 0.7 else None
    gb = exact(rng.integers(-2**16, 2**16, rows), np.int32) if b is not None else None
    bq = GQ.new_qp(-1, 1)
    flags = int(rng.integers(0, 8))
    lr, an, tau = F(10.0 ** rng.uniform(-4, 0)), F(rng.choice([1.0, 0.15])), F(rng.choice([0.0, 0.01, 0.5]))
    s_g, s_gb = F(np.exp(rng.uniform(-20, 0))), F(np.exp(rng.uniform(-10, 0)))
    state = exact(np.zeros(5 + 2 * rows), np.float32)
    if rng.random() < 0.5:
        state[:] = np.abs(rng.standard_normal(state.size)) * F(1e-3)
        state[0] = F(3)
    seed = exact([int(rng.integers(1, 2**32))], np.uint32)
    gw, gbo, gst, grng, gnr = GD.update_rows_u8(g, s_g, w, wq, gb, b, s_gb, bq[0], lr, an, flags, state.copy(),
                                                int(seed[0]))
    gw2, gwq, gre = GD.weights_qp_update(np.asarray(gw, np.uint8), wq, gnr, tau)
    gc_, wqc = exact(g, np.int32), exact(wq, np.float32)
    u = Update(lr, an, F(wqc[0]), int(wqc[1]), flags & 3, (flags >> 2) & 1, seed.ctypes.data_as(C.POINTER(C.c_uint32)))
    first = int(not state[0] > 0)
    nr = exact(np.zeros(3), np.int32)
    lib.qt_update_rows_u8(P(w), P(gc_), rows, n, s_g, C.byref(u), P(state), first, P(nr))
    if b is not None:
        lib.qt_update_bias_i32(P(b), P(gb), None, 0, rows, None, 0, s_gb, F(bq[0]), C.byref(u), P(state), first)
    state[0] = F(state[0] + F(1))
    re = lib.qt_weights_qp_update(P(w), w.size, P(wqc), P(nr), tau)
    what = "update_rows_u8 flags=%d rows=%d len=%d" % (flags, rows, n)
    check(not gc_.any(), what + ": g not zeroed")
    check(same(w, gw2) and same(wqc, gwq) and re == gre, what + " (weights)")
    check(same(state, gst) and int(seed[0]) == grng, what + " (state, rng)")
    check(b is None or same(b, gbo), what + " (bias)")


# ---- DSGU selection with the fused ReLU mask -------------------------------------------------

def _relu_y(rng, shape, mode):
    """A ReLU layer's output and its zero point, masking (y <= z_y) all
    (mode 1), none (mode 2) or some (3) positions of e; mode 0: no y."""
    if mode == 0:
        return None, -1
    zy = int(rng.choice([0, 3, 128, 254, 255, int(rng.integers(0, 256))]))
    if mode == 1:
        y = rng.integers(0, zy + 1, shape)
    elif mode == 2:
        zy = min(zy, 254)
        y = rng.integers(zy + 1, 256, shape)
    else:
        y = np.clip(zy + rng.integers(-3, 4, shape), 0, 255)   # around z_y: both sides
    return exact(y, np.uint8), zy


def _dsgu_hp(rng, i):
    """(lmin, lmax) with 0 < lmin <= lmax <= 1 (the bindings' check), every
    third case at k's edges: lmin = lmax tiny (k = 1) or 1 (k = all)."""
    if i % 3 == 0:
        lmin = F(rng.choice([1e-6, 2.0 ** -24, 0.001]))
        return lmin, lmin
    if i % 3 == 1 and rng.random() < 0.5:
        return F(1), F(1)
    lmin = F(rng.choice([1e-6, 0.05, 0.3, 0.9, 1.0, rng.uniform(0, 1) or 0.5]))
    return lmin, F(rng.choice([lmin, F(1), F(rng.uniform(lmin, 1))]))


def _err(rng, shape, ze):
    """An error tensor: random, all at z_e (mean 0), extremes, or a narrow
    band around z_e (many tied scores)."""
    kind = int(rng.integers(0, 4))
    if kind == 1:
        return exact(np.full(shape, ze), np.uint8)
    if kind == 2:
        return exact(rng.choice([0, 255], shape), np.uint8)
    if kind == 3:
        return exact(np.clip(ze + rng.integers(-2, 3, shape), 0, 255), np.uint8)
    return exact(u8(rng, shape), np.uint8)


def case_select(lib, rng, i):
    """dense_select_rows_u8 (with and without the fused ReLU mask; m on both
    sides of the counting table's 2m >= 256) and conv_relu_mask_scores_u8 +
    dsgu_k + select_topk_u32 (as conv_scores_u8 then select_scores run them),
    against the golden relu mask then select: k, the rows, the running max,
    the masked error in place; sel past k and the scratch's end untouched."""
    mode = i % 4 if i % 8 < 4 else int(rng.integers(0, 4))
    # Dense
    m = int(rng.choice([1, 2, 3, 127, 128, 129, 255, 256, 257, int(rng.integers(1, 2000))]))
    eq = rand_qp(rng, -1, 1)
    eq[GQ.ZERO] = int(rng.choice([0, 255, int(eq[GQ.ZERO])]))
    ze = int(eq[GQ.ZERO])
    e = _err(rng, m, ze)
    y, zy = _relu_y(rng, m, mode)
    lmin, lmax = _dsgu_hp(rng, i)
    st0 = F(rng.choice([0.0, 1e-9, float(eq[GQ.SCALE]) * 50, 1e6]))
    em = e.copy() if y is None else GD.relu_backward_u8(e, eq, y, _zq(zy))[0]
    gk, gsel, gemax = GD.select_u8(em, eq, lmin, lmax, st0)
    st = exact([st0], np.float32)
    sel, scratch = exact(np.full(m, -7), np.int32), exact(np.zeros(2 * m), np.uint32)
    k = lib.dense_select_rows_u8(P(e), m, ze, F(eq[GQ.SCALE]), P(st), lmin, lmax, P(sel), P(scratch), P(y),
                                 zy if y is not None else 0)
    what = "dense_select_rows_u8 m=%d mask=%d k=%d (golden %d) lmin=%r lmax=%r" % (m, mode, k, gk, lmin, lmax)
    check(k == gk and same(sel[:k], gsel) and same(st[0], F(gemax)), what)
    check(same(e, em), what + ": e after the mask")
    check(bool(np.all(sel[k:] == -7)), what + ": sel written past k")
    # Conv: the fused ReLU mask + scores, then the selection over the channels
    ch = int(rng.choice([1, 2, 3, 16, 32, int(rng.integers(1, 65))]))
    hw = int(rng.choice([1, 3, 4, 5, 7, 8, 49, 196, int(rng.integers(1, 1025))]))
    if rng.random() < 0.05:
        ch, hw = int(rng.integers(1, 3)), 32767               # the bindings' largest map
    eq = rand_qp(rng, -1, 1)
    eq[GQ.ZERO] = int(rng.choice([0, 255, int(eq[GQ.ZERO])]))
    ze = int(eq[GQ.ZERO])
    e = _err(rng, (ch, hw), ze)
    y, zy = _relu_y(rng, (ch, hw), mode or 3)
    em = GC.relu_mask_u8(e.reshape(ch, hw), ze, y.reshape(ch, hw), zy)
    gscore = np.abs(em.astype(np.int64) - ze).sum(axis=1)
    scores = exact(np.full(ch, 0xdeadbeef), np.uint32)
    lib.conv_relu_mask_scores_u8(P(e), P(y), ch, hw, ze, zy, P(scores))
    what = "conv_relu_mask_scores_u8 ch=%d hw=%d mask=%d z_e=%d z_y=%d" % (ch, hw, mode or 3, ze, zy)
    check(same(e, em.ravel()), what + ": e after the mask")
    check(same(scores, gscore.astype(np.uint32)), what + ": scores")
    lmin, lmax = _dsgu_hp(rng, i)
    st0 = F(rng.choice([0.0, 1e-9, float(eq[GQ.SCALE]) * 50, 1e6]))
    ebar = F(F(F(int(scores.sum())) / F(e.size)) * F(eq[GQ.SCALE]))
    st = exact([st0], np.float32)
    k = lib.dsgu_k(ebar, P(st), lmin, lmax, ch)
    sel, scr = exact(np.full(ch, -7), np.int32), exact(np.zeros(ch), np.uint32)
    lib.select_topk_u32(P(scores), ch, k, P(sel), P(scr))
    gk, gsel, gemax = GC.select_u8_qp(em, eq, lmin, lmax, st0)
    what += " k=%d (golden %d) lmin=%r lmax=%r" % (k, gk, lmin, lmax)
    check(k == gk and same(sel[:k], gsel) and same(st[0], F(gemax)), what + ": DSGU select")
    check(bool(np.all(sel[k:] == -7)), what + ": sel written past k")


def _zq(z):
    q = GQ.new_qp(0.0, 1.0)
    q[GQ.ZERO] = z
    return q


# (a new group goes at the end: a group's random stream is seeded by its index)
CASES = {"dense": case_dense, "conv": case_conv, "loss": case_loss, "latent": case_latent, "quant": case_quant,
         "dense_float": case_dense_float, "select": case_select}


def main(so, ops, cases, seed):
    lib = load(so)
    for op in ops:
        rng = np.random.default_rng([seed, list(CASES).index(op)])
        bad = 0
        for i in range(cases):
            print("@case %s %d seed %d" % (op, i, seed), flush=True)
            try:
                CASES[op](lib, rng, i)
            except Mismatch as e:
                bad += 1
                print("@mismatch %s case %d (seed %d): %s" % (op, i, seed, e), flush=True)
        print("@op %s cases=%d mismatches=%d" % (op, cases, bad), flush=True)
    print("@end")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])))
