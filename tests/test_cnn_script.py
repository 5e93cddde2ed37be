"""mp_scripts/cnn.py, the driver of `python -m qtrain_host.bench_cnn`: its
default options reach the model and train it (a short run on the subset)."""
import os
import subprocess

import pytest

from qtrain_host import bench_report, runner
from subset import prepare_subset


def test_cnn_script_defaults_train_and_options_reach_the_model(tmp_path):
    if not runner.available("unix"):
        if "unix" in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("the Unix port is not built")
        pytest.skip("the Unix port is not built")
    data = prepare_subset(tmp_path / "data")

    def run(*args):
        argv, env = bench_report.unix_command("cnn.py", ["--epochs", "1", "--limit", "1000", "--test_limit", "300",
                                                         "--seed", "1"] + list(args))
        p = subprocess.run(argv, cwd=data, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        ep = bench_report.parse_lines(p.stdout, "epoch")
        assert len(ep) == 1, p.stdout
        return ep[0]

    fixed = run()
    # 1 000 steps from scratch: far above chance (10 %); the subset gives ~70-78 %
    assert fixed["test_acc"] > 0.5, fixed
    # the error-range option reaches the layers: tracked ranges train differently
    assert run("--alpha_e", "0.1")["train_loss"] != fixed["train_loss"]
