"""Dense backward / ReLU backward / DSGU selection / update (batch 1 and
batch B with a gradient buffer) in uint8: bit-exact against the golden model
on every target, several steps per case so the smoothed statistics, the PRNG
state and the weight range tracking are covered too."""
import numpy as np

from qtrain_host.golden import dense as GD
from qtrain_host.golden import quant as GQ
from test_dense_u8 import DEVICE_LIB, pack, parse, f32, rand_qp


def _case(rng):
    m = int(rng.integers(1, 24))
    n = int(rng.choice([1, 2, 3, 5, 8, 13, 32, 57, 100]))
    return dict(
        m=m, n=n,
        e=rng.integers(0, 256, m, dtype=np.uint8),
        eq=rand_qp(rng, -1, 1),
        x=rng.integers(0, 256, n, dtype=np.uint8),
        xq=rand_qp(rng),
        w=rng.integers(0, 256, (m, n), dtype=np.uint8),
        wq=rand_qp(rng, -1, 1, alpha=float(rng.choice([0.0, 0.001, 0.3]))),
        epq=rand_qp(rng, -2, 2, alpha=0.1),
        y=rng.integers(0, 256, m, dtype=np.uint8),
        yq=rand_qp(rng),
    )


BWD_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    e, eq, w, wq, epq, y, yq, sel, fl = rdn(f, 9)
    n = fl[0]; k = fl[1]
    ep = bytearray(n); acc = array('i', [0] * n)
    cnt = Q.relu_backward_u8(e, eq, y, yq)
    Q.dense_backward_u8(e, eq, w, wq, ep, epq, sel, k, acc)
    out('B', i, e, ep, epq, '%02x' % cnt)
print('done')
"""


def _check_backward_cases(run, cases):
    """BWD_SCRIPT on `cases` (_case dicts with k and sel set): the ReLU
    backward, its count and the error propagation against the golden model."""
    data = b"".join(pack(c["e"], c["eq"], c["w"].ravel(), c["wq"], c["epq"], c["y"], c["yq"],
                         c["sel"], np.array([c["n"], c["k"]], np.int32)) for c in cases)
    out = run(BWD_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    res = parse(out, "B")
    assert len(res) == len(cases)
    for i, c in enumerate(cases):
        e, cnt = GD.relu_backward_u8(c["e"], c["eq"], c["y"], c["yq"])
        ep, epq = GD.backward_u8(e, c["eq"], c["w"], c["wq"], c["epq"], c["sel"], c["k"])
        ge, gep, gepq, gcnt = res[i]
        assert ge == e.tobytes(), "case %d relu" % i
        assert gcnt[0] == cnt, "case %d relu count" % i
        assert gep == ep.tobytes(), "case %d ep" % i
        assert gepq == epq.tobytes(), "case %d epq %s %s" % (i, f32(gepq), epq)


def test_dense_backward_u8_bit_exact(run):
    rng = np.random.default_rng(99)
    cases = []
    for _ in range(50):
        c = _case(rng)
        if rng.random() < 0.5:
            c["k"] = int(rng.integers(1, c["m"] + 1))
            c["sel"] = np.sort(rng.choice(c["m"], c["m"], replace=False)).astype(np.int32)
            c["sel"][:c["k"]] = np.sort(rng.choice(c["m"], c["k"], replace=False))
        else:
            c["k"], c["sel"] = c["m"], None
        cases.append(c)
    _check_backward_cases(run, cases)



def test_dense_backward_u8_two_rows_bit_exact(run):
    """Without a mask, at most two rows carrying an error: the M4 finds
    them (dense.c, dense_backward_u8) and, its loop for two rows being
    mask-aware only (dense_two), goes on with the general path: that
    fallback, on every target.  DSGU's k = 1-3 rows (0 to 2 with an error
    after the ReLU backward) or all of m = 1 or 2, n up to the VAE's 1568."""
    rng = np.random.default_rng(98)
    cases = []
    for i in range(24):
        c = _case(rng)
        if i % 3 == 0:
            c["n"] = int(rng.choice([1568, 777]))
            c["x"] = rng.integers(0, 256, c["n"], dtype=np.uint8)
            c["w"] = rng.integers(0, 256, (c["m"], c["n"]), dtype=np.uint8)
        ze = int(c["eq"][GQ.ZERO])
        if i % 4 == 1:
            c["m"] = 1 + i % 2
            for key in ("e", "y"):
                c[key] = c[key][:c["m"]]
            c["w"] = c["w"][:c["m"]]
            c["k"], c["sel"] = c["m"], None
        else:
            c["k"] = int(min(c["m"], 1 + i % 3))
            c["sel"] = rng.permutation(c["m"]).astype(np.int32)
            c["e"][c["sel"][c["k"]:]] = ze       # only the selected rows may carry one
            if i % 3 == 2:
                c["e"][c["sel"][:c["k"]][-1]] = ze
        cases.append(c)
    _check_backward_cases(run, cases)

SEL_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    hp, st = rdn(f, 2)
    nsteps = rd(f)[0]
    for s in range(nsteps):
        e, eq = rdn(f, 2)
        m = len(e)
        sel = array('i', [0] * m); scr = array('I', [0] * (2 * m))
        k = Q.dense_select_u8(e, eq, hp, st, sel, scr)
        print('K', i, s, '%d:' % k, end='')
        for a in range(0, k, 64):   # in pieces: a long hex string fragments the M0's heap
            print(hx(memoryview(sel)[a:min(k, a + 64)]), end='')
        print()
    print('S', i, hx(st))
print('done')
"""


def test_dense_select_u8(run):
    rng = np.random.default_rng(5)
    cases, data = [], b""
    for c in range(30):
        # m >= 256: the counting-table threshold of select_topk_u32 (select.c)
        m = int(rng.integers(1, 200)) if c < 25 else int(rng.integers(256, 600))
        lmin = float(rng.choice([1.0, 0.5, 0.1, 0.01]))
        lmax = float(rng.uniform(lmin, 1.0))
        steps = []
        for _ in range(4):
            lo = int(rng.integers(0, 120))
            e = rng.integers(lo, 256 - lo, m, dtype=np.uint8)
            if rng.random() < 0.3:
                e[:] = rng.choice([0, 128])  # many ties / all equal
                e[rng.integers(0, m, 3)] = 200
            steps.append((e, rand_qp(rng, -1, 1)))
        cases.append((lmin, lmax, steps))
        data += pack(np.array([lmin, lmax], np.float32), np.zeros(1, np.float32),
                     np.array([len(steps)], np.int32))
        data = data[:-0] if False else data
        for e, eq in steps:
            data += pack(e, eq)
    out = run(SEL_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    lines, ksel = {}, {}
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "S":
            lines[int(p[1])] = p[2:]
        elif p and p[0] == "K":
            ksel[int(p[1]), int(p[2])] = p[3]
    assert len(lines) == len(cases)
    for i, (lmin, lmax, steps) in enumerate(cases):
        emax = np.float32(0)
        got = lines[i]
        for s, (e, eq) in enumerate(steps):
            k, sel, emax = GD.select_u8(e, eq, lmin, lmax, emax)
            gk, gsel = ksel[i, s].split(":")
            assert int(gk) == k, "case %d step %d k" % (i, s)
            assert np.array_equal(np.frombuffer(bytes.fromhex(gsel), np.int32), sel), "case %d sel" % i
        assert bytes.fromhex(got[0]) == np.float32(emax).tobytes()


UPD_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    x, xq, w, wq, b, bq, hp, st, rng, fl = rdn(f, 10)
    flags, nsteps, ksel = fl[0], fl[1], fl[2]
    m = len(b)
    sel = array('i', [0] * m) if ksel else None
    scr = array('I', [0] * (2 * m)); sst = array('f', [0])
    dh = array('f', [0.1, 1.0])
    remaps = 0
    for s in range(nsteps):
        e, eq = rdn(f, 2)
        k = Q.dense_select_u8(e, eq, dh, sst, sel, scr) if ksel else m
        remaps += Q.dense_update_u8(e, eq, x, xq, w, wq, b, bq, sel, k, hp, flags, st, rng)
    out('U', i, w, wq, b, st, rng, remaps)
print('done')
"""


def test_dense_update_u8_bit_exact(run):
    rng = np.random.default_rng(2024)
    cases, data = [], b""
    for ci in range(64):
        c = _case(rng)
        m, n = c["m"], c["n"]
        flags = int(ci % 4) | (4 if (ci // 4) % 2 else 0)
        ksel = int((ci // 8) % 2)
        b = rng.integers(-3000, 3000, m, dtype=np.int32)
        bq = GQ.new_qp(-1, 1)
        bq[GQ.SCALE], bq[GQ.ZERO] = np.float32(1e-4), 0
        hp = np.array([float(rng.choice([0.001, 0.01, 0.1])), float(rng.choice([1.0, 0.85, 0.3])),
                       float(rng.choice([0.0, 0.02]))], np.float32)
        st = np.zeros(5 + 2 * m, np.float32)
        seed = np.array([int(rng.integers(1, 2**32))], np.uint32)
        steps = [(rng.integers(0, 256, m, dtype=np.uint8), rand_qp(rng, -1, 1)) for _ in range(3)]
        cases.append(dict(c=c, flags=flags, ksel=ksel, b=b, bq=bq, hp=hp, st=st, seed=seed, steps=steps))
        data += pack(c["x"], c["xq"], c["w"].ravel(), c["wq"], b, bq, hp, st, seed,
                     np.array([flags, len(steps), ksel], np.int32))
        for e, eq in steps:
            data += pack(e, eq)
    out = run(UPD_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    lines = {}
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "U":
            lines[int(p[1])] = p[2:]
    assert len(lines) == len(cases)
    for i, cs in enumerate(cases):
        c = cs["c"]
        w, wq, b, st, r = c["w"], c["wq"], cs["b"], cs["st"], int(cs["seed"][0])
        m = c["m"]
        emax = np.float32(0)
        remaps = 0
        for e, eq in cs["steps"]:
            sel, k = None, m
            if cs["ksel"]:
                k, sel, emax = GD.select_u8(e, eq, 0.1, 1.0, emax)
            w, b, st, r, nr = GD.update_u8(e, eq, c["x"], c["xq"], w.reshape(m, -1), wq, b, cs["bq"],
                                           cs["hp"][0], cs["hp"][1], cs["flags"], st, r, sel, k)
            w, wq, rm = GD.weights_qp_update(w.ravel(), wq, nr, cs["hp"][2])
            remaps += rm
        gw, gwq, gb, gst, grng, grem = lines[i]
        tag = "case %d flags %d ksel %d" % (i, cs["flags"], cs["ksel"])
        assert bytes.fromhex(gst) == st.tobytes(), tag + " state %s %s" % (f32(bytes.fromhex(gst)), st)
        assert bytes.fromhex(gb) == b.tobytes(), tag + " b"
        assert bytes.fromhex(gw) == w.tobytes(), tag + " w"
        assert bytes.fromhex(gwq) == wq.tobytes(), tag + " wq %s %s" % (f32(bytes.fromhex(gwq)), wq)
        assert int.from_bytes(bytes.fromhex(grng), "little") == r, tag + " rng"
        assert int(grem) == remaps, tag


BATCH_SCRIPT = DEVICE_LIB + r"""
import _qtrain_float as QF   # the batch entry points
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    x0, xq, w, wq, b, bq, hp, st, rng, fl = rdn(f, 10)
    flags, nsamp = fl[0], fl[1]
    m = len(b); n = len(w) // m
    g = array('i', [0] * (m * n)); gb = array('i', [0] * m)
    eq = None
    for s in range(nsamp):
        e, eq, x = rdn(f, 3)
        QF.dense_grad_acc_u8(e, eq, x, xq, g, gb, None, 0)
    gs = array('f', [eq[0] * xq[0], eq[0]])
    rem = QF.update_rows_u8(g, gs, w, wq, gb, b, bq, hp, flags, st, rng)
    nz = 0
    for v in g:
        nz |= v
    for v in gb:
        nz |= v
    out('G', i, w, wq, b, st, rng, rem, nz)
    g = gb = None
print('done')
"""


def test_dense_batch_update_u8_bit_exact(run):
    rng = np.random.default_rng(77)
    cases, data = [], b""
    for ci in range(32):
        c = _case(rng)
        m, n = c["m"], c["n"]
        flags = int(ci % 4) | (4 if (ci // 4) % 2 else 0)
        b = rng.integers(-3000, 3000, m, dtype=np.int32)
        bq = GQ.new_qp(-1, 1)
        bq[GQ.SCALE], bq[GQ.ZERO] = np.float32(1e-4), 0
        # lr 1e-4 and 5: small and large multipliers K g (the row update's 32-bit
        # fast path and its int64 fallback for K 2^gs >= 2^15)
        lr = 0.0001 if ci % 3 == 2 else (5.0 if ci % 8 == 7 else 0.01)
        hp = np.array([lr, float(rng.choice([1.0, 0.85])), 0.02], np.float32)
        st = np.zeros(5 + 2 * m, np.float32)
        seed = np.array([int(rng.integers(1, 2**32))], np.uint32)
        eq = rand_qp(rng, -1, 1)
        samples = [(rng.integers(0, 256, m, dtype=np.uint8), rng.integers(0, 256, n, dtype=np.uint8))
                   for _ in range(int(rng.integers(2, 6)))]
        cases.append(dict(c=c, flags=flags, b=b, bq=bq, hp=hp, st=st, seed=seed, eq=eq, samples=samples))
        data += pack(c["x"], c["xq"], c["w"].ravel(), c["wq"], b, bq, hp, st, seed,
                     np.array([flags, len(samples)], np.int32))
        for e, x in samples:
            data += pack(e, eq, x)
    out = run(BATCH_SCRIPT, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    lines = {}
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "G":
            lines[int(p[1])] = p[2:]
    assert len(lines) == len(cases)
    for i, cs in enumerate(cases):
        c = cs["c"]
        m, n = c["m"], c["n"]
        g = np.zeros((m, n), np.int32)
        gb = np.zeros(m, np.int32)
        for e, x in cs["samples"]:
            g, gb = GD.grad_acc_u8(e, cs["eq"], x, c["xq"], g, gb)
        s_g = np.float32(cs["eq"][0] * c["xq"][0])
        w, b, st, r, nr = GD.update_rows_u8(g, s_g, c["w"].ravel(), c["wq"], gb, cs["b"],
                                            cs["eq"][0], cs["bq"][0], cs["hp"][0], cs["hp"][1],
                                            cs["flags"], cs["st"], int(cs["seed"][0]))
        w, wq, rm = GD.weights_qp_update(w, c["wq"], nr, cs["hp"][2])
        gw, gwq, gbb, gst, grng, grem, gnz = lines[i]
        tag = "case %d flags %d" % (i, cs["flags"])
        assert bytes.fromhex(gst) == st.tobytes(), tag + " state %s %s" % (f32(bytes.fromhex(gst)), st)
        assert bytes.fromhex(gbb) == b.tobytes(), tag + " b"
        assert bytes.fromhex(gw) == w.tobytes(), tag + " w"
        assert bytes.fromhex(gwq) == wq.tobytes(), tag + " wq"
        assert int.from_bytes(bytes.fromhex(grng), "little") == r, tag + " rng"
        assert int(grem) == rm
        assert gnz == "0", tag + " buffers zeroed"


SELR_SCRIPT = DEVICE_LIB + r"""
f = open('cases.bin', 'rb')
ncase = rd(f)[0]
for i in range(ncase):
    e, eq, y, yq, hp = rdn(f, 5)
    m = len(e)
    sel = array('i', [0] * m); scr = array('I', [0] * (2 * m)); st = array('f', [0.0])
    k = Q.dense_select_u8(e, eq, hp, st, sel, scr, y, yq)
    print('R', i, '%d:' % k, end='')
    for a in range(0, k, 64):
        print(hx(memoryview(sel)[a:min(k, a + 64)]), end='')
    print(' ' + hx(st) + ' ', end='')
    for a in range(0, m, 256):
        print(hx(memoryview(e)[a:min(m, a + 256)]), end='')
    print()
print('done')
"""


def check_select_cases(run, script, cases):
    """`script` (SELR_SCRIPT or a variant) on `cases` ((e, eq, y, yq, hp);
    an empty y: no mask): k, the selection, the DSGU state and the masked
    error of each against the golden relu_backward_u8 then select_u8."""
    data = b"".join(pack(*c) for c in cases)
    out = run(script, files={"cases.bin": pack(np.array([len(cases)], np.int32)) + data})
    res = {}
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "R":
            res[int(p[1])] = p[2:]
    assert len(res) == len(cases), out[-2000:]
    for i, (e, eq, y, yq, hp) in enumerate(cases):
        em = GD.relu_backward_u8(e, eq, y, yq)[0] if len(y) else e
        k, sel, emax = GD.select_u8(em, eq, hp[0], hp[1], np.float32(0))
        gk, gsel = res[i][0].split(":")
        assert int(gk) == k, "case %d k" % i
        assert np.array_equal(np.frombuffer(bytes.fromhex(gsel), np.int32), sel), "case %d sel" % i
        assert bytes.fromhex(res[i][1]) == np.float32(emax).tobytes(), "case %d state" % i
        assert bytes.fromhex(res[i][2]) == em.tobytes(), "case %d masked e" % i


def test_dense_select_u8_relu_mask(run):
    """dense_select_u8 with y: the ReLU mask on e in place in the scores'
    pass, as the golden relu_backward_u8 then select_u8; both of its paths
    (m < 128: scores then select_topk_u32; m >= 128: the counting table),
    zero points 0 and 255 too."""
    rng = np.random.default_rng(17)
    cases = []
    for c in range(24):
        m = int(rng.integers(1, 128)) if c < 10 else int(rng.choice([128, 300, 1568]))
        e = rng.integers(0, 256, m, dtype=np.uint8)
        eq, yq = rand_qp(rng, -1, 1), rand_qp(rng)
        if c % 4 == 1:
            eq[GQ.ZERO], yq[GQ.ZERO] = 0.0, 255.0      # every row masked
        elif c % 4 == 2:
            eq[GQ.ZERO], yq[GQ.ZERO] = 255.0, 0.0
        y = np.clip(int(yq[GQ.ZERO]) + rng.integers(-3, 4, m), 0, 255).astype(np.uint8)
        lmin = float(rng.choice([1.0, 0.5, 0.1]))
        hp = np.array([lmin, max(lmin, float(rng.choice([0.5, 1.0])))], np.float32)
        cases.append((e, eq, y, yq, hp))
    check_select_cases(run, SELR_SCRIPT, cases)
