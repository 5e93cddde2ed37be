"""Thousands of random calls (hypothesis-generated) at the quantization and
Dense entry points on the Unix port: every call either works or raises
ValueError/TypeError; the interpreter never crashes."""
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qtrain_host import runner

FUNCS = {
    "qp_from_range": 1, "qp_update": 1, "remap_u8": 3,
    "dense_forward_u8": 10, "dense_backward_u8": 9, "relu_backward_u8": 4,
    "dense_select_u8": 8, "dense_update_u8": 14, "dense_grad_acc_u8": 8,
    "update_rows_u8": 11, "dense_forward_f32": 5, "dense_backward_f32": 5,
    "dense_backward_mixed": 6, "relu_backward_f32": 2, "relu_backward_mixed": 3,
    "dense_select_f32": 5, "dense_update_f32": 9, "dense_update_mixed": 13,
    "dense_grad_acc_f32": 6, "update_rows_f32": 7,
}
NAMES = sorted(FUNCS)


# The uint8 batch > 1 entry points are in _qtrain_float (natmod/bind_batch.c).
BATCH_U8 = ("dense_grad_acc_u8", "update_rows_u8", "conv2d_grad_u8", "conv_transpose2d_grad_u8")


def _module(name):
    """Which native module holds `name`: the float32/mixed calls, the uint8
    batch ones and conv_swap_axes are in _qtrain_float (QF), the rest in
    _qtrain (Q)."""
    return "QF" if name.endswith(("_f32", "_mixed")) or name in BATCH_U8 + ("conv_swap_axes",) else "Q"

# An argument is source text evaluated on the target; M, N are the layer's sizes.
LENS = ["0", "1", "3", "M", "N", "M*N", "M*N+1", "M*N-1", "2*M", "5+2*M", "8", "(N+3)&~3", "16"]
FLOATS = ["0.0", "1.0", "-1.0", "0.5", "255.0", "2.5", "1e-30", "1e30", "float('inf')",
          "float('nan')", "-0.0", "0.001", "0.85", "3.0"]

ARGS = (["buf(%r, %s)" % (tc, n) for tc in "BifIhb" for n in LENS]
        + ["array('f', [%s])" % ", ".join([v] * k) for v in FLOATS for k in (1, 2, 3, 8)]
        + ["qp(%s, %s, %s)" % (s, z, a) for s in FLOATS for z in ("0", "3", "128", "255", "256", "-1", "2.5")
           for a in ("0", "0.1", "1.5")]
        + ["None", "0", "1", "2", "3", "7", "8", "15", "-1", "M", "N", "M+1", "100000",
           "'x'", "b'abc'", "1.5", "True", "[1, 2]", "memoryview(buf('B', 9))[1:]",
           "memoryview(buf('i', 9))[1:]", "bytes(M)", "bytes(N)"])

# Valid calls (sizes M, N), mutated in one or two places: the mutants get past
# the first checks and reach the later ones (and the kernels).
U8 = "qp(0.1, 3, 0.1)"
VALID = {
    "dense_forward_u8": ["buf('B', N)", U8, "buf('B', M*N)", U8, "buf('i', M)", "qp(0.01, 0, 0)",
                         "buf('B', M)", U8, "1", "buf('i', (N+3)&~3)"],
    "dense_backward_u8": ["buf('B', M)", U8, "buf('B', M*N)", U8, "buf('B', N)", U8, "None", "0",
                          "buf('i', N)"],
    "relu_backward_u8": ["buf('B', M)", U8, "buf('B', M)", U8],
    "dense_select_u8": ["buf('B', M)", U8, "array('f', [0.5, 1.0])", "array('f', [0.0])",
                        "buf('i', M)", "buf('I', 2*M)", "buf('B', M)", U8],
    "dense_update_u8": ["buf('B', M)", U8, "buf('B', N)", U8, "buf('B', M*N)", U8, "buf('i', M)",
                        "qp(0.01, 0, 0)", "None", "0", "array('f', [0.01, 0.85, 0.02])", "3",
                        "buf('f', 5+2*M)", "buf('I', 1)"],
    "dense_grad_acc_u8": ["buf('B', M)", U8, "buf('B', N)", U8, "buf('i', M*N)", "buf('i', M)",
                          "None", "0"],
    "update_rows_u8": ["buf('i', M*N)", "array('f', [0.01, 0.1])", "buf('B', M*N)", U8, "buf('i', M)",
                       "buf('i', M)", "qp(0.01, 0, 0)", "array('f', [0.01, 0.85, 0.02])", "2",
                       "buf('f', 5+2*M)", "buf('I', 1)"],
    "dense_update_mixed": ["buf('f', M)", "buf('B', N)", U8, "buf('B', M*N)", U8, "buf('i', M)",
                           "qp(0.01, 0, 0)", "None", "0", "array('f', [0.01, 0.85, 0.02])", "4",
                           "buf('f', 5+2*M)", "buf('I', 1)"],
    "dense_update_f32": ["buf('f', M)", "buf('f', N)", "buf('f', M*N)", "buf('f', M)", "None", "0",
                         "array('f', [0.01, 0.85, 0.02])", "8", "buf('f', 5+2*M)"],
}


def _calls(seed, n=100):
    """n calls drawn from a seed: half fully random, half valid calls with one
    or two arguments changed.  (A seed, not 100 hypothesis-drawn calls: those
    overran hypothesis' data buffer and could end in Unsatisfiable.)"""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        m, k = rnd.randint(1, 6), rnd.randint(1, 9)
        if rnd.random() < 0.5:
            out.append((rnd.choice(NAMES), m, k, [rnd.choice(ARGS) for _ in range(14)]))
        else:
            name = rnd.choice(sorted(VALID))
            changes = [(rnd.randint(0, 13), rnd.choice(ARGS)) for _ in range(rnd.randint(1, 2))]
            out.append((name, m, k, _mutate(VALID[name], changes)))
    return out


def _mutate(args, changes):
    a = list(args) + ["None"] * (14 - len(args))
    for i, v in changes:
        a[i % len(args)] = v
    return a


PRELUDE = r"""
from array import array
import _qtrain as Q
import _qtrain_float as QF
def buf(tc, n):
    if n < 0: n = 0
    if tc == 'B': return bytearray(n)
    return array(tc, [1] * n)
def qp(s, z, a):
    return array('f', [s, z, -1.0, 1.0, a, 0, 0, 0])
ok = bad = 0
def t(src, M, N):
    global ok, bad
    try:
        eval(src, {'Q': Q, 'QF': QF, 'buf': buf, 'qp': qp, 'array': array, 'M': M, 'N': N})
        ok += 1
    except (ValueError, TypeError):
        bad += 1
"""


def _script(calls):
    lines = [PRELUDE]
    for name, m, n, args in calls:
        src = "%s.%s(%s)" % (_module(name), name, ", ".join(args[:FUNCS[name]]))
        lines.append("t(%r, %d, %d)" % (src, m, n))
    lines.append("print('done', ok, bad)")
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(not runner.available("unix"), reason="Unix port not built")
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_random_calls_never_crash(seed):
    res = runner.run_script("unix", _script(_calls(seed)), timeout=120)
    assert res.returncode == 0 and "done" in res.output, res.output[-3000:]


@pytest.mark.skipif(not runner.available("unix"), reason="Unix port not built")
def test_valid_templates_are_valid():
    """The unmutated templates run (so mutants reach the deeper checks and kernels)."""
    calls = [(name, m, n, _mutate(args, [])) for name, args in sorted(VALID.items())
             for m, n in [(1, 1), (3, 5), (4, 8)]]
    res = runner.run_script("unix", _script(calls), timeout=60)
    assert "done %d 0" % len(calls) in res.output, res.output
