"""Opening a sample stream (.qtds) for qtrain.data.Stream: the header's
checks (docs/DATA_FORMAT.md) and the reader's setup.

A module of its own because a stream runs this code once, when it opens: a
board's heap holds the bytecode of every imported module next to the model,
and the training loop drops this one (qtrain.unload("data_open")) once its
stream is open.  Stream imports it on every open.
"""
import struct

from .data import CRC_RESIDUE, HEADER_SIZE, MAGIC, VERSION, Permutation, _crc32

HEADER_FMT = "<4sHHIHHBBHI16sII"
FLAG_LABELS = 1


def open_stream(s, shuffle, seed, verify, limit, buf):
    """Read and check the header of Stream `s`'s open file (s._f), leave the
    file at the first record and set s's attributes (count, rows, cols,
    labelled, classes, name, record_size, buf, image, epoch, pos, perm...).
    DataError (s._err, naming the file) for a header that is not a valid
    one or a file whose length does not match it.  In three functions: a
    board loads each one's bytecode into a block of its own, and the
    ConvVAE at the Pico's real heap leaves only small ones."""
    f = s._f
    version, hsize, count, rows, cols, labelled, classes, rsize, name = _check_header(s, f)
    _check_length(s, f, hsize, count, rsize)
    s._fpos = hsize
    s.version = version
    s.count = count if limit is None else min(count, limit)
    s.file_count = count
    s.rows = rows
    s.cols = cols
    s.labelled = bool(labelled)
    s.classes = classes
    s.name = bytes(name).split(b"\0")[0].decode()
    s.record_size = rsize
    s._hsize = hsize
    if buf is None:
        buf = bytearray(rsize)
    elif len(buf) != rsize:
        raise ValueError("Stream: buf has %d bytes, records of %s have %d" % (len(buf), s.path, rsize))
    s.buf = buf
    mv = memoryview(buf)
    s.image = mv[labelled:labelled + rows * cols]
    s.verify = verify
    s.shuffle = shuffle
    s.seed = seed
    s.epoch = 0
    s.pos = 0
    s.index = -1
    s.perm = Permutation(s.count, seed, 0) if shuffle else None


def _check_header(s, f):
    """Read the header from `f` and check it; -> (version, header size,
    count, rows, cols, labelled, classes, record size, name field)."""
    hdr = bytearray(HEADER_SIZE)
    n = f.readinto(hdr) or 0
    if n >= 4 and hdr[:4] != MAGIC:
        n = HEADER_SIZE  # report the magic below
    if n < HEADER_SIZE:
        raise s._err("truncated header: %d bytes, a stream header has %d" % (n, HEADER_SIZE))
    (magic, version, hsize, count, rows, cols, flags, classes, _, rsize,
     name, _, _) = struct.unpack(HEADER_FMT, hdr)
    if magic != MAGIC:
        raise s._err("not a qtrain stream (magic %r, expected %r); convert IDX files with "
                     "`python -m qtrain_host prepare`" % (bytes(magic), MAGIC))
    if version != VERSION:
        raise s._err("stream format version %d, this reader reads version %d" % (version, VERSION))
    if _crc32(hdr) != CRC_RESIDUE:
        raise s._err("header CRC mismatch: the file is corrupted")
    if hsize != HEADER_SIZE:
        raise s._err("header size %d, version %d has %d" % (hsize, VERSION, HEADER_SIZE))
    if flags & ~FLAG_LABELS:
        raise s._err("unknown flags 0x%x" % flags)
    labelled = flags & FLAG_LABELS
    if rows == 0 or cols == 0:
        raise s._err("empty sample shape %dx%d" % (rows, cols))
    if labelled and classes == 0:
        raise s._err("labelled stream with 0 classes")
    if rsize != labelled + rows * cols + 4:
        raise s._err("record size %d does not match %dx%d pixels%s + CRC"
                     % (rsize, rows, cols, " + label" if labelled else ""))
    return version, hsize, count, rows, cols, labelled, classes, rsize, name


def _check_length(s, f, hsize, count, rsize):
    """Check that the file holds the header's `count` records, no more, no
    less, and seek `f` to the first (a stream that cannot seek is checked
    while reading)."""
    try:
        end = f.seek(0, 2)
    except (OSError, AttributeError):
        return
    want = hsize + count * rsize
    if end < want:
        raise s._err("truncated: %d bytes, the header's %d samples of %d bytes need %d "
                     "(%d complete samples present)"
                     % (end, count, rsize, want, (end - hsize) // rsize if end > hsize else 0))
    if end > want:
        raise s._err("%d trailing bytes after the %d samples the header declares"
                     % (end - want, count))
    f.seek(hsize)
