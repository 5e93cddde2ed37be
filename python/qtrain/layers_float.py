"""The float32 and 'mixed' code paths of qtrain.layers, imported by the
first layer built in one of those modes (layers._float_paths), so that a
uint8 model never has their bytecode in a board's heap.

Mixed-mode convolutions: the module has no conv `_mixed` kernels, so a conv
layer in 'mixed' mode propagates its float32 error with the float32 kernel
over its uint8 weights dequantized once per step (exact: s_w (w - z_w)), and
updates its uint8 weights with the uint8 batch-1 update kernel from an 8-bit
copy of the float error (power-of-two scale from max |e| of this step, made
by integer code on the float bits: _quant8.py).  So error *tensors* stay float32 end to end; only the weight
gradient of a conv layer sees the error at 8 bits (as in 'uint8').  See
docs/BENCHMARKS.md for what that costs.
"""
import array

import _qtrain as _q

from .layers import MIXED, float_kernels

_ONE = array.array("f", [1.0])


def dequantize(q, qp, out):
    """out[i] = s (q[i] - z) (array('f') of len(q)), by the mixed Dense error
    kernel with one row of weight 1: exact, and allocation-free up to
    32767 values (the kernel's limit; longer tensors go in chunks)."""
    n = len(q)
    if n <= 32767:
        float_kernels().dense_backward_mixed(_ONE, q, qp, out, None, None)
        return out
    qm, om = memoryview(q), memoryview(out)
    for i in range(0, n, 32764):
        j = min(n, i + 32764)
        float_kernels().dense_backward_mixed(_ONE, qm[i:j], qp, om[i:j], None, None)
    return out


_q8 = None  # type: tuple | bool | None  # (absmax_exp, quant_pow2), or False without a native emitter


def _quant8():
    """The viper helpers, imported on first use: only the float modes call
    quantize_err, and viper code is machine code in the heap (~1 KB)."""
    global _q8
    if _q8 is None:
        try:
            from ._quant8 import absmax_exp, quant_pow2
            _q8 = (absmax_exp, quant_pow2)
        except MemoryError:
            # no room for the machine code now: not a reason to take the
            # ~20x slower Python loop for the rest of the run
            raise
        except Exception:  # no native emitter in this firmware
            _q8 = False
    return _q8


def quantize_err(e, out, qp):
    """out (uint8, len(out) values of e) <- an 8-bit copy of the float error
    e, zero point 128, scale 2^k with max|e| / 2^k in [64, 128) (viper, see
    _quant8.py), or the symmetric range of max|e| (Python fallback).  qp is
    set to that (fixed) record."""
    q8 = _quant8()
    if not q8:
        return quantize_sym(e, out, qp)
    n = len(out)
    ex = q8[0](e, n)
    q8[1](e, out, n, ex)
    s = 2.0 ** (ex - 133) if ex else 1.0
    qp[0] = s
    qp[1] = 128.0
    qp[2] = -128.0 * s
    qp[3] = 127.0 * s


def quantize_sym(e, out, qp):
    """out (uint8, len(out)) <- float e on the symmetric range [-max|e|, max|e|]
    (qp set to it, fixed).  The slow, portable path of quantize_err."""
    hi = max(e)
    lo = min(e)
    m = hi if hi > -lo else -lo
    if m <= 0:
        m = 1.0
    qp[2] = -m
    qp[3] = m
    _q.qp_from_range(qp)
    inv = 1.0 / qp[0]
    z = qp[1] + 0.5
    for i in range(len(out)):
        v = int(e[i] * inv + z)
        out[i] = 255 if v > 255 else (0 if v < 0 else v)


def dense_backward(layer, e):
    """Dense.backward in the float32 and mixed modes (float error e)."""
    m, qf = layer.m, layer._qf
    if layer.relu:
        if m == MIXED:
            qf.relu_backward_mixed(e, layer.y, layer.yq)
        else:
            qf.relu_backward_f32(e, layer.y)
    sel = k = None
    if layer.sel and layer.trainable:
        k = qf.dense_select_f32(e, layer.dsgu_hp, layer.dsgu_state, layer.sel, layer.scores)
        sel = layer.sel
    layer.k = layer.n_out if k is None else k
    if not layer.first:
        if m == MIXED:
            qf.dense_backward_mixed(e, layer.w, layer.wq, layer.ep, sel, k)
        else:
            qf.dense_backward_f32(e, layer.w, layer.ep, sel, k)
    if layer.trainable:
        if m == MIXED:
            qf.dense_update_mixed(e, layer.x, layer.xq, layer.w, layer.wq, layer.b, layer.bq, sel, k,
                                  layer.hp, layer.flags, layer.state, layer.rng)
        else:
            qf.dense_update_f32(e, layer.x, layer.w, layer.b, sel, k, layer.hp, layer.flags, layer.state)
    return layer.ep, layer.epq


def conv_backward_mixed(layer, e):
    """Conv2d.backward in the mixed mode (float error e, uint8 weights)."""
    g = layer.geom
    if layer.relu:
        layer._qf.relu_backward_mixed(e, layer.y, layer.yq)
    e8, eq8 = layer._e8, layer.eq8
    if layer.trainable:
        quantize_err(e, e8, eq8)
    sel = k = None
    if layer.sel and layer.trainable:
        k = layer._select(e8, eq8)
        sel = layer.sel
    layer.k = layer.geom[3] if k is None else k
    if not layer.first:
        dequantize(layer.w, layer.wq, layer._wf)
        if sel is None:
            layer._bwd(e, None, layer._xf, layer._wf, layer.ep, None, None, g)
        else:
            layer._bwd(e, None, layer._xf, layer._wf, layer.ep, None, None, g, sel, k)
    if layer.trainable:
        layer._upd(e8, eq8, layer.x, layer.xq, layer.w, layer.wq, layer.b, layer.bq, g, sel, k,
                   layer.hp, layer.flags, layer.state, layer.rng, layer._scr)
    return layer.ep, None


def conv_backward_f32(layer, e):
    """Conv2d.backward in the float32 mode."""
    g = layer.geom
    if layer.relu:
        layer._qf.relu_backward_f32(e, layer.y)
    sel = k = None
    if layer.sel and layer.trainable:
        quantize_err(e, layer._e8, layer.eq8)
        k = layer._select(layer._e8, layer.eq8)
        sel = layer.sel
    layer.k = layer.geom[3] if k is None else k
    ep = None if layer.first else layer.ep
    gw = gb = None
    if layer.trainable:
        gw, gb = layer._gw, layer.gb
    if ep is not None or gw is not None:
        if sel is None:
            layer._bwd(e, None, layer.x, layer.w, ep, gw, gb, g)
        else:
            layer._bwd(e, None, layer.x, layer.w, ep, gw, gb, g, sel, k)
    if layer.trainable:
        if layer.transposed:
            layer._qf.update_rows_f32(gw, layer.w, None, None, layer.hp, layer.flags, layer.state)
            layer._qf.bias_update_f32(gb, layer.b, layer.hp, layer.bflags, layer.bstate)
        else:
            layer._qf.update_rows_f32(gw, layer.w, gb, layer.b, layer.hp, layer.flags, layer.state)
    return layer.ep, None
