"""The uint8 ConvVAE's training step in a trained state, for the bench's
tables b and c and its targets (python -m qtrain_host.bench).

Why: the bench's other whole-model runs (bench.VAE_SCRIPT) time a freshly
built model (seed 5) on one synthetic "blob" sample.  Kernels that skip
exact zeros (values equal to their zero point: post-ReLU activations, masked
errors) cost what the data's zeros let them, and that state's zeros are not
training's: a trained model's layer inputs and masked errors hold other
fractions of them (zero_fractions() prints both).  So the targets are judged
on the step a training run makes:

  - the state: the uint8 ConvVAE trained on the Unix port on the first
    N_TRAIN images of the shipped data/mnist-subset (in order, one step per
    image), with the training defaults (qtrain.defaults.VAE_DEFAULTS) and the
    bench's seed 5, saved with the package's checkpoint code.  Deterministic;
    made when missing and cached under build/bench-trained/, keyed by what it
    depends on (the x64 natmod, the package's sources, the settings, the
    script, the images);
  - the step: on each emulated board (at its real board's heap when `make
    firmware` built it, as the whole-model runs), the checkpoint loaded with
    the package's own resume code (qtrain.vae_resume), then one training step
    on each of the first N_TEST images of the subset's test split (images the
    model was not trained on): forward / loss / backward + update, their mean,
    the layer re-maps those steps made and the mean of the steps that made
    none (the targets take it, as they take the synthetic run's);
  - DSGU (table c): the same from the same checkpoint at lmin = lmax = 1.0
    and 0.1 (the checkpoint, trained without DSGU, holds no DSGU state; with
    lmin = lmax the selection keeps a fixed number of rows/filters);
  - the zero fractions of every layer's input and of the error each layer's
    backward sees after its ReLU mask, in both states, on the Unix port: the
    kernels are bit-exact on every target, so these are the values the boards'
    steps see (checked: the CRC-32 of the weights after the trained steps
    must agree between the Unix port and every board).
"""
import ast
import hashlib
import json
import os
import shutil
import tempfile

from . import paths
from .runner import run_script

N_TRAIN = 1500          # training images (the first N of the subset's train split)
N_TEST = 8              # test images timed on the boards (the first N of its test split)
SEED = 5                # the bench's seed (bench.VAE_SCRIPT's model)
DSGU_LMINS = (1.0, 0.1)  # table c in the trained state
DATA = os.path.join(paths.ROOT, "data", "mnist-subset")
CACHE = os.path.join(paths.BUILD, "bench-trained")
CKPT = "trained.qtc"    # names on the board's filesystem
TEST = "test.bin"
TAGS = ("c1", "c2", "d1", "d2", "t1", "t2")   # the six trainable layers, in execution order
# The VAE_DEFAULTS keys that are layers.Options arguments.
OPTION_KEYS = ("lr", "alpha_norm", "per_row", "rounding", "alpha_a", "alpha_e", "alpha_w")

# ---- scripts -------------------------------------------------------------------

# Unix port: train and save the checkpoint (sys.argv[1]); the images are
# N x 784 bytes in train.bin.
TRAIN_SCRIPT = r"""
import sys
from qtrain import models, checkpoint
OPTS = %(opts)r
N = %(n)d
vae = models.build_vae("conv", models.Options(**OPTS))
x = bytearray(784)
s = 0.0
m = min(N, 100)
with open("train.bin", "rb") as f:
    for i in range(N):
        f.readinto(x)
        rec, kl = vae.train_step(x)
        if i >= N - m:
            s += rec + kl
st = vae.state_scalars()
st["hidden"], st["epoch"], st["pos"] = 256, 1, 0
checkpoint.save(sys.argv[1], st, seq=vae.steps, items=vae.state_items)
print("@bench elbo_last100 %%.2f" %% (s / m))
"""

# Shared by the board's and the Unix port's runs: build the model, load the
# checkpoint into it, and the steps on the test images.
_COMMON = r"""
import gc, icount
import _qtrain as _q
from qtrain import models, unload
OPTS = %(opts)r
N = %(n)d
LMINS = %(lmins)r
x = bytearray(784)
gc.collect()
print("@bench heap_free %%d" %% gc.mem_free())
vae = models.build_vae("conv", models.Options(dsgu=(LMINS[0], LMINS[0]) if LMINS else None, **OPTS))
lays = vae.encoder.layers + vae.decoder.layers
gc.collect()
print("@bench heap_built %%d" %% gc.mem_alloc())

def load():
    from qtrain.vae_resume import resume
    resume(vae, {"ckpt": "trained.qtc", "model": "conv"}, {}, lambda s: None)
    unload("vae_resume", "checkpoint")
    gc.collect()

def records():
    return [(lay.wq[0], lay.wq[1]) for lay in lays]

def crc():   # of every layer's weights: the same steps give the same CRC anywhere
    c = 0
    for lay in lays:
        c = _q.crc32(lay.w, c)
    return c & 0xFFFFFFFF

def steps(tag):
    # One step per test image, timed as bench.VAE_SCRIPT times its parts.
    tf = tl = tb = tc = nc = nr = 0
    ks = [0] * len(lays)
    with open("test.bin", "rb") as f:
        for _ in range(N):
            f.readinto(x)
            sc = records()
            gc.collect()   # as bench.VAE_SCRIPT: a collected heap at the start of each timed part
            icount.start()
            lg, lq = vae.forward(x)
            a = icount.read()
            icount.start()
            e, eq, rec = vae.output.loss(lg, lq, x)
            b = icount.read()
            icount.start()
            ez, ezq = vae.decoder.backward(e, eq)
            eh, ehq = vae.latent.backward(ez, ezq)
            vae.encoder.backward(eh, ehq)
            vae.step_done()
            c = icount.read()
            r = sum(1 for p, q in zip(sc, records()) if p != q)   # layers whose weights were re-mapped
            tf += a
            tl += b
            tb += c
            nr += r
            if not r:
                tc += a + b + c
                nc += 1
            for i, lay in enumerate(lays):
                ks[i] += lay.k
    print("@icount %%s|forward %%d" %% (tag, tf // N))
    print("@icount %%s|loss %%d" %% (tag, tl // N))
    print("@icount %%s|backward %%d" %% (tag, tb // N))
    print("@icount %%s|step %%d" %% (tag, (tf + tl + tb) // N))
    if nc:
        print("@icount %%s|step_clean %%d" %% (tag, tc // nc))
    print("@bench %%s|remaps %%d" %% (tag, nr))
    print("@bench %%s|clean %%d" %% (tag, nc))
    print("@bench %%s|k %%s" %% (tag, ",".join("%%.1f" %% (k / N) for k in ks)))
    print("@bench %%s|crc %%d" %% (tag, crc()))
"""

# Board: the trained step (DSGU off), or each lmin of LMINS in turn.
STEP_SCRIPT = _COMMON + r"""
if not LMINS:
    load()
    steps("t")
for lmin in LMINS or ():
    for lay in lays:
        lay.dsgu_hp[0] = lay.dsgu_hp[1] = lmin
        lay.dsgu_state[0] = 0.0
    load()
    steps("d%%g" %% lmin)
"""

# Unix port: the zero fractions of both states, from wrapped layer calls (the
# wrappers only count; the values are the measured steps').
ZEROS_SCRIPT = _COMMON + r"""
Z = {}
def frac(buf, q):   # (a lent error buffer is a memoryview: no .count)
    return bytes(buf).count(bytes((int(q[1]),))) / len(buf)
def wrap(tag, i, lay):
    f0, b0 = lay.forward, lay.backward
    def fw(x, xq):
        Z[(tag, "x", i)] = Z.get((tag, "x", i), 0.0) + frac(x, xq)
        return f0(x, xq)
    def bw(e, eq):
        out = b0(e, eq)   # the ReLU mask is applied to e in place
        Z[(tag, "e", i)] = Z.get((tag, "e", i), 0.0) + frac(e, eq)
        return out
    lay.forward, lay.backward = fw, bw
for i, lay in enumerate(lays):
    wrap("trained", i, lay)
load()
steps("t")
def show(tag, n):
    for kind in ("x", "e"):
        print("@bench zeros_%%s_%%s %%s" %% (tag, kind, ",".join("%%.3f" %% (Z[(tag, kind, i)] / n) for i in range(len(lays)))))
show("trained", N)
# The synthetic state: bench.VAE_SCRIPT's model and sample, its measured
# steps (after its two warm-up steps; a train_step() after each measured
# step).  It times a measured step's parts one by one: the calls of one
# train_step(), which is what is counted here.
vae = lays = None
gc.collect()
from qtrain import layers as L
vae = models.build_vae("conv", models.Options(mode="uint8", lr=0.001, seed=%(seed)d))
lays = vae.encoder.layers + vae.decoder.layers
%(blob)sfor _ in range(2):
    vae.train_step(x)
for i, lay in enumerate(lays):
    wrap("synthetic", i, lay)
for _ in range(%(synth_steps)d):
    vae.train_step(x)
    for lay in lays:   # VAE_SCRIPT's train_step() between its measured steps: not counted
        del lay.forward, lay.backward
    vae.train_step(x)
    for i, lay in enumerate(lays):
        wrap("synthetic", i, lay)
show("synthetic", %(synth_steps)d)
"""


# The Unix port has no instruction counter: steps() there counts nothing.
ICOUNT_STUB = b"def start():\n    pass\n\n\ndef read():\n    return 0\n"


# ---- the trained state ---------------------------------------------------------

def training_options():
    """layers.Options arguments of the trained model: VAE_DEFAULTS's (read
    from python/qtrain/defaults.py, MicroPython code the host does not
    import), the uint8 mode and the bench's seed."""
    with open(os.path.join(paths.PYTHON_DIR, "qtrain", "defaults.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VAE_DEFAULTS" for t in node.targets):
            d = ast.literal_eval(node.value)
            break
    else:
        raise RuntimeError("python/qtrain/defaults.py has no VAE_DEFAULTS")
    out = {k: d[k] for k in OPTION_KEYS}
    out.update(mode="uint8", seed=SEED)
    return out


def images(split, n):
    """The first n images of data/mnist-subset's split, 784 bytes each."""
    from . import datasets
    imgs, _ = datasets.load_split(DATA, split)
    if len(imgs) < n:
        raise RuntimeError("%s: %d %s images, the bench needs %d" % (DATA, len(imgs), split, n))
    return imgs[:n].astype("uint8").tobytes()


def _package_sources():
    out = []
    base = os.path.join(paths.PYTHON_DIR, "qtrain")
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                p = os.path.join(dirpath, fn)
                with open(p, "rb") as f:
                    out.append((os.path.relpath(p, base), f.read()))
    return out


def cache_key(train, opts, n=N_TRAIN):
    """Hex digest of what the checkpoint depends on."""
    h = hashlib.sha256()
    h.update(b"qtrain bench trained state 1\0")
    h.update(TRAIN_SCRIPT.encode() + b"\0" + repr(sorted(opts.items())).encode() + b"\0%d\0" % n)
    with open(paths.natmod_path("x64"), "rb") as f:
        h.update(f.read())
    for name, data in _package_sources():
        h.update(name.encode() + b"\0" + data + b"\0")
    h.update(train)
    return h.hexdigest()


def checkpoint(log=print, n=N_TRAIN):
    """(path, info) of the trained checkpoint, trained on the Unix port when
    the cache under build/bench-trained/ has none for the current sources;
    info: {"elbo_last100": -ELBO of the last 100 training steps, "key", "n"}."""
    opts = training_options()
    train = images("train", n)
    key = cache_key(train, opts, n)
    path = os.path.join(CACHE, "conv-uint8-%s.qtc" % key[:16])
    meta = path[:-4] + ".json"
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as f:
            return path, json.load(f)
    log("bench: training the uint8 ConvVAE on %d images on the Unix port (cached as %s)"
        % (n, os.path.relpath(path, paths.ROOT)))
    os.makedirs(CACHE, exist_ok=True)
    for old in os.listdir(CACHE):    # other keys: made from other sources, stale
        os.remove(os.path.join(CACHE, old))
    tmp = tempfile.mkdtemp(prefix="qtrain-trained-")
    try:
        out = os.path.join(tmp, "trained.qtc")
        res = run_script("unix", TRAIN_SCRIPT % dict(opts=opts, n=n), files={"train.bin": train},
                         timeout=1800, heapsize="16M", args=[out])
        if res.returncode != 0 or not os.path.exists(out):
            raise RuntimeError("training the bench's model failed on the Unix port:\n%s" % res.output[-3000:])
        info = {"key": key, "n": n, "opts": opts}
        info.update({k: float(v) for k, v in _bench_lines(res.output).items()})
        shutil.move(out, path)
        with open(meta, "w") as f:
            json.dump(info, f, sort_keys=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path, info


def _bench_lines(out):
    from .bench import _bench_lines as bl
    return bl(out)


def _files(ckpt):
    with open(ckpt, "rb") as f:
        return {CKPT: f.read(), TEST: images("test", N_TEST)}


def parse_steps(res, tag):
    """{forward, loss, backward, step, step_clean, remaps, clean, k, crc} of
    one steps() pass (tag) from a run's output."""
    b = _bench_lines(res.output)
    out = {k.split("|", 1)[1]: v for k, v in res.icount.items() if k.startswith(tag + "|")}
    for key in ("remaps", "clean", "crc"):
        if tag + "|" + key in b:
            out[key] = int(b[tag + "|" + key])
    if tag + "|k" in b:
        out["k"] = b[tag + "|k"]
    out["n"] = N_TEST
    return out


def board_steps(board, ckpt, lmins=None):
    """The trained steps on `board` (on its real board's heap when `make
    firmware` built it): DSGU off -> {"t": figures}; lmins -> {lmin:
    figures} (parse_steps); {} if the model does not fit."""
    from . import bench
    fw = paths.real_heap_firmware_dir(board) if bench.has_real_heap_firmware(board) else None
    script = STEP_SCRIPT % dict(opts=training_options(), n=N_TEST, lmins=list(lmins) if lmins else None)
    with bench._firmware_dir(fw):
        try:
            res = bench._run_precompiled(board, script, files=_files(ckpt))
        except RuntimeError as e:
            if "MemoryError" in str(e):
                return {}
            raise
    heap = paths.real_heap_bytes(board) if fw else None
    if not lmins:
        return {"t": dict(parse_steps(res, "t"), heap=heap)}
    return {lmin: dict(parse_steps(res, "d%g" % lmin), heap=heap) for lmin in lmins}


def zero_fractions(ckpt):
    """{"trained": {"x": [6 fractions], "e": [...], "crc": weights' CRC after
    the steps}, "synthetic": {"x", "e"}} from the Unix port (ZEROS_SCRIPT):
    x = each layer's input, e = the error its backward sees after its ReLU
    mask; a fraction = the share of values equal to the tensor's zero point,
    mean over the steps."""
    from . import bench
    script = ZEROS_SCRIPT % dict(opts=training_options(), n=N_TEST, lmins=None, seed=SEED, synth_steps=2,
                                 blob=bench.BLOB_SAMPLE)
    files = dict(_files(ckpt), **{"icount.py": ICOUNT_STUB})
    res = run_script("unix", script, files=files, timeout=1800, heapsize="16M")
    if res.returncode != 0:
        raise RuntimeError("the zero-fraction run failed on the Unix port:\n%s" % res.output[-3000:])
    b = bench._bench_lines(res.output)
    out = {}
    for state in ("trained", "synthetic"):
        out[state] = {k: [float(v) for v in b["zeros_%s_%s" % (state, k)].split(",")] for k in ("x", "e")}
    out["trained"]["crc"] = int(b["t|crc"])
    return out


def collect(boards, log=print):
    """R entries of the trained state: {"trained": {board: figures},
    "trained_dsgu": {(board, lmin): figures}, "zeros": zero_fractions(),
    "trained_info": the checkpoint's info}; {} without the Unix port (it
    trains the model)."""
    from . import runner
    if not runner.available("unix"):
        log("bench: no Unix port: the trained state is left out (make setup)")
        return {}
    ckpt, info = checkpoint(log)
    out = {"trained": {}, "trained_dsgu": {}, "trained_info": info}
    log("bench: zero fractions (Unix port)")
    out["zeros"] = zero_fractions(ckpt)
    for b in boards:
        log("bench: %s uint8 whole VAE, trained state" % b)
        t = board_steps(b, ckpt).get("t")
        if t:
            out["trained"][b] = t
        log("bench: %s uint8 DSGU, trained state" % b)
        for lmin, v in board_steps(b, ckpt, DSGU_LMINS).items():
            out["trained_dsgu"][(b, lmin)] = v
    return out
