"""mip packages: dist/mip/<arch>_6.3/package.json with everything a board of
that architecture needs in its /lib to train in uint8: the native module
_qtrain and the qtrain package compiled for the arch; package-float.json adds
_qtrain_float (the float32 / mixed-mode kernels) where `make dist` built it.
`make dist` writes them:

    python -m qtrain_host.mip_package [--arch armv6m ...]

Install from the host over USB (mpremote resolves the relative urls next to
the package.json, so the folder can be copied or published anywhere):

    mpremote connect /dev/ttyACM0 mip install dist/mip/armv6m_6.3/package.json

or on a board with a network (mip on the board, MicroPython 1.21 or newer),
from wherever the folder is served, e.g. `python -m http.server -d dist/mip`:

    >>> import mip; mip.install("http://192.168.1.10:8000/armv6m_6.3/package.json")

Format (MicroPython's mip): {"urls": [[destination, source], ...],
"version": ..., "deps": [...]}; destinations are relative to the target
directory (/lib by default), sources relative to the package.json.
"""
import argparse
import glob
import json
import os
import re
import shutil

from . import paths

ARCHS = ("x64", "armv6m", "armv7m", "armv7emsp")


def mip_dir(arch):
    """dist/mip/<arch>_6.3: one installable package per architecture."""
    return os.path.join(paths.DIST, "mip", "%s_%s" % (arch, paths.MPY_ABI))


def package_version():
    """qtrain.__version__, read from the source (the host does not import it)."""
    with open(os.path.join(paths.PYTHON_DIR, "qtrain", "__init__.py")) as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise ValueError("python/qtrain/__init__.py: no __version__ = \"...\" line")
    return m.group(1)


def natmods(arch):
    """The native modules `make dist` built for `arch` (_qtrain.mpy, and
    _qtrain_float.mpy where it exists)."""
    return sorted(glob.glob(os.path.join(paths.natmod_dir(arch), "_qtrain*.mpy")))


# package file -> which of the files in the folder it installs
PACKAGES = {
    "package.json": lambda name: name != "_qtrain_float.mpy",
    "package-float.json": lambda name: name == "_qtrain_float.mpy",
}


def _write_json(path, files):
    with open(path, "w") as f:   # one url per line: readable, diffable
        f.write('{\n "urls": [\n  %s\n ],\n "version": %s,\n "deps": []\n}\n' % (
            ",\n  ".join(json.dumps([n, n]) for n in files), json.dumps(package_version())))


def write(arch):
    """(Re)write mip_dir(arch): the files and their package files. -> their paths."""
    from .cli_run import write_package
    mods = natmods(arch)
    if not os.path.exists(paths.natmod_path(arch)):
        raise SystemExit("mip_package: no %s: run `make dist`" % paths.natmod_path(arch))
    out = mip_dir(arch)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for m in mods:
        shutil.copy(m, out)
    write_package(arch, out)
    files = []
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames.sort()
        for fn in sorted(filenames):
            files.append(os.path.relpath(os.path.join(dirpath, fn), out).replace(os.sep, "/"))
    written = []
    for name, takes in PACKAGES.items():
        mine = [f for f in files if takes(f)]
        if mine:
            written.append(os.path.join(out, name))
            _write_json(written[-1], mine)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m qtrain_host.mip_package", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", action="append", choices=ARCHS, help="default: every arch in dist/")
    args = p.parse_args(argv)
    for arch in args.arch or [a for a in ARCHS if natmods(a)]:
        for path in write(arch):
            with open(path) as f:
                n = len(json.load(f)["urls"])
            print("mip: %s (%d files)" % (os.path.relpath(path, paths.ROOT), n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
