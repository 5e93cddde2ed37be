"""`make test` type-checks python/ (the MicroPython package and scripts) with
mypy against the MicroPython stubs: the stdlib and rp2 port stubs pinned in
host_tools/requirements-mpy-stubs.txt (installed into build/venv/mpy-stubs by
`make setup`) in place of CPython's typeshed, plus our own python/stubs/
(_qtrain*.pyi).  Settings: pyproject.toml [tool.mypy]; cache in build/."""
import os
import subprocess
import sys

import pytest

from qtrain_host import paths

MPY_STUBS = os.path.join(paths.BUILD, "venv", "mpy-stubs")


def mypy(*args):
    if not os.path.isdir(os.path.join(MPY_STUBS, "stdlib")):
        pytest.fail("no MicroPython stubs in %s: run `make setup`" % MPY_STUBS)
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is not installed in %s: run `make setup`" % sys.executable)
    p = subprocess.run([sys.executable, "-m", "mypy"] + list(args), cwd=paths.ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def test_python_dir_type_checks():
    rc, out = mypy()
    assert rc == 0, "mypy found type errors in python/:\n" + out
    assert "Success" in out, out


def test_checker_sees_the_stubs_and_micropython(tmp_path):
    """Misuse of _qtrain, _qtrain_float and of MicroPython-only APIs is
    reported, so the check above is not vacuous (unresolved imports would
    make everything Any)."""
    code = "\n".join([
        "import _qtrain, _qtrain_float, gc, time",
        "_qtrain.crc32(b'x', 0, 1)",                    # too many arguments
        "_qtrain.dense_forward_u8(x=b'')",              # keywords: the natmod takes none
        "_qtrain.no_such_kernel()",                     # not in the module
        "n: str = gc.mem_free()",                       # MicroPython's gc: int
        "t: str = time.ticks_ms()",                     # MicroPython's time: int
        "_qtrain_float.dense_forward_f32(None)",        # too few arguments
        "_qtrain_float.dense_forward_u8",               # that one is in _qtrain
        "v: str = _qtrain_float.abi()",                 # re-exported from _qtrain: int
    ])
    src = tmp_path / "misuse.py"
    src.write_text(code + "\n")
    rc, out = mypy("--cache-dir", str(tmp_path / "cache"), str(src))
    assert rc == 1, out
    for line, what in ((2, "Too many arguments"), (3, "Unexpected keyword argument"),
                       (4, "no_such_kernel"), (5, "int"), (6, "int"),
                       (7, "Too few arguments"), (8, "dense_forward_u8"), (9, "int")):
        assert any(ln.startswith("%s:%d: error" % (src, line)) and what in ln for ln in out.splitlines()), \
            "line %d (%s) not reported:\n%s" % (line, what, out)
