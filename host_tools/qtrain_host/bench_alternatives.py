"""The alternatives a MicroPython user has, side by side in one run on the
Unix port: the same uint8 training step with _qtrain, in pure MicroPython
and with @micropython.viper (host_tools/qtrain_host/alternatives/).

    python -m qtrain_host.bench_alternatives --md docs/BENCHMARKS.md

The step: one Dense layer 784 -> 64 with ReLU, batch 1, as
qtrain.layers.Dense does it in 'uint8' mode: forward (int32 dot products,
int32 bias, fixed-point requantization, range observation), ReLU mask of
the error, error propagation to the 784 inputs, the standardized batch-1
update of all 50 176 weights and 64 biases with stochastic rounding (one
xorshift32 draw per weight) and the weight range step.  The pure and viper
versions compute the same integers (bit-exact, checked in the same run and
in tests/test_alternatives.py); only where the O(m n) loops run differs.
Per-step CPU time of the process (Linux /proc/self/stat, 10 ms ticks, over
10 interleaved rounds; a busy machine does not inflate it) and the best
round's wall clock (time.ticks_us); the ratios are what counts.
"""
import argparse
import glob
import os
import sys

from . import bench_report
from .runner import run_script

ALT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alternatives")
N_IN, N_OUT = 784, 64
TARGETS = {"pure": 100.0, "viper": 10.0}


def files():
    return {os.path.basename(p): p for p in glob.glob(os.path.join(ALT_DIR, "*.py"))}


def run(n_in, n_out, budget_ms=3000, check_steps=2):
    script = ("import compare\ncompare.check(%d, %d, steps=%d)\ncompare.bench(%d, %d, budget_ms=%d)\n"
              "for m in ('uint8', 'float32'):\n    compare.vae_step(m)\n") % (
        n_in, n_out, check_steps, n_in, n_out, budget_ms)
    res = run_script("unix", script, files=files(), timeout=900, heapsize="16M").check()
    same = [line.split()[1:] for line in res.output.splitlines() if line.startswith("@same ")]
    bad = [s for s in same if s[2] != "-"]
    if not same or bad:
        raise SystemExit("bench_alternatives: the implementations disagree: %s\n%s" % (bad, res.output[-2000:]))
    alt = {}
    for line in res.output.splitlines():
        if line.startswith("@alt "):
            _, name, us, n, cpu = line.split()
            alt[name] = {"us": float(us), "steps": int(n), "cpu_us": None if cpu == "-" else float(cpu)}
        if line.startswith("@vae "):
            _, mode, us, n = line.split()
            alt.setdefault("vae", {})[mode] = {"us": float(us), "steps": int(n)}
    return alt


def report(alt, cmd):
    cpu = all(a["cpu_us"] for k, a in alt.items() if k != "vae")
    key = "cpu_us" if cpu else "us"
    q = alt["_qtrain"][key]
    L = ["Command: `%s`  " % cmd, bench_report.provenance(), ""]
    L.append("The same uint8 training step of one Dense layer %d -> %d (ReLU; forward, error propagation, "
             "standardized batch-1 update of every weight with stochastic rounding, weight range step), "
             "MicroPython Unix port, side by side in one run; results bit-identical across the three "
             "(checked in the run).  The paper's ConvVAE step would need conv loops in the pure/viper "
             "versions too; this layer exercises the same Dense kernels and the same update." % (N_IN, N_OUT))
    L.append("")
    L.append("| implementation | %s per step (us) | x slower than _qtrain | target | best round, wall (us) | steps timed |"
             % ("CPU time" if cpu else "time"))
    L.append("|---|---:|---:|---|---:|---:|")
    for name in ("_qtrain", "viper", "pure"):
        a = alt[name]
        r = a[key] / q
        t = TARGETS.get(name)
        ok = "" if t is None else (">= %gx: %s" % (t, "met" if r >= t else "missed (%.0f %% of it)" % (100 * r / t)))
        L.append("| %s | %.1f | %.1f | %s | %.1f | %d |" % (
            {"_qtrain": "`_qtrain` (C natmod)", "viper": "`@micropython.viper` loops",
             "pure": "pure MicroPython"}[name], a[key], r, ok, a["us"], a["steps"]))
    L.append("")
    L.append("Ratios from %s (10 interleaved rounds per implementation; the machine is shared with other "
             "jobs, which the wall clock counts and the process's CPU time, from /proc, does not); "
             "the viper and pure versions keep the per-call float work (scales, multipliers, statistics) "
             "in plain Python, as a user would, and run the three O(m n) loops (forward dot products, "
             "error propagation, weight update) in viper or plain Python." % (
                 "the CPU time" if cpu else "the best round's wall clock"))
    if alt.get("vae"):
        L.append("")
        L.append("For scale, one training step of the paper's ConvVAE with `_qtrain` on the same port (CPU time "
                 "per sample, >= 1 s of steps): %s." % ", ".join(
                     "%s %.2f ms" % (m, v["us"] / 1000) for m, v in alt["vae"].items()))
    return "\n".join(L)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.bench_alternatives", description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-ms", type=int, default=3000, help="time per implementation, about (default 3000)")
    ap.add_argument("--md", default="", help="write the table into this Markdown file (block 'alternatives')")
    a = ap.parse_args(argv)
    alt = run(N_IN, N_OUT, a.budget_ms)
    bench_report.publish(a.md, "alternatives", report(alt, bench_report.command("bench_alternatives", argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
