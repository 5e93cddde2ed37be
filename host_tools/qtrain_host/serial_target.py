"""Run a script on a real board over its serial port, the way a user does:
`mpremote connect <port> mount <dir> run <script>`.

<dir> is a temporary directory holding the script, `files` and the
`_qtrain.mpy` matching the board's architecture (asked from the board, or
given as arch=...).  Nothing is written to the board's flash.  Real boards
have no instruction counter; `@icount` lines are still collected if printed.

    run("/dev/ttyACM0", "import _qtrain; print(_qtrain.abi())")
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from . import paths
from .runner import RunResult, TargetUnavailable

# sys.implementation._mpy >> 10 -> natmod arch (py/persistentcode.h MP_NATIVE_ARCH_*)
MPY_ARCH = {2: "x64", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp", 8: "armv7emdp"}


def mpremote(port, *args):
    """The mpremote command line (list) for `port` and its subcommands."""
    return [sys.executable, "-m", "mpremote", "connect", port] + list(args)


def arch_from_mpy(sys_mpy):
    """Natmod arch name from the board's sys.implementation._mpy value."""
    arch = MPY_ARCH.get((int(sys_mpy) >> 10) & 0xF)
    if arch is None:
        raise TargetUnavailable("board reports _mpy=%r: no native code support or unknown arch"
                                % sys_mpy)
    return arch


def detect_arch(port, timeout=30):
    p = subprocess.run(mpremote(port, "exec", "import sys; print(sys.implementation._mpy)"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace").strip()
    if p.returncode != 0 or not out.splitlines() or not out.splitlines()[-1].isdigit():
        raise TargetUnavailable("no MicroPython board answering on %s:\n%s" % (port, out))
    return arch_from_mpy(out.splitlines()[-1])


def prepare_dir(dirname, script, files, arch):
    """Fill `dirname` with main.py, `files`, _qtrain.mpy and _qtrain_float.mpy
    (mounted from the host: the board loads only what the script imports);
    return main.py's path."""
    for mod in paths.NATMODS:
        mpy = paths.natmod_path(arch, mod)
        if not os.path.exists(mpy):
            raise TargetUnavailable("no %s: run `make dist`" % mpy)
        shutil.copy(mpy, os.path.join(dirname, mod + ".mpy"))
    for name, value in (files or {}).items():
        dst = os.path.join(dirname, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if isinstance(value, (bytes, bytearray)):
            with open(dst, "wb") as f:
                f.write(value)
        else:
            shutil.copy(value, dst)
    main = os.path.join(dirname, "main.py")
    with open(main, "w") as f:
        f.write(script)
    return main


def run(port, script, files=None, timeout=300, echo=False, arch=None, **kw):
    if kw:
        raise TypeError("serial_target.run: unexpected arguments %s" % sorted(kw))
    if not os.path.exists(port):
        raise TargetUnavailable("no serial device %s" % port)
    arch = arch or detect_arch(port)
    from .qemu import parse_icount
    with tempfile.TemporaryDirectory(prefix="qtrain-serial-") as tmp:
        main = prepare_dir(tmp, script, files, arch)
        cmd = mpremote(port, "mount", tmp, "run", main)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, p.kill)  # readline() below blocks
        timer.start()
        chunks = []
        try:
            for line in iter(p.stdout.readline, b""):
                text = line.decode("utf-8", "replace")
                chunks.append(text)
                if echo:
                    sys.stdout.write(text)
                    sys.stdout.flush()
            rc = p.wait()
        finally:
            timed_out = not timer.is_alive()
            timer.cancel()
        if timed_out:
            chunks.append("\n[qtrain serial: timeout after %ss]" % timeout)
            rc = -9
        out = "".join(chunks).replace("\r\n", "\n")
        return RunResult(out, rc, parse_icount(out))
