"""The Conv2d / ConvTranspose2d golden model checked on its own (host only):
against naive loops written from the definitions, and float32 gradients
against finite differences."""
import numpy as np
import pytest

from qtrain_host.golden import conv as G

CASES = [
    # in_ch, out_ch, H, W, k, stride, pad, out_pad
    (1, 2, 5, 5, 3, 1, 0, 0),
    (2, 3, 6, 5, 3, 2, 1, 1),
    (3, 2, 7, 7, (3, 2), (2, 1), (1, 0), (1, 0)),
    (2, 2, 4, 6, 2, 3, 0, 2),
    (1, 3, 8, 8, 3, 2, 1, 1),   # VAE-like
    (2, 1, 3, 3, 1, 1, 0, 0),
]


def naive_conv2d(x, w, b, s, p):
    C, H, W = x.shape
    O, _, KH, KW = w.shape
    OH, OW = G.conv2d_out_size(H, W, (KH, KW), s, p)
    y = np.zeros((O, OH, OW))
    for o in range(O):
        for oy in range(OH):
            for ox in range(OW):
                acc = b[o]
                for c in range(C):
                    for ky in range(KH):
                        for kx in range(KW):
                            iy, ix = oy * s[0] - p[0] + ky, ox * s[1] - p[1] + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                acc += w[o, c, ky, kx] * x[c, iy, ix]
                y[o, oy, ox] = acc
    return y


def naive_convT(x, w, b, s, p, op):
    C, H, W = x.shape
    _, O, KH, KW = w.shape
    OH, OW = G.conv_transpose2d_out_size(H, W, (KH, KW), s, p, op)
    y = np.zeros((O, OH, OW)) + b[:, None, None]
    for c in range(C):
        for iy in range(H):
            for ix in range(W):
                for o in range(O):
                    for ky in range(KH):
                        for kx in range(KW):
                            oy, ox = iy * s[0] - p[0] + ky, ix * s[1] - p[1] + kx
                            if 0 <= oy < OH and 0 <= ox < OW:
                                y[o, oy, ox] += w[c, o, ky, kx] * x[c, iy, ix]
    return y


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_naive(case):
    ci, co, H, W, k, s, p, op = case
    k, s, p, op = G._pair(k), G._pair(s), G._pair(p), G._pair(op)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((ci, H, W)).astype(np.float32)
    w = rng.standard_normal((co, ci) + k).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32)
    np.testing.assert_allclose(G.conv2d_forward_f32(x, w, b, s, p), naive_conv2d(x, w, b, s, p), rtol=1e-5, atol=1e-5)
    wt = rng.standard_normal((ci, co) + k).astype(np.float32)
    np.testing.assert_allclose(G.conv_transpose2d_forward_f32(x, wt, b, s, p, op),
                               naive_convT(x, wt, b, s, p, op), rtol=1e-5, atol=1e-5)


def _fd_check(fwd, bwd, x, w, b, relu, rng):
    """Loss L = sum(r * y): dL/dy = r. Central differences in float64."""
    y0 = fwd(x, w, b)
    r = rng.standard_normal(y0.shape)
    ex, gw, gb = bwd(r, x, w, y0 if relu else None)

    def loss(x_, w_, b_):
        return float((fwd(x_, w_, b_).astype(np.float64) * r).sum())

    eps = 1e-6  # small: a ReLU kink is rarely crossed
    for arr, grad in ((x, ex), (w, gw), (b, gb)):
        flat = arr.reshape(-1)
        idx = rng.choice(flat.size, size=min(12, flat.size), replace=False)
        for i in idx:
            old = flat[i]
            flat[i] = old + eps
            lp = loss(x, w, b)
            flat[i] = old - eps
            lm = loss(x, w, b)
            flat[i] = old
            fd = (lp - lm) / (2 * eps)
            assert abs(fd - grad.reshape(-1)[i]) <= 1e-4 * (1 + abs(fd)), (fd, grad.reshape(-1)[i])


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_float_gradients_finite_differences(case, relu):
    ci, co, H, W, k, s, p, op = case
    k = G._pair(k)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((ci, H, W)).astype(np.float64)
    b = rng.standard_normal(co).astype(np.float64)
    w = rng.standard_normal((co, ci) + k)
    _fd_check(lambda x_, w_, b_: _f64(G._gather, x_, w_, b_, s, p, None, relu),
              lambda e, x_, w_, y: G.conv2d_backward_f32(e, x_, w_, s, p, y),
              x, w, b, relu, rng)
    wt = rng.standard_normal((ci, co) + k)
    _fd_check(lambda x_, w_, b_: _f64(G._scatter, x_, w_, b_, s, p, op, relu),
              lambda e, x_, w_, y: G.conv_transpose2d_backward_f32(e, x_, w_, s, p, y),
              x, wt, b, relu, rng)


def _f64(pattern, x, w, b, s, p, op, relu):
    """Forward in float64 (finite differences need more than float32)."""
    s, p = G._pair(s), G._pair(p)
    if op is None:
        hw = G.conv2d_out_size(x.shape[1], x.shape[2], w.shape[2:], s, p)
    else:
        hw = G.conv_transpose2d_out_size(x.shape[1], x.shape[2], w.shape[2:], s, p, op)
    y = pattern(x, w, s, p, hw) + b[:, None, None]
    return np.maximum(y, 0) if relu else y


def test_vae_shapes():
    assert G.conv2d_out_size(28, 28, 3, 2, 1) == (14, 14)
    assert G.conv2d_out_size(14, 14, 3, 2, 1) == (7, 7)
    assert G.conv_transpose2d_out_size(7, 7, 3, 2, 1, 1) == (14, 14)
    assert G.conv_transpose2d_out_size(14, 14, 3, 2, 1, 1) == (28, 28)


def test_uint8_forward_close_to_float():
    """The integer path dequantizes to the float result within half a step."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 2, (3, 9, 9))
    w = rng.uniform(-0.5, 0.3, (4, 3, 3, 3))
    b = rng.uniform(-0.2, 0.2, 4)
    sx, zx = G.quant_params(x.min(), x.max())
    sw, zw = G.quant_params(w.min(), w.max())
    sb = np.float32(sx * sw)
    xq, wq = G.quantize(x, sx, zx), G.quantize(w, sw, zw)
    xd, wd = G.dequantize(xq, sx, zx), G.dequantize(wq, sw, zw)
    bq = np.round(b / float(sb)).astype(np.int64)
    yf = G.conv2d_forward_f32(xd, wd, bq * float(sb), 2, 1)
    sy, zy = G.quant_params(yf.min(), yf.max())
    om = G.quantize_multiplier(np.float32(np.float32(sx * sw) / sy))
    bm = G.quantize_multiplier(np.float32(sb / np.float32(sx * sw)))
    yq, (amin, amax) = G.conv2d_forward_u8(xq, zx, wq, zw, bq, 2, 1, om, bm, zy)
    assert np.abs(G.dequantize(yq, sy, zy) - yf).max() <= 0.5 * float(sy) * 1.001
    assert amin * float(sx) * float(sw) == pytest.approx(yf.min(), abs=1e-4)
