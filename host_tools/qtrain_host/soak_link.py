"""Lost `mpremote mount` link (issue 6 item 4): training run the user's way
on an emulated board, `mpremote connect <pty> mount <dir> run train_vae.py`,
loses its host in the middle of the run (the mpremote process is killed),
then the same command is run again.

    python -m qtrain_host.soak_link [--cuts 10] [--board qemu-m4] [--seed 1]

Each cut checks:
  - the board notices (its reads of the mounted files time out instead of
    waiting for ever) and prints the clear error, LinkLostError naming the
    file and the sample, and where it saved the checkpoint.  The board's
    output after the kill is read from the emulator's pty, which the
    harness keeps open (so QEMU keeps delivering it, as a USB-serial
    adapter would to a terminal opened afterwards);
  - that checkpoint is at the last completed sample: the rerun (the same
    `mpremote ... mount ... run` command, a new process) prints that it
    resumes at exactly the (epoch, sample) the board reported saving;
  - the rerun finishes, and its final checkpoint (in the mounted directory)
    is CRC-valid and byte-identical to an uninterrupted run's: no sample
    was trained twice or skipped and the optimizer/generator states came
    back bit-exactly.
Exit status 1 on any failed check.

The model is the MLP VAE, 4 hidden units by default (--hidden): the soak
checks the link protocol, not the model, and each cut retrains the run
twice (the cut run and its rerun) under -icount, so the smallest model
keeps a cut to minutes.  The boards' own default, 16 hidden units, also
fits the 160 KB heap next to the package and the native module loaded
over the mount (tests/test_board_fit.py, the memory block of
docs/BENCHMARKS.md); `--hidden 16` runs the soak with it.
"""
import argparse
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

from . import paths
from .cli_run import stage_board_dir

sys.path.insert(0, paths.PYTHON_DIR)
from qtrain import checkpoint  # noqa: E402  (the package's own module, on CPython)

SCRIPT = os.path.join(paths.PYTHON_DIR, "train_vae.py")
SAVED_RE = re.compile(r"saved a checkpoint at epoch (\d+), sample (\d+) on the board \((\S+)\)")
RESUME_RE = re.compile(r"resuming from \S+ at epoch (\d+), sample (\d+)")
START_RE = re.compile(r"^@start vae", re.M)
LOST_RE = re.compile(r"LinkLostError: (\S+): the link to the host .*was lost")


def train_args(samples, epochs=2, every=5, hidden=4):
    return ["--data", "train.qtds", "--model", "mlp", "--hidden", str(hidden), "--latent", "2",
            "--epochs", str(epochs), "--ckpt", "vae.qtc", "--ckpt_every", str(every),
            "--log_every", "1", "--seed", "3", "--limit", str(samples)]


def stage(board, work, samples, args):
    """A directory to mount: the first `samples` samples of the shipped
    subset as train.qtds, the native modules, the package, qtrain.json."""
    from . import stream
    from .soak_long import prepare_stream
    src, _ = prepare_stream("")
    data_dir = tempfile.mkdtemp(prefix="data-", dir=work)
    stream.write(os.path.join(data_dir, "train.qtds"), stream.read(src).images[:samples])
    d = tempfile.mkdtemp(prefix="stage-", dir=work)
    stage_board_dir(board, data_dir, SCRIPT, args, d)   # as `qtrain_host run` stages it
    return d


def _mpremote(emu, staging):
    return subprocess.Popen([sys.executable, "-m", "mpremote", "connect", emu.pty, "mount", staging,
                             "run", SCRIPT], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def run_whole(emu, staging, timeout=300):
    """The command run to its end. -> output."""
    p = _mpremote(emu, staging)
    try:
        out = p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0]
    return out.decode("utf-8", "replace")


def run_and_cut(emu, staging, delay, quiet=90.0, timeout=300):
    """Start the command, kill mpremote `delay` seconds after the board
    printed @start (its training loop), then read what the board prints
    from the held pty until `quiet` seconds pass without output (or the
    board is back at its prompt).  The board's timeouts count emulated time,
    which runs several times slower than real time under -icount: hence the
    long `quiet`.
    -> (host output, board output after the cut, ended): ended is True if
    the run finished before the cut."""
    p = _mpremote(emu, staging)
    fd = p.stdout.fileno()
    os.set_blocking(fd, False)
    out = b""
    t_start = None
    deadline = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.02)[0]:
            out += os.read(fd, 65536) or b""
        if t_start is None and START_RE.search(out.decode("utf-8", "replace")):
            t_start = time.monotonic()
        if t_start is not None and time.monotonic() >= t_start + delay:
            break
    ended = p.poll() is not None
    p.kill()
    out += p.communicate()[0] or b""
    after = b""
    if not ended:
        last = time.monotonic()
        while time.monotonic() < last + quiet:
            if select.select([emu.hold_fd()], [], [], 0.2)[0]:
                after += os.read(emu.hold_fd(), 65536)
                last = time.monotonic()
                if re.search(rb"\n>\s*$", after):
                    break  # back at the raw REPL's prompt: the run has ended
    return out.decode("utf-8", "replace"), after.decode("utf-8", "replace"), ended


class _Emulator:
    """qemu.PtyEmulator plus access to the pty it holds open."""

    def __init__(self, board):
        from .qemu import PtyEmulator
        self.emu = PtyEmulator(board)
        self.pty = self.emu.pty

    def hold_fd(self):
        return self.emu._hold

    def close(self):
        self.emu.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def cut_once(board, staging, delay, reference=None, log=print):
    """One cut and one rerun in a fresh emulator.  -> (problems, facts)."""
    problems = []
    facts = {}
    for name in os.listdir(staging):
        if name.startswith("vae.qtc"):
            os.remove(os.path.join(staging, name))
    with _Emulator(board) as emu:
        out, after, ended = run_and_cut(emu, staging, delay)
        facts["ended_before_cut"] = ended
        if ended:
            return problems, facts
        m = SAVED_RE.search(after)
        lost = LOST_RE.search(after)
        if not lost:
            problems.append("no LinkLostError on the board after the cut; board printed:\n" + after[-2000:])
        if not m:
            problems.append("the board did not report a saved checkpoint; it printed:\n" + after[-2000:])
            return problems, facts
        facts["saved"] = (int(m.group(1)), int(m.group(2)))
        facts["where"] = m.group(3)
        facts["lost_file"] = lost.group(1) if lost else None
        facts["during_save"] = "while writing the checkpoint" in after
        rerun = run_whole(emu, staging)
        r = RESUME_RE.search(rerun)
        if not r:
            problems.append("the rerun did not resume:\n" + rerun[-2000:])
        elif (int(r.group(1)) - 1, int(r.group(2))) != facts["saved"]:
            problems.append("the rerun resumed at (epoch, sample) (%d, %s), the board saved %r"
                            % (int(r.group(1)) - 1, r.group(2), facts["saved"]))
        if "@result vae" not in rerun:
            problems.append("the rerun did not finish:\n" + rerun[-2000:])
        final = os.path.join(staging, "vae.qtc")
        try:
            facts["final_seq"] = checkpoint.verify(final)
        except checkpoint.CheckpointError as e:
            problems.append("final checkpoint: %s" % e)
        if reference is not None and os.path.exists(final):
            with open(final, "rb") as f:
                facts["bit_exact"] = f.read() == reference
            if not facts["bit_exact"]:
                problems.append("the final checkpoint differs from the uninterrupted run's")
    return problems, facts


def reference_run(board, staging, log=print):
    """An uninterrupted run: -> (final checkpoint bytes, seconds of training)."""
    with _Emulator(board) as emu:
        t0 = time.monotonic()
        p = _mpremote(emu, staging)
        out = b""
        t_start = None
        for line in p.stdout:
            out += line
            if t_start is None and line.startswith(b"@start vae"):
                t_start = time.monotonic()
        p.wait()
        t_end = time.monotonic()
    text = out.decode("utf-8", "replace")
    if p.returncode != 0 or "@result vae" not in text:
        raise RuntimeError("soak_link: the uninterrupted run failed:\n" + text[-3000:])
    log("soak_link: uninterrupted run %.1f s, training %.1f s" % (t_end - t0, t_end - (t_start or t0)))
    with open(os.path.join(staging, "vae.qtc"), "rb") as f:
        return f.read(), t_end - (t_start or t0)


def soak(cuts=10, board="qemu-m4", seed=1, samples=20, hidden=4, log=print):
    rnd = random.Random(seed)
    work = tempfile.mkdtemp(prefix="qtrain-soak-link-")
    stats = {"cuts": 0, "ended_first": 0, "during_save": 0, "resumed_ok": 0, "bit_exact": 0, "problems": []}
    try:
        staging = stage(board, work, samples, train_args(samples, hidden=hidden))
        ref, train_s = reference_run(board, staging, log)
        while stats["cuts"] < cuts:
            delay = rnd.uniform(0, train_s)
            problems, facts = cut_once(board, staging, delay, reference=ref, log=log)
            if facts.get("ended_before_cut"):
                stats["ended_first"] += 1
                continue
            stats["cuts"] += 1
            stats["during_save"] += bool(facts.get("during_save"))
            stats["resumed_ok"] += not any("resume" in p for p in problems)
            stats["bit_exact"] += bool(facts.get("bit_exact"))
            stats["problems"] += problems
            log("soak_link: cut %d at %.2f s: saved at %r%s, %s" % (
                stats["cuts"], delay, facts.get("saved"), " (during a save)" if facts.get("during_save") else "",
                "ok" if not problems else "%d problems" % len(problems)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.soak_link", description=__doc__.split("\n")[0])
    ap.add_argument("--cuts", type=int, default=10)
    ap.add_argument("--board", default="qemu-m4")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=4, help="hidden units of the MLP VAE (the boards' default is 16)")
    a = ap.parse_args(argv)
    s = soak(a.cuts, a.board, a.seed, a.samples, a.hidden)
    for p in s["problems"]:
        print("PROBLEM:", p)
    print("@result link board=%s hidden=%d cuts=%d during_save=%d resumed_ok=%d bit_exact=%d problems=%d"
          % (a.board, a.hidden, s["cuts"], s["during_save"], s["resumed_ok"], s["bit_exact"], len(s["problems"])))
    return 1 if s["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())


# ---- the same protocol on the Unix port (quick, in make test) ------------------------

UNIX_MAIN = """
import sys
from qtrain import checkpoint, config, trainer
checkpoint.BOARD_ROOT = sys.argv.pop(1)  # not the machine's /
__mount()
cfg = config.load(config.argv(), trainer.VAE_DEFAULTS, 'train_vae')
trainer.train_vae(cfg)
"""


class _ExactReader:
    """read(n) that returns n bytes (or raises EOFError), as mpremote's host
    side expects from a serial port with a timeout."""

    def __init__(self, raw):
        self.raw = raw

    def read(self, n):
        out = b""
        while len(out) < n:
            b = self.raw.read(n - len(out))
            if not b:
                raise EOFError("the board's output ended")
            out += b
        return out


def unix_mount_run(mount, board_root, args, answer=None, timeout=120):
    """Run train_vae on the Unix port behind mpremote's own mount code: the
    board side is mpremote's fs_hook_code (stdin/stdout are the "serial
    line"), the host side mpremote's PyboardCommand serving `mount`.  The
    host answers the first `answer` requests (None: all), then goes silent
    as an unplugged host would, while the board's output is still read.
    -> (exit status, output, kinds of the requests answered in order:
    mpremote's CMD_* numbers, 6 read, 8 write ...)."""
    from mpremote.transport_serial import PyboardCommand, fs_hook_code
    main = os.path.join(board_root, "main.py")
    with open(main, "w") as f:
        f.write(fs_hook_code + UNIX_MAIN)
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([paths.natmod_dir("x64"), paths.PYTHON_DIR])
    p = subprocess.Popen([paths.UNIX_MICROPYTHON, "-X", "heapsize=8M", main, board_root + "/"] + list(args),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0, env=env)
    fin = _ExactReader(p.stdout)
    cmd = PyboardCommand(fin, p.stdin, os.path.abspath(mount))
    out = bytearray()
    answered = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            c = p.stdout.read(1)
            if not c:
                break
            if c == b"\x18" and (answer is None or len(answered) < answer):
                kind = fin.read(1)[0]
                p.stdin.write(b"\x18")
                PyboardCommand.cmd_table[kind](cmd)
                answered.append(kind)
            else:
                out += c
        else:
            p.kill()
    except EOFError:
        pass
    p.wait()
    return p.returncode, out.decode("utf-8", "replace"), answered
