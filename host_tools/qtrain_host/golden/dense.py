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
