"""_qtrain vs pure MicroPython vs viper on the same uint8 Dense training
step (MicroPython source; used by qtrain_host.bench_alternatives and
tests/test_alternatives.py).

    import compare
    compare.check(40, 12, steps=6)          # prints '@same <impl> <step> <buffers that differ or ->'
    compare.bench(784, 64, budget_ms=2000)  # prints '@alt <impl> <us per step> <steps>'

The _qtrain side is qtrain.layers.Dense in 'uint8' mode (forward, then
backward: ReLU mask, error propagation, update, weight range step), the
others dense_step.DenseStep with loops_pure / loops_viper, each starting
from a copy of the same layer and fed the same inputs and errors.
"""
import array
import time

import dense_step
import loops_pure
import loops_viper
from qtrain import layers as L

try:
    import _qtrain as _q
except ImportError:
    _q = None


def rnd(n, seed):
    b = bytearray(n)
    L.fill_uniform_u8(b, seed)
    return b


class QtrainStep:
    """qtrain.layers.Dense with the same step interface as DenseStep."""

    def __init__(self, layer):
        self.layer = layer

    def forward(self, x, xq):
        return self.layer.forward(x, xq)[0]

    def backward(self, e, eq):
        return self.layer.backward(e, eq)[0]

    def step_done(self):
        _q.qp_update(self.layer.yq)
        _q.qp_update(self.layer.epq)

    def buffers(self):
        d = self.layer
        return {"y": d.y, "yq": d.yq, "ep": d.ep, "epq": d.epq, "w": d.w, "wq": d.wq, "b": d.b,
                "state": d.state, "rng": d.rng}


class AltStep(dense_step.DenseStep):
    def step_done(self):
        dense_step.qp_update(self.yq)
        dense_step.qp_update(self.epq)

    def buffers(self):
        return {"y": self.y, "yq": self.yq, "ep": self.ep, "epq": self.epq, "w": self.w, "wq": self.wq,
                "b": self.b, "state": self.state, "rng": self.rng}


def build(n_in, n_out, lr=0.01, seed=3, alpha_w=0.001):
    """{'_qtrain', 'viper', 'pure': step objects} on copies of one layer."""
    opt = L.Options(mode="uint8", lr=lr, seed=seed, alpha_w=alpha_w)
    ref = L.Dense(n_in, n_out, relu=True, opt=opt)
    out = {"_qtrain": QtrainStep(ref)}
    for name, loops in (("viper", loops_viper), ("pure", loops_pure)):
        out[name] = AltStep(loops, n_in, n_out, bytearray(ref.w), array.array("f", ref.wq),
                            array.array("i", ref.b), array.array("f", ref.bq), array.array("f", ref.yq),
                            array.array("f", ref.epq), array.array("f", ref.state), array.array("I", ref.rng),
                            relu=True, lr=opt.lr, alpha_norm=opt.alpha_norm, tau=opt.tau)
    return out


XQ = L.qparams(0.0, 1.0)
EQ = L.qparams(-0.05, 0.05)


def step(impl, x, e0, e):
    e[:] = e0                 # ReLU backward masks the error in place
    impl.forward(x, XQ)
    impl.backward(e, EQ)
    impl.step_done()


def check(n_in, n_out, steps=6, lr=0.01, alpha_w=0.001):
    impls = build(n_in, n_out, lr, alpha_w=alpha_w)
    e = bytearray(n_out)
    for s in range(steps):
        x, e0 = rnd(n_in, 100 + s), rnd(n_out, 200 + s)
        for impl in impls.values():
            step(impl, x, e0, e)
        ref = impls["_qtrain"].buffers()
        for name in ("viper", "pure"):
            mine = impls[name].buffers()
            diff = [k for k in ref if list(ref[k]) != list(mine[k])]
            print("@same %s %d %s" % (name, s, ",".join(diff) or "-"))
    w = impls["pure"].wq
    print("@wq %f %d" % (w[0], int(w[1])))


def cpu_us():
    """CPU time of this process in us (Linux /proc, 10 ms ticks), or None:
    unlike the wall clock it does not count time other processes take."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 10000     # utime + stime, USER_HZ = 100
    except (OSError, ValueError, IndexError):
        return None


def bench(n_in, n_out, budget_ms=3000, lr=0.01):
    """Per-step time of each implementation over 10 interleaved rounds,
    each about budget_ms / 30 of CPU time (the round's step count is
    re-estimated after every round, so the clocks are read twice per round,
    not per step): CPU time in total if the port can read it, and the best
    round's wall clock per step."""
    impls = build(n_in, n_out, lr)
    xs = [rnd(n_in, 100 + s) for s in range(4)]
    es = [rnd(n_out, 200 + s) for s in range(4)]
    e = bytearray(n_out)
    target = budget_ms * 1000 // (10 * len(impls))
    est = {}
    for name, impl in impls.items():      # warm-up: a per-step estimate from >= 50 ms of CPU
        c0 = cpu_us()
        t0 = time.ticks_us()
        k = 0
        while k < 2 or c0 is not None or time.ticks_diff(time.ticks_us(), t0) < 50000:
            step(impl, xs[k & 3], es[k & 3], e)
            k += 1
            if c0 is not None and k & (k - 1) == 0 and cpu_us() - c0 >= 50000:
                break
        est[name] = (cpu_us() - c0 if c0 is not None else time.ticks_diff(time.ticks_us(), t0)) / k
    best, steps, cpu = {}, {}, {}
    for rnd_i in range(10):
        for name, impl in impls.items():
            n = max(1, int(target / est[name]))
            c0 = cpu_us()
            t0 = time.ticks_us()
            for k in range(n):
                step(impl, xs[k & 3], es[k & 3], e)
            dt = time.ticks_diff(time.ticks_us(), t0)
            c1 = cpu_us()
            best[name] = min(best.get(name, dt / n), dt / n)
            steps[name] = steps.get(name, 0) + n
            if c0 is not None and c1 is not None:
                cpu[name] = cpu.get(name, 0) + c1 - c0
                if c1 > c0:
                    est[name] = (c1 - c0) / n
    for name in impls:
        c = cpu.get(name)
        print("@alt %s %.2f %d %s" % (name, best[name], steps[name], "-" if c is None else "%.2f" % (c / steps[name])))


def vae_step(mode, min_cpu_us=1000000):
    """CPU time per training step of the paper's ConvVAE with _qtrain (for
    scale next to the Dense step): '@vae <mode> <us per step> <steps>'."""
    from qtrain import models
    vae = models.build_vae("conv", L.Options(mode=mode, lr=0.0005, seed=1))
    xs = [rnd(784, 300 + s) for s in range(4)]
    for x in xs:                       # blobs on a dark background, like digits
        for i in range(784):
            r, c = divmod(i, 28)
            if not (6 <= r < 22 and 8 <= c < 20):
                x[i] = 0
    vae.train_step(xs[0])
    c0 = cpu_us()
    if c0 is None:
        return
    k = 0
    while cpu_us() - c0 < min_cpu_us:
        for x in xs:
            vae.train_step(x)
        k += 4
    print("@vae %s %.1f %d" % (mode, (cpu_us() - c0) / k, k))
