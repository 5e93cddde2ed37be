"""Weight statistics the accuracy and trace drivers print (a MicroPython
module next to them: a script's directory is on its import path)."""


def clamped(layer):
    """Fraction of a uint8 layer's weights at 0 or 255 (the edges of its
    tracked range: a weight there has been clipped); 0 for float weights."""
    if layer.wq is None:
        return 0.0
    return sum(1 for v in layer.w if v == 0 or v == 255) / len(layer.w)
