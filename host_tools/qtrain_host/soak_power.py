"""Power loss (issue 6 item 3): kill training at random moments, restart it,
and check that no checkpoint is ever corrupt or lost and that every restart
resumes at the right sample.

    python -m qtrain_host.soak_power [--kills 200] [--seed 1]          # Unix port, SIGKILL
    python -m qtrain_host.soak_power --board qemu-m4 [--kills 200]      # emulated board

A chain is one training run (python/train_vae.py's trainer: a small MLP VAE
on the shipped subset, 2 epochs of --samples samples, a checkpoint every
--every samples) started again after each kill until it finishes by itself.
After every kill the files it leaves are checked:
  - `vae.qtc` and `vae.qtc.bak` (committed files) are CRC-valid if present
    (a `.tmp` may be partial: that is the write the kill interrupted);
  - the newest valid checkpoint is at least as new as the last one the run
    reported saved (`@saved` after save() returned) and as the one it
    resumed from: nothing committed is lost;
and the restart must print that it resumes from exactly that checkpoint's
(epoch, sample).  When a chain finishes, its final checkpoint must be
byte-identical to an uninterrupted run's: no sample was trained twice or
skipped, and the optimizer/generator states resumed bit-exactly.

Unix port: the process gets SIGKILL after a random delay (uniform over the
run's length, so a part lands inside checkpoint writes: counted by the
`.tmp` left behind).  Emulated board: the checkpoint is on the board's
littlefs RAM disk; at a random moment the emulator is stopped (QMP `stop`,
an instruction boundary), the RAM disk is saved (`pmemsave`, the "flash"
at the moment of power loss) and QEMU is killed; the next boot loads that
image back, mounts it, and checks and resumes on the board itself.
Exit status 1 on any corrupt/lost checkpoint, wrong resume or final mismatch.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from . import paths
from .cli_run import _script_args_to_json

sys.path.insert(0, paths.PYTHON_DIR)
from qtrain import checkpoint  # noqa: E402  (the package's own module, on CPython)

# Runs the trainer exactly as python/train_vae.py does, and reports each
# completed save.
WRAPPER = """\
from qtrain import checkpoint, config, trainer
_save = checkpoint.save
def save(path, state, seq=0, items=None):
    _save(path, state, seq, items)
    print('@saved', seq, state['epoch'], state['pos'])
checkpoint.save = save
cfg = config.load(config.argv(), trainer.VAE_DEFAULTS, 'train_vae')
trainer.train_vae(cfg)
print('@finished')
"""

RESUME_RE = re.compile(r"resuming from \S+ at epoch (\d+), sample (\d+)")


def train_args(samples, every, hidden):
    return ["--data", "train.qtds", "--model", "mlp", "--hidden", str(hidden), "--latent", "4",
            "--epochs", "2", "--limit", str(samples), "--ckpt", "vae.qtc", "--ckpt_every", str(every),
            "--log_every", "100000", "--seed", "3"]


class Stats:
    def __init__(self):
        self.kills = 0
        self.during_write = 0      # a .tmp was left behind
        self.between_renames = 0   # .tmp complete and valid, not yet renamed
        self.restarts = 0
        self.resumed_ok = 0
        self.fresh_starts = 0
        self.corrupt = 0
        self.lost = 0
        self.wrong_resume = 0
        self.chains = 0
        self.chains_exact = 0
        self.problems = []

    def fail(self, kind, msg):
        setattr(self, kind, getattr(self, kind) + 1)
        self.problems.append(msg)

    def line(self, where):
        return ("@result power target=%s kills=%d during_write=%d tmp_complete=%d restarts=%d resumed_ok=%d "
                "fresh_starts=%d corrupt=%d lost=%d wrong_resume=%d chains=%d chains_bit_exact=%d"
                % (where, self.kills, self.during_write, self.between_renames, self.restarts, self.resumed_ok,
                   self.fresh_starts, self.corrupt, self.lost, self.wrong_resume, self.chains,
                   self.chains_exact))


def inspect(files, base="vae.qtc"):
    """files: {name: bytes} of what is on disk.  -> dict: per-file seq (or
    None if invalid), newest valid (seq, epoch, pos) or None."""
    tmp = tempfile.mkdtemp(prefix="qtrain-power-")
    try:
        out = {"files": {}, "newest": None}
        for name, data in files.items():
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            try:
                out["files"][name] = checkpoint.verify(p)
            except checkpoint.CheckpointError:
                out["files"][name] = None
        p = os.path.join(tmp, base)
        best, seq = checkpoint._latest(p)
        if best is not None:
            st, _ = checkpoint.load(p)
            out["newest"] = (seq, st["epoch"], st["pos"])
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_after_kill(stats, disk, last_good, tag):
    """Checks on the files a kill left; returns the newest valid (seq, epoch, pos)."""
    stats.kills += 1
    files = disk["files"]
    if "vae.qtc.tmp" in files:
        stats.during_write += 1
        if files["vae.qtc.tmp"] is not None:
            stats.between_renames += 1
    for name in ("vae.qtc", "vae.qtc.bak"):
        if name in files and files[name] is None:
            stats.fail("corrupt", "%s: %s is corrupt" % (tag, name))
    newest = disk["newest"]
    have = newest[0] if newest else -1
    if have < last_good:
        stats.fail("lost", "%s: newest valid checkpoint has seq %d, but seq %d was saved/resumed from"
                   % (tag, have, last_good))
    return newest


def check_resume(stats, output, newest, tag):
    m = RESUME_RE.search(output)
    stats.restarts += 1
    if newest is None:
        if m:
            stats.fail("wrong_resume", "%s: resumed (%s) without a valid checkpoint" % (tag, m.group(0)))
        else:
            stats.fresh_starts += 1
        return
    if not m:
        # The run may have been killed before it got to print the line.
        if "@saved" in output or "@finished" in output:
            stats.fail("wrong_resume", "%s: a valid checkpoint %r existed but the run started fresh"
                       % (tag, newest))
        return
    got = (int(m.group(1)) - 1, int(m.group(2)))
    if got != (newest[1], newest[2]):
        stats.fail("wrong_resume", "%s: resumed at (epoch, sample) %r, newest valid checkpoint is %r"
                   % (tag, got, newest[1:]))
    else:
        stats.resumed_ok += 1


def saved_seqs(output):
    return [int(v) for v in re.findall(r"^@saved (\d+)", output, re.M)]


# ---- Unix port ---------------------------------------------------------------------

def _unix_cmd(args):
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([paths.natmod_dir("x64"), paths.PYTHON_DIR, ".frozen"])
    return [paths.UNIX_MICROPYTHON, "-X", "heapsize=8M", "main.py"] + args, env


def _read_disk(d):
    out = {}
    for name in ("vae.qtc", "vae.qtc.bak", "vae.qtc.tmp"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                out[name] = f.read()
    return out


def _setup_dir(d, stream):
    os.makedirs(d, exist_ok=True)
    shutil.copy(stream, os.path.join(d, "train.qtds"))
    with open(os.path.join(d, "main.py"), "w") as f:
        f.write(WRAPPER)


def reference_unix(stream, args, work):
    d = os.path.join(work, "reference")
    _setup_dir(d, stream)
    cmd, env = _unix_cmd(args)
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    dt = time.monotonic() - t0
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0 or "@finished" not in out:
        raise RuntimeError("soak_power: the uninterrupted reference run failed:\n" + out[-3000:])
    with open(os.path.join(d, "vae.qtc"), "rb") as f:
        return f.read(), dt


def run_unix(kills=200, seed=1, samples=150, every=3, hidden=48, log=print, out_root=None):
    from .soak_long import prepare_stream
    stream, _ = prepare_stream("", log=log, out_root=out_root)  # the shipped subset
    rnd = random.Random(seed)
    args = train_args(samples, every, hidden)
    stats = Stats()
    work = tempfile.mkdtemp(prefix="qtrain-soak-power-")
    try:
        ref, dt = reference_unix(stream, args, work)
        log("soak_power: uninterrupted run %.2f s; killing at uniform random moments in [0, %.2f s]"
            % (dt, dt))
        cmd, env = _unix_cmd(args)
        chain = 0
        while stats.kills < kills:
            chain += 1
            d = os.path.join(work, "chain%d" % chain)
            _setup_dir(d, stream)
            last_good = -1
            newest = None
            while True:
                tag = "unix chain %d restart %d" % (chain, stats.restarts)
                p = subprocess.Popen(cmd, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                killed = False
                if stats.kills < kills:
                    try:
                        p.wait(timeout=rnd.uniform(0, dt))
                    except subprocess.TimeoutExpired:
                        p.send_signal(signal.SIGKILL)
                        killed = True
                out = p.communicate()[0].decode("utf-8", "replace")
                check_resume(stats, out, newest, tag)
                m = RESUME_RE.search(out)
                if m and newest:
                    last_good = max(last_good, newest[0])
                seqs = saved_seqs(out)
                if seqs:
                    last_good = max(last_good, max(seqs))
                if killed:
                    newest = check_after_kill(stats, inspect(_read_disk(d)), last_good, tag)
                    continue
                if p.returncode != 0 or "@finished" not in out:
                    stats.problems.append("%s: run failed (exit %d):\n%s" % (tag, p.returncode, out[-2000:]))
                    break
                stats.chains += 1
                final = _read_disk(d).get("vae.qtc")   # None: missing (a cut between the renames, unfixed)
                if final == ref:
                    stats.chains_exact += 1
                else:
                    stats.problems.append("%s: final checkpoint differs from the uninterrupted run's" % tag)
                break
            shutil.rmtree(d, ignore_errors=True)
            log("soak_power: chain %d done, %d kills so far" % (chain, stats.kills))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return stats


# ---- emulated board: stop, save the RAM disk, kill ------------------------------------

BOARD_SCRIPT = """
import os
from qtrain import checkpoint
def _seq(n):
    try:
        return checkpoint.verify(n)
    except checkpoint.CheckpointError:
        return -1
    except OSError:
        return -2
files = os.listdir()
for n in ('vae.qtc', 'vae.qtc.bak', 'vae.qtc.tmp'):
    if n in files:
        print('@file', n, _seq(n))
try:
    st = checkpoint.peek('vae.qtc')
    print('@newest', checkpoint._latest('vae.qtc')[1], st['epoch'], st['pos'])
except checkpoint.CheckpointError:
    print('@newest none')
""" + WRAPPER + """
import binascii, gc
gc.collect()
c = 0
b = bytearray(512)
with open('vae.qtc', 'rb') as f:
    while True:
        n = f.readinto(b)
        if not n:
            break
        c = binascii.crc32(memoryview(b)[:n], c)
print('@crc', c)
"""


class _QMP:
    def __init__(self, path, deadline):
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        self._read()                       # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            msg = json.loads(self.f.readline())
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.f.flush()
        r = self._read()
        if "error" in r:
            raise RuntimeError("QMP %s: %s" % (name, r["error"]))
        return r

    def close(self):
        self.s.close()


def _board_episode(board, work, image, script, files, kill_after, timeout=300):
    """Boot the board with the RAM disk `image` (None: fresh), run `script`;
    after `kill_after` seconds of the script (None: let it finish) stop the
    board and save its RAM disk to `image`.  -> (output, finished)."""
    from . import qemu
    cfg = qemu.board_config(board)
    q = cfg["qemu"]
    rom = qemu.build_romfs(qemu._collect_files(board, files, work))
    rom_path = os.path.join(work, "romfs.img")
    with open(rom_path, "wb") as f:
        f.write(rom)
    sock = os.path.join(work, "qmp.sock")
    if os.path.exists(sock):
        os.remove(sock)
    extra = ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (rom_path, int(q["romfs_addr"], 0)),
             "-qmp", "unix:%s,server=on,wait=off" % sock]
    if os.path.exists(image):
        extra += ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (image, int(q["ramfs_addr"], 0))]
    data = [n for n in files if not n.endswith((".py", ".mpy"))]
    deadline = time.monotonic() + timeout
    with qemu.Emulator(board, icount=False, extra=extra) as emu:
        qmp = _QMP(sock, time.monotonic() + 20)
        try:
            emu.enter_raw_repl(deadline)
            out, err = emu.exec_raw(qemu._setup_code(cfg, len(rom), data), deadline)
            if err:
                raise RuntimeError("board setup failed: %r" % (out + err))
            code = script.encode()
            if not emu._raw_paste(code, deadline):
                emu.write(code + b"\x04")
                emu.read_until(b"OK", deadline)
            if kill_after is None:
                out = emu.read_until(b"\x04", deadline)[:-1]
                err = emu.read_until(b"\x04", deadline)[:-1]
                finished = True
            else:
                try:
                    out = emu.read_until(b"\x04", time.monotonic() + kill_after)[:-1]
                    err = emu.read_until(b"\x04", deadline)[:-1]
                    finished = True     # ended before the kill: not a kill
                except TimeoutError as e:
                    out, err, finished = e.partial, b"", False
            qmp.cmd("stop")
            qmp.cmd("pmemsave", val=int(q["ramfs_addr"], 0), size=q["ramfs_bytes"], filename=image)
        finally:
            qmp.close()
    return (out + err).decode("utf-8", "replace"), finished, bool(err)


def _board_disk(output):
    """The checks the board printed at boot -> inspect()-style dict."""
    files = {m.group(1): (int(m.group(2)) if int(m.group(2)) >= 0 else None)
             for m in re.finditer(r"^@file (\S+) (-?\d+)", output, re.M)}
    if "@newest" not in output:
        return None
    m = re.search(r"^@newest (\d+) (\d+) (\d+)", output, re.M)
    return {"files": files, "newest": tuple(int(v) for v in m.groups()) if m else None}


def run_board(board="qemu-m4", kills=20, seed=1, samples=40, every=2, hidden=16, log=print):
    from .soak_long import prepare_stream
    stream, _ = prepare_stream("", log=log)
    rnd = random.Random(seed)
    script = BOARD_SCRIPT
    # Only the samples the run uses: the board's ROMFS and RAM disk are small.
    from . import stream as hstream
    d = hstream.read(stream)
    files = {"train.qtds": hstream.encode(d.images[:samples], d.labels[:samples], d.header.classes,
                                          "soak/power"),
             # a board has no command line: the options go in qtrain.json (as `qtrain_host run` does)
             "qtrain.json": json.dumps(_script_args_to_json("train_vae.py", train_args(samples, every, hidden)))
             .encode()}
    stats = Stats()
    work = tempfile.mkdtemp(prefix="qtrain-soak-power-board-")
    try:
        image = os.path.join(work, "ramdisk.img")
        t0 = time.monotonic()
        ref_out, _, err = _board_episode(board, work, image, script, files, None)
        dt = time.monotonic() - t0
        ref_crc = _crc_line(ref_out)
        if err or "@finished" not in ref_out or ref_crc is None:
            raise RuntimeError("soak_power: the uninterrupted run on %s failed:\n%s" % (board, ref_out[-3000:]))
        log("soak_power: uninterrupted run on %s: %.1f s; killing at random moments in [0.2, %.1f s]"
            % (board, dt, dt))
        chain = 0
        while stats.kills < kills:
            chain += 1
            os.remove(image)
            last_good = -1
            pending = None      # tag of a kill whose on-disk state the next boot reports
            while True:
                tag = "%s chain %d restart %d" % (board, chain, stats.restarts)
                kill_after = rnd.uniform(0.2, dt) if stats.kills < kills else None
                out, finished, err = _board_episode(board, work, image, script, files, kill_after)
                disk = _board_disk(out)
                if disk is None:
                    continue    # stopped before the board reported its files: same state again
                if pending:
                    check_after_kill(stats, disk, last_good, pending)
                    pending = None
                check_resume(stats, out, disk["newest"], tag)
                if RESUME_RE.search(out) and disk["newest"]:
                    last_good = max(last_good, disk["newest"][0])
                seqs = saved_seqs(out)
                if seqs:
                    last_good = max(last_good, max(seqs))
                if not finished:
                    pending = tag
                    continue
                if err or "@finished" not in out:
                    stats.problems.append("%s: run failed:\n%s" % (tag, out[-2000:]))
                    break
                stats.chains += 1
                if _crc_line(out) == ref_crc:
                    stats.chains_exact += 1
                else:
                    stats.problems.append("%s: final checkpoint CRC %s differs from the uninterrupted run's %s"
                                          % (tag, _crc_line(out), ref_crc))
                break
            log("soak_power: %s chain %d done, %d kills so far" % (board, chain, stats.kills))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return stats


def _crc_line(out):
    m = re.search(r"^@crc (\d+)", out, re.M)
    return m.group(1) if m else None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.soak_power", description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="unix", help="unix (SIGKILL) or an emulated board (qemu-m4)")
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.board == "unix":
        stats = run_unix(a.kills, a.seed)
    else:
        stats = run_board(a.board, a.kills, a.seed)
    for p in stats.problems:
        print("soak_power: FAIL: " + p)
    print(stats.line(a.board))
    return 1 if stats.problems else 0


if __name__ == "__main__":
    sys.exit(main())
