"""Values at the edges of int32 and float: saturation, never wrap-around or
undefined behaviour (docs/RELIABILITY.md section 2, the fuzzer's findings).

- Gradients accumulated over a batch (dense_grad_acc_u8, conv*_grad_u8) into
  buffers already near +-(2^31 - 1) saturate there, bit-exact with the golden
  model, on every target.
- Records whose range is not finite are rejected by name (the range becomes a
  zero point through a float->int conversion); a range as wide as the
  bindings accept still gives a finite scale.
(Conv outputs that must saturate at 255 are cases of
tests/test_conv_kernels.py::test_conv_u8_bit_exact.)
"""
import numpy as np

from qtrain_host.golden import conv as G
from qtrain_host.golden import dense as GD
from qtrain_host.golden import quant as GQ

M = 2**31 - 1

ACC_SCRIPT = r"""
import _qtrain as Q
import _qtrain_float as QF   # the batch gradients
from array import array
def rd(name, tc):
    with open(name, 'rb') as f:
        return array(tc, f.read())
def phx(a):
    print(' ' + bytes(a).hex(), end='')
e, x = rd('e.bin', 'B'), rd('x.bin', 'B')
eq, xq = rd('eq.bin', 'f'), rd('xq.bin', 'f')
g, gb = rd('g.bin', 'i'), rd('gb.bin', 'i')
QF.dense_grad_acc_u8(bytearray(e), eq, bytearray(x), xq, g, gb, None, 0)
print('D', end='')
phx(g)
phx(gb)
print()
for t in (0, 1):
    geom = tuple(rd('geom%d.bin' % t, 'i'))
    ce, cx = rd('ce%d.bin' % t, 'B'), rd('cx%d.bin' % t, 'B')
    gw, cgb = rd('gw%d.bin' % t, 'i'), rd('cgb%d.bin' % t, 'i')
    fn = QF.conv_transpose2d_grad_u8 if t else QF.conv2d_grad_u8
    slen = (Q.conv_transpose2d_scratch_len if t else Q.conv2d_scratch_len)(geom)
    fn(bytearray(ce), eq, bytearray(cx), xq, gw, cgb, geom, None, 0, bytearray(slen))
    print('C%d' % t, end='')
    phx(gw)
    phx(cgb)
    print()
print('done')
"""


def _near_limits(rng, n):
    """int32 values within 2^12 of +-(2^31 - 1) (and INT32_MIN itself)."""
    v = rng.integers(0, 2**12, n).astype(np.int64)
    sign = rng.choice([-1, 1], n)
    out = sign * (M - v)
    out[rng.random(n) < 0.1] = -2**31
    return out.astype(np.int32)


def test_batch_gradient_sums_saturate(run):
    rng = np.random.default_rng(7)
    m, n = 6, 40
    e = rng.integers(0, 256, m, dtype=np.uint8)
    x = rng.integers(0, 256, n, dtype=np.uint8)
    eq, xq = GQ.new_qp(-1.0, 2.0), GQ.new_qp(-0.5, 1.0)
    g = _near_limits(rng, m * n)
    gb = _near_limits(rng, m)
    files = {"e.bin": e.tobytes(), "x.bin": x.tobytes(), "eq.bin": eq.tobytes(), "xq.bin": xq.tobytes(),
             "g.bin": g.tobytes(), "gb.bin": gb.tobytes()}
    conv = {}
    for t, geom in ((0, (3, 9, 9, 4, 3, 3, 2, 2, 1, 1)), (1, (4, 5, 5, 3, 3, 3, 2, 2, 1, 1, 1, 1))):
        (ci, H, W), wshape, (co, oh, ow) = G.geom_shapes(t, geom)
        ce = rng.integers(0, 256, (co, oh, ow), dtype=np.uint8)
        cx = rng.integers(0, 256, (ci, H, W), dtype=np.uint8)
        gw0 = _near_limits(rng, int(np.prod(wshape))).reshape(wshape)
        gb0 = _near_limits(rng, co)
        conv[t] = (ce, cx, gw0, gb0, geom)
        files.update({"geom%d.bin" % t: np.array(geom, np.int32).tobytes(), "ce%d.bin" % t: ce.tobytes(),
                      "cx%d.bin" % t: cx.tobytes(), "gw%d.bin" % t: gw0.tobytes(),
                      "cgb%d.bin" % t: gb0.tobytes()})
    out = run(ACC_SCRIPT, files=files)
    assert "done" in out, out[-2000:]
    lines = {p[0]: [bytes.fromhex(h) for h in p[1:]] for p in (ln.split() for ln in out.splitlines()) if p}

    want_g, want_gb = GD.grad_acc_u8(e, eq, x, xq, g.reshape(m, n), gb)
    got_g = np.frombuffer(lines["D"][0], np.int32)
    assert np.array_equal(got_g, want_g.ravel()), "dense g"
    assert np.array_equal(np.frombuffer(lines["D"][1], np.int32), want_gb), "dense gb"
    # the case reaches the limits both ways (else it would test nothing)
    assert (got_g == M).any() and (got_g == -M).any()

    for t, (ce, cx, gw0, gb0, geom) in conv.items():
        dg, dgb = G.grad_u8_qp(bool(t), ce, eq, cx, xq, geom)
        want_gw = GD.sat_add_i32(gw0, dg).astype(np.int32)
        want_cgb = GD.sat_add_i32(gb0, dgb).astype(np.int32)
        got_gw = np.frombuffer(lines["C%d" % t][0], np.int32)
        assert np.array_equal(got_gw, want_gw.ravel()), "conv%s gw" % ("T" if t else "")
        assert np.array_equal(np.frombuffer(lines["C%d" % t][1], np.int32), want_cgb), \
            "conv%s gb" % ("T" if t else "")
        assert (got_gw == M).any() and (got_gw == -M).any()


REJECT_SCRIPT = r"""
import _qtrain as Q
from array import array
def qp(lo, hi, alpha=0.1):
    r = array('f', [0.0, 0.0, lo, hi, alpha, 0.0, 0.0, 0.0])
    Q.qp_from_range(r)
    return r
def expect(what, fn):
    try:
        fn()
    except ValueError as ex:
        print(what, 'ValueError', str(ex).replace(' ', '_'))
        return
    print(what, 'returned')
nan, inf = float('nan'), float('inf')
# qp_update: a record it updates (alpha > 0, observations) with a non-finite field
for item in (2, 3, 5, 6):
    for v in (nan, inf, -inf):
        r = qp(-1.0, 1.0)
        r[5], r[6], r[7] = -0.5, 0.5, 1.0
        r[item] = v
        expect('U%d' % item, lambda: Q.qp_update(r))
# a record it does not update (alpha 0) may hold anything there
r = qp(-1.0, 1.0, 0.0)
r[2], r[7] = nan, 1.0
expect('U_fixed', lambda: Q.qp_update(r))
# a kernel argument whose range is not finite
x, y = bytearray(4), bytearray(2)
w = bytearray(8)
for item in (2, 3):
    xq = qp(-1.0, 1.0)
    xq[item] = nan
    expect('F%d' % item, lambda: Q.dense_forward_u8(x, xq, w, qp(-1.0, 1.0), None, None, y, qp(-1.0, 1.0), 0))
# the widest range qp_from_range accepts: a finite scale, z in 0..255
r = qp(-3e38, 3e38)
print('W', r[0] < 3.5e38, r[0] > 0, 0 <= r[1] <= 255)
print('done')
"""


def test_non_finite_ranges_rejected_by_name(run):
    out = run(REJECT_SCRIPT)
    assert "done" in out, out[-2000:]
    res = {p[0]: p[1:] for p in (ln.split() for ln in out.splitlines()) if p}
    for item in (2, 3, 5, 6):
        got = [ln for ln in out.splitlines() if ln.startswith("U%d " % item)]
        assert len(got) == 3, out
        for ln in got:
            assert "ValueError qps:_item_%d_(range_or_observation)_must_be_finite" % item in ln, ln
    assert res["U_fixed"] == ["returned"], out
    for item in (2, 3):
        assert res["F%d" % item][0] == "ValueError", out
        assert res["F%d" % item][1].startswith("xq:_item_%d_(range_or_observation)_must_be_finite" % item), out
    assert res["W"] == ["True", "True", "True"], out
