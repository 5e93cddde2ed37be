"""Weight statistics the accuracy and trace drivers print, and their
--std_rms (a MicroPython module next to them: a script's directory is on
its import path)."""

STD_RMS = 16   # update flag (QT_UPD_RMS): weights standardized by their RMS, mean 0


def std_rms(layers, mode):
    """--std_rms: update flag 16 on every trainable layer of a uint8 model
    (`layers`: a VAE's encoder and decoder layers, a classifier's; their
    weights' gradients standardized by their RMS, mean 0, as the biases,
    instead of centred: docs/KERNELS.md, "The latent event at k = 1").  Set
    after the build, not an Options field: the package's bytes on the Pico
    had no room for one.  ValueError in another mode."""
    if mode != "uint8":
        raise ValueError("--std_rms: uint8 mode only, got mode %r" % (mode,))
    for layer in layers:
        if layer.trainable:
            layer.flags |= STD_RMS


def clamped(layer):
    """Fraction of a uint8 layer's weights at 0 or 255 (the edges of its
    tracked range: a weight there has been clipped); 0 for float weights."""
    if layer.wq is None:
        return 0.0
    return sum(1 for v in layer.w if v == 0 or v == 255) / len(layer.w)
