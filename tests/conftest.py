"""Shared pytest setup: host_tools on sys.path, and the `target` fixture.

Tests that run code on MicroPython take a `target` argument; they then run
once per target in QTRAIN_TARGETS (default: every target that is built).
`make test` sets QTRAIN_REQUIRE_TARGETS so a target that is not built is a
failure there, not a silent skip.
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "host_tools"))

from qtrain_host import runner  # noqa: E402

ALL_TARGETS = ["unix", "qemu-m0", "qemu-m4"]


def _targets():
    names = os.environ.get("QTRAIN_TARGETS")
    return names.split() if names else ALL_TARGETS


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", _targets())


@pytest.fixture
def run(target):
    """run(script, files=None, timeout=...) -> output; fails the test on error."""
    required = os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split()
    if not runner.available(target):
        msg = "target %s is not built (make setup dist)" % target
        if target in required:
            pytest.fail(msg)
        pytest.skip(msg)

    def _run(script, files=None, timeout=600):
        res = runner.run_script(target, script, files=files, timeout=timeout)
        if res.returncode != 0:
            pytest.fail("script failed on %s (exit %d):\n%s" % (target, res.returncode, res.output[-4000:]))
        return res.output
    _run.target = target
    return _run
