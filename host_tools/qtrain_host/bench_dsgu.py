"""DSGU costs on the emulated boards, per call (QEMU instruction counts,
`-icount shift=0`; not cycles): what does and does not shrink with k.

    python -m qtrain_host.bench_dsgu                       # lmin 0.1, both boards
    python -m qtrain_host.bench_dsgu --lmin 1.0 --boards qemu-m4
    python -m qtrain_host.bench_dsgu --scan                # the weight-range scan
    python -m qtrain_host.bench_dsgu --lmin 0              # DSGU off (full backward)
    python -m qtrain_host.bench_dsgu --convt input         # ConvTranspose2d slices (not armv6m)
    python -m qtrain_host.bench_dsgu --mask-aware 0        # error propagation not mask-aware
    python -m qtrain_host.bench_dsgu --share               # against lmin 1.0: each layer's k/N share

Per layer of the paper's ConvVAE (qtrain_host.bench.VAE_LAYERS), uint8, DSGU
lmax = lmin (a fixed fraction of the filters/rows), each backward call alone:
relu (the ReLU mask on the error), scores (conv: sum |e - z_e| per filter;
with DSGU a ReLU layer's mask is in this pass, conv_scores_u8's y; Dense: in
select's, dense_select_u8's y),
select (k and the top-k; --convt input: the slice scores too), error (error propagation of the selected
structures), update (weight gradient + update + the weight-range step);
forward (one forward call, not in the total).
Each figure includes one Python call into _qtrain (~1-4 k instructions).
--share: also the same at lmin 1.0, and per layer what the backward would
cost if its error and update scaled exactly with k/N (lmin 1.0's error +
update times k/N, plus the relu, scores and select passes as measured at
lmin): the ratio DSGU reaches when the small-k passes cost exactly their
share of the full ones, next to the measured ratio.  N counts the
structures that carry an error at lmin 1.0 (a Dense row whose error the
ReLU masks costs ~10 instructions there, and DSGU's k selects rows with
one), so N is below the layer's size where the mask empties whole rows.
--scan: cost of the weight-range step's scan of the stored weights
(update.c, stored_range_u8) on 4 x 1568 weights whose stored values span
0..255 (the scan stops at once) or only 3..252 / 60..200 (a full pass).
The input of the layers after a ReLU layer (Conv 16->32, Dense 1568->20,
ConvT 32->16, ConvT 16->1) has the trained state's fraction of zeros
(MASKED_INPUT, bench_trained's zero fractions); with --mask-aware 1 (the
default, Options.mask_aware) their error propagation is mask-aware and the
ReLU layers before them have no mask pass of their own (relu; with DSGU the
scores' pass keeps its y, as layers.py).
"""
import argparse
import sys

from . import bench
from .qemu import boards_arg
from .runner import run_script

SCRIPT = r"""
import gc, icount, array
import _qtrain as _q
from qtrain import layers as L
DSGU = %(dsgu)r
XZERO, MASKED = %(xzero)r, %(masked)r   # input zero fraction (mask-aware: x as mask); the next layer's mask
opt = L.Options(mode="uint8", lr=0.001, seed=5, dsgu=DSGU)
name, kind, a = %(spec)r
def rnd(n, seed):
    b = bytearray(n)
    L.fill_uniform_u8(b, seed)
    return b
T = {}
def cnt(key, f):
    gc.collect()
    icount.start()
    f()
    T[key] = T.get(key, 0) + icount.read()
if kind == "dense":
    n_in, n_out, relu, first = a
    lay = L.Dense(n_in, n_out, relu=relu, opt=opt, first=first)
    n_o = n_out
else:
    shp, oc, k, s, p, op, relu, tr, first = a
    lay = L.Conv2d(shp, oc, k, s, p, op, relu=relu, transposed=tr, opt=opt, first=first)
    if %(convt)r != "output":
        from qtrain import convt_slices
        convt_slices.use([lay], %(convt)r)
    L.Shared.for_layers([lay])
    n_in = shp[0] * shp[1] * shp[2]
    n_o = lay.n_out
x, xq = rnd(n_in, 11), L.qparams(0.0, 1.0)
if XZERO:   # a ReLU output's zeros (xq's zero point is 0)
    zr = rnd(n_in, 13)
    for i in range(n_in):
        if zr[i] < XZERO * 256:
            x[i] = 0
if MASKED:
    lay.rmask = False
xm = x if XZERO is not None and opt.mask_aware and %(mask_aware)r else None
SEL = DSGU and len(lay.sel) > 0   # as layers.py: a layer of one structure has no choice (k = 1)
e8, eq = rnd(n_o, 12), L.qparams(-0.05, 0.05)
e = bytearray(e8)
lay.forward(x, xq)
if MASKED:   # the error arrives masked by the next layer's mask-aware propagation
    _q.relu_backward_u8(e8, eq, lay.y, lay.yq)
for rep in range(2):
    cnt("forward", lambda: lay.forward(x, xq))
    e[:] = e8
    sel = k = None
    if kind == "dense":
        if lay.rmask and not SEL:
            cnt("relu", lambda: _q.relu_backward_u8(e, eq, lay.y, lay.yq))
        if SEL:
            def s():
                global k
                k = _q.dense_select_u8(e, eq, lay.dsgu_hp, lay.dsgu_state, lay.sel, lay.scores,
                                       lay.y if lay.relu else None, lay.yq)
            cnt("select", s)
            sel = lay.sel
        if not lay.first:
            cnt("error", lambda: _q.dense_backward_u8(e, eq, lay.w, lay.wq, lay.ep, lay.epq, sel, k, lay.acc,
                                                      xm, xq))
        cnt("update", lambda: _q.dense_update_u8(e, eq, lay.x, lay.xq, lay.w, lay.wq, lay.b, lay.bq, sel, k,
                               lay.hp, lay.flags, lay.state, lay.rng))
    else:
        g = lay.geom
        fused = SEL and not getattr(lay, "slices", False)   # the mask in the scores' pass
        if lay.rmask and not fused:
            cnt("relu", lambda: lay._bwd(e, eq, lay.y, lay.yq, lay.w, lay.wq, None, None, g))
        if SEL and getattr(lay, "slices", False):
            def s():
                global k
                k = lay._select(e, eq)
            cnt("select", s)
            sel = lay.sel
        elif SEL:
            cnt("scores", lambda: _q.conv_scores_u8(e, eq, lay.scores, lay.y if lay.relu else None, lay.yq))
            def s():
                global k
                k = _q.select_scores(lay.scores, lay.n_out, eq, lay.dsgu_hp, lay.dsgu_state, lay.sel, lay.sel_scratch)
            cnt("select", s)
            sel = lay.sel
        if not lay.first:
            cnt("error", lambda: lay._bwd(e, eq, None, None, lay.w, lay.wq, lay.ep, lay.epq, g, sel, k, lay._scr,
                                          False, xm, xq))
        cnt("update", lambda: lay._upd(e, eq, lay.x, lay.xq, lay.w, lay.wq, lay.b, lay.bq, g, sel, k,
                      lay.hp, lay.flags, lay.state, lay.rng, lay._scr))
    print("@bench k", k if k is not None else (lay.n_out if kind == "dense" else lay.geom[3]))   # (no selection: all)
# Structures that carry an error (after the ReLU mask): the ones DSGU can
# select with a nonzero score; a row or filter without one costs little
# even at lmin 1.0 (--share divides by these, not by all of them).
ze = int(eq[1])
if kind == "dense":
    carry = sum(1 for v in e if v != ze)
else:
    nch = lay.geom[3]   # out_ch
    hw = len(e) // nch
    carry = sum(1 for c in range(nch) if any(v != ze for v in e[c * hw:(c + 1) * hw]))
print("@bench carry", carry)
for key in T:
    print("@bench %%s %%d" %% (key, T[key] // 2))
"""

SCAN_S = r"""
import icount, gc
import _qtrain_float as QF   # update_rows_u8
from array import array
from qtrain import layers as L
rows, n = 4, 1568
def one(lo, hi):
    w = bytearray(rows * n)
    L.fill_uniform_u8(w, 3)
    for i in range(len(w)):
        w[i] = lo + w[i] * (hi - lo) // 255
    g = array('i', [0] * (rows * n))
    for j in range(n):
        g[j] = (j % 7) - 3
    wq = L.qparams(-1.0, 1.0, 0.001)
    st = array('f', [0.0] * (5 + 2 * rows)); rng = array('I', [1])
    hp = array('f', [0.001, 1.0, 0.02]); gs = array('f', [1e-4, 1.0])
    gc.collect()
    icount.start()
    QF.update_rows_u8(g, gs, w, wq, None, None, None, hp, 2, st, rng)
    return icount.read()
a = one(0, 255); b = one(3, 252); c = one(60, 200)
print("@bench full", a); print("@bench band3", b); print("@bench band60", c)
"""


# The trained state's zero fraction of each layer's input where it comes from
# a ReLU layer (bench_trained's zero fractions, docs/BENCHMARKS.md).
MASKED_INPUT = {"Conv 16->32 s2": 0.72, "Dense 1568->20": 0.60, "ConvT 32->16 s2": 0.49, "ConvT 16->1 s2": 0.54}


def breakdown(board, lmin, which=None, convt="output", mask_aware=True):
    """[(layer name, k, {part: instructions})] of one backward per layer
    (convt: ConvTranspose2d's DSGU structures, qtrain.convt_slices;
    mask_aware: Options.mask_aware, see the module docstring)."""
    dsgu = None if lmin is None or lmin <= 0 else (lmin, lmin)
    rows = []
    names = [s[0] for s in bench.VAE_LAYERS]
    for i, spec in enumerate(bench.VAE_LAYERS):
        if which is not None and i not in which:
            continue
        nxt = names[i + 1] if i + 1 < len(names) else None
        res = run_script(board, SCRIPT % dict(dsgu=dsgu, spec=list(spec), convt=convt, mask_aware=bool(mask_aware),
                                              xzero=MASKED_INPUT.get(spec[0]),
                                              masked=bool(mask_aware) and nxt in MASKED_INPUT), timeout=1800)
        if res.returncode != 0:
            raise RuntimeError("bench_dsgu failed on %s:\n%s" % (board, res.output[-2000:]))
        d = bench._bench_lines(res.output)
        rows.append((spec[0], d.get("k"), {k: int(v) for k, v in d.items() if k != "k"}))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.bench_dsgu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=boards_arg, default=" ".join(bench.BOARDS), help="emulated boards, separated by spaces or commas (default: %(default)s)")
    ap.add_argument("--lmin", type=float, default=0.1,
                    help="DSGU fraction (lmax = lmin; 0: DSGU off; default %(default)s)")
    ap.add_argument("--scan", action="store_true", help="only the weight-range scan's cost")
    ap.add_argument("--convt", default="output", choices=("output", "input"),
                    help="ConvTranspose2d's DSGU structures (qtrain.convt_slices; 'input' is not built for armv6m)")
    ap.add_argument("--mask-aware", type=int, default=1, choices=(0, 1),
                    help="mask-aware error propagation (Options.mask_aware; default %(default)s)")
    ap.add_argument("--share", action="store_true",
                    help="also run lmin 1.0 and print each layer's k/N share of it (see above)")
    a = ap.parse_args(argv)
    for b in a.boards:
        if a.scan:
            res = run_script(b, SCAN_S, timeout=600)
            d = bench._bench_lines(res.output)
            full = int(d["full"])
            print("%s: update_rows_u8 4 x 1568, stored 0..255 %d, 3..252 %d (+%.2f per weight), 60..200 %d (+%.2f)"
                  % (b, full, int(d["band3"]), (int(d["band3"]) - full) / 6272.0, int(d["band60"]),
                     (int(d["band60"]) - full) / 6272.0))
            continue
        parts = ("relu", "scores", "select", "error", "update")
        print("| %s lmin %s%s%s | k | %s | total | forward |" % (
            b, a.lmin, "" if a.convt == "output" else " convt " + a.convt, "" if a.mask_aware else " no mask",
            " | ".join(parts)))
        print("|---|---:|%s---:|---:|" % ("---:|" * len(parts)))
        tot = 0
        rows = breakdown(b, a.lmin, convt=a.convt, mask_aware=a.mask_aware)
        for name, k, p in rows:
            t = backward_total(p)
            tot += t
            print("| %s | %s | %s | %d | %s |" % (name, k, " | ".join(str(p.get(x, "-")) for x in parts), t,
                                                 p.get("forward", "-")))
        print("| all | | | | | | | %d | |" % tot)
        if a.share:
            print_share(b, rows, breakdown(b, 1.0, convt=a.convt, mask_aware=a.mask_aware))
    return 0


def backward_total(parts):
    """A layer's backward from breakdown()'s parts: every timed pass but the
    forward ("carry" is a count of structures, not a cost)."""
    return sum(v for x, v in parts.items() if x not in ("forward", "carry"))


def share_rows(rows, full):
    """[(name, k, N, measured, share)] and the totals (measured, share, full)
    of breakdown() at some lmin (rows) against lmin 1.0 (full): share = the
    full error + update times k/N (N: the structures that carry an error at
    lmin 1.0, "carry"; k/N at most 1) plus the relu, scores and select passes as
    measured at lmin (what the backward costs when the small-k passes cost
    exactly their fraction of the full ones)."""
    out, tm, ts, tf = [], 0, 0, 0
    for (name, k, p), (_, n, pf) in zip(rows, full):
        k, n = float(k), float(pf.get("carry", n))
        m = backward_total(p)
        s = (pf.get("error", 0) + pf.get("update", 0)) * min(k / max(n, 1.0), 1.0) + sum(
            p.get(x, 0) for x in ("relu", "scores", "select"))
        out.append((name, k, n, m, s))
        tm, ts = tm + m, ts + s
        tf += backward_total(pf)
    return out, (tm, ts, tf)


def print_share(board, rows, full):
    out, (tm, ts, tf) = share_rows(rows, full)
    print()
    print("| %s | k / N (N: carrying an error at lmin 1.0) | measured | k/N share | measured - share |" % board)
    print("|---|---:|---:|---:|---:|")
    for name, k, n, m, s in out:
        print("| %s | %d / %d | %d | %d | %d |" % (name, k, n, m, s, m - s))
    print("| all | | %d | %d | %d |" % (tm, ts, tm - ts))
    print("%s: lmin 1.0 %d; measured %.2fx cheaper, at the k/N share %.2fx" % (board, tf, tf / tm, tf / ts))


if __name__ == "__main__":
    sys.exit(main())
