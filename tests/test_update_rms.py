"""Update flag 16 (QT_UPD_RMS; the scripts' --std_rms): the weights' gradient
standardized by its RMS, mean 0, as the biases are, instead of centred.
Centred, a one-filter layer (the ConvVAE's ConvT 16->1) whose gradient is
mostly one sign keeps only the small differences between its weights'
gradients and steps each by ~lr: its weights walk apart to 0/255 and at
DSGU lmin = lmax = 0.1 the VAE went through a latent event (KERNELS.md,
"The latent event at k = 1").  Bit-exact against the golden model on every
target (dense_update_u8 per tensor and per row, the conv updates per
filter); each case also checks that the flag changed the result and that
the smoothed means it leaves are 0."""
import numpy as np

from qtrain_host.golden import quant as GQ
from test_bias_one_structure import dense_golden, dense_rows_case, run_conv_update_cases, run_dense_cases
from test_conv_kernels import G, VAE_GEOMS, u8_case

RMS = 16


def _dense_golden(cs, flags):
    return dense_golden(cs, cs["sel"], cs["k"], flags)


def test_dense_rms_bit_exact(run):
    """dense_update_u8 with flag 16: one, two or all rows, per tensor and
    per row, every rounding, 3 steps from a fresh state."""
    rng = np.random.default_rng(57)
    cases = []
    for ci in range(12):
        cs = dense_rows_case(rng, lambda m: (1, 2, m)[ci % 3])
        m = cs["c"]["m"]
        cs["flags"] = RMS | int(ci % 4) | (4 if ci % 2 else 0)
        cs["steps"] = [(rng.integers(0, 256, m, dtype=np.uint8), GQ.new_qp(-1, 1)) for _ in range(3)]
        cases.append(cs)
    lines = run_dense_cases(run, cases)
    for i, cs in enumerate(cases):
        w, wq, b, st = _dense_golden(cs, cs["flags"])
        tag = "case %d (m %d k %d flags %d)" % (i, cs["c"]["m"], cs["k"], cs["flags"])
        gw, gwq, gb, gst, grng = lines[i]
        assert bytes.fromhex(gst) == st.tobytes(), tag + ": state"
        assert bytes.fromhex(gw) == w.tobytes(), tag + ": w"
        assert bytes.fromhex(gwq) == wq.tobytes(), tag + ": wq"
        assert bytes.fromhex(gb) == np.asarray(b, np.int32).tobytes(), tag + ": b"
        # the means the flag leaves are 0 (per tensor state[1], per row state[5 + 2 i])
        means = st[5::2] if cs["flags"] & 4 else st[1:2]
        assert not np.any(means), tag + ": a mean is not 0: %s" % means
        # and it is not ignored: the centred rule gives other weights or statistics
        w0, _, _, st0 = _dense_golden(cs, cs["flags"] & ~RMS)
        assert w0.tobytes() != w.tobytes() or st0.tobytes() != st.tobytes(), tag + ": flag 16 changed nothing"


def test_conv_rms_bit_exact(run):
    """conv2d / conv_transpose2d_update_u8 with flag 16: the VAE's ConvT
    16->1 (one filter), its Conv 1->16 and ConvT 32->16 with one selected
    filter, and small random geometries with every filter."""
    rng = np.random.default_rng(59)
    geoms = [(VAE_GEOMS[3], None), (VAE_GEOMS[0], 5), (VAE_GEOMS[2], 11)]
    while len(geoms) < 8:
        t = bool(len(geoms) % 2)
        geom, ok = G.random_geom(rng, t, (6, 5, 9))
        if ok:
            geoms.append(((t, geom), None))
    cases = []
    for (t, geom), filt in geoms:
        c = u8_case(rng, t, geom)
        co = c["e"].shape[0]
        sel, k = (None, co) if filt is None else (np.array([filt], np.int32), 1)
        flags = RMS | 4 | int(rng.integers(0, 4))   # the batch-1 conv update is per filter
        hp = np.array([0.01, 0.15, 0.02], np.float32)
        state = np.zeros(5 + 2 * co, np.float32)
        wq = c["wq"].copy()
        wq[GQ.ALPHA] = 0.001
        seed = np.array([int(rng.integers(1, 2**32 - 1))], np.uint32)
        cases.append((c, sel, k, flags, hp, state, wq, seed))
    res = run_conv_update_cases(run, cases)
    for i, (c, sel, k, flags, hp, state, wq, seed) in enumerate(cases):
        what = "case %d (%s %s flags=%d k %d)" % (i, "convT" if c["t"] else "conv", c["geom"], flags, k)

        def golden(fl):
            return G.update_u8_qp(c["t"], c["e"], c["eq"], c["x"], c["xq"], c["w"], wq, c["b"], c["bq"],
                                  c["geom"], sel, hp, fl, state, int(seed[0]))
        w, wq2, b, st, rng2, rem = golden(flags)
        got = res[i]
        assert got[4] == np.asarray(st, np.float32).tobytes(), what + ": state"
        assert got[1] == np.asarray(w, np.uint8).tobytes(), what + ": w"
        assert got[2] == np.asarray(wq2, np.float32).tobytes(), what + ": wq"
        if c["b"] is not None:
            assert got[3] == np.asarray(b, np.int32).tobytes(), what + ": b"
        assert not np.any(np.asarray(st)[5::2]), what + ": a filter's mean is not 0"
        w0, _, _, st0, _, _ = golden(flags & ~RMS)
        assert (np.asarray(w0, np.uint8).tobytes() != np.asarray(w, np.uint8).tobytes()
                or np.asarray(st0).tobytes() != np.asarray(st).tobytes()), what + ": flag 16 changed nothing"



def test_trace_and_accuracy_scripts_take_std_rms(tmp_path):
    """--std_rms true (mp_scripts/weight_stats.std_rms, for accuracy.py and
    vae_trace.py) puts flag 16 on every trainable layer: the ConvVAE at
    lmin = lmax = 0.1 trains differently from the first lines on, and a
    mixed-mode run is a ValueError naming the option."""
    import subprocess

    from qtrain_host import bench_report
    from test_bench_extra import _unix_subset

    data = _unix_subset(tmp_path)

    def trace(*args):
        argv, env = bench_report.unix_command("vae_trace.py", ["--lmin", "0.1", "--lmax", "0.1", "--samples", "40",
                                                               "--every", "20", "--seed", "2"] + list(args))
        p = subprocess.run(argv, cwd=str(data), env=env, capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout + p.stderr

    rc0, centred = trace()
    rc1, rms = trace("--std_rms", "true")
    assert rc0 == 0 and rc1 == 0, centred + rms
    lines0 = [ln for ln in centred.splitlines() if ln.startswith("@trace")]
    lines1 = [ln for ln in rms.splitlines() if ln.startswith("@trace")]
    assert len(lines0) == len(lines1) == 2, centred + rms
    assert lines0[1] != lines1[1], (lines0, lines1)
    rc, out = trace("--mode", "mixed", "--std_rms", "true")
    assert rc != 0 and "--std_rms: uint8 mode only, got mode 'mixed'" in out, out


def test_cnn_script_takes_std_rms(tmp_path):
    """cnn.py --std_rms true (bench_cnn --extra "--std_rms true") puts flag
    16 on the classifier CNN's layers: the same seed trains to a different
    loss; a mixed-mode run is a ValueError naming the option."""
    import subprocess

    from qtrain_host import bench_report
    from test_bench_extra import _unix_subset

    data = _unix_subset(tmp_path)

    def cnn(*args):
        argv, env = bench_report.unix_command("cnn.py", ["--epochs", "1", "--limit", "60", "--test_limit", "20",
                                                         "--seed", "2"] + list(args))
        p = subprocess.run(argv, cwd=str(data), env=env, capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout + p.stderr

    rc0, centred = cnn()
    rc1, rms = cnn("--std_rms", "true")
    assert rc0 == 0 and rc1 == 0, centred + rms
    loss0 = [ln.split()[2] for ln in centred.splitlines() if ln.startswith("@epoch")]
    loss1 = [ln.split()[2] for ln in rms.splitlines() if ln.startswith("@epoch")]
    assert len(loss0) == len(loss1) == 1 and loss0[0].startswith("train_loss="), centred + rms
    assert loss0 != loss1, (loss0, loss1)
    rc, out = cnn("--mode", "mixed", "--std_rms", "true")
    assert rc != 0 and "--std_rms: uint8 mode only, got mode 'mixed'" in out, out
