"""Stream files (.qtds): host writer/reader, the board reader (python/qtrain/data.py)
on CPython and on MicroPython targets, bit-exact round trips, shuffling order
shared by host and board, resume, no allocation per sample, and a clear error
naming the file for every malformed file."""
import importlib.util
import os
import struct
import zlib

import numpy as np
import pytest

from qtrain_host import paths, stream
from qtrain_host.stream import StreamError



@pytest.fixture(scope="module")
def dev():
    """python/qtrain/data.py imported on CPython (the board code, host run),
    as qtrain.data: it loads its header checks (qtrain.data_open) on open."""
    import sys
    if paths.PYTHON_DIR not in sys.path:
        sys.path.insert(0, paths.PYTHON_DIR)
    return importlib.import_module("qtrain.data")


def _sample(n=37, rows=5, cols=7, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, rows, cols), dtype=np.uint8),
            rng.integers(0, classes, n).astype(np.uint8))


def _stream_bytes(n=37, rows=5, cols=7, labelled=True, classes=10, name="t/x"):
    im, lab = _sample(n, rows, cols, classes)
    return stream.encode(im, lab if labelled else None, classes, name), im, lab


# ---- format ------------------------------------------------------------------

def test_header_layout():
    data, im, lab = _stream_bytes(3, 28, 28)
    assert data[:4] == b"QTDS"
    f = struct.unpack(stream.HEADER_FMT, data[:48])
    assert f[:10] == (b"QTDS", 1, 48, 3, 28, 28, 1, 10, 0, 789)
    assert f[10].rstrip(b"\0") == b"t/x"
    assert f[12] == zlib.crc32(data[:44])
    assert len(data) == 48 + 3 * 789
    rec = data[48:48 + 789]
    assert rec[0] == lab[0] and rec[1:785] == im[0].tobytes()
    assert struct.unpack("<I", rec[785:])[0] == zlib.crc32(rec[:785])
    assert zlib.crc32(rec) == stream.CRC_RESIDUE


def test_host_round_trip(tmp_path):
    im, lab = _sample(50, 28, 28)
    p = tmp_path / "a.qtds"
    h = stream.write(p, im, lab, 10, "mnist/train")
    assert os.path.getsize(p) == h.file_size
    d = stream.read(p)
    assert d.header.name == "mnist/train" and d.header.classes == 10
    assert np.array_equal(d.images, im) and np.array_equal(d.labels, lab)
    u = tmp_path / "u.qtds"
    stream.write(u, im)
    du = stream.read(u)
    assert du.labels is None and not du.header.labelled and du.header.record_size == 788
    assert np.array_equal(du.images, im)


def test_write_progress_and_blocks(tmp_path):
    im, lab = _sample(100, 4, 4)
    seen = []
    stream.write(tmp_path / "b.qtds", im, lab, 10, progress=lambda d, t: seen.append((d, t)), block=32)
    assert seen == [(32, 100), (64, 100), (96, 100), (100, 100)]
    assert (tmp_path / "b.qtds").read_bytes() == stream.encode(im, lab, 10)
    assert not (tmp_path / "b.qtds.tmp").exists()


def test_writer_rejects_bad_input(tmp_path):
    im, lab = _sample(5)
    with pytest.raises(StreamError, match="label 12 at index 0 is out of range 0..9"):
        stream.write(tmp_path / "x.qtds", im, np.array([12, 0, 0, 0, 0]), 10)
    with pytest.raises(StreamError, match="uint8"):
        stream.write(tmp_path / "x.qtds", im.astype(np.float32), lab, 10)
    with pytest.raises(StreamError, match="labels of shape"):
        stream.write(tmp_path / "x.qtds", im, lab[:3], 10)
    assert not (tmp_path / "x.qtds").exists()


# ---- permutation ----------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 16, 17, 100, 255, 1000, 6000, 60000])
def test_permutation_is_a_bijection(n):
    for seed, epoch in ((0, 0), (1, 0), (1, 1), (12345, 7)):
        o = stream.Permutation(n, seed, epoch).order()
        assert sorted(o.tolist()) == list(range(n))


def test_permutation_changes_with_seed_and_epoch():
    a = stream.Permutation(1000, 1, 0).order()
    assert not np.array_equal(a, stream.Permutation(1000, 1, 1).order())
    assert not np.array_equal(a, stream.Permutation(1000, 2, 0).order())
    assert np.array_equal(a, stream.Permutation(1000, 1, 0).order())
    assert not np.array_equal(a, np.arange(1000))
    # a shuffle, not a rotation: no visible correlation with the file order
    assert abs(np.corrcoef(a, np.arange(1000))[0, 1]) < 0.1
    # classes (index mod 10) are mixed within any window of 50 positions
    for start in range(0, 1000, 50):
        assert len(set((a[start:start + 50] % 10).tolist())) >= 7


def test_permutation_pinned():
    """The order is part of the format (resume across versions): pin it."""
    assert stream.Permutation(60000, 1, 0).order()[:5].tolist() == [32809, 20562, 7857, 8683, 1500]


def test_board_permutation_equals_host(dev):
    for n in (1, 7, 100, 1000, 6000):
        for seed, epoch in ((0, 0), (3, 2), (2 ** 29 + 5, 2 ** 20)):
            d = dev.Permutation(n, seed, epoch)
            assert [d.at(p) for p in range(n)] == stream.Permutation(n, seed, epoch).order().tolist()


# ---- board reader on CPython -------------------------------------------------------

def test_board_reader_cpython(tmp_path, dev):
    data, im, lab = _stream_bytes(37)
    p = tmp_path / "s.qtds"
    p.write_bytes(data)
    with dev.Stream(str(p)) as s:
        assert (s.count, s.rows, s.cols, s.labelled, s.classes, s.name) == (37, 5, 7, True, 10, "t/x")
        for i, label in enumerate(s):
            assert s.index == i and label == lab[i] and bytes(s.image) == im[i].tobytes()
        assert (s.epoch, s.pos) == (0, 37)
        s.next()  # rolls over into epoch 1
        assert (s.epoch, s.pos, s.index) == (1, 1, 0)
    with dev.Stream(str(p), shuffle=True, seed=5) as s:
        for epoch in range(3):
            order = stream.Permutation(37, 5, epoch).order().tolist()
            got = []
            for label in s:
                got.append(s.index)
                assert label == lab[s.index] and bytes(s.image) == im[s.index].tobytes()
            assert got == order and s.epoch == epoch


def test_board_reader_resume(tmp_path, dev):
    data, im, lab = _stream_bytes(37)
    p = tmp_path / "s.qtds"
    p.write_bytes(data)
    ref = dev.Stream(str(p), shuffle=True, seed=9)
    want = []
    for _ in range(60):
        ref.next()
        want.append(ref.index)
    s = dev.Stream(str(p), shuffle=True, seed=9)
    got = []
    for _ in range(45):
        s.next()
        got.append(s.index)
    state = (s.epoch, s.pos)
    s.close()
    s = dev.Stream(str(p), shuffle=True, seed=9)
    s.seek(state[1], state[0])
    for _ in range(15):
        s.next()
        got.append(s.index)
    assert got == want


def test_board_reader_unlabelled_and_limit(tmp_path, dev):
    data, im, _ = _stream_bytes(10, labelled=False)
    p = tmp_path / "u.qtds"
    p.write_bytes(data)
    s = dev.Stream(str(p), limit=4)
    assert s.count == 4 and not s.labelled and s.record_size == 5 * 7 + 4
    assert [s.next() for _ in range(5)] == [-1] * 5 and s.epoch == 1
    assert bytes(s.image) == im[0].tobytes()
    buf = bytearray(s.record_size)
    s2 = dev.Stream(str(p), buf=buf)
    s2.read(9)
    assert bytes(buf[:35]) == im[9].tobytes()
    with pytest.raises(ValueError, match="buf has 3 bytes"):
        dev.Stream(str(p), buf=bytearray(3))


def test_pure_python_crc(dev):
    crc_py = importlib.import_module("qtrain.crc_py")   # the fallback qtrain.data loads without a native CRC
    rng = np.random.default_rng(2)
    for n in (0, 1, 5, 789):
        b = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc_py.crc32(b) == zlib.crc32(b)
    assert crc_py.crc32(b[400:], crc_py.crc32(b[:400])) == zlib.crc32(b)   # chained
    rec = b"abc" + struct.pack("<I", zlib.crc32(b"abc"))
    assert crc_py.crc32(rec) == dev.CRC_RESIDUE


# ---- malformed files: host and board give the same clear error ------------------

def _malformed():
    """name -> (bytes, words the error must contain)."""
    good, im, lab = _stream_bytes(6)
    rs = 1 + 35 + 4
    cases = {}

    def hdr_with(**kw):
        f = list(struct.unpack(stream.HEADER_FMT, good[:48]))
        names = ["magic", "version", "hsize", "count", "rows", "cols", "flags", "classes", "r0", "rsize", "name", "r1", "crc"]
        for k, v in kw.items():
            f[names.index(k)] = v
        b = struct.pack(stream.HEADER_FMT[:-1], *f[:-1])
        return b + struct.pack("<I", zlib.crc32(b))

    cases["idx_file"] = (bytes.fromhex("00000803") + bytes(60), ["not a qtrain stream", "prepare"])
    cases["empty"] = (b"", ["truncated header: 0 bytes"])
    cases["short_header"] = (good[:20], ["truncated header: 20 bytes"])
    cases["version"] = (hdr_with(version=2) + good[48:], ["version 2"])
    flipped = bytearray(good)
    flipped[9] ^= 1  # count, without fixing the header CRC
    cases["header_crc"] = (bytes(flipped), ["header CRC mismatch"])
    cases["rsize"] = (hdr_with(rsize=rs + 1) + good[48:], ["record size"])
    cases["flags"] = (hdr_with(flags=3) + good[48:], ["unknown flags"])
    cases["zero_shape"] = (hdr_with(rows=0) + good[48:], ["empty sample shape"])
    cases["no_classes"] = (hdr_with(classes=0) + good[48:], ["0 classes"])
    cases["truncated"] = (good[:-10], ["truncated", "5 complete samples"])
    cases["trailing"] = (good + b"junk", ["4 trailing bytes"])
    cases["more_declared"] = (hdr_with(count=7) + good[48:], ["truncated", "7 samples"])
    bad = bytearray(good)
    bad[48 + 3 * rs + 10] ^= 0x40
    cases["record_crc"] = (bytes(bad), ["CRC mismatch in sample 3"])
    # a label out of range with a valid CRC: only the range check catches it
    bad = bytearray(good)
    o = 48 + 2 * rs
    bad[o] = 10
    bad[o + rs - 4:o + rs] = struct.pack("<I", zlib.crc32(bytes(bad[o:o + rs - 4])))
    cases["label_range"] = (bytes(bad), ["label 10 of sample 2 is out of range 0..9"])
    return cases


MALFORMED = _malformed()


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_host(tmp_path, case):
    data, words = MALFORMED[case]
    p = tmp_path / (case + ".qtds")
    p.write_bytes(data)
    with pytest.raises(StreamError) as e:
        stream.read(p)
    msg = str(e.value)
    assert msg.startswith(str(p) + ": ")
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_board_cpython(tmp_path, dev, case):
    data, words = MALFORMED[case]
    p = tmp_path / (case + ".qtds")
    p.write_bytes(data)
    with pytest.raises(dev.DataError) as e:
        s = dev.Stream(str(p))
        for _ in range(s.count):
            s.next()
    msg = str(e.value)
    assert msg.startswith(str(p) + ": ")
    for w in words:
        assert w in msg, msg


def test_host_reader_missing_file(tmp_path):
    with pytest.raises(StreamError, match="no such file"):
        stream.read(tmp_path / "nope.qtds")


# ---- on MicroPython targets (Unix port; emulated boards when built) ------------------

DEVICE_DUMP = """
from qtrain.data import Stream
import binascii
def dump(s, n):
    for _ in range(n):
        lab = s.next()
        print("S", s.epoch, s.index, lab, binascii.hexlify(s.image).decode())
s = Stream("s.qtds")
print("H", s.count, s.rows, s.cols, s.labelled, s.classes, s.name)
dump(s, s.count + 3)
s = Stream("s.qtds", shuffle=True, seed=11)
dump(s, 2 * s.count)
s = Stream("u.qtds")
dump(s, 3)
print("DONE")
"""


def test_device_round_trip_bit_exact(run):
    data, im, lab = _stream_bytes(37)
    udata, uim, _ = _stream_bytes(5, labelled=False)
    out = run(DEVICE_DUMP, files={"s.qtds": data, "u.qtds": udata})
    lines = out.split("\n")
    assert "DONE" in out, out
    assert "H 37 5 7 True 10 t/x" in lines
    recs = [line.split() for line in lines if line.startswith("S ")]
    want = [(0, i) for i in range(37)] + [(1, i) for i in range(3)]
    for e in range(2):
        want += [(e, i) for i in stream.Permutation(37, 11, e).order().tolist()]
    want += [(0, i) for i in range(3)]
    assert [(int(r[1]), int(r[2])) for r in recs] == want
    for k, r in enumerate(recs):
        i = int(r[2])
        if k < len(recs) - 3:
            assert int(r[3]) == lab[i] and bytes.fromhex(r[4]) == im[i].tobytes()
        else:
            assert int(r[3]) == -1 and bytes.fromhex(r[4]) == uim[i].tobytes()


def test_device_permutation_equals_host(run):
    script = (
        "from qtrain.data import Permutation\n"
        "for n, seed, epoch in ((1, 0, 0), (100, 3, 2), (6000, 7, 1), (60000, 1, 0)):\n"
        "    p = Permutation(n, seed, epoch)\n"
        "    print('P', n, seed, epoch, ','.join(str(p.at(i)) for i in range(min(n, 300))))\n")
    out = run(script)
    got = [line.split() for line in out.split("\n") if line.startswith("P ")]
    assert len(got) == 4
    for _, n, seed, epoch, vals in got:
        n = int(n)
        ref = stream.Permutation(n, int(seed), int(epoch)).order()[:min(n, 300)].tolist()
        assert [int(v) for v in vals.split(",")] == ref


def test_device_no_allocation_per_sample(run):
    data, _, _ = _stream_bytes(37)
    script = """
import gc, sys
ok = True
try:
    import qemuboard  # the emulated boards' allocation-free RAM-disk driver
except ImportError:
    if sys.platform == "qemu":
        print("NO_RAMDISK")
        ok = False
from qtrain.data import Stream
def measure(s, n):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(n):
        s.next()
    b = gc.mem_alloc()
    gc.enable()
    return b - a
for sh in ((False, True) if ok else ()):
    s = Stream("s.qtds", shuffle=sh, seed=1)
    measure(s, 40)  # warm up (first-call effects of the interpreter)
    print("ALLOC", sh, measure(s, 200))
"""
    out = run(script, files={"s.qtds": data})
    if "NO_RAMDISK" in out:
        # Older firmware: its filesystem is a Python block device that
        # allocates on every block access, which would be counted here.
        pytest.skip("firmware without qemuboard.RamDisk: rebuild with make firmware")
    allocs = [int(line.split()[2]) for line in out.split("\n") if line.startswith("ALLOC")]
    assert allocs == [0, 0], out


def test_device_resume(run):
    data, _, _ = _stream_bytes(37)
    script = """
from qtrain.data import Stream
ref = Stream("s.qtds", shuffle=True, seed=4)
want = []
for _ in range(90):
    ref.next()
    want.append(ref.index)
s = Stream("s.qtds", shuffle=True, seed=4)
got = []
for _ in range(50):
    s.next()
    got.append(s.index)
state = (s.epoch, s.pos)
s.close()
s = Stream("s.qtds", shuffle=True, seed=4)
s.seek(state[1], state[0])
for _ in range(40):
    s.next()
    got.append(s.index)
print("RESUME", got == want, state)
"""
    out = run(script, files={"s.qtds": data})
    assert "RESUME True (1, 13)" in out, out


def test_device_malformed(run):
    files = {}
    for case, (data, _) in MALFORMED.items():
        files[case + ".qtds"] = data
    script = """
from qtrain.data import Stream, DataError
for name in %r:
    try:
        s = Stream(name)
        for _ in range(s.count):
            s.next()
        print("NOERR", name)
    except DataError as e:
        print("ERR", e)
""" % sorted(files)
    out = run(script, files=files)
    errs = {}
    for line in out.split("\n"):
        assert not line.startswith("NOERR"), out
        if line.startswith("ERR "):
            name, msg = line[4:].split(": ", 1)
            errs[name] = msg
    assert sorted(errs) == sorted(files), out
    for case, (_, words) in MALFORMED.items():
        for w in words:
            assert w in errs[case + ".qtds"], (case, errs[case + ".qtds"])


def test_device_pure_python_crc(run):
    script = """
from qtrain import crc_py, data
b = bytes(range(256)) * 3
print("CRC", crc_py.crc32(b), data._crc32(b), crc_py.crc32(b"") )
"""
    out = run(script)
    line = [x for x in out.split("\n") if x.startswith("CRC")][0].split()
    b = bytes(range(256)) * 3
    assert [int(v) for v in line[1:]] == [zlib.crc32(b), zlib.crc32(b), 0]


def test_board_reader_io_error_is_clear(tmp_path, dev):
    """A lost `mpremote mount` link shows up as OSError from the file: the
    reader names the file, the sample and how to resume."""
    data, _, _ = _stream_bytes(5)
    p = tmp_path / "s.qtds"
    p.write_bytes(data)
    s = dev.Stream(str(p))
    s.next()

    class Lost:
        def seek(self, *a):
            raise OSError(5, "EIO")

        def readinto(self, b):
            raise OSError(5, "EIO")

        def close(self):
            pass

    s._f.close()
    s._f = Lost()
    with pytest.raises(dev.DataError) as e:
        s.next()
    msg = str(e.value)
    assert msg.startswith(str(p) + ": read error at sample 1") and "seek(pos, epoch)" in msg
    s.close()
    with pytest.raises(dev.DataError, match="after close"):
        s.read(0)


def test_board_reader_missing_file(tmp_path, dev):
    p = tmp_path / "nope.qtds"
    with pytest.raises(dev.DataError) as e:
        dev.Stream(str(p))
    assert str(e.value).startswith(str(p) + ": cannot open") and "no such file" in str(e.value)


def test_device_missing_file(run):
    out = run("from qtrain.data import Stream, DataError\n"
              "try:\n    Stream('nope.qtds')\nexcept DataError as e:\n    print('ERR', e)\n")
    assert "ERR nope.qtds: cannot open" in out and "no such file" in out, out


# ---- the user's path: `mpremote mount <dir> run script.py` on an emulated board ----

MOUNT_SCRIPT = """
import gc, binascii
from qtrain.data import Stream
for sh in (False, True):
    s = Stream("s.qtds", shuffle=sh, seed=2)
    for _ in range(12):
        lab = s.next()
        print("M", int(sh), s.index, lab, binascii.crc32(s.image))
gc.collect()
print("FREE", gc.mem_free())
"""


@pytest.mark.parametrize("board", ["qemu-m0", "qemu-m4"])
def test_stream_over_mpremote_mount(tmp_path, board):
    """Read a stream through `mpremote mount` (the host serves the file over
    the board's serial link), shuffled and not, bit-exact.  ~1 min per board."""
    from qtrain_host import runner
    targets = os.environ.get("QTRAIN_TARGETS", "unix qemu-m0 qemu-m4").split()
    if board not in targets:
        pytest.skip("%s not in QTRAIN_TARGETS" % board)
    if not runner.available(board):
        if board in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("target %s is not built" % board)
        pytest.skip("target %s is not built" % board)
    from qtrain_host import qemu
    import shutil
    data, im, lab = _stream_bytes(40, 28, 28)
    (tmp_path / "s.qtds").write_bytes(data)
    pkg = tmp_path / "qtrain"
    pkg.mkdir()
    for name in ("__init__.py", "data.py", "data_open.py"):
        shutil.copy(os.path.join(paths.PYTHON_DIR, "qtrain", name), pkg / name)
    shutil.copy(paths.natmod_path(qemu.board_config(board)["arch"]), tmp_path / "_qtrain.mpy")
    script = tmp_path / "read_mount.py"
    script.write_text(MOUNT_SCRIPT)
    rc, out = qemu.mpremote_run(board, str(script), mount=str(tmp_path), timeout=300, capture=True)
    assert rc == 0, out
    rows = [line.split() for line in out.splitlines() if line.startswith("M ")]
    want = [(0, i) for i in range(12)] + [(1, i) for i in stream.Permutation(40, 2, 0).order()[:12].tolist()]
    assert [(int(r[1]), int(r[2])) for r in rows] == want, out
    for r in rows:
        i = int(r[2])
        assert int(r[3]) == lab[i] and int(r[4]) == zlib.crc32(im[i].tobytes())
