"""Thousands of random calls (hypothesis-generated) at the Conv2d and
ConvTranspose2d entry points on the Unix port: every call either works or
raises ValueError/TypeError; the interpreter never crashes (a crash or a
memory error in a kernel would end the script early)."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qtrain_host import runner

FUNCS = {
    "conv2d_out_shape": 1, "conv_transpose2d_out_shape": 1,
    "conv2d_scratch_len": 1, "conv_transpose2d_scratch_len": 1,
    "conv2d_forward_f32": 6, "conv_transpose2d_forward_f32": 6,
    "conv2d_backward_f32": 10, "conv_transpose2d_backward_f32": 10,
    "conv2d_forward_u8": 11, "conv_transpose2d_forward_u8": 11,
    "conv2d_backward_u8": 12, "conv_transpose2d_backward_u8": 12,
    "conv2d_grad_u8": 10, "conv_transpose2d_grad_u8": 10,
    "conv2d_update_u8": 16, "conv_transpose2d_update_u8": 16,
    "conv_select_u8": 6, "conv_scores_u8": 5,
    "conv2d_backward_mixed": 9, "conv_transpose2d_backward_mixed": 9,
    "conv2d_grad_mixed": 8, "conv_transpose2d_grad_mixed": 8,
    "conv2d_update_mixed": 15, "conv_transpose2d_update_mixed": 15, "conv_swap_axes": 5,
}
NAMES = sorted(FUNCS)


# The uint8 batch > 1 entry points are in _qtrain_float (natmod/bind_batch.c).
BATCH_U8 = ("dense_grad_acc_u8", "update_rows_u8", "conv2d_grad_u8", "conv_transpose2d_grad_u8")


def _module(name):
    """Which native module holds `name`: the float32/mixed calls, the uint8
    batch ones and conv_swap_axes are in _qtrain_float (QF), the rest in
    _qtrain (Q)."""
    return "QF" if name.endswith(("_f32", "_mixed")) or name in BATCH_U8 + ("conv_swap_axes",) else "Q"

# Geometries: mostly small valid ones (so the kernels run), some broken.
GEOMS = [
    "(1, 5, 5, 2, 3, 3, 1, 1, 1, 1)", "(2, 6, 6, 3, 3, 3, 2, 2, 1, 1)", "(2, 4, 5, 1, 2, 3, 1, 2, 0, 1)",
    "(2, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1)", "(1, 2, 2, 2, 3, 3, 3, 3, 0, 0, 2, 2)",
    "(3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1)", "(2, 6, 6, 3, 3, 3, 0, 2, 1, 1)", "(2, 6, 6)",
    "(2, 2, 2, 3, 5, 5, 1, 1, 0, 0)", "(2, 6, 6, 3, 3, 3, 2, 2, 1, 1, 2, 0)", "(-1, 6, 6, 3, 3, 3, 2, 2, 1, 1)",
    "(30000, 30000, 2, 2, 1, 1, 1, 1, 0, 0)", "(1, 1, 1, 1, 1, 1, 1, 1, 200, 200, 0, 0)", "[2, 6, 6, 3, 3, 3, 2, 2, 1, 1]",
]
# Buffer lengths: the sizes of the valid geometries' tensors and their neighbours.
LENS = ["0", "1", "2", "3", "4", "6", "8", "9", "12", "18", "25", "27", "36", "48", "50", "54", "72",
        "73", "200", "400", "1000", "4000"]
FLOATS = ["0.0", "1.0", "-1.0", "0.5", "255.0", "2.5", "1e-30", "1e30", "float('inf')",
          "float('nan')", "0.001", "0.85", "3.0"]

QPS = ["qp(%s, %s, %s)" % (f, z, a) for f in FLOATS[:6] for z in ["0", "3", "128", "256", "-1", "2.5"]
       for a in ["0", "0.1", "1.5"]]
OTHER = ["None", "0", "1", "2", "3", "4", "7", "-1", "100000", "'x'", "1.5", "True",
         "sel(3)", "sel(1)", "array('i', [0, 5])", "array('i', [-1])",
         "memoryview(buf('B', 400))[1:]", "bytes(27)", "array('f', [0.01, 0.85, 0.05])",
         "array('f', [0.5, 1.0])", "array('f', [float('nan'), 1.0])", "array('I', [7])", "array('I', [0])"]


def _arg(rnd):
    kind = rnd.randrange(5)
    if kind == 0:
        return "buf(%r, %s)" % (rnd.choice("BifIh"), rnd.choice(LENS))
    if kind == 1:
        return rnd.choice(QPS)
    if kind == 2:
        return rnd.choice(GEOMS)
    if kind == 3:
        return "array('f', [%s])" % ", ".join(rnd.choice(FLOATS) for _ in range(rnd.randint(1, 9)))
    return rnd.choice(OTHER)


def _calls(seed, n):
    import random
    rnd = random.Random(seed)
    return [(name, [_arg(rnd) for _ in range(FUNCS[name])])
            for name in (rnd.choice(NAMES) for _ in range(n))]


PRELUDE = r"""
from array import array
import _qtrain as Q
import _qtrain_float as QF
def buf(tc, n):
    if tc == 'B': return bytearray(n)
    return array(tc, [1] * n)
def qp(s, z, a):
    return array('f', [s, z, -1.0, 1.0, a, 0, 0, 0])
def sel(k):
    return array('i', range(k))
ok = bad = 0
def t(src):
    global ok, bad
    try:
        eval(src, {'Q': Q, 'QF': QF, 'buf': buf, 'qp': qp, 'sel': sel, 'array': array})
        ok += 1
    except (ValueError, TypeError):
        bad += 1
"""


def _script(calls):
    lines = [PRELUDE]
    for name, args in calls:
        lines.append("t(%r)" % ("%s.%s(%s)" % (_module(name), name, ", ".join(args[:FUNCS[name]]))))
    lines.append("print('done', ok, bad)")
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(not runner.available("unix"), reason="Unix port not built")
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_random_conv_calls_never_crash(seed):
    """8 hypothesis seeds x 1500 calls, each argument drawn from buffers of
    every typecode and near-miss lengths, qparams, geometries, scalars."""
    res = runner.run_script("unix", _script(_calls(seed, 1500)), timeout=120)
    assert res.returncode == 0 and "done" in res.output, res.output[-3000:]


@pytest.mark.skipif(not runner.available("unix"), reason="Unix port not built")
def test_structured_conv_calls_never_crash():
    """Argument lists built from the right sizes with one or two wrong: these
    reach the kernels far more often than fully random ones."""
    import random
    rnd = random.Random(5)
    G, GT = "(2, 6, 6, 3, 3, 3, 2, 2, 1, 1)", "(3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1)"
    good = {
        "conv2d_forward_u8": ["buf('B', 72)", "qp(0.1, 3, 0)", "buf('B', 54)", "qp(0.01, 128, 0)", "buf('i', 3)",
                              "qp(0.001, 0, 0)", "buf('B', 27)", "qp(0.05, 10, 0.1)", G, "1", "buf('B', 4000)"],
        "conv_transpose2d_backward_u8": ["buf('B', 72)", "qp(0.1, 3, 0)", "buf('B', 72)", "qp(0.1, 3, 0)",
                                         "buf('B', 54)", "qp(0.01, 128, 0)", "buf('B', 27)", "qp(0.05, 10, 0.1)",
                                         GT, "sel(2)", "2", "buf('B', 4000)"],
        "conv2d_update_u8": ["buf('B', 27)", "qp(0.1, 3, 0)", "buf('B', 72)", "qp(0.1, 3, 0)", "buf('B', 54)",
                             "qp(0.01, 128, 0.001)", "buf('i', 3)", "qp(0.001, 0, 0)", G, "sel(3)", "3",
                             "array('f', [0.01, 0.85, 0.05])", "6", "buf('f', 11)", "array('I', [7])",
                             "buf('B', 4000)"],
        "conv_transpose2d_grad_u8": ["buf('B', 72)", "qp(0.1, 3, 0)", "buf('B', 27)", "qp(0.1, 3, 0)",
                                     "buf('i', 54)", "buf('i', 2)", GT, "None", "0", "buf('B', 4000)"],
    }
    wrong = ["None", "buf('B', 1)", "buf('f', 72)", "qp(0.0, 3, 0)", "(2, 6, 6)", "-1", "sel(9)",
             "memoryview(buf('B', 400))[1:]", "buf('i', 1)", "bytes(72)", "0", "100000"]
    calls = []
    for _ in range(600):
        name = rnd.choice(sorted(good))
        args = list(good[name])
        for _ in range(rnd.choice([0, 1, 1, 2])):
            args[rnd.randrange(len(args))] = rnd.choice(wrong)
        calls.append((name, args + ["None"] * (16 - len(args))))
    res = runner.run_script("unix", _script(calls), timeout=120)
    assert res.returncode == 0 and "done" in res.output, res.output[-3000:]
    ok = int(res.output.split("done")[1].split()[0])
    assert ok > 50, res.output[-500:]
