"""qtrain: fully quantized training on microcontrollers.

    import qtrain
    qtrain.show(img)          # a 28x28 uint8 image as ASCII art

This file stays light so `import qtrain` is cheap on a board; models,
trainers and data streams live in their own modules (qtrain.models, ...).
"""
import sys

__version__ = "0.1.0"

_RAMP = " .:-=+*#%@"


def show(img, width=28, out=None):
    """Print a uint8 image (bytes/bytearray/array/memoryview, row-major,
    0 = background) as ASCII art, two characters per pixel so it keeps its
    aspect ratio.  Returns nothing; `out` is a callable taking a line (print)."""
    out = out or print
    n = len(img)
    if width <= 0 or n % width:
        raise ValueError("show: image of %d pixels is not a multiple of width=%d" % (n, width))
    for r in range(0, n, width):
        line = []
        for c in range(width):
            ch = _RAMP[img[r + c] * 10 // 256]
            line.append(ch + ch)
        out("".join(line))


def unload(*names):
    """Forget the submodules `names` (e.g. "config"): their code is freed at
    the next gc.collect() once nothing else refers to it.  The scripts drop
    what only setup needs (settings, model builder) before training, since a
    board's heap holds the bytecode of every imported module."""
    pkg = sys.modules[__name__]
    for n in names:
        sys.modules.pop(__name__ + "." + n, None)
        if n in pkg.__dict__:
            delattr(pkg, n)
