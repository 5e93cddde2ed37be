"""Serve a .qtds stream to a board script over its serial link (the host side
of python/qtrain/serial_stream.py; protocol in docs/SERIAL_PROTOCOL.md).

    python -m qtrain_host.serial_stream run qemu-m4 script.py --data out/data/train.qtds
    python -m qtrain_host.serial_stream run /dev/ttyACM0 script.py --data train.qtds
    python -m qtrain_host.serial_stream bench qemu-m0 --data out/data/train.qtds -n 200

`run` starts the script (raw REPL; on an emulated board the package and
_qtrain.mpy are put in its ROMFS first), then serves every frame the board
sends while printing the board's text lines.  Targets: qemu-m0/m3/m4 (the
UART on a host pty, as a USB-serial board), unix (the Unix port on pipes),
cpython (the board module under CPython, for quick tests), or a serial
device path (a real board with the qtrain package installed).

Fault injection (tests, `--faults flip=0.05,drop=0.05,...`): flip one bit,
drop, duplicate, reorder or cut short DATA frames, ignore requests
(lost_req), pause the host for some seconds at the k-th request
(pause_at=k,pause_s=s) or vanish for good (vanish_at=k).
"""
import os
import random
import select
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from . import paths
from .stream import HEADER_SIZE, StreamError, parse_header

SYNC = b"\xfe\xd7"
T_OPEN, T_INFO, T_REQ, T_DATA, T_ACK, T_ERR, T_DATAZ = 0x4F, 0x49, 0x52, 0x44, 0x41, 0x45, 0x5A
BOARD_TYPES = (T_OPEN, T_REQ, T_ACK)
HDR = 8
MAX_BOARD_PAYLOAD = 1 + 5 * 32 + 64
PROTO_VERSION = 1


def encode(typ, slot, seq, payload=b""):
    """One frame: FE D7 type slot seq(u16) len(u16) payload crc32(type..payload)."""
    body = struct.pack("<BBHH", typ, slot, seq & 0xFFFF, len(payload)) + bytes(payload)
    return SYNC + body + struct.pack("<I", zlib.crc32(body))


def zrle(rec):
    """Zero-run encoding: a non-zero byte is itself, 0x00 c is c+1 zeros."""
    out = bytearray()
    i, n = 0, len(rec)
    while i < n:
        b = rec[i]
        if b:
            out.append(b)
            i += 1
        else:
            j = i + 1
            while j < n and j - i < 256 and rec[j] == 0:
                j += 1
            out += bytes((0, j - i - 1))
            i = j
    return bytes(out)


def unzrle(data, n):
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i]:
            out.append(data[i])
            i += 1
        else:
            out += bytes(data[i + 1] + 1)
            i += 2
    if len(out) != n:
        raise ValueError("decoded %d bytes, expected %d" % (len(out), n))
    return bytes(out)


def encode_data(slot, seq, idx, rec, compress):
    """A DATA frame for record `rec` of sample `idx`, or a DATAZ frame (zero-run
    encoded; CRC over the payload zero-padded to the DATA length) if shorter."""
    raw = struct.pack("<I", idx) + bytes(rec)
    if compress:
        z = struct.pack("<I", idx) + zrle(rec)
        if len(z) < len(raw):
            body = struct.pack("<BBHH", T_DATAZ, slot, seq & 0xFFFF, len(z)) + z
            crc = zlib.crc32(body + bytes(len(raw) - len(z)))
            return SYNC + body + struct.pack("<I", crc)
    return encode(T_DATA, slot, seq, raw)


class Frame:
    __slots__ = ("typ", "slot", "seq", "payload")

    def __init__(self, typ, slot, seq, payload):
        self.typ, self.slot, self.seq, self.payload = typ, slot, seq, payload

    def __repr__(self):
        return "Frame(%s slot=%d seq=%d len=%d)" % (chr(self.typ), self.slot, self.seq, len(self.payload))


def decode(data):
    """bytes of exactly one frame -> Frame, or ValueError."""
    if len(data) < HDR + 4 or data[:2] != SYNC:
        raise ValueError("not a frame")
    typ, slot, seq, ln = struct.unpack_from("<BBHH", data, 2)
    if len(data) != HDR + ln + 4:
        raise ValueError("length %d, header says %d" % (len(data), HDR + ln + 4))
    if zlib.crc32(data[2:]) != 0x2144DF1C:
        raise ValueError("CRC mismatch")
    return Frame(typ, slot, seq, bytes(data[HDR:HDR + ln]))


class Demux:
    """Split what the board writes into text and frames.

    feed(bytes) -> list of ("text", bytes) and ("frame", Frame).  Text is
    everything outside a valid frame (0xFE never occurs in UTF-8 text).  A
    0xFE that does not start a valid board frame is dropped (bad += 1)."""

    def __init__(self, types=BOARD_TYPES, max_payload=MAX_BOARD_PAYLOAD):
        self.buf = b""
        self.types = types
        self.max_payload = max_payload
        self.bad = 0

    def feed(self, data):
        self.buf += data
        out = []
        while self.buf:
            i = self.buf.find(b"\xfe")
            if i < 0:
                out.append(("text", self.buf))
                self.buf = b""
                break
            if i:
                out.append(("text", self.buf[:i]))
                self.buf = self.buf[i:]
            b = self.buf
            if len(b) < HDR:
                if len(b) >= 2 and b[1] != SYNC[1]:
                    self.bad += 1
                    self.buf = b[1:]
                    continue
                break
            typ, ln = b[2], b[6] | (b[7] << 8)
            if b[1] != SYNC[1] or typ not in self.types or ln > self.max_payload:
                self.bad += 1
                self.buf = b[1:]
                continue
            if len(b) < HDR + ln + 4:
                break
            try:
                f = decode(b[:HDR + ln + 4])
            except ValueError:
                self.bad += 1
                self.buf = b[1:]
                continue
            self.buf = b[HDR + ln + 4:]
            out.append(("frame", f))
        return out


class Faults:
    """Seeded fault injection on what the host sends (DATA frames) and on the
    requests it receives.  Probabilities per frame / request."""

    KINDS = ("flip", "drop", "dup", "reorder", "cut", "lost_req")

    def __init__(self, flip=0.0, drop=0.0, dup=0.0, reorder=0.0, cut=0.0, lost_req=0.0,
                 pause_at=None, pause_s=0.0, vanish_at=None, seed=0):
        self.p = {"flip": flip, "drop": drop, "dup": dup, "reorder": reorder, "cut": cut,
                  "lost_req": lost_req}
        self.pause_at, self.pause_s, self.vanish_at = pause_at, pause_s, vanish_at
        self.rng = random.Random(seed)
        self.count = {k: 0 for k in self.KINDS}
        self.count["pause"] = 0
        self.count["vanish"] = 0
        self.held = []   # frames delayed to the next response (reorder across windows)

    @classmethod
    def parse(cls, text):
        """"flip=0.05,drop=0.02,pause_at=3,pause_s=8,seed=1" -> Faults."""
        kw = {}
        for part in filter(None, (text or "").split(",")):
            k, _, v = part.partition("=")
            k = k.strip()
            if k in ("pause_at", "vanish_at", "seed"):
                kw[k] = int(v)
            else:
                kw[k] = float(v)
        return cls(**kw)

    def _hit(self, kind):
        if self.p[kind] and self.rng.random() < self.p[kind]:
            self.count[kind] += 1
            return True
        return False

    def lose_request(self):
        return self._hit("lost_req")

    def apply(self, frames):
        """DATA frames of one response -> the byte strings actually sent."""
        out = self.held
        self.held = []
        for f in frames:
            if self._hit("drop"):
                continue
            if self._hit("flip"):
                b = bytearray(f)
                bit = self.rng.randrange(len(b) * 8)
                b[bit >> 3] ^= 1 << (bit & 7)
                f = bytes(b)
            if self._hit("cut"):
                f = f[:self.rng.randrange(1, len(f))]
            if self._hit("reorder"):
                if self.rng.random() < 0.5:
                    self.held.append(f)        # arrives after the next response: stale
                else:
                    out.insert(self.rng.randrange(len(out) + 1), f)
                continue
            out.append(f)
            if self._hit("dup"):
                out.insert(self.rng.randrange(len(out) + 1), f)
        return out


class Server:
    """Answers the board's frames from .qtds files.

    files: a path (served whatever name the board asks for) or {name: path}."""

    def __init__(self, files, faults=None, log=None, compress=True):
        self.allow_compress = compress
        self.compress = False
        if isinstance(files, (str, os.PathLike)):
            files = {"*": files}
        self.files = {k: os.fspath(v) for k, v in files.items()}
        self.faults = faults
        self.log = log or (lambda msg: None)
        self.data = None
        self.header = None
        self.rs = 0
        self.requests = 0
        self.samples = 0
        self.acks = 0
        self.last_ack = -1
        self.pause_until = 0.0
        self.vanished = False
        self.unacked_since = None   # time of the last response not yet acked
        self.filled = False
        self.t_first = self.t_last = None

    def _load(self, name):
        path = self.files.get(name) or self.files.get("*") or self.files.get(os.path.basename(name))
        if path is None:
            raise StreamError(name, "the host serves no file of that name (serving %s)"
                              % ", ".join(sorted(self.files)))
        with open(path, "rb") as f:
            data = f.read()
        h = parse_header(data[:HEADER_SIZE], path, len(data))
        self.data, self.header, self.rs, self.path = data, h, h.record_size, path
        return data[:HEADER_SIZE]

    def handle(self, f, now=None):
        """A frame from the board -> list of byte strings to send."""
        now = time.monotonic() if now is None else now
        if f.typ == T_OPEN:
            name = f.payload[3:].decode("utf-8", "replace")
            self.compress = bool(f.payload[2] & 1) and self.allow_compress
            try:
                hdr = self._load(name)
            except (OSError, StreamError) as e:
                return [encode(T_ERR, 0, f.seq, str(e).encode()[:160])]
            self.log("serving %s (%d samples of %dx%d) as %r, board window %d%s"
                     % (self.path, self.header.count, self.header.rows, self.header.cols,
                        name, f.payload[1], ", zero-run encoded" if self.compress else ""))
            return [encode(T_INFO, 0, f.seq, hdr)]
        if f.typ == T_ACK:
            self.acks += 1
            self.last_ack = f.seq
            self.unacked_since = None
            return []
        if f.typ != T_REQ:
            return []
        fl = self.faults
        self.requests += 1
        self.unacked_since = None
        if fl is not None:
            if fl.vanish_at is not None and self.requests >= fl.vanish_at:
                if not self.vanished:
                    fl.count["vanish"] += 1
                    self.log("fault: the host vanishes at request %d" % self.requests)
                self.vanished = True
            if self.vanished:
                return []
            if fl.pause_at is not None and self.requests == fl.pause_at:
                fl.count["pause"] += 1
                self.pause_until = now + fl.pause_s
                self.log("fault: the host pauses for %.1f s at request %d" % (fl.pause_s, self.requests))
            if now < self.pause_until or fl.lose_request():
                return []
        if self.data is None:
            return [encode(T_ERR, 0, f.seq, b"request before open")]
        n = f.payload[0]
        frames = []
        for k in range(n):
            slot, idx = struct.unpack_from("<BI", f.payload, 1 + 5 * k)
            if idx >= self.header.count:
                return [encode(T_ERR, 0, f.seq, ("sample %d out of range 0..%d of %s"
                                                % (idx, self.header.count - 1, self.path)).encode())]
            off = HEADER_SIZE + idx * self.rs
            frames.append(encode_data(slot, f.seq, idx, self.data[off:off + self.rs], self.compress))
        self.samples += n
        if self.t_first is None:
            self.t_first = now
        self.t_last = now
        if fl is not None:
            frames = fl.apply(frames)
        self.unacked_since = now
        self.filled = False
        return frames

    def tick(self, now, fill_after=3.0):
        """Called regularly: a response not acked for `fill_after` s may have
        been cut short and left the board blocked in a read; send one frame's
        worth of zeros so the read ends (the board then drops it: bad CRC,
        junk) and asks again."""
        if (self.unacked_since is not None and not self.filled and self.rs
                and now - self.unacked_since > fill_after):
            self.filled = True
            return [bytes(HDR + 4 + self.rs + 4)]
        return []


# ---- links -------------------------------------------------------------------

class FdLink:
    """Byte link over file descriptors (a pty, a serial port, pipes)."""

    def __init__(self, rfd, wfd=None, closer=None):
        self.rfd = rfd
        self.wfd = rfd if wfd is None else wfd
        self._closer = closer
        os.set_blocking(self.wfd, False)
        self.pending = b""

    def read(self, timeout):
        """Bytes available within `timeout` s (b"" if none); EOFError at end."""
        w = [self.wfd] if self.pending else []
        r, wr, _ = select.select([self.rfd], w, [], timeout)
        if wr:
            self._push()
        if not r:
            return b""
        try:
            data = os.read(self.rfd, 65536)
        except OSError:  # EIO: the pty's other end went away
            data = b""
        if not data:
            raise EOFError("link closed")
        return data

    def write(self, data):
        self.pending += data
        self._push()

    def _push(self):
        while self.pending:
            try:
                n = os.write(self.wfd, self.pending[:4096])
            except BlockingIOError:
                return
            self.pending = self.pending[n:]

    def drain(self, timeout=5.0):
        end = time.monotonic() + timeout
        while self.pending and time.monotonic() < end:
            select.select([], [self.wfd], [], 0.05)
            self._push()

    def close(self):
        if self._closer:
            self._closer()


def _raw_fd(path, baud=None):
    import termios
    import tty
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    if baud:
        attrs = termios.tcgetattr(fd)
        speed = getattr(termios, "B%d" % baud)
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


# ---- a session: run a script, serve its requests, forward its text ----------

class Result:
    def __init__(self, output, returncode, server, elapsed):
        self.output = output          # the board's text (str)
        self.returncode = returncode  # 0 ok, 1 the script raised, -9 timeout, 2 link/emulator died
        self.server = server
        self.elapsed = elapsed

    @property
    def faults(self):
        return self.server.faults.count if self.server.faults else {}

    def check(self):
        if self.returncode != 0:
            raise RuntimeError("script failed (exit %d):\n%s" % (self.returncode, self.output))
        return self

    def samples_per_s(self):
        s = self.server
        if s.t_first is None or s.t_last is None or s.t_last <= s.t_first:
            return 0.0
        return s.samples / (s.t_last - s.t_first)


class _Session:
    def __init__(self, link, server, echo, deadline, fill_after=3.0):
        self.link, self.server, self.echo = link, server, echo
        self.deadline, self.fill_after = deadline, fill_after
        self.demux = Demux()
        self.text = bytearray()
        self.rest = b""   # bytes read past the raw REPL end marker

    def _emit(self, data):
        self.text += data
        if self.echo:
            sys.stdout.write(data.decode("utf-8", "replace").replace("\r\n", "\n"))
            sys.stdout.flush()

    def serve(self, end=b"\x04"):
        """Serve until `end` appears in the text (raw REPL: end of the
        script's stdout), or EOF when end is None.  Raises TimeoutError."""
        while True:
            now = time.monotonic()
            if now > self.deadline:
                raise TimeoutError("timeout")
            for b in self.server.tick(now, self.fill_after):
                self.link.write(b)
            try:
                data = self.link.read(0.05)
            except EOFError:
                if end is None:
                    return
                raise
            events = self.demux.feed(data)
            for j, (kind, v) in enumerate(events):
                if kind == "frame":
                    for b in self.server.handle(v):
                        self.link.write(b)
                    continue
                if end is not None and end in v:
                    i = v.index(end)
                    self._emit(v[:i])
                    # the rest is raw REPL text (the script's stderr, then ">")
                    self.rest = v[i + len(end):] + b"".join(
                        x for k, x in events[j + 1:] if k == "text") + self.demux.buf
                    self.demux.buf = b""
                    return
                self._emit(v)

    def read_until(self, marker):
        """Plain text up to `marker` (raw REPL protocol), no frames expected."""
        buf = self.rest
        self.rest = b""
        while marker not in buf:
            if time.monotonic() > self.deadline:
                raise TimeoutError("timeout waiting for %r" % marker)
            buf += self.link.read(0.05)
        i = buf.index(marker) + len(marker)
        self.rest = buf[i:]
        return buf[:i]

    def raw_repl(self):
        self.link.write(b"\r\x03\x03")
        time.sleep(0.1)
        self.link.write(b"\x01")
        self.read_until(b"raw REPL; CTRL-B to exit\r\n>")

    def exec_quiet(self, code):
        self._send_code(code)
        self.read_until(b"OK")
        out = self.read_until(b"\x04")[:-1]
        err = self.read_until(b"\x04")[:-1]
        self.read_until(b">")
        return out, err

    def _send_code(self, code):
        if isinstance(code, str):
            code = code.encode()
        for i in range(0, len(code), 256):
            self.link.write(code[i:i + 256])
            self.link.drain()
        self.link.write(b"\x04")

    def exec_serving(self, code):
        """Run `code`, serving frames; returns (stdout text bytes, stderr bytes)."""
        self._send_code(code)
        self.read_until(b"OK")
        self.serve(b"\x04")
        err = self.read_until(b"\x04")[:-1]
        self.read_until(b">")
        if err and self.echo:
            sys.stdout.write(err.decode("utf-8", "replace").replace("\r\n", "\n"))
        return bytes(self.text), err


def _text(b):
    return b.decode("utf-8", "replace").replace("\r\n", "\n")


def run(target, script, data, files=None, faults=None, timeout=300, echo=False,
        icount=False, fill_after=3.0, log=None, baud=115200, compress=True):
    """Run `script` (MicroPython source) on `target` while serving `data`
    (a .qtds path, or {name: path}).  Returns Result(output, returncode, server)."""
    server = Server(data, faults=faults, compress=compress, log=log or (
        (lambda m: print("[serial_stream] " + m, file=sys.stderr)) if echo else None))
    t0 = time.monotonic()
    deadline = t0 + timeout
    if target in ("unix", "cpython"):
        return _run_local(target, script, server, files, echo, deadline, fill_after, t0)
    if target in paths.TARGET_ARCH:
        return _run_qemu(target, script, server, files, echo, deadline, fill_after, icount, t0)
    return _run_serial(target, script, server, echo, deadline, fill_after, baud, t0)


def _run_local(target, script, server, files, echo, deadline, fill_after, t0):
    from .runner import _check_built, _write_files
    with tempfile.TemporaryDirectory(prefix="qtrain-serial-") as tmp:
        _write_files(tmp, files)
        path = os.path.join(tmp, "main.py")
        with open(path, "w") as f:
            f.write(script)
        env = dict(os.environ)
        if target == "unix":
            _check_built("unix")
            env["MICROPYPATH"] = os.pathsep.join([tmp, paths.natmod_dir("x64"), paths.PYTHON_DIR, ".frozen"])
            cmd = [paths.UNIX_MICROPYTHON, "-X", "heapsize=2M", path]
        else:
            env["PYTHONPATH"] = os.pathsep.join([tmp, paths.PYTHON_DIR])
            cmd = [sys.executable, "-u", path]
        p = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, bufsize=0)
        link = FdLink(p.stdout.fileno(), p.stdin.fileno())
        sess = _Session(link, server, echo, deadline, fill_after)
        rc = None
        try:
            sess.serve(None)
            rc = p.wait(timeout=max(1, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired):
            p.kill()
            p.wait()
            sess._emit(b"\n[serial_stream: timeout]")
            rc = -9
        err = p.stderr.read()
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                f.close()
            except OSError:
                pass
        out = _text(bytes(sess.text) + err)
        if echo and err:
            sys.stdout.write(_text(err))
        return Result(out, 0 if rc == 0 else (rc if rc == -9 else 1), server, time.monotonic() - t0)


# The package, _qtrain.mpy and the caller's files in a ROMFS outside the heap,
# mounted at /rom (the cwd, first on sys.path).
_ROMFS_MOUNT = ("import vfs, uctypes, sys, os\n"
                "vfs.mount(vfs.VfsRom(uctypes.bytearray_at(0x%x, %d)), '/rom')\n"
                "os.chdir('/rom')\n"
                "sys.path.insert(0, '/rom')\n"
                "del vfs, uctypes, sys, os\n")


def _run_qemu(board, script, server, files, echo, deadline, fill_after, icount, t0):
    import signal
    from . import qemu
    cfg = qemu.board_config(board)
    with tempfile.TemporaryDirectory(prefix="qtrain-serial-") as tmp:
        image = qemu.build_romfs(qemu._collect_files(board, files, tmp))
        q = cfg["qemu"]
        if "romfs_addr" in q:
            addr, romfs_max = int(q["romfs_addr"], 0), q["romfs_max"]
        else:  # older board.json
            addr, romfs_max = qemu.ROMFS_ADDR[q["machine"]], qemu.ROMFS_MAX
        if len(image) > romfs_max:
            raise ValueError("files too large for the emulated board (%d > %d bytes)"
                             % (len(image), romfs_max))
        setup = _ROMFS_MOUNT % (addr, len(image))
        img = os.path.join(tmp, "romfs.img")
        with open(img, "wb") as f:
            f.write(image)
        extra = ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (img, addr)]
        logf = tempfile.TemporaryFile()
        proc = subprocess.Popen(qemu.qemu_command(board, "pty", icount=icount, extra=extra),
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)

        def qlog():
            logf.seek(0)
            return logf.read().decode("utf-8", "replace")
        fd = None
        try:
            pty = None
            end = time.monotonic() + 10
            while pty is None and time.monotonic() < end and proc.poll() is None:
                m = qemu.PTY_RE.search(qlog())
                if m:
                    pty = m.group(1)
                else:
                    time.sleep(0.02)
            if pty is None:
                return Result("qemu did not report its pty:\n" + qlog(), 2, server, 0.0)
            fd = _raw_fd(pty)
            link = FdLink(fd)
            sess = _Session(link, server, echo, deadline, fill_after)
            stage = "boot"
            try:
                sess.raw_repl()
                stage = "setup"
                out, err = sess.exec_quiet(setup)
                if err:
                    return Result(_text(out + err) + "\n[ROMFS mount failed]", 2, server, 0.0)
                stage = "script"
                out, err = sess.exec_serving(script)
                return Result(_text(out + err), 1 if err else 0, server, time.monotonic() - t0)
            except TimeoutError:
                return Result(_text(bytes(sess.text)) + "\n[serial_stream: timeout during %s on %s]"
                              % (stage, board), -9, server, time.monotonic() - t0)
            except EOFError:
                return Result(_text(bytes(sess.text)) + "\n[serial_stream: emulator exited during %s]\n%s"
                              % (stage, qlog()), 2, server, time.monotonic() - t0)
        finally:
            if fd is not None:
                os.close(fd)
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
            proc.wait(timeout=10)
            logf.close()


def _run_serial(port, script, server, echo, deadline, fill_after, baud, t0):
    """A real board: the qtrain package and _qtrain.mpy must be installed
    (make deploy)."""
    fd = _raw_fd(port, baud)
    try:
        sess = _Session(FdLink(fd), server, echo, deadline, fill_after)
        try:
            sess.raw_repl()
            out, err = sess.exec_serving(script)
            sess.link.write(b"\x02")  # back to the friendly REPL
            sess.link.drain()
            return Result(_text(out + err), 1 if err else 0, server, time.monotonic() - t0)
        except TimeoutError:
            return Result(_text(bytes(sess.text)) + "\n[serial_stream: timeout]", -9, server,
                          time.monotonic() - t0)
        except EOFError:
            return Result(_text(bytes(sess.text)) + "\n[serial_stream: link closed]", 2, server,
                          time.monotonic() - t0)
    finally:
        os.close(fd)


# ---- benchmark ------------------------------------------------------------------

BENCH_SCRIPT = """
import time, gc
from qtrain.serial_stream import SerialStream
s = SerialStream(%(name)r, shuffle=%(shuffle)r, seed=1, window=%(window)d, compress=%(compress)r)
s.next()
gc.collect()
a = gc.mem_alloc()
t = time.ticks_ms()
n = %(n)d
for _ in range(n - 1):
    s.next()
dt = time.ticks_diff(time.ticks_ms(), t)
b = gc.mem_alloc()
print("BENCH n=%%d ms=%%d alloc=%%d retries=%%d" %% (n - 1, dt, b - a, s.retries))
s.close()
"""


def bench(target, data, n=200, window=8, shuffle=False, compress=True, timeout=600, echo=False):
    """Samples/s read through SerialStream on `target` (board clock)."""
    script = BENCH_SCRIPT % {"name": os.path.basename(os.fspath(data)), "shuffle": shuffle,
                             "window": window, "n": n, "compress": compress}
    res = run(target, script, data, timeout=timeout, echo=echo).check()
    import re
    m = re.search(r"BENCH n=(\d+) ms=(\d+) alloc=(-?\d+) retries=(\d+)", res.output)
    k, ms, alloc, retries = (int(x) for x in m.groups())
    return {"target": target, "window": window, "shuffle": shuffle, "compress": compress, "samples": k,
            "seconds": ms / 1000.0, "samples_per_s": k * 1000.0 / max(ms, 1), "alloc": alloc,
            "retries": retries, "host_samples_per_s": res.samples_per_s()}


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.serial_stream",
                                 description="serve .qtds samples to a board script over its serial link")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a script on a target and serve its data requests")
    r.add_argument("target", help="qemu-m0, qemu-m4, unix, cpython or a serial device")
    r.add_argument("script")
    r.add_argument("--data", action="append", required=True,
                   help="FILE or NAME=FILE (repeatable); a bare FILE is served under any name")
    r.add_argument("--faults", help="fault injection, e.g. flip=0.05,drop=0.05,dup=0.05,"
                                    "reorder=0.05,cut=0.02,lost_req=0.05,pause_at=3,pause_s=8,seed=1")
    r.add_argument("--timeout", type=float, default=24 * 3600)
    r.add_argument("--baud", type=int, default=115200)
    r.add_argument("--no-compress", action="store_true", help="plain DATA frames only")
    b = sub.add_parser("bench", help="measure samples/s on a target")
    b.add_argument("target")
    b.add_argument("--data", required=True)
    b.add_argument("-n", type=int, default=200)
    b.add_argument("--window", type=int, default=8)
    b.add_argument("--shuffle", action="store_true")
    b.add_argument("--no-compress", action="store_true", help="plain DATA frames only")
    args = ap.parse_args(argv)
    if args.cmd == "bench":
        r = bench(args.target, args.data, args.n, args.window, args.shuffle, not args.no_compress)
        print("%(target)s window %(window)d shuffle %(shuffle)s compress %(compress)s: %(samples)d samples in %(seconds).2f s "
              "= %(samples_per_s).1f samples/s (board clock; host saw %(host_samples_per_s).1f), "
              "%(alloc)d bytes allocated, %(retries)d retries" % r)
        return 0
    files = {}
    for d in args.data:
        k, eq, v = d.partition("=")
        files[k if eq else "*"] = v if eq else k
    with open(args.script) as f:
        script = f.read()
    res = run(args.target, script, files, faults=Faults.parse(args.faults) if args.faults else None,
              timeout=args.timeout, echo=True, baud=args.baud, compress=not args.no_compress)
    if res.server.faults:
        print("[serial_stream] faults injected: %s" % res.faults, file=sys.stderr)
    return res.returncode if res.returncode >= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
