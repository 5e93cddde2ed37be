"""qtrain: fully quantized training on microcontrollers.

    import qtrain
    qtrain.show(img)          # a 28x28 uint8 image as ASCII art

This file stays light so `import qtrain` is cheap on a board; models,
trainers and data streams live in their own modules (qtrain.models, ...).
"""
import gc
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


_held = []  # type: list  # reserve()'s placeholder until release()
TRACE = []  # type: list  # heap_trace(): [out] when on (train_vae.py --heap_trace true), empty when off


def largest_block():
    """The largest bytearray the heap can hold now (bytes, after a
    collection): what decides whether a model's biggest buffer fits when the
    free total (gc.mem_free()) says it should.  A binary search of trial
    allocations; slow, for diagnostics."""
    gc.collect()
    lo, hi = 0, gc.mem_free()
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            bytearray(mid)
            lo = mid
        except MemoryError:
            hi = mid - 1
        gc.collect()
    return lo


def heap_trace(phase):
    """Collect the garbage of the phase that ends (a training script's
    phases: settings, model, data code, ...) and, when tracing is on (TRACE
    holds an output function), print `@heap <phase> free=<bytes>
    largest=<bytes>`.  The collection is not only for the figures: the next
    phase's code then loads into the merged free blocks, not around the
    garbage (the ConvVAE at the Pico's real heap fits only so), and a traced
    run fragments its heap as an untraced one does."""
    gc.collect()
    if TRACE:
        free = gc.mem_free()
        TRACE[0]("@heap %s free=%d largest=%d" % (phase, free, largest_block()))


def reserve(keep, most=None):
    """Hold the heap's largest free block, less `keep` bytes (and at most
    `most` bytes), in one placeholder until release() (builder.build_vae
    calls it just before allocating a model).  Importing code through
    `mpremote mount` leaves its read buffers' garbage between long-lived
    objects, cutting the big free block into pieces; with the placeholder
    held, that code goes into the other free blocks and the last `keep`
    bytes, and the model's buffers (largest first) then land in the hole it
    leaves.  -> bytes held."""
    release()
    n = largest_block() - keep
    if most is not None and n > most:
        n = most
    if n <= 0:
        return 0
    _deep(_DEEP, keep, n)
    gc.collect()
    return n


# How many Python calls down the stack reserve() and release() allocate and
# drop the placeholder.  The GC is conservative: it scans the whole C stack in
# use, and a returned C function's frame still holds the placeholder's address
# until that slot is written again.  Allocated from train_vae.py's top level,
# such a copy lay inside the frames of the deeper build_vae when its release()
# collected, and kept the placeholder: the ConvVAE's check on qemu-m0 saw
# 34672 bytes free instead of 74336 and advised hidden=8 for hidden=16.  From
# this deep the copies are below every frame a collection of the build (or of
# the training loop, which reserves too) scans from.
_DEEP = 16


def _deep(depth, keep, n):
    """reserve()'s allocation (n > 0) or release()'s drop (n == 0), `depth`
    calls further down the stack."""
    if depth:
        _deep(depth - 1, keep, n)
    elif n:
        # The filler takes the block's first `keep` bytes (first fit) and the
        # placeholder the rest, to the block's end: what the code leaves free
        # of those first bytes then adjoins the hole the placeholder leaves.
        filler = bytearray(keep)
        _held.append(bytearray(n))
        del filler
    else:
        _held.pop()


def release():
    """Free reserve()'s placeholder (nothing if none is held)."""
    if _held:
        _deep(_DEEP, 0, 0)
        gc.collect()
