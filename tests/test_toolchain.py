"""The toolchain end to end: the module loads on each target and is the
right build for it."""


def test_natmod_imports(run):
    out = run("import _qtrain, sys\nprint('abi', _qtrain.abi(), sys.implementation._mpy)\n")
    assert "abi 2" in out
