"""Read a qtrain sample stream (.qtds) on the board, one sample at a time.

    from qtrain.data import Stream
    s = Stream("train.qtds", shuffle=True, seed=1)
    label = s.next()          # reads the next sample; pixels in s.image
    s.image                   # memoryview of rows*cols uint8 pixels (reused)
    s.epoch, s.pos            # where we are: save these in the checkpoint
    s.seek(pos, epoch)        # ... and resume there after a reset

Works on a file in flash, on a file served by `mpremote mount` and on
CPython (host tests).  Format: docs/DATA_FORMAT.md.  Every sample is read
with one readinto() into a buffer allocated when the stream is opened, and
checked against its own CRC-32, so reading allocates nothing per sample and
a corrupted sample is reported (naming the file and the sample), never
trained on.

Shuffling needs no memory: position p of epoch e maps to the sample
Permutation(n, seed, e).at(p), a keyed 4-round Feistel bijection over the
next even power of two >= n, cycle-walked into [0, n).  The host tools
compute the same order (qtrain_host.stream.Permutation).
"""
if False:  # for type checkers only; compiled away
    from typing import Any

import errno  # here, not in _mount_begin: `errno` is looked up on the filesystem first (the mount)

try:
    from _qtrain import crc32 as _crc32
except ImportError:  # CPython, or the natmod is not on the path
    try:
        from binascii import crc32 as _crc32
    except ImportError:
        try:
            from zlib import crc32 as _crc32  # type: ignore[import-not-found,no-redef]  # not in MicroPython 1.26
        except ImportError:   # neither natmod nor binascii: the small-int CRC (its code loads only then)
            from .crc_py import crc32 as _crc32

MAGIC = b"QTDS"
VERSION = 1
HEADER_SIZE = 48
# CRC-32 of (data + little-endian CRC-32 of data) is this constant for any
# data: one call checks a record and its stored CRC, and the result fits a
# small int on 32-bit ports (no allocation).
CRC_RESIDUE = 0x2144DF1C
MAX_SHUFFLE = 1 << 28


class DataError(ValueError):
    """A stream file that is not one, is truncated, corrupt or inconsistent.
    The message starts with the file's path."""


class LinkLostError(DataError):
    """The host serving the file (`mpremote mount`) stopped answering.  The
    message names the file and the sample; attributes epoch and pos (samples
    of that epoch already consumed) say where to resume."""
    epoch = -1
    pos = -1


# Seconds the board waits for the `mpremote mount` host to acknowledge a
# request before it calls the link lost (mpremote itself allows 1 s between
# the bytes of a reply; the acknowledgement gets a little more, for a busy
# host).  A false alarm only ends the run with a resumable checkpoint.
LINK_TIMEOUT_S = 3
MOUNT_SYNC = 0x18  # mpremote's request/acknowledge byte


def _mount_begin(self, kind):
    """mpremote's RemoteCommand.begin() with a bounded wait.  mpremote 1.26's
    own begin() polls for the host's acknowledgement and then calls a
    blocking stdin readinto() even when the poll timed out, so a host that
    went away leaves the board waiting for ever.  This one gives up after
    LINK_TIMEOUT_S silent seconds with OSError(ETIMEDOUT)."""
    import micropython  # a core module: never looked up on the filesystem
    micropython.kbd_intr(-1)  # as begin(): Ctrl-C is a protocol byte now
    b4 = self.b4
    b4[0] = MOUNT_SYNC
    b4[1] = kind
    self.fout.write(b4, 2)
    for _ in range(LINK_TIMEOUT_S):
        if self.poller.poll(1000):
            self.fin.readinto(b4, 1)
            if b4[0] == MOUNT_SYNC:
                return
    self.end()
    raise OSError(errno.ETIMEDOUT, "the host does not answer")


def guard_mount_link(f):
    """If `f` is a file served by `mpremote mount` (its board-side object
    carries the protocol in f.cmd), bound its waits for the host (see
    _mount_begin) and return True.  A no-op on any other file.  Installed
    once per mount: every file and the directory calls share that class."""
    cmd = getattr(f, "cmd", None)
    if cmd is None:
        return False
    cls = type(cmd)
    for name in ("begin", "end", "poller", "fin", "fout", "b4"):
        if not hasattr(cmd, name):
            return False  # another mpremote version: keep its own code
    if cls.begin is not _mount_begin:
        cls.begin = _mount_begin
    return True


def is_link_lost(e):
    """Whether exception `e` from a file under `mpremote mount` means the
    host went away: our bounded begin() raises OSError(ETIMEDOUT), mpremote's
    reads raise a plain Exception('timeout waiting for remote')."""
    if isinstance(e, OSError):
        return e.args[:1] == (errno.ETIMEDOUT,)
    return "timeout waiting for remote" in str(e)


def _mix15(x):
    # 15-bit mixer; every intermediate stays below 2**30 (a small int).
    x = (x * 0x6D2B + 0x4F1) & 0x7FFF
    x ^= x >> 7
    x = (x * 0x3A35) & 0x7FFF
    return x ^ (x >> 8)


def _key(r, seed, epoch):
    k = _mix15(r)
    k = _mix15(k ^ (epoch & 0x7FFF))
    k = _mix15(k ^ (epoch >> 15))
    k = _mix15(k ^ (seed & 0x7FFF))
    return _mix15(k ^ (seed >> 15))


class Permutation:
    """A seeded bijection of [0, n) computed per index, with no table.

    at(p) -> the index at position p.  set(seed, epoch) picks another
    permutation (one per epoch) in O(1)."""

    def __init__(self, n, seed=0, epoch=0):
        if n > MAX_SHUFFLE:
            raise ValueError("Permutation: n=%d is more than %d" % (n, MAX_SHUFFLE))
        self.n = n
        b = 2
        while (1 << b) < n:
            b += 2
        self.half = b >> 1
        self.mask = (1 << self.half) - 1
        self.set(seed, epoch)

    def set(self, seed, epoch):
        """Switch to the order of (seed, epoch): each epoch has its own."""
        seed &= 0x3FFFFFFF
        epoch &= 0x3FFFFFFF
        self.k0 = _key(1, seed, epoch)
        self.k1 = _key(2, seed, epoch)
        self.k2 = _key(3, seed, epoch)
        self.k3 = _key(4, seed, epoch)

    def at(self, p):
        """The sample index at position p of this order (0 <= p < n)."""
        if not 0 <= p < self.n:
            raise IndexError("Permutation.at: position %d out of range 0..%d" % (p, self.n - 1))
        h = self.half
        m = self.mask
        n = self.n
        x = p
        while True:
            left = x >> h
            right = x & m
            t = (right ^ self.k0) * 0x5BD1 + self.k0
            left, right = right, left ^ ((t ^ (t >> h)) & m)
            t = (right ^ self.k1) * 0x5BD1 + self.k1
            left, right = right, left ^ ((t ^ (t >> h)) & m)
            t = (right ^ self.k2) * 0x5BD1 + self.k2
            left, right = right, left ^ ((t ^ (t >> h)) & m)
            t = (right ^ self.k3) * 0x5BD1 + self.k3
            left, right = right, left ^ ((t ^ (t >> h)) & m)
            x = (left << h) | right
            if x < n:
                return x


class Stream:
    """A sample stream file opened for reading.

    path     file name (on flash, or under an `mpremote mount`)
    shuffle  False: file order.  True: a new seeded order every epoch.
    seed     shuffling seed (int)
    verify   check every sample's CRC-32 (default True)
    limit    use only the first `limit` samples of the file
    buf      optional bytearray of record_size bytes to read into

    Attributes: count, rows, cols, labelled, classes, name, record_size,
    epoch, pos (samples consumed in this epoch), index (file index of the
    last sample read), image (memoryview of its pixels), buf (the record).
    """

    # Set by qtrain.data_open.open_stream (the header's checks and the
    # reader's setup, a module of its own); declared for type checkers (bare
    # annotations compile to nothing in MicroPython).
    version: int
    count: int
    file_count: int
    rows: int
    cols: int
    labelled: bool
    classes: int
    name: str
    record_size: int
    buf: "Any"
    image: memoryview
    verify: bool
    shuffle: bool
    seed: int
    epoch: int
    pos: int
    index: int
    perm: "Any"
    _fpos: int
    _hsize: int

    def __init__(self, path, shuffle=False, seed=0, verify=True, limit=None, buf=None):
        self.path = path
        self._f = None
        try:
            self._f = open(path, "rb")
        except OSError as e:
            raise self._err("cannot open: %r%s" % (e, " (no such file; under `mpremote mount` paths are "
                                                       "relative to the mounted directory)"
                                                   if e.args and e.args[0] == 2 else ""))
        self._remote = guard_mount_link(self._f)
        try:
            self._open(shuffle, seed, verify, limit, buf)
        except BaseException:
            self._f.close()
            raise

    def _err(self, msg):
        return DataError("%s: %s" % (self.path, msg))

    def _open(self, *args):
        # The header's checks and the reader's setup run once per stream:
        # their code is in qtrain.data_open, which the training loop drops
        # once its stream is open (a board's heap holds the bytecode of
        # every imported module next to the model).
        from .data_open import open_stream
        open_stream(self, *args)

    def read(self, i):
        """Read sample `i` (file order) into self.buf; return its label
        (-1 for an unlabelled stream)."""
        if not 0 <= i < self.file_count:
            raise IndexError("%s: sample %d out of range 0..%d" % (self.path, i, self.file_count - 1))
        rsize = self.record_size
        off = self._hsize + i * rsize
        f = self._f
        if f is None:
            raise self._err("read after close()")
        try:
            if off != self._fpos:
                f.seek(off)
            n = f.readinto(self.buf) or 0
        except Exception as e:
            self._fpos = -1
            if self._remote and is_link_lost(e):
                err = LinkLostError("%s: the link to the host serving this file (`mpremote mount`) was "
                                    "lost reading sample %d (epoch %d, position %d): %r.  Reconnect and "
                                    "run again; a stream resumes with seek(%d, %d)"
                                    % (self.path, i, self.epoch, self.pos, e, self.pos, self.epoch))
                err.epoch, err.pos = self.epoch, self.pos
                raise err
            if not isinstance(e, OSError):
                raise
            raise self._err("read error at sample %d: %r (link lost or file removed?); "
                            "reopen and seek(pos, epoch) to resume" % (i, e))
        if n != rsize:
            self._fpos = -1
            raise self._err("truncated at sample %d: %d of %d bytes" % (i, n, rsize))
        self._fpos = off + rsize
        self.index = i
        if self.verify and _crc32(self.buf) != CRC_RESIDUE:
            raise self._err("CRC mismatch in sample %d (byte offset %d): corrupted file or transfer"
                            % (i, off))
        if self.labelled:
            lab = self.buf[0]
            if lab >= self.classes:
                raise self._err("label %d of sample %d is out of range 0..%d"
                                % (lab, i, self.classes - 1))
            return lab
        return -1

    def next(self):
        """Read the next sample of the current order (starting a new epoch
        after the last one); return its label.  Pixels in self.image."""
        p = self.pos
        if p >= self.count:
            if self.count == 0:
                raise self._err("no samples")
            self._start_epoch(self.epoch + 1)
            p = 0
        lab = self.read(self.perm.at(p) if self.perm is not None else p)
        self.pos = p + 1
        return lab

    def _start_epoch(self, epoch):
        self.epoch = epoch
        self.pos = 0
        if self.perm is not None:
            self.perm.set(self.seed, epoch)

    def seek(self, pos, epoch=None):
        """Continue at position `pos` (samples already consumed) of
        `epoch` (default: the current one), e.g. from a checkpoint."""
        if epoch is not None and epoch != self.epoch:
            self._start_epoch(epoch)
        if not 0 <= pos <= self.count:
            raise IndexError("%s: position %d out of range 0..%d" % (self.path, pos, self.count))
        self.pos = pos

    def order(self, p):
        """File index of position `p` in the current epoch."""
        return self.perm.at(p) if self.perm is not None else p

    def __iter__(self):
        """Iterate over the rest of the current epoch (a new one if the
        current one is done), yielding labels; pixels in self.image."""
        if self.pos >= self.count:
            self._start_epoch(self.epoch + 1)
        while self.pos < self.count:
            yield self.next()

    def close(self):
        """Close the file; reading after this raises DataError."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<Stream %s: %d x %dx%d%s, epoch %d pos %d>" % (
            self.path, self.count, self.rows, self.cols,
            " labelled %d classes" % self.classes if self.labelled else "", self.epoch, self.pos)
