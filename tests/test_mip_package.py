"""mip packages (dist/mip/<arch>_6.3/package.json, written by `make dist`):
every url resolves to a file make dist produced, and installing one with
mpremote's mip over HTTP on loopback into a fresh directory gives a /lib the
Unix port imports qtrain from and trains with.

QTRAIN_SLOW=1 adds the user's exact command on an emulated Pico:
`mpremote connect PTY mip install --target /lib dist/mip/armv6m_6.3/package.json`
(about a minute: mpremote writes files over the emulated UART).
"""
import functools
import glob
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from qtrain_host import mip_package, paths

ARCHS = mip_package.ARCHS
TINY_STEP = """
import sys
import qtrain
from qtrain import models
vae = models.build_vae("mlp", hidden=16, latent=2)
x = bytearray(784)
for i in range(784):
    x[i] = (i * 7) & 255
rec, kl = vae.train_step(x)
print("from", qtrain.__file__, "version", qtrain.__version__)
print("step", rec > 0 and kl >= 0, rec == rec and kl == kl)
"""


def package(arch, name="package.json"):
    path = os.path.join(mip_package.mip_dir(arch), name)
    if not os.path.exists(path):
        pytest.fail("no %s: run `make dist`" % path)
    with open(path) as f:
        return path, json.load(f)


@pytest.mark.parametrize("arch", ARCHS)
def test_package_json_urls_are_the_files_make_dist_built(arch):
    """package.json: _qtrain.mpy and every module of python/qtrain compiled;
    package-float.json: _qtrain_float.mpy, where make dist built one."""
    modules = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(paths.PYTHON_DIR, "qtrain", "*.py")))
    natmods = sorted(os.path.basename(p) for p in mip_package.natmods(arch))
    assert "_qtrain.mpy" in natmods
    want = {"package.json": ["_qtrain.mpy"] + ["qtrain/%s.mpy" % m for m in modules]}
    if "_qtrain_float.mpy" in natmods:
        want["package-float.json"] = ["_qtrain_float.mpy"]
    assert sorted(n for n in natmods if n not in ("_qtrain.mpy", "_qtrain_float.mpy")) == []
    base = mip_package.mip_dir(arch)
    assert sorted(f for f in os.listdir(base) if f.endswith(".json")) == sorted(want)
    for name, files in want.items():
        path, pkg = package(arch, name)
        assert sorted(pkg) == ["deps", "urls", "version"]
        assert pkg["version"] == mip_package.package_version() and pkg["deps"] == []
        dests = [d for d, _ in pkg["urls"]]
        assert sorted(dests) == sorted(files), path
        for dest, src in pkg["urls"]:
            assert src == dest, "%s: source %s should be the relative path %s" % (path, src, dest)
            assert os.path.isfile(os.path.join(base, src)), "%s: %s does not exist" % (path, src)
    for name in natmods:   # the very files `make dist` built for this arch
        with open(os.path.join(base, name), "rb") as a, open(os.path.join(paths.natmod_dir(arch), name), "rb") as b:
            assert a.read() == b.read(), "%s is stale: run `make dist`" % name
    with open(os.path.join(base, "qtrain", "__init__.mpy"), "rb") as f:
        head = f.read(4)
    assert head[0:2] == b"M\x06", "not a .mpy of ABI 6: %r" % head


class DirTransport:
    """The file operations mpremote's mip uses, on a host directory standing
    for the board's filesystem root."""

    def __init__(self, root):
        self.root = root

    def _host(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def fs_exists(self, path):
        return os.path.exists(self._host(path))

    def fs_mkdir(self, path):
        os.mkdir(self._host(path))

    def fs_writefile(self, path, data, progress_callback=None):
        with open(self._host(path), "wb") as f:
            f.write(data)


@pytest.fixture
def http_dist(monkeypatch):
    """dist/mip served on a loopback port -> its base URL."""
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=os.path.join(paths.DIST, "mip"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_mip_install_over_http_then_train_on_unix(http_dist, tmp_path, capsys):
    from mpremote import mip
    package("x64")
    if not os.path.exists(paths.UNIX_MICROPYTHON):
        pytest.fail("no Unix port at %s: run `make setup`" % paths.UNIX_MICROPYTHON)
    board = tmp_path / "board"
    board.mkdir()
    url = http_dist + "/x64_6.3/package.json"
    mip._install_package(DirTransport(str(board)), url, mip._PACKAGE_INDEX, "/lib", None, True)
    lib = board / "lib"
    installed = sorted(str(p.relative_to(lib)) for p in lib.rglob("*") if p.is_file())
    _, pkg = package("x64")
    assert installed == sorted(d for d, _ in pkg["urls"])
    # Only the installed /lib on the path: no source tree, no dist/.
    env = dict(os.environ, MICROPYPATH=str(lib))
    p = subprocess.run([paths.UNIX_MICROPYTHON, "-X", "heapsize=2M", "-c", TINY_STEP], cwd=str(tmp_path),
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert "from %s/qtrain/__init__.mpy version %s" % (lib, mip_package.package_version()) in out, out
    assert "step True True" in out, out


@pytest.mark.skipif(os.environ.get("QTRAIN_SLOW") != "1", reason="about a minute: set QTRAIN_SLOW=1")
def test_mpremote_mip_install_on_emulated_pico(tmp_path):
    from qtrain_host import qemu, runner
    if not runner.available("qemu-m0"):
        pytest.fail("qemu-m0 is not built (make setup dist)")
    path, _ = package("armv6m")
    script = tmp_path / "step.py"
    # The emulated firmware's sys.path is [''] (a real rp2 port has '/lib').
    script.write_text("import sys\nsys.path.append('/lib')\n" + TINY_STEP)
    with qemu.PtyEmulator("qemu-m0", icount=False) as emu:
        mp = [sys.executable, "-m", "mpremote", "connect", emu.pty]
        outs = []
        for args in (["mip", "install", "--target", "/lib", path], ["run", str(script)]):
            p = subprocess.run(mp + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
            outs.append(p.stdout.decode())
            assert p.returncode == 0, outs[-1]
    assert "Installing: /lib/_qtrain.mpy" in outs[0] and "Done" in outs[0], outs[0]
    assert "from /lib/qtrain/__init__.mpy" in outs[1] and "step True True" in outs[1], outs[1]
