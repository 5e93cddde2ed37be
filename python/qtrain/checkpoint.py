"""Checkpoints that survive a reset in the middle of a write.

A checkpoint is a flat dict of named values: bytearray/bytes, array.array of
any typecode, int, float or str (save() also takes them from a generator of
(name, value) pairs, not held in a dict between saves).  File layout (little-endian):

    b"QTCK"  u16 version  u16 n_entries  u32 seq  u32 body_len
    body: n_entries x [u8 name_len][name][u8 kind][u32 nbytes][data]
    u32 CRC-32 of header + body

`kind` is an array typecode ('B', 'b', 'h', 'H', 'i', 'I', 'f', 'd'), 'y' for
bytes, 'q' for an int (int64), 'D' for a float (float64), 's' for a str.

Atomicity: save() writes `path.tmp`, then renames the previous checkpoint to
`path.bak` and `path.tmp` to `path`.  At every moment at least one complete,
CRC-valid file exists among path / path.tmp / path.bak, and load() takes the
valid one with the highest `seq` (the caller's step counter), so a reset at
any moment loses at most the checkpoint being written.  Works on MicroPython
(littlefs or FAT), on files served by `mpremote mount`, and on CPython (used
by the host tools).

Lost link: a checkpoint whose path is under `mpremote mount` (/remote) has a
copy on the board's own filesystem, board_copy(path) = /<name>.onboard.
When the host stops answering in the middle of a run, save() (or the
trainer, when the loss shows in a data read) writes the state there and
raises data.LinkLostError; latest()/load() consider that copy too, so
running the same command again resumes from it, and the next save() into
the mount removes it.

This module writes (save); the reader (verify, latest, peek, load, commit)
is qtrain.checkpoint_read, and `checkpoint.load` etc. resolve to it,
imported on first use: a fresh training run never loads it.
"""
import os
import struct

try:
    from _qtrain import crc32 as _crc32
except ImportError:  # CPython host tools, or no natmod on the path
    try:
        from binascii import crc32 as _crc32
    except ImportError:
        from zlib import crc32 as _crc32  # type: ignore[import-not-found,no-redef]  # not in MicroPython 1.26

if False:  # for type checkers only; compiled away
    from typing import Any

try:
    import uctypes  # views an array's bytes for mpremote's remote files (_byte_view)
except ImportError:  # CPython: memoryview.cast does it
    uctypes = None

from .data import LinkLostError, guard_mount_link, is_link_lost

MAGIC = b"QTCK"
MOUNT_POINT = "/remote/"  # where `mpremote mount` puts the host's directory
BOARD_COPY_SUFFIX = ".onboard"
BOARD_ROOT = "/"  # the board's own filesystem (a test on the Unix port points it elsewhere)
VERSION = 1
_HEADER = "<4sHHII"
_HEADER_LEN = 16
_CHUNK = 512


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or of another version."""


def _encode(value):
    """-> (kind, payload as a buffer, its size in bytes)."""
    if isinstance(value, (bytes, bytearray)):
        return "y", value, len(value)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return "q", struct.pack("<q", value), 8
    if isinstance(value, float):
        return "D", struct.pack("<d", value), 8
    if isinstance(value, str):
        b = value.encode()
        return "s", b, len(b)
    tc = _typecode(value)
    if tc is not None:
        return tc, value, len(value) * struct.calcsize(tc)
    raise TypeError("checkpoint value of type %s is not supported" % type(value).__name__)


def _typecode(value):
    """An array's typecode; None for anything else.  MicroPython's array has
    no .typecode, but the repr of an empty slice ("array('f')") names it."""
    if isinstance(value, (bytes, bytearray)):
        return None
    tc = getattr(value, "typecode", None)
    if tc is None and type(value).__name__ == "array":
        tc = repr(value[:0])[7]
    return tc


def _nbytes(buf):
    if isinstance(buf, (bytes, bytearray)):
        return len(buf)
    return len(buf) * struct.calcsize(_typecode(buf))


def _byte_view(buf):
    """`buf` as a buffer whose len() is its size in bytes, sharing its
    memory.  mpremote's remote files send and receive len(buf) bytes, which
    for an array is its item count: an array('f') of n floats written as is
    would send n of its 4n bytes."""
    if isinstance(buf, (bytes, bytearray)):
        return buf
    if uctypes is not None:   # MicroPython (tried first: a failed .cast would raise, garbage on every save)
        return uctypes.bytearray_at(uctypes.addressof(buf), _nbytes(buf))
    try:
        return memoryview(buf).cast("B")  # CPython
    except AttributeError:
        return buf  # native files take any buffer


def board_copy(path):
    """Where save_on_board() puts the checkpoint for `path` when `path` is
    under `mpremote mount`: the board's own root filesystem.  None for any
    other path (nothing to fall back to)."""
    full = path
    if not path.startswith("/"):
        try:
            cwd = os.getcwd()
        except (AttributeError, OSError):
            return None
        full = cwd.rstrip("/") + "/" + path
    if not full.startswith(MOUNT_POINT):
        return None
    return BOARD_ROOT + full.rsplit("/", 1)[-1] + BOARD_COPY_SUFFIX


def save_on_board(path, state, seq=0, items=None):
    """Save to board_copy(path) (the link to the host is gone); returns a
    line saying where and how to resume."""
    where = board_copy(path) or path
    save(where, state, seq, items)
    return ("saved a checkpoint at epoch %s, sample %s on the board (%s); reconnect and run the "
            "same command again to resume there" % (state.get("epoch", "?"), state.get("pos", "?"), where))


def save(path, state, seq=0, items=None):
    """Write `state` (dict name -> value) atomically to `path`, followed by
    the (name, value) pairs items() yields, if given: a model's buffers
    named as they are written (VAE.state_items), from a caller that would
    otherwise hold a dict of them between saves (vae_loop.train).  items()
    is called once per pass over the entries (twice).

    Under `mpremote mount`: a lost link while writing saves the state to
    board_copy(path) instead and raises LinkLostError; a completed save
    removes an older board copy."""
    onboard = board_copy(path)
    if onboard is None:
        _save(path, state, seq, items)
        return
    try:
        _save(path, state, seq, items)
    except Exception as e:
        if not is_link_lost(e):
            raise
        msg = save_on_board(path, state, seq, items)
        raise LinkLostError("%s: the link to the host (`mpremote mount`) was lost while writing the "
                            "checkpoint: %r; %s" % (path, e, msg))
    for cand in _candidates(onboard):
        if _exists(cand):
            os.remove(cand)


def _entries(state, items):
    """(name, value) of every entry to write: `state`'s, then items()'s."""
    yield from state.items()
    if items is not None:
        yield from items()


def _save(path, state, seq, items):
    # Two passes over the entries (sizes, then the file) instead of a list of
    # encoded entries: that list took ~4 KB of heap for a ConvVAE's 62
    # entries on armv6m, at the moment the heap is fullest.  The passes make
    # as little garbage as they can (a save runs with a few KB free on the
    # Pico): each entry's header is packed into one buffer, its payload
    # written from the value's own memory.  Entries are written in the order
    # they come (a reader looks them up by name).
    count = body_len = 0
    for name, value in _entries(state, items):
        if not 0 < len(name) < 256:
            raise ValueError("checkpoint entry name must be 1..255 bytes: %r" % name)
        body_len += 1 + len(name) + 1 + 4 + _encode(value)[2]
        count += 1
    if count > 0xFFFF:
        raise ValueError("too many checkpoint entries: %d" % count)
    tmp = path + ".tmp"
    if _exists(tmp):   # a reset interrupted a save: its reader commits it (checkpoint_read)
        from .checkpoint_read import commit_interrupted
        commit_interrupted(path, tmp)
    header = struct.pack(_HEADER, MAGIC, VERSION, count, seq & 0xFFFFFFFF, body_len)
    crc = _crc32(header)
    head = bytearray(1 + 255 + 1 + 4)   # [u8 name_len][name][u8 kind][u32 nbytes]
    with open(tmp, "wb") as f:
        guard_mount_link(f)
        f.write(header)
        written = 0
        for name, value in _entries(state, items):
            nb = name.encode()
            n = len(nb)
            if n != len(name):
                raise ValueError("checkpoint entry name must be ASCII: %r" % name)
            kind, payload, size = _encode(value)
            head[0] = n
            head[1:1 + n] = nb
            head[1 + n] = ord(kind)
            struct.pack_into("<I", head, 2 + n, size)
            part = memoryview(head)[:6 + n]
            f.write(part)
            f.write(_byte_view(payload))
            crc = _crc32(part, crc)
            crc = _crc32(payload, crc)
            written += 1
        if written != count:   # items() must give the same entries on both passes
            raise ValueError("items(): %d entries, then %d" % (count, written))
        f.write(struct.pack("<I", crc & 0xFFFFFFFF))
    _replace(path, tmp)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _replace(path, tmp):
    bak = path + ".bak"
    if _exists(path):
        if _exists(bak):
            os.remove(bak)
        os.rename(path, bak)  # from here on .bak holds the last good one
    os.rename(tmp, path)
    if hasattr(os, "sync"):
        os.sync()


def _candidates(path):
    return (path, path + ".tmp", path + ".bak")


# The reader (verify, latest, peek, load, commit) is in
# qtrain.checkpoint_read: a fresh training run saves but never reads.
_READER = ("verify", "latest", "_latest", "peek", "load", "commit", "_entries", "_read_value")
# Declared for type checkers (bare annotations compile to nothing in MicroPython).
verify: "Any"
latest: "Any"
peek: "Any"
load: "Any"
commit: "Any"


def __getattr__(name):
    """checkpoint.verify, .load, .peek, .latest, .commit: qtrain.checkpoint_read's,
    imported on first use."""
    if name in _READER:
        from . import checkpoint_read
        return getattr(checkpoint_read, name)
    raise AttributeError(name)
