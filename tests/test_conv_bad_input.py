"""Bad input to the Conv2d / ConvTranspose2d entry points raises ValueError or
TypeError whose message starts with the argument's name, on every target, and
never crashes.  One MicroPython script runs every case of a list."""
import pytest

# A valid Conv2d 2x6x6 -> 3x3x3 (k 3, stride 2, pad 1) and the matching
# ConvTranspose2d 3x3x3 -> 2x6x6 (output padding 1) are set up by PRELUDE.
G = "(2, 6, 6, 3, 3, 3, 2, 2, 1, 1)"
GT = "(3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1)"

CASES = [
    # geometry
    ("TypeError", "geom", "Q.conv2d_out_shape(5)"),
    ("TypeError", "geom", "Q.conv2d_out_shape(bytearray(10))"),
    ("ValueError", "geom", "Q.conv2d_out_shape((2, 6, 6, 3, 3, 3, 2, 2, 1))"),
    ("ValueError", "geom", "Q.conv_transpose2d_out_shape(" + G + ")"),
    ("ValueError", "geom[6] (stride_h)", "Q.conv2d_out_shape((2, 6, 6, 3, 3, 3, 0, 2, 1, 1))"),
    ("ValueError", "geom[7] (stride_w)", "Q.conv2d_out_shape((2, 6, 6, 3, 3, 3, 2, -1, 1, 1))"),
    ("ValueError", "geom[0] (in_ch)", "Q.conv2d_out_shape((0, 6, 6, 3, 3, 3, 2, 2, 1, 1))"),
    ("ValueError", "geom[1] (in_h)", "Q.conv2d_out_shape((2, -6, 6, 3, 3, 3, 2, 2, 1, 1))"),
    ("ValueError", "geom[4] (k_h)", "Q.conv2d_out_shape((2, 6, 6, 3, 0, 3, 2, 2, 1, 1))"),
    ("ValueError", "geom[8] (pad_h)", "Q.conv2d_out_shape((2, 6, 6, 3, 3, 3, 2, 2, -1, 1))"),
    ("TypeError", "geom[2] (in_w)", "Q.conv2d_out_shape((2, 6, 6.0, 3, 3, 3, 2, 2, 1, 1))"),
    ("ValueError", "geom[3] (out_ch)", "Q.conv2d_out_shape((2, 6, 6, 100000, 3, 3, 2, 2, 1, 1))"),
    ("ValueError", "geom", "Q.conv2d_out_shape((2, 2, 2, 3, 5, 5, 1, 1, 0, 0))"),     # kernel > input
    ("ValueError", "geom", "Q.conv_transpose2d_out_shape((3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 2, 1))"),  # op >= s
    ("ValueError", "geom[10] (out_pad_h)", "Q.conv_transpose2d_out_shape((3, 3, 3, 2, 3, 3, 2, 2, 1, 1, -1, 0))"),
    ("ValueError", "geom", "Q.conv_transpose2d_out_shape((3, 1, 1, 2, 1, 1, 1, 1, 3, 3, 0, 0))"),  # empty
    ("ValueError", "geom", "Q.conv2d_out_shape((2, 6, 6, 3, 300, 3, 2, 2, 1, 1))"),
    # float32 forward
    ("TypeError", "x", "QF.conv2d_forward_f32(xu, wf, bf, yf, " + G + ", 0)"),
    ("ValueError", "x", "QF.conv2d_forward_f32(arr('f', 71), wf, bf, yf, " + G + ", 0)"),
    ("ValueError", "w", "QF.conv2d_forward_f32(xf, arr('f', 53), bf, yf, " + G + ", 0)"),
    ("ValueError", "b", "QF.conv2d_forward_f32(xf, wf, arr('f', 2), yf, " + G + ", 0)"),
    ("ValueError", "y", "QF.conv2d_forward_f32(xf, wf, bf, arr('f', 26), " + G + ", 0)"),
    ("TypeError", "y", "QF.conv2d_forward_f32(xf, wf, bf, bytes(108), " + G + ", 0)"),
    ("ValueError", "relu", "QF.conv2d_forward_f32(xf, wf, bf, yf, " + G + ", 3)"),
    ("ValueError", "y", "QF.conv2d_forward_f32(xf, wf, bf, memoryview(xf)[0:27], " + G + ", 0)"),
    ("ValueError", "w", "QF.conv_transpose2d_forward_f32(yf, arr('f', 53), bf2, xf, " + GT + ", 0)"),
    # float32 backward
    ("ValueError", "e", "QF.conv2d_backward_f32(arr('f', 26), None, xf, wf, exf, gwf, gbf, " + G + ")"),
    ("ValueError", "gw", "QF.conv2d_backward_f32(yf, None, xf, wf, exf, arr('f', 5), gbf, " + G + ")"),
    ("ValueError", "ex", "QF.conv2d_backward_f32(yf, None, xf, wf, arr('f', 5), None, None, " + G + ")"),
    ("ValueError", "sel", "QF.conv2d_backward_f32(yf, None, xf, wf, exf, gwf, gbf, " + G + ", arr('i', 3, 3), 2)"),
    ("ValueError", "k", "QF.conv2d_backward_f32(yf, None, xf, wf, exf, gwf, gbf, " + G + ", arr('i', 2), 3)"),
    ("ValueError", "k", "QF.conv2d_backward_f32(yf, None, xf, wf, exf, gwf, gbf, " + G + ", arr('i', 3), 4)"),
    ("TypeError", "sel", "QF.conv2d_backward_f32(yf, None, xf, wf, exf, gwf, gbf, " + G + ", arr('h', 3), 1)"),
    ("TypeError", "k", "QF.conv2d_backward_f32(yf, None, xf, wf, exf, gwf, gbf, " + G + ", arr('i', 3))"),
    ("ValueError", "ex", "QF.conv2d_backward_f32(yf, None, xf, wf, xf, gwf, gbf, " + G + ")"),
    # uint8 forward
    ("TypeError", "x", "Q.conv2d_forward_u8(xf, xq, w, wq, b, bq, y, yq, " + G + ", 0, sc)"),
    ("ValueError", "x", "Q.conv2d_forward_u8(bytearray(71), xq, w, wq, b, bq, y, yq, " + G + ", 0, sc)"),
    ("ValueError", "w", "Q.conv2d_forward_u8(x, xq, bytearray(55), wq, b, bq, y, yq, " + G + ", 0, sc)"),
    ("TypeError", "b", "Q.conv2d_forward_u8(x, xq, w, wq, arr('f', 3), bq, y, yq, " + G + ", 0, sc)"),
    ("ValueError", "xq", "Q.conv2d_forward_u8(x, qp(0.0, 3), w, wq, b, bq, y, yq, " + G + ", 0, sc)"),
    ("ValueError", "yq", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, qp(0.1, 256), " + G + ", 0, sc)"),
    ("ValueError", "bq", "Q.conv2d_forward_u8(x, xq, w, wq, b, qp(0.1, 3), y, yq, " + G + ", 0, sc)"),
    ("ValueError", "scratch", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, " + G + ", 0, bytearray(17))"),
    ("TypeError", "scratch", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, " + G + ", 0, arr('h', 4000))"),
    ("ValueError", "scratch", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, " + G + ", 0, memoryview(sc)[1:])"),
    ("TypeError", "scratch", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, " + G + ", 0, bytes(4000))"),
    ("ValueError", "scratch", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, " + G + ", 0, memoryview(x)[0:4])"),
    ("TypeError", "scratch", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, " + G + ", 0)"),
    ("ValueError", "y", "Q.conv2d_forward_u8(x, xq, w, wq, b, bq, memoryview(x)[0:27], yq, " + G + ", 0, sc)"),
    ("ValueError", "y", "Q.conv_transpose2d_forward_u8(y, yq, w, wq, b2, bq, bytearray(71), xq, " + GT + ", 0, sc)"),
    # uint8 backward / gradients
    ("ValueError", "e", "Q.conv2d_backward_u8(bytearray(26), yq, None, yq, w, wq, ex, xq, " + G + ", None, 0, sc)"),
    ("TypeError", "e", "Q.conv2d_backward_u8(bytes(27), yq, y, yq, w, wq, ex, xq, " + G + ", None, 0, sc)"),
    ("ValueError", "ex", "Q.conv2d_backward_u8(y, yq, None, yq, w, wq, bytearray(7), xq, " + G + ", None, 0, sc)"),
    ("ValueError", "exq", "Q.conv2d_backward_u8(y, yq, None, yq, w, wq, ex, qp(-1.0, 3), " + G + ", None, 0, sc)"),
    ("ValueError", "sel", "Q.conv2d_backward_u8(y, yq, None, yq, w, wq, ex, xq, " + G + ", arr('i', 3, -1), 1, sc)"),
    ("TypeError", "scratch", "Q.conv_transpose2d_backward_u8(x, xq, None, xq, w, wq, y, yq, " + GT + ", None, 0)"),
    ("TypeError", "scratch", "Q.conv2d_backward_u8(y, yq, None, yq, w, wq, ex, xq, " + G + ", None, 0, None)"),
    ("ValueError", "scratch", "Q.conv2d_backward_u8(y, yq, None, yq, w, wq, ex, xq, " + G + ", None, 0, bytearray(3))"),
    ("ValueError", "gw", "QF.conv2d_grad_u8(y, yq, x, xq, arr('i', 53), None, " + G + ", None, 0, sc)"),
    ("TypeError", "gw", "QF.conv2d_grad_u8(y, yq, x, xq, arr('f', 54), None, " + G + ", None, 0, sc)"),
    ("ValueError", "gb", "QF.conv2d_grad_u8(y, yq, x, xq, gw, arr('i', 4), " + G + ", None, 0, sc)"),
    ("ValueError", "scratch", "QF.conv2d_grad_u8(y, yq, x, xq, gw, None, " + G + ", None, 0, bytearray(8))"),
    ("ValueError", "k", "QF.conv2d_grad_u8(y, yq, x, xq, gw, None, " + G + ", arr('i', 3), 5, sc)"),
    ("ValueError", "e", "Q.conv_scores_u8(bytearray(7), yq, arr('I', 3))"),
    # mixed mode
    ("TypeError", "e", "QF.conv2d_backward_mixed(y, None, yq, w, wq, exf, " + G + ")"),
    ("ValueError", "ex", "QF.conv2d_backward_mixed(yf, None, yq, w, wq, arr('f', 71), " + G + ")"),
    ("TypeError", "w", "QF.conv2d_backward_mixed(yf, None, yq, wf, wq, exf, " + G + ")"),
    ("ValueError", "yq", "QF.conv2d_backward_mixed(yf, y, qp(0.1, 300), w, wq, exf, " + G + ")"),
    ("ValueError", "gw", "QF.conv2d_grad_mixed(yf, x, xq, arr('f', 55), gbf, " + G + ")"),
    ("TypeError", "x", "QF.conv_transpose2d_grad_mixed(exf, yf, yq, gwf, None, " + GT + ")"),
    ("ValueError", "sel", "QF.conv_transpose2d_backward_mixed(exf, None, xq, w, wq, yf, " + GT + ", arr('i', 2, 7), 1)"),
    ("TypeError", "e", "QF.conv2d_update_mixed(y, x, xq, w, wq, b, bq, " + G + ", None, 0, array('f', [0.01, 0.85, 0.05]), 4, arr('f', 11), array('I', [5]), sc)"),
    ("ValueError", "flags", "QF.conv2d_update_mixed(yf, x, xq, w, wq, b, bq, " + G + ", None, 0, array('f', [0.01, 0.85, 0.05]), 1, arr('f', 11), array('I', [5]), sc)"),
    ("ValueError", "src", "QF.conv_swap_axes(w, bytearray(54), 2, 3, 10)"),
    ("TypeError", "dst", "QF.conv_swap_axes(w, arr('f', 54), 2, 3, 9)"),
    ("ValueError", "dst", "QF.conv_swap_axes(w, w, 2, 3, 9)"),
    # DSGU selection
    ("ValueError", "hp[0] (lmin)", "Q.conv_select_u8(y, yq, array('f', [0.0, 1.0]), arr('f', 1), arr('i', 3), arr('I', 6))"),
    ("ValueError", "scratch", "Q.conv_select_u8(y, yq, array('f', [0.1, 1.0]), arr('f', 1), arr('i', 3), arr('I', 5))"),
    ("ValueError", "e", "Q.conv_select_u8(y, yq, array('f', [0.1, 1.0]), arr('f', 1), arr('i', 4), arr('I', 8))"),
    # update options
    ("ValueError", "flags", "Q.conv2d_update_u8(y, yq, x, xq, w, wq, b, bq, " + G + ", None, 0, array('f', [0.01, 0.85, 0.05]), 2, arr('f', 11), array('I', [5]), sc)"),
    ("ValueError", "rng", "Q.conv2d_update_u8(y, yq, x, xq, w, wq, b, bq, " + G + ", None, 0, array('f', [0.01, 0.85, 0.05]), 6, arr('f', 11), array('I', [0]), sc)"),
    ("ValueError", "hp[0] (lr)", "Q.conv2d_update_u8(y, yq, x, xq, w, wq, b, bq, " + G + ", None, 0, array('f', [0.0, 0.85, 0.05]), 4, arr('f', 11), array('I', [5]), sc)"),
    ("ValueError", "state", "Q.conv2d_update_u8(y, yq, x, xq, w, wq, b, bq, " + G + ", None, 0, array('f', [0.01, 0.85, 0.05]), 4, arr('f', 10), array('I', [5]), sc)"),
    ("TypeError", "scores", "Q.conv_scores_u8(y, yq, arr('i', 3))"),
]

# conv_scores_u8 with the ReLU mask fused in (y, yq): a script of their own
# (appended to CASES, its source no longer fits qemu-m4's heap next to both modules).
SCORE_CASES = [
    ("TypeError", "e", "Q.conv_scores_u8(bytes(27), yq, arr('I', 3), y, yq)"),
    ("ValueError", "e", "Q.conv_scores_u8(bytearray(26), yq, arr('I', 3), y, yq)"),
    ("ValueError", "y", "Q.conv_scores_u8(bytearray(27), yq, arr('I', 3), bytearray(26), yq)"),
    ("TypeError", "y", "Q.conv_scores_u8(bytearray(27), yq, arr('I', 3), arr('f', 27), yq)"),
    ("ValueError", "yq", "Q.conv_scores_u8(bytearray(27), yq, arr('I', 3), y, qp(0.05, 300))"),
    ("ValueError", "eq", "Q.conv_scores_u8(bytearray(27), qp(0.05, -1), arr('I', 3), y, yq)"),
    ("TypeError", "yq", "Q.conv_scores_u8(bytearray(27), yq, arr('I', 3), y)"),
    ("TypeError", "yq", "Q.conv_scores_u8(bytearray(27), yq, arr('I', 3), y, arr('I', 8))"),
    ("ValueError", "e", "Q.conv_scores_u8(y, yq, arr('I', 3), y, yq)"),
    ("ValueError", "e", "Q.conv_scores_u8(memoryview(ex)[0:27], yq, arr('I', 3), memoryview(ex)[1:28], yq)"),
]

PRELUDE = r"""
from array import array
import _qtrain as Q
import _qtrain_float as QF
import gc
def arr(tc, n, v=0):
    # from bytes, not a list of n objects (qemu-m0's heap holds both modules)
    a = array(tc, bytes(n * (1 if tc in 'bB' else 2 if tc in 'hH' else 4)))
    if v:
        for i in range(n):
            a[i] = v
    return a
def qp(s, z, alpha=0.0):
    return array('f', [s, z, -1.0, 1.0, alpha, 0, 0, 0])
x = bytearray(72); w = bytearray(54); y = bytearray(27); ex = bytearray(72)
xu = x
xf = arr('f', 72); wf = arr('f', 54); bf = arr('f', 3); bf2 = arr('f', 2); yf = arr('f', 27)
exf = arr('f', 72); gwf = arr('f', 54); gbf = arr('f', 3)
xq = qp(0.1, 3); wq = qp(0.01, 128); yq = qp(0.05, 10); bq = qp(0.001, 0)
b = arr('i', 3); b2 = arr('i', 2); gw = arr('i', 54)
sc = bytearray(max(Q.conv2d_scratch_len(""" + G + r"""), Q.conv_transpose2d_scratch_len(""" + GT + r""")))
def check(i, src):
    gc.collect()    # the eval'd sources fragment qemu-m0's nearly full heap
    try:
        eval(src)
        print('C', i, 'NoError', '')
    except (ValueError, TypeError) as e:
        print('C', i, type(e).__name__, str(e).replace('\n', ' '))
"""

VALID = """
Q.conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, %s, 1, sc)
Q.conv2d_backward_u8(bytearray(y), yq, y, yq, w, wq, ex, xq, %s, arr('i', 3, 1), 1, sc)
QF.conv2d_grad_u8(y, yq, x, xq, gw, b, %s, None, 0, sc)
Q.conv_transpose2d_forward_u8(y, yq, w, wq, b2, bq, ex, xq, %s, 1, sc)
Q.conv_transpose2d_backward_u8(bytearray(ex), xq, ex, xq, w, wq, y, yq, %s, None, 0, sc)
QF.conv2d_forward_f32(xf, wf, bf, yf, %s, 1)
QF.conv2d_backward_f32(arr('f', 27), yf, xf, wf, exf, gwf, gbf, %s)
QF.conv2d_backward_mixed(arr('f', 27), y, yq, w, wq, exf, %s, arr('i', 3), 2)
QF.conv_transpose2d_grad_mixed(exf, y, yq, gwf, bf2, %s)
Q.conv2d_update_u8(bytearray(27), yq, x, xq, w, wq, b, bq, %s, None, 0, array('f', [0.01, 0.85, 0.05]), 7, arr('f', 11), array('I', [5]), sc)
print('valid calls ok')
""" % (G, G, G, GT, GT, G, G, G, GT, G)


def _script(cases):
    lines = [PRELUDE]
    for i, (_, _, src) in enumerate(cases):
        lines.append("check(%d, %r)" % (i, src))
    return "\n".join(lines) + VALID


def _results(out):
    res = {}
    for line in out.splitlines():
        if line.startswith("C "):
            _, i, typ, msg = (line.split(" ", 3) + [""])[:4]
            res[int(i)] = (typ, msg)
    return res


@pytest.mark.parametrize("cases", ["CASES", "SCORE_CASES"])
def test_bad_input_conv(run, cases):
    cases = globals()[cases]
    out = run(_script(cases))
    assert "valid calls ok" in out, out[-3000:]
    res = _results(out)
    bad = []
    for i, (typ, name, src) in enumerate(cases):
        got = res.get(i)
        if got is None or got[0] != typ or not got[1].startswith(name + ":"):
            bad.append("%s -> expected %s '%s: ...', got %r" % (src, typ, name, got))
    assert not bad, "\n".join(bad)


def test_conv_messages_name_expected_and_actual(run):
    out = run(_script(CASES))
    res = _results(out)
    msgs = {src: res[i][1] for i, (_, _, src) in enumerate(CASES)}
    assert msgs[CASES[4][2]] == "geom[6] (stride_h): stride must be >= 1, got 0"
    assert msgs[CASES[12][2]] == "geom: kernel 5x5 larger than the padded input 2x2"
    assert msgs[CASES[19][2]] == "w: expected 54 items, got 53"
