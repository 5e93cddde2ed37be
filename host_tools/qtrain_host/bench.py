"""Speed and memory of qtrain on the emulated boards, as deterministic QEMU
instruction counts (`-icount shift=0`: one count per executed instruction;
not cycles, not time).

    python -m qtrain_host.bench                 # everything, prints the tables
    python -m qtrain_host.bench --md docs/BENCHMARKS.md   # ... and writes them there
    python -m qtrain_host.bench --quick         # one small layer on qemu-m4

What it measures (issue 3 "Speed", issue 5 item 4), on qemu-m0 (Cortex-M0,
armv6m) and qemu-m4 (Cortex-M4F, armv7emsp):
  a) per operator of the paper's ConvVAE (METHOD 6), uint8 / mixed / float32:
     forward, backward (error propagation incl. the fused ReLU mask) and
     update (weight gradient + update), per MAC, each layer built alone;
  b) one whole training step of the paper's ConvVAE per sample and per MAC,
     forward / loss / backward separately, in each mode whose model fits the
     160 KB heap budget, else the real board's heap (the firmware `make
     firmware` builds with it); otherwise the sum of the layer figures
     (labelled so).  The script runs precompiled from the ROMFS, so its
     bytecode takes no heap next to the model.  uint8: a second run of the
     same steps counts the weight re-maps they made and times the step
     without any and one re-map per layer.  All of that is the synthetic
     state: a fresh model and one blob sample.  The trained state
     (bench_trained): the uint8 model trained on the Unix port on 1500
     MNIST images of data/mnist-subset (cached under build/), then one step
     on each of 8 test images on each board: their mean, the re-maps they
     made, the step without any (the targets take it), and the zero
     fractions of each layer's input and masked error in both states
     (kernels that skip zeros cost what the data's zeros let them);
  c) DSGU: forward and backward cost at lmin = 1.0, 0.5, 0.1 (lmax = lmin:
     a fixed fraction of the filters/rows) relative to full updates, next to
     the VAE paper's latency ratios (METHOD 7); 1.0 and 0.1 in the trained
     state too (the targets take it);
  d) _qtrain.mpy size per architecture;
  e) heap: gc.mem_alloc() of the model after building and a few steps.
Everything runs through the qtrain package (python/qtrain), so the figures
include its Python dispatch, not only the kernels.  Milliseconds are only
estimates: instructions / clock of the board each QEMU board stands in for
(boards/*/board.json clock_mhz), at an assumed 1 cycle per instruction.
"""
import argparse
import contextlib
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from . import bench_trained, paths
from .qemu import boards_arg
from .runner import run_script

BOARDS = ("qemu-m0", "qemu-m4")
MODES = ("uint8", "mixed", "float32")

# (name, kind, args) of the paper's ConvVAE, in execution order.
# conv args: in_shape, out_ch, k, stride, pad, out_pad, relu, transposed, first
# dense args: n_in, n_out, relu, first
VAE_LAYERS = [
    ("Conv 1->16 s2", "conv", ((1, 28, 28), 16, 3, 2, 1, 0, True, False, True)),
    ("Conv 16->32 s2", "conv", ((16, 14, 14), 32, 3, 2, 1, 0, True, False, False)),
    ("Dense 1568->20", "dense", (1568, 20, False, False)),
    ("Dense 10->1568", "dense", (10, 1568, True, False)),
    ("ConvT 32->16 s2", "conv", ((32, 7, 7), 16, 3, 2, 1, 1, True, True, False)),
    ("ConvT 16->1 s2", "conv", ((16, 14, 14), 1, 3, 2, 1, 1, False, True, False)),
]
# The rest of a step: reparameterization + KL (L = 10), sigmoid + BCE (784).
HEADS = [("Latent L=10", "latent", (10, 0, 0, False)), ("Sigmoid+BCE 784", "bce", (784, 0, 0, False))]
QUICK_LAYERS = [("Dense 64->16", "dense", (64, 16, True, False))]
DSGU_LMINS = (1.0, 0.5, 0.1)
# VAE paper, one uint8 training sample on an STM32L4R5 (METHOD 7), ms:
# (fraction of updates, step, forward); backward = step - forward.
PAPER_UINT8 = ((1.0, 228.5, 44.9), (0.6, 196.7, 45.0), (0.1, 111.5, 45.0))
CPI = 1.0   # assumed cycles per instruction for the ms estimates (optimistic)


def board_clock(board):
    """(name, Hz) of the real board a QEMU board stands in for, from boards/*/board.json."""
    try:
        real, cfg = paths.real_board(board)
        return real, cfg["clock_mhz"] * 1e6
    except (OSError, KeyError, TypeError, ValueError):
        return None, None


def est_ms(board, instructions):
    """Estimated ms of `instructions` on the board `board` stands in for (CPI assumed)."""
    _, hz = board_clock(board)
    return None if not hz or instructions is None else instructions * CPI / hz * 1e3


def layer_macs(kind, args):
    if kind in ("latent", "bce"):
        return 0
    if kind == "dense":
        return args[0] * args[1]
    (c, h, w), oc, k, s, p, op, _relu, transposed, _first = args
    if transposed:
        return c * h * w * oc * k * k            # every input pixel meets every tap
    oh = (h + 2 * p - k) // s + 1
    ow = (w + 2 * p - k) // s + 1
    return oc * oh * ow * c * k * k


def vae_macs():
    fwd = sum(layer_macs(k, a) for _, k, a in VAE_LAYERS)
    first = layer_macs(VAE_LAYERS[0][1], VAE_LAYERS[0][2])
    return {"forward": fwd, "step": fwd + (fwd - first) + fwd}   # fwd + error prop + gradients


# ---- scripts run on the board ------------------------------------------------

LAYER_SCRIPT = r"""
import gc, icount, array
import _qtrain as _q
from qtrain import layers as L, losses
M = %(mode)r
SPECS = %(specs)r
REPS = %(reps)d
DSGU = %(dsgu)r
opt = L.Options(mode=M, lr=0.001, seed=5, dsgu=DSGU)
F32 = M == "float32"

def rnd(n, seed):
    b = bytearray(n)
    L.fill_uniform_u8(b, seed)
    return b

def count(name, f, a, b, wq=None):
    best = None
    rs = 0
    for _ in range(REPS):
        gc.collect()
        s0 = wq[0] if wq else 0.0
        icount.start()
        f(a, b)
        n = icount.read()
        rs += 1 if wq and wq[0] != s0 else 0   # the call re-scaled (re-mapped) the weights
        best = n if best is None or n < best else best
    print("@icount %%s %%d" %% (name, best))
    if wq:
        print("@bench %%s|rescales %%d" %% (name, rs))

for li, (name, kind, a) in enumerate(SPECS):
    name = "L%%d" %% li
    gc.collect()
    if kind == "bce":
        out = losses.BernoulliOutput(a[0], opt)
        t = rnd(a[0], 13)
        lg, lq = rnd(a[0], 14), L.qparams(-8.0, 8.0)
        if F32:
            lgf = L.zeros("f", a[0])
            L.dequantize(lg, lq, lgf)
            lg, lq = lgf, None
        count(name + "|fwd", lambda lg, lq: out.loss(lg, lq, t), lg, lq)
        out = t = lg = None
        continue
    if kind == "latent":
        lat = losses.GaussianLatent(a[0], opt)
        h, hq = rnd(2 * a[0], 15), L.qparams(-2.0, 2.0)
        e8, eq = rnd(a[0], 16), L.qparams(-0.5, 0.5)
        e = e8
        if F32:
            hf = L.zeros("f", 2 * a[0])
            h, hq = L.dequantize(h, hq, hf), None
        if M != "uint8":
            e, eq = L.dequantize(e8, eq, L.zeros("f", a[0])), None
        count(name + "|fwd", lat.forward, h, hq)
        count(name + "|bwd_upd_raw", lat.backward, e, eq)
        print("@icount %%s|copy 0" %% name)
        print("@icount %%s|bwd_raw 0" %% name)
        lat = h = e = None
        continue
    if kind == "dense":
        n_in, n_out, relu, first = a
        lay = L.Dense(n_in, n_out, relu=relu, opt=opt, first=first)
        n_o = n_out
    else:
        shp, oc, k, s, p, op, relu, tr, first = a
        lay = L.Conv2d(shp, oc, k, s, p, op, relu=relu, transposed=tr, opt=opt, first=first)
        L.Shared.for_layers([lay])
        n_in = shp[0] * shp[1] * shp[2]
        n_o = lay.n_out
    gc.collect()
    x, xq = rnd(n_in, 11), L.qparams(0.0, 1.0)
    if F32:
        x, xq = L.dequantize(x, xq, L.zeros("f", n_in)), None
    e8, eq = rnd(n_o, 12), L.qparams(-0.05, 0.05)
    e = e8[:] if M == "uint8" else L.zeros("f", n_o)
    def restore(e, eq):   # ReLU backward masks e in place: restore it before each call
        if M == "uint8":
            e[:] = e8
        else:
            L.dequantize(e8, eq, e)
    restore(e, eq)
    if M != "uint8":
        eq0, eq = eq, None
    else:
        eq0 = eq
    lay.forward(x, xq)
    def fwd(x, xq):
        lay.forward(x, xq)
    def bwd(e, eq):
        restore(e, eq0)
        lay.backward(e, eq)
    def cp(e, eq):
        restore(e, eq0)
    count(name + "|fwd", fwd, x, xq)
    lay.trainable = False
    count(name + "|bwd_raw", bwd, e, eq)
    lay.trainable = True
    count(name + "|bwd_upd_raw", bwd, e, eq, lay.wq)
    count(name + "|copy", cp, e, eq)
    if DSGU:
        print("@bench k%%d %%d" %% (li, lay.k))
    lay = x = e = e8 = None
"""

# The synthetic state's sample, x (MicroPython, needs `layers as L`): a blob
# of uniform bytes on a dark background, like a digit.  One text for every
# script that uses it (VAE_SCRIPT, VAE_REMAP_SCRIPT, bench_trained's zero
# fractions), so they all see the same sample.
BLOB_SAMPLE = r"""x = bytearray(784)
L.fill_uniform_u8(x, 9)
for i in range(784):
    r, c = divmod(i, 28)
    x[i] = x[i] if 6 <= r < 22 and 8 <= c < 20 else 0
"""

VAE_SCRIPT = r"""
import gc, icount
from qtrain import models, layers as L
M = %(mode)r
DSGU = %(dsgu)r
STEPS = %(steps)d
# the input first, before the build (a model that just fits must leave room
# for it; the builder module is dropped after the build)
""" + BLOB_SAMPLE + r"""gc.collect()
base = gc.mem_alloc()
print("@bench heap_base %%d" %% base)
print("@bench heap_free %%d" %% gc.mem_free())
try:
    vae = models.build_vae("conv", models.Options(mode=M, lr=0.001, dsgu=DSGU, seed=5))
except MemoryError as ex:
    gc.collect()
    print("@bench fits 0")
    print("@bench why %%s" %% str(ex).replace(" ", "_"))
    raise SystemExit
gc.collect()
print("@bench fits 1")
print("@bench heap_built %%d" %% (gc.mem_alloc() - base))
try:                      # built, but a step's temporaries may still not fit
    for _ in range(2):
        vae.train_step(x)
except MemoryError as ex:
    vae = None
    gc.collect()
    print("@bench fits 0")
    print("@bench why %%s" %% ("training step: " + str(ex)).replace(" ", "_"))
    raise SystemExit
gc.collect()
print("@bench heap_steps %%d" %% (gc.mem_alloc() - base))
tf = tl = tb = ts = 0
ks = {}
for _ in range(STEPS):
    gc.collect()
    icount.start()
    lg, lq = vae.forward(x)
    tf += icount.read()
    icount.start()
    e, eq, rec = vae.output.loss(lg, lq, x)
    tl += icount.read()
    icount.start()
    ez, ezq = vae.decoder.backward(e, eq)
    eh, ehq = vae.latent.backward(ez, ezq)
    vae.encoder.backward(eh, ehq)
    vae.step_done()
    tb += icount.read()
    gc.collect()
    icount.start()
    vae.train_step(x)
    ts += icount.read()
    for i, lay in enumerate(vae.encoder.layers + vae.decoder.layers):
        ks[i] = ks.get(i, 0) + lay.k
print("@icount forward %%d" %% (tf // STEPS))
print("@icount loss %%d" %% (tl // STEPS))
print("@icount backward %%d" %% (tb // STEPS))
print("@icount step %%d" %% (ts // STEPS))
print("@bench k %%s" %% ",".join("%%.1f" %% (ks[i] / STEPS) for i in sorted(ks)))
gc.collect()
print("@bench heap_end %%d" %% (gc.mem_alloc() - base))
"""

# The same model and sample as VAE_SCRIPT, run again for what that run cannot
# hold next to a model that just fits (the identifiers of more code take heap
# before the build): the weight re-maps in its measured steps (the same steps:
# QEMU and the seeds are deterministic) and those steps' mean, the step
# without any re-map, and what one re-map of each layer's weights costs.  The
# two steps are compared within this run: the same steps cost up to ~0.2 M
# more or less in another script (the heap layout moves the interpreter's
# costs; the model's values are the same).
VAE_REMAP_SCRIPT = r"""
import gc, icount
import _qtrain as _q
from qtrain import models, layers as L
STEPS = %(steps)d
""" + BLOB_SAMPLE + r"""vae = models.build_vae("conv", models.Options(mode="uint8", lr=0.001, seed=5))
lays = vae.encoder.layers + vae.decoder.layers
def records():
    return [(lay.wq[0], lay.wq[1]) for lay in lays]
def remapped(before):   # layers whose weight scale or zero point changed: stored weights re-mapped
    return sum(1 for a, b in zip(before, records()) if a != b)
for _ in range(2):
    vae.train_step(x)
nr = t = 0
for i in range(2 * STEPS):   # VAE_SCRIPT's measured steps: its train_step()s are the odd ones
    gc.collect()
    sc = records()
    icount.start()
    vae.train_step(x)
    c = icount.read()
    if i & 1:
        nr += remapped(sc)
        t += c
print("@bench remaps %%d" %% nr)
print("@icount step %%d" %% (t // STEPS))
# The same step on the same sample when no layer re-maps its weights
# (training re-scales a layer a few times per 1000 samples once its range
# has settled): the mean of the first STEPS such steps among the next 40.
n = t = 0
for _ in range(40):
    gc.collect()
    sc = records()
    icount.start()
    vae.train_step(x)
    c = icount.read()
    if not remapped(sc):
        n += 1
        t += c
        if n == STEPS:
            break
if n:
    print("@icount step_clean %%d" %% (t // n))
# One re-map of a layer's stored weights: an identity re-map runs the same
# per-weight table lookup over all of them as a re-scale's.
for i, lay in enumerate(lays):
    gc.collect()
    icount.start()
    _q.remap_u8(lay.w, lay.wq, lay.wq)
    print("@icount remap%%d %%d" %% (i, icount.read()))
"""


def _bench_lines(out):
    res = {}
    for line in out.splitlines():
        if line.startswith("@bench "):
            f = line.split(None, 2)
            if len(f) == 3:
                res[f[1]] = f[2]
    return res


def _run(board, script, timeout=1800):
    res = run_script(board, script, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError("bench script failed on %s:\n%s" % (board, res.output[-3000:]))
    return res


def _one_layer(board, mode, name, kind, a, reps, dsgu):
    res = run_script(board, LAYER_SCRIPT % dict(mode=mode, specs=[[name, kind, a]], reps=reps, dsgu=dsgu),
                     timeout=1800)
    if res.returncode != 0 and "MemoryError" in res.output:
        return None           # this layer and its tensors do not fit the board's heap
    if res.returncode != 0:
        raise RuntimeError("bench script failed on %s:\n%s" % (board, res.output[-3000:]))
    ic = res.icount
    b = _bench_lines(res.output)
    cp = ic.get("L0|copy", 0)
    bwd = ic.get("L0|bwd_raw", 0) - cp
    out = {"fwd": ic["L0|fwd"], "bwd": bwd, "upd": ic.get("L0|bwd_upd_raw", 0) - cp - bwd,
           "macs": layer_macs(kind, a), "first": a[-1], "kind": kind}
    if "k0" in b:
        out["k"] = int(b["k0"])
    if "L0|bwd_upd_raw|rescales" in b:    # every measured update call re-scaled the weights
        out["rescaled"] = int(b["L0|bwd_upd_raw|rescales"]) == reps
    return out


def _narrower(kind, a, f):
    """The layer with 1/f of its output rows/channels (same input)."""
    a = list(a)
    if kind == "dense":
        a[1] = max(1, a[1] // f)
    else:
        a[1] = max(1, a[1] // f)
    return tuple(a)


def _one_layer_narrowed(board, mode, name, kind, a, f, reps, dsgu):
    """_one_layer (f = 1), or with 1/f of its outputs and the counts scaled
    up by the MAC ratio (see bench_layers); None if it does not fit."""
    if f == 1:
        return _one_layer(board, mode, name, kind, a, reps, dsgu)
    small = _narrower(kind, a, f)
    v = _one_layer(board, mode, name, kind, small, reps, dsgu)
    if v is not None:
        r = layer_macs(kind, a) / float(layer_macs(kind, small))
        for key in ("fwd", "bwd", "upd"):
            v[key] = int(v[key] * r)
        v["macs"] = layer_macs(kind, a)
        v["scaled"] = "1/%d of the outputs, x%.1f" % (f, r)
    return v


def bench_layers(board, mode, specs, reps=2, dsgu=None):
    """{layer name: {fwd, bwd, upd, macs}} instruction counts of one layer call
    each (the least of `reps` runs; they agree except for DSGU state).  Each
    layer runs in a fresh interpreter, so one layer's heap use cannot starve
    the next one's.  A layer that does not fit the planning heap is measured
    whole on the firmware with the real board's heap ("heap"); if it does
    not fit there either, with 1/4 (1/8, 1/16) of its output rows/channels,
    first at the planning heap, then at the real board's, and its counts
    scaled by the MAC ratio ("scaled": an estimate; per-MAC costs are near
    flat in the number of rows at 1/4, less so at 1/16, where per-call and
    per-pixel work weigh more, so a whole layer is preferred at either
    heap); None if nothing fits."""
    out = {}
    heaps = [None] + ([paths.real_heap_firmware_dir(board)] if has_real_heap_firmware(board) else [])
    for name, kind, a in specs:
        v = None
        for f in ((1, 4, 8, 16) if kind in ("dense", "conv") else (1,)):
            for fw in heaps:
                with _firmware_dir(fw):
                    v = _one_layer_narrowed(board, mode, name, kind, a, f, reps, dsgu)
                if v is not None:
                    if fw:
                        v["heap"] = paths.real_heap_bytes(board)
                    break
            if v is not None:
                break
        out[name] = v
    return out


@contextlib.contextmanager
def _firmware_dir(path):
    """Run the emulated boards from the firmware in `path` (None: the default
    160 KB-heap build) inside the block (paths.firmware_path reads it)."""
    was = os.environ.get("QTRAIN_FIRMWARE_DIR")
    if path:
        os.environ["QTRAIN_FIRMWARE_DIR"] = path
    try:
        yield
    finally:
        if was is None:
            os.environ.pop("QTRAIN_FIRMWARE_DIR", None)
        else:
            os.environ["QTRAIN_FIRMWARE_DIR"] = was


def _run_precompiled(board, script, timeout=1800, files=None):
    """_run(board, script) with the script precompiled to a .mpy in the
    board's ROMFS: its bytecode then runs from ROM like the package's,
    instead of ~1.2 KB of it sitting in the heap (as a script sent to the
    raw REPL does) while the model is built.  Source as is if mpy-cross is
    missing.  files: more files for the ROMFS (qemu.run's)."""
    from . import qemu
    tmp = tempfile.mkdtemp(prefix="qtrain-bench-")
    try:
        src = os.path.join(tmp, "qtrain_bench_vae.py")
        with open(src, "w") as f:
            f.write(script)
        mpy = qemu._compile1(src, qemu.board_config(board)["arch"], tmp, "qtrain_bench_vae.py")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if mpy is None:
        res = run_script(board, script, files=files, timeout=timeout)
    else:
        res = run_script(board, "import qtrain_bench_vae", files=dict(files or {}, **{"qtrain_bench_vae.mpy": mpy}),
                         timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError("bench script failed on %s:\n%s" % (board, res.output[-3000:]))
    return res


def bench_vae(board, mode, dsgu=None, steps=2, real_heap=False):
    """The whole model's step on `board` (VAE_SCRIPT): {fits, heap_*, why,
    forward, loss, backward, step, k}; real_heap: on the firmware with the
    heap of the real board it stands in for (paths.real_heap_bytes, built by
    `make firmware`), 'heap' then says which."""
    fw = paths.real_heap_firmware_dir(board) if real_heap else None
    with _firmware_dir(fw):
        res = _run_precompiled(board, VAE_SCRIPT % dict(mode=mode, dsgu=dsgu, steps=steps))
    b = _bench_lines(res.output)
    out = {k: int(v) for k, v in b.items() if k.startswith("heap") or k == "fits"}
    if real_heap:
        out["heap"] = paths.real_heap_bytes(board)
    if b.get("why"):
        out["why"] = b["why"].replace("_", " ")
    if b.get("k"):
        out["k"] = b["k"]
    out.update(res.icount)
    return out


def bench_remaps(board, steps=2):
    """VAE_REMAP_SCRIPT, uint8 without DSGU: {remaps (layer re-maps in
    bench_vae's measured steps), step (their mean in this run), step_clean
    (a step in which no layer re-mapped its weights), remap<i> (one re-map
    of layer i's weights)}; on
    the real board's heap when `make firmware` built it (the counts do not
    depend on the heap's size), {} if the model does not fit."""
    fw = paths.real_heap_firmware_dir(board) if has_real_heap_firmware(board) else None
    with _firmware_dir(fw):
        res = run_script(board, VAE_REMAP_SCRIPT % dict(steps=steps), timeout=1800)
    if res.returncode != 0 and "MemoryError" in res.output:
        return {}
    if res.returncode != 0:
        raise RuntimeError("bench script failed on %s:\n%s" % (board, res.output[-3000:]))
    out = {k: int(v) for k, v in _bench_lines(res.output).items() if k == "remaps"}
    out["heap"] = paths.real_heap_bytes(board) if fw else None
    out.update(res.icount)
    return out


NATMODS = ("_qtrain", "_qtrain_float")


def mpy_sizes():
    """{arch: {module: bytes}} of the built natmods (_qtrain: what a uint8
    model loads; _qtrain_float: the float32/mixed kernels)."""
    out = {}
    for arch in ("x64", "armv6m", "armv7m", "armv7emsp"):
        for mod in NATMODS:
            p = paths.natmod_path(arch, mod)
            if os.path.exists(p):
                out.setdefault(arch, {})[mod] = os.path.getsize(p)
    return out


# ---- the report --------------------------------------------------------------

def _f(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v))


def _kc(n):
    return "-" if n is None else ("%.2f M" % (n / 1e6) if n >= 1e6 else "%.1f k" % (n / 1e3))


def has_real_heap_firmware(board):
    """Whether `make firmware` built `board` with its real board's heap."""
    try:
        d = paths.real_heap_firmware_dir(board)
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return os.path.exists(os.path.join(d, board, "firmware.elf"))


def collect(boards=BOARDS, modes=MODES, log=print):
    """R["vae"]: the whole model at the 160 KB heap budget; R["vae_real"]:
    the same at the real board's heap when it does not fit the budget (the
    instruction counts of a step do not depend on the heap's size; table e
    keeps the budget's verdict)."""
    R = {"layers": {}, "vae": {}, "vae_real": {}, "remaps": {}, "dsgu": {}, "dsgu_vae": {}, "mpy": mpy_sizes()}
    for b in boards:
        for m in modes:
            log("bench: %s %s layers" % (b, m))
            R["layers"][(b, m)] = bench_layers(b, m, VAE_LAYERS + HEADS)
            log("bench: %s %s whole VAE (heap)" % (b, m))
            R["vae"][(b, m)], real = bench_vae_fitting(b, m)
            if real:
                R["vae_real"][(b, m)] = real
        if "uint8" in modes:
            fits = whole_vae(R, b, "uint8")
            if fits:
                log("bench: %s uint8 whole VAE, weight re-maps" % b)
                R["remaps"][b] = bench_remaps(b)
            for lmin in DSGU_LMINS:
                log("bench: %s uint8 DSGU lmin=%s" % (b, lmin))
                R["dsgu"][(b, lmin)] = bench_layers(b, "uint8", VAE_LAYERS, reps=1, dsgu=(lmin, lmin))
                if fits:
                    v, real = bench_vae_fitting(b, "uint8", dsgu=(lmin, lmin))
                    R["dsgu_vae"][(b, lmin)] = real or v
    if "uint8" in modes:   # the uint8 step in a trained state (bench_trained)
        R.update(bench_trained.collect([b for b in boards if whole_vae(R, b, "uint8")], log=log))
    return R


def bench_vae_fitting(board, mode, dsgu=None):
    """(the whole model at the heap budget, the same at the real board's heap
    or None): the second run only when the first did not fit and `make
    firmware` built the real heap's firmware."""
    v = bench_vae(board, mode, dsgu=dsgu)
    if v.get("fits") or not has_real_heap_firmware(board):
        return v, None
    return v, bench_vae(board, mode, dsgu=dsgu, real_heap=True)


def whole_vae(R, board, mode):
    """The whole-model run of (board, mode) that fit: at the heap budget,
    else at the real board's heap; None if neither did."""
    for key in ("vae", "vae_real"):
        v = R.get(key, {}).get((board, mode))
        if v and v.get("fits") and "step" in v:
            return v
    return None


def _measured(v):
    return "measured" + (" (at the real board's heap, %d B)" % v["heap"] if v.get("heap") else "")


def _sum_parts(lay):
    """(forward, loss, backward+update) of a step from its parts, or None if a part did not fit."""
    if lay is None or any(v is None for v in lay.values()):
        return None
    f = sum(v["fwd"] for n, v in lay.items() if v["kind"] != "bce")
    lo = sum(v["fwd"] for v in lay.values() if v["kind"] == "bce")
    bw = sum(v["bwd"] + v["upd"] for v in lay.values())
    return f, lo, bw


def step_figures(R, board, mode):
    """(forward, loss, backward, step, source): the whole step measured if
    the model fits the heap, else the sum of its parts (each layer, the
    latent and the loss measured alone)."""
    v = whole_vae(R, board, mode)
    if v:
        return v["forward"], v["loss"], v["backward"], v["step"], _measured(v)
    parts = _sum_parts(R["layers"].get((board, mode)))
    if parts is None:
        return None, None, None, None, "a layer does not fit the heap"
    f, lo, bw = parts
    lay = R["layers"][(board, mode)].values()
    notes = [t for t, on in (("some scaled", any(v.get("scaled") for v in lay)),
                             ("some at the real board's heap", any(v.get("heap") for v in lay))) if on]
    return f, lo, bw, f + lo + bw, "sum of parts" + (" (%s)" % ", ".join(notes) if notes else "")


def dsgu_figures(R, board, lmin):
    """(forward, backward + update, source) of the six layers at lmax = lmin:
    the whole model measured (forward, backward incl. latent) when it fits
    the heap, else the sum of the layers measured alone."""
    v = R.get("dsgu_vae", {}).get((board, lmin))
    if v and v.get("fits") and "backward" in v:
        return v["forward"], v["backward"], _measured(v).replace("measured", "measured (whole model)")
    lay = R["dsgu"].get((board, lmin))
    if not lay or any(v is None for v in lay.values()):
        return None, None, "a layer does not fit the heap"
    scaled = any(v.get("scaled") for v in lay.values())
    return (sum(v["fwd"] for v in lay.values()), sum(v["bwd"] + v["upd"] for v in lay.values()),
            "sum of layers" + (" (some scaled)" if scaled else ""))


def dsgu_backward(R, board, lmin):
    return dsgu_figures(R, board, lmin)[1]


def _step_row(b, label, f, lo, bw, st, src):
    """A row of table b: board b's step in `label` (mode, state)."""
    macs = vae_macs()
    real, hz = board_clock(b)
    ms = est_ms(b, st)
    return "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        b, label, _kc(f), _kc(lo), _kc(bw), _kc(st), _f(st / macs["step"]), _f(f / macs["forward"]),
        "~%.0f (%s, %g MHz)" % (ms, real, hz / 1e6) if ms else "-", src)


def trained_note(R):
    """The paragraph under table b saying what its two uint8 states are."""
    info = R.get("trained_info", {})
    opts = info.get("opts", {})
    elbo = info.get("elbo_last100")
    return ("uint8 (synthetic): a freshly built model (seed 5) and one synthetic blob sample, the same "
            "at every step (the mixed and float32 rows are synthetic too).  uint8 (trained): the state a "
            "training run is in: the model trained on the Unix port on the first %d images of "
            "data/mnist-subset, one step each (the training defaults, lr %s, seed %s%s), saved and "
            "loaded with the package's checkpoint code (qtrain.vae_resume), then one training step on "
            "each of the first %d images of the subset's test split (not trained on): their mean.  "
            "Kernels that skip exact zeros cost what the data's zeros let them (zero fractions below); "
            "the targets take the trained state."
            % (info.get("n", bench_trained.N_TRAIN), opts.get("lr", "?"), opts.get("seed", "?"),
               "; -ELBO of its last 100 steps %.1f" % elbo if elbo is not None else "",
               bench_trained.N_TEST))


def zeros_table(R):
    """Lines of the zero-fraction table (R["zeros"], bench_trained.zero_fractions)."""
    Z = R["zeros"]
    crc = Z.get("trained", {}).get("crc")
    same = [b for b, v in sorted(R.get("trained", {}).items()) if v.get("crc") == crc]
    other = [b for b, v in sorted(R.get("trained", {}).items()) if v.get("crc") != crc]
    check = ""
    if same:
        check = ("; the weights after the trained steps have the same CRC-32 there as on %s"
                 % " and ".join(same))
    if other:
        check += ("; **on %s they do not** (the kernels are not bit-exact there: these fractions may "
                  "not be that board's)" % " and ".join(other))
    L = ["Zero fractions of the uint8 step: the share of values equal to their tensor's zero point "
         "(what a kernel that skips zeros skips), per layer, mean over the steps: synthetic, table "
         "b's two measured steps on the blob; trained, the steps on the %d test images.  Input: what "
         "the layer's forward reads (the first: the image; Dense 10->1568: the latent sample z); "
         "error: what its backward sees at its output after its ReLU mask (Dense 1568->20 and "
         "ConvT 16->1 have none).  Counted on the Unix port from the same steps (the kernels are "
         "bit-exact on every target%s)." % (bench_trained.N_TEST, check), ""]
    L.append("| state | tensor | %s |" % " | ".join(n for n, _, _ in VAE_LAYERS))
    L.append("|---|---|%s" % ("---:|" * len(VAE_LAYERS)))
    for state in ("synthetic", "trained"):
        for key, name in (("x", "input"), ("e", "error after the ReLU mask")):
            v = Z.get(state, {}).get(key)
            if v:
                L.append("| %s | %s | %s |" % (state, name, " | ".join("%.2f" % f for f in v)))
    L.append("")
    return L


def trained_dsgu_figures(R, board, lmin):
    """(forward, backward + update, source) of the trained state at lmax = lmin, or Nones."""
    v = R.get("trained_dsgu", {}).get((board, lmin))
    if not v or "backward" not in v:
        return None, None, None
    return v["forward"], v["backward"], (_measured(v).replace("measured", "measured (whole model, trained, "
                                                               "mean of %d test images)" % v["n"]))


def report(R, command):
    macs = vae_macs()
    L = []
    L.append("All figures are QEMU instruction counts (`-icount shift=0`), not cycles or time.")
    L.append("")
    L.append("Command: `%s`  " % command)
    L.append("Commit: %s; host: %s; %s." % (_git_rev(), platform.platform(),
                                            datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")))
    L.append("")
    L.append("MACs of the paper's ConvVAE: forward %d, training step %d "
             "(forward + error propagation of all but the first layer + weight gradients)."
             % (macs["forward"], macs["step"]))
    L.append("")
    # (a)
    L.append("### a) Operators, instructions per MAC (each layer alone, batch 1, DSGU off)")
    L.append("")
    L.append("backward = error propagation incl. the fused ReLU mask; update = weight gradient + "
             "update (and, for mixed conv, the 8-bit error copy).  R: every measured update re-scaled "
             "the layer's weights (the same error and input at every call push the same weights out "
             "of their range each time), so the figure includes a re-map of all of them (table b "
             "gives its cost).")
    L.append("")
    for (b, m), lay in sorted(R["layers"].items()):
        L.append("%s, %s:" % (b, m))
        L.append("")
        L.append("| layer | MACs | forward | backward | update |")
        L.append("|---|---:|---:|---:|---:|")
        for name, _, _ in VAE_LAYERS:
            v = lay[name]
            n = layer_macs(*[(k, a) for nm, k, a in VAE_LAYERS if nm == name][0])
            if v is None:
                L.append("| %s | %d | does not fit | | |" % (name, n))
                continue
            bw = "-" if v["first"] else _f(v["bwd"] / n)
            nm = name + (" (scaled: %s)" % v["scaled"] if v.get("scaled") else "")
            nm += " (at the real board's heap, %d B)" % v["heap"] if v.get("heap") else ""
            upd = _f(v["upd"] / n) + (" R" if v.get("rescaled") else "")
            L.append("| %s | %d | %s | %s | %s |" % (nm, n, _f(v["fwd"] / n), bw, upd))
        for name, _, _ in HEADS:
            v = lay.get(name)
            if v:
                L.append("| %s (instructions per call) | - | %s | %s | |" % (
                    name, _kc(v["fwd"]), _kc(v["bwd"] + v["upd"]) if v["kind"] == "latent" else "-"))
        L.append("")
    # (b)
    L.append("### b) One training step of the paper's ConvVAE (per sample)")
    L.append("")
    L.append("| board | mode | forward | loss (BCE) | backward + update | step | step / step-MAC | forward / fwd-MAC "
             "| est. ms per step (board, CPI %g) | source |" % CPI)
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    trained = R.get("trained", {})
    for b in sorted({k[0] for k in R["layers"]} | {k[0] for k in R["vae"]} | set(trained)):
        for m in MODES:
            f, lo, bw, st, src = step_figures(R, b, m)
            if st is not None:
                L.append(_step_row(b, "uint8 (synthetic)" if m == "uint8" and trained else m, f, lo, bw, st, src))
            t = trained.get(b) if m == "uint8" else None
            if t:
                L.append(_step_row(b, "uint8 (trained)", t["forward"], t["loss"], t["backward"], t["step"],
                                   _measured(t) + ", mean of %d MNIST test images" % t["n"]))
    L.append("")
    if trained:
        L.append(trained_note(R))
        L.append("")
    L.append("est. ms = instructions x CPI / clock of the real board the QEMU board stands in for "
             "(boards/*/board.json); an estimate, not a measurement: CPI 1 ignores flash wait "
             "states and 2-cycle loads/branches.  The VAE paper's uint8 step: 228.5 ms on a "
             "120 MHz Cortex-M4F (METHOD 7).")
    L.append("")
    remaps = [(b, v) for b, v in sorted(R.get("remaps", {}).items()) if v.get("step")]
    if remaps or trained:
        L.append("Weight re-maps in the uint8 step (a re-scale or a zero-point shift of a layer's "
                 "weight range re-maps all its stored weights through a table).  Synthetic: the step above "
                 "feeds the same sample at every step, which pushes the same weights out of their "
                 "range again and again; training re-scales a layer a few times per 1000 samples "
                 "once its range has settled.  A second run of the same steps: their mean with the "
                 "re-maps they made, and the mean of the next two steps on that sample in which no "
                 "layer re-mapped its weights (the step as training mostly runs it).  Trained: the "
                 "steps of the trained row above (one per test image), with the re-maps they made, and "
                 "the mean of those that made none.  Per layer: "
                 "one re-map of its weights (an identity `remap_u8`: the same lookup per weight).")
        L.append("")
        L.append("| board | state | step | layer re-maps per step | step without re-map | its / step-MAC | %s |"
                 % " | ".join("re-map %s" % n for n, _, _ in VAE_LAYERS))
        L.append("|---|---|---:|---:|---:|---:|%s" % ("---:|" * len(VAE_LAYERS)))
        rows = [(b, 0, "synthetic", v, 2) for b, v in remaps]
        rows += [(b, 1, "trained (%d test images, %d without a re-map)" % (v["n"], v.get("clean", 0)), v, v["n"])
                 for b, v in trained.items()]
        for b, _, state, v, n in sorted(rows, key=lambda r: r[:2]):
            cl = v.get("step_clean")
            L.append("| %s%s | %s | %s | %.1f | %s | %s | %s |" % (
                b, " (at the real board's heap, %d B)" % v["heap"] if v.get("heap") else "", state,
                _kc(v["step"]), v.get("remaps", 0) / float(n), _kc(cl), _f(cl / macs["step"]) if cl else "-",
                " | ".join(_kc(v.get("remap%d" % i)) for i in range(len(VAE_LAYERS)))))
        L.append("")
    if R.get("zeros"):
        L.extend(zeros_table(R))
    # (c)
    if R["dsgu"] or R.get("trained_dsgu"):
        L.append("### c) DSGU, uint8: forward and backward + update of the six layers "
                 "(lmax = lmin: that fraction of rows/filters)")
        L.append("")
        L.append("backward = error propagation + weight gradients + updates.  Paper: the VAE paper's "
                 "uint8 sample on a 120 MHz Cortex-M4F (METHOD 7) at 100 %%, 60 %% and 10 %% of the "
                 "updates, backward = step - forward.%s" % (
                     "  Synthetic: table b's model and blob sample (per layer: random data, each layer "
                     "alone, when the model does not fit); trained: table b's trained state, the same "
                     "checkpoint and test images at each lmin (it was trained without DSGU: its DSGU "
                     "state starts empty, and with lmax = lmin the number of rows/filters is fixed)."
                     if R.get("trained_dsgu") else ""))
        L.append("")
        L.append("| board | lmin | forward | backward + update | backward vs lmin = 1.0 "
                 "| forward + backward vs lmin = 1.0 | est. ms fwd / bwd (CPI %g) | k per layer (c1,c2,d1,d2,t1,t2) "
                 "| source |" % CPI)
        L.append("|---|---:|---:|---:|---:|---:|---:|---|---|")
        keys = [(b, 0, lmin) for b, lmin in R["dsgu"]] + [(b, 1, lmin) for b, lmin in R.get("trained_dsgu", {})]
        for (b, tr, lmin) in sorted(keys, key=lambda k: (k[0], k[1], -k[2])):
            figures = trained_dsgu_figures if tr else dsgu_figures
            f, bw, src = figures(R, b, lmin)
            f0, b0, _ = figures(R, b, 1.0)
            rb = "%.2fx cheaper" % (b0 / bw) if b0 and bw else "-"
            rs = "%.2fx cheaper" % ((f0 + b0) / (f + bw)) if b0 and bw and f and f0 else "-"
            ms = "%.1f / %.1f" % (est_ms(b, f), est_ms(b, bw)) if f and bw and est_ms(b, f) else "-"
            if tr:
                label, ks = b + " (trained)", R["trained_dsgu"][(b, lmin)].get("k", "?")
            else:
                label = b + (" (synthetic)" if R.get("trained_dsgu") else "")
                ks = ",".join(str(x.get("k", "?")) if x else "-" for x in R["dsgu"][(b, lmin)].values())
                v = R.get("dsgu_vae", {}).get((b, lmin))
                if v and v.get("k"):
                    ks = v["k"]
            L.append("| %s | %.1f | %s | %s | %s | %s | %s | %s | %s |" % (
                label, lmin, _kc(f), _kc(bw), rb, rs, ms, ks, src))
        ps, pb = PAPER_UINT8[0][1], PAPER_UINT8[0][1] - PAPER_UINT8[0][2]
        for frac, step, fwd in PAPER_UINT8:
            L.append("| paper (STM32L4R5) | %.1f | %.1f ms | %.1f ms | %.2fx cheaper | %.2fx cheaper | | | METHOD 7 |" % (
                frac, fwd, step - fwd, pb / (step - fwd), ps / step))
        L.append("")
    # (d)
    L.append("### d) Native module sizes (bytes)")
    L.append("")
    L.append("`_qtrain.mpy`: everything a uint8 model loads; `_qtrain_float.mpy`: the float32 and mixed kernels and the uint8 batch > 1 calls.")
    L.append("")
    L.append("| arch | %s |" % " | ".join("`%s.mpy`" % m for m in NATMODS))
    L.append("|---|%s" % ("---:|" * len(NATMODS)))
    for a, mods in sorted(R["mpy"].items()):
        L.append("| %s | %s |" % (a, " | ".join(str(mods.get(m, "-")) for m in NATMODS)))
    L.append("")
    # (e)
    L.append("### e) Heap (gc.mem_alloc, bytes; board heap 163840)")
    L.append("")
    L.append("A model that does not fit the 160 KB budget is built again on the firmware with the real "
             "board's heap (`make firmware` builds it) to measure its whole step (tables b, c).")
    L.append("")
    L.append("| board | mode | before the model (module + package) | free then | model built | after 2 steps | fits |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    rows = [(b, m, v) for (b, m), v in R["vae"].items()]
    rows += [("%s at its real board's heap (%s)" % (b, v.get("heap", "?")), m, v) for (b, m), v in R.get("vae_real", {}).items()]
    for b, m, v in sorted(rows, key=lambda r: (r[0], r[1])):
        fits = "yes" if v.get("fits") else "no: %s" % v.get("why", "MemoryError")
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (b, m, v.get("heap_base", "-"), v.get("heap_free", "-"),
                                                          v.get("heap_built", "-"), v.get("heap_steps", "-"), fits))
    L.append("")
    # targets
    L.append("### Targets (issue 3)")
    L.append("")
    L.append("| target | figure | met |")
    L.append("|---|---|---|")
    for row in targets(R):
        L.append("| %s | %s | %s |" % row)
    L.append("")
    return "\n".join(L)


def targets(R):
    """Rows (target, figure, met) of the targets table.  The uint8 step and
    DSGU targets are judged on the trained state (bench_trained: what a
    training run makes) when the bench measured it, the synthetic figure
    shown beside it; else on the synthetic state."""
    macs = vae_macs()["step"]
    rows = []
    for b, lim in (("qemu-m0", 6.0), ("qemu-m4", 3.0)):
        st = step_figures(R, b, "uint8")[3]
        rm = R.get("remaps", {}).get(b, {}) if st is not None else {}
        synth = None
        if rm.get("step_clean") and rm.get("step"):   # the step as training mostly runs it
            synth = ("%.2f (with this bench's re-maps, %.1f per step: %.2f)"
                     % (rm["step_clean"] / macs, rm.get("remaps", 0) / 2.0, rm["step"] / macs))
            v = rm["step_clean"] / macs
            what = "uint8 step without a weight re-map <= %g instr/MAC on %s" % (lim, b)
        elif st is not None:
            synth = "%.2f" % (st / macs)
            v = st / macs
            what = "uint8 step <= %g instr/MAC on %s" % (lim, b)
        t = R.get("trained", {}).get(b)
        if t:
            clean = t.get("step_clean")
            v = (clean or t["step"]) / macs
            fig = ("%.2f trained (mean of the %d of %d test-image steps without a re-map; all %d: %.2f)"
                   % (v, t.get("clean", 0), t["n"], t["n"], t["step"] / macs) if clean else
                   "%.2f trained (every test-image step re-mapped weights)" % v)
            what = "uint8 step without a weight re-map <= %g instr/MAC on %s" % (lim, b)
            rows.append((what, fig + ("; synthetic %s" % synth if synth else ""),
                         "yes" if v <= lim else "no (%.1fx over)" % (v / lim)))
        elif synth is not None:
            rows.append((what, synth, "yes" if v <= lim else "no (%.1fx over)" % (v / lim)))
    u = step_figures(R, "qemu-m4", "uint8")[3]
    f, src = step_figures(R, "qemu-m4", "float32")[3], step_figures(R, "qemu-m4", "float32")[4]
    if u and f:
        r = u / f
        note = "" if src == "measured" else " (float32: %s)" % src
        rows.append(("uint8 step <= 0.5x float32 step on qemu-m4", "%.3fx%s" % (r, note),
                     "yes" if r <= 0.5 else "no (uint8 step %.1f %% over the target)" % ((r / 0.5 - 1) * 100)))
    for b in ("qemu-m0", "qemu-m4"):
        a, c = dsgu_backward(R, b, 1.0), dsgu_backward(R, b, 0.1)
        ta, tc = trained_dsgu_figures(R, b, 1.0)[1], trained_dsgu_figures(R, b, 0.1)[1]
        what = "DSGU lmin=0.1 backward >= 6x cheaper (%s)" % b
        if ta and tc:
            r = ta / tc
            rows.append((what, "%.2fx trained%s" % (r, "; synthetic %.2fx" % (a / c) if a and c else ""),
                         "yes" if r >= 6 else "no (%.1fx short)" % (6 / r)))
        elif a and c:
            r = a / c
            rows.append((what, "%.2fx" % r, "yes" if r >= 6 else "no (%.1fx short)" % (6 / r)))
    return rows


def _git_rev():
    try:
        rev = subprocess.run(["git", "-C", paths.ROOT, "rev-parse", "--short", "HEAD"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", paths.ROOT, "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        return rev + (" (working tree with uncommitted changes)" if dirty else "")
    except OSError:
        return "?"


BEGIN = "<!-- bench:begin (generated by python -m qtrain_host.bench --md; do not edit by hand) -->"
END = "<!-- bench:end -->"


def write_md(path, text):
    """Replace the generated block of `path` (or append it)."""
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    block = BEGIN + "\n" + text + "\n" + END
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


HEADS_SCRIPT = r"""
import gc, icount
from array import array
import _qtrain as Q
def qp(lo, hi):
    r = array('f', [1, 0, lo, hi, 0, 0, 0, 0]); Q.qp_from_range(r); return r
n = 784
t = bytearray([(i * 37 + 11) & 255 for i in range(n)])
e, eq, st, lut = bytearray(n), qp(-1.0, 1.0), array('f', [0] * 3), array('f', [0] * 512)
cases = (("bce_sigmoid_u8|784|no_lut|all_256_values", bytearray([(i * 7) & 255 for i in range(n)]), None),
         ("bce_sigmoid_u8|784|lut|all_256_values", bytearray([(i * 7) & 255 for i in range(n)]), lut),
         ("bce_sigmoid_u8|784|lut|2_values_(per-pixel_part)", bytearray([100 + (i & 1) for i in range(n)]), lut))
for name, x, lt in cases:
    best = None
    for _ in range(2):
        gc.collect()
        icount.start()
        Q.bce_sigmoid_u8(x, qp(-8.0, 8.0), t, e, eq, st, lt)
        c = icount.read()
        best = c if best is None or c < best else best
    print("@icount %s %d" % (name, best))
"""


def heads(boards=BOARDS):
    """{board: {call: instructions}} of the uint8 sigmoid + BCE head called
    directly on _qtrain (no package dispatch), best of two calls."""
    return {b: _run(b, HEADS_SCRIPT).icount for b in boards}


def quick(board="qemu-m4"):
    """One small Dense layer, uint8, twice: (first, second) {name: counts}."""
    return bench_layers(board, "uint8", QUICK_LAYERS, reps=1), bench_layers(board, "uint8", QUICK_LAYERS, reps=1)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=boards_arg, default=" ".join(BOARDS), help="emulated boards, separated by spaces or commas (default: %(default)s)")
    ap.add_argument("--modes", default=" ".join(MODES), help="space-separated (default: %(default)s)")
    ap.add_argument("--md", default="", help="write the tables into this Markdown file")
    ap.add_argument("--quick", action="store_true", help="one small layer on qemu-m4 (smoke test)")
    ap.add_argument("--heads", action="store_true",
                    help="only the uint8 sigmoid + BCE head, per call (docs/KERNELS.md, losses cost table)")
    a = ap.parse_args(argv)
    if a.heads:
        H = heads(a.boards)
        names = list(next(iter(H.values())))
        print("| call | %s |" % " | ".join(H))
        print("|---|%s" % ("---:|" * len(H)))
        for nm in names:
            print("| `%s` | %s |" % (nm.replace("|", ", ").replace("_", " ").replace("bce sigmoid u8", "bce_sigmoid_u8"),
                                     " | ".join(_kc(H[b].get(nm)) for b in H)))
        return 0
    if a.quick:
        r1, r2 = quick()
        for name, v in r1.items():
            print("%s: fwd %d bwd %d upd %d (again: %d %d %d)" % (
                name, v["fwd"], v["bwd"], v["upd"], r2[name]["fwd"], r2[name]["bwd"], r2[name]["upd"]))
        return 0
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    R = collect(a.boards, tuple(a.modes.split()), log=log)
    cmd = "python -m qtrain_host.bench" + ("" if a.boards == BOARDS else " --boards %r" % " ".join(a.boards)) \
        + ("" if a.modes == " ".join(MODES) else " --modes %r" % a.modes) + (" --md %s" % a.md if a.md else "")
    text = report(R, cmd)
    print(text)
    if a.md:
        write_md(a.md, text)
        log("bench: wrote %s" % a.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
