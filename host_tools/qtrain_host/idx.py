"""IDX files (the MNIST / Fashion-MNIST distribution format), gzip'ed or raw.

    from qtrain_host import idx
    images = idx.read_images("train-images-idx3-ubyte.gz")   # (N, 28, 28) uint8
    labels = idx.read_labels("train-labels-idx1-ubyte.gz", classes=10)
    idx.read_pair(images_path, labels_path)                  # both, counts checked

Layout (big-endian): two zero bytes, a type code byte (0x08 = uint8, ...), a byte
with the number of dimensions, one u32 per dimension, then the data in row-major
order.  Whether a file is gzip'ed is decided from its first two bytes, not from its
name.  Every problem (unknown magic, truncated header or data, trailing bytes, a
shape or label range other than the one asked for, a broken gzip stream) raises
IdxError whose message starts with the file's path.
"""
import gzip
import os
import struct
import zlib

import numpy as np

# type code -> numpy dtype (big-endian as stored)
DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
MAX_NDIM = 8


class IdxError(ValueError):
    """A malformed IDX file; the message names the file and the problem."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__("%s: %s" % (self.path, problem))


def read_bytes(path):
    """The file's content, gunzipped if it is a gzip file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise IdxError(path, "no such file") from None
    except OSError as e:
        raise IdxError(path, "cannot read (%s)" % e.strerror) from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise IdxError(path, "truncated gzip stream (the download or copy was cut short)") from None
    except (OSError, zlib.error) as e:
        raise IdxError(path, "corrupt gzip stream (%s)" % e) from None


def parse(data, path="<bytes>"):
    """Parse IDX bytes -> numpy array (native byte order, read-only copy-free
    view for uint8).  Checks magic, header length and exact data length."""
    if len(data) < 4:
        raise IdxError(path, "truncated header: %d bytes, an IDX header has at least 4" % len(data))
    z0, z1, code, ndim = data[0], data[1], data[2], data[3]
    if z0 or z1 or code not in DTYPES:
        raise IdxError(path, "not an IDX file: magic %s (expected 00 00 <type 08/09/0B/0C/0D/0E> <ndim>)"
                       % data[:4].hex(" "))
    if not 1 <= ndim <= MAX_NDIM:
        raise IdxError(path, "bad number of dimensions %d in the magic (expected 1..%d)" % (ndim, MAX_NDIM))
    hlen = 4 + 4 * ndim
    if len(data) < hlen:
        raise IdxError(path, "truncated header: %d bytes, %d dimensions need %d" % (len(data), ndim, hlen))
    dims = struct.unpack(">%dI" % ndim, data[4:hlen])
    dtype = DTYPES[code]
    n = 1
    for d in dims:
        n *= d
    need = n * dtype.itemsize
    have = len(data) - hlen
    shape = "x".join(str(d) for d in dims)
    if have < need:
        raise IdxError(path, "truncated data: header says %s %s (%d bytes), file has %d bytes after the header"
                       % (shape, dtype.name, need, have))
    if have > need:
        raise IdxError(path, "%d trailing bytes after the %s %s data (wrong header or concatenated files)"
                       % (have - need, shape, dtype.name))
    arr = np.frombuffer(data, dtype=dtype, count=n, offset=hlen).reshape(dims)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def read(path):
    """Any IDX file -> numpy array."""
    return parse(read_bytes(path), os.fspath(path))


def read_images(path, shape=None):
    """uint8 images (N, rows, cols).  `shape` = (rows, cols) to require one."""
    arr = read(path)
    if arr.dtype != np.uint8:
        raise IdxError(path, "images must be uint8 (type 0x08), file holds %s" % arr.dtype.name)
    if arr.ndim != 3:
        raise IdxError(path, "images must have 3 dimensions (N, rows, cols), file has %d: %s"
                       % (arr.ndim, "x".join(map(str, arr.shape))))
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise IdxError(path, "empty image shape %dx%d" % arr.shape[1:])
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise IdxError(path, "wrong image shape %dx%d, expected %dx%d" % (arr.shape[1:] + tuple(shape)))
    return arr


def read_labels(path, classes=None):
    """uint8 labels (N,).  `classes` = K to require every label in 0..K-1."""
    arr = read(path)
    if arr.dtype != np.uint8:
        raise IdxError(path, "labels must be uint8 (type 0x08), file holds %s" % arr.dtype.name)
    if arr.ndim != 1:
        raise IdxError(path, "labels must have 1 dimension (N), file has %d: %s"
                       % (arr.ndim, "x".join(map(str, arr.shape))))
    if classes is not None:
        check_labels(arr, classes, path)
    return arr


def check_labels(labels, classes, path):
    bad = np.flatnonzero(labels >= classes)
    if bad.size:
        i = int(bad[0])
        raise IdxError(path, "label %d at index %d is out of range 0..%d (%d labels out of range)"
                       % (int(labels[i]), i, classes - 1, bad.size))


def read_pair(images_path, labels_path, shape=None, classes=None):
    """(images, labels) with matching counts."""
    images = read_images(images_path, shape)
    labels = read_labels(labels_path, classes)
    if len(images) != len(labels):
        raise IdxError(labels_path, "%d labels but %s holds %d images"
                       % (len(labels), os.fspath(images_path), len(images)))
    return images, labels


def encode(arr):
    """numpy array -> IDX bytes."""
    arr = np.asarray(arr)
    for code, dt in DTYPES.items():
        if dt.kind == arr.dtype.kind and dt.itemsize == arr.dtype.itemsize:
            break
    else:
        raise ValueError("no IDX type for dtype %s" % arr.dtype)
    if not 1 <= arr.ndim <= MAX_NDIM:
        raise ValueError("IDX needs 1..%d dimensions, got %d" % (MAX_NDIM, arr.ndim))
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(">%dI" % arr.ndim, *arr.shape)
    return head + np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()


def write(path, arr, compress=None):
    """Write an IDX file; gzip'ed if `compress` (default: path ends in .gz).
    The gzip stream is reproducible: no name, mtime 0, level 9."""
    path = os.fspath(path)
    data = encode(arr)
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        data = gzip_bytes(data)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def gzip_bytes(data):
    import io
    bio = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=bio, compresslevel=9, mtime=0) as g:
        g.write(data)
    return bio.getvalue()


def describe(path):
    """A one-paragraph description of an IDX file (for `qtrain_host info`)."""
    with open(path, "rb") as f:
        raw = f.read(2)
    arr = read(path)
    lines = ["%s: IDX%s, %s, shape %s" % (os.fspath(path), " (gzip)" if raw == GZIP_MAGIC else "",
                                          arr.dtype.name, "x".join(map(str, arr.shape)))]
    if arr.ndim == 1 and arr.dtype == np.uint8:
        counts = np.bincount(arr, minlength=int(arr.max()) + 1 if arr.size else 0)
        lines.append("  labels 0..%d, counts: %s" % (len(counts) - 1, ", ".join(map(str, counts))))
    elif arr.size:
        lines.append("  values %s..%s, mean %.2f" % (arr.min(), arr.max(), float(arr.mean())))
    return "\n".join(lines)
