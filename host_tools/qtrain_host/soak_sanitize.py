"""Every operator's C kernels under AddressSanitizer + UndefinedBehaviorSanitizer,
checked against the golden model (issue 6 item 2).

    python -m qtrain_host.soak_sanitize [--cases 2000] [--seed 1] [--ops conv,loss]

natmod/kernels/*.c (plain C99) are built for the host as one shared library
with gcc -fsanitize=address,undefined,float-cast-overflow
-fno-sanitize-recover=all (any report aborts), then driven through ctypes by
a child Python (libasan preloaded) with random shapes, geometries, scales,
zero points, DSGU selections and values, extremes included:

  dense     forward, error propagation (row subsets), update (every rounding
            mode, per tensor / per row), batch gradient, top-k selection
  conv      Conv2d and ConvTranspose2d (stride, padding, output padding):
            uint8 forward (+ReLU, bias), ReLU mask, error propagation
            (channel subsets), batch gradient, batch-1 update (every
            rounding mode); float32 forward/backward; mixed (float errors)
            ReLU mask, error propagation and gradient, and the fused mixed
            batch-1 update bit-exact against its batch path (grad_mixed,
            conv_swap_axes, update_rows_mixed); DSGU channel scores + k + top-k
  loss      sigmoid + BCE (uint8 / float logits, uint8 / float error, with and
            without the LUT), softmax + CE
  latent    reparameterization + KL forward/backward (drawn or given eps,
            uint8 / float tensors)
  quant     qparams from a range, fixed-point multipliers, observe/update,
            re-map, floor/round/sqrt, CRC-32, update_rows_u8 (batch path,
            every rounding mode) and the weight range update
  dense_float  Dense float32 and mixed mode: forward, ReLU masks, error
            propagation, batch-1 updates, batch gradients + update_rows_f32 /
            update_rows_mixed, against a float64 standardized step (mixed:
            within one weight step of it, plus half a step of the re-map)
  select    DSGU with the ReLU mask fused in: dense_select_rows_u8 (no y, or
            masking all / none / some rows; both sides of its counting
            table) and conv_relu_mask_scores_u8 + dsgu_k + top-k, k at 1 and
            at all, against the golden mask then selection

Integer paths (and the float32 heads, whose golden model mirrors every
float operation) must be bit-exact; the float32/mixed conv paths (summed in
another order) within (terms + 2) * 2^-24 * sum|terms| of float64.
Buffers are allocated at their exact size (numpy's malloc is ASan's), so a
read or write past the end is reported.  Prints one @result line; exit 1 on
any finding (sanitizer report or mismatch).  The quick subset runs in
`make test` (tests/test_kernels_sanitize.py), the long run in `make soak`
(soak-sanitize).
"""
import argparse
import ctypes as C
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from . import paths
from .soak_fuzz import CFLAGS, KERNELS, findings

OPS = ("dense", "conv", "loss", "latent", "quant", "dense_float", "select")
SANITIZE = "-fsanitize=address,undefined,float-cast-overflow"


def _gcc_lib(name):
    p = subprocess.run(["gcc", "-print-file-name=" + name], capture_output=True, text=True).stdout.strip()
    return p if os.path.isabs(p) and os.path.exists(p) else None


def available():
    """'' if gcc with AddressSanitizer is here, else why not."""
    if shutil.which("gcc") is None:
        return "no gcc"
    if _gcc_lib("libasan.so") is None:
        return "gcc without AddressSanitizer (libasan)"
    return ""


def build(out_dir):
    """natmod/kernels/*.c -> out_dir/libqtk_san.so.  RuntimeError with the log."""
    so = os.path.join(out_dir, "libqtk_san.so")
    cmd = ["gcc"] + CFLAGS + ["-Wshadow", "-Wdouble-promotion", "-shared", "-fPIC", SANITIZE,
                              "-fno-sanitize-recover=all", "-o", so] + sorted(glob.glob(os.path.join(KERNELS, "*.c")))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError("soak_sanitize: build failed:\n" + " ".join(cmd) + "\n" + p.stdout[-4000:])
    return so


def run(cases=2000, seed=1, ops=OPS, log=print, timeout=3600):
    """Build, run `cases` random cases of each op in a sanitized child.
    -> dict(cases={op: n}, mismatches=[str], memory=[str], ub={line: msg},
    crashed=str ('' or where the child died), tail=str)."""
    why = available()
    if why:
        raise RuntimeError("soak_sanitize: " + why)
    tmp = tempfile.mkdtemp(prefix="qtrain-sanitize-")
    try:
        so = build(tmp)
        env = dict(os.environ, LD_PRELOAD=_gcc_lib("libasan.so"), ASAN_OPTIONS="detect_leaks=0",
                   UBSAN_OPTIONS="print_stacktrace=1", PYTHONPATH=os.path.join(paths.ROOT, "host_tools"))
        cmd = [sys.executable, "-m", "qtrain_host.soak_sanitize", "--child", so, "--cases", str(cases),
               "--seed", str(seed), "--ops", ",".join(ops)]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                           timeout=timeout, errors="replace")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = p.stdout
    done = {m.group(1): int(m.group(2)) for m in re.finditer(r"^@op (\w+) cases=(\d+)", out, re.M)}
    mism = re.findall(r"^@mismatch (.*)$", out, re.M)
    mem, ub = findings(out)
    crashed = ""
    if p.returncode != 0 and "@end" not in out:
        at = re.findall(r"^@case (.*)$", out, re.M)
        crashed = "child died (status %d) in case %s" % (p.returncode, at[-1] if at else "?")
    return dict(cases=done, mismatches=mism, memory=mem, ub=ub, crashed=crashed,
                tail=out[-4000:] if (crashed or mem or ub) else "")


def result_line(r):
    return ("@result sanitize cases=%d %s mismatches=%d memory_errors=%d ub_lines=%d crashed=%d"
            % (sum(r["cases"].values()), " ".join("%s=%d" % kv for kv in sorted(r["cases"].items())),
               len(r["mismatches"]), len(r["memory"]), len(r["ub"]), int(bool(r["crashed"]))))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.soak_sanitize", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000, help="random cases per operator group")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of " + ",".join(OPS))
    ap.add_argument("--child", help=argparse.SUPPRESS)   # the sanitized library: run the cases here
    a = ap.parse_args(argv)
    ops = [o for o in a.ops.split(",") if o]
    bad = [o for o in ops if o not in OPS]
    if bad:
        ap.error("unknown op(s) %s; choose from %s" % (",".join(bad), ",".join(OPS)))
    if a.child:
        from . import soak_sanitize_cases
        return soak_sanitize_cases.main(a.child, ops, a.cases, a.seed)
    r = run(a.cases, a.seed, ops)
    for m in r["mismatches"]:
        print("soak_sanitize: MISMATCH: " + m)
    for m in r["memory"]:
        print("soak_sanitize: MEMORY ERROR: " + m)
    for line, msg in sorted(r["ub"].items()):
        print("soak_sanitize: UNDEFINED BEHAVIOUR: %s: %s" % (line, msg))
    if r["crashed"]:
        print("soak_sanitize: " + r["crashed"])
    if r["tail"]:
        print(r["tail"])
    print(result_line(r))
    return 1 if (r["mismatches"] or r["memory"] or r["ub"] or r["crashed"]) else 0


if __name__ == "__main__":
    sys.exit(main())
