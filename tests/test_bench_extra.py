"""The issue-5 bench tools on the host: the accuracy bench stops cleanly
without the full data, and its report states the targets from the figures."""
import importlib

import pytest

from qtrain_host import bench_accuracy, bench_report, qemu


def test_accuracy_bench_without_data(tmp_path, capsys):
    assert bench_accuracy.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 0
    assert "no MNIST IDX files" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


def _row(epoch, acc, elbo):
    d = {"epoch": epoch, "train_elbo": elbo + 10, "test_elbo": elbo, "upd": 1.0, "upd_w": 1.0,
         "vae_s": 60.0, "eval_s": 10.0}
    for K, a in zip((10, 100, 200), acc):
        d["acc%d_float32" % K] = a / 100
    return d


def test_accuracy_report_targets():
    runs = {"float32-s1": {"name": "float32", "seed": 1, "samples": 60000, "test_samples": 10000,
                           "epochs": [_row(1, (70, 88, 90), 140), _row(2, (74, 89.5, 91.5), 130)]},
            "uint8-s1": {"name": "uint8", "seed": 1, "samples": 60000, "test_samples": 10000,
                         "epochs": [_row(1, (73, 89.2, 91.0), 135), _row(2, (73.6, 89.4, 90.0), 132)]}}
    res = {"epochs": 2, "seeds": [1], "common": bench_accuracy.COMMON, "runs": runs, "wall_s": 600}
    text = bench_accuracy.report(res, "cmd", "MNIST")
    assert "| uint8 | 10 | 73.6 | yes | yes (-0.4) |" in text          # -0.4 is within 0.5
    assert "| uint8 | 100 | 89.4 | yes | yes (-0.1) |" in text
    assert "| uint8 | 200 | 90.0 | no (1.2 short) | no (-1.5) |" in text
    assert "73.6 (73.6)" in text and "90.0 (91.0)" in text             # final (best)


def test_accuracy_report_spread_over_seeds(tmp_path):
    """Several seeds: each cell is the mean ± population std over seeds, the
    targets compare the means, and the curves plot the mean."""
    runs = {"float32-s1": {"name": "float32", "seed": 1, "samples": 60000, "test_samples": 10000,
                           "epochs": [_row(1, (70, 88, 90), 140), _row(2, (74, 89.5, 91.5), 130)]}}
    for seed, acc, elbo in ((1, (73.0, 89.4, 91.0), 132), (2, (74.0, 88.8, 91.4), 128)):
        runs["uint8-s%d" % seed] = {"name": "uint8", "seed": seed, "samples": 60000, "test_samples": 10000,
                                    "epochs": [_row(1, (70, 88, 90), 140), _row(2, acc, elbo)]}
    res = {"epochs": 2, "seeds": [1, 2], "common": bench_accuracy.COMMON, "runs": runs, "wall_s": 600}
    text = bench_accuracy.report(res, "cmd", "MNIST")
    assert "| uint8 | float32 | 73.5 ± 0.5 (73.5) | 89.1 ± 0.3 (89.1) | 91.2 ± 0.2 (91.2) |" in text
    assert "| uint8 | 200 | 91.2 ± 0.2 | yes | yes (-0.3) |" in text       # means compared
    assert "| uint8 | 100 | 89.1 ± 0.3 | yes | yes (-0.4) |" in text
    assert "| 140.00 ± 2.00 | 130.00 ± 2.00 / 130.00 |" in text            # -ELBO train, test
    assert "| float32 | float32 | 74.0 (74.0) |" in text                    # one seed: no spread
    png = tmp_path / "acc.png"
    bench_accuracy.plot(res, str(png))
    assert png.stat().st_size > 0


def test_accuracy_report_of_uint8_heads_only(tmp_path):
    """A head sweep with --head_modes uint8 has no float32 figures: the report
    lists its uint8 heads and leaves the float32 targets and curve out."""
    row = _row(0, (70, 88, 90), 125)
    for K, a in zip((10, 100, 200), (76.9, 90.4, 91.4)):
        del row["acc%d_float32" % K]
        row["acc%d_uint8" % K] = a / 100
    res = {"epochs": 0, "seeds": [1], "common": bench_accuracy.COMMON, "wall_s": 60,
           "runs": {"uint8-s1": {"name": "uint8", "seed": 1, "samples": 50000, "test_samples": 10000,
                                 "epochs": [row]}}}
    text = bench_accuracy.report(res, "cmd", "MNIST")
    assert "| uint8 | uint8 | 76.9 (76.9) | 90.4 (90.4) | 91.4 (91.4) |" in text
    assert "| uint8 | float32 |" not in text and "| uint8 | 200 |" not in text
    png = tmp_path / "acc.png"
    bench_accuracy.plot(res, str(png))
    assert png.stat().st_size > 0


def test_write_block_replaces_only_its_block(tmp_path):
    p = tmp_path / "B.md"
    p.write_text("# B\n\nkeep\n")
    bench_report.write_block(str(p), "x", "one")
    bench_report.write_block(str(p), "y", "two")
    bench_report.write_block(str(p), "x", "three")
    t = p.read_text()
    assert "keep" in t and "two" in t and "three" in t and "one" not in t
    assert t.index("three") < t.index("two")


def test_make_bench_runs_stream_after_step_figures():
    """bench_stream reads the step figures bench.py writes into the bench
    block: `make bench` must run it after bench.py, not before (dry run)."""
    import os
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(["make", "-n", "--no-print-directory", "bench"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    steps = out.index("qtrain_host.bench --md")
    for extra in ("bench_stream", "bench_accuracy", "bench_cnn", "bench_alternatives"):
        assert steps < out.index("qtrain_host." + extra), out


def test_accuracy_script_saves_and_reloads_the_vae(tmp_path):
    """mp_scripts/accuracy.py --save_vae writes the VAE after each epoch and
    --load_vae --epochs 0 trains the heads on it alone (how the head settings
    are swept on one trained VAE): the same test -ELBO and head accuracy."""
    import subprocess

    data = _unix_subset(tmp_path)
    common = ["--model", "mlp", "--hidden", "32", "--test_limit", "200", "--per_class", "10",
              "--head_epochs", "2", "--head_fresh", "true", "--seed", "3"]

    outputs = []

    def accuracy(args):
        argv, env = bench_report.unix_command("accuracy.py", common + args)
        p = subprocess.run(argv, cwd=str(data), env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        outputs.append(p.stdout)
        return bench_report.parse_lines(p.stdout, "epoch")[-1]

    trained = accuracy(["--epochs", "1", "--limit", "300", "--save_vae", str(tmp_path / "v")])
    # the uint8 VAE's share of weights at 0/255, one per trainable layer (MLP VAE: 4)
    line = [ln for ln in outputs[0].splitlines() if ln.startswith("@clamped epoch=1 layers=")]
    assert len(line) == 1, outputs[0]
    shares = [float(v) for v in line[0].split("layers=")[1].split(",")]
    assert len(shares) == 4 and all(0 <= v <= 1 for v in shares) and max(shares) > 0, shares
    loaded = accuracy(["--epochs", "0", "--load_vae", str(tmp_path / "v-e1.qtc")])
    assert loaded["epoch"] == 0 and trained["epoch"] == 1
    for k in ("test_elbo", "acc10_float32", "acc10_uint8"):
        assert loaded[k] == trained[k], (k, trained, loaded)
    for bad, msg in ((["--head_opts", "lr"], "--head_opts: 'lr' is not name=number"),
                     (["--head_decay_samples", "-1"], "--head_decay_samples must be >= 0"),
                     (["--head_decay_modes", "float32,int8"], "--head_decay_modes: 'int8' is not a head mode")):
        argv, env = bench_report.unix_command("accuracy.py", common + ["--epochs", "0", "--load_vae",
                                                                       str(tmp_path / "v-e1.qtc")] + bad)
        p = subprocess.run(argv, cwd=str(data), env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode != 0 and msg in p.stdout + p.stderr


def test_accuracy_script_decays_the_head_lr_per_samples(tmp_path):
    """--head_decay_samples S: the head's lr is multiplied by head_lr_decay per
    head epoch and per S training samples, whichever decays more (10 labels
    per class: 100 samples per head epoch), so S = 100 or 400 is the
    per-epoch decay exactly and S = 25 decays it 4x faster."""
    import subprocess

    data = _unix_subset(tmp_path)
    common = ["--model", "mlp", "--hidden", "32", "--test_limit", "300", "--per_class", "10", "--limit", "300",
              "--head_epochs", "4", "--head_lr", "0.02", "--head_lr_decay", "0.5", "--head_fresh", "true",
              "--seed", "3"]

    def accuracy(args):
        argv, env = bench_report.unix_command("accuracy.py", common + args)
        p = subprocess.run(argv, cwd=str(data), env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        row = bench_report.parse_lines(p.stdout, "epoch")[-1]
        return [row[k] for k in ("acc10_float32", "acc10_uint8")]

    per_epoch = accuracy(["--epochs", "1", "--save_vae", str(tmp_path / "v")])
    vae = ["--epochs", "0", "--load_vae", str(tmp_path / "v-e1.qtc")]
    assert accuracy(vae + ["--head_decay_samples", "100"]) == per_epoch
    assert accuracy(vae + ["--head_decay_samples", "400"]) == per_epoch
    faster = accuracy(vae + ["--head_decay_samples", "25"])
    assert faster[0] != per_epoch[0] and faster[1] != per_epoch[1], (faster, per_epoch)
    # --head_decay_modes: the per-samples decay for those head modes only, the
    # others per head epoch (each head as in its own run above)
    assert accuracy(vae + ["--head_decay_samples", "25", "--head_decay_modes", "float32"]) == [faster[0],
                                                                                              per_epoch[1]]
    assert accuracy(vae + ["--head_decay_samples", "25", "--head_decay_modes", "uint8"]) == [per_epoch[0],
                                                                                            faster[1]]


def test_accuracy_validation_split_holds_out_the_last_training_images(tmp_path):
    """--validation N: the heads and -ELBO are measured on the last N training
    images, which neither the VAE's data nor the labelled subsets contain (so
    options chosen on it never saw the test set, nor the images measured)."""
    import json
    import os

    import numpy as np
    import pytest

    from qtrain_host import datasets, paths, stream
    src = os.path.join(paths.ROOT, "data", "mnist-subset")
    images, labels = datasets.load_split(src, "train")
    n = 500
    split = bench_accuracy.validation_idx(src, str(tmp_path), n, lambda s: None)
    tr_i, tr_l = datasets.load_split(split, "train")
    ho_i, ho_l = datasets.load_split(split, "test")
    assert len(tr_l) == len(labels) - n and len(ho_l) == n
    assert np.array_equal(ho_i, images[-n:]) and np.array_equal(ho_l, labels[-n:])
    assert np.array_equal(tr_i, images[:-n])
    data = bench_accuracy.prepare(split, str(tmp_path), lambda s: None, "data-val")
    with open(os.path.join(data, "manifest.json")) as f:
        files = json.load(f)["files"]
    for K in (10, 100, 200):
        # indices into the split's 'train' images, i.e. the first len - n
        assert files["train-labelled-%d%s" % (K, stream.SUFFIX)]["samples"] == 10 * K
    assert files["test" + stream.SUFFIX]["samples"] == n
    for bad in (0, len(labels)):
        with pytest.raises(SystemExit, match="--validation"):
            bench_accuracy.validation_idx(src, str(tmp_path / "b"), bad, lambda s: None)
    # its figures are not the test set's: never written into the docs' table
    with pytest.raises(SystemExit, match="not for --md"):
        bench_accuracy.main(["--data", src, "--validation", "100", "--md", str(tmp_path / "B.md"),
                             "--out", str(tmp_path / "o")])


def _unix_subset(tmp_path):
    """The shipped MNIST subset prepared under tmp_path/data for a run on the
    Unix port (skipped without it, failed if QTRAIN_REQUIRE_TARGETS needs it)."""
    import os

    import pytest

    from qtrain_host import runner
    from subset import prepare_subset
    if not runner.available("unix"):
        if "unix" in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("the Unix port is not built")
        pytest.skip("the Unix port is not built")
    data = tmp_path / "data"
    prepare_subset(data)
    return data


@pytest.mark.parametrize("tool", ["bench", "bench_cnn", "bench_dsgu", "bench_frames", "bench_memory", "bench_stream"])
def test_boards_option_takes_commas_or_spaces_and_names_an_unknown_board(tool, capsys):
    """Every bench's --boards: "qemu-m0,qemu-m4" and "qemu-m0 qemu-m4" name
    the same boards (bench_dsgu once failed on commas with "no serial
    device"), and a board that does not exist is a usage error naming it,
    before any emulator starts."""
    assert qemu.boards_arg("qemu-m0,qemu-m4") == qemu.boards_arg(" qemu-m0  qemu-m4 ") == ("qemu-m0", "qemu-m4")
    with pytest.raises(SystemExit) as e:
        importlib.import_module("qtrain_host." + tool).main(["--boards", "qemu-m0,qemu-m9"])
    assert e.value.code == 2
    assert "unknown board 'qemu-m9'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        importlib.import_module("qtrain_host." + tool).main(["--boards", " , "])
    assert "no board named" in capsys.readouterr().err


def test_stream_report_states_this_runs_link_rate():
    """The UART's rate follows the host (a quiet run measured 5x a loaded
    one): the block states the rate of its own run, not a fixed range."""
    from qtrain_host import bench_stream
    rates = {"mount": 90.0, "mount_shuffled": 45.0, "plain": 100.0, "dataz": 500.0}
    R = {"boards": ["qemu-m0"], "n_mount": 60, "n_framed": 300, "rates": {"qemu-m0": rates},
         "step_instructions": {"qemu-m0": 10.8e6}}
    text = bench_stream.report(R, "cmd")
    assert "moved qemu-m0 79 KB/s (plain DATA records)" in text     # 100 records/s x 789 B
    assert "12-26 KB/s" not in text


def test_stream_takes_the_trained_step_from_the_bench_block(tmp_path):
    """bench_stream's epoch estimate takes table b's trained-state row (the
    step a training run makes) when the block has one, else its uint8 row."""
    from qtrain_host import bench_stream
    head = "| board | mode | forward | loss (BCE) | backward + update | step | rest |\n|---|---|\n"
    synth = "| qemu-m0 | uint8 (synthetic) | 3.33 M | 240.7 k | 7.26 M | 10.82 M | 6.61 |\n"
    trained = "| qemu-m0 | uint8 (trained) | 3.33 M | 249.6 k | 7.15 M | 10.73 M | 6.55 |\n"
    old = "| qemu-m4 | uint8 | 1.29 M | 90.4 k | 3.04 M | 4.42 M | 2.70 |\n"
    md = tmp_path / "B.md"
    md.write_text(head + synth + trained + old)
    assert bench_stream.step_instructions(str(md)) == pytest.approx({"qemu-m0": 10.73e6, "qemu-m4": 4.42e6})
    md.write_text(head + synth)
    assert bench_stream.step_instructions(str(md)) == pytest.approx({"qemu-m0": 10.82e6})


def _cnn_results(runs):
    step = {"fits": 1, "forward": 545104, "step": 1933145, "heap_model": 44848, "step_garbage": 0}
    return {"data": "MNIST (the shipped subset data/mnist-subset)", "runs": runs,
            "steps": {"qemu-m0/uint8": step, "qemu-m4/uint8": dict(step, step=861706)}}


def test_cnn_report_seeds():
    """bench_cnn --seeds: each epoch's accuracy as mean ± spread (population
    standard deviation) over the seeds and the last epoch per seed; one seed
    (or a results.json from before --seeds, without "seeds") keeps the
    single-value table."""
    from qtrain_host import bench_cnn
    seeds = {"1": [0.877, 0.934, 0.944, 0.944], "2": [0.89, 0.93, 0.95, 0.955], "3": [0.87, 0.93, 0.94, 0.939]}
    mean = [{"test_acc": sum(v[i] for v in seeds.values()) / 3} for i in range(4)]
    text = bench_cnn.report(_cnn_results({"uint8": {"samples": 6000, "seeds": seeds, "epochs": mean}}), "cmd")
    assert "| uint8 | 87.9 ± 0.8 | 93.1 ± 0.2 | 94.5 ± 0.4 | 94.6 ± 0.7 | 91.5 |" in text, text
    assert "seeds 1, 2, 3." in text and "mean ± spread (population standard deviation) over the seeds" in text
    assert "Last epoch per seed: uint8 94.4 (seed 1), 95.5 (seed 2), 93.9 (seed 3)." in text
    assert "| qemu-m0 | uint8 | 0.55 M | 1.93 M | 44848 B | 0 B |" in text
    for one in ({"samples": 6000, "seeds": {"1": seeds["1"]}, "epochs": [{"test_acc": a} for a in seeds["1"]]},
                {"samples": 6000, "epochs": [{"test_acc": a} for a in seeds["1"]]}):
        text = bench_cnn.report(_cnn_results({"uint8": one}), "cmd")
        assert "| uint8 | 87.7 | 93.4 | 94.4 | 94.4 | 91.5 |" in text, text
        assert "seed 1." in text and "±" not in text and "per seed" not in text


@pytest.mark.parametrize("bad", ["0", "1,1", "x", " , "])
def test_cnn_seeds_checked(bad, capsys):
    from qtrain_host import bench_cnn
    with pytest.raises(SystemExit) as e:
        bench_cnn.main(["--seeds", bad, "--steps-only", "--boards", "qemu-m0"])
    assert e.value.code == 2
    assert "--seeds" in capsys.readouterr().err


def test_dsgu_share_scales_error_and_update_by_k_over_n():
    """bench_dsgu --share: a layer's share is lmin 1.0's error + update
    times k/N (N: the structures carrying an error there), plus the passes DSGU adds (scores, select) as measured at the
    small k; a layer whose only structure is always selected costs its full
    backward.  The ratios printed divide lmin 1.0's total by each."""
    from qtrain_host import bench_dsgu
    rows = [("a", "2", {"scores": 10, "select": 5, "error": 300, "update": 200, "forward": 999}),
            ("b", "1", {"scores": 4, "select": 1, "error": 60, "update": 40})]
    full = [("a", "20", {"scores": 10, "select": 8, "error": 2000, "update": 1000, "forward": 999}),
            ("b", "1", {"scores": 4, "select": 1, "error": 60, "update": 40})]
    out, (tm, ts, tf) = bench_dsgu.share_rows(rows, full)
    assert [(n, k, N) for n, k, N, _, _ in out] == [("a", 2, 20), ("b", 1, 1)]
    assert out[0][3:] == (515, 3000 * 2 / 20 + 15)      # measured; share = 300 + 15
    assert out[1][3:] == (105, 105)
    assert (tm, ts, tf) == (620, 420, 3123)
    # N counts the structures that carry an error at lmin 1.0, when known:
    # 10 of a's 20 rows carry one, so its k = 2 is a fifth of the full work.
    full[0][2]["carry"] = 10
    out, (tm, ts, tf) = bench_dsgu.share_rows(rows, full)
    assert out[0][2] == 10 and out[0][4] == 3000 * 2 / 10 + 15
    assert tf == 3123                                   # "carry" is a count, not a cost
