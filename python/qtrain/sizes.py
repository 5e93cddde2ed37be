"""The bytes a model needs, before it is built: models.vae_bytes,
layers.Dense.nbytes, layers.Conv2d.nbytes (vae_bytes, dense_bytes,
conv_bytes), build_vae's check and its advice (mlp_advice), and the
ConvVAE's buffer sizes (vae_plan).  A module of its own, apart from
qtrain.builder: build_vae imports it for the check and drops it
(qtrain.unload) before it allocates the model: its ~2 KB (armv6m) are
free heap for the build's small objects (the ConvVAE at the Pico's heap
fits so; the largest free block does not grow, test_board_fit.py).
"""
import sys

import _qtrain as _q

from .builder import CONV_DEC, CONV_ENC, CONV_FLAT
from .layers import QP_LEN, xs_len
from .models import N_PIXELS

# Object headers and the Python objects of a built VAE (layers, records,
# views, dicts) in machine words, measured on the Unix port (8-byte words)
# and qemu-m4 (4-byte words): what vae_bytes adds to the buffers so that it
# predicts build_vae's gc.mem_alloc() growth.
VAE_OBJ_WORDS = {"mlp": 872, "conv": 1488}
WORD = 8 if sys.maxsize > 0xFFFFFFFF else 4
# Heap that training needs next to a model once it is built (train_vae.py
# through `mpremote mount`, armv6m): the loop, data reader and checkpoint
# writer's bytecode, the stream, the checkpoint's state dict, a step's and a
# save's garbage -- 16 KB measured for the MLP h16 (--heap_trace true: free
# after the model less free after the checkpoint code), plus room for the
# fragments that code leaves.  What build_vae's MemoryError hint keeps free.
STEP_BYTES = 20480


def dense_bytes(n_in, n_out, first=False, mode="uint8", dsgu=False, per_row=False, own_scratch=True,
           own_ep=True):
    """Bytes of buffers a Dense layer (layers.Dense) allocates (excluding object headers).
    own_scratch=False: its scratch comes from a Shared (shared_needs());
    own_ep=False: its input-error buffer is lent by the model."""
    if mode == "float32":
        n = 4 * (n_in * n_out + n_out + n_out)    # w, b, y
    else:
        n = n_in * n_out + 4 * n_out + n_out      # w, b, y
        if own_scratch:
            n += 4 * xs_len(n_in)                  # xs (and acc)
    if not first and own_ep:
        n += n_in if mode == "uint8" else 4 * n_in  # ep
    n += 4 * (5 + (2 * n_out if per_row else 0)) + (12 * n_out if dsgu else 0)  # update state, sel, scores
    return n + 6 * 4 * QP_LEN


def conv_bytes(in_shape, out_ch, k=3, stride=1, pad=0, out_pad=0, transposed=False, first=False,
           mode="uint8", dsgu=False, own_ep=True):
    """(own bytes, (scratch bytes, floats, error bytes) needed in a Shared)
    of a conv layer (layers.Conv2d), before building it (excluding object headers)."""
    c, h, w = in_shape
    geom = (c, h, w, out_ch, k, k, stride, stride, pad, pad) + ((out_pad, out_pad) if transposed else ())
    p = "conv_transpose2d" if transposed else "conv2d"
    oc, oh, ow = getattr(_q, p + "_out_shape")(geom)
    n_in, n_out, n_w = c * h * w, oc * oh * ow, c * out_ch * k * k
    sz = 4 if mode == "float32" else 1
    rows = c if (mode == "float32" and transposed) else out_ch   # structures of the update
    n = sz * (n_w + n_out) + 4 * out_ch + 4 * (5 + 2 * rows) + (12 * out_ch if dsgu else 0)
    n += 28 if (mode == "float32" and transposed) else 0           # bias state
    if not first and own_ep:
        n += n_in * (1 if mode == "uint8" else 4)
    scr = 0 if mode == "float32" else getattr(_q, p + "_scratch_len")(geom)
    if mode == "uint8":
        sh = (scr, 0, 0)
    elif mode == "mixed":
        sh = (scr, 0 if first else max(n_w, n_in), n_out)
    else:
        sh = (0, n_w, n_out if dsgu else 0)
        n += 4 * out_ch
    return n + 4 * 4 * QP_LEN, sh


def _error_sizes(n_ins, mode):
    """Two error buffers serve a chain of errors (backward order, sizes
    n_ins: the BCE head's, then the layers' at their inputs; None = no error
    at the input): error i goes into buffer i % 2 while the layer writing it
    reads the other one.  -> (items of buffer 0, of buffer 1)."""
    size = [0, 0]
    i = 0
    for n in n_ins:
        if n is not None:
            size[i % 2] = max(size[i % 2], n)
            i += 1
    return size


def _vae_layout(kind, hidden, latent):
    """-> (sizes of the errors written in backward order, for _error_sizes):
    the BCE head's error at the image, then the input errors of the layers
    that propagate one.  The head's error is a link of the chain like the
    layers' (the last layer reads it while it writes the other buffer, and
    nothing reads it afterwards): the ConvVAE then needs no buffer of its
    own for it, one 784-byte block fewer at the build."""
    if kind == "mlp":
        return [N_PIXELS, hidden, latent, hidden]          # BCE, dec 2, dec 1, enc 2 (enc 1 is first)
    return [N_PIXELS, 16 * 14 * 14, CONV_FLAT, latent, CONV_FLAT, 16 * 14 * 14]   # BCE, t2, t1, d2, d1, c2


def _vae_shared(kind, hidden, latent, mode, dsgu):
    """-> (own bytes of the layers, [scratch bytes, floats, error bytes] of
    the model's Shared): what the layers take before their objects."""
    own = dict(mode=mode, dsgu=dsgu)
    sh = [0, 0, 0]
    if mode != "float32":
        sh[0] = 2048                               # the BCE table
    if kind == "mlp":
        if mode != "float32":
            sh[0] = max(sh[0], 4 * xs_len(N_PIXELS))
        return 0, sh
    if mode != "float32":
        sh[0] = max(sh[0], 4 * xs_len(CONV_FLAT))
    n = 0
    for in_shape, oc, k, s, p, op, tr, first, _ in CONV_ENC + CONV_DEC:
        b, need = conv_bytes(in_shape, oc, k, s, p, op, tr, first, own_ep=False, **own)
        n += b
        sh = [max(u, v) for u, v in zip(sh, need)]
    return n, sh


def vae_bytes(kind="mlp", hidden=256, latent=10, mode="uint8", dsgu=False, per_row=False):
    """Bytes a VAE allocates (weights, activations, errors, optimizer state,
    shared scratch, heads, and its objects), for checking before building
    one: build_vae's gc.mem_alloc() growth on the Unix port within a few %
    (tests/test_vae_memory.py)."""
    dense = dict(mode=mode, dsgu=dsgu, per_row=per_row, own_scratch=False, own_ep=False)
    n, sh = _vae_shared(kind, hidden, latent, mode, dsgu)
    if kind == "mlp":
        n += dense_bytes(N_PIXELS, hidden, first=True, **dense)
        n += dense_bytes(hidden, 2 * latent, **dense)
        n += dense_bytes(latent, hidden, **dense)
        n += dense_bytes(hidden, N_PIXELS, **dense)
    else:
        n += dense_bytes(CONV_FLAT, 2 * latent, **dense)
        n += dense_bytes(latent, CONV_FLAT, **dense)
    n += sh[0] + 4 * sh[1] + sh[2]
    n += sum(_error_sizes(_vae_layout(kind, hidden, latent), mode)) * (1 if mode == "uint8" else 4)
    # heads (the BCE error is in the error buffers): latent z, eps, dh; the
    # float image in float32 mode
    n += 256 + (4 * N_PIXELS if mode == "float32" else 0)
    return n + 64 * latent + WORD * VAE_OBJ_WORDS[kind]


def mlp_advice(free, widest, latent, mode):
    """build_vae's advice for `free` bytes: the widest MLP VAE (hidden
    widest, widest / 2, ... down to 8) that trains in them (its buffers and
    what training loads after it, STEP_BYTES), or, if even the narrowest
    does not, the free heap that one needs."""
    h = widest
    while h > 8 and vae_bytes("mlp", h, latent, mode) + STEP_BYTES > free:
        h //= 2
    need = vae_bytes("mlp", h, latent, mode) + STEP_BYTES
    if need > free:
        return "kind='mlp', hidden=%d with %d bytes free (it and training need that)" % (h, need)
    return "kind='mlp', hidden=%d" % h


def _conv_vae_ahead(latent):
    """(typecode, items) of the uint8 ConvVAE's layer buffers of 512 bytes
    or more, for _allocate_ahead: the Dense layers' weights, d2's int32 bias
    and output, the convs' weights and outputs (as init_dense / init_conv
    allocate them)."""
    out = [("B", CONV_FLAT * 2 * latent), ("B", latent * CONV_FLAT), ("i", CONV_FLAT), ("B", CONV_FLAT)]
    for in_shape, oc, k, s, p, op, tr, _, _ in CONV_ENC + CONV_DEC:
        c, h, w = in_shape
        geom = (c, h, w, oc, k, k, s, s, p, p) + ((op, op) if tr else ())
        oc, oh, ow = getattr(_q, ("conv_transpose2d" if tr else "conv2d") + "_out_shape")(geom)
        out += [("B", c * oc * k * k), ("B", oc * oh * ow)]
    return [b for b in out if b[1] * (4 if b[0] == "i" else 1) >= 512]


# Items of the list vae_plan fills: 6 figures, the uint8 ConvVAE's 10
# buffers allocated ahead, a 0 after them.
PLAN_LEN = 20


def vae_plan(kind, hidden, latent, mode, dsgu, per_row, out):
    """What build_vae needs to know before it allocates, as small ints into
    `out` (PLAN_LEN items), a list made before this module was imported:
    an object returned from it lay after its bytecode (tuples: the build
    then failed on a 1568 B buffer from 5376 B taken).  out[0]: the
    bytes the VAE needs (vae_bytes); out[1:4]: its Shared's (scratch bytes,
    floats, error bytes); out[4:6]: the items of its two error buffers;
    out[6:]: the uint8 ConvVAE's buffers to allocate ahead (items, negative
    for an array('i')), then 0."""
    out[0] = vae_bytes(kind, hidden, latent, mode, dsgu, per_row)
    out[1:4] = _vae_shared(kind, hidden, latent, mode, dsgu)[1]
    out[4:6] = _error_sizes(_vae_layout(kind, hidden, latent), mode)
    i = 6
    for tc, n in _conv_vae_ahead(latent) if kind == "conv" and mode == "uint8" else ():
        out[i] = -n if tc == "i" else n
        i += 1
    out[i] = 0
