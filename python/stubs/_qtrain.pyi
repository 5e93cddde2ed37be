"""_qtrain: the native module of qtrain (uint8 training kernels).

Type stubs for mypy, pyright and IDEs; the module itself is
dist/<arch>_6.3/_qtrain.mpy (natmod/).  Contract and formulas: docs/KERNELS.md.
The float32 and mixed-mode kernels are in the second module, _qtrain_float
(_qtrain_float.pyi), which uses the buffer types defined here.

Conventions (every entry point):
- Tensors are buffers: uint8 = bytearray / array('B') (bytes for read-only
  inputs), int32 = array('i'), uint32 = array('I'), float32 = array('f').
  The typecode is checked at run time (TypeError naming the argument).
- Arguments are positional only, in the order inputs, outputs, options; each
  uint8 tensor is followed by its qparams record, array('f', 8):
  [scale, zero, min, max, alpha, observed min, observed max, observations].
- Outputs and scratch are caller-owned and writable; nothing allocates.
- No float scalars: float options travel in array('f') (hp, gs).
- Bad arguments raise ValueError/TypeError whose message starts with the name.
"""
from array import array
from typing import Optional, Tuple, Union

# uint8 input (read only), uint8 output (written), and the other typecodes.
_U8 = Union[bytes, bytearray, memoryview, array[int]]
_U8Out = Union[bytearray, memoryview, array[int]]
_I32 = Union[array[int], memoryview]
_U32 = Union[array[int], memoryview]
_F32 = Union[array[float], memoryview]
# A qparams record: array('f', 8) (qp_update also takes 8*k items).
_QP = array[float]
# Conv2d geometry: (in_ch, in_h, in_w, out_ch, k_h, k_w, stride_h, stride_w,
# pad_h, pad_w); ConvTranspose2d adds (out_pad_h, out_pad_w).
_Geom = Tuple[int, ...]
# 0/1 or False/True.
_Flag = Union[bool, int]
# Conv scratch: a writable, 4-byte aligned bytearray of *_scratch_len(geom) bytes.
_Scratch = Union[bytearray, memoryview]


def abi() -> int:
    """Version of this Python-visible API (qtrain checks it on import)."""
    ...


# ---- utilities -------------------------------------------------------------

def crc32(buf: _U8, crc: int = 0, /) -> int:
    """CRC-32 (zlib's) of any buffer, chained through `crc`."""
    ...


# ---- quantization core -----------------------------------------------------

def qp_from_range(qp: _QP, /) -> None:
    """Set scale and zero point (items 0, 1) of `qp` from its range (items 2, 3)."""
    ...


def qp_update(qps: _QP, /) -> None:
    """Apply the observed ranges of one or more records (8*k items): moving
    average with alpha, new scale/zero; once per step, after the backward."""
    ...


def remap_u8(q: _U8Out, qp_old: _QP, qp_new: _QP, /) -> None:
    """Re-quantize stored uint8 values in place from qp_old to qp_new."""
    ...


# ---- Dense, uint8 ----------------------------------------------------------

def dense_forward_u8(x: _U8, xq: _QP, w: _U8, wq: _QP, b: Optional[_I32], bq: Optional[_QP],
                     y: _U8Out, yq: _QP, relu: _Flag, xs: Optional[_I32] = None, /) -> None:
    """y = requant(W x + b), ReLU fused if relu; records y's range in yq.
    x uint8[n], w uint8[m*n] (row i feeds y[i]), b int32[m] or None, y uint8[m];
    xs: optional scratch array('i', (n+3)&~3) for the fast path (same bits)."""
    ...


def relu_backward_u8(e: _U8Out, eq: _QP, y: _U8, yq: _QP, /) -> int:
    """e_i = z_e where y_i <= z_y, in place; returns how many were zeroed."""
    ...


def dense_select_u8(e: _U8, eq: _QP, hp: _F32, state: _F32, sel: _I32, scratch: _U32,
                    y: Optional[_U8] = None, yq: Optional[_QP] = None, /) -> int:
    """DSGU: the k rows with the largest |e_i - z_e| into sel (ascending); returns k.
    hp = array('f', [lmin, lmax]); state = array('f', [running max]); scratch uint32[2m].
    y (not None): a ReLU layer's output, its mask on e in place first (as relu_backward_u8)."""
    ...


def dense_backward_u8(e: _U8, eq: _QP, w: _U8, wq: _QP, ep: _U8Out, epq: _QP,
                      sel: Optional[_I32], k: int, acc: _I32, x: Optional[_U8] = None,
                      xq: Optional[_QP] = None, /) -> None:
    """ep = requant(W^T e) over the rows sel[:k] (None: all); acc int32[n] scratch;
    records ep's range in epq.  x, xq (the input, from a ReLU layer): mask-aware,
    ep = its zero point where x <= xq's zero point (not computed)."""
    ...


def dense_update_u8(e: _U8, eq: _QP, x: _U8, xq: _QP, w: _U8Out, wq: _QP, b: Optional[_I32],
                    bq: Optional[_QP], sel: Optional[_I32], k: int, hp: _F32, flags: int,
                    state: _F32, rng: _U32, /) -> int:
    """One SGD step (batch 1) from (e - z_e)(x - z_x)^T, standardized; then the
    weight range step.  hp = [lr, alpha_norm, tau]; flags = rounding | 4*per_row;
    state array('f', 5 + 2m); rng array('I', [seed]).  Returns 1 if w was re-mapped."""
    ...


# ---- DSGU for layers with precomputed scores ---------------------------------

def select_scores(scores: _U32, n_err: int, eq: _QP, hp: _F32, state: _F32, sel: _I32,
                  scratch: _U32, /) -> int:
    """DSGU from per-structure scores (uint32[ch]) covering n_err errors; returns k."""
    ...


# ---- Conv2d / ConvTranspose2d (CHW, batch 1) ----------------------------------

def conv2d_out_shape(geom: _Geom, /) -> Tuple[int, int, int]:
    """(out_ch, out_h, out_w) of a Conv2d geometry (checked)."""
    ...


def conv_transpose2d_out_shape(geom: _Geom, /) -> Tuple[int, int, int]:
    """(out_ch, out_h, out_w) of a ConvTranspose2d geometry (checked)."""
    ...


def conv2d_scratch_len(geom: _Geom, /) -> int:
    """Bytes of the scratch bytearray the layer's uint8 calls need."""
    ...


def conv_transpose2d_scratch_len(geom: _Geom, slices: bool = False, /) -> int:
    """Bytes of the scratch bytearray the layer's uint8 calls need (the
    filters path); slices=True: the input-channel slices calls' own scratch
    (backward with slices=True, update with flag 8; not built for armv6m)."""
    ...


def conv2d_forward_u8(x: _U8, xq: _QP, w: _U8, wq: _QP, b: Optional[_I32], bq: Optional[_QP],
                      y: _U8Out, yq: _QP, geom: _Geom, relu: _Flag, scratch: _Scratch, /) -> None:
    """uint8 Conv2d forward; records y's range in yq; scratch of conv2d_scratch_len bytes."""
    ...


def conv_transpose2d_forward_u8(x: _U8, xq: _QP, w: _U8, wq: _QP, b: Optional[_I32], bq: Optional[_QP],
                                y: _U8Out, yq: _QP, geom: _Geom, relu: _Flag,
                                scratch: _Scratch, /) -> None:
    """uint8 ConvTranspose2d forward; records y's range in yq."""
    ...


def conv2d_backward_u8(e: _U8Out, eq: _QP, y: Optional[_U8], yq: Optional[_QP], w: _U8, wq: _QP,
                       ex: Optional[_U8Out], exq: Optional[_QP], geom: _Geom,
                       sel: Optional[_I32] = None, k: Optional[int] = None,
                       scratch: Optional[_Scratch] = None, slices: bool = False,
                       x: Optional[_U8] = None, xq: Optional[_QP] = None, /) -> None:
    """ReLU mask on e in place (if y given), then ex = requant(W^T e) over the
    channels sel[:k]; records ex's range in exq (ex None: mask only).  x, xq
    (the input, from a ReLU layer): mask-aware, ex = its zero point where
    x <= xq's zero point (not computed), the range that of the others and 0."""
    ...


def conv_transpose2d_backward_u8(e: _U8Out, eq: _QP, y: Optional[_U8], yq: Optional[_QP], w: _U8, wq: _QP,
                                 ex: Optional[_U8Out], exq: Optional[_QP], geom: _Geom,
                                 sel: Optional[_I32] = None, k: Optional[int] = None,
                                 scratch: Optional[_Scratch] = None, slices: bool = False,
                                 x: Optional[_U8] = None, xq: Optional[_QP] = None, /) -> None:
    """As conv2d_backward_u8, for ConvTranspose2d; slices=True: sel names
    input-channel slices (strictly ascending; not built for armv6m) and scratch
    is conv_transpose2d_scratch_len(geom, True) bytes."""
    ...


def conv2d_update_u8(e: _U8, eq: _QP, x: _U8, xq: _QP, w: _U8Out, wq: _QP, b: Optional[_I32],
                     bq: Optional[_QP], geom: _Geom, sel: Optional[_I32], k: Optional[int], hp: _F32,
                     flags: int, state: _F32, rng: _U32, scratch: _Scratch, /) -> int:
    """Batch-1 SGD step with per-filter standardization (flags must include 4);
    state array('f', 5 + 2*out_ch).  Returns 1 if w was re-mapped."""
    ...


def conv_transpose2d_update_u8(e: _U8, eq: _QP, x: _U8, xq: _QP, w: _U8Out, wq: _QP, b: Optional[_I32],
                               bq: Optional[_QP], geom: _Geom, sel: Optional[_I32], k: Optional[int],
                               hp: _F32, flags: int, state: _F32, rng: _U32,
                               scratch: _Scratch, /) -> int:
    """As conv2d_update_u8, for ConvTranspose2d; flag 8: the DSGU structures
    are the input-channel slices (state 5 + 2*in_ch, scratch
    conv_transpose2d_scratch_len(geom, True) bytes; not built for armv6m)."""
    ...


def conv_select_u8(e: _U8, eq: _QP, hp: _F32, state: _F32, sel: _I32, scratch: _U32,
                   x: Optional[_U8] = None, xq: Optional[_QP] = None, geom: Optional[_Geom] = None, /) -> int:
    """DSGU for a conv layer: top-k channels by sum |e - z_e| into sel; returns k.
    ch = len(sel); scratch uint32[2*ch].  With x, xq, geom: a ConvTranspose2d's
    input-channel slices (ch = in_ch) by the error their channel fed."""
    ...


def conv_scores_u8(e: _U8, eq: _QP, scores: _U32, y: Optional[_U8] = None, yq: Optional[_QP] = None,
                   /) -> None:
    """Per-channel DSGU scores sum |e - z_e| of a CHW error into scores (uint32[ch]).
    y (not None): a ReLU layer's output, its mask on e in place in the same pass."""
    ...


# ---- losses and latent ------------------------------------------------------

def bce_sigmoid_u8(x: _U8, xq: _QP, t: _U8, e: _U8Out, eq: _QP, stats: _F32,
                   lut: Optional[_F32] = None, /) -> None:
    """Sigmoid + BCE on uint8 logits against image t (t/255): e = sigmoid(x) - t
    (uint8, range recorded in eq); stats = [loss sum, min e, max e];
    lut: optional array('f', 512) scratch (faster on soft-float boards)."""
    ...


def softmax_ce_u8(x: _U8, xq: _QP, label: int, e: _U8Out, eq: _QP, stats: _F32, /) -> int:
    """Softmax + cross-entropy on uint8 logits; e = softmax(x) - onehot (uint8);
    returns the predicted class."""
    ...


def latent_forward_u8(h: _U8, hq: _QP, rng: Optional[_U32], eps: _F32, z: _U8Out, zq: _QP,
                      stats: _F32, /) -> None:
    """z = mu + exp(logvar/2) eps from h = [mu, logvar] (2L); eps drawn from rng
    (None: eps used as given); stats = [KL, min z, max z]."""
    ...


def latent_backward_u8(h: _U8, hq: _QP, eps: _F32, dz: _U8, dzq: _QP, dh: _U8Out, dhq: _QP,
                       hp: _F32, stats: _F32, /) -> None:
    """dh = [dL/dmu, dL/dlogvar] from the error dz at z plus beta * KL;
    hp = array('f', [beta]); stats = [KL, min dh, max dh]."""
    ...


def rng_seed(rng: _U32, seed: int, /) -> None:
    """rng (array('I', 1)) <- a nonzero state hashed from seed."""
    ...


def rng_normal(rng: _U32, out: _F32, /) -> None:
    """Fill out with N(0, 1) draws (the stream latent_forward_* uses)."""
    ...


def vmath(op: int, x: _F32, y: _F32, /) -> None:
    """y = f(x) elementwise: op 0 exp, 1 log, 2 log1p, 3 sqrt, 4 sigmoid,
    5 log1p on [0, 1]; same bits on every target."""
    ...
