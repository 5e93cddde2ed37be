"""_qtrain_float: the second native module of qtrain -- the float32 reference
kernels, the mixed mode (uint8 forward, float32 errors) and the uint8
kernels' batch > 1 entry points (int32 gradient buffers), which a batch-1
uint8 model never calls.

Type stubs for mypy, pyright and IDEs; the module itself is
dist/<arch>_6.3/_qtrain_float.mpy (natmod/qtrain_float_module.c).  qtrain
imports it (layers.float_kernels()) only when a 'float32' or 'mixed' layer is
built; a 'mixed' model also calls the uint8 forward kernels of _qtrain.
Buffer types and argument conventions: _qtrain.pyi; formulas: docs/KERNELS.md.
"""
from typing import Optional, Union

# The buffer types are _qtrain's (one definition for both modules).
from _qtrain import _F32, _I32, _QP, _U8, _U32, _Flag, _Geom, _Scratch, _U8Out

# Also in this module (the same C functions): its API version, which must
# equal _qtrain.abi(), the conv geometry checks and scratch lengths.
from _qtrain import abi as abi
from _qtrain import conv2d_out_shape as conv2d_out_shape
from _qtrain import conv_transpose2d_out_shape as conv_transpose2d_out_shape
from _qtrain import conv2d_scratch_len as conv2d_scratch_len
from _qtrain import conv_transpose2d_scratch_len as conv_transpose2d_scratch_len


# ---- Dense, float32 reference and mixed mode ----------------------------------

def dense_forward_f32(x: _F32, w: _F32, b: Optional[_F32], y: _F32, relu: _Flag, /) -> None:
    """Float32 y = W x + b (ReLU fused if relu)."""
    ...


def relu_backward_f32(e: _F32, y: _F32, /) -> int:
    """e_i = 0 where y_i <= 0, in place; returns how many were zeroed."""
    ...


def relu_backward_mixed(e: _F32, y: _U8, yq: _QP, /) -> int:
    """Float e zeroed where the uint8 forward output y <= z_y; returns the count."""
    ...


def dense_backward_f32(e: _F32, w: _F32, ep: _F32, sel: Optional[_I32], k: int, /) -> None:
    """ep = W^T e over the rows sel[:k] (None: all)."""
    ...


def dense_backward_mixed(e: _F32, w: _U8, wq: _QP, ep: _F32, sel: Optional[_I32], k: int, /) -> None:
    """ep = s_w (W - z_w)^T e: float error through uint8 weights."""
    ...


def dense_select_f32(e: _F32, hp: _F32, state: _F32, sel: _I32, scratch: _U32, /) -> int:
    """DSGU on float errors (score |e_i|); returns k."""
    ...


def dense_update_f32(e: _F32, x: _F32, w: _F32, b: Optional[_F32], sel: Optional[_I32], k: int,
                     hp: _F32, flags: int, state: _F32, /) -> None:
    """Float32 SGD step (batch 1); flags = 4*per_row | 8*plain."""
    ...


def dense_update_mixed(e: _F32, x: _U8, xq: _QP, w: _U8Out, wq: _QP, b: Optional[_I32],
                       bq: Optional[_QP], sel: Optional[_I32], k: int, hp: _F32, flags: int,
                       state: _F32, rng: _U32, /) -> int:
    """Mixed mode step: uint8 weights updated from a float error; 1 if re-mapped."""
    ...


def dense_grad_acc_f32(e: _F32, x: _F32, g: _F32, gb: Optional[_F32], sel: Optional[_I32], k: int, /) -> None:
    """Batch > 1: g += e x^T, gb += e (float32)."""
    ...


def dense_grad_acc_mixed(e: _F32, x: _U8, xq: _QP, g: _F32, gb: Optional[_F32],
                         sel: Optional[_I32], k: int, /) -> None:
    """Batch > 1, mixed: g += e_i s_x (x_j - z_x) in real units, gb += e."""
    ...


def update_rows_f32(g: _F32, w: _F32, gb: Optional[_F32], b: Optional[_F32], hp: _F32, flags: int,
                    state: _F32, /) -> None:
    """Batch update of float32 rows from float gradients; zeroes g, gb."""
    ...


def bias_update_f32(gb: _F32, b: _F32, hp: _F32, flags: int, state: _F32, /) -> None:
    """A float32 bias vector alone: b -= lr gb / RMS(gb) over the entries
    with a gradient (state[3..4]; len(state) >= 5); flags 8: plain; zeroes gb."""
    ...


def update_rows_mixed(g: _F32, w: _U8Out, wq: _QP, gb: Optional[_F32], b: Optional[_I32],
                      bq: Optional[_QP], hp: _F32, flags: int, state: _F32, rng: _U32, /) -> int:
    """Batch update of uint8 rows from float gradients; zeroes g, gb; 1 if re-mapped."""
    ...


# ---- Conv2d / ConvTranspose2d (CHW, batch 1) ----------------------------------

def conv2d_forward_f32(x: _F32, w: _F32, b: Optional[_F32], y: _F32, geom: _Geom, relu: _Flag, /) -> None:
    """Float32 Conv2d forward; w [out_ch][in_ch][k_h][k_w]."""
    ...


def conv_transpose2d_forward_f32(x: _F32, w: _F32, b: Optional[_F32], y: _F32, geom: _Geom,
                                 relu: _Flag, /) -> None:
    """Float32 ConvTranspose2d forward; w [in_ch][out_ch][k_h][k_w]."""
    ...


def conv2d_backward_f32(e: _F32, y: Optional[_F32], x: _F32, w: _F32, ex: Optional[_F32],
                        gw: Optional[_F32], gb: Optional[_F32], geom: _Geom,
                        sel: Optional[_I32] = None, k: Optional[int] = None, /) -> None:
    """Float32 backward: ReLU mask on e if y given, ex = dL/dx, gw/gb += gradients."""
    ...


def conv_transpose2d_backward_f32(e: _F32, y: Optional[_F32], x: _F32, w: _F32, ex: Optional[_F32],
                                  gw: Optional[_F32], gb: Optional[_F32], geom: _Geom,
                                  sel: Optional[_I32] = None, k: Optional[int] = None, /) -> None:
    """Float32 backward of ConvTranspose2d (as conv2d_backward_f32)."""
    ...


def conv2d_backward_mixed(e: _F32, y: Optional[_U8], yq: Optional[_QP], w: _U8, wq: _QP,
                          ex: Optional[_F32], geom: _Geom, sel: Optional[_I32] = None,
                          k: Optional[int] = None, /) -> None:
    """Mixed mode: float e masked by the uint8 y, ex = s_w sum (w - z_w) e."""
    ...


def conv_transpose2d_backward_mixed(e: _F32, y: Optional[_U8], yq: Optional[_QP], w: _U8, wq: _QP,
                                    ex: Optional[_F32], geom: _Geom, sel: Optional[_I32] = None,
                                    k: Optional[int] = None, /) -> None:
    """As conv2d_backward_mixed, for ConvTranspose2d."""
    ...


def conv2d_grad_mixed(e: _F32, x: _U8, xq: _QP, gw: _F32, gb: Optional[_F32], geom: _Geom,
                      sel: Optional[_I32] = None, k: Optional[int] = None, /) -> None:
    """Mixed mode: float gradients in real units += , then update_rows_mixed."""
    ...


def conv_transpose2d_grad_mixed(e: _F32, x: _U8, xq: _QP, gw: _F32, gb: Optional[_F32], geom: _Geom,
                                sel: Optional[_I32] = None, k: Optional[int] = None, /) -> None:
    """As conv2d_grad_mixed, for ConvTranspose2d."""
    ...


def conv2d_update_mixed(e: _F32, x: _U8, xq: _QP, w: _U8Out, wq: _QP, b: Optional[_I32], bq: Optional[_QP],
                        geom: _Geom, sel: Optional[_I32], k: Optional[int], hp: _F32, flags: int,
                        state: _F32, rng: _U32, scratch: _Scratch, /) -> int:
    """Mixed mode batch-1 step of uint8 weights from a float error; 1 if re-mapped."""
    ...


def conv_transpose2d_update_mixed(e: _F32, x: _U8, xq: _QP, w: _U8Out, wq: _QP, b: Optional[_I32],
                                  bq: Optional[_QP], geom: _Geom, sel: Optional[_I32], k: Optional[int],
                                  hp: _F32, flags: int, state: _F32, rng: _U32,
                                  scratch: _Scratch, /) -> int:
    """As conv2d_update_mixed, for ConvTranspose2d."""
    ...


def conv_swap_axes(src: Union[_U8, _I32, _F32], dst: Union[_U8Out, _I32, _F32], a: int, b: int,
                   inner: int, /) -> None:
    """dst[j][i][:] = src[i][j][:] (a*b*inner items, same typecode): ConvTranspose2d
    weights to filter-major [out][in][kh][kw] and back."""
    ...


# ---- losses and latent ------------------------------------------------------

def bce_sigmoid_mixed(x: _U8, xq: _QP, t: _U8, e: _F32, stats: _F32, lut: Optional[_F32] = None, /) -> None:
    """As bce_sigmoid_u8 with a float32 error e."""
    ...


def bce_sigmoid_f32(x: _F32, t: _U8, e: _F32, stats: _F32, /) -> None:
    """Sigmoid + BCE on float logits, float error."""
    ...


def softmax_ce_mixed(x: _U8, xq: _QP, label: int, e: _F32, stats: _F32, /) -> int:
    """As softmax_ce_u8 with a float32 error e; returns the predicted class."""
    ...


def softmax_ce_f32(x: _F32, label: int, e: _F32, stats: _F32, /) -> int:
    """Softmax + cross-entropy on float logits; returns the predicted class."""
    ...


def latent_forward_f32(h: _F32, rng: Optional[_U32], eps: _F32, z: _F32, stats: _F32, /) -> None:
    """Float32 reparameterization (as latent_forward_u8)."""
    ...


def latent_backward_mixed(h: _U8, hq: _QP, eps: _F32, dz: _F32, dh: _F32, hp: _F32, stats: _F32, /) -> None:
    """As latent_backward_u8 with float dz and dh."""
    ...


def latent_backward_f32(h: _F32, eps: _F32, dz: _F32, dh: _F32, hp: _F32, stats: _F32, /) -> None:
    """Float32 latent backward."""
    ...


# ---- uint8, batch > 1 (int32 gradient buffers) --------------------------------

def dense_grad_acc_u8(e: _U8, eq: _QP, x: _U8, xq: _QP, g: _I32, gb: Optional[_I32],
                      sel: Optional[_I32], k: int, /) -> None:
    """Batch > 1: g int32[m*n] += (e - z_e)(x - z_x)^T, gb int32[m] += e - z_e."""
    ...


def update_rows_u8(g: _I32, gs: _F32, w: _U8Out, wq: _QP, gb: Optional[_I32], b: Optional[_I32],
                   bq: Optional[_QP], hp: _F32, flags: int, state: _F32, rng: _U32, /) -> int:
    """Batch update of uint8 rows (Dense rows, Conv filters) from int32 gradients;
    rows = (len(state) - 5) / 2, gs = [s_g, s_gb].  Zeroes g, gb; 1 if re-mapped."""
    ...


def conv2d_grad_u8(e: _U8, eq: _QP, x: _U8, xq: _QP, gw: _I32, gb: Optional[_I32], geom: _Geom,
                   sel: Optional[_I32], k: Optional[int], scratch: _Scratch, /) -> None:
    """int32 gradients += (batch path, weight layout), then update_rows_u8."""
    ...


def conv_transpose2d_grad_u8(e: _U8, eq: _QP, x: _U8, xq: _QP, gw: _I32, gb: Optional[_I32], geom: _Geom,
                             sel: Optional[_I32], k: Optional[int], scratch: _Scratch, /) -> None:
    """As conv2d_grad_u8, for ConvTranspose2d."""
    ...
