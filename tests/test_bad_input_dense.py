"""Bad input to the quantization/Dense entry points raises ValueError/TypeError
whose message starts with the argument's name, on every target (and never
crashes).  Each case is one line of MicroPython run in a single script."""
import pytest

# (expected exception, argument name, call).  Names used in the calls are set
# up by PRELUDE: a valid 3x5 layer (m=3, n=5).
CASES = [
    # forward: typecodes
    ("TypeError", "x", "Q.dense_forward_u8(arr('f', 5), xq, w, wq, b, bq, y, yq, 0)"),
    ("TypeError", "x", "Q.dense_forward_u8(5, xq, w, wq, b, bq, y, yq, 0)"),
    ("TypeError", "w", "Q.dense_forward_u8(x, xq, arr('h', 15), wq, b, bq, y, yq, 0)"),
    ("TypeError", "b", "Q.dense_forward_u8(x, xq, w, wq, arr('l', 3), bq, y, yq, 0)"),
    ("TypeError", "b", "Q.dense_forward_u8(x, xq, w, wq, bytearray(12), bq, y, yq, 0)"),
    ("TypeError", "xq", "Q.dense_forward_u8(x, arr('i', 8), w, wq, b, bq, y, yq, 0)"),
    ("TypeError", "y", "Q.dense_forward_u8(x, xq, w, wq, b, bq, bytes(3), yq, 0)"),
    ("TypeError", "yq", "Q.dense_forward_u8(x, xq, w, wq, b, bq, y, bytes(32), 0)"),
    ("TypeError", "relu", "Q.dense_forward_u8(x, xq, w, wq, b, bq, y, yq, 'yes')"),
    # lengths / shapes
    ("ValueError", "w", "Q.dense_forward_u8(x, xq, bytearray(14), wq, b, bq, y, yq, 0)"),
    ("ValueError", "w", "Q.dense_forward_u8(x, xq, bytearray(16), wq, b, bq, y, yq, 0)"),
    ("ValueError", "w", "Q.dense_forward_u8(x, xq, w, wq, b, bq, bytearray(4), yq, 0)"),
    ("ValueError", "b", "Q.dense_forward_u8(x, xq, w, wq, arr('i', 4), bq, y, yq, 0)"),
    ("ValueError", "x", "Q.dense_forward_u8(bytearray(0), xq, bytearray(0), wq, b, bq, y, yq, 0)"),
    ("ValueError", "y", "Q.dense_forward_u8(x, xq, bytearray(0), wq, None, bq, bytearray(0), yq, 0)"),
    ("ValueError", "xq", "Q.dense_forward_u8(x, arr('f', 7), w, wq, b, bq, y, yq, 0)"),
    ("ValueError", "relu", "Q.dense_forward_u8(x, xq, w, wq, b, bq, y, yq, 2)"),
    # qparams content
    ("ValueError", "xq", "Q.dense_forward_u8(x, qp(0.0, 3), w, wq, b, bq, y, yq, 0)"),
    ("ValueError", "wq", "Q.dense_forward_u8(x, xq, w, qp(-1.0, 3), b, bq, y, yq, 0)"),
    ("ValueError", "yq", "Q.dense_forward_u8(x, xq, w, wq, b, bq, y, qp(0.1, 256), 0)"),
    ("ValueError", "yq", "Q.dense_forward_u8(x, xq, w, wq, b, bq, y, qp(0.1, -1), 0)"),
    ("ValueError", "xq", "Q.dense_forward_u8(x, qp(0.1, 2.5), w, wq, b, bq, y, yq, 0)"),
    ("ValueError", "xq", "Q.dense_forward_u8(x, qp(float('nan'), 3), w, wq, b, bq, y, yq, 0)"),
    ("ValueError", "xq", "Q.dense_forward_u8(x, qp(float('inf'), 3), w, wq, b, bq, y, yq, 0)"),
    ("ValueError", "yq", "Q.dense_forward_u8(x, xq, w, wq, b, bq, y, qp(0.1, 3, 1.5), 0)"),
    ("ValueError", "bq", "Q.dense_forward_u8(x, xq, w, wq, b, qp(0.1, 3), y, yq, 0)"),
    # aliasing: output over an input
    ("ValueError", "y", "Q.dense_forward_u8(x, xq, w, wq, b, bq, memoryview(w)[0:3], yq, 0)"),
    # quant core
    ("ValueError", "qps", "Q.qp_update(arr('f', 12))"),
    ("ValueError", "qps", "Q.qp_update(qp(0.1, 3, 2.0))"),
    ("TypeError", "qp", "Q.qp_from_range(bytearray(8))"),
    ("ValueError", "qp_new", "Q.remap_u8(w, wq, qp(0.0, 3))"),
    ("TypeError", "q", "Q.remap_u8(arr('f', 3), wq, wq)"),
]

PRELUDE = r"""
from array import array
import _qtrain as Q
import _qtrain_float as QF
def arr(tc, n):
    return array(tc, [0] * n)
def qp(s, z, alpha=0.0):
    return array('f', [s, z, -1.0, 1.0, alpha, 0, 0, 0])
x = bytearray(5); w = bytearray(15); y = bytearray(3)
xq = qp(0.1, 3); wq = qp(0.01, 128); yq = qp(0.05, 10); bq = qp(0.001, 0)
b = array('i', [0, 1, 2])
def check(i, src):
    try:
        eval(src)
        print('C', i, 'NoError', '')
    except (ValueError, TypeError) as e:
        print('C', i, type(e).__name__, str(e).replace('\n', ' '))
"""


def _script(cases, extra=""):
    lines = [PRELUDE, extra]
    for i, (_, _, src) in enumerate(cases):
        lines.append("check(%d, %r)" % (i, src))
    lines.append("Q.dense_forward_u8(x, xq, w, wq, b, bq, y, yq, 1)\nprint('valid call ok')")
    return "\n".join(lines) + "\n"


def _results(out):
    res = {}
    for line in out.splitlines():
        if line.startswith("C "):
            _, i, typ, msg = (line.split(" ", 3) + [""])[:4]
            res[int(i)] = (typ, msg)
    return res


def check_cases(run, cases, extra=""):
    out = run(_script(cases, extra))
    assert "valid call ok" in out
    res = _results(out)
    bad = []
    for i, (typ, name, src) in enumerate(cases):
        got = res.get(i)
        if got is None or got[0] != typ or not got[1].startswith(name + ":"):
            bad.append("%s -> expected %s '%s: ...', got %r" % (src, typ, name, got))
    assert not bad, "\n".join(bad)

# Backward / select / update entry points (layer m=3, n=5; see PRELUDE).
CASES_TRAIN = [
    ("TypeError", "e", "Q.dense_backward_u8(arr('i', 3), eq, w, wq, ep, epq, None, 0, acc)"),
    ("ValueError", "w", "Q.dense_backward_u8(e, eq, bytearray(16), wq, ep, epq, None, 0, acc)"),
    ("ValueError", "acc", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, None, 0, arr('i', 4))"),
    ("TypeError", "acc", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, None, 0, bytes(20))"),
    ("ValueError", "acc", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, None, 0, bytearray(19))"),
    ("ValueError", "acc", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, None, 0, memoryview(bytearray(24))[2:22])"),
    ("ValueError", "k", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, sel, 0, acc)"),
    ("ValueError", "k", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, sel, 4, acc)"),
    ("ValueError", "sel", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, array('i', [0, 7, 1]), 2, acc)"),
    ("ValueError", "sel", "Q.dense_backward_u8(e, eq, w, wq, ep, epq, arr('i', 2), 1, acc)"),
    ("ValueError", "epq", "Q.dense_backward_u8(e, eq, w, wq, ep, qp(-0.1, 3), None, 0, acc)"),
    ("ValueError", "ep", "Q.dense_backward_u8(e, eq, w, wq, memoryview(w)[:5], epq, None, 0, acc)"),
    ("ValueError", "y", "Q.relu_backward_u8(e, eq, bytearray(4), yq)"),
    ("TypeError", "e", "Q.relu_backward_u8(bytes(3), eq, y, yq)"),
    ("ValueError", "hp[0] (lmin)", "Q.dense_select_u8(e, eq, array('f', [0.0, 1.0]), dst, sel, scr)"),
    ("ValueError", "hp[1] (lmax)", "Q.dense_select_u8(e, eq, array('f', [0.5, 0.4]), dst, sel, scr)"),
    ("ValueError", "hp[1] (lmax)", "Q.dense_select_u8(e, eq, array('f', [0.5, 1.5]), dst, sel, scr)"),
    ("ValueError", "scratch", "Q.dense_select_u8(e, eq, dhp, dst, sel, arr('I', 3))"),
    ("TypeError", "scratch", "Q.dense_select_u8(e, eq, dhp, dst, sel, arr('i', 6))"),
    ("ValueError", "state", "Q.dense_select_u8(e, eq, dhp, arr('f', 2), sel, scr)"),
    # with the ReLU mask fused (y, yq)
    ("TypeError", "e", "Q.dense_select_u8(bytes(3), eq, dhp, dst, sel, scr, y, yq)"),
    ("ValueError", "y", "Q.dense_select_u8(e, eq, dhp, dst, sel, scr, bytearray(2), yq)"),
    ("TypeError", "y", "Q.dense_select_u8(e, eq, dhp, dst, sel, scr, arr('f', 3), yq)"),
    ("ValueError", "yq", "Q.dense_select_u8(e, eq, dhp, dst, sel, scr, y, qp(0.05, 256))"),
    ("TypeError", "yq", "Q.dense_select_u8(e, eq, dhp, dst, sel, scr, y)"),
    ("ValueError", "e", "Q.dense_select_u8(e, eq, dhp, dst, sel, scr, e, yq)"),
    ("ValueError", "hp[0] (lr)", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, array('f', [0.0, 1, 0]), 0, st, rng)"),
    ("ValueError", "hp[0] (lr)", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, array('f', [-0.1, 1, 0]), 0, st, rng)"),
    ("ValueError", "hp[0] (lr)", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, array('f', [100.0, 1, 0]), 0, st, rng)"),
    ("ValueError", "hp[0] (lr)", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, array('f', [float('nan'), 1, 0]), 0, st, rng)"),
    ("ValueError", "hp[1] (alpha_norm)", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, array('f', [0.1, 0, 0]), 0, st, rng)"),
    ("ValueError", "hp[2] (tau)", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, array('f', [0.1, 1, 1]), 0, st, rng)"),
    ("ValueError", "hp", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, arr('f', 2), 0, st, rng)"),
    ("ValueError", "rng", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, 3, st, arr('I', 1))"),
    ("ValueError", "flags", "QF.dense_update_f32(fe, fx, fw, None, None, 0, uhp, 2, st)"),
    ("ValueError", "flags", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, 8, st, rng)"),
    ("ValueError", "flags", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, -1, st, rng)"),
    ("ValueError", "state", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, 0, arr('f', 10), rng)"),
    ("ValueError", "rng", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, 2, st, arr('I', 1))"),
    ("TypeError", "rng", "Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, None, 0, uhp, 2, st, arr('i', 1))"),
    ("TypeError", "w", "Q.dense_update_u8(e, eq, x, xq, bytes(15), wq, b, bq, None, 0, uhp, 0, st, rng)"),
    ("ValueError", "w", "Q.dense_update_u8(e, eq, x, xq, bytearray(12), wq, b, bq, None, 0, uhp, 0, st, rng)"),
    ("ValueError", "wq", "Q.dense_update_u8(e, eq, x, xq, w, qp(0.1, 300), b, bq, None, 0, uhp, 0, st, rng)"),
    ("ValueError", "g", "QF.dense_grad_acc_u8(e, eq, x, xq, arr('i', 14), gb, None, 0)"),
    ("ValueError", "gb", "QF.dense_grad_acc_u8(e, eq, x, xq, g, arr('i', 2), None, 0)"),
    ("ValueError", "state", "QF.update_rows_u8(g, gs, w, wq, gb, b, bq, uhp, 0, arr('f', 10), rng)"),
    ("ValueError", "g", "QF.update_rows_u8(arr('i', 14), gs, w, wq, gb, b, bq, uhp, 0, st, rng)"),
    ("ValueError", "w", "QF.update_rows_u8(g, gs, bytearray(14), wq, gb, b, bq, uhp, 0, st, rng)"),
    ("ValueError", "gs[0] (s_g)", "QF.update_rows_u8(g, array('f', [0, 1]), w, wq, gb, b, bq, uhp, 0, st, rng)"),
    ("ValueError", "gs[1] (s_gb)", "QF.update_rows_u8(g, array('f', [1, -1]), w, wq, gb, b, bq, uhp, 0, st, rng)"),
    ("ValueError", "b", "QF.update_rows_u8(g, gs, w, wq, gb, arr('i', 4), bq, uhp, 0, st, rng)"),
]

TRAIN_PRELUDE = r"""
e = bytearray(3); ep = bytearray(5); eq = qp(2 / 255, 128); epq = qp(2 / 255, 128)
acc = arr('i', 5); sel = arr('i', 3); scr = arr('I', 6); dst = arr('f', 1)
dhp = array('f', [0.1, 1.0]); uhp = array('f', [0.01, 0.85, 0.02])
st = arr('f', 11); rng = array('I', [1]); g = arr('i', 15); gb = arr('i', 3)
gs = array('f', [1e-3, 1e-2]); fe = arr('f', 3); fx = arr('f', 5); fw = arr('f', 15)
"""


def test_bad_input_dense_train(run):
    check_cases(run, CASES_TRAIN, TRAIN_PRELUDE)


def test_bad_input_dense_forward(run):
    check_cases(run, CASES)


def test_messages_name_expected_and_actual(run):
    out = run(_script(CASES[:12]))
    res = _results(out)
    assert res[9][1] == "w: expected len(y)*len(x) = 3*5 = 15 items, got 14"
    assert "expected typecode 'B'" in res[0][1] and "got 'f'" in res[0][1]
