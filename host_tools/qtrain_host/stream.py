"""qtrain sample stream files (.qtds): write them on the host, read them back.

The board reads them with python/qtrain/data.py; docs/DATA_FORMAT.md is the
specification.  In short (little-endian):

    header (48 bytes)
      0  4s   magic b"QTDS"
      4  u16  version (1)
      6  u16  header size (48)
      8  u32  count: number of samples
     12  u16  rows
     14  u16  cols
     16  u8   flags: bit 0 = each record starts with a label byte
     17  u8   classes (labels are 0..classes-1; 0 if unlabelled)
     18  u16  reserved (0)
     20  u32  record size = has_label + rows*cols + 4
     24  16s  name, ASCII, NUL padded (e.g. b"mnist/train")
     40  u32  reserved (0)
     44  u32  CRC-32 of bytes 0..43
    count records
      [label u8 if labelled] [rows*cols pixels u8, row-major] [u32 CRC-32 of the record's bytes before it]

The file is exactly 48 + count * record size bytes.
"""
import os
import struct
import zlib

import numpy as np

MAGIC = b"QTDS"
VERSION = 1
HEADER_SIZE = 48
HEADER_FMT = "<4sHHIHHBBHI16sII"
FLAG_LABELS = 1
CRC_RESIDUE = 0x2144DF1C
SUFFIX = ".qtds"
MAX_SHUFFLE = 1 << 28

assert struct.calcsize(HEADER_FMT) == HEADER_SIZE


class StreamError(ValueError):
    """A malformed stream file, or data that cannot be written as one.
    The message starts with the file's path."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__("%s: %s" % (self.path, problem))


class Header:
    def __init__(self, count, rows, cols, labelled, classes, name=""):
        self.count, self.rows, self.cols = int(count), int(rows), int(cols)
        self.labelled, self.classes, self.name = bool(labelled), int(classes), name

    @property
    def record_size(self):
        return int(self.labelled) + self.rows * self.cols + 4

    @property
    def file_size(self):
        return HEADER_SIZE + self.count * self.record_size

    def pack(self):
        name = self.name.encode("ascii")
        if len(name) > 16:
            raise ValueError("stream name %r is longer than 16 bytes" % self.name)
        body = struct.pack(HEADER_FMT[:-1], MAGIC, VERSION, HEADER_SIZE, self.count, self.rows,
                           self.cols, FLAG_LABELS if self.labelled else 0, self.classes, 0,
                           self.record_size, name, 0)
        return body + struct.pack("<I", zlib.crc32(body))

    def __repr__(self):
        return "Header(count=%d, %dx%d, labelled=%s, classes=%d, name=%r)" % (
            self.count, self.rows, self.cols, self.labelled, self.classes, self.name)


def parse_header(data, path="<bytes>", file_size=None):
    """Check a header (and the file size if given) -> Header."""
    if len(data) >= 4 and data[:4] != MAGIC:
        raise StreamError(path, "not a qtrain stream (magic %r, expected %r); convert IDX files with "
                          "`python -m qtrain_host prepare`" % (bytes(data[:4]), MAGIC))
    if len(data) < HEADER_SIZE:
        raise StreamError(path, "truncated header: %d bytes, a stream header has %d" % (len(data), HEADER_SIZE))
    (magic, version, hsize, count, rows, cols, flags, classes, _, rsize,
     name, _, _) = struct.unpack(HEADER_FMT, data[:HEADER_SIZE])
    if version != VERSION:
        raise StreamError(path, "stream format version %d, this reader reads version %d" % (version, VERSION))
    if zlib.crc32(data[:HEADER_SIZE]) != CRC_RESIDUE:
        raise StreamError(path, "header CRC mismatch: the file is corrupted")
    if hsize != HEADER_SIZE:
        raise StreamError(path, "header size %d, version %d has %d" % (hsize, VERSION, HEADER_SIZE))
    if flags & ~FLAG_LABELS:
        raise StreamError(path, "unknown flags 0x%x" % flags)
    labelled = bool(flags & FLAG_LABELS)
    if rows == 0 or cols == 0:
        raise StreamError(path, "empty sample shape %dx%d" % (rows, cols))
    if labelled and classes == 0:
        raise StreamError(path, "labelled stream with 0 classes")
    h = Header(count, rows, cols, labelled, classes, name.split(b"\0")[0].decode("ascii", "replace"))
    if rsize != h.record_size:
        raise StreamError(path, "record size %d does not match %dx%d pixels%s + CRC"
                          % (rsize, rows, cols, " + label" if labelled else ""))
    if file_size is not None:
        if file_size < h.file_size:
            have = max(0, (file_size - HEADER_SIZE) // h.record_size)
            raise StreamError(path, "truncated: %d bytes, the header's %d samples of %d bytes need %d "
                              "(%d complete samples present)" % (file_size, count, rsize, h.file_size, have))
        if file_size > h.file_size:
            raise StreamError(path, "%d trailing bytes after the %d samples the header declares"
                              % (file_size - h.file_size, count))
    return h


def _check(images, labels, classes, path):
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise StreamError(path, "images must be uint8 (N, rows, cols), got %s %s"
                          % (images.dtype, "x".join(map(str, images.shape))))
    n = images.shape[0]
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise StreamError(path, "%d images but labels of shape %s" % (n, labels.shape))
        if classes is None:
            classes = int(labels.max()) + 1 if n else 1
        if not 1 <= classes <= 255:
            raise StreamError(path, "classes=%d, a stream holds 1..255" % classes)
        bad = np.flatnonzero((labels < 0) | (labels >= classes))
        if bad.size:
            raise StreamError(path, "label %d at index %d is out of range 0..%d"
                              % (int(labels[bad[0]]), int(bad[0]), classes - 1))
    return images, labels, classes


def _records(images, labels):
    """Records (n, record_size) uint8 of a block of samples, CRCs filled in."""
    n, rows, cols = images.shape
    off = int(labels is not None)
    rec = np.empty((n, off + rows * cols + 4), dtype=np.uint8)
    if off:
        rec[:, 0] = labels.astype(np.uint8)
    rec[:, off:off + rows * cols] = images.reshape(n, rows * cols)
    body = rec[:, :-4]
    crcs = np.fromiter((zlib.crc32(r) for r in body), dtype="<u4", count=n)
    rec[:, -4:] = crcs.view(np.uint8).reshape(n, 4)
    return rec


def encode(images, labels=None, classes=None, name="", path="<stream>"):
    """numpy images (N, rows, cols) uint8 [+ labels (N,)] -> stream bytes."""
    images, labels, classes = _check(images, labels, classes, path)
    n, rows, cols = images.shape
    h = Header(n, rows, cols, labels is not None, classes if labels is not None else 0, name)
    return h.pack() + _records(images, labels).tobytes()


def write(path, images, labels=None, classes=None, name="", progress=None, block=4096):
    """Write a stream file atomically (temporary file + rename); -> Header.
    `progress(done, total)` is called after each block of samples."""
    path = os.fspath(path)
    images, labels, classes = _check(images, labels, classes, path)
    n, rows, cols = images.shape
    h = Header(n, rows, cols, labels is not None, classes if labels is not None else 0, name)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(h.pack())
            for start in range(0, n, block):
                stop = min(n, start + block)
                f.write(_records(images[start:stop], None if labels is None else labels[start:stop]).tobytes())
                if progress:
                    progress(stop, n)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return h


class StreamData:
    def __init__(self, header, images, labels):
        self.header, self.images, self.labels = header, images, labels


def read(path, verify=True):
    """Read a whole stream file -> StreamData(header, images (N,r,c) uint8,
    labels (N,) uint8 or None); every record's CRC checked if `verify`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise StreamError(path, "no such file") from None
    return decode(data, path, verify)


def decode(data, path="<bytes>", verify=True):
    h = parse_header(data[:HEADER_SIZE], path, len(data))
    rec = np.frombuffer(data, dtype=np.uint8, offset=HEADER_SIZE).reshape(h.count, h.record_size)
    if verify:
        for i in range(h.count):
            if zlib.crc32(rec[i]) != CRC_RESIDUE:
                raise StreamError(path, "CRC mismatch in sample %d (byte offset %d): corrupted file or transfer"
                                  % (i, HEADER_SIZE + i * h.record_size))
    off = int(h.labelled)
    images = rec[:, off:off + h.rows * h.cols].reshape(h.count, h.rows, h.cols)
    labels = None
    if h.labelled:
        labels = rec[:, 0]
        bad = np.flatnonzero(labels >= h.classes)
        if bad.size:
            raise StreamError(path, "label %d of sample %d is out of range 0..%d"
                              % (int(labels[bad[0]]), int(bad[0]), h.classes - 1))
    return StreamData(h, images, labels)


def is_stream(path):
    with open(path, "rb") as f:
        return f.read(4) == MAGIC


def describe(path):
    """Text for `qtrain_host info`."""
    d = read(path)
    h = d.header
    lines = ["%s: qtrain stream v%d %r, %d samples of %dx%d, %s, record %d bytes, file %d bytes, "
             "all CRCs good" % (os.fspath(path), VERSION, h.name, h.count, h.rows, h.cols,
                                "labelled (%d classes)" % h.classes if h.labelled else "unlabelled",
                                h.record_size, h.file_size)]
    if h.labelled:
        counts = np.bincount(d.labels, minlength=h.classes)
        lines.append("  label counts: %s" % ", ".join(map(str, counts)))
    if h.count:
        lines.append("  pixels %d..%d, mean %.2f" % (d.images.min(), d.images.max(), float(d.images.mean())))
    return "\n".join(lines)


# ---- the shuffling order (must match python/qtrain/data.py) -----------------

def _mix15(x):
    x = (x * 0x6D2B + 0x4F1) & 0x7FFF
    x ^= x >> 7
    x = (x * 0x3A35) & 0x7FFF
    return x ^ (x >> 8)


class Permutation:
    """Same bijection as qtrain.data.Permutation (see docs/DATA_FORMAT.md)."""

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
        seed &= 0x3FFFFFFF
        epoch &= 0x3FFFFFFF
        self.keys = []
        for r in range(4):
            k = _mix15(r + 1)
            for v in (epoch & 0x7FFF, epoch >> 15, seed & 0x7FFF, seed >> 15):
                k = _mix15(k ^ v)
            self.keys.append(k)

    def at(self, p):
        if not 0 <= p < self.n:
            raise IndexError("position %d out of range 0..%d" % (p, self.n - 1))
        h, m, x = self.half, self.mask, p
        while True:
            left, right = x >> h, x & m
            for k in self.keys:
                t = (right ^ k) * 0x5BD1 + k
                left, right = right, left ^ ((t ^ (t >> h)) & m)
            x = (left << h) | right
            if x < self.n:
                return x

    def order(self):
        """The whole permutation as a numpy array (host side only)."""
        return np.fromiter((self.at(p) for p in range(self.n)), dtype=np.int64, count=self.n)
