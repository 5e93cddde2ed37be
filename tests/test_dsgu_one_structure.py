"""DSGU on a layer of one structure (the ConvVAE's ConvT 16->1, a Dense of
one row): k = max(floor(f N), 1) is 1 at every lmin, so the layer skips the
scores and the selection (builder.py gives it no DSGU buffers) and its
backward is the one without DSGU, bit for bit.  A layer of two structures
next to it still selects (its DSGU state moves), so the test tells a skipped
selection from one that never ran."""
import pytest

SCRIPT = r"""
import array
from qtrain import layers as L
def pair(mode, make):
    # the same layer twice (same seed): DSGU at lmin 0.1, and without DSGU
    on = make(L.Options(mode=mode, seed=3, dsgu=(0.1, 0.1)))
    off = make(L.Options(mode=mode, seed=3))
    for lay in (on, off):
        if hasattr(lay, 'geom'):
            L.Shared.for_layers([lay])   # a conv layer's scratch
    return on, off
def err(lay, mode):
    n = lay.n_out
    if mode != 'uint8':   # (mixed: float32 errors)
        return array.array('f', [((i * 37) % 11 - 5) * 0.01 for i in range(n)]), None
    return bytearray((i * 37 + 11) % 256 for i in range(n)), L.qparams(-0.05, 0.05)
def run(mode, make, n_in):
    on, off = pair(mode, make)
    x = bytearray((i * 53 + 7) % 256 for i in range(n_in))
    if mode == 'float32':
        x = array.array('f', [v / 255 for v in x])
    xq = None if mode == 'float32' else L.qparams(0.0, 1.0)
    for lay in (on, off):
        for s in range(3):
            lay.forward(x, xq)
            e, eq = err(lay, mode)
            lay.backward(e, eq)
    print('R', mode, on.n_out, len(on.sel), on.k, on.dsgu_state[0] > 0,
          bytes(on.w) == bytes(off.w), bytes(on.b) == bytes(off.b))
for mode in ('uint8', 'mixed', 'float32'):
    for oc in (1, 2):
        run(mode, lambda o: L.Conv2d((2, 6, 6), oc, 3, 2, 1, 1, transposed=True, opt=o), 72)
        run(mode, lambda o: L.Dense(12, oc, opt=o), 12)
print('done')
"""


def test_one_structure_skips_the_selection(run, target):
    out = run(SCRIPT)
    rows = [l.split()[1:] for l in out.splitlines() if l.startswith("R ")]
    assert len(rows) == 12, out
    for mode, n_out, n_sel, k, moved, same_w, same_b in rows:
        one = int(n_out) in (12 * 12, 1)     # ConvT 2x6x6 -> 1x12x12 / Dense 12 -> 1
        if one:
            # no DSGU buffers, k = 1, no score taken, the backward of DSGU off
            assert (n_sel, k, moved, same_w, same_b) == ("0", "1", "False", "True", "True"), (mode, n_out)
        else:
            # the control: two structures select (the state moves), k = 1 of 2
            assert (n_sel, k, moved) == ("2", "1", "True"), (mode, n_out)
