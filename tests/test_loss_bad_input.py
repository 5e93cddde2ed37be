"""Bad input to every loss/latent/rng/vmath entry point raises TypeError or
ValueError naming the argument, on every target (and nothing is written)."""

BAD_SCRIPT = r"""
from array import array
import _qtrain as Q
import _qtrain_float as QF
def fz(n):
    return array('f', bytes(4 * n))
qp = array('f', [2/255, 128, -1, 1, 0.1, 0, 0, 0])
bad_qp = array('f', [0, 128, -1, 1, 0.1, 0, 0, 0])
x = bytearray(16); t = bytearray(16); e = bytearray(16); ef = fz(16); st = fz(3)
xf = fz(16)
lut = fz(512)
h = bytearray(20); hf = fz(20); eps = fz(10); z = bytearray(10); zf = fz(10)
dz = bytearray(10); dzf = fz(10); dh = bytearray(20); dhf = fz(20); hp = array('f', [1.0])
rng = array('I', [12345])
c = bytearray(10); cf = fz(10); ce = fz(10)
cases = [
    ('x', TypeError, lambda: Q.bce_sigmoid_u8(xf, qp, t, e, qp, st)),
    ('xq', ValueError, lambda: Q.bce_sigmoid_u8(x, fz(7), t, e, qp, st)),
    ('xq', ValueError, lambda: Q.bce_sigmoid_u8(x, bad_qp, t, e, qp, st)),
    ('t', ValueError, lambda: Q.bce_sigmoid_u8(x, qp, bytearray(15), e, qp, st)),
    ('t', TypeError, lambda: Q.bce_sigmoid_u8(x, qp, xf, e, qp, st)),
    ('e', ValueError, lambda: Q.bce_sigmoid_u8(x, qp, t, bytearray(17), qp, st)),
    ('e', TypeError, lambda: Q.bce_sigmoid_u8(x, qp, t, bytes(16), qp, st)),
    ('eq', ValueError, lambda: Q.bce_sigmoid_u8(x, qp, t, e, bad_qp, st)),
    ('stats', ValueError, lambda: Q.bce_sigmoid_u8(x, qp, t, e, qp, fz(2))),
    ('stats', TypeError, lambda: Q.bce_sigmoid_u8(x, qp, t, e, qp, array('i', [0, 0, 0]))),
    ('lut', ValueError, lambda: Q.bce_sigmoid_u8(x, qp, t, e, qp, st, fz(256))),
    ('lut', TypeError, lambda: QF.bce_sigmoid_mixed(x, qp, t, ef, st, bytes(2048))),
    ('lut', ValueError, lambda: QF.bce_sigmoid_mixed(x, qp, t, ef, st, bytearray(2047))),
    ('e', TypeError, lambda: QF.bce_sigmoid_mixed(x, qp, t, e, st)),
    ('x', ValueError, lambda: Q.bce_sigmoid_u8(bytearray(0), qp, bytearray(0), bytearray(0), qp, st)),
    ('x', TypeError, lambda: QF.bce_sigmoid_f32(x, t, ef, st)),
    ('e', ValueError, lambda: QF.bce_sigmoid_f32(xf, t, xf, st)),
    ('label', ValueError, lambda: Q.softmax_ce_u8(c, qp, 10, z, qp, st)),
    ('label', ValueError, lambda: Q.softmax_ce_u8(c, qp, -1, z, qp, st)),
    ('label', TypeError, lambda: QF.softmax_ce_f32(cf, 'a', ce, st)),
    ('e', ValueError, lambda: QF.softmax_ce_f32(cf, 1, fz(9), st)),
    ('e', ValueError, lambda: QF.softmax_ce_f32(cf, 1, cf, st)),
    ('x', TypeError, lambda: QF.softmax_ce_mixed(cf, qp, 1, ce, st)),
    ('eq', ValueError, lambda: Q.softmax_ce_u8(c, qp, 1, z, fz(8), st)),
    ('h', ValueError, lambda: Q.latent_forward_u8(bytearray(21), qp, rng, eps, z, qp, st)),
    ('h', ValueError, lambda: QF.latent_forward_f32(fz(0), rng, eps, zf, st)),
    ('z', ValueError, lambda: Q.latent_forward_u8(h, qp, rng, eps, bytearray(11), qp, st)),
    ('eps', ValueError, lambda: Q.latent_forward_u8(h, qp, rng, fz(9), z, qp, st)),
    ('eps', TypeError, lambda: Q.latent_forward_u8(h, qp, rng, bytearray(40), z, qp, st)),
    ('rng', ValueError, lambda: Q.latent_forward_u8(h, qp, array('I', [0]), eps, z, qp, st)),
    ('rng', TypeError, lambda: QF.latent_forward_f32(hf, array('i', [5]), eps, zf, st)),
    ('zq', ValueError, lambda: Q.latent_forward_u8(h, qp, rng, eps, z, bad_qp, st)),
    ('hq', ValueError, lambda: Q.latent_forward_u8(h, bad_qp, rng, eps, z, qp, st)),
    ('z', TypeError, lambda: QF.latent_forward_f32(hf, rng, eps, z, st)),
    ('dz', ValueError, lambda: Q.latent_backward_u8(h, qp, eps, bytearray(9), qp, dh, qp, hp, st)),
    ('dz', ValueError, lambda: QF.latent_backward_f32(hf, eps, fz(11), dhf, hp, st)),
    ('dzq', ValueError, lambda: Q.latent_backward_u8(h, qp, eps, dz, bad_qp, dh, qp, hp, st)),
    ('dh', ValueError, lambda: Q.latent_backward_u8(h, qp, eps, dz, qp, bytearray(10), qp, hp, st)),
    ('dh', TypeError, lambda: QF.latent_backward_mixed(h, qp, eps, dzf, dh, hp, st)),
    ('beta', ValueError, lambda: Q.latent_backward_u8(h, qp, eps, dz, qp, dh, qp, array('f', [-0.5]), st)),
    ('beta', ValueError, lambda: QF.latent_backward_f32(hf, eps, dzf, dhf, array('f', [float('nan')]), st)),
    ('beta', ValueError, lambda: QF.latent_backward_mixed(h, qp, eps, dzf, dhf, array('f', [float('inf')]), st)),
    ('hp', ValueError, lambda: QF.latent_backward_f32(hf, eps, dzf, dhf, array('f'), st)),
    ('eps', ValueError, lambda: QF.latent_backward_f32(hf, fz(3), dzf, dhf, hp, st)),
    ('dh', ValueError, lambda: QF.latent_backward_f32(hf, eps, dzf, hf, hp, st)),
    ('seed', TypeError, lambda: Q.rng_seed(rng, 1.5)),
    ('rng', ValueError, lambda: Q.rng_seed(array('I', [0, 0]), 1)),
    ('rng', ValueError, lambda: Q.rng_normal(array('I', [0]), eps)),
    ('rng', TypeError, lambda: Q.rng_normal(None, eps)),
    ('out', TypeError, lambda: Q.rng_normal(rng, bytearray(8))),
    ('op', ValueError, lambda: Q.vmath(6, eps, eps)),
    ('op', TypeError, lambda: Q.vmath(None, eps, eps)),
    ('y', ValueError, lambda: Q.vmath(0, eps, fz(9))),
    ('x', TypeError, lambda: Q.vmath(0, bytearray(4), fz(4))),
]
before = bytes(e) + bytes(ef) + bytes(dh) + bytes(st)
for i, (arg, exc, fn) in enumerate(cases):
    try:
        fn()
        print('NORAISE', i, arg)
    except Exception as ex:
        msg = str(ex)
        ok = type(ex) is exc and msg.startswith(arg) or (arg in msg.split(':')[0])
        print('OK' if ok and type(ex) is exc else 'WRONG', i, arg, type(ex).__name__, msg)
print('unchanged', before == bytes(e) + bytes(ef) + bytes(dh) + bytes(st))
print('done', len(cases))
"""


def test_loss_bad_input(run):
    out = run(BAD_SCRIPT)
    assert "done" in out
    bad = [l for l in out.splitlines() if l.startswith(("NORAISE", "WRONG"))]
    assert not bad, "\n".join(bad)
    n = int(out.split("done")[1].split()[0])
    assert sum(l.startswith("OK ") for l in out.splitlines()) == n
    assert "unchanged True" in out
