"""Script settings on a board: the flash's /qtrain.json (what `make deploy`
writes), then ./qtrain.json (the mounted directory), then the command line;
--config FILE alone replaces both files.  And every script's --help works
on MicroPython (which keeps no docstrings)."""
import json

import pytest


def test_flash_then_mounted_dir_then_command_line(run, target):
    if target != "unix":
        pytest.skip("the merge order is the same code on every target; run on the Unix port")
    flash = {"train_vae": {"epochs": 3, "limit": 100, "model": "conv"}, "train_head": {"epochs": 9}}
    mounted = {"train_vae": {"limit": 200}}
    other = {"train_vae": {"seed": 5}}
    out = run("""
from qtrain import config, trainer
config.FLASH_CONFIG = "flash.json"
d = trainer.VAE_DEFAULTS
c = config.load(["--epochs", "4"], d, "train_vae")
print("merged", c["model"], c["epochs"], c["limit"], c["seed"])
c = config.load(["--config", "other.json"], d, "train_vae")
print("only", c["model"], c["epochs"], c["limit"], c["seed"])
config.FLASH_CONFIG = "absent.json"
c = config.load([], d, "train_vae")
print("no flash", c["model"], c["epochs"], c["limit"])
try:
    config.load([], trainer.HEAD_DEFAULTS, "train_vae")
except ValueError as e:
    print("ERR", e)
""", files={"flash.json": json.dumps(flash).encode(), "qtrain.json": json.dumps(mounted).encode(),
            "other.json": json.dumps(other).encode()})
    assert "merged conv 4 200 1" in out, out
    assert "only mlp 1 0 5" in out, out
    assert "no flash mlp 1 200" in out, out
    assert "ERR qtrain.json [train_vae]: unknown setting 'limit'" in out, out


@pytest.mark.parametrize("script", ["train_vae.py", "train_head.py", "sample.py"])
def test_script_help_on_micropython(run, target, script):
    if target != "unix":
        pytest.skip("command-line options exist on the Unix port only")
    from qtrain_host import paths, runner
    import os
    res = runner.run_unix(open(os.path.join(paths.PYTHON_DIR, script)).read(), args=["--help"])
    assert res.returncode == 0, res.output
    assert "usage: micropython %s" % script in res.output and "options (default):" in res.output, res.output
