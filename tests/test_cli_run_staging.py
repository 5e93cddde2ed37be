"""`qtrain_host run` on a board: the directory it mounts (cli_run.stage_board_dir)."""
import os

from qtrain_host import cli_run


def test_staged_data_files_resolve_inside_the_mount(tmp_path):
    # mpremote's mount refuses a path that resolves outside the mounted
    # directory, so a symlinked data file could not be opened by the board.
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.qtds").write_bytes(b"QTDS" + bytes(100))
    staging = tmp_path / "staging"
    staging.mkdir()
    cli_run.stage_board_dir("qemu-m0", str(data), "python/train_vae.py", ["--limit", "3"], str(staging))
    staged = staging / "train.qtds"
    assert not os.path.islink(staged)
    assert os.path.realpath(staged).startswith(os.path.realpath(staging))
    assert staged.read_bytes() == (data / "train.qtds").read_bytes()
    assert (staging / "qtrain.json").exists() and (staging / "_qtrain.mpy").exists()
