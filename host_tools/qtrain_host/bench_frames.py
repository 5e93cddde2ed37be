"""What a bytecode call costs on a board next to the built ConvVAE, by the
size of its frame (QEMU instruction counts, `-icount shift=0`; not cycles):
the interpreter's share of a training step (docs/KERNELS.md, "The
interpreter's share of the M0 step").

    python -m qtrain_host.bench_frames                     # qemu-m0
    python -m qtrain_host.bench_frames --boards "qemu-m0 qemu-m4"

MicroPython 1.26 keeps a bytecode function's frame on the C stack when its
n_state (arguments, locals and value stack) is at most 11 words, and
allocates it on the heap at every call otherwise; that allocation scans the
heap's allocation table for a hole large enough, so its cost depends on the
holes the model's buffers left.  Per frame size, one call of a method that
only stores its argument into locals, with the ConvVAE built (uint8, at the
real board's heap when `make firmware` built it) and trained two steps:
after a collection ('collected'), and after a collection followed by the
garbage bench.VAE_REMAP_SCRIPT makes before each of its steps ('records':
a list of six small tuples of floats, the previous one still alive: the
holes move from call to call).  Also: the step itself (train_step after a
collection, three of them).
"""
import argparse

from . import bench, paths
from .qemu import boards_arg

FRAMES = (11, 12, 14, 16, 19, 21, 24, 26)   # n_state of the methods measured


def _method(n_state):
    # def f(self, a, b): v0 = v1 = ... = a; return a  -> n_state = 3 + locals + 2
    names = " = ".join("v%d" % i for i in range(n_state - 5))
    return "    def n%d(self, a, b):\n        %s = a\n        return a\n" % (n_state, names)


SCRIPT = r"""
import gc, icount
from qtrain import models, layers as L
x = bytearray(784)
L.fill_uniform_u8(x, 9)
vae = models.build_vae("conv", models.Options(mode="uint8", lr=0.001, seed=5))
for _ in range(2):
    vae.train_step(x)
for i in range(3):
    gc.collect()
    icount.start()
    vae.train_step(x)
    print("@icount step%%d %%d" %% (i, icount.read()))
class T:
    def n0(self, a, b):
        return a
%(methods)s
t = T()
def calls(f, n):
    for _ in range(n):
        f(1, 2)
lays = vae.encoder.layers + vae.decoder.layers
for kind in ("collected", "records"):
    for n in (0,) + %(frames)r:
        f = getattr(t, "n%%d" %% n)
        gc.collect()
        if kind == "records":   # bench.VAE_REMAP_SCRIPT's garbage before its steps
            g = [(lay.wq[0], lay.wq[1]) for lay in lays]
        icount.start()
        calls(f, 10)
        print("@icount %%s%%d %%d" %% (kind, n, icount.read() // 10))
"""


def measure(board):
    """{'step': [three steps], 'collected': {n_state: per call}, 'records': {...}}."""
    src = SCRIPT % dict(methods="".join(_method(n) for n in FRAMES), frames=FRAMES)
    fw = paths.real_heap_firmware_dir(board) if bench.has_real_heap_firmware(board) else None
    with bench._firmware_dir(fw):
        res = bench._run_precompiled(board, src)
    ic = res.icount
    out = {"step": [ic["step%d" % i] for i in range(3)]}
    for kind in ("collected", "records"):
        out[kind] = {n: ic["%s%d" % (kind, n)] for n in (0,) + FRAMES}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=boards_arg, default="qemu-m0", help="emulated boards, separated by spaces or commas (default: %(default)s)")
    a = ap.parse_args(argv)
    for board in a.boards:
        r = measure(board)
        print("%s: train_step after a collection: %s" % (board, ", ".join("%.3f M" % (s / 1e6) for s in r["step"])))
        print("| frame (n_state words) | on | collected | records |")
        print("|---:|---|---:|---:|")
        for n in (0,) + FRAMES:
            size = 3 if n == 0 else n
            print("| %d | %s | %d | %d |" % (size, "C stack" if size <= 11 else "heap", r["collected"][n],
                                             r["records"][n]))


if __name__ == "__main__":
    main()
