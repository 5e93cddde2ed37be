"""Memory of training the paper's ConvVAE (issue 5 item 3): the VAE paper's
Table I for qtrain, from gc.mem_alloc() deltas, not estimates.

    python -m qtrain_host.bench_memory [--md docs/BENCHMARKS.md]

On the emulated boards (qemu-m0 = the Pico's armv6m build, qemu-m4 = the
Nano 33 BLE's armv7emsp build, both with the 160 KB heap budget): the heap
taken by `import _qtrain` (natmod code and data) and by importing the qtrain
package (the training path: layers, models, losses, trainer), and whether
the uint8 ConvVAE then builds and trains.

The model's own buffers: build_vae('conv') in uint8 and in float32, then
each category's buffers are dropped in turn and the heap they free is
measured (gc.collect(); gc.mem_alloc() before and after):
  weights     weights and biases (and their quantization records)
  activations every layer's output, the latent sample z
  errors      the error tensors (the two ping-pong buffers, which also
              hold the BCE error, and the latent's)
  optimizer   update statistics, DSGU buffers, generator states, and the
              scratch the kernels share (im2col, int32 rows, BCE table,
              float gradient in float32 mode)
  objects     what remains: the layer objects, views and records.
These run where the model fits: on an emulated board if it does (uint8), else on the Unix port
(the same package and kernels; buffer sizes are the same on every port, the
objects take 8-byte words there instead of 4); the table says which.
"""
import argparse
import os
import sys

from . import bench_report, paths
from .qemu import boards_arg
from .runner import run_script

BOARDS = ("qemu-m0", "qemu-m4")
# The VAE paper's Table I (kB): uint8 and float32 training of the same model.
PAPER = {"uint8": {"activations": 23.0, "weights": 221.0, "total": 244.0},
         "float32": {"total": 529.4}}

IMPORT_SCRIPT = r"""
import gc
gc.collect(); f0 = gc.mem_free(); a0 = gc.mem_alloc()
import _qtrain
gc.collect(); a1 = gc.mem_alloc()
from qtrain import layers, losses, models, trainer
gc.collect(); a2 = gc.mem_alloc()
print('@mem free_boot=%d natmod=%d package=%d free=%d' % (f0, a1 - a0, a2 - a1, gc.mem_free()))
"""

MODEL_SCRIPT = r"""
import gc
from qtrain import models
gc.collect(); a0 = gc.mem_alloc()
vae = models.build_vae('conv', models.Options(mode=%(mode)r))
gc.collect(); a1 = gc.mem_alloc()
print('@mem total=%%d predicted=%%d free=%%d' %% (a1 - a0, models.vae_bytes('conv', mode=%(mode)r), gc.mem_free()))
img = bytearray((i * 37 + (i >> 5) * 11) & 255 if 150 < i < 650 else 0 for i in range(784))
low = gc.mem_free()
for t in range(3):
    vae.train_step(img)
    low = min(low, gc.mem_free())
gc.collect()
print('@mem after_steps=%%d lowest_free=%%d' %% (gc.mem_alloc() - a0, low))
layers = vae.encoder.layers + vae.decoder.layers
for l in layers:
    l.x = l.xq = None
CATS = (
    ('weights', [(l, ('w', 'wq', 'b', 'bq')) for l in layers]),
    ('activations', [(l, ('y', 'yq', 'y_pair')) for l in layers] + [(vae.latent, ('z', 'zq', 'h', 'hq')), (vae, ('xf',))]),
    ('errors', [(l, ('ep', 'epq', 'ep_pair')) for l in layers] + [(vae, ('errors',)), (vae.output, ('e', 'eq')),
                                                      (vae.latent, ('dh', 'dhq'))]),
    ('optimizer', [(l, ('state', 'bstate', 'gb', 'sel', 'scores', 'sel_scratch', 'dsgu_state', 'dsgu_hp', 'hp',
                        'rng', 'xs', 'acc', 'shared', '_scr', '_wf', '_xf', '_gw', '_e8', 'eq8')) for l in layers]
                  + [(vae, ('shared',)), (vae.output, ('lut', '_lut', 'stats')),
                     (vae.latent, ('eps', 'zero_eps', '_eps', 'rng', 'hp', 'stats'))]),
)
for name, drops in CATS:
    gc.collect(); b0 = gc.mem_alloc()
    for obj, attrs in drops:
        for a in attrs:
            if hasattr(obj, a):
                setattr(obj, a, None)
    gc.collect()
    print('@mem %%s=%%d' %% (name, b0 - gc.mem_alloc()))
"""


# The user's way (`make run-qemu ... MOUNT=dir`, `qtrain_host run --target
# qemu-m0`): mpremote mounts a directory holding _qtrain.mpy and the
# compiled package, so the package's bytecode is loaded into the heap (the
# ROMFS of the runner above keeps it in ROM), next to mpremote's mount agent.
MOUNT_SCRIPT = r"""
import gc
gc.collect(); f0 = gc.mem_free()
import _qtrain
gc.collect(); f1 = gc.mem_free()
from qtrain import trainer
gc.collect(); f2 = gc.mem_free()
print('@mem mount_free_boot=%d mount_natmod=%d mount_package=%d mount_free=%d' % (f0, f0 - f1, f1 - f2, f2))
"""


def measure_mount(board):
    """MOUNT_SCRIPT through mpremote mount on `board` -> its @mem figures."""
    import shutil
    import tempfile
    from . import cli_run, paths, qemu
    arch = qemu.board_config(board)["arch"]
    tmp = tempfile.mkdtemp(prefix="qtrain-mem-")
    try:
        shutil.copy(paths.natmod_path(arch), tmp)
        cli_run.write_package(arch, tmp)
        script = os.path.join(tmp, "mem.py")
        with open(script, "w") as f:
            f.write(MOUNT_SCRIPT)
        rc, out = qemu.mpremote_run(board, script, mount=tmp, timeout=300, capture=True)
        return _mem(out) if rc == 0 else {"error": (out or "")[-300:]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


TRAIN_SAMPLES = 20


# The ConvVAE at the real boards' heaps (paths.real_heap_bytes: `make
# firmware` builds those firmwares): a few hundred samples, ELBO first/last.
REAL_HEAP_SAMPLES = 200


def measure_mount_training(board, model_args, log=print, samples=TRAIN_SAMPLES, real_heap=False):
    """python/train_vae.py the user's way on `board` (qtrain_host run: mpremote
    mount of a staging dir with the package) for `samples` samples of the
    shipped MNIST subset, with --heap_trace true; real_heap: on the firmware
    with the real board's heap.  -> {'phases': [(phase, free, largest)],
    'step_free_min': the lowest free heap after a step (the last progress
    line's heap_free_min: the run's one save, at the end, comes after
    it), 'free_min': the @result line's
    heap_free_min, which also counts the free heap after that save
    (collected: with the checkpoint code loaded), 'elbo': every progress
    line's, or 'error': the MemoryError}."""
    import tempfile
    import numpy as np
    from . import cli_run, idx, stream
    images = idx.read_images(os.path.join(paths.ROOT, "data", "mnist-subset", "train-images-idx3-ubyte.gz"))
    tmp = tempfile.mkdtemp(prefix="qtrain-mem-train-")
    env_was = os.environ.get("QTRAIN_FIRMWARE_DIR")
    try:
        if real_heap:
            os.environ["QTRAIN_FIRMWARE_DIR"] = paths.real_heap_firmware_dir(board)
        stream.write(os.path.join(tmp, "train.qtds"), np.ascontiguousarray(images[:samples]))
        args = list(model_args) + ["--limit", str(samples), "--log_every", str(max(5, samples // 4)),
                                   "--ckpt_every", str(samples),   # one save, after the last progress line
                                   "--fresh", "true", "--heap_trace", "true"]
        view = cli_run.ProgressView(stream=open(os.devnull, "w"))
        rc, out = cli_run.run_target(board, tmp, os.path.join(paths.PYTHON_DIR, "train_vae.py"), args, view=view)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        if env_was is None:
            os.environ.pop("QTRAIN_FIRMWARE_DIR", None)
        else:
            os.environ["QTRAIN_FIRMWARE_DIR"] = env_was
    r = {"args": " ".join(model_args), "phases": [], "samples": samples,
         "heap": paths.real_heap_bytes(board) if real_heap else None, "elbo": []}
    for line in out.splitlines():
        p = line.split()
        if line.startswith("@heap ") and len(p) >= 4:
            kv = dict(x.split("=", 1) for x in p if "=" in x)
            r["phases"].append((" ".join(x for x in p[1:] if "=" not in x), int(kv["free"]), int(kv["largest"])))
        elif line.startswith("@progress vae"):
            r["elbo"].append(float(line.split("elbo=")[1].split()[0]))
            r["step_free_min"] = int(line.split("heap_free_min=")[1].split()[0])
        elif line.startswith("@result vae"):
            r["free_min"] = int(line.split("heap_free_min=")[1].split()[0])
    if "free_min" not in r:
        errs = [ln.strip() for ln in out.splitlines() if "Error" in ln]
        r["error"] = (errs[-1] if errs else out.strip()[-200:])[:200]
    log("%s train_vae.py %s: %s" % (board, r["args"], r.get("free_min", r.get("error"))))
    return r


def board_default_args(board):
    """--model/--hidden of the real board `board` stands in for (board.json defaults)."""
    try:
        d = paths.real_board(board)[1].get("defaults", {}).get("train_vae", {})
    except KeyError:   # stands in for no real board
        d = {}
    out = []
    for k in ("model", "hidden", "latent", "mode"):
        if k in d:
            out += ["--" + k, str(d[k])]
    return out


def _mem(output):
    """The k=v figures of every @mem line, merged."""
    d = {}
    for row in bench_report.parse_lines(output, "mem"):
        d.update(row)
    return d


def measure(boards=BOARDS, log=print):
    R = {"imports": {}, "model": {}}
    for b in boards:
        res = run_script(b, IMPORT_SCRIPT, timeout=300)
        R["imports"][b] = _mem(res.output) if res.returncode == 0 else {"error": res.output[-300:]}
        R["imports"][b].update(measure_mount(b))
        log("%s imports: %s" % (b, R["imports"][b]))
        R.setdefault("mount_training", {})[b] = [measure_mount_training(b, a, log)
                                                 for a in (board_default_args(b), ["--model", "conv"])]
        if os.path.exists(os.path.join(paths.real_heap_firmware_dir(b), b, "firmware.elf")):
            R["mount_training"][b].append(measure_mount_training(b, ["--model", "conv"], log, REAL_HEAP_SAMPLES,
                                                                 real_heap=True))
    for mode in ("uint8", "float32"):
        where = list(boards) if mode == "uint8" else []
        for target in where + ["unix"]:
            res = run_script(target, MODEL_SCRIPT % dict(mode=mode), timeout=600)
            m = _mem(res.output)
            if res.returncode == 0 and "objects" not in m and "optimizer" in m:
                m["objects"] = m["total"] - sum(m[k] for k in ("weights", "activations", "errors", "optimizer"))
                m["target"] = target
                R["model"][mode] = m
                log("%s %s: %s" % (target, mode, m))
                break
            last = [ln for ln in res.output.strip().splitlines() if ln][-1:] or ["?"]
            R.setdefault("did_not_fit", []).append("%s on %s: %s" % (mode, target, last[0][:160]))
            log("%s %s does not fit: %s" % (target, mode, last[0][:160]))
    return R


def _kb(v):
    return "" if v is None else "%.1f" % (v / 1000.0)


def report(R, cmd):
    L = ["### Memory: the VAE paper's Table I for qtrain", "",
         "Heap of training the paper's ConvVAE (latent 10, batch 1), measured from `gc.mem_alloc()` "
         "deltas (kB = 1000 bytes).  Rerun: `%s`." % cmd, ""]
    L.append("| | uint8 (qtrain) | float32 (qtrain) | uint8 (paper) | float32 (paper) |")
    L.append("|---|---:|---:|---:|---:|")
    u, f = R["model"].get("uint8", {}), R["model"].get("float32", {})
    rows = (("weights + biases", "weights", "", ""),
            ("activations", "activations", "23.0", ""),
            ("error tensors", "errors", "", ""),
            ("optimizer state + shared scratch", "optimizer", "", ""),
            ("objects, views, records", "objects", "", ""))
    for label, key, pu, pf in rows:
        L.append("| %s | %s | %s | %s | %s |" % (label, _kb(u.get(key)), _kb(f.get(key)), pu, pf))
    L.append("| paper: weights incl. gradient buffers | | | 221.0 | |")
    L.append("| **model total** | **%s** | **%s** | **244.0** | **529.4** |" % (_kb(u.get("total")), _kb(f.get("total"))))
    for b, m in sorted(R["imports"].items()):
        if "natmod" in m:
            L.append("| natmod code (`import _qtrain`, %s) | %s | | | |" % (b, _kb(m["natmod"])))
            L.append("| package (`qtrain` training modules, %s) | %s | | | |" % (b, _kb(m["package"])))
    for b in ("qemu-m0", "qemu-m4"):
        m = R["imports"].get(b, {})
        if "natmod" in m and u.get("total"):
            L.append("| **total with code, %s** | **%s** | | | |" % (b, _kb(u["total"] + m["natmod"] + m["package"])))
    L.append("")
    where = ", ".join("%s on %s" % (k, v.get("target")) for k, v in sorted(R["model"].items()))
    buffers = u.get("total", 1e9) - u.get("objects", 0)
    L.append("Model figures measured: %s (the Unix port has 8-byte words: its objects row is about twice "
             "a board's; every buffer is the same size).  Target: uint8 training of the paper configuration "
             "<= 100 kB of model buffers: %s kB without the objects, %s kB with them (%s)." % (
                 where, _kb(buffers), _kb(u.get("total")), "met" if buffers <= 100000 else "missed"))
    for b, m in sorted(R["imports"].items()):
        if "free" in m:
            L.append("On %s, %d bytes are free after boot, %d after importing `_qtrain` and the package." % (
                b, int(m["free_boot"]), int(m["free"])))
    for b, m in sorted(R["imports"].items()):
        if "mount_free" in m:
            L.append("The user's way on %s (mpremote mount of a directory with `_qtrain.mpy` and the compiled "
                     "package, as `make run-qemu` / `qtrain_host run --target %s`): %d bytes free after boot "
                     "with the mount agent, `import _qtrain` %d, `from qtrain import trainer` %d (bytecode in the "
                     "heap), %d free for the model (model total above: %s kB)." % (
                         b, b, int(m["mount_free_boot"]), int(m["mount_natmod"]), int(m["mount_package"]),
                         int(m["mount_free"]), _kb(u.get("total"))))
    for b, runs in sorted(R.get("mount_training", {}).items()):
        for r in runs:
            phases = ", ".join("%s %d/%d" % p for p in r["phases"])
            if "free_min" in r:
                saved = [f for name, f, _ in r["phases"] if name == "checkpoint"]
                res = ("trains; heap_free_min %d bytes, the lower of the lowest free heap after a step (%s) and "
                       "the free heap after the save, collected, with the checkpoint code loaded (%s)" % (
                           r["free_min"], r.get("step_free_min", "?"), saved[-1] if saved else "?"))
            else:
                res = "does not fit: %s" % r["error"]
            if len(r.get("elbo", [])) >= 2 and "free_min" in r:
                res += ", -ELBO %.1f at the first progress line, %.1f at the last" % (r["elbo"][0], r["elbo"][-1])
            heap = ("the real board's heap, %d bytes (`make firmware` builds it)" % r["heap"] if r.get("heap")
                    else "the 160 KB budget")
            L.append("`train_vae.py %s` the user's way on %s at %s (%d samples): %s.  Free / largest free block "
                     "(bytes) by phase (`--heap_trace true`): %s." % (r["args"], b, heap, r.get("samples", TRAIN_SAMPLES),
                                                                    res, phases))
    for s in R.get("did_not_fit", []):
        L.append("Did not fit: %s." % s)
    L.append("")
    L.append(bench_report.provenance())
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.bench_memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=boards_arg, default=" ".join(BOARDS), help="emulated boards, separated by spaces or commas (default: %(default)s)")
    ap.add_argument("--md", default="", help="write the table into this Markdown file (block 'memory')")
    a = ap.parse_args(argv)
    cmd = bench_report.command("bench_memory", argv)
    R = measure(a.boards, log=lambda s: print(s, flush=True))
    bench_report.publish(a.md, "memory", report(R, cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
