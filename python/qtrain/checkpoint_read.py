"""Reading checkpoints (qtrain.checkpoint's format): latest(), peek(),
load(), and commit() for a run that resumed.  A module of its own so that a
training run that starts fresh loads only the writer (qtrain.checkpoint) next
to its model; `checkpoint.load` and the other names here resolve through
qtrain.checkpoint as well (imported on first use), and a resumed run drops
this module again (qtrain.unload) once it has loaded its state.
"""
import struct

from .checkpoint import (_HEADER, _HEADER_LEN, CheckpointError, _byte_view, _candidates, _commit_interrupted, _exists,
                         _nbytes, _typecode, board_copy, verify)


def latest(path):
    """The newest valid file among path, path.tmp, path.bak (and the board
    copy of a path under `mpremote mount`, see board_copy()), or None."""
    return _latest(path)[0]


def _latest(path):
    """-> (newest valid file or None, its seq); each candidate is CRC-checked once."""
    best = None
    best_seq = -1
    cands = _candidates(path)
    onboard = board_copy(path)
    if onboard is not None:
        cands += _candidates(onboard)
    for cand in cands:
        try:
            seq = verify(cand)
        except CheckpointError:
            continue
        if seq > best_seq:
            best, best_seq = cand, seq
    return best, best_seq


def peek(path):
    """The int/float/str entries of the newest valid checkpoint (model kind,
    sizes, counters) without reading its arrays: cheap enough to decide what
    to build before loading the weights into it."""
    found = latest(path)
    if found is None:
        raise CheckpointError("%s: no valid checkpoint (checked .tmp and .bak too)" % path)
    out = {}
    with open(found, "rb") as f:
        for name, kind, nbytes in _entries(f):
            if kind in "qDs":
                out[name] = _read_value(f, found, name, kind, nbytes, None)
            else:
                f.seek(nbytes, 1)
    return out


def _entries(f):
    """Yield (name, kind, nbytes) of each entry of an open checkpoint, the
    file positioned at the entry's data (the caller reads or skips it)."""
    _magic, _v, n, _seq, _len = struct.unpack(_HEADER, f.read(_HEADER_LEN))
    for _ in range(n):
        ln = f.read(1)[0]
        name = f.read(ln).decode()
        kind, nbytes = struct.unpack("<BI", f.read(5))
        yield name, chr(kind), nbytes


def load(path, into=None):
    """Load the newest valid checkpoint for `path` (see latest()).

    Returns (state, seq). With `into` (dict of preallocated buffers, e.g. a
    model's weights), array/bytearray entries are read straight into those
    buffers (lengths and typecodes must match) and not allocated again.
    Raises CheckpointError when no valid file exists."""
    found, seq = _latest(path)
    if found is None:
        raise CheckpointError("%s: no valid checkpoint (checked .tmp and .bak too)" % path)
    state = {} if into is None else into
    with open(found, "rb") as f:
        for name, kind, nbytes in _entries(f):
            state[name] = _read_value(f, found, name, kind, nbytes, state.get(name))
    return state, seq


def _read_value(f, path, name, kind, nbytes, target):
    if kind == "q":
        return struct.unpack("<q", f.read(8))[0]
    if kind == "D":
        return struct.unpack("<d", f.read(8))[0]
    if kind == "s":
        return f.read(nbytes).decode()
    if target is not None and not isinstance(target, (int, float, str, bytes)):
        ttc = "y" if isinstance(target, bytearray) else _typecode(target)
        if ttc != kind and not (kind == "y" and ttc == "B") and not (kind == "B" and ttc == "y"):
            raise CheckpointError("%s: entry %r has type %r, the model expects %r" % (path, name, kind, ttc))
        if _nbytes(target) != nbytes:
            raise CheckpointError("%s: entry %r has %d bytes, the model expects %d" % (path, name, nbytes, _nbytes(target)))
        if (f.readinto(_byte_view(target)) or 0) != nbytes:
            raise CheckpointError("%s: entry %r is truncated" % (path, name))
        return target
    data = f.read(nbytes)
    if kind == "y":
        return bytearray(data)
    import array
    return array.array(kind, data)


def commit(path):
    """Called by a run that resumed from latest(path), so that it does not
    end with an older `path` when the save it resumed from was its last.
    Commits an interrupted save (a reset between the end of writing
    `path.tmp` and its renames: load() resumed from `.tmp`).  -> True when a
    board copy exists (saved when the `mpremote mount` link was lost, see
    board_copy()): the caller then saves the state it loaded into `path`,
    which removes the copy."""
    _commit_interrupted(path, path + ".tmp")
    onboard = board_copy(path)
    if onboard is None:
        return False
    for cand in _candidates(onboard):
        if _exists(cand):
            return True
    return False
