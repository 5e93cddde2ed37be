"""ConvTranspose2d DSGU over input-channel slices (docs/KERNELS.md): the
structures are the in_ch slices w[ci] instead of the out_ch filters
w[:, co] ('input' instead of 'output').  Applied to a built uint8 model:

    vae = models.build_vae("conv", Options(dsgu=(0.1, 0.1)))
    convt_slices.use(vae)            # its ConvTranspose2d layers where they pay

A module of its own, imported only by a model that uses it: the code that
builds a model has a fixed heap budget on a board (defaults.BUILD_CODE_BYTES).
Not built into armv6m's _qtrain (the Pico's heap): there attach raises
ValueError.
"""
import sys

import _qtrain as _q

from .layers import zeros


def use(model, structures="input"):
    """Switch the ConvTranspose2d layers of `model` (a VAE, a Sequential or a
    list of layers) to 'input' slices where they pay (attach); 'output'
    leaves them.  ValueError for another value or (with 'input') a model not
    in mode 'uint8'.
    -> how many layers it switched."""
    layers = (model.encoder.layers + model.decoder.layers if hasattr(model, "decoder")
              else getattr(model, "layers", model))
    if structures not in ("input", "output"):
        raise ValueError("structures must be 'input' or 'output', got %r" % (structures,))
    n = 0
    if structures == "input":
        for layer in layers:
            n += attach(layer, structures)
    return n


def attach(layer, structures="input"):
    """Switch one uint8 ConvTranspose2d layer (built over filters) to its
    slices where they pay: DSGU on and out_ch * lmin < 1, i.e. the filters
    cannot go below the fraction lmin (k stays 1 of out_ch).  Elsewhere a
    slice's gradient re-samples every output channel's error per slice,
    which cost more than it saved (ConvT 32->16 update 57 k -> 390 k on
    qemu-m4).  -> whether it switched."""
    opt = layer.opt
    if structures != "input":   # ('output', the filters, is use's: nothing to attach)
        raise ValueError("structures must be 'input', got %r" % (structures,))
    if opt.mode != "uint8":
        raise ValueError("structures='input': mode 'uint8' only, got mode %r" % (opt.mode,))
    if not getattr(layer, "transposed", False) or opt.dsgu is None or layer.geom[3] * opt.dsgu[0] >= 1:
        return False
    if getattr(sys.implementation, "_mpy", 0) >> 10 == 4:   # native arch armv6m
        raise ValueError("structures='input': not built into armv6m's _qtrain (the Pico's heap)")
    c, h, w = layer.in_shape
    layer.slices = True   # (read by tools; the layer's calls are the closures below)
    layer.flags |= 8                            # conv_transpose2d_update_u8: slices
    layer.state = zeros("f", 5 + 2 * c)         # per-slice statistics
    layer.sel = zeros("i", c)
    layer.scores = zeros("I", 0)
    layer.sel_scratch = zeros("I", 2 * c + h * w)   # conv_select_u8's (scores, selection, error map)
    # The slices calls' own scratch: the shared one is sized for the filters
    # path (the forward still takes it).
    scr = layer.slices_scratch = bytearray(_q.conv_transpose2d_scratch_len(layer.geom, True))

    def select(e8, eq, y=None):   # in place of Conv2d._select (y: its ReLU mask first)
        if y is not None:
            _q.relu_backward_u8(e8, eq, y, layer.yq)
        return _q.conv_select_u8(e8, eq, layer.dsgu_hp, layer.dsgu_state, layer.sel, layer.sel_scratch,
                                 layer.x, layer.xq, layer.geom)
    layer._select = select

    def bwd(e, eq, y, yq, w, wq, ex, exq, g, sel=None, k=None, scratch=None, slices=True, x=None, xq=None):
        # in place of _bwd (x, xq: the mask-aware propagation's input)
        return _q.conv_transpose2d_backward_u8(e, eq, y, yq, w, wq, ex, exq, g, sel, k, scr, True, x, xq)
    layer._bwd = bwd

    def upd(e, eq, x, xq, w, wq, b, bq, g, sel, k, hp, flags, state, rng, scratch):   # in place of _upd
        return _q.conv_transpose2d_update_u8(e, eq, x, xq, w, wq, b, bq, g, sel, k, hp, flags, state, rng, scr)
    layer._upd = upd
    return True
