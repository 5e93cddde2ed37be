"""Balanced seeded subsets, and the MNIST subset shipped in data/ (which the
demo and the tests use on a fresh machine)."""
import os

import numpy as np
import pytest

from qtrain_host import datasets, idx, paths

SHIPPED = datasets.SHIPPED
FULL = os.path.join(paths.ROOT, "..", "shared", "data", "mnist")


def _labels(n=5000, seed=0):
    return np.random.default_rng(seed).integers(0, 10, n).astype(np.uint8)


@pytest.mark.parametrize("k", [1, 10, 100, 200])
def test_balanced(k):
    lab = _labels()
    sel = datasets.balanced_indices(lab, k, seed=3)
    assert len(sel) == 10 * k and len(set(sel.tolist())) == len(sel)
    assert (np.bincount(lab[sel], minlength=10) == k).all()
    assert (np.diff(sel) > 0).all()  # original order kept


def test_seeded_and_nested():
    lab = _labels()
    a10 = datasets.balanced_indices(lab, 10, seed=1)
    assert np.array_equal(a10, datasets.balanced_indices(lab, 10, seed=1))
    assert not np.array_equal(a10, datasets.balanced_indices(lab, 10, seed=2))
    a100 = datasets.balanced_indices(lab, 100, seed=1)
    a200 = datasets.balanced_indices(lab, 200, seed=1)
    assert set(a10) <= set(a100) <= set(a200)


def test_selection_is_pinned():
    """Independent of numpy's RNG and version: pin a few values."""
    lab = (np.arange(100) % 10).astype(np.uint8)
    assert datasets.balanced_indices(lab, 1, seed=0).tolist() == [1, 18, 39, 43, 47, 54, 70, 72, 75, 86]
    assert datasets.balanced_indices(lab, 2, seed=7).tolist()[:6] == [2, 12, 15, 19, 27, 29]
    assert datasets.splitmix64(0) == 0xE220A8397B1DCDAF
    assert int(datasets.splitmix64(np.array([0], np.uint64))[0]) == 0xE220A8397B1DCDAF
    keys = datasets.rank_keys(3, 5)
    assert [int(k) for k in keys] == [datasets.splitmix64(i ^ datasets.splitmix64(5)) for i in range(3)]


def test_not_enough_samples():
    lab = np.array([0] * 5 + [1] * 3, dtype=np.uint8)
    with pytest.raises(datasets.DatasetError, match="class 1 has 3 samples, 4 per class"):
        datasets.balanced_indices(lab, 4, classes=2, name="x-labels")


def test_make_subset(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 120)):
        idx.write(src / ("%s-images-idx3-ubyte.gz" % prefix), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        idx.write(src / ("%s-labels-idx1-ubyte.gz" % prefix), (np.arange(n) % 10).astype(np.uint8))
    out = tmp_path / "sub"
    chosen = datasets.make_subset(str(src), str(out), 7, 3, seed=1, log=lambda m: None)
    im, lab = datasets.load_split(str(out), "train")
    assert im.shape == (70, 28, 28) and (np.bincount(lab) == 7).all()
    full_im, _ = datasets.load_split(str(src), "train")
    assert np.array_equal(im, full_im[chosen["train"]])
    assert all(ok for _, ok in datasets.verify_checksums(str(out)))
    # the same command gives the same bytes
    out2 = tmp_path / "sub2"
    datasets.make_subset(str(src), str(out2), 7, 3, seed=1, log=lambda m: None)
    for name in os.listdir(out):
        assert (out / name).read_bytes() == (out2 / name).read_bytes()


# ---- the shipped subset ------------------------------------------------------------------

def test_shipped_subset_checksums():
    res = datasets.verify_checksums(SHIPPED)
    assert len(res) == 4 and all(ok for _, ok in res), res


def test_shipped_subset_content():
    im, lab = datasets.load_split(SHIPPED, "train")
    assert im.shape == (6000, 28, 28) and (np.bincount(lab, minlength=10) == 600).all()
    tim, tlab = datasets.load_split(SHIPPED, "test")
    assert tim.shape == (1000, 28, 28) and (np.bincount(tlab, minlength=10) == 100).all()
    size = sum(os.path.getsize(os.path.join(SHIPPED, n)) for n in os.listdir(SHIPPED))
    assert size < 3_000_000
    assert 25 < im.mean() < 45  # MNIST-like images, not noise


def test_shipped_subset_reproducible(tmp_path):
    """Regenerate from the original files when this machine has them."""
    if not os.path.exists(os.path.join(FULL, "train-labels-idx1-ubyte.gz")):
        pytest.skip("no ../shared/data/mnist here")
    datasets.make_subset(FULL, str(tmp_path), 600, 100, seed=0, log=lambda m: None)
    for name in sorted(os.listdir(SHIPPED)):
        if name.endswith(".gz"):
            assert idx.read(tmp_path / name).tobytes() == idx.read(os.path.join(SHIPPED, name)).tobytes(), name
