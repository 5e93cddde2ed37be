"""Datasets on disk: find the IDX files of a split, load them, pick balanced
seeded subsets.

A data directory holds the original file names of MNIST / Fashion-MNIST,
gzip'ed or not:

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

Subsets are chosen by a keyed hash of (seed, sample index) (splitmix64), not by
numpy's RNG, so the same seed picks the same samples on every machine and every
numpy version.  Within a class the samples are ranked by that hash and the first
k taken, so the subsets for k = 10, 100, 200 of one seed are nested.
"""
import os

import numpy as np

from . import idx, paths

SPLITS = {"train": ("train",), "test": ("t10k", "test")}
CLASSES = 10
SHAPE = (28, 28)
# Where the repo's own subset lives (data/README.md says how it was made).
SHIPPED = os.path.join(paths.ROOT, "data", "mnist-subset")

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


class DatasetError(ValueError):
    """A data directory without the files a split needs, or a subset request
    the data cannot satisfy."""


def find_file(data_dir, split, kind):
    """Path of the `kind` ("images" or "labels") IDX file of `split` in
    `data_dir`; DatasetError listing what was looked for if absent."""
    if split not in SPLITS:
        raise DatasetError("unknown split %r (expected one of %s)" % (split, ", ".join(SPLITS)))
    ndim = 3 if kind == "images" else 1
    tried = []
    for prefix in SPLITS[split]:
        base = "%s-%s-idx%d-ubyte" % (prefix, kind, ndim)
        for name in (base + ".gz", base):
            p = os.path.join(data_dir, name)
            tried.append(name)
            if os.path.exists(p):
                return p
    raise DatasetError("%s: no %s %s file (looked for %s)" % (data_dir, split, kind, ", ".join(tried)))


# MD5 of the original distribution files (as published with each dataset).
KNOWN_MD5 = {
    "f68b3c2dcbeaaa9fbdd348bbdeb94873": ("mnist", "train-images-idx3-ubyte.gz"),
    "d53e105ee54ea40749a09fcbcd1e9432": ("mnist", "train-labels-idx1-ubyte.gz"),
    "9fb629c4189551a2d022fa330f9573f3": ("mnist", "t10k-images-idx3-ubyte.gz"),
    "ec29112dd5afa0611ce80d1b7f02629c": ("mnist", "t10k-labels-idx1-ubyte.gz"),
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d": ("fashion-mnist", "train-images-idx3-ubyte.gz"),
    "25c81989df183df01b3e8a0aad5dffbe": ("fashion-mnist", "train-labels-idx1-ubyte.gz"),
    "bef4ecab320f06d8554ea6380940ec79": ("fashion-mnist", "t10k-images-idx3-ubyte.gz"),
    "bb300cfdad3c16e7a12a480ee83cd310": ("fashion-mnist", "t10k-labels-idx1-ubyte.gz"),
}


def identify(path):
    """(dataset, original file name) if `path` is byte-identical to an
    original distribution file, else None."""
    import hashlib
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return KNOWN_MD5.get(h.hexdigest())


def guess_name(data_dir):
    """'mnist' or 'fashion-mnist': from the MD5 of the train labels file if it
    is an original one, else from the directory's name."""
    try:
        known = identify(find_file(data_dir, "train", "labels"))
    except (DatasetError, OSError):
        known = None
    if known:
        return known[0]
    base = os.path.basename(os.path.normpath(data_dir)).lower()
    return "fashion-mnist" if "fashion" in base else "mnist"


def load_split(data_dir, split, classes=CLASSES, shape=SHAPE):
    """(images (N, rows, cols) uint8, labels (N,) uint8) of a split, validated."""
    return idx.read_pair(find_file(data_dir, split, "images"),
                         find_file(data_dir, split, "labels"), shape=shape, classes=classes)


_M64 = (1 << 64) - 1


def splitmix64(x):
    """splitmix64 finaliser of a Python int (or uint64 numpy array)."""
    if isinstance(x, np.ndarray):
        with np.errstate(over="ignore"):
            z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def rank_keys(n, seed):
    """A keyed pseudo-random uint64 per index 0..n-1 (deterministic)."""
    salt = splitmix64(int(seed) & _M64)
    return splitmix64(np.arange(n, dtype=np.uint64) ^ np.uint64(salt))


def balanced_indices(labels, per_class, seed=0, classes=CLASSES, name="labels"):
    """Indices of `per_class` samples of each class 0..classes-1, in increasing
    (original file) order.  Nested over per_class for one seed."""
    labels = np.asarray(labels)
    keys = rank_keys(len(labels), seed)
    picked = []
    for c in range(classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise DatasetError("%s: class %d has %d samples, %d per class were asked for"
                               % (name, c, len(members), per_class))
        # ties are impossible in practice; argsort is stable anyway
        order = np.argsort(keys[members], kind="stable")
        picked.append(members[order[:per_class]])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def shuffled(indices, seed):
    """`indices` in a seeded order (keyed hash, machine independent)."""
    indices = np.asarray(indices)
    keys = splitmix64(indices.astype(np.uint64) ^ np.uint64(splitmix64((int(seed) + 1) & _M64)))
    return indices[np.argsort(keys, kind="stable")]


def class_counts(labels, classes=CLASSES):
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes)


def make_subset(data_dir, out_dir, train_per_class, test_per_class, seed=0,
                classes=CLASSES, log=print):
    """Write a balanced subset of a dataset as IDX .gz files with the
    original names (so every loader reads it like the full data), plus
    SHA256SUMS.  Returns {split: source indices}."""
    import hashlib
    os.makedirs(out_dir, exist_ok=True)
    chosen = {}
    names = []
    for split, k in (("train", train_per_class), ("test", test_per_class)):
        images, labels = load_split(data_dir, split, classes=classes)
        sel = balanced_indices(labels, k, seed, classes, name=find_file(data_dir, split, "labels"))
        chosen[split] = sel
        prefix = "train" if split == "train" else "t10k"
        for kind, arr in (("images", images[sel]), ("labels", labels[sel])):
            name = "%s-%s-idx%d-ubyte.gz" % (prefix, kind, arr.ndim)
            idx.write(os.path.join(out_dir, name), arr)
            names.append(name)
        log("subset: %s %d samples (%d per class) from %d" % (split, len(sel), k, len(labels)))
    with open(os.path.join(out_dir, "SHA256SUMS"), "w") as f:
        for name in sorted(names):
            h = file_sha256(os.path.join(out_dir, name))
            f.write("%s  %s\n" % (h, name))
    return chosen


def file_sha256(path):
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksums(data_dir):
    """Check `data_dir`/SHA256SUMS; returns the list of (name, ok)."""
    import hashlib
    out = []
    with open(os.path.join(data_dir, "SHA256SUMS")) as f:
        for line in f:
            if not line.strip():
                continue
            h, name = line.split(None, 1)
            name = name.strip().lstrip("*")
            p = os.path.join(data_dir, name)
            ok = os.path.exists(p) and file_sha256(p) == h
            out.append((name, ok))
    return out
