"""Golden (numpy) model of Conv2d and ConvTranspose2d: the oracle the C kernels
in natmod/kernels/conv2d*.c and conv_transpose2d*.c are tested against.

Layouts (batch 1, PyTorch convention):
  activations / errors  CHW                       x[c][y][x]
  Conv2d weights        [out_ch][in_ch][kh][kw]
  ConvTranspose2d w.    [in_ch][out_ch][kh][kw]
  biases                [out_ch]

Geometry: stride (sh, sw) >= 1, zero padding (ph, pw) >= 0, and for the
transposed convolution an output padding (oph, opw) with 0 <= op < stride.
  Conv2d:          OH = (H + 2 ph - KH) // sh + 1
  ConvTranspose2d: OH = (H - 1) sh - 2 ph + KH + oph

Three index patterns cover both operators (they are each other's transpose):
  _gather(x, w)      y[o, oy, ox]  = sum_{c,ky,kx} w[o,c,ky,kx] x[c, oy*s-p+ky, ox*s-p+kx]
  _scatter(x, w)     y[o, iy*s-p+ky, ix*s-p+kx] += w[c,o,ky,kx] x[c, iy, ix]
  _corr(a, b)        g[i, j, ky, kx] = sum_{ay,ax} a[i, ay, ax] b[j, ay*s-p+ky, ax*s-p+kx]
Conv2d:          forward = gather(x, w);  error = scatter(e, w);  dW = corr(e, x)
ConvTranspose2d: forward = scatter(x, w); error = gather(e, w);   dW = corr(x, e)
The C kernels share the same three cores per dtype.

uint8 paths follow METHOD.md sections 1-5: real = s (q - z); int32
accumulation of (w - z_w)(x - z_x); requantization by a fixed-point multiplier
(m, shift) computed once per scale change; ReLU fused as a clamp at z_y;
error propagation through the same cores with its own multiplier; weight
gradient of one filter accumulated into an int32 row of filter size (the
scale s_e s_x cancels in the standardization, so the integer row is all the
update needs).
"""
import math

import numpy as np

from . import quant as Q


# --------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------

def _pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv2d_out_size(h, w, k, stride=1, pad=0):
    kh, kw = _pair(k)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def conv_transpose2d_out_size(h, w, k, stride=1, pad=0, out_pad=0):
    kh, kw = _pair(k)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    oph, opw = _pair(out_pad)
    return (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw


def check_conv2d_geom(in_shape, k, stride, pad):
    C, H, W = in_shape
    kh, kw = _pair(k)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    if min(C, H, W, kh, kw) < 1 or min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError("bad geometry")
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError("kernel larger than padded input")


def check_conv_transpose2d_geom(in_shape, k, stride, pad, out_pad):
    C, H, W = in_shape
    kh, kw = _pair(k)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    oph, opw = _pair(out_pad)
    if min(C, H, W, kh, kw) < 1 or min(sh, sw) < 1 or min(ph, pw, oph, opw) < 0:
        raise ValueError("bad geometry")
    if oph >= sh or opw >= sw:
        raise ValueError("output padding must be smaller than stride")
    oh, ow = conv_transpose2d_out_size(H, W, (kh, kw), (sh, sw), (ph, pw), (oph, opw))
    if oh < 1 or ow < 1:
        raise ValueError("empty output")


# --------------------------------------------------------------------------
# the three index patterns (any dtype; accumulate in `acc`)
# --------------------------------------------------------------------------

def _gather(x, w, stride, pad, out_hw, acc=np.float64):
    """y[o,oy,ox] = sum_{c,ky,kx} w[o,c,ky,kx] * x[c, oy*s-p+ky, ox*s-p+kx]
    (out-of-range x counts as 0)."""
    O, C, KH, KW = w.shape
    sh, sw = stride
    ph, pw = pad
    OH, OW = out_hw
    _, H, W = x.shape
    Hb = max(H + 2 * ph, (OH - 1) * sh + KH)
    Wb = max(W + 2 * pw, (OW - 1) * sw + KW)
    xp = np.zeros((C, Hb, Wb), acc)
    xp[:, ph:ph + H, pw:pw + W] = x
    wa = w.astype(acc)
    y = np.zeros((O, OH, OW), acc)
    for ky in range(KH):
        for kx in range(KW):
            patch = xp[:, ky:ky + sh * (OH - 1) + 1:sh, kx:kx + sw * (OW - 1) + 1:sw]
            y += np.tensordot(wa[:, :, ky, kx], patch, axes=([1], [0]))
    return y


def _scatter(x, w, stride, pad, out_hw, acc=np.float64):
    """y[o, iy*s-p+ky, ix*s-p+kx] += w[c,o,ky,kx] * x[c,iy,ix] (cropped to out_hw)."""
    C, O, KH, KW = w.shape
    sh, sw = stride
    ph, pw = pad
    OH, OW = out_hw
    _, H, W = x.shape
    Hb = max(OH + 2 * ph, (H - 1) * sh + KH)
    Wb = max(OW + 2 * pw, (W - 1) * sw + KW)
    yp = np.zeros((O, Hb, Wb), acc)
    xa = x.astype(acc)
    wa = w.astype(acc)
    for ky in range(KH):
        for kx in range(KW):
            yp[:, ky:ky + sh * (H - 1) + 1:sh, kx:kx + sw * (W - 1) + 1:sw] += \
                np.tensordot(wa[:, :, ky, kx], xa, axes=([0], [0]))
    return yp[:, ph:ph + OH, pw:pw + OW]


def _corr(a, b, stride, pad, k, acc=np.float64):
    """g[i,j,ky,kx] = sum_{ay,ax} a[i,ay,ax] * b[j, ay*s-p+ky, ax*s-p+kx]."""
    I, AH, AW = a.shape
    J, BH, BW = b.shape
    KH, KW = k
    sh, sw = stride
    ph, pw = pad
    Hb = max(BH + 2 * ph, (AH - 1) * sh + KH)
    Wb = max(BW + 2 * pw, (AW - 1) * sw + KW)
    bp = np.zeros((J, Hb, Wb), acc)
    bp[:, ph:ph + BH, pw:pw + BW] = b
    aa = a.astype(acc)
    g = np.zeros((I, J, KH, KW), acc)
    for ky in range(KH):
        for kx in range(KW):
            patch = bp[:, ky:ky + sh * (AH - 1) + 1:sh, kx:kx + sw * (AW - 1) + 1:sw]
            g[:, :, ky, kx] = np.tensordot(aa, patch, axes=([1, 2], [1, 2]))
    return g


# --------------------------------------------------------------------------
# float32
# --------------------------------------------------------------------------

def conv2d_forward_f32(x, w, b, stride=1, pad=0, relu=False):
    stride, pad = _pair(stride), _pair(pad)
    check_conv2d_geom(x.shape, w.shape[2:], stride, pad)
    oh, ow = conv2d_out_size(x.shape[1], x.shape[2], w.shape[2:], stride, pad)
    y = _gather(x, w, stride, pad, (oh, ow)) + np.asarray(b, np.float64)[:, None, None]
    if relu:
        y = np.maximum(y, 0.0)
    return y.astype(np.float32)


def conv2d_backward_f32(e, x, w, stride=1, pad=0, y=None):
    """e = dL/dy (y the layer output). If y is given the layer had a fused ReLU:
    e is zeroed where y <= 0. Returns (dL/dx, dL/dw, dL/db)."""
    stride, pad = _pair(stride), _pair(pad)
    e = np.asarray(e, np.float64)
    if y is not None:
        e = np.where(np.asarray(y) > 0, e, 0.0)
    ex = _scatter(e, w, stride, pad, x.shape[1:])
    gw = _corr(e, x, stride, pad, w.shape[2:])
    gb = e.sum(axis=(1, 2))
    return ex.astype(np.float32), gw.astype(np.float32), gb.astype(np.float32)


def conv_transpose2d_forward_f32(x, w, b, stride=1, pad=0, out_pad=0, relu=False):
    stride, pad, out_pad = _pair(stride), _pair(pad), _pair(out_pad)
    check_conv_transpose2d_geom(x.shape, w.shape[2:], stride, pad, out_pad)
    oh, ow = conv_transpose2d_out_size(x.shape[1], x.shape[2], w.shape[2:], stride, pad, out_pad)
    y = _scatter(x, w, stride, pad, (oh, ow)) + np.asarray(b, np.float64)[:, None, None]
    if relu:
        y = np.maximum(y, 0.0)
    return y.astype(np.float32)


def conv_transpose2d_backward_f32(e, x, w, stride=1, pad=0, y=None):
    stride, pad = _pair(stride), _pair(pad)
    e = np.asarray(e, np.float64)
    if y is not None:
        e = np.where(np.asarray(y) > 0, e, 0.0)
    ex = _gather(e, w, stride, pad, x.shape[1:])
    gw = _corr(x, e, stride, pad, w.shape[2:])
    gb = e.sum(axis=(1, 2))
    return ex.astype(np.float32), gw.astype(np.float32), gb.astype(np.float32)


# --------------------------------------------------------------------------
# quantization helpers: the shared core (quant.py), bit-exact with quant.c
# --------------------------------------------------------------------------

quant_params = Q.quant_params
quantize = Q.quantize
dequantize = Q.dequantize
quantize_multiplier = Q.quantize_multiplier   # real -> (mult, shift), real = mult 2**-shift
requantize = Q.requantize


def _finish(acc, out_mult, zy, relu, keep=None):
    """Accumulator -> uint8 (qt_conv_out): ReLU clamps the accumulator at 0
    first (as Dense), the range is taken after that.  keep (bool, acc's
    shape; error propagation only): Q.masked_finish's mask-aware form."""
    if keep is not None:
        return Q.masked_finish(acc, out_mult, zy, keep)
    if relu:
        acc = np.maximum(acc, 0)
    y = np.clip(requantize(acc, *out_mult) + zy, zy if relu else 0, 255).astype(np.uint8)
    return y, (int(acc.min()), int(acc.max()))


def _add_bias(acc, b, bias_mult):
    """acc + round(b s_b / (s_w s_x)), saturated to +-(2**31 - 1) like Dense."""
    t = acc + requantize(np.asarray(b, np.int64), *bias_mult)[:, None, None]
    return np.clip(t, -(2**31 - 1), 2**31 - 1)


# --------------------------------------------------------------------------
# uint8
# --------------------------------------------------------------------------

def _forward_u8(pattern, x, zx, w, zw, b, stride, pad, out_hw, out_mult, bias_mult, zy, relu):
    xs = np.asarray(x, np.int64) - zx
    ws = np.asarray(w, np.int64) - zw
    acc = pattern(xs, ws, stride, pad, out_hw, acc=np.int64)
    if b is not None:
        acc = _add_bias(acc, b, bias_mult)
    return _finish(acc, out_mult, zy, relu)


def conv2d_forward_u8(x, zx, w, zw, b, stride, pad, out_mult, bias_mult, zy, relu=False):
    """uint8 forward (METHOD 2).  out_mult = quantize_multiplier(s_w s_x / s_y),
    bias_mult = quantize_multiplier(s_b / (s_w s_x)) (b: int32, scale s_b, or
    None).  Returns (y, (acc_min, acc_max)): the extremes of the int32
    accumulator after the ReLU clamp (real = acc * s_w s_x) for range tracking."""
    stride, pad = _pair(stride), _pair(pad)
    oh, ow = conv2d_out_size(x.shape[1], x.shape[2], w.shape[2:], stride, pad)
    return _forward_u8(_gather, x, zx, w, zw, b, stride, pad, (oh, ow), out_mult, bias_mult, zy, relu)


def conv_transpose2d_forward_u8(x, zx, w, zw, b, stride, pad, out_pad, out_mult, bias_mult, zy,
                                relu=False):
    stride, pad, out_pad = _pair(stride), _pair(pad), _pair(out_pad)
    oh, ow = conv_transpose2d_out_size(x.shape[1], x.shape[2], w.shape[2:], stride, pad, out_pad)
    return _forward_u8(_scatter, x, zx, w, zw, b, stride, pad, (oh, ow), out_mult, bias_mult, zy, relu)


def relu_mask_u8(e, ze, y, zy):
    """ReLU backward on a uint8 error: e := z_e (real 0) where y <= z_y."""
    e = np.array(e, np.uint8)
    e[np.asarray(y) <= zy] = ze
    return e


def _select_mask(n, sel):
    mask = np.zeros(n, bool)
    if sel is None:
        mask[:] = True
    else:
        mask[np.asarray(sel, np.int64)] = True
    return mask


def conv2d_backward_u8(e, ze, x, zx, w, zw, stride, pad, out_mult, zep, sel=None, mask=False):
    """Error propagation e -> e_prev (uint8) for the filters in `sel` (DSGU;
    None = all). out_mult = quantize_multiplier(s_w s_e / s_eprev).
    mask (x came from a ReLU): only the positions with x > zx are computed,
    the others get zep (Q.masked_finish).
    Returns (e_prev, (acc_min, acc_max))."""
    stride, pad = _pair(stride), _pair(pad)
    es = np.asarray(e, np.int64) - ze
    es[~_select_mask(es.shape[0], sel)] = 0
    ws = np.asarray(w, np.int64) - zw
    acc = _scatter(es, ws, stride, pad, x.shape[1:], acc=np.int64)
    return _finish(acc, out_mult, zep, False, _keep(x, zx, mask))


def _keep(x, zx, mask):
    return np.asarray(x, np.int64) > zx if mask else None


def conv_transpose2d_backward_u8(e, ze, x, zx, w, zw, stride, pad, out_mult, zep, sel=None, slices=False,
                                 mask=False):
    """As conv2d_backward_u8; slices: sel names input-channel slices w[ci]
    (convt_slices, structures='input'), whose channels alone get an error."""
    stride, pad = _pair(stride), _pair(pad)
    es = np.asarray(e, np.int64) - ze
    ws = np.asarray(w, np.int64) - zw
    if slices:
        ws[~_select_mask(ws.shape[0], sel)] = 0
    else:
        es[~_select_mask(es.shape[0], sel)] = 0
    acc = _gather(es, ws, stride, pad, x.shape[1:], acc=np.int64)
    return _finish(acc, out_mult, zep, False, _keep(x, zx, mask))


def conv2d_grad_u8(e, ze, x, zx, stride, pad, k):
    """Integer weight gradient G[o,c,ky,kx] = sum (e-z_e)(x-z_x) (real:
    s_e s_x G) and bias gradient Gb[o] = sum (e - z_e) (real: s_e G_b)."""
    stride, pad = _pair(stride), _pair(pad)
    es = np.asarray(e, np.int64) - ze
    xs = np.asarray(x, np.int64) - zx
    g = _corr(es, xs, stride, pad, _pair(k), acc=np.int64)
    return g, es.sum(axis=(1, 2))


def conv_transpose2d_grad_u8(e, ze, x, zx, stride, pad, k):
    """G[ci,co,ky,kx] (weight layout), Gb[co]."""
    stride, pad = _pair(stride), _pair(pad)
    es = np.asarray(e, np.int64) - ze
    xs = np.asarray(x, np.int64) - zx
    g = _corr(xs, es, stride, pad, _pair(k), acc=np.int64)
    return g, es.sum(axis=(1, 2))


def slice_scores_u8(e, ze, x, zx, stride, pad, k):
    """DSGU score of each input-channel slice w[ci] of a ConvTranspose2d
    (convt_slices, structures='input'): sum_j |x_ci,j - z_x| E_j, E_j = sum |e - z_e| over
    the output positions input pixel j reaches (all channels and taps), i.e.
    the gradient correlation of |x - z_x| with |e - z_e| summed over the
    slice; saturated to uint32."""
    xs = np.abs(np.asarray(x, np.int64) - zx)
    es = np.abs(np.asarray(e, np.int64) - ze)
    g = _corr(xs, es, _pair(stride), _pair(pad), _pair(k), acc=np.int64)
    return np.minimum(g.sum(axis=(1, 2, 3)), 2 ** 32 - 1)


def filter_error_scores_u8(e, ze):
    """DSGU score of each output filter: sum |e - z_e| over its map."""
    return np.abs(np.asarray(e, np.int64) - ze).sum(axis=(1, 2))


# --------------------------------------------------------------------------
# the bindings' view: qparams records in, records updated (bind_conv.c)
# --------------------------------------------------------------------------
# geom = (in_ch, in_h, in_w, out_ch, k_h, k_w, stride_h, stride_w, pad_h, pad_w
#         [, out_pad_h, out_pad_w])

F = np.float32


def geom_args(geom):
    """geom tuple -> (stride, pad, out_pad) pairs."""
    g = [int(v) for v in geom]
    op = (g[10], g[11]) if len(g) == 12 else (0, 0)
    return (g[6], g[7]), (g[8], g[9]), op


def geom_shapes(transposed, geom):
    """geom tuple -> (input shape, weight shape, output shape); weights are
    (out, in, kh, kw) for Conv2d and (in, out, kh, kw) for ConvTranspose2d."""
    ci, H, W, co, kh, kw = (int(v) for v in geom[:6])
    stride, pad, op = geom_args(geom)
    if transposed:
        oh, ow = conv_transpose2d_out_size(H, W, (kh, kw), stride, pad, op)
        wshape = (ci, co, kh, kw)
    else:
        oh, ow = conv2d_out_size(H, W, (kh, kw), stride, pad)
        wshape = (co, ci, kh, kw)
    return (ci, H, W), wshape, (co, oh, ow)


def random_geom(rng, transposed, hi=(6, 5, 9), bad_output_padding=False):
    """A random geometry tuple (ci, H, W, co, kh, kw, sh, sw, ph, pw[, oph, opw])
    drawn with numpy Generator `rng`, and whether the checks above accept it.
    hi: exclusive upper bounds of the channel counts, kernel sizes and input
    sizes; bad_output_padding lets the output padding reach the stride (which
    the checks reject), for tests of the rejection path."""
    ch, k, hw = hi
    ci, co = (int(v) for v in rng.integers(1, ch, 2))
    kh, kw = (int(v) for v in rng.integers(1, k, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = (int(v) for v in rng.integers(0, 3, 2))
    H, W = (int(v) for v in rng.integers(1, hw, 2))
    geom = (ci, H, W, co, kh, kw, sh, sw, ph, pw)
    extra = 1 if bad_output_padding else 0
    try:
        if transposed:
            geom += (int(rng.integers(0, sh + extra)), int(rng.integers(0, sw + extra)))
            check_conv_transpose2d_geom((ci, H, W), (kh, kw), (sh, sw), (ph, pw), geom[10:])
        else:
            check_conv2d_geom((ci, H, W), (kh, kw), (sh, sw), (ph, pw))
    except ValueError:
        return geom, False
    return geom, True


def _observe(qp, r, scale):
    qp = np.array(qp, np.float32)
    Q.qp_observe(qp, F(F(r[0]) * scale), F(F(r[1]) * scale))
    return qp


def forward_u8_qp(transposed, x, xq, w, wq, b, bq, yq, geom, relu):
    """conv2d_forward_u8 / conv_transpose2d_forward_u8 as the binding runs
    them: returns (y, yq with the observed range recorded)."""
    stride, pad, op = geom_args(geom)
    swx = F(F(wq[Q.SCALE]) * F(xq[Q.SCALE]))
    out_mult = quantize_multiplier(F(swx / F(yq[Q.SCALE])))
    bias_mult = quantize_multiplier(F(F(bq[Q.SCALE]) / swx) if b is not None else F(0))
    zx, zw, zy = int(xq[Q.ZERO]), int(wq[Q.ZERO]), int(yq[Q.ZERO])
    if transposed:
        y, r = conv_transpose2d_forward_u8(x, zx, w, zw, b, stride, pad, op, out_mult, bias_mult, zy, relu)
    else:
        y, r = conv2d_forward_u8(x, zx, w, zw, b, stride, pad, out_mult, bias_mult, zy, relu)
    return y, _observe(yq, r, swx)


def backward_u8_qp(transposed, e, eq, y, yq, x, w, wq, exq, geom, sel=None, slices=False, xq=None):
    """conv*_backward_u8: returns (e after the ReLU mask, ex, exq updated);
    slices: conv_transpose2d_backward_u8(..., slices=True); xq given: the
    mask-aware call (..., x, xq): ex only where x > xq's zero point."""
    stride, pad, _ = geom_args(geom)
    e = np.array(e, np.uint8)
    if y is not None:
        e = relu_mask_u8(e, int(eq[Q.ZERO]), y, int(yq[Q.ZERO]))
    swe = F(F(wq[Q.SCALE]) * F(eq[Q.SCALE]))
    out_mult = quantize_multiplier(F(swe / F(exq[Q.SCALE])))
    fn = conv_transpose2d_backward_u8 if transposed else conv2d_backward_u8
    kw = {"slices": True} if slices else {}
    ex, r = fn(e, int(eq[Q.ZERO]), x, 0 if xq is None else int(xq[Q.ZERO]), w, int(wq[Q.ZERO]), stride, pad,
               out_mult, int(exq[Q.ZERO]), sel, mask=xq is not None, **kw)
    return e, ex, _observe(exq, r, swe)


def grad_u8_qp(transposed, e, eq, x, xq, geom, sel=None):
    """conv*_grad_u8 on zeroed accumulators: (gw int32, gb int32); rows of
    unselected filters stay 0."""
    stride, pad, _ = geom_args(geom)
    k = (int(geom[4]), int(geom[5]))
    fn = conv_transpose2d_grad_u8 if transposed else conv2d_grad_u8
    g, gb = fn(e, int(eq[Q.ZERO]), x, int(xq[Q.ZERO]), stride, pad, k)
    n_out = gb.shape[0]
    mask = _select_mask(n_out, sel)
    if transposed:
        g[:, ~mask] = 0
    else:
        g[~mask] = 0
    gb[~mask] = 0
    return g.astype(np.int32), gb.astype(np.int32)


def update_u8_qp(transposed, e, eq, x, xq, w, wq, b, bq, geom, sel, hp, flags, state, rng):
    """(conv*_update_u8, see _update_u8_qp; flag 8: ConvTranspose2d slices.)"""
    if transposed and int(flags) & SLICES:
        return _update_slices_u8_qp(e, eq, x, xq, w, wq, b, bq, geom, sel, hp, int(flags) & ~SLICES, state, rng)
    return _update_u8_qp(transposed, e, eq, x, xq, w, wq, b, bq, geom, sel, hp, flags, state, rng)


SLICES = 8   # conv_transpose2d_update_u8's flag: DSGU structures = input-channel slices


def _update_slices_u8_qp(e, eq, x, xq, w, wq, b, bq, geom, sel, hp, flags, state, rng):
    """conv_transpose2d_update_u8 with flag 8: the structures are the slices
    w[ci] (contiguous rows of the weight layout), unselected slices get a zero
    gradient, every output channel's bias is updated."""
    from . import dense as D
    gw, gb = grad_u8_qp(True, e, eq, x, xq, geom)
    w = np.asarray(w, np.uint8)
    g_rows = gw.reshape(w.shape[0], -1).astype(np.int64)
    g_rows[~_select_mask(w.shape[0], sel)] = 0
    s_g = F(F(eq[Q.SCALE]) * F(xq[Q.SCALE]))
    s_b = F(bq[Q.SCALE]) if b is not None else F(1)
    w2, _, st, rng2, new_range = D.update_rows_u8(
        g_rows, s_g, w.reshape(w.shape[0], -1), wq, None, None, F(eq[Q.SCALE]), s_b,
        F(hp[0]), F(hp[1]), int(flags), state, int(rng))
    b2 = None
    if b is not None:   # the biases of all output channels, after the slices (same draws)
        rnd = D._Rounder(int(flags) & 3, rng2)
        b2 = [int(v) for v in b]
        D._update_bias(b2, [int(v) for v in gb], range(len(b2)), F(eq[Q.SCALE]), s_b, F(hp[0]), F(hp[1]),
                       rnd, st, not (F(state[0]) > 0))
        b2, rng2 = np.array(b2, np.int32), rnd.state
    w3, wq2, remapped = D.weights_qp_update(np.asarray(w2, np.uint8).ravel(), wq, new_range, F(hp[2]))
    return w3.reshape(w.shape), wq2, b2, st, rng2, remapped


def select_slices_u8_qp(e, eq, x, xq, geom, lmin, lmax, ebar_max):
    """conv_select_u8(..., x, xq, geom) -> (k, sel (ascending), new ebar_max):
    slice_scores_u8, ebar = mean |e - z_e| s_e as select_u8_qp."""
    from . import dense as D
    stride, pad, _ = geom_args(geom)
    score = slice_scores_u8(e, int(eq[Q.ZERO]), x, int(xq[Q.ZERO]), stride, pad, (int(geom[4]), int(geom[5])))
    d = np.abs(np.asarray(e, np.int64) - int(eq[Q.ZERO]))
    ebar = F(F(F(int(d.sum())) / F(d.size)) * F(eq[Q.SCALE]))
    k, emax = D.dsgu_k(ebar, ebar_max, F(lmin), F(lmax), len(score))
    return k, D.select_topk(score, k), emax


def _update_u8_qp(transposed, e, eq, x, xq, w, wq, b, bq, geom, sel, hp, flags, state, rng):
    """conv*_update_u8 (batch 1, per-filter standardization) as the binding
    runs it: the filter gradients (zero for unselected filters) go through
    the shared update of golden/dense.py, rows = filters.  sel must be
    ascending (the C loop visits filters in sel order).
    Returns (w, wq, b, state, rng, remapped)."""
    from . import dense as D
    gw, gb = grad_u8_qp(transposed, e, eq, x, xq, geom, sel)
    w = np.asarray(w, np.uint8)
    if transposed:   # filter co = w[:, co]: rows in filter order
        g_rows = gw.transpose(1, 0, 2, 3).reshape(w.shape[1], -1)
        w_rows = w.transpose(1, 0, 2, 3).reshape(w.shape[1], -1)
    else:
        g_rows = gw.reshape(w.shape[0], -1)
        w_rows = w.reshape(w.shape[0], -1)
    s_g = F(F(eq[Q.SCALE]) * F(xq[Q.SCALE]))
    s_b = F(bq[Q.SCALE]) if b is not None else F(1)
    w2, b2, st, rng2, new_range = D.update_rows_u8(
        g_rows, s_g, w_rows, wq, gb if b is not None else None, b, F(eq[Q.SCALE]), s_b,
        F(hp[0]), F(hp[1]), int(flags), state, int(rng))
    w2 = np.asarray(w2, np.uint8).reshape(w_rows.shape)
    if transposed:
        w2 = w2.reshape(w.shape[1], w.shape[0], w.shape[2], w.shape[3]).transpose(1, 0, 2, 3)
    else:
        w2 = w2.reshape(w.shape)
    w3, wq2, remapped = D.weights_qp_update(np.ascontiguousarray(w2).ravel(), wq, new_range, F(hp[2]))
    return w3.reshape(w.shape), wq2, b2, st, rng2, remapped


def select_u8_qp(e, eq, lmin, lmax, ebar_max):
    """conv_select_u8 -> (k, sel (ascending), new ebar_max): per-channel
    scores sum |e - z_e|, ebar over the whole tensor, k and top-k as Dense."""
    d = np.abs(np.asarray(e, np.int64) - int(eq[Q.ZERO]))
    score = d.reshape(d.shape[0], -1).sum(axis=1)
    return select_scores_qp(score, d.size, eq[Q.SCALE], lmin, lmax, ebar_max)


def select_scores_qp(score, n_err, s_e, lmin, lmax, ebar_max):
    """select_scores -> (k, sel (ascending), new ebar_max): the scores' exact
    sum rounded to float32 once, ebar = sum / n_err * s_e, k and top-k as
    Dense."""
    from . import dense as D
    score = np.asarray(score, np.int64)
    ebar = F(F(F(int(score.sum())) / F(n_err)) * F(s_e))
    k, emax = D.dsgu_k(ebar, ebar_max, F(lmin), F(lmax), len(score))
    return k, D.select_topk(score, k), emax
