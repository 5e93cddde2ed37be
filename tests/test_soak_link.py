"""Lost `mpremote mount` link (issue 6 item 4, docs/RELIABILITY.md), quick
version of `make soak-link`: the trainer on the Unix port behind mpremote's
own mount code (board side: mpremote's fs_hook_code on stdin/stdout; host
side: mpremote's PyboardCommand), the host going silent at a chosen request
-- a data read, then a checkpoint write -- and the same command run again.
The emulated-board version (`python -m qtrain_host.soak_link`, a killed
mpremote process on qemu-m4) takes minutes per cut, so it is in make soak."""
import os
import re
import sys

import pytest

from qtrain_host import runner, soak_link, stream
from qtrain_host.soak_long import prepare_stream

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from qtrain import checkpoint  # noqa: E402

CMD_READ, CMD_WRITE, CMD_RENAME = 6, 8, 11  # mpremote's request kinds
SAMPLES = 12


def _need_unix():
    if not runner.available("unix"):
        if "unix" in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("target unix is not built")
        pytest.skip("Unix port not built")


def _dirs(tmp_path, name, images):
    mount = tmp_path / name / "mount"
    board = tmp_path / name / "board"
    mount.mkdir(parents=True)
    board.mkdir()
    stream.write(str(mount / "train.qtds"), images)
    return str(mount), str(board)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its final checkpoint and the requests it made."""
    _need_unix()
    tmp = tmp_path_factory.mktemp("link")
    src, _ = prepare_stream("", out_root=str(tmp))
    images = stream.read(src).images[:SAMPLES]
    mount, board = _dirs(tmp, "ref", images)
    rc, out, kinds = soak_link.unix_mount_run(mount, board, soak_link.train_args(SAMPLES, every=4))
    assert rc == 0 and "@result vae samples=%d" % (2 * SAMPLES) in out, out
    with open(os.path.join(mount, "vae.qtc"), "rb") as f:
        return images, f.read(), kinds


@pytest.mark.parametrize("where", ["data read", "checkpoint write", "final checkpoint write"])
def test_lost_link_saves_on_board_and_resumes_exactly(tmp_path, reference, where):
    """The host stops answering in the middle of the first epoch: the board
    ends the run with LinkLostError naming the file, saves a checkpoint at
    the last completed sample on its own filesystem, and the same command
    run again resumes exactly there and ends bit-identical to the
    uninterrupted run (the board copy is then removed)."""
    images, ref, kinds = reference
    want = CMD_READ if where == "data read" else CMD_WRITE
    final = where == "final checkpoint write"
    # The first such request after the first checkpoint (so that one exists
    # in the mount too and the board's copy must win by being newer); or the
    # last write of the run (its final save: the rerun has nothing to train).
    first_commit = kinds.index(CMD_RENAME)
    after = [i for i in range(first_commit + 1, len(kinds)) if kinds[i] == want]
    cut = after[-1] if final else after[1] if want == CMD_READ else after[0]  # a read: one sample trained since that save
    mount, board = _dirs(tmp_path, "cut", images)
    args = soak_link.train_args(SAMPLES, every=4)
    rc, out, _ = soak_link.unix_mount_run(mount, board, args, answer=cut)
    assert rc != 0, out
    m = re.search(r"LinkLostError: (\S+): the link to the host .*was lost", out)
    assert m, out
    assert m.group(1) == ("train.qtds" if want == CMD_READ else "vae.qtc"), out
    assert ("while writing the checkpoint" in out) == (want == CMD_WRITE), out
    saved = re.search(r"saved a checkpoint at epoch (\d+), sample (\d+) on the board \((\S+)\)", out)
    assert saved, out
    copy = os.path.join(board, "vae.qtc.onboard")
    assert saved.group(3) == copy
    state, seq = checkpoint.load(copy)
    epoch, pos = int(saved.group(1)), int(saved.group(2))
    assert (state["epoch"], state["pos"], state["steps"]) == (epoch, pos, seq)
    assert 0 < seq <= 2 * SAMPLES and seq == epoch * SAMPLES + pos
    assert (seq == 2 * SAMPLES) == final
    assert checkpoint.verify(os.path.join(mount, "vae.qtc")) < seq  # the mount's copy is older

    rc, out2, _ = soak_link.unix_mount_run(mount, board, args)
    assert rc == 0, out2
    assert "resuming from vae.qtc at epoch %d, sample %d" % (epoch + 1, pos) in out2, out2
    with open(os.path.join(mount, "vae.qtc"), "rb") as f:
        assert f.read() == ref
    assert not [n for n in os.listdir(board) if n.startswith("vae.qtc")]


def test_guard_is_a_no_op_on_plain_files(tmp_path):
    """Only a file served by mpremote gets the bounded wait; the board copy
    exists only for paths under the mount."""
    from qtrain import data
    p = tmp_path / "f"
    p.write_bytes(b"x")
    with open(p, "rb") as f:
        assert data.guard_mount_link(f) is False
    assert checkpoint.board_copy(str(tmp_path / "vae.qtc")) is None
    assert checkpoint.board_copy("/remote/run/vae.qtc") == "/vae.qtc.onboard"
    assert data.is_link_lost(Exception("timeout waiting for remote"))
    assert data.is_link_lost(OSError(data.errno.ETIMEDOUT, "x"))
    assert not data.is_link_lost(OSError(2, "ENOENT"))
