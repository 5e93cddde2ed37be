"""Run a MicroPython script on a target, with _qtrain.mpy and
_qtrain_float.mpy on its path (a script imports what it uses).

Targets: "unix" (the Unix port built by the Makefile), "qemu-m0", "qemu-m3",
"qemu-m4" (emulated boards), or a serial device path (a real board).

    from qtrain_host.runner import run_script
    res = run_script("qemu-m4", "import _qtrain; print(_qtrain.abi())")
    res.output, res.returncode

The script is plain MicroPython source text.  `files` maps names to put next
to it on the target (value: bytes, or a host path) so it can import them.
"""
import os
import subprocess
import sys
import tempfile

from . import paths


class TargetUnavailable(RuntimeError):
    """The target's interpreter or firmware has not been built."""


class RunResult:
    def __init__(self, output, returncode, icount=None):
        self.output = output          # everything the script printed (str)
        self.returncode = returncode  # 0 = script ran to its end
        self.icount = icount or {}    # region name -> instructions (QEMU only)

    def check(self):
        """Raise RuntimeError with the output if the script failed; return self."""
        if self.returncode != 0:
            raise RuntimeError("script failed (exit %d):\n%s" % (self.returncode, self.output))
        return self

    def __repr__(self):
        return "RunResult(returncode=%d, %d chars)" % (self.returncode, len(self.output))


def available(target):
    """True if `target` can run here (its interpreter/firmware and natmod exist)."""
    try:
        _check_built(target)
        return True
    except TargetUnavailable:
        return False


def _check_built(target):
    arch = paths.TARGET_ARCH.get(target)
    if target == "unix":
        exe = paths.UNIX_MICROPYTHON
        if not os.path.exists(exe):
            raise TargetUnavailable("no Unix port at %s: run `make setup`" % exe)
    elif arch is not None:
        fw = paths.firmware_path(target)
        if not os.path.exists(fw):
            raise TargetUnavailable("no firmware at %s: run `make firmware`" % fw)
    else:
        return  # a serial port: nothing to check here
    for mod in paths.NATMODS:
        if not os.path.exists(paths.natmod_path(arch, mod)):
            raise TargetUnavailable("no %s: run `make dist`" % paths.natmod_path(arch, mod))


def _write_files(dirname, files):
    for name, value in (files or {}).items():
        dst = os.path.join(dirname, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        else:
            with open(value, "rb") as f:
                data = f.read()
        with open(dst, "wb") as f:
            f.write(data)


def run_unix(script, files=None, timeout=300, heapsize="2M", echo=False, args=()):
    _check_built("unix")
    with tempfile.TemporaryDirectory(prefix="qtrain-run-") as tmp:
        _write_files(tmp, files)
        path = os.path.join(tmp, "main.py")
        with open(path, "w") as f:
            f.write(script)
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join(
            [tmp, paths.natmod_dir("x64"), paths.PYTHON_DIR, ".frozen"])
        cmd = [paths.UNIX_MICROPYTHON, "-X", "heapsize=" + heapsize, path] + list(args)
        if not echo:
            try:
                p = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b"").decode("utf-8", "replace")
                return RunResult(out + "\n[qtrain runner: timeout after %ss]" % timeout, -9)
            return RunResult(p.stdout.decode("utf-8", "replace"), p.returncode)
        # Stream output line by line while keeping it.
        p = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        chunks = []
        for line in p.stdout:
            text = line.decode("utf-8", "replace")
            chunks.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()
        return RunResult("".join(chunks), p.wait(timeout=timeout))


def run_script(target, script, files=None, timeout=300, echo=False, **kw):
    """Run `script` on `target`; see the module docstring."""
    if target == "unix":
        return run_unix(script, files=files, timeout=timeout, echo=echo, **kw)
    if target in paths.TARGET_ARCH:
        from . import qemu
        return qemu.run(target, script, files=files, timeout=timeout, echo=echo, **kw)
    from . import serial_target
    return serial_target.run(target, script, files=files, timeout=timeout, echo=echo, **kw)
