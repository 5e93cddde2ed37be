"""Board configs and the emulated-board firmware: heap budget, time/select,
the mpremote mount path, deterministic instruction counts, script errors."""
import json
import os
import shutil
import time

import pytest

from qtrain_host import paths, runner

BOARDS = os.path.join(paths.ROOT, "boards")
QEMU_BOARDS = ["qemu-m0", "qemu-m4"]
REQUIRED = os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split()


def board(name):
    with open(os.path.join(BOARDS, name, "board.json")) as f:
        return json.load(f)


def need(target):
    if not runner.available(target):
        msg = "target %s is not built (make setup dist)" % target
        if target in REQUIRED:
            pytest.fail(msg)
        pytest.skip(msg)


def run_ok(target, script, **kw):
    res = runner.run_script(target, script, **kw)
    assert res.returncode == 0, "exit %d on %s:\n%s" % (res.returncode, target, res.output[-3000:])
    return res


# ---- configs (host only) ------------------------------------------------------

def test_board_configs():
    names = ["pico", "nano33ble", "unix", "qemu-m0", "qemu-m3", "qemu-m4"]
    for name in names:
        cfg = board(name)
        assert cfg["name"] == name
        assert cfg["arch"] in ("x64", "armv6m", "armv7m", "armv7emsp")
        assert cfg["heap_bytes"] > 0
        assert os.path.exists(os.path.join(BOARDS, name, "README.md")), name
    for name in ("qemu-m0", "qemu-m3", "qemu-m4"):
        assert paths.TARGET_ARCH[name] == board(name)["arch"]
        assert board(name)["qemu"]["machine"]
    # The emulators stand in for the real boards: same arch, same heap budget.
    assert board("qemu-m0")["heap_bytes"] == board("pico")["heap_bytes"]
    assert board("qemu-m0")["arch"] == board("pico")["arch"]
    assert board("qemu-m4")["heap_bytes"] == board("nano33ble")["heap_bytes"]
    assert board("qemu-m4")["arch"] == board("nano33ble")["arch"]
    # The budget never exceeds what the real board has.
    for name in ("pico", "nano33ble"):
        assert board(name)["heap_bytes"] <= board(name)["heap_real_bytes_approx"]


def test_serial_target_arguments(tmp_path):
    from qtrain_host import serial_target as st
    assert st.arch_from_mpy(4870) == "armv6m"      # what qemu-m0 reports
    assert st.arch_from_mpy(7942) == "armv7emsp"   # what qemu-m4 reports
    with pytest.raises(runner.TargetUnavailable):
        st.arch_from_mpy(6)                          # no native arch
    cmd = st.mpremote("/dev/ttyACM0", "mount", "d", "run", "d/main.py")
    assert cmd[-6:] == ["connect", "/dev/ttyACM0", "mount", "d", "run", "d/main.py"]
    if os.path.exists(paths.natmod_path("armv6m")):
        main = st.prepare_dir(str(tmp_path), "print(1)\n", {"a/b.bin": b"xy"}, "armv6m")
        assert open(main).read() == "print(1)\n"
        assert (tmp_path / "_qtrain.mpy").exists() and (tmp_path / "a" / "b.bin").read_bytes() == b"xy"
    with pytest.raises(runner.TargetUnavailable):
        runner.run_script("/dev/no-such-board", "print(1)")


# ---- firmware features ------------------------------------------------------------

@pytest.mark.parametrize("name", QEMU_BOARDS + ["qemu-m3"])
def test_heap_matches_budget(name):
    need(name)
    out = run_ok(name, "import gc\nprint('heap', gc.mem_free() + gc.mem_alloc())\n").output
    heap = int(out.split("heap")[1].split()[0])
    budget = board(name)["heap_bytes"]
    # mem_free + mem_alloc excludes the GC's own tables (1/33 of the heap).
    assert budget * 0.96 <= heap <= budget, (heap, budget)


def test_time_select_stdio(run):
    out = run(
        "import sys, time, select\n"
        "t0 = time.ticks_ms(); u0 = time.ticks_us()\n"
        "time.sleep_ms(20)\n"
        "dt = time.ticks_diff(time.ticks_ms(), t0); du = time.ticks_diff(time.ticks_us(), u0)\n"
        "print('dt', 20 <= dt < 2000, 19000 <= du < 2000000)\n"
        "print('buf', hasattr(sys.stdin, 'buffer'), hasattr(sys.stdout, 'buffer'))\n"
        "p = select.poll(); p.register(sys.stdin, select.POLLIN)\n"
        "print('poll', type(p.poll(0)).__name__)\n")
    assert "dt True True" in out
    assert "buf True True" in out
    assert "poll list" in out


@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_stdin_poll_sees_input(name):
    """select.poll on sys.stdin wakes up when the host sends a byte (what
    mpremote's mount relies on)."""
    need(name)
    from qtrain_host import qemu
    script = ("import sys, select\n"
              "p = select.poll(); p.register(sys.stdin, select.POLLIN)\n"
              "print('idle', p.poll(0))\n"
              "print('ready', len(p.poll(20000)))\n"
              "print('got', sys.stdin.buffer.read(1))\n")
    deadline = time.monotonic() + 60
    with qemu.Emulator(name) as emu:
        emu.enter_raw_repl(deadline)
        emu.write(script.encode() + b"\x04")
        emu.read_until(b"OK", deadline)
        first = emu.read_until(b"\n", deadline)
        assert b"idle []" in first
        emu.write(b"Z")
        out = emu.read_until(b"\x04", deadline)
    assert b"ready 1" in out and b"got b'Z'" in out, out


def test_native_emitter_on_m0():
    """Stock MICROBIT firmware has no native emitter; ours emits Thumb-1 only."""
    need("qemu-m0")
    out = run_ok("qemu-m0",
                 "import micropython\n"
                 "@micropython.native\n"
                 "def f(n):\n"
                 "    s = 0\n"
                 "    for i in range(n):\n"
                 "        s += i\n"
                 "    return s\n"
                 "@micropython.viper\n"
                 "def g(n: int) -> int:\n"
                 "    return n * 3\n"
                 "print(f(100), g(7))\n").output
    assert "4950 21" in out


def test_fpu_on_m4():
    need("qemu-m4")
    out = run_ok("qemu-m4", "import math\nx = 2.0\nprint(math.sqrt(x) * 3.0, 1.5 * x)\n").output
    assert "4.24264" in out and "3.0" in out


# ---- runner behaviour -------------------------------------------------------------

def test_script_exception_is_an_error(target):
    need(target)
    res = runner.run_script(target, "print('before')\ndef f():\n    raise ValueError('boom 42')\nf()\n")
    assert res.returncode != 0
    assert "before" in res.output
    assert "Traceback" in res.output and "ValueError: boom 42" in res.output
    assert "line 3" in res.output


@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_timeout_kills_emulator(name):
    need(name)
    t0 = time.monotonic()
    res = runner.run_script(name, "print('start')\nwhile True:\n    pass\n", timeout=5)
    assert res.returncode == -9
    assert "timeout" in res.output
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("name", QEMU_BOARDS + ["qemu-m3"])
def test_files_and_package_importable(name):
    need(name)
    out = run_ok(name, "import _qtrain, helper, qtrain\n"
                       "print(helper.X, open('d/data.bin', 'rb').read())\n"
                       "with open('out.bin', 'wb') as f:\n"
                       "    f.write(bytes(range(200)))\n"
                       "print('wrote', sum(open('out.bin', 'rb').read()))\n",
                 files={"helper.py": b"X = 1234\n", "d/data.bin": b"\x01\x02"}).output
    assert "1234 b'\\x01\\x02'" in out
    assert "wrote 19900" in out


ICOUNT_SCRIPT = """\
import icount
@micropython.asm_thumb
def spin(r0):
    label(loop)
    sub(r0, 1)
    bne(loop)
def work():
    s = 0
    for i in range(300):
        s += i * i
    return s
for n in (1, 100000, 200000):  # the first round warms MicroPython's lookup caches
    icount.start(); spin(n); c = icount.read()
    print('@icount spin%d %d' % (n, c))
icount.start(); work(); c = icount.read()
print('@icount work', c)
print('resolution', icount.RESOLUTION)
"""


@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_icount_deterministic_and_calibrated(name):
    need(name)
    a = run_ok(name, ICOUNT_SCRIPT)
    b = run_ok(name, ICOUNT_SCRIPT)
    assert set(a.icount) == {"spin1", "spin100000", "spin200000", "work"}
    assert a.icount == b.icount, (a.icount, b.icount)
    # The spin loop is 2 instructions per iteration: 100000 more iterations
    # must read as 200000 more instructions, to within one SysTick tick.
    res = int(a.output.split("resolution")[1].split()[0])
    extra = a.icount["spin200000"] - a.icount["spin100000"]
    assert abs(extra - 200000) <= res, (extra, res)
    assert 0 < a.icount["spin100000"] - 200000 < 5000


# ---- the real user path: mpremote mount over the emulator's pty ------------------

@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_mpremote_mount_run(name, tmp_path):
    need(name)
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("no qemu-system-arm")
    from qtrain_host import qemu
    mount = tmp_path / "mnt"
    mount.mkdir()
    shutil.copy(paths.natmod_path(board(name)["arch"]), mount / "_qtrain.mpy")
    (mount / "sample.bin").write_bytes(bytes(range(10)))
    script = tmp_path / "script.py"
    script.write_text(
        "import os, _qtrain\n"
        "print('cwd', os.getcwd())\n"
        "print('abi', _qtrain.abi())\n"
        "print('sum', sum(open('sample.bin', 'rb').read()))\n")
    rc, out = qemu.mpremote_run(name, str(script), mount=str(mount), capture=True, timeout=300)
    assert rc == 0, out
    assert "cwd /remote" in out and "abi 2" in out and "sum 45" in out, out


def test_firmware_build_is_idempotent():
    """`make firmware` after a build has nothing to do (make -q: up to date)."""
    import subprocess
    for name in ("qemu-m0", "qemu-m3", "qemu-m4"):
        if not os.path.exists(paths.firmware_path(name)):
            pytest.skip("firmware not built")
    p = subprocess.run(["make", "-q", "firmware"], cwd=paths.ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout.decode()


@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_filesystem_reads_do_not_allocate(name):
    """Reading a data file (writable littlefs at / and the ROMFS) allocates
    nothing per call, as on a board's flash filesystem."""
    need(name)
    out = run_ok(name, """
import gc
buf = bytearray(64)
def measure(f):
    gc.collect(); gc.disable(); a = gc.mem_alloc()
    for i in range(100):
        f.seek(i * 64)
        f.readinto(buf)
    b = gc.mem_alloc(); gc.enable()
    return b - a
for p in ('d.bin', '/rom/d.bin'):
    f = open(p, 'rb')
    measure(f)
    print('ALLOC', p, measure(f))
""", files={"d.bin": bytes(range(256)) * 40}).output
    assert "ALLOC d.bin 0" in out and "ALLOC /rom/d.bin 0" in out, out


def test_root_filesystem_over_mpremote():
    """Like a real board: `mpremote cp` to / works and files survive a soft reset."""
    need("qemu-m0")
    import subprocess
    import sys
    from qtrain_host import qemu
    with qemu.PtyEmulator("qemu-m0") as emu:
        mp = [sys.executable, "-m", "mpremote", "connect", emu.pty]
        src = os.path.join(paths.ROOT, "boards", "qemu-m0", "board.json")
        for args in (["fs", "cp", src, ":b.json"],
                     ["soft-reset", "exec", "import os; print('ls', os.listdir(), os.stat('b.json')[6])"]):
            p = subprocess.run(mp + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            assert p.returncode == 0, p.stdout.decode()
    assert "ls ['b.json'] %d" % os.path.getsize(src) in p.stdout.decode()
