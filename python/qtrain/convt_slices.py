"""ConvTranspose2d DSGU over input-channel slices (Options(dsgu_convt='input'),
docs/KERNELS.md): the structures are the in_ch slices w[ci] instead of the
out_ch filters w[:, co].  A module of its own, imported by qtrain.builder
only for a model that asks for it: the code that builds a model has a fixed
heap budget on a board (defaults.BUILD_CODE_BYTES), and a model without it
does not hold this code.  Not built into armv6m's _qtrain (the Pico's heap):
there the first step raises ValueError.
"""
import _qtrain as _q

from .layers import zeros


def check(mode, value):
    """init_options' check of dsgu_convt (anything but 'output')."""
    if value != "input" or mode != "uint8":
        raise ValueError("dsgu_convt must be 'output' or (mode 'uint8' only) 'input', got %r" % (value,))


def attach(layer, opt):
    """Switch a ConvTranspose2d layer just built (over filters) to its slices
    where they pay: DSGU on and out_ch * lmin < 1, i.e. the filters cannot go
    below the fraction lmin (k stays 1 of out_ch).  Elsewhere a slice's
    gradient re-samples every output channel's error per slice, which cost
    more than it saved (ConvT 32->16 update 57 k -> 390 k on qemu-m4)."""
    c, h, w = layer.in_shape
    if opt.dsgu is None or layer.geom[3] * opt.dsgu[0] >= 1:
        return
    layer.slices = True
    layer.flags |= 8                            # conv_transpose2d_update_u8: slices
    layer.state = zeros("f", 5 + 2 * c)         # per-slice statistics
    layer.sel = zeros("i", c)
    layer.scores = zeros("I", 0)
    layer.sel_scratch = zeros("I", 2 * c + h * w)   # conv_select_u8's (scores, selection, error map)

    def select(e8, eq):   # in place of Conv2d._select
        return _q.conv_select_u8(e8, eq, layer.dsgu_hp, layer.dsgu_state, layer.sel, layer.sel_scratch,
                                 layer.x, layer.xq, layer.geom)
    layer._select = select
