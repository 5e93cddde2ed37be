"""Training samples served by the host over the board's serial link.

    from qtrain.serial_stream import SerialStream
    s = SerialStream("train.qtds", shuffle=True, seed=1, window=4)
    label = s.next()          # pixels in s.image, as with qtrain.data.Stream
    s.epoch, s.pos            # save in the checkpoint; s.seek(pos, epoch) resumes

The same interface as qtrain.data.Stream (next, image, buf, epoch, pos,
index, seek, read, order, iteration, close), for when `mpremote mount` is too
slow.  The host runs `python -m qtrain_host.serial_stream run ...`, which
starts this script and serves the .qtds file.  Protocol: docs/SERIAL_PROTOCOL.md.

Frames (both directions), little-endian:

    FE D7  type u8  slot u8  seq u16  len u16  payload[len]  crc32 u32

crc32 (zlib) covers type..payload.  0xFE never occurs in UTF-8 text, so the
board's prints and its frames share stdout and the host separates them.
The board asks for a window of at most `window` samples (REQ), the host
sends exactly those (DATA, any order), the board acks (ACK) when it holds all
of them.  Bad CRC, bad header, a sample for another slot or an old request,
duplicates: dropped.  Nothing for `gap_ms`: the missing slots are requested
again (new seq).  Nothing for `warn_ms`: a message, then keep asking until
the host is back (or raise SerialStreamError after `give_up_ms`).  A sample
is handed out only once all checks passed, in position order: none is used
twice or skipped.

Memory: window+1 frame buffers and the record buffer, allocated at open;
nothing is allocated per sample on a board (readinto into preallocated
buffers, select.poll.ipoll, the CRC residue check).
"""
import struct
import sys

try:
    from qtrain.data import Permutation, DataError, CRC_RESIDUE, HEADER_SIZE, MAGIC, VERSION, _crc32
    from qtrain.crc_py import crc_tables
except ImportError:  # pragma: no cover - CPython tests load this file directly
    from data import Permutation, DataError, CRC_RESIDUE, HEADER_SIZE, MAGIC, VERSION, _crc32  # type: ignore[import-not-found,no-redef]  # noqa: E501
    from crc_py import crc_tables  # type: ignore[import-not-found,no-redef]

try:
    from time import ticks_ms, ticks_diff
except ImportError:  # CPython
    import time as _time

    def ticks_ms():  # type: ignore[misc]
        return int(_time.monotonic() * 1000) & 0x3FFFFFFF  # type: ignore[attr-defined]

    def ticks_diff(a, b):  # type: ignore[misc]
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

try:
    import select
except ImportError:  # pragma: no cover
    import uselect as select  # type: ignore[no-redef]

SYNC0 = 0xFE
SYNC1 = 0xD7
T_OPEN = 0x4F   # board -> host: u8 version, u8 window, name
T_INFO = 0x49   # host -> board: the 48-byte .qtds header
T_REQ = 0x52    # board -> host: u8 n, then n x (u8 slot, u32 index), zero padded
T_DATA = 0x44   # host -> board: slot in the header, u32 index, record
T_DATAZ = 0x5A  # host -> board: as DATA, record zero-run encoded (see _unz)
T_ACK = 0x41    # board -> host: window of request `seq` complete
T_ERR = 0x45    # host -> board: error text
PROTO_VERSION = 1
HDR = 8         # sync(2) type slot seq(2) len(2)
SMALL_MAX = 160  # largest INFO/ERR payload
MAX_WINDOW = 32


def _unz_py(src, i, end, dst, n):
    """Decode the zero-run encoding of src[i:end] into dst (already zeroed):
    a non-zero byte is itself, 0x00 c is c+1 zero bytes.  -> bytes written
    (-1 if the data would overrun n)."""
    o = 0
    while i < end:
        b = src[i]
        i += 1
        if b:
            if o >= n:
                return -1
            dst[o] = b
            o += 1
        else:
            if i >= end:
                return -1
            o += src[i] + 1
            i += 1
            if o > n:
                return -1
    return o


_UNZ_VIPER = """
@micropython.viper
def _unz(src: ptr8, i: int, end: int, dst: ptr8, n: int) -> int:
    o = 0
    while i < end:
        b = src[i]
        i += 1
        if b:
            if o >= n:
                return -1
            dst[o] = b
            o += 1
        else:
            if i >= end:
                return -1
            o += src[i] + 1
            i += 1
            if o > n:
                return -1
    return o
"""
_unz = _unz_py
try:  # native decoder where the firmware has the viper emitter
    import micropython
    _g: dict = {"micropython": micropython}
    exec(_UNZ_VIPER, _g)
    _unz = _g["_unz"]
    del _g
except Exception:
    pass


class SerialStreamError(OSError):
    """The host does not answer, closed the link, or reported an error."""


def _crc_into(buf, start, end):
    """Store the CRC-32 of buf[start:end] little-endian at buf[end:end+4],
    in small-int arithmetic (16-bit halves): no allocation on 32-bit ports,
    where _qtrain.crc32 would return a big int.  Used for the board's own
    (short) frames only."""
    tl, th = crc_tables()
    lo = hi = 0xFFFF
    for i in range(start, end):
        j = (lo ^ buf[i]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tl[j]
        hi = (hi >> 8) ^ th[j]
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    buf[end] = lo & 0xFF
    buf[end + 1] = lo >> 8
    buf[end + 2] = hi & 0xFF
    buf[end + 3] = hi >> 8


def _default_io():
    i = sys.stdin
    o = sys.stdout
    i = getattr(i, "buffer", i)
    # CPython: poll() must see every byte, so no read-ahead buffer
    return getattr(i, "raw", i), getattr(o, "buffer", o)


class SerialStream:
    """A .qtds stream served by the host over the serial link.

    name        file name the host serves (it maps names to files)
    shuffle, seed, verify, limit   as qtrain.data.Stream
    window      samples per request (1..32); costs window+1 frames of RAM
    gap_ms      silence after which missing samples are requested again
    warn_ms     silence after which a "host not answering" line is printed
    give_up_ms  silence after which SerialStreamError is raised (None: never)
    compress    accept zero-run encoded samples (fewer bytes on the link)
    log         callable for status lines (default print)
    io          (input, output) binary streams; default stdin/stdout
    """

    def __init__(self, name="train.qtds", shuffle=False, seed=0, verify=True, limit=None,
                 window=4, gap_ms=500, warn_ms=5000, give_up_ms=None, log=None, io=None,
                 buf=None, compress=True):
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError("SerialStream: window=%d, must be 1..%d" % (window, MAX_WINDOW))
        self.path = name
        self.window = window
        self.gap_ms = gap_ms
        self.warn_ms = warn_ms
        self.give_up_ms = give_up_ms
        self.log = log or print
        inp, out = io or _default_io()
        self._in = inp
        self._out = out
        self._readinto = inp.readinto
        self._mpy = sys.implementation.name == "micropython"  # readinto(buf, nbytes)
        self.compress = compress
        self._write = out.write
        self._flush = getattr(out, "flush", None)
        tflush = getattr(sys.stdout, "flush", None)
        self._tflush = tflush if (io is None and sys.implementation.name != "micropython") else None
        self._poll = select.poll()
        self._poll.register(inp, select.POLLIN)
        self._ipoll = getattr(self._poll, "ipoll", None)
        # counters (read them in tests / reports)
        self.frames = 0        # good DATA frames used
        self.crc_errors = 0    # frames whose CRC failed
        self.bad_headers = 0   # sync seen but type/length impossible
        self.junk = 0          # bytes skipped while looking for a frame
        self.dups = 0          # good frames for a slot already filled
        self.stale = 0         # good frames of another window / index
        self.retries = 0       # requests sent again after `gap_ms` of silence
        self.outages = 0       # times the host was silent for `warn_ms`
        self._kbd = False
        try:
            import micropython
            micropython.kbd_intr(-1)  # 0x03 in the data must not interrupt us
            self._kbd = True
        except (ImportError, AttributeError):
            pass
        self._seq = 0
        self._b1 = bytearray(1)
        self._hdr = bytearray(HDR)
        self._hdr[0] = SYNC0
        self._hdr[1] = SYNC1
        self._hdr6 = memoryview(self._hdr)[2:]
        self._small = bytearray(HDR + SMALL_MAX + 4)
        self._req = bytearray(HDR + 1 + 5 * window + 4)
        self._reqmv = memoryview(self._req)
        self._ack = bytearray(HDR + 4)
        self.rs = 0
        self.epoch = 0
        self.pos = 0
        self._warned = False
        try:
            self._open(name, shuffle, seed, verify, limit, buf)
        except BaseException:
            self.close()
            raise

    # ---- low level -----------------------------------------------------------

    def _err(self, msg):
        return SerialStreamError("%s (serial): %s" % (self.path, msg))

    def _send(self, fb, typ, slot, seq, ln):
        fb[0] = SYNC0
        fb[1] = SYNC1
        fb[2] = typ
        fb[3] = slot
        fb[4] = seq & 0xFF
        fb[5] = seq >> 8
        fb[6] = ln & 0xFF
        fb[7] = ln >> 8
        _crc_into(fb, 2, HDR + ln)
        if self._tflush is not None:
            self._tflush()
        self._write(fb)
        if self._flush is not None:
            self._flush()

    def _wait(self, ms):
        """True when input is readable within `ms` milliseconds."""
        if ms < 0:
            ms = 0
        if self._ipoll is not None:
            for _ in self._ipoll(ms):
                return True
            return False
        return bool(self._poll.poll(ms))

    def _readn(self, mv, n):
        """Read n = len(mv) bytes.  A board's stdin blocks until all are
        there; pipes (Unix port, CPython) may return less: then wait for
        more, and give up (return the count) after gap_ms of silence."""
        if self._mpy:
            k = self._readinto(mv, n) or 0
        else:
            k = self._readinto(mv if len(mv) == n else mv[:n]) or 0
        while k < n:
            if not self._wait(self.gap_ms):
                return k
            r = self._readinto(mv[k:n]) or 0
            if r == 0:
                raise self._err("the host closed the link")
            k += r
        return k

    def _frame(self, slot_ok):
        """Read one frame after input became readable.  Returns the buffer
        holding a frame whose CRC is good (type, slot, seq in self._ftyp,
        _fslot, _fseq: no tuple allocated), or None.  `slot_ok(slot)`
        says if a DATA frame may go straight into that slot's buffer."""
        b1 = self._b1
        if self._readn(b1, 1) != 1:
            return None
        if b1[0] != SYNC0:
            self.junk += 1
            return None
        while True:
            if not self._wait(self.gap_ms) or self._readn(b1, 1) != 1:
                return None
            if b1[0] == SYNC1:
                break
            if b1[0] != SYNC0:
                self.junk += 2
                return None
            self.junk += 1
        if self._readn(self._hdr6, 6) != 6:
            return None
        h = self._hdr
        typ = h[2]
        slot = h[3]
        seq = h[4] | (h[5] << 8)
        ln = h[6] | (h[7] << 8)
        if self.rs and ((typ == T_DATA and ln == 4 + self.rs)
                        or (typ == T_DATAZ and self.compress and 4 <= ln < 4 + self.rs)):
            if slot_ok(slot):
                fb = self._fb[slot]
                body = self._body[slot]
                full = self._full[slot]
            else:
                fb = self._scratch
                body = self._sbody
                full = self._sfull
        elif (typ == T_INFO or typ == T_ERR) and ln <= SMALL_MAX:
            fb = self._small
            body = memoryview(fb)[HDR:HDR + ln + 4]
            full = memoryview(fb)[2:HDR + ln + 4]
        else:
            self.bad_headers += 1
            return None
        if typ == T_DATAZ:
            fb[:] = self._zfb  # the CRC covers the payload zero-padded to 4+rs
        fb[0:HDR] = h
        if self._readn(body, ln + 4) != ln + 4:
            self.crc_errors += 1
            return None
        if typ == T_DATAZ:  # move the CRC to the end of the padded payload
            c = HDR + ln
            e = HDR + 4 + self.rs
            for j in range(4):
                fb[e + j] = fb[c + j]
                fb[c + j] = 0
        if _crc32(full) != CRC_RESIDUE:
            self.crc_errors += 1
            return None
        self._ftyp = typ
        self._fslot = slot
        self._fseq = seq
        return fb

    def _silence(self, t_heard, what):
        """Called after gap_ms without progress: warn / give up / retry."""
        quiet = ticks_diff(ticks_ms(), t_heard)
        if self.give_up_ms is not None and quiet >= self.give_up_ms:
            raise self._err("no answer from the host for %d ms while waiting for %s; "
                            "is `python -m qtrain_host.serial_stream` running? Resume with "
                            "seek(pos, epoch) (epoch %d, pos %d)" % (quiet, what, self.epoch, self.pos))
        if quiet >= self.warn_ms and not self._warned:
            self._warned = True
            self.outages += 1
            self.log("serial_stream: no answer from the host for %d s while waiting for %s "
                     "(epoch %d pos %d); still asking, start the host to resume"
                     % (quiet // 1000, what, self.epoch, self.pos))

    def _back(self, t_heard):
        if self._warned:
            self._warned = False
            self.log("serial_stream: host is back after %d s, resuming at epoch %d pos %d"
                     % (ticks_diff(ticks_ms(), t_heard) // 1000, self.epoch, self.pos))

    # ---- opening -------------------------------------------------------------

    def _open(self, name, shuffle, seed, verify, limit, buf):
        nm = name.encode() if isinstance(name, str) else bytes(name)
        if len(nm) > 64:
            raise ValueError("SerialStream: name longer than 64 bytes")
        ob = bytearray(HDR + 3 + len(nm) + 4)
        ob[HDR] = PROTO_VERSION
        ob[HDR + 1] = self.window
        ob[HDR + 2] = 1 if self.compress else 0
        ob[HDR + 3:HDR + 3 + len(nm)] = nm
        self._warned = False
        t_heard = ticks_ms()
        while True:
            self._seq = (self._seq + 1) & 0xFFFF
            self._send(ob, T_OPEN, 0, self._seq, 3 + len(nm))
            got = None
            while self._wait(self.gap_ms):
                f = self._frame(self._no_slot)
                if f is None:
                    continue
                if self._ftyp == T_ERR:
                    self._host_error(f)
                if self._ftyp == T_INFO and self._fseq == self._seq:
                    got = f
                    break
            if got is not None:
                break
            self.retries += 1
            self._silence(t_heard, "the stream header")
        self._back(t_heard)
        ln = got[6] | (got[7] << 8)
        hdr = bytes(got[HDR:HDR + ln])
        self._parse_header(hdr, shuffle, seed, verify, limit, buf)

    def _no_slot(self, slot):
        return False

    def _host_error(self, fb):
        ln = fb[6] | (fb[7] << 8)
        raise self._err("host: " + bytes(fb[HDR:HDR + ln]).decode())

    def _parse_header(self, hdr, shuffle, seed, verify, limit, buf):
        if len(hdr) != HEADER_SIZE or hdr[:4] != MAGIC:
            raise DataError("%s: not a qtrain stream header from the host" % self.path)
        (_, version, hsize, count, rows, cols, flags, classes, _, rsize,
         name, _, _) = struct.unpack("<4sHHIHHBBHI16sII", hdr)
        if version != VERSION or _crc32(hdr) != CRC_RESIDUE:
            raise DataError("%s: bad stream header from the host (version %d)" % (self.path, version))
        labelled = flags & 1
        if rsize != labelled + rows * cols + 4:
            raise DataError("%s: record size %d does not match %dx%d" % (self.path, rsize, rows, cols))
        self.version = version
        self.file_count = count
        self.count = count if limit is None else min(count, limit)
        self.rows = rows
        self.cols = cols
        self.labelled = bool(labelled)
        self.classes = classes
        self.name = bytes(name).split(b"\0")[0].decode()
        self.record_size = rsize
        self.rs = rsize
        if buf is None:
            buf = bytearray(rsize)
        elif len(buf) != rsize:
            raise ValueError("SerialStream: buf has %d bytes, records have %d" % (len(buf), rsize))
        self.buf = buf
        self.image = memoryview(buf)[labelled:labelled + rows * cols]
        fl = HDR + 4 + rsize + 4
        w = self.window
        self._fb = [bytearray(fl) for _ in range(w)]
        self._body = [memoryview(b)[HDR:] for b in self._fb]
        self._full = [memoryview(b)[2:] for b in self._fb]
        self._rec = [memoryview(b)[HDR + 4:HDR + 4 + rsize] for b in self._fb]
        self._zfb = bytes(fl)
        self._zrec = bytes(rsize)
        self._scratch = bytearray(fl)
        self._sbody = memoryview(self._scratch)[HDR:]
        self._sfull = memoryview(self._scratch)[2:]
        from array import array
        self._want = array("i", [0] * w)   # file index per slot
        self._have = bytearray(w)
        self._n = 0          # samples in the current window
        self._wstart = -1    # position of slot 0
        self._wepoch = -1
        self._slot_ok = self._slot_free
        self.verify = verify
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.pos = 0
        self.index = -1
        self.perm = Permutation(self.count, seed, 0) if shuffle else None

    # ---- windows -------------------------------------------------------------

    def _slot_free(self, slot):
        return slot < self._n and not self._have[slot]

    def _send_req(self):
        rq = self._req
        self._seq = (self._seq + 1) & 0xFFFF
        k = 0
        for s in range(self._n):
            if not self._have[s]:
                j = HDR + 1 + 5 * k
                v = self._want[s]
                rq[j] = s
                rq[j + 1] = v & 0xFF
                rq[j + 2] = (v >> 8) & 0xFF
                rq[j + 3] = (v >> 16) & 0xFF
                rq[j + 4] = v >> 24
                k += 1
        rq[HDR] = k
        for j in range(HDR + 1 + 5 * k, HDR + 1 + 5 * self.window):
            rq[j] = 0
        self._send(rq, T_REQ, 0, self._seq, 1 + 5 * self.window)

    def _fill(self):
        """Get every slot of the current window from the host."""
        for s in range(self._n):
            self._have[s] = 0
        missing = self._n
        first = (self._seq + 1) & 0xFFFF
        self._warned = False
        self._send_req()
        t_heard = ticks_ms()
        while missing:
            if not self._wait(self.gap_ms):
                self.retries += 1
                self._silence(t_heard, "samples")
                self._send_req()
                continue
            fb = self._frame(self._slot_ok)
            if fb is None:
                continue
            typ = self._ftyp
            slot = self._fslot
            seq = self._fseq
            if typ == T_ERR:
                self._host_error(fb)
            if typ != T_DATA and typ != T_DATAZ:
                self.stale += 1
                continue
            idx = fb[HDR] | (fb[HDR + 1] << 8) | (fb[HDR + 2] << 16) | (fb[HDR + 3] << 24)
            if ((seq - first) & 0xFFFF) > ((self._seq - first) & 0xFFFF) \
                    or slot >= self._n or self._want[slot] != idx:
                self.stale += 1
                continue
            if fb is self._scratch:
                self.dups += 1
                continue
            self._have[slot] = 1
            self.frames += 1
            missing -= 1
            self._back(t_heard)
            t_heard = ticks_ms()
        self._back(t_heard)
        self._send(self._ack, T_ACK, 0, self._seq, 0)

    def _load(self, start, epoch):
        """Fetch the window of positions start.. of `epoch`."""
        n = self.count - start
        if n > self.window:
            n = self.window
        self._n = n
        for s in range(n):
            self._want[s] = self.perm.at(start + s) if self.perm is not None else start + s
        self._wstart = start
        self._wepoch = epoch
        self._fill()

    def _use(self, slot):
        fb = self._fb[slot]
        i = self._want[slot]
        if fb[2] == T_DATAZ:
            self.buf[:] = self._zrec
            if _unz(fb, HDR + 4, HDR + (fb[6] | (fb[7] << 8)), self.buf, self.rs) != self.rs:
                raise DataError("%s: sample %d: bad zero-run encoding from the host" % (self.path, i))
        else:
            self.buf[:] = self._rec[slot]
        if self.verify and _crc32(self.buf) != CRC_RESIDUE:
            raise DataError("%s: CRC mismatch in sample %d as sent by the host: the host's "
                            "file is corrupted" % (self.path, i))
        self.index = i
        if self.labelled:
            lab = self.buf[0]
            if lab >= self.classes:
                raise DataError("%s: label %d of sample %d is out of range 0..%d"
                                % (self.path, lab, i, self.classes - 1))
            return lab
        return -1

    # ---- the data.Stream interface -------------------------------------------

    def next(self):
        """The next sample of the current order (a new epoch after the last);
        returns its label, pixels in self.image."""
        p = self.pos
        if p >= self.count:
            if self.count == 0:
                raise DataError("%s: no samples" % self.path)
            self._start_epoch(self.epoch + 1)
            p = 0
        slot = p - self._wstart
        if self._wepoch != self.epoch or not 0 <= slot < self._n:
            self._load(p, self.epoch)
            slot = 0
        lab = self._use(slot)
        self.pos = p + 1
        return lab

    def read(self, i):
        """Sample i in file order (one request); returns its label."""
        if not 0 <= i < self.file_count:
            raise IndexError("%s: sample %d out of range 0..%d" % (self.path, i, self.file_count - 1))
        self._n = 1
        self._want[0] = i
        self._wstart = -1
        self._wepoch = -1
        self._fill()
        return self._use(0)

    def _start_epoch(self, epoch):
        self.epoch = epoch
        self.pos = 0
        if self.perm is not None:
            self.perm.set(self.seed, epoch)

    def seek(self, pos, epoch=None):
        """Continue at position `pos` of `epoch` (default: the current one)."""
        if epoch is not None and epoch != self.epoch:
            self._start_epoch(epoch)
        if not 0 <= pos <= self.count:
            raise IndexError("%s: position %d out of range 0..%d" % (self.path, pos, self.count))
        self.pos = pos

    def order(self, p):
        """The sample index at position p of the current epoch's order."""
        return self.perm.at(p) if self.perm is not None else p

    def __iter__(self):
        if self.pos >= self.count:
            self._start_epoch(self.epoch + 1)
        while self.pos < self.count:
            yield self.next()

    def stats(self):
        """Link counters since open: frames, CRC errors, retries, outages, ..."""
        return {"frames": self.frames, "crc_errors": self.crc_errors, "bad_headers": self.bad_headers,
                "junk": self.junk, "dups": self.dups, "stale": self.stale, "retries": self.retries,
                "outages": self.outages}

    def close(self):
        """Give Ctrl-C back to the console and stop polling the serial input."""
        if self._kbd:
            self._kbd = False
            try:
                import micropython
                micropython.kbd_intr(3)
            except (ImportError, AttributeError):
                pass
        if self._poll is not None:
            try:
                self._poll.unregister(self._in)
            except (OSError, ValueError, KeyError):
                pass
            self._poll = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<SerialStream %s: %d x %dx%d, window %d, epoch %d pos %d>" % (
            self.path, self.count, self.rows, self.cols, self.window, self.epoch, self.pos)
