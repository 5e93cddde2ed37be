"""Reliability, quick versions of `make soak` (issue 6, docs/RELIABILITY.md):
random calls at every native entry point, training killed at random
moments and resumed, a short long-run, and the checkpoint commit rule that
keeps a resumed-from `.tmp` alive.  A few seconds each on the Unix port."""
import array
import os
import shutil
import subprocess
import sys

import pytest

from qtrain_host import runner, soak_api, soak_fuzz, soak_long, soak_power

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from qtrain import checkpoint  # noqa: E402


def _need_unix():
    if not runner.available("unix"):
        if "unix" in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("target unix is not built")
        pytest.skip("Unix port not built")


@pytest.fixture(scope="module")
def soak_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("soak"))


def test_api_fuzz_quick():
    """50 hypothesis-drawn calls to every entry point dir() finds; each
    entry point has a valid template (recorded from the package or written
    by hand) that runs unchanged, so mutants get past the first checks."""
    _need_unix()
    r = soak_api.fuzz(per_entry=50, seed=7, log=lambda *a: None)
    assert not r["failures"], r["failures"]
    assert not r["setup_errors"], r["setup_errors"]   # no failing setup, no invalid template
    fns = r["fns"]
    assert len(fns) >= 60 and "dense_forward_u8" in fns and "crc32" in fns
    assert all(v[0] == 50 for v in fns.values()), {k: v[0] for k, v in fns.items() if v[0] != 50}
    assert r["total"] == 50 * len(fns)
    assert all(v[2] > 0 for v in fns.values()), [k for k, v in fns.items() if not v[2]]
    assert sum(v[1] for v in fns.values()) > r["total"] // 6   # many calls reach the kernels and return
    assert r["excs"].get("ValueError", 0) > 200 and r["excs"].get("TypeError", 0) > 200


def test_api_fuzz_isolates_a_dead_process(monkeypatch):
    """The micropython process dies under a program: the program is rerun
    alone (traced), reported, and the run goes on in a new process."""
    _need_unix()
    send, sent = soak_api.Device.send, []

    def send_then_die(dev, pid, prog):
        sent.append(pid)
        if len(sent) == 3:
            dev.p.kill()
        return send(dev, pid, prog)
    monkeypatch.setattr(soak_api.Device, "send", send_then_die)
    r = soak_api.fuzz(per_entry=3, seed=7, log=lambda *a: None)
    assert r["restarts"] == 1 and len(r["failures"]) == 1, r["failures"]
    status, pid, call, _, prog = r["failures"][0]
    assert status == "crash" and pid <= 2 and prog      # killed before or at the third program
    assert r["total"] == 3 * len(r["fns"])
    assert sum(v[0] for v in r["fns"].values()) == r["total"] - len(prog)


def test_power_loss_quick_unix(soak_dir):
    """10 SIGKILLs at random moments: no corrupt or lost checkpoint, every
    restart resumes at the newest valid one, chains end bit-identical to an
    uninterrupted run."""
    _need_unix()
    st = soak_power.run_unix(kills=10, seed=3, samples=60, log=lambda *a: None, out_root=soak_dir)
    assert not st.problems, st.problems
    assert st.kills == 10 and st.corrupt == st.lost == st.wrong_resume == 0
    assert st.chains >= 1 and st.chains_exact == st.chains
    assert st.resumed_ok >= 1


def test_long_run_quick(soak_dir):
    """300 steps of the ConvVAE in uint8 with the long run's checks."""
    _need_unix()
    problems, out = soak_long.run(steps=300, report=100, data_dir="", echo=False, out_root=soak_dir)
    assert not problems, out[-3000:]
    assert "bad=0" in out
    # every layer's output, and the error at the input of every layer but the
    # first, counted where produced (the error buffers are shared by layers)
    assert out.count("@sat ") == 11 and out.count(" ep n=") == 5, out[-3000:]
    for line in out.splitlines():
        if line.startswith("@sat "):
            assert " n=0 " not in line, line


def test_long_run_check_catches_problems():
    ok = "@long step=1 heap_after_collect=100\n" * 3
    tail = "@result long steps=3 scans=3 bad=%d max_abs_bias=%d heap_min=100 heap_max=100 first_bad=''\n"
    assert soak_long.check(ok + tail % (0, 5), 0, 1) == []
    assert soak_long.check(ok + tail % (2, 5), 0, 1) == ["2 non-finite values"]
    assert soak_long.check(ok + tail % (0, 2**31 - 1), 0, 1) == ["an int32 bias reached its limit"]
    grow = "@long step=1 heap_after_collect=100\n" * 2 + "@long step=3 heap_after_collect=164\n"
    assert "grew" in soak_long.check(grow + tail % (0, 5), 0, 1)[0]
    assert soak_long.check("", 1, 1)


STATE = {"w": bytearray(range(100)), "f": array.array("f", [0.5, 1.5]), "n": 0}


class _Cut(Exception):
    pass


def test_resumed_tmp_survives_a_cut_next_write(tmp_path, monkeypatch):
    """A reset after `.tmp` was complete but before its rename: load()
    resumes from `.tmp` (the newest).  The next save must commit it before
    reusing `.tmp`, so a reset during that write still finds it."""
    p = str(tmp_path / "c.qtc")
    checkpoint.save(p, dict(STATE, n=1), seq=1)
    checkpoint.save(p, dict(STATE, n=2), seq=2)
    other = str(tmp_path / "x.qtc")
    checkpoint.save(other, dict(STATE, n=3), seq=3)
    os.rename(other, p + ".tmp")                       # complete, not yet renamed
    st, seq = checkpoint.load(p)
    assert seq == 3 and st["n"] == 3                   # the run resumes from it

    real_open = open

    class CutFile:
        def __init__(self, f):
            self.f = f
            self.n = 0

        def write(self, b):
            if self.n > 40:
                raise _Cut()
            self.n += len(b)
            return self.f.write(b)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def cut_open(path, mode="r"):
        f = real_open(path, mode)
        return CutFile(f) if "w" in mode else f

    monkeypatch.setattr(checkpoint, "open", cut_open, raising=False)
    with pytest.raises(_Cut):
        checkpoint.save(p, dict(STATE, n=4), seq=4)    # reset in the middle of this write
    monkeypatch.undo()
    st, seq = checkpoint.load(p)
    assert seq == 3 and st["n"] == 3


def _has_asan_gcc():
    if shutil.which("gcc") is None:
        return False
    p = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return os.path.isabs(p) and os.path.exists(p)


@pytest.mark.skipif(not _has_asan_gcc(), reason="host gcc with AddressSanitizer not available")
def test_kernel_fuzz_target_random_inputs(tmp_path):
    """The libFuzzer target of `make soak-fuzz` (every operator, shapes and
    values from the input) built with gcc -fsanitize=address,undefined and
    fed 1000 pseudo-random inputs: it builds warning-free and reports nothing."""
    out, rc = soak_fuzz.random_inputs(1000, seed=1, out_dir=str(tmp_path))
    mem, ub = soak_fuzz.findings(out)
    assert rc == 0 and "runs 1000" in out and not mem and not ub, out[-3000:]


def test_fuzz_findings_parser():
    text = ("/x/natmod/kernels/a.c:10:17: runtime error: nan is outside the range\n"
            "natmod/kernels/b.c:5:1: runtime error: signed integer overflow: 1 + 2\n"
            "natmod/kernels/b.c:5:1: runtime error: signed integer overflow: 3 + 4\n"
            "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1\n")
    mem, ub = soak_fuzz.findings(text)
    assert mem == ["ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1"]
    assert len(ub) == 2 and ub["natmod/kernels/b.c:5"].startswith("signed integer overflow: 1 + 2")
