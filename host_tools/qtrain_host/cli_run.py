"""`run` and `demo` subcommands: run the MicroPython scripts on a target with
a progress bar driven by their @progress lines.

    python -m qtrain_host run --target unix --data out/data python/train_vae.py --epochs 2
    python -m qtrain_host run --target qemu-m4 --data out/data python/train_vae.py --limit 200
    python -m qtrain_host demo

On the Unix port the script runs with --data as its current directory and
gets its options on the command line.  On an emulated board or a serial port
(a real board) it runs the user's way, `mpremote connect PORT mount DIR run
SCRIPT`: DIR is a staging copy of --data plus _qtrain.mpy and
_qtrain_float.mpy for the board's arch (the board loads only what it imports), the compiled qtrain package and a qtrain.json holding the options (a
board has no command line); files the script writes there (checkpoints, PGMs)
are copied back to --data afterwards.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from . import cli, paths

PROGRESS_RE = re.compile(r"^@progress (\w+) (.*)$")


class ProgressView:
    """Turns @progress lines into a one-line bar (a terminal) or plain lines."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.time()

    def line(self, text):
        m = PROGRESS_RE.match(text.strip())
        if not m or not self.tty:
            self.stream.write(text if text.endswith("\n") else text + "\n")
            self.stream.flush()
            return
        phase, rest = m.group(1), m.group(2)
        kv = dict(x.split("=", 1) for x in rest.split() if "=" in x)
        frac = None
        for key in ("step", "epoch"):
            if "/" in kv.get(key, ""):
                a, b = kv[key].split("/")
                frac = int(a) / max(int(b), 1)
                break
        bar = ""
        if frac is not None:
            n = int(30 * frac)
            bar = "[" + "#" * n + "." * (30 - n) + "] "
        self.stream.write("\r%s%s %s  %.0f s   " % (bar, phase, rest, time.time() - self.t0))
        if frac is not None and frac >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


def _script_args_to_json(script, args):
    """--key value pairs -> {section: {key: value}} for qtrain.json on a board."""
    section = os.path.splitext(os.path.basename(script))[0]
    out = {}
    i = 0
    while i < len(args):
        if not args[i].startswith("--") or i + 1 >= len(args):
            raise SystemExit("run: script options must be --key value pairs, got %r" % args[i])
        key, val = args[i][2:].replace("-", "_"), args[i + 1]
        for conv in (int, float):
            try:
                val = conv(val)
                break
            except ValueError:
                pass
        if val in ("true", "false"):
            val = val == "true"
        out[key] = val
        i += 2
    return {section: out}


def write_package(arch, dest):
    """dest/qtrain/*.mpy: the package compiled with mpy-cross for `arch`."""
    from . import qemu
    os.makedirs(os.path.join(dest, "qtrain"), exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        for name, data in qemu._package_files(arch, tmp).items():
            if name.startswith("qtrain/"):
                with open(os.path.join(dest, name), "wb") as f:
                    f.write(data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link_or_copy(src, dst):
    """A hard link (no copy of a big stream file) or, across filesystems, a copy.
    Not a symlink: mpremote's mount refuses a path that resolves outside the
    mounted directory (the board's open() failed with EPERM)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def stage_board_dir(target, data_dir, script, args, staging):
    """Everything the board needs, in one directory to mount."""
    arch = paths.TARGET_ARCH.get(target, "armv6m")
    for name in os.listdir(data_dir):
        src = os.path.join(data_dir, name)
        if os.path.isfile(src):
            _link_or_copy(src, os.path.join(staging, name))
    for mod in paths.NATMODS:
        shutil.copy(paths.natmod_path(arch, mod), staging)
    write_package(arch, staging)
    with open(os.path.join(staging, "qtrain.json"), "w") as f:
        json.dump(_script_args_to_json(script, args), f)


def _stream(cmd, view, cwd=None, env=None):
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    out = []
    for raw in p.stdout:
        text = raw.decode("utf-8", "replace")
        out.append(text)
        view.line(text)
    return p.wait(), "".join(out)


def run_target(target, data_dir, script, args=(), view=None, heapsize="16M"):
    """Run `script` on `target` with `data_dir` as its directory. -> (rc, output)."""
    view = view or ProgressView()
    script = os.path.abspath(script)
    data_dir = os.path.abspath(data_dir)
    if target == "unix":
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([paths.natmod_dir("x64"), paths.PYTHON_DIR, ".frozen"])
        if not os.path.exists(paths.UNIX_MICROPYTHON):
            raise SystemExit("run: no Unix port at %s: run `make setup`" % paths.UNIX_MICROPYTHON)
        cmd = [paths.UNIX_MICROPYTHON, "-X", "heapsize=" + heapsize, script] + list(args)
        return _stream(cmd, view, cwd=data_dir, env=env)
    staging = tempfile.mkdtemp(prefix="qtrain-mount-")
    try:
        stage_board_dir(target, data_dir, script, list(args), staging)
        mp = [sys.executable, "-m", "mpremote", "connect"]
        if target in paths.TARGET_ARCH:
            from .qemu import PtyEmulator
            with PtyEmulator(target) as emu:
                rc, out = _stream(mp + [emu.pty, "mount", staging, "run", script], view)
        else:
            rc, out = _stream(mp + [target, "mount", staging, "run", script], view)
        staged = ["qtrain.json"] + [mod + ".mpy" for mod in paths.NATMODS]
        for name in os.listdir(staging):  # what the board wrote
            src = os.path.join(staging, name)
            dst = os.path.join(data_dir, name)
            if not os.path.isfile(src) or os.path.islink(src) or name in staged:
                continue
            if os.path.exists(dst) and os.path.samefile(src, dst):
                continue        # a data file linked in, unchanged by the board
            shutil.copy(src, dst)
        return rc, out
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run_args(p):
    p.add_argument("--target", default="unix", help="unix, qemu-m0, qemu-m3, qemu-m4, or a serial port")
    p.add_argument("--data", default=".", help="directory the script runs in / the board mounts")
    p.add_argument("script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="--key value options for the script")


@cli.subcommand("run", "run a qtrain script on a target with a progress bar", _run_args)
def cmd_run(args):
    rc, _ = run_target(args.target, args.data, args.script, args.args)
    return rc


# ---- the demo ----------------------------------------------------------------

def _result(out, phase):
    for line in out.splitlines():
        if line.startswith("@result " + phase):
            return dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv)
    return {}


def _demo_args(p):
    p.add_argument("--out", default="out/demo")
    p.add_argument("--model", default="conv", choices=["conv", "mlp"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--head-epochs", type=int, default=25)
    p.add_argument("--limit", type=int, default=0, help="train on the first N samples only")


@cli.subcommand("demo", "train a VAE + heads on the Unix port, write accuracy and PNGs", _demo_args)
def cmd_demo(args):
    import numpy as np
    from . import plot
    t0 = time.time()
    out = os.path.abspath(args.out)
    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)
    cli.main(["prepare", "--data", os.path.join(paths.ROOT, "data", "mnist-subset"), "--out", data, "--seed", "0"])
    py = paths.PYTHON_DIR
    print("demo: training a %s VAE on %s for %d epoch(s) on the MicroPython Unix port" % (args.model, data, args.epochs))
    vae_args = ["--model", args.model, "--epochs", str(args.epochs), "--fresh", "true", "--test", "test.qtds",
                "--log_every", "500"]
    if args.limit:
        vae_args += ["--limit", str(args.limit)]
    rc, vout = run_target("unix", data, os.path.join(py, "train_vae.py"), vae_args)
    if rc:
        raise SystemExit("demo: train_vae.py failed (exit %d)" % rc)
    curves = []
    for line in vout.splitlines():
        m = PROGRESS_RE.match(line)
        if m and m.group(1) == "vae":
            kv = dict(x.split("=", 1) for x in m.group(2).split())
            ep = int(kv["epoch"])
            a, b = kv["step"].split("/")
            curves.append({"epoch": ep - 1 + int(a) / int(b), "elbo": float(kv["elbo"]),
                           "rec": float(kv["rec"]), "kl": float(kv["kl"])})
    results = {"model": args.model, "epochs": args.epochs, "vae": _result(vout, "vae")}
    for per in (10, 100):
        print("demo: head on %d labels per class (encoder frozen)" % per)
        rc, hout = run_target("unix", data, os.path.join(py, "train_head.py"),
                              ["--data", "train-labelled-%d.qtds" % per, "--epochs", str(args.head_epochs),
                               "--ckpt", "head-%d.qtc" % per])
        if rc:
            raise SystemExit("demo: train_head.py failed (exit %d)" % rc)
        results["head_%d" % per] = _result(hout, "head")
    rc, _ = run_target("unix", data, os.path.join(py, "sample.py"), ["--out", out, "--ascii", "false"])
    if rc:
        raise SystemExit("demo: sample.py failed (exit %d)" % rc)
    _pgm_to_png(os.path.join(out, "recon.pgm"), os.path.join(out, "reconstructions.png"))
    _pgm_to_png(os.path.join(out, "samples.pgm"), os.path.join(out, "samples.png"))
    lat = np.loadtxt(os.path.join(out, "latents.csv"), delimiter=",", skiprows=1)
    plot.save_latent(os.path.join(out, "latent.png"), lat[:, 1:], lat[:, 0].astype(int))
    if curves:
        keys = ("epoch", "elbo", "rec", "kl")
        plot.save_curves(os.path.join(out, "elbo.png"), {k: [c[k] for c in curves] for k in keys}, x="epoch",
                         title="training -ELBO per sample (nats)")
    results["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("\ndemo: done in %.0f s" % results["seconds"])
    print("  VAE (%s, %d epochs): train -ELBO %s, test -ELBO %s" % (
        args.model, args.epochs, results["vae"].get("elbo"), results["vae"].get("test_elbo")))
    for per in (10, 100):
        acc = float(results["head_%d" % per].get("test_acc", "nan"))
        print("  head, %3d labels/class: test accuracy %.1f %%" % (per, 100 * acc))
    print("  pictures: %s/{reconstructions,samples,latent,elbo}.png" % args.out)
    return 0


def _pgm_to_png(src, dst):
    import numpy as np
    from . import plot
    with open(src, "rb") as f:
        data = f.read()
    parts = data.split(b"\n", 3)
    w, h = (int(v) for v in parts[1].split())
    img = np.frombuffer(parts[3], dtype=np.uint8)[: w * h].reshape(h, w)
    plot.save_png(dst, np.kron(img, np.ones((2, 2), dtype=np.uint8)))


# ---- deploy onto a real board ---------------------------------------------------

def stage_install(board, out_dir, with_float=False):
    """lib/_qtrain.mpy + lib/qtrain/*.mpy for `board` (a boards/<name> folder),
    and qtrain.json with the board's defaults; lib/_qtrain_float.mpy too if
    with_float (only float32/mixed models need it, and flash is small: the
    Nano 33 BLE has 64 KB). -> the board config dict."""
    cfg_path = os.path.join(paths.ROOT, "boards", board, "board.json")
    if not os.path.exists(cfg_path):
        known = sorted(d for d in os.listdir(os.path.join(paths.ROOT, "boards"))
                       if os.path.exists(os.path.join(paths.ROOT, "boards", d, "board.json")))
        raise SystemExit("deploy: unknown board %r (known: %s)" % (board, ", ".join(known)))
    with open(cfg_path) as f:
        cfg = json.load(f)
    arch = cfg["arch"]
    lib = os.path.join(out_dir, "lib")
    os.makedirs(lib, exist_ok=True)
    for mod in paths.NATMODS if with_float else (paths.NATMOD,):
        if not os.path.exists(paths.natmod_path(arch, mod)):
            raise SystemExit("deploy: %s is missing: run `make dist`" % paths.natmod_path(arch, mod))
        shutil.copy(paths.natmod_path(arch, mod), lib)
    write_package(arch, lib)
    with open(os.path.join(out_dir, "qtrain.json"), "w") as f:
        json.dump(cfg.get("defaults", {}), f, indent=1)
    return cfg


def _deploy_args(p):
    p.add_argument("--board", required=True, help="a folder under boards/ (pico, nano33ble, ...)")
    p.add_argument("--port", help="serial port of the board (omit to only stage the files)")
    p.add_argument("--stage", default="out/deploy", help="where to put the files first")
    p.add_argument("--float", action="store_true",
                   help="also install _qtrain_float.mpy (float32/mixed modes; not needed for uint8)")


@cli.subcommand("deploy", "install _qtrain.mpy, the qtrain package and defaults on a board", _deploy_args)
def cmd_deploy(args):
    stage = os.path.join(args.stage, args.board)
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    cfg = stage_install(args.board, stage, with_float=args.float)
    print("deploy: staged %s (arch %s) in %s" % (args.board, cfg["arch"], stage))
    if not args.port:
        print("deploy: no --port given; copy with: mpremote connect PORT cp -r %s/lib %s/qtrain.json :" % (stage, stage))
        return 0
    cmd = [sys.executable, "-m", "mpremote", "connect", args.port, "cp", "-r",
           os.path.join(stage, "lib"), os.path.join(stage, "qtrain.json"), ":"]
    print("deploy: " + " ".join(cmd[2:]))
    return subprocess.call(cmd)
