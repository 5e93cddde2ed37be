"""dense_select_u8's counting-table path (m >= 128, select.c): bit-exact
against the golden select_u8 (after the golden ReLU mask where y is given)
at the cases its passes treat apart: zero points at and next to 0 and 255
(a threshold's value z_e + thr above 255 or z_e - thr below 0, which the
M4's four-row test masks out), errors at 0 and 255, ties cut by k (the
choice's test moves from thr to thr + 1 after the last tie), a threshold
of 0 (fewer than k rows with an error), m not a multiple of 4 (the M4's
scalar tail), with the mask and without (y None)."""
import numpy as np

from qtrain_host.golden import dense as GD
from qtrain_host.golden import quant as GQ
from test_dense_u8 import rand_qp
from test_dense_train_u8 import SELR_SCRIPT, check_select_cases

# As test_dense_train_u8's, with an empty y for no mask (y None).
SCRIPT = SELR_SCRIPT.replace("Q.dense_select_u8(e, eq, hp, st, sel, scr, y, yq)",
                             "Q.dense_select_u8(e, eq, hp, st, sel, scr, *((y, yq) if len(y) else ()))")
assert SCRIPT != SELR_SCRIPT


def _errors(rng, m, ze, kind):
    if kind == "extremes":      # a few rows at 0 / 255, the rest near z_e
        e = np.clip(ze + rng.integers(-2, 3, m), 0, 255)
        e[rng.integers(0, m, 6)] = 255
        e[rng.integers(0, m, 6)] = 0
    elif kind == "ties":        # two scores only: k cuts through the larger one's ties
        d = int(rng.integers(1, 128))
        hi = [v for v in (ze - d, ze + d) if 0 <= v <= 255] or [255]
        e = np.where(rng.random(m) < 0.3, rng.choice(hi, m), ze)
        e[rng.integers(0, m, 4)] = ze + (1 if ze < 255 else -1)
    elif kind == "zero":        # fewer rows with an error than k: threshold 0
        e = np.full(m, ze)
        e[rng.integers(0, m, 5)] = rng.integers(0, 256, 5)
    else:
        e = rng.integers(0, 256, m)
    return e.astype(np.uint8)


def test_dense_select_table_edges(run):
    rng = np.random.default_rng(23)
    cases = []
    kinds = ["extremes", "ties", "zero", "random"]
    for c in range(48):
        m = int(rng.choice([128, 129, 130, 131, 257, 1568, 1571]))
        ze = int(rng.choice([0, 1, 127, 128, 254, 255]))
        e = _errors(rng, m, ze, kinds[c % 4])
        eq = rand_qp(rng, -1, 1)
        eq[GQ.ZERO] = float(ze)
        yq = rand_qp(rng)
        if c % 3 == 0:      # no mask (y None)
            y = np.zeros(0, np.uint8)
        else:               # about half the rows masked
            zy = int(rng.integers(0, 255))
            yq[GQ.ZERO] = float(zy)
            y = np.clip(zy + rng.integers(-3, 4, m), 0, 255).astype(np.uint8)
        lmin = float(rng.choice([0.01, 0.1, 0.5, 0.9]))
        hp = np.array([lmin, lmin], np.float32)    # k = floor(lmin m)
        cases.append((e, eq, y, yq, hp))
    check_select_cases(run, SCRIPT, cases)
