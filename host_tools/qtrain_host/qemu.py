"""Run MicroPython scripts on the emulated boards (qemu-system-arm).

Boards (boards/<name>/board.json): qemu-m0 (microbit, Cortex-M0, armv6m),
qemu-m3 (mps2-an385, armv7m), qemu-m4 (mps2-an386, Cortex-M4F, armv7emsp).
Firmware: build/firmware/<board>/firmware.elf (`make firmware`).

run(board, script, files=None, timeout=300, echo=False, icount=True)
    One fresh emulator per call.  The UART is QEMU's stdio chardev on pipes.
    `_qtrain.mpy` and `_qtrain_float.mpy` for the board's arch (in ROMFS
    they cost no heap until imported), the `qtrain` package (python/,
    precompiled with mpy-cross) and `files` are put into a ROMFS image that
    QEMU loads *outside* the MicroPython heap (like a flash filesystem on a
    real board), mounted read-only at /rom, first on sys.path.  The cwd, /,
    is a writable littlefs on a RAM disk also outside the heap (addresses and
    sizes in boards/<board>/board.json), holding a copy of the data files
    (`files` not ending in .py/.mpy).  The script runs through the raw REPL.
    Returns RunResult:
    returncode 0, or 1 if the script raised (traceback in output), -9 on
    timeout (the emulator is killed) and 2 if the firmware crashed.

Instruction counts: with icount=True (default) QEMU runs with
`-icount shift=0`, 1 ns of virtual time per instruction.  The firmware's
`icount` module reads it: `icount.start()` ... `icount.read()` gives the
instructions executed in between (resolution icount.RESOLUTION: 63 on qemu-m0,
40 on qemu-m3/m4).  A script reports a region by printing a line
    @icount <region> <count>
which is collected into RunResult.icount {region: count}.  Do not print or
read stdin inside a measured region (serial I/O waits on the host).

CLI (the real user path, used by `make run-qemu`):
    python -m qtrain_host.qemu mpremote qemu-m4 script.py [--mount DIR]
starts the board with its UART on a pty and runs
`mpremote connect <pty> mount DIR run script.py`, then stops the emulator.
"""
import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import paths
from .runner import RunResult, TargetUnavailable

QEMU = os.environ.get("QTRAIN_QEMU", "qemu-system-arm")
BOARDS_DIR = os.path.join(paths.ROOT, "boards")
# "@icount <region> <count>", optionally followed by more fields (ignored).
ICOUNT_RE = re.compile(r"^@icount[ \t]+(\S+)[ \t]+(-?\d+)(?=\s|$)", re.M)


def board_config(board):
    path = os.path.join(BOARDS_DIR, board, "board.json")
    if not os.path.exists(path):
        raise TargetUnavailable("unknown board %r (no %s)" % (board, path))
    with open(path) as f:
        cfg = json.load(f)
    if cfg.get("kind") != "qemu":
        raise TargetUnavailable("board %r is not an emulated board" % board)
    return cfg


def boards_arg(text):
    """The emulated boards a --boards option names, as a tuple: names
    separated by spaces and/or commas ("qemu-m0 qemu-m4", "qemu-m0,qemu-m4").
    An argparse type: an empty list or a name that is not an emulated board
    under boards/ is a usage error that names it, before any emulator starts."""
    names = tuple(n for n in re.split(r"[\s,]+", text) if n)
    if not names:
        raise argparse.ArgumentTypeError("no board named in %r" % (text,))
    for name in names:
        try:
            board_config(name)
        except TargetUnavailable as e:
            raise argparse.ArgumentTypeError(str(e))
    return names


def qemu_command(board, serial="stdio", icount=True, extra=()):
    """The qemu-system-arm command line for `board`.

    serial: "stdio" (UART on QEMU's stdin/stdout) or "pty"."""
    cfg = board_config(board)
    fw = paths.firmware_path(board)
    if not os.path.exists(fw):
        raise TargetUnavailable("no firmware at %s: run `make firmware`" % fw)
    cmd = [QEMU, "-machine", cfg["qemu"]["machine"]] + list(cfg["qemu"]["args"])
    cmd += ["-display", "none", "-monitor", "none", "-semihosting", "-no-reboot"]
    if serial == "stdio":
        cmd += ["-chardev", "stdio,id=uart0,signal=off", "-serial", "chardev:uart0"]
    else:
        cmd += ["-serial", serial]
    if icount:
        cmd += ["-icount", "shift=0"]
    cmd += ["-kernel", fw] + list(extra)
    return cmd


# ---- ROMFS with the module, the package and the caller's files --------------

def _mpy_cross():
    mpy_dir = os.environ.get("MPY_DIR") or os.path.join(paths.BUILD, "micropython")
    exe = os.path.join(mpy_dir, "mpy-cross", "build", "mpy-cross")
    return exe if os.path.exists(exe) else shutil.which("mpy-cross")


_compiled = {}  # (path, mtime, size, arch) -> .mpy bytes or None


def _compile(src_path, arch, tmpdir, name=None):
    """Precompile a .py to .mpy (bytecode then stays in ROM, not the heap).
    name: the source name the .mpy carries (its tracebacks' file name, a
    string the board interns into its heap on import); default src_path."""
    st = os.stat(src_path)
    key = (src_path, st.st_mtime_ns, st.st_size, arch, name)
    if key not in _compiled:
        _compiled[key] = _compile1(src_path, arch, tmpdir, name)
    return _compiled[key]


def _compile1(src_path, arch, tmpdir, name=None):
    exe = _mpy_cross()
    if not exe:
        return None
    out = os.path.join(tmpdir, "c.mpy")
    p = subprocess.run([exe, "-march=" + arch, "-s", name or src_path, "-o", out, src_path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        return None
    with open(out, "rb") as f:
        return f.read()


def _package_files(arch, tmpdir):
    """python/<pkg>/**.py (packages only) as {relative name: bytes}."""
    out = {}
    base = paths.PYTHON_DIR
    if not os.path.isdir(base):
        return out
    for pkg in sorted(os.listdir(base)):
        if not os.path.exists(os.path.join(base, pkg, "__init__.py")):
            continue
        for dirpath, dirnames, filenames in os.walk(os.path.join(base, pkg)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for fn in sorted(filenames):
                if not fn.endswith(".py"):
                    continue
                src = os.path.join(dirpath, fn)
                rel = os.path.relpath(src, base).replace(os.sep, "/")
                # The package's name for the file (qtrain/layers.py), not
                # this checkout's absolute path: the board's heap would
                # otherwise depend on where the repository was cloned (the
                # Pico heap gate passed in one clone and failed in another)
                # and every deployed .mpy would carry the builder's path.
                data = _compile(src, arch, tmpdir, rel)
                if data is None:
                    with open(src, "rb") as f:
                        out[rel] = f.read()
                else:
                    out[rel[:-3] + ".mpy"] = data
    return out


def build_romfs(files):
    """A ROMFS image (MicroPython vfs.VfsRom format) holding `files`
    ({"a/b.py": bytes})."""
    from mpremote.romfs import VfsRomWriter
    tree = {}
    for name, data in files.items():
        node = tree
        parts = name.strip("/").split("/")
        for d in parts[:-1]:
            node = node.setdefault(d, {})
        node[parts[-1]] = data
    w = VfsRomWriter()

    def emit(node):
        for name in sorted(node):
            if isinstance(node[name], dict):
                w.opendir(name)
                emit(node[name])
                w.closedir()
            else:
                w.mkfile(name, node[name])
    emit(tree)
    return w.finalise()


def _collect_files(board, files, tmpdir):
    arch = board_config(board)["arch"]
    out = _package_files(arch, tmpdir)
    for mod in paths.NATMODS:
        mpy = paths.natmod_path(arch, mod)
        if not os.path.exists(mpy):
            raise TargetUnavailable("no %s: run `make dist`" % mpy)
        with open(mpy, "rb") as f:
            out[mod + ".mpy"] = f.read()
    for name, value in (files or {}).items():
        if isinstance(value, (bytes, bytearray)):
            out[name] = bytes(value)
        else:
            with open(value, "rb") as f:
                out[name] = f.read()
    return out


# Runs in the raw REPL before the script.  The firmware mounts a writable
# littlefs on a RAM disk outside its RAM at / (like a board's flash
# filesystem; done here for firmware that does not).  The ROMFS goes to /rom
# (first on sys.path), and the data files (not modules) are copied from /rom
# into / so the cwd holds them, as on the Unix port.
_SETUP = """\
import vfs, uctypes, sys, os
if os.statvfs('/')[0] == 0:
    # Firmware that does not mount its RAM disk at boot: do it here.
    try:
        from qemuboard import RamDisk  # C: block accesses allocate nothing
    except ImportError:
        class RamDisk:  # older firmware: the same in Python (allocates per access)
            def __init__(s, a, n):
                s.m = memoryview(uctypes.bytearray_at(a, n * 4096))
                s.n = n
            def readblocks(s, b, buf, o=0):
                a = b * 4096 + o
                buf[:] = s.m[a:a + len(buf)]
            def writeblocks(s, b, buf, o=0):
                a = b * 4096 + o
                s.m[a:a + len(buf)] = buf
            def ioctl(s, op, arg):
                if op == 4:
                    return s.n
                if op == 5:
                    return 4096
                return 0
    bd = RamDisk(%(ram_addr)d, %(ram_blocks)d)
    vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd), '/')
    del RamDisk, bd
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(%(rom_addr)d, %(rom_size)d)), '/rom')
os.chdir('/')
sys.path.insert(0, '/rom')
def cp(names):
    b = bytearray(512)
    mv = memoryview(b)
    for n in names:
        p = ''
        for d in n.split('/')[:-1]:
            p += d
            try:
                os.mkdir(p)
            except OSError:
                pass
            p += '/'
        with open('/rom/' + n, 'rb') as f, open(n, 'wb') as g:
            while True:
                k = f.readinto(b)
                if not k:
                    break
                g.write(mv[:k])
cp(%(data)r)
del cp, vfs, uctypes, sys, os
import gc
gc.collect()
del gc
"""


def _setup_code(cfg, rom_size, data_files):
    q = cfg["qemu"]
    return _SETUP % dict(ram_addr=int(q["ramfs_addr"], 0), ram_blocks=q["ramfs_bytes"] // 4096,
                         rom_addr=int(q["romfs_addr"], 0), rom_size=rom_size,
                         data=sorted(data_files))


# ---- the emulator over pipes --------------------------------------------------

class Emulator:
    """qemu-system-arm with the board's UART on pipes.  Use as a context
    manager; the process is always killed on exit."""

    def __init__(self, board, icount=True, extra=(), echo=False):
        self.board = board
        self.echo = echo
        self._dec = None
        self._errf = tempfile.TemporaryFile()
        cmd = qemu_command(board, "stdio", icount=icount, extra=extra)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._errf, bufsize=0, start_new_session=True)
        self._q = queue.Queue()
        self._buf = b""
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()

    def _reader(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            self._q.put(data)
            if not data:
                return

    def write(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_until(self, marker, deadline, stream=False):
        """Bytes up to and including `marker`.  With stream=True, bytes are
        echoed (if echo) as they arrive.  Raises TimeoutError / EOFError
        (QEMU exited), both with .partial = what was read."""
        got = b""  # already moved out of the buffer (stream mode)
        while True:
            i = self._buf.find(marker)
            if i >= 0:
                head = self._buf[:i + len(marker)]
                self._buf = self._buf[i + len(marker):]
                if stream:
                    self._echo(head[:i])
                return got + head
            if stream and len(self._buf) >= len(marker):
                n = len(self._buf) - (len(marker) - 1)
                self._echo(self._buf[:n])
                got += self._buf[:n]
                self._buf = self._buf[n:]
            left = deadline - time.monotonic()
            if left <= 0:
                e = TimeoutError("timeout waiting for %r" % marker)
                e.partial = got + self._buf
                raise e
            try:
                data = self._q.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if not data:
                e = EOFError("qemu exited")
                e.partial = got + self._buf
                raise e
            self._buf += data

    def _echo(self, data):
        if self.echo:
            if self._dec is None:
                import codecs
                self._dec = codecs.getincrementaldecoder("utf-8")("replace")
            sys.stdout.write(self._dec.decode(data).replace("\r\n", "\n"))
            sys.stdout.flush()

    def stderr_text(self):
        try:
            self._errf.seek(0)
            return self._errf.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._errf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw REPL --
    def enter_raw_repl(self, deadline):
        # Bytes sent before the UART is up stay queued in QEMU's chardev.
        self.write(b"\r\x03\x03\x01")
        self.read_until(b"raw REPL; CTRL-B to exit\r\n>", deadline)

    def read_exact(self, n, deadline):
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                e = TimeoutError("timeout reading %d bytes" % n)
                e.partial = self._buf
                raise e
            try:
                data = self._q.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if not data:
                e = EOFError("qemu exited")
                e.partial = self._buf
                raise e
            self._buf += data
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _pending(self):
        while True:
            try:
                data = self._q.get_nowait()
            except queue.Empty:
                return len(self._buf) > 0
            if not data:
                self._q.put(data)  # keep the EOF for the next reader
                return len(self._buf) > 0
            self._buf += data

    def _raw_paste(self, code, deadline):
        """Send `code` in raw-paste mode (what mpremote uses: the device
        compiles as it receives, so the source never sits in the heap).
        Returns False if the firmware does not support it."""
        self.write(b"\x05A\x01")
        r = self.read_exact(2, deadline)
        if r == b"R\x00":
            return False
        if r != b"R\x01":
            raise RuntimeError("raw-paste: unexpected reply %r" % r)
        win = int.from_bytes(self.read_exact(2, deadline), "little")
        remain, i = win, 0
        while i < len(code):
            while remain == 0 or self._pending():
                c = self.read_exact(1, deadline)
                if c == b"\x01":
                    remain += win
                elif c == b"\x04":          # device ended early (e.g. syntax error)
                    self.write(b"\x04")
                    return True
                else:
                    raise RuntimeError("raw-paste: unexpected byte %r" % c)
            chunk = code[i:i + remain]
            self.write(chunk)
            remain -= len(chunk)
            i += len(chunk)
        self.write(b"\x04")
        self.read_until(b"\x04", deadline)
        return True

    def exec_raw(self, code, deadline, stream=False):
        """Run `code` in the raw REPL; returns (stdout bytes, stderr bytes)."""
        if isinstance(code, str):
            code = code.encode("utf-8")
        if not self._raw_paste(code, deadline):
            self.write(code + b"\x04")
            self.read_until(b"OK", deadline)
        out = self.read_until(b"\x04", deadline, stream=stream)[:-1]
        err = self.read_until(b"\x04", deadline)[:-1]
        self.read_until(b">", deadline)
        if stream and err:
            self._echo(err)
        return out, err


def _text(b):
    return b.decode("utf-8", "replace").replace("\r\n", "\n")


def parse_icount(output):
    return {m.group(1): int(m.group(2)) for m in ICOUNT_RE.finditer(output)}


def run(board, script, files=None, timeout=300, echo=False, icount=True, **kw):
    """Run `script` on emulated `board`; see the module docstring."""
    if kw:
        raise TypeError("qemu.run: unexpected arguments %s" % sorted(kw))
    cfg = board_config(board)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="qtrain-qemu-") as tmp:
        image = build_romfs(_collect_files(board, files, tmp))
        if len(image) > cfg["qemu"]["romfs_max"]:
            raise ValueError("files too large for the emulated board (%d > %d bytes)"
                             % (len(image), cfg["qemu"]["romfs_max"]))
        img = os.path.join(tmp, "romfs.img")
        with open(img, "wb") as f:
            f.write(image)
        addr = int(cfg["qemu"]["romfs_addr"], 0)
        extra = ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (img, addr)]
        data = [n.strip("/") for n in (files or {}) if not n.endswith((".py", ".mpy"))]
        emu = Emulator(board, icount=icount, extra=extra, echo=echo)
        try:
            stage = "boot"
            # Boot and setup take about a second: fail fast if they hang, with
            # room for a CI machine whose cores are shared with other jobs.
            early_s = 180
            early = min(deadline, time.monotonic() + early_s)
            emu.enter_raw_repl(early)
            stage = "setup"
            out, err = emu.exec_raw(_setup_code(cfg, len(image), data), early)
            if err:
                return RunResult(_text(out + err) + "\n[qtrain qemu: filesystem setup failed]", 2)
            stage = "script"
            out, err = emu.exec_raw(script, deadline, stream=echo)
            output = _text(out + err)
            return RunResult(output, 1 if err else 0, parse_icount(output))
        except TimeoutError as e:
            limit = timeout if stage == "script" else min(timeout, early_s)
            msg = "\n[qtrain qemu: timeout after %ss during %s on %s]" % (limit, stage, board)
            return RunResult(_text(e.partial) + msg, -9)
        except EOFError as e:
            msg = "\n[qtrain qemu: emulator exited during %s on %s]\n%s" % (
                stage, board, emu.stderr_text())
            return RunResult(_text(e.partial) + msg, 2)
        finally:
            emu.close()


# ---- the real user path: mpremote over a pty -----------------------------------

PTY_RE = re.compile(r"char device redirected to (\S+) \(label")


class PtyEmulator:
    """The board with its UART on a host pty (as a USB-serial board would be)."""

    def __init__(self, board, icount=True):
        self._log = tempfile.TemporaryFile()
        cmd = qemu_command(board, "pty", icount=icount)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pty = None
        self._hold = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = PTY_RE.search(self.log())
            if m:
                self.pty = m.group(1)
                break
            time.sleep(0.02)
        if self.pty is None:
            text = self.log()
            self.close()
            raise RuntimeError("qemu did not report its pty:\n" + text)
        # Keep the pty slave open for the emulator's lifetime: QEMU drops
        # output while no client holds the slave and only rechecks now and
        # then, which races with mpremote's open.  Wait for the REPL so the
        # board is up before the caller connects.  We never read after this.
        self._hold = os.open(self.pty, os.O_RDWR | os.O_NOCTTY)
        try:
            import tty
            tty.setraw(self._hold)
        except Exception:
            pass
        if not self._wait_prompt(deadline=time.monotonic() + 20):
            text = self.log()
            self.close()
            raise RuntimeError("emulated %s did not answer on %s:\n%s" % (board, self.pty, text))

    def _wait_prompt(self, deadline):
        import select
        buf = b""
        next_poke = 0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_poke:
                os.write(self._hold, b"\r\x03")
                next_poke = time.monotonic() + 3.0
            r, _, _ = select.select([self._hold], [], [], 0.1)
            if r:
                buf += os.read(self._hold, 4096)
                if b">>> " in buf:
                    # Drain until the line is quiet, so mpremote starts clean.
                    while select.select([self._hold], [], [], 0.3)[0]:
                        os.read(self._hold, 4096)
                    return True
        return False

    def log(self):
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        self.proc.wait(timeout=10)
        if getattr(self, "_hold", None) is not None:
            os.close(self._hold)
            self._hold = None
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def mpremote_run(board, script, mount=None, timeout=600, capture=False, icount=True):
    """`mpremote connect <pty> mount <dir> run <script>` on a fresh emulator.
    mount defaults to dist/<arch>_6.3 (so `import _qtrain` and
    `import _qtrain_float` work).
    Returns (returncode, output or None)."""
    cfg = board_config(board)
    mount = mount or paths.natmod_dir(cfg["arch"])
    with PtyEmulator(board, icount=icount) as emu:
        cmd = [sys.executable, "-m", "mpremote", "connect", emu.pty,
               "mount", mount, "run", script]
        try:
            p = subprocess.run(cmd, timeout=timeout, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE if capture else None,
                               stderr=subprocess.STDOUT if capture else None)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace") if capture else None
            return -9, out
        out = p.stdout.decode("utf-8", "replace") if capture else None
        return p.returncode, out


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.qemu")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("mpremote", help="run a script through mpremote over the emulator's pty")
    a.add_argument("board")
    a.add_argument("script")
    a.add_argument("--mount", help="host directory to mount (default: dist/<arch>_6.3)")
    a.add_argument("--timeout", type=float, default=3600)
    r = sub.add_parser("run", help="run a script through the raw REPL (the test runner)")
    r.add_argument("board")
    r.add_argument("script")
    r.add_argument("--timeout", type=float, default=600)
    p = sub.add_parser("pty", help="start the emulator, print its pty, wait for Ctrl-C")
    p.add_argument("board")
    args = ap.parse_args(argv)
    if args.cmd == "mpremote":
        rc, _ = mpremote_run(args.board, args.script, mount=args.mount, timeout=args.timeout)
        return rc
    if args.cmd == "run":
        with open(args.script) as f:
            res = run(args.board, f.read(), timeout=args.timeout, echo=True)
        for k, v in res.icount.items():
            print("[icount] %s: %d instructions" % (k, v), file=sys.stderr)
        return res.returncode
    with PtyEmulator(args.board) as emu:
        print(emu.pty, flush=True)
        try:
            emu.proc.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
