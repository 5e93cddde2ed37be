"""IDX reader: round trips, and a clear error naming the file for every kind of
malformed file (issue 6 item 5).  All files are generated in tmp_path."""
import gzip
import struct

import numpy as np
import pytest

from qtrain_host import datasets, idx
from qtrain_host.idx import IdxError


def _images(n=5, rows=28, cols=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, rows, cols), dtype=np.uint8)


def _write_raw(path, data, gz=False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def _err(excinfo, path, *words):
    msg = str(excinfo.value)
    assert msg.startswith(str(path) + ":"), msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_images_labels(tmp_path, gz):
    ext = ".gz" if gz else ""
    im = _images(7)
    lab = np.arange(7, dtype=np.uint8) % 10
    ip, lp = tmp_path / ("i" + ext), tmp_path / ("l" + ext)
    idx.write(ip, im)
    idx.write(lp, lab)
    assert (ip.read_bytes()[:2] == idx.GZIP_MAGIC) == gz
    a, b = idx.read_pair(ip, lp, shape=(28, 28), classes=10)
    assert a.dtype == np.uint8 and a.shape == (7, 28, 28)
    assert np.array_equal(a, im) and np.array_equal(b, lab)


def test_gzip_detected_by_content_not_name(tmp_path):
    im = _images(2, 4, 4)
    p = tmp_path / "no-suffix"
    p.write_bytes(gzip.compress(idx.encode(im)))
    assert np.array_equal(idx.read_images(p), im)
    q = tmp_path / "fake.gz"
    q.write_bytes(idx.encode(im))  # raw despite the name
    assert np.array_equal(idx.read_images(q), im)


def test_header_layout_matches_mnist():
    b = idx.encode(np.zeros((3, 28, 28), np.uint8))
    assert b[:16] == bytes.fromhex("00000803 00000003 0000001c 0000001c".replace(" ", ""))
    assert idx.encode(np.zeros(5, np.uint8))[:8] == bytes.fromhex("0000080100000005")


def test_other_dtypes_big_endian(tmp_path):
    a = np.array([[1, -2], [300, 40000]], dtype=np.int32)
    p = tmp_path / "x"
    idx.write(p, a)
    assert p.read_bytes()[2] == 0x0C
    assert np.array_equal(idx.read(p), a)
    f = np.array([1.5, -2.25], dtype=np.float32)
    idx.write(p, f)
    assert np.array_equal(idx.read(p), f)


def test_reproducible_gzip(tmp_path):
    im = _images(3)
    idx.write(tmp_path / "a.gz", im)
    idx.write(tmp_path / "b.gz", im)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


# ---- malformed files --------------------------------------------------------

def test_missing_file(tmp_path):
    p = tmp_path / "nope.gz"
    with pytest.raises(IdxError) as e:
        idx.read_images(p)
    _err(e, p, "no such file")


@pytest.mark.parametrize("gz", [False, True])
def test_bad_magic(tmp_path, gz):
    p = _write_raw(tmp_path / "m", b"\x01\x02\x08\x03" + bytes(12), gz)
    with pytest.raises(IdxError) as e:
        idx.read(p)
    _err(e, p, "not an IDX file", "magic")


def test_unknown_type_code(tmp_path):
    p = _write_raw(tmp_path / "t", b"\x00\x00\x07\x01" + struct.pack(">I", 0))
    with pytest.raises(IdxError) as e:
        idx.read(p)
    _err(e, p, "not an IDX file")


@pytest.mark.parametrize("ndim", [0, 9])
def test_bad_ndim(tmp_path, ndim):
    p = _write_raw(tmp_path / "d", bytes([0, 0, 8, ndim]) + bytes(40))
    with pytest.raises(IdxError) as e:
        idx.read(p)
    _err(e, p, "number of dimensions")


@pytest.mark.parametrize("n", [0, 3])
def test_truncated_magic(tmp_path, n):
    p = _write_raw(tmp_path / "h", b"\x00\x00\x08"[:n])
    with pytest.raises(IdxError) as e:
        idx.read(p)
    _err(e, p, "truncated header")


def test_truncated_dims(tmp_path):
    p = _write_raw(tmp_path / "h", b"\x00\x00\x08\x03" + struct.pack(">II", 5, 28))
    with pytest.raises(IdxError) as e:
        idx.read(p)
    _err(e, p, "truncated header", "3 dimensions need 16")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    data = idx.encode(_images(4))
    p = _write_raw(tmp_path / "td", data[:-100], gz)
    with pytest.raises(IdxError) as e:
        idx.read_images(p)
    _err(e, p, "truncated data", "4x28x28", "3036 bytes")


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_bytes(tmp_path, gz):
    data = idx.encode(np.arange(10, dtype=np.uint8))
    p = _write_raw(tmp_path / "tb", data + b"\x00\x01\x02", gz)
    with pytest.raises(IdxError) as e:
        idx.read_labels(p)
    _err(e, p, "3 trailing bytes")


def test_truncated_gzip(tmp_path):
    raw = gzip.compress(idx.encode(_images(20)))
    p = _write_raw(tmp_path / "cut.gz", raw[: len(raw) // 2])
    with pytest.raises(IdxError) as e:
        idx.read_images(p)
    _err(e, p, "truncated gzip")


def test_corrupt_gzip(tmp_path):
    raw = bytearray(gzip.compress(idx.encode(_images(20))))
    raw[-6] ^= 0xFF  # inside the CRC-32 / length trailer
    p = _write_raw(tmp_path / "bad.gz", bytes(raw))
    with pytest.raises(IdxError) as e:
        idx.read_images(p)
    _err(e, p, "corrupt gzip")


def test_wrong_image_shape(tmp_path):
    p = tmp_path / "s.gz"
    idx.write(p, _images(3, 27, 28))
    with pytest.raises(IdxError) as e:
        idx.read_images(p, shape=(28, 28))
    _err(e, p, "wrong image shape 27x28, expected 28x28")


def test_images_with_wrong_ndim(tmp_path):
    p = tmp_path / "labels-as-images"
    idx.write(p, np.zeros(10, np.uint8))
    with pytest.raises(IdxError) as e:
        idx.read_images(p)
    _err(e, p, "3 dimensions")


def test_labels_with_wrong_ndim(tmp_path):
    p = tmp_path / "images-as-labels"
    idx.write(p, _images(2, 3, 3))
    with pytest.raises(IdxError) as e:
        idx.read_labels(p)
    _err(e, p, "1 dimension")


def test_non_uint8_images(tmp_path):
    p = tmp_path / "f"
    idx.write(p, np.zeros((2, 28, 28), np.float32))
    with pytest.raises(IdxError) as e:
        idx.read_images(p)
    _err(e, p, "uint8")


def test_labels_out_of_range(tmp_path):
    p = tmp_path / "l.gz"
    lab = np.array([0, 1, 9, 12, 3, 200], dtype=np.uint8)
    idx.write(p, lab)
    idx.read_labels(p)  # no range asked: fine
    with pytest.raises(IdxError) as e:
        idx.read_labels(p, classes=10)
    _err(e, p, "label 12 at index 3", "0..9", "2 labels out of range")


def test_count_mismatch(tmp_path):
    ip, lp = tmp_path / "i", tmp_path / "l"
    idx.write(ip, _images(5))
    idx.write(lp, np.zeros(4, np.uint8))
    with pytest.raises(IdxError) as e:
        idx.read_pair(ip, lp)
    _err(e, lp, "4 labels", "5 images")


def test_error_is_a_valueerror():
    assert issubclass(IdxError, ValueError)


# ---- data directories ---------------------------------------------------------

def _fake_dataset(d, n_train=30, n_test=20, classes=10, raw_test=False):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for prefix, n, gz in (("train", n_train, True), ("t10k", n_test, not raw_test)):
        ext = ".gz" if gz else ""
        idx.write(d / ("%s-images-idx3-ubyte%s" % (prefix, ext)), _images(n, seed=n))
        idx.write(d / ("%s-labels-idx1-ubyte%s" % (prefix, ext)), (np.arange(n) % classes).astype(np.uint8))
    return d


def test_find_split_files(tmp_path):
    d = _fake_dataset(tmp_path / "fashion-mnist", raw_test=True)
    im, lab = datasets.load_split(d, "train")
    assert im.shape == (30, 28, 28) and lab.shape == (30,)
    assert datasets.find_file(d, "test", "images").endswith("t10k-images-idx3-ubyte")
    assert datasets.guess_name(d) == "fashion-mnist"
    with pytest.raises(datasets.DatasetError) as e:
        datasets.find_file(tmp_path, "train", "images")
    assert "train-images-idx3-ubyte.gz" in str(e.value) and str(tmp_path) in str(e.value)


def test_fashion_labels_if_present():
    """The real Fashion-MNIST label files, if this machine has them."""
    import os
    from qtrain_host import paths
    d = os.path.join(paths.ROOT, "..", "shared", "data", "fashion-mnist")
    p = os.path.join(d, "t10k-labels-idx1-ubyte.gz")
    if not os.path.exists(p):
        pytest.skip("no ../shared/data/fashion-mnist")
    lab = idx.read_labels(p, classes=10)
    assert lab.shape == (10000,) and (np.bincount(lab) == 1000).all()


def test_identify_original_files(tmp_path):
    import os
    from qtrain_host import paths
    p = tmp_path / "x.gz"
    idx.write(p, np.zeros(3, np.uint8))
    assert datasets.identify(p) is None
    orig = os.path.join(paths.ROOT, "..", "shared", "data", "fashion-mnist", "train-labels-idx1-ubyte.gz")
    if os.path.exists(orig):
        assert datasets.identify(orig) == ("fashion-mnist", "train-labels-idx1-ubyte.gz")
