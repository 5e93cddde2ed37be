"""ConvTranspose2d DSGU over input-channel slices (qtrain.convt_slices)
against the numpy golden model, bit for bit on every target: the slice
scores and selection (conv_select_u8 with x, xq, geom), the error
propagation of the selected slices (conv_transpose2d_backward_u8(...,
slices=True), mask-aware in half the cases: the layer's input from a ReLU
layer, as the VAE's two ConvTranspose2d layers run it) and the update of the selected slices (flag 8), one case
after the other as a layer runs them, in a scratch of exactly
conv_transpose2d_scratch_len(geom, True) bytes followed by a guard that must
stay untouched; then the scratch sizes and the bad-input checks.  Not built
for armv6m (the Pico's heap): there convt_slices.attach raises ValueError.
"""
import numpy as np
import pytest

from casefile import pack, parse
from test_conv_kernels import DEVICE_LIB, VAE_GEOMS, rand_geom, u8_case
from test_mask_aware import _mask
from qtrain_host.golden import conv as G
from qtrain_host.golden import quant as GQ

SLICE_SCRIPT = DEVICE_LIB + r"""
import _qtrain as Q
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
GUARD = b'\xa5' * 16
torn = 0
for i in range(ncase):
    fl, x, xq, w, wq, b, bq, e, eq, exq, hp, st, state, rng, uhp, xm, xmq = rdn(f, 17)
    flags = fl[0]
    geom = tuple(fl[1:])
    n_scr = Q.conv_transpose2d_scratch_len(geom, True)
    guarded = buf('s', 'B', n_scr + 16)
    for j in range(n_scr, n_scr + 16):
        guarded[j] = 0xa5
    scratch = guarded[:n_scr]
    sel = zeros('i', geom[0])
    k = Q.conv_select_u8(e, eq, hp, st, sel, buf('ss', 'I', 2 * geom[0] + geom[1] * geom[2]), x, xq, geom)
    ex = buf('ex', 'B', len(x))
    Q.conv_transpose2d_backward_u8(e, eq, None, None, w, wq, ex, exq, geom, sel, k, scratch, True, xm, xmq)
    rem = Q.conv_transpose2d_update_u8(e, eq, x, xq, w, wq, b, bq, geom, sel, k, uhp, flags | 8, state, rng,
                                       scratch)
    print('S', i, end='')
    phx(bytearray([k & 255, k >> 8, rem]))
    phx(sel, 'i')
    phx(st, 'f')
    phx(ex)
    phx(exq, 'f')
    phx(w)
    phx(wq, 'f')
    phx(bytearray(1) if b is None else b, 'B' if b is None else 'i')
    phx(state, 'f')
    phx(rng, 'f')
    print()
    torn += bytes(guarded[n_scr:]) != GUARD
print('torn', torn)
print('done')
"""


def _cases():
    rng = np.random.default_rng(4242)
    mrng = np.random.default_rng(4243)   # the masks (the cases above unchanged)
    geoms = [g for t, g in VAE_GEOMS if t] + [rand_geom(rng, True) for _ in range(16)]
    geoms += [rand_geom(rng, True, (13, 5, 9)) for _ in range(4)]
    out = []
    for i, geom in enumerate(geoms):
        c = u8_case(rng, True, geom)
        ci = c["x"].shape[0]
        if i % 4 == 3:   # a ReLU input: x >= z_x mostly, many zero scores and ties
            c["x"] = np.maximum(c["x"], np.uint8(c["xq"][GQ.ZERO]))
        lmin = float(rng.choice([0.1, 0.3, 1.0]))
        hp = np.array([lmin, max(lmin, float(rng.choice([0.5, 1.0])))], np.float32)
        st = np.array([rng.choice([0.0, 0.001, 100.0])], np.float32)
        flags = 4 | int(rng.integers(0, 4))
        uhp = np.array([rng.choice([0.0001, 0.001, 0.01]), rng.choice([1.0, 0.85]), rng.choice([0.0, 0.05])],
                       np.float32)
        state = np.zeros(5 + 2 * ci, np.float32)
        if rng.random() < 0.5:
            state[0] = 3
            state[1:] = rng.uniform(0.001, 0.1, state.size - 1).astype(np.float32)
        seed = np.array([int(rng.integers(1, 2**32 - 1))], np.uint32)
        # mask-aware in half the cases (the VAE's two layers first); the finish
        # must read channel sel[j]'s mask for the j-th selected slice
        mask = _mask(mrng, c, float(mrng.choice([0.3, 0.6]))) if i % 2 == 0 else (None, None)
        out.append(dict(c=c, hp=hp, st=st, flags=flags, uhp=uhp, state=state, seed=seed, mask=mask))
    return out


NOT_BUILT = "ValueError structures='input': not built into armv6m's _qtrain (the Pico's heap)"
M0_SCRIPT = r"""
from qtrain import layers as L, convt_slices
try:
    convt_slices.attach(L.Conv2d((2, 3, 3), 1, 3, 2, 1, 1, transposed=True, opt=L.Options(dsgu=(0.1, 0.1))))
except ValueError as err:
    print('ValueError', err)
"""


def _armv6m(run):
    """On qemu-m0: the slices raise ValueError naming why (True), else False."""
    if run.target != "qemu-m0":
        return False
    assert NOT_BUILT in run(M0_SCRIPT)
    return True


def test_convt_slices_bit_exact(run):
    if _armv6m(run):
        return
    cases = _cases()
    data = pack(np.array([len(cases)], np.int32))
    for d in cases:
        c = d["c"]
        data += pack(np.array([d["flags"]] + list(c["geom"]), np.int32), c["x"].ravel(), c["xq"],
                     c["w"].ravel(), c["wq"], c["b"], c["bq"], c["e"].ravel(), c["eq"], c["exq"], d["hp"],
                     d["st"], d["state"], d["seed"], d["uhp"], d["mask"][0], d["mask"][1])
    out = run(SLICE_SCRIPT, files={"cases.bin": data})
    assert "done" in out, out[-2000:]
    assert "torn 0" in out, "the slices calls wrote past conv_transpose2d_scratch_len(geom, True)"
    res = parse(out, "S")
    assert len(res) == len(cases)
    partial = 0
    for i, d in enumerate(cases):
        c, geom = d["c"], d["c"]["geom"]
        what = "case %d (%s)" % (i, geom)
        got = res[i]
        k, sel, emax = G.select_slices_u8_qp(c["e"], c["eq"], c["x"], c["xq"], geom, d["hp"][0], d["hp"][1],
                                             d["st"][0])
        assert got[0][0] | (got[0][1] << 8) == k, what + ": k"
        assert np.frombuffer(got[1], np.int32)[:k].tolist() == list(sel), what + ": sel"
        assert np.frombuffer(got[2], np.float32)[0] == np.float32(emax), what + ": state"
        partial += k < geom[0]
        xm, xmq = d["mask"]
        _, ex, exq = G.backward_u8_qp(True, c["e"], c["eq"], None, None, c["x"] if xm is None else xm, c["w"],
                                      c["wq"], c["exq"], geom, sel, slices=True, xq=xmq)
        assert got[3] == ex.tobytes(), what + ": ex"
        assert got[4] == exq.tobytes(), what + ": exq"
        unsel = np.ones(geom[0], bool)
        unsel[sel] = False
        assert np.all(ex[unsel] == int(c["exq"][GQ.ZERO])), what + ": no error outside the slices"
        w, wq2, b, st, rng2, rem = G.update_u8_qp(True, c["e"], c["eq"], c["x"], c["xq"], c["w"], c["wq"],
                                                  c["b"], c["bq"], geom, sel, d["uhp"], d["flags"] | 8,
                                                  d["state"], int(d["seed"][0]))
        assert got[0][2] == rem, what + ": remapped"
        assert got[5] == np.asarray(w, np.uint8).tobytes(), what + ": w"
        w0 = np.asarray(c["w"])
        assert np.array_equal(np.asarray(w)[unsel], w0[unsel]) or rem, what + ": unselected slices kept"
        assert got[6] == np.asarray(wq2, np.float32).tobytes(), what + ": wq"
        if c["b"] is not None:
            assert got[7] == np.asarray(b, np.int32).tobytes(), what + ": b"
        assert got[8] == np.asarray(st, np.float32).tobytes(), what + ": state"
        assert got[9] == np.array([rng2], np.uint32).tobytes(), what + ": rng"
    assert partial >= len(cases) // 2   # most cases select a strict subset


BAD_SCRIPT = r"""
import _qtrain as Q
from array import array
g = (4, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1)
ci, h, w_, co = 4, 3, 3, 2
oh = (h - 1) * 2 - 2 + 3 + 1
def qp():
    a = array('f', [0.0] * 8); a[2] = -1.0; a[3] = 1.0; Q.qp_from_range(a); return a
x, e, w = bytearray(ci * h * w_), bytearray(co * oh * oh), bytearray(ci * co * 9)
ex = bytearray(len(x))
scr = bytearray(Q.conv_transpose2d_scratch_len(g))
sl = Q.conv_transpose2d_scratch_len(g, True)
sscr = bytearray(sl)
print('lens', len(scr), sl)
def tryit(name, f):
    try:
        f()
        print(name, 'no error')
    except (ValueError, TypeError) as err:
        print(name, type(err).__name__, err)
tryit('desc', lambda: Q.conv_transpose2d_backward_u8(e, qp(), None, None, w, qp(), ex, qp(), g,
      array('i', [2, 1]), 2, sscr, True))
tryit('range', lambda: Q.conv_transpose2d_backward_u8(e, qp(), None, None, w, qp(), ex, qp(), g,
      array('i', [4]), 1, sscr, True))
st = array('f', [0.0] * (5 + 2 * ci))
hp = array('f', [0.001, 1.0, 0.0])
rng = array('I', [1])
b, bq = array('i', [0] * co), qp()
tryit('conv_flag', lambda: Q.conv2d_update_u8(bytearray(2 * 2 * 2), qp(), bytearray(4 * 3 * 3), qp(),
      bytearray(2 * 4 * 9), qp(), None, None, (4, 3, 3, 2, 3, 3, 2, 2, 1, 1), None, None, hp, 12,
      array('f', [0.0] * 9), rng, bytearray(Q.conv2d_scratch_len((4, 3, 3, 2, 3, 3, 2, 2, 1, 1)))))
tryit('state', lambda: Q.conv_transpose2d_update_u8(e, qp(), x, qp(), w, qp(), b, bq, g, array('i', [1]), 1,
      hp, 12, array('f', [0.0] * (5 + 2 * co)), rng, sscr))
tryit('sel_len', lambda: Q.conv_select_u8(e, qp(), array('f', [0.1, 1.0]), array('f', [0.0]), array('i', [0] * co),
      array('I', [0] * (2 * co + 9)), x, qp(), g))
# the slices calls' scratch is conv_transpose2d_scratch_len(g, True) bytes, checked
for name, sc in (('short', bytearray(sl - 4)), ('filters', scr)):
    tryit(name + '_bwd', lambda: Q.conv_transpose2d_backward_u8(e, qp(), None, None, w, qp(), ex, qp(), g,
          array('i', [1, 3]), 2, sc, True))
    tryit(name + '_upd', lambda: Q.conv_transpose2d_update_u8(e, qp(), x, qp(), w, qp(), b, bq, g,
          array('i', [1, 3]), 2, hp, 12, st, rng, sc))
# the slices form of conv_select_u8 takes x, xq and geom: 7 or 8 arguments read
# past the caller's argument array (the 8-argument call segfaulted)
sargs = (e, qp(), array('f', [0.1, 1.0]), array('f', [0.0]), array('i', [0] * ci),
         array('I', [0] * (2 * ci + h * w_)), x, qp(), g)
tryit('sel_args7', lambda: Q.conv_select_u8(*sargs[:7]))
tryit('sel_args8', lambda: Q.conv_select_u8(*sargs[:8]))
tryit('sel_args9', lambda: Q.conv_select_u8(*sargs))
tryit('ok', lambda: Q.conv_transpose2d_update_u8(e, qp(), x, qp(), w, qp(), b, bq, g, array('i', [1, 3]), 2,
      hp, 12, st, rng, sscr))
tryit('ok_bwd', lambda: Q.conv_transpose2d_backward_u8(e, qp(), None, None, w, qp(), ex, qp(), g,
      array('i', [1, 3]), 2, sscr, True))
"""


def test_convt_slices_bad_input(run):
    if _armv6m(run):
        return
    out = run(BAD_SCRIPT)
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert "ValueError sel: the input-channel slices must be strictly ascending" in lines["desc"]
    assert "ValueError sel: item 0 must be a channel index in 0..3" in lines["range"]
    assert "ValueError flags" in lines["conv_flag"]
    assert "ValueError state" in lines["state"]
    assert "ValueError e, sel: expected 72 and in_ch = 4 items, got 72 and 2" in lines["sel_len"], out
    filt, sl = (int(v) for v in lines["lens"].split()[1:])
    short = "ValueError scratch: expected at least %d items, got " % sl
    assert lines["short_bwd"].startswith("short_bwd " + short), out
    assert lines["short_upd"].startswith("short_upd " + short), out
    for call in ("filters_bwd", "filters_upd"):   # the shared (filters-sized) scratch: only where it is big enough
        assert lines[call] == (call + " no error" if filt >= sl else "%s %s%d" % (call, short, filt)), out
    if run.target == "qemu-m4":
        assert filt < sl, out   # (the M4's gather needs more for the slices: a case of the check above)
    for n in (7, 8):
        assert lines["sel_args%d" % n] == ("sel_args%d TypeError x, xq, geom: the slices form takes all three "
                                           "(9 arguments), got %d" % (n, n)), out
    assert lines["sel_args9"] == "sel_args9 no error", out
    assert lines["ok"] == "ok no error"
    assert lines["ok_bwd"] == "ok_bwd no error"


LAYER_SCRIPT = r"""
import _qtrain as Q
from qtrain import layers as L, convt_slices
def tryit(name, f, lay, v):
    try:
        f(lay, v)
        print(name, 'no error')
    except ValueError as err:
        print(name, 'ValueError', err)
opt = L.Options(lr=0.001, dsgu=(0.1, 0.1))
lay = L.Conv2d((16, 14, 14), 1, 3, 2, 1, 1, transposed=True, opt=opt)
tryit('bad', convt_slices.attach, lay, 'slices')
tryit('attach_output', convt_slices.attach, lay, 'output')
tryit('use_bad', convt_slices.use, [lay], 'slices')
print('n', convt_slices.use([lay]), convt_slices.use([lay], 'output'))
sh = L.Shared.for_layers([lay])
print('scratch', len(sh.scratch), len(lay._scr), len(lay.slices_scratch), Q.conv_transpose2d_scratch_len(lay.geom),
      Q.conv_transpose2d_scratch_len(lay.geom, True))
x, xq = bytearray(16 * 196), L.qparams(0.0, 1.0)
L.fill_uniform_u8(x, 3)
w0 = bytes(lay.w)
lay.forward(x, xq)
e = bytearray(784)
L.fill_uniform_u8(e, 4)
ep, epq = lay.backward(e, L.qparams(-0.05, 0.05))
z = int(epq[1])
live = [c for c in range(16) if any(v != z for v in ep[c * 196:(c + 1) * 196])]
moved = [c for c in range(16) if bytes(lay.w[c * 9:(c + 1) * 9]) != w0[c * 9:(c + 1) * 9]]
print('k', lay.k, 'sel', lay.sel[0], 'live', live, 'moved', moved, 'state', len(lay.state), len(lay.sel))
def wide(o):
    return convt_slices.attach(L.Conv2d((4, 3, 3), 16, 3, 2, 1, 1, transposed=True, opt=o))
print('wide', wide(opt), wide(opt.replace(dsgu=(0.05, 1.0))), convt_slices.attach(L.Conv2d((2, 5, 5), 1, 3, opt=opt)))
"""


# A script of its own: a mixed layer loads _qtrain_float (most of the M4's free heap).
MIXED_SCRIPT = r"""
from qtrain import layers as L, convt_slices
try:
    convt_slices.attach(L.Conv2d((2, 3, 3), 1, 3, 2, 1, 1, transposed=True,
                                 opt=L.Options(dsgu=(0.1, 0.1), mode='mixed')))
except ValueError as err:
    print('mixed ValueError', err)
"""


def test_layer_option(run):
    """convt_slices.attach / use: a ConvTranspose2d 16->1 at lmin 0.1 selects
    one of its 16 slices; only that input channel gets an error and only
    that slice's weights move; slices only where the filters cannot go below
    lmin (out_ch lmin < 1) and only on ConvTranspose2d; the shared scratch
    stays at the filters path's size, attach gives the layer the slices'
    own; bad values name the setting and what each function accepts."""
    if _armv6m(run):
        return
    out = run(LAYER_SCRIPT)
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert lines["bad"] == "bad ValueError structures must be 'input', got 'slices'", out
    assert lines["attach_output"] == "attach_output ValueError structures must be 'input', got 'output'", out
    assert lines["use_bad"] == "use_bad ValueError structures must be 'input' or 'output', got 'slices'", out
    assert lines["n"] == "n 1 0", out
    # The shared scratch is the filters path's; the slices calls' is the layer's own.
    shared, view, own, filt, sl = (int(v) for v in lines["scratch"].split()[1:])
    assert shared == view == filt and own == sl, out
    p = lines["k"].split()
    sel = int(p[3])
    assert p[1] == "1", out
    assert lines["k"].endswith("state 37 16"), out
    assert "live [%d]" % sel in lines["k"] and "moved [%d]" % sel in lines["k"], out
    assert lines["wide"] == "wide False True False", out
    mixed = run(MIXED_SCRIPT)
    assert "mixed ValueError structures='input': mode 'uint8' only, got mode 'mixed'" in mixed, mixed
