"""`python -m qtrain_host` prepare / subset / info / plot, and the plot
functions the training tools call (valid PNGs)."""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from qtrain_host import cli, datasets, idx, paths, plot, stream


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(paths.ROOT, "host_tools") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "qtrain_host"] + [str(a) for a in args],
                          cwd=paths.ROOT, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300)


def read_png(path):
    """Minimal PNG decoder for checks: -> (width, height, color type, pixels)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, "bad CRC in %s chunk" % kind
        chunks.append((kind, body))
        pos += 12 + n
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, color = struct.unpack(">IIBB", chunks[0][1][:10])
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    return w, h, color, depth, raw


# ---- prepare ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    r = _cli("prepare", "--out", out, "--seed", "3")
    assert r.returncode == 0, r.stderr + r.stdout
    return out, r


def test_prepare_shipped_subset(prepared):
    out, r = prepared
    names = sorted(os.listdir(out))
    assert names == ["manifest.json", "test.qtds", "train-labelled-10.qtds", "train-labelled-100.qtds",
                     "train-labelled-200.qtds", "train.qtds"]
    assert "prepare: done" in r.stdout and "train.qtds 6000/6000" in r.stderr  # progress
    tr_im, tr_lab = datasets.load_split(datasets.SHIPPED, "train")
    d = stream.read(out / "train.qtds")
    assert d.header.name == "mnist/train" and d.header.classes == 10
    assert np.array_equal(d.images, tr_im) and np.array_equal(d.labels, tr_lab)
    t = stream.read(out / "test.qtds")
    assert t.header.count == 1000 and t.header.name == "mnist/test"
    man = json.load(open(out / "manifest.json"))
    assert man["seed"] == 3 and man["dataset"] == "mnist"
    prev = set()
    for k in (10, 100, 200):
        name = "train-labelled-%d.qtds" % k
        s = stream.read(out / name)
        assert s.header.count == 10 * k and (np.bincount(s.labels, minlength=10) == k).all()
        ent = man["files"][name]
        src = np.array(ent["source_indices"])
        assert ent["per_class"] == k and ent["label_counts"] == [k] * 10
        assert np.array_equal(s.images, tr_im[src]) and np.array_equal(s.labels, tr_lab[src])
        assert prev <= set(src.tolist())  # nested
        prev = set(src.tolist())
        assert ent["sha256"] and ent["bytes"] == os.path.getsize(out / name)


def test_prepare_seed_changes_subsets(tmp_path, prepared):
    out, _ = prepared
    assert cli.main(["prepare", "--out", str(tmp_path), "--seed", "3", "--per-class", "10"]) == 0
    assert (tmp_path / "train-labelled-10.qtds").read_bytes() == (out / "train-labelled-10.qtds").read_bytes()
    assert cli.main(["prepare", "--out", str(tmp_path), "--seed", "4", "--per-class", "10"]) == 0
    assert (tmp_path / "train-labelled-10.qtds").read_bytes() != (out / "train-labelled-10.qtds").read_bytes()


def test_prepare_fashion_style_dir_without_test_images(tmp_path, capsys):
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    idx.write(d / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28), dtype=np.uint8))
    idx.write(d / "train-labels-idx1-ubyte.gz", (np.arange(40) % 10).astype(np.uint8))
    idx.write(d / "t10k-labels-idx1-ubyte.gz", (np.arange(10) % 10).astype(np.uint8))
    out = tmp_path / "out"
    assert cli.main(["prepare", "--data", str(d), "--out", str(out), "--per-class", "2,4"]) == 0
    assert "no test split" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["manifest.json", "train-labelled-2.qtds", "train-labelled-4.qtds", "train.qtds"]
    assert stream.read(out / "train.qtds").header.name == "fashion/train"
    assert json.load(open(out / "manifest.json"))["dataset"] == "fashion-mnist"


def test_prepare_errors_name_the_file(tmp_path, capsys):
    d = tmp_path / "bad"
    d.mkdir()
    idx.write(d / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    idx.write(d / "train-labels-idx1-ubyte.gz", np.array([0, 1, 42, 3], np.uint8))
    assert cli.main(["prepare", "--data", str(d), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "qtrain_host prepare: error:" in err
    assert str(d / "train-labels-idx1-ubyte.gz") + ": label 42 at index 2 is out of range 0..9" in err
    # too few samples for a labelled subset
    idx.write(d / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3], np.uint8))
    assert cli.main(["prepare", "--data", str(d), "--out", str(tmp_path / "o"), "--per-class", "1"]) == 2
    assert "class 4 has 0 samples" in capsys.readouterr().err
    # no data at all
    assert cli.main(["prepare", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "no train images file" in capsys.readouterr().err


def test_subset_command(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 100), ("t10k", 50)):
        idx.write(src / ("%s-images-idx3-ubyte" % prefix), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        idx.write(src / ("%s-labels-idx1-ubyte" % prefix), (np.arange(n) % 10).astype(np.uint8))
    r = _cli("subset", "--data", src, "--out", tmp_path / "sub", "--train-per-class", 5, "--test-per-class", 2)
    assert r.returncode == 0, r.stderr
    r = _cli("info", tmp_path / "sub")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("checksum OK") == 4 and "shape 50x28x28" in r.stdout


# ---- info ---------------------------------------------------------------------------

def test_info(prepared, capsys):
    out, _ = prepared
    assert cli.main(["info", str(out / "train-labelled-10.qtds"),
                     os.path.join(datasets.SHIPPED, "t10k-labels-idx1-ubyte.gz")]) == 0
    text = capsys.readouterr().out
    assert "'mnist/l10', 100 samples of 28x28, labelled (10 classes)" in text
    assert "all CRCs good" in text and "label counts: 10, 10, 10" in text
    assert "IDX (gzip), uint8, shape 1000" in text and "counts: 100, 100" in text


def test_info_reports_corruption(tmp_path, prepared, capsys):
    out, _ = prepared
    data = bytearray((out / "train-labelled-10.qtds").read_bytes())
    data[48 + 789 * 7 + 300] ^= 1
    p = tmp_path / "corrupt.qtds"
    p.write_bytes(bytes(data))
    assert cli.main(["info", str(p)]) == 2
    assert "%s: CRC mismatch in sample 7" % p in capsys.readouterr().err


def test_help_lists_subcommands():
    r = _cli("--help")
    assert r.returncode == 0
    for name in ("prepare", "subset", "info", "plot"):
        assert name in r.stdout


# ---- plot ---------------------------------------------------------------------------

def test_png_encoder_exact(tmp_path):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    p = plot.save_png(str(tmp_path / "g.png"), img)
    w, h, color, depth, raw = read_png(p)
    assert (w, h, color, depth) == (4, 3, 0, 8)
    rows = np.frombuffer(raw, np.uint8).reshape(3, 5)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:], img)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    w, h, color, _, raw = read_png(plot.save_png(str(tmp_path / "c.png"), rgb))
    assert (w, h, color) == (2, 2, 2) and raw[1:4] == b"\xff\x00\x00"


def test_grid_and_reconstructions(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.random((10, 28 * 28))  # floats in [0, 1), flat
    g = plot.grid(imgs, ncols=5, pad=1)
    assert g.shape == (2 * 29 + 1, 5 * 29 + 1) and g.dtype == np.uint8
    assert np.array_equal(g[1:29, 1:29], np.rint(imgs[0].reshape(28, 28) * 255).astype(np.uint8))
    p = plot.save_grid(str(tmp_path / "grid.png"), imgs, ncols=5, scale=2)
    w, h, _, _, _ = read_png(p)
    assert (w, h) == (2 * (5 * 29 + 1), 2 * (2 * 29 + 1))
    u8 = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    p = plot.save_reconstructions(str(tmp_path / "rec.png"), u8, 255 - u8, ncols=4, scale=1)
    w, h, _, _, raw = read_png(p)
    assert (w, h) == (4 * 29 + 1, 4 * 29 + 1)  # 2 pairs of rows
    px = np.frombuffer(raw, np.uint8).reshape(h, w + 1)[:, 1:]
    assert np.array_equal(px[1:29, 1:29], u8[0]) and np.array_equal(px[30:58, 1:29], 255 - u8[0])


def test_to_uint8_ranges():
    assert plot.to_uint8(np.array([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]
    assert plot.to_uint8(np.array([-1.0, 1.0])).tolist() == [0, 255]
    assert plot.to_uint8(np.array([3.0, 200.0])).tolist() == [3, 200]
    assert plot.to_uint8(np.array([np.nan, 1.0])).tolist() == [0, 255]


def test_pca():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 10)) * np.array([10, 3] + [0.1] * 8)
    p = plot.pca_2d(z)
    assert p.shape == (500, 2)
    assert abs(np.corrcoef(p[:, 0], z[:, 0])[0, 1]) > 0.99
    assert abs(np.corrcoef(p[:, 1], z[:, 1])[0, 1]) > 0.99
    assert plot.pca_2d(np.ones((3, 1))).shape == (3, 2)


def test_latent_and_curves_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 10))
    lab = rng.integers(0, 10, 300)
    w, h, _, _, _ = read_png(plot.save_latent(str(tmp_path / "lat.png"), z, lab,
                                              datasets.CLASS_NAMES["fashion-mnist"]))
    assert w > 100 and h > 100
    log = {"step": np.arange(50), "elbo": -np.log1p(np.arange(50)), "acc": np.linspace(0.1, 0.9, 50)}
    w, h, _, _, _ = read_png(plot.save_curves(str(tmp_path / "curves.png"), log))
    assert w > 100 and h > 100


def test_load_log_formats(tmp_path):
    (tmp_path / "l.csv").write_text("step,loss,note\n1,2.5,a\n2,2.0,b\n")
    assert plot.load_log(str(tmp_path / "l.csv")).keys() == {"step", "loss"}
    (tmp_path / "l.json").write_text(json.dumps([{"step": 1, "acc": 0.5}, {"step": 2, "acc": 0.7}]))
    assert plot.load_log(str(tmp_path / "l.json"))["acc"].tolist() == [0.5, 0.7]
    (tmp_path / "d.json").write_text(json.dumps({"log": {"epoch": [0, 1], "elbo": [-3, -2]}}))
    assert plot.load_log(str(tmp_path / "d.json"))["elbo"].tolist() == [-3, -2]
    (tmp_path / "l.jsonl").write_text('{"step": 1, "loss": 3}\n{"step": 2, "loss": 1}\n')
    assert plot.load_log(str(tmp_path / "l.jsonl"))["loss"].tolist() == [3, 1]


def test_plot_cli(tmp_path, prepared):
    out, _ = prepared
    r = _cli("plot", "grid", out / "test.qtds", "--n", 30, "--ncols", 10, "--scale", 1, "-o", tmp_path / "g.png")
    assert r.returncode == 0, r.stderr
    assert read_png(tmp_path / "g.png")[:2] == (10 * 29 + 1, 3 * 29 + 1)
    imgs = stream.read(out / "train-labelled-10.qtds").images
    np.save(tmp_path / "o.npy", imgs[:20])
    np.save(tmp_path / "r.npy", imgs[:20].astype(np.float32) / 255.0)
    assert cli.main(["plot", "recon", str(tmp_path / "o.npy"), str(tmp_path / "r.npy"),
                     "-o", str(tmp_path / "r.png")]) == 0
    read_png(tmp_path / "r.png")
    assert cli.main(["plot", "grid", os.path.join(datasets.SHIPPED, "t10k-images-idx3-ubyte.gz"),
                     "-o", str(tmp_path / "idx.png")]) == 0
    read_png(tmp_path / "idx.png")
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "z.npy", np.random.default_rng(0).normal(size=(100, 10)))
    assert cli.main(["plot", "latent", str(tmp_path / "z.npy"), "--labels", str(out / "train-labelled-10.qtds"),
                     "-o", str(tmp_path / "lat.png")]) == 0
    read_png(tmp_path / "lat.png")
    (tmp_path / "log.csv").write_text("step,elbo,acc\n" + "".join("%d,%f,%f\n" % (i, -100 + i, i / 10) for i in range(10)))
    assert cli.main(["plot", "curves", str(tmp_path / "log.csv"), "-o", str(tmp_path / "c.png")]) == 0
    read_png(tmp_path / "c.png")


def test_plot_cli_error(tmp_path, capsys):
    assert cli.main(["plot", "grid", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "x.png")]) == 2
    assert "missing.npy: no such file" in capsys.readouterr().err


def test_plugin_subcommand(tmp_path, monkeypatch, capsys):
    """A colleague's module adds a subcommand without touching cli.main()."""
    (tmp_path / "qtrain_fake_plugin.py").write_text(
        "from qtrain_host import cli\n"
        "def _args(p):\n    p.add_argument('--n', type=int, default=1)\n"
        "@cli.subcommand('fake', 'a test subcommand', _args)\n"
        "def cmd_fake(args):\n    print('fake', args.n)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "PLUGINS", cli.PLUGINS + ("qtrain_fake_plugin", "qtrain_absent_plugin"))
    monkeypatch.setattr(cli, "SUBCOMMANDS", dict(cli.SUBCOMMANDS))
    assert cli.main(["fake", "--n", "3"]) == 0
    assert capsys.readouterr().out == "fake 3\n"
