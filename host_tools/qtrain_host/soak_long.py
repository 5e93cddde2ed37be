"""Long run (issue 6 item 6): one full MNIST epoch (60 000 steps) of the
paper's ConvVAE in uint8 on the Unix port, watching for trouble.

    python -m qtrain_host.soak_long [--data DIR] [--steps 60000] [--model conv]

Every step: the loss terms are finite, and each layer's uint8 output and
uint8 error at its input are scanned for values clamped at 0 and at 255
where they are produced: as the layer's forward / backward returns them
(the model lends its layers shared error buffers, so a scan after the step
would see only the last writer); a viper loop, or plain Python every
--every steps if the port has no native emitter.  Every --report steps: every
quantization record (activation, error, weight) is finite, the weight
ranges, the largest |int32 bias| (overflow = at the int32 limits), and
gc.mem_alloc() after gc.collect() (flat = nothing kept per step) and the
bytes allocated by the --report training steps themselves.

--data DIR holds the MNIST IDX files (default ../shared/data/mnist next to
the repository).  It is optional: without it the shipped 6000-sample subset
is repeated (10 epochs = 60 000 steps), and the run says so.  Exit status 1
if a NaN/inf, an int32 bias at its limit or a growing heap was seen.
"""
import argparse
import os
import re
import sys

from . import paths, runner

DEVICE = r"""
import gc, sys
from qtrain import trainer
from qtrain.data import Stream

STEPS, REPORT, EVERY = %(steps)d, %(report)d, %(every)d
cfg = dict(trainer.VAE_DEFAULTS)
cfg.update(model=%(model)r, mode=%(mode)r, seed=1)
vae = trainer.build_vae_from(cfg)
s = Stream(%(stream)r, shuffle=True, seed=1)

layers = []   # (name, layer)
for part, seq in (("enc", vae.encoder), ("dec", vae.decoder)):
    for i, l in enumerate(seq.layers):
        layers.append(("%%s%%d.%%s" %% (part, i, l.kind), l))
# uint8 tensors whose clamping we count, where each is produced: the output
# a layer's forward returns and the error at its input its backward returns.
# (A model lends its layers shared error buffers, and outputs may be shared
# too: a scan after the step would see only the last writer of each.)
tensors = []  # (layer index, 'y' or 'ep')
lo = []       # values == 0 (for a ReLU output: also exact zeros)
hi = []       # values == 255
seen = []     # values scanned
scans = 0
scanning = False   # set for the steps that are scanned

try:
    import micropython
    @micropython.viper
    def _count(buf, n: int) -> int:
        # (number of 0s) | (number of 255s) << 32
        p = ptr8(buf)
        a = 0
        b = 0
        for i in range(n):
            v = p[i]
            if v == 0:
                a += 1
            elif v == 255:
                b += 1
        return a | (b << 32)
    every = 1
except Exception:
    def _count(buf, n):
        a = b = 0
        for i in range(n):
            v = buf[i]
            if v == 0:
                a += 1
            elif v == 255:
                b += 1
        return a | (b << 32)
    every = EVERY

def counted(t, method):
    # method (a layer's forward or backward: (buffer, record) -> (buffer,
    # record)) that also counts the clamped values of the buffer it returns
    def call(x, q):
        r = method(x, q)
        if scanning:
            b = r[0]
            c = _count(b, len(b))
            lo[t] += c & 0xFFFFFFFF
            hi[t] += c >> 32
            seen[t] += len(b)
        return r
    return call

for j, (name, l) in enumerate(layers):
    # uint8 tensors only: their records are not None
    for what, meth, rec in (("y", "forward", "yq"), ("ep", "backward", "epq")):
        if getattr(l, rec, None) is not None:
            tensors.append((j, what))
            lo.append(0)
            hi.append(0)
            seen.append(0)
            setattr(l, meth, counted(len(tensors) - 1, getattr(l, meth)))
NT = len(tensors)

def finite(x):
    return x == x and x - x == 0.0

def records():
    # every quantization record of the model: activations, errors, weights
    out = list(vae._records)
    for _, l in layers:
        for a in ("wq", "bq"):
            r = getattr(l, a, None)
            if r is not None:
                out.append(r)
    return out

def wrange(l):
    q = l.wq
    if q is None:
        return "float"
    return "%%.4g..%%.4g" %% (q[2], q[3])

bad = 0
first_bad = ""
# heap after gc.collect() at each report (preallocated: a growing list would
# itself show up as heap growth)
from array import array
base = array('i', [0] * (STEPS // REPORT + 2))
nb = 0
wr0 = [wrange(l) for _, l in layers]
wlo = [1e30] * len(layers)
whi = [-1e30] * len(layers)
maxb = 0
print("@long start model=%%s mode=%%s stream=%%s samples=%%d steps=%%d scan_every=%%d tensors=%%d"
      %% (cfg["model"], cfg["mode"], s.path, s.count, STEPS, every, NT))
gc.collect()
a0 = gc.mem_alloc()
sum_r = sum_k = 0.0
for step in range(1, STEPS + 1):
    s.next()
    scanning = step %% every == 0
    r, k = vae.train_step(s.image)
    if not (finite(r) and finite(k)):
        bad += 1
        if not first_bad:
            first_bad = "step %%d: rec=%%r kl=%%r" %% (step, r, k)
    sum_r += r
    sum_k += k
    if scanning:
        scans += 1
    if step %% REPORT == 0 or step == STEPS:
        a1 = gc.mem_alloc()
        for q in records():
            for v in q:
                if not finite(v):
                    bad += 1
                    if not first_bad:
                        first_bad = "step %%d: non-finite quantization record %%r" %% (step, list(q))
                    break
        for j, (_, l) in enumerate(layers):
            if l.wq is not None:
                wlo[j] = min(wlo[j], l.wq[2])
                whi[j] = max(whi[j], l.wq[3])
            for v in l.b:
                v = abs(v)
                if v > maxb:
                    maxb = v
        gc.collect()
        base[nb] = gc.mem_alloc()
        nb += 1
        n = step %% REPORT or REPORT
        print("@long step=%%d epoch=%%d rec=%%.2f kl=%%.2f heap_after_collect=%%d alloc_in_steps=%%d bad=%%d"
              %% (step, s.epoch + 1, sum_r / n, sum_k / n, base[nb - 1], a1 - a0, bad))
        sum_r = sum_k = 0.0
        gc.collect()
        a0 = gc.mem_alloc()
for t in range(NT):
    j, what = tensors[t]
    print("@sat %%s %%s n=%%d zeros=%%d (%%.3f%%%%) max=%%d (%%.3f%%%%)"
          %% (layers[j][0], what, seen[t], lo[t], 100.0 * lo[t] / max(seen[t], 1), hi[t],
             100.0 * hi[t] / max(seen[t], 1)))
for j, (name, l) in enumerate(layers):
    print("@weights %%s start=%%s end=%%s lowest=%%.4g highest=%%.4g"
          %% (name, wr0[j], wrange(l), wlo[j], whi[j]))
print("@result long steps=%%d scans=%%d bad=%%d max_abs_bias=%%d heap_min=%%d heap_max=%%d first_bad=%%r"
      %% (STEPS, scans, bad, maxb, min(base[:nb]), max(base[:nb]), first_bad))
"""


SOAK_OUT = os.path.join(paths.ROOT, "out", "soak")


def _default_data():
    return os.path.join(os.path.dirname(paths.ROOT), "shared", "data", "mnist")


def prepare_stream(data_dir, log=print, out_root=None):
    """-> (path of train.qtds, description).  From the IDX files in
    data_dir if it has them, else from the shipped subset.  The stream files
    are kept under out_root (default out/soak) for the next run."""
    from . import cli, datasets
    full = False
    if data_dir and os.path.isdir(data_dir):
        try:
            datasets.find_file(data_dir, "train", "images")
            full = True
        except datasets.DatasetError:
            pass
    if full:
        out = os.path.join(out_root or SOAK_OUT, "data-" + re.sub(r"\W", "_", os.path.abspath(data_dir))[-40:])
        src = ["--data", data_dir]
        what = "full training set from %s" % data_dir
    else:
        out = os.path.join(out_root or SOAK_OUT, "data-subset")
        src = []
        what = ("the shipped subset (data/mnist-subset: no MNIST IDX files in %s), repeated "
                "to reach the step count" % data_dir)
    train = os.path.join(out, "train.qtds")
    if not os.path.exists(train):
        log("soak_long: preparing %s" % out)
        rc = cli.main(["prepare"] + src + ["--out", out, "--per-class", "10"])
        if rc:
            raise SystemExit("soak_long: could not prepare the stream files")
    return train, what


def run(steps=60000, model="conv", mode="uint8", data_dir=None, report=1000, every=20,
        echo=True, timeout=6 * 3600, out_root=None):
    """-> (problems, output)."""
    stream, what = prepare_stream(data_dir if data_dir is not None else _default_data(), out_root=out_root)
    print("soak_long: %d steps of the %s VAE (%s) on %s" % (steps, model, mode, what), flush=True)
    script = DEVICE % dict(steps=steps, report=report, every=every, model=model, mode=mode,
                           stream=os.path.abspath(stream))
    res = runner.run_unix(script, timeout=timeout, heapsize="16M", echo=echo)
    return check(res.output, res.returncode, report), res.output


def check(output, returncode, report):
    """Problems found in a long run's output (empty list = clean)."""
    problems = []
    if returncode != 0 or "@result long" not in output:
        return ["the run failed (exit %d)" % returncode]
    m = re.search(r"@result long steps=(\d+) scans=(\d+) bad=(\d+) max_abs_bias=(\d+) "
                  r"heap_min=(\d+) heap_max=(\d+)", output)
    bad, maxb, hmin, hmax = int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6))
    if bad:
        problems.append("%d non-finite values" % bad)
    if maxb >= 2**31 - 1:
        problems.append("an int32 bias reached its limit")
    heaps = [int(v) for v in re.findall(r"heap_after_collect=(\d+)", output)]
    # Flat: after the first report the live heap does not grow.
    if len(heaps) > 2 and max(heaps[1:]) > heaps[1]:
        problems.append("the live heap grew from %d to %d bytes" % (heaps[1], max(heaps[1:])))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.soak_long", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, metavar="DIR",
                    help="MNIST IDX directory (default ../shared/data/mnist next to the repo; optional)")
    ap.add_argument("--steps", type=int, default=60000)
    ap.add_argument("--model", default="conv", choices=["conv", "mlp"])
    ap.add_argument("--mode", default="uint8", choices=["uint8", "mixed", "float32"])
    ap.add_argument("--report", type=int, default=1000, help="steps between heap/record checks")
    ap.add_argument("--every", type=int, default=20,
                    help="saturation scan interval without a native emitter (with one: every step)")
    a = ap.parse_args(argv)
    problems, _ = run(a.steps, a.model, a.mode, a.data, a.report, a.every)
    for p in problems:
        print("soak_long: FAIL: %s" % p)
    print("soak_long: %s" % ("clean" if not problems else "%d problem(s)" % len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
