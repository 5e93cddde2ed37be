"""Coverage-guided fuzzing of the C kernels (issue 6 item 2).

    python -m qtrain_host.soak_fuzz [--seconds 600] [--jobs 1]

Builds natmod/fuzz/fuzz_kernels.c with every kernel source using clang
-fsanitize=fuzzer,address,undefined (`make soak-fuzz` installs clang and
its libFuzzer runtime first), runs it for --seconds with the corpus kept in
out/soak/fuzz/corpus, and prints the executions, the coverage reached, the
memory errors (AddressSanitizer: the run stops, the input is saved next to
the corpus) and each source line where UndefinedBehaviorSanitizer reported
something (it goes on after a report, so one run lists them all).
Exit status 1 on any finding.

`random_inputs()` runs the same target without libFuzzer (gcc or clang,
natmod/fuzz/random_main.c feeding pseudo-random inputs): the quick test.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

from . import paths

FUZZ_DIR = os.path.join(paths.ROOT, "natmod", "fuzz")
KERNELS = os.path.join(paths.ROOT, "natmod", "kernels")
OUT = os.path.join(paths.ROOT, "out", "soak", "fuzz")
CFLAGS = ["-std=c99", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
          "-Wno-unused-parameter", "-fno-omit-frame-pointer"]


def sources():
    return [os.path.join(FUZZ_DIR, "fuzz_kernels.c")] + sorted(glob.glob(os.path.join(KERNELS, "*.c")))


def build(cc, sanitize, extra_src=(), out_name="fuzz_kernels", out_dir=OUT):
    """Compile the target; -> path of the binary.  Raises RuntimeError with the log."""
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, out_name)
    flags = list(CFLAGS)
    if os.path.basename(cc).startswith("clang"):
        flags.append("-Wno-unknown-attributes")   # the kernels' GCC-only optimize attribute
    cmd = [cc] + flags + ["-fsanitize=" + sanitize, "-fsanitize-recover=undefined", "-o", exe] \
        + sources() + list(extra_src)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError("soak_fuzz: build failed:\n" + " ".join(cmd) + "\n" + p.stdout[-4000:])
    return exe


UB_RE = re.compile(r"^(\S+?:\d+):\d+: runtime error: (.*)$", re.M)


def findings(output):
    """-> (memory errors (list of str), {source line: UB message})."""
    mem = re.findall(r"ERROR: AddressSanitizer: [^\n]*", output)
    ub = {}
    for m in UB_RE.finditer(output):
        ub.setdefault(os.path.relpath(m.group(1), paths.ROOT) if os.path.isabs(m.group(1)) else m.group(1),
                      m.group(2))
    return mem, ub


def env():
    e = dict(os.environ)
    e["UBSAN_OPTIONS"] = "halt_on_error=0:print_stacktrace=0"
    e["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    return e


def run_libfuzzer(seconds=600, jobs=1, log=print):
    cc = shutil.which("clang")
    if cc is None:
        raise SystemExit("soak_fuzz: clang not found (make soak-fuzz installs it: clang libclang-rt-dev)")
    exe = build(cc, "fuzzer,address,undefined")
    corpus = os.path.join(OUT, "corpus")
    os.makedirs(corpus, exist_ok=True)
    cmd = [exe, "-max_total_time=%d" % seconds, "-print_final_stats=1", "-max_len=4096",
           "-artifact_prefix=" + OUT + os.sep, corpus]
    if jobs > 1:
        cmd[1:1] = ["-jobs=%d" % jobs, "-workers=%d" % jobs]
    log("soak_fuzz: " + " ".join(os.path.relpath(c, paths.ROOT) if c.startswith(paths.ROOT) else c for c in cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(),
                       cwd=OUT, errors="replace")
    out = p.stdout
    if jobs > 1:
        for f in glob.glob(os.path.join(OUT, "fuzz-*.log")):
            with open(f, errors="replace") as fh:
                out += fh.read()
    execs = sum(int(v) for v in re.findall(r"stat::number_of_executed_units:\s*(\d+)", out))
    cov = max([int(v) for v in re.findall(r"\bcov: (\d+)", out)] or [0])
    mem, ub = findings(out)
    crashed = p.returncode != 0 and not mem and "-max_total_time" not in out[-200:]
    return dict(execs=execs, cov=cov, seconds=seconds, corpus=len(os.listdir(corpus)), mem=mem, ub=ub,
                returncode=p.returncode, tail=out[-3000:] if (mem or p.returncode) else "", crashed=crashed)


def random_inputs(runs=2000, seed=1, cc=None, out_dir=OUT):
    """The target on pseudo-random inputs (no libFuzzer): -> (output, returncode)."""
    cc = cc or shutil.which("gcc") or shutil.which("clang")
    exe = build(cc, "address,undefined", [os.path.join(FUZZ_DIR, "random_main.c")], "fuzz_random", out_dir)
    p = subprocess.run([exe, str(runs), str(seed)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=env(), errors="replace", timeout=600)
    return p.stdout, p.returncode


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.soak_fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args(argv)
    r = run_libfuzzer(a.seconds, a.jobs)
    for m in r["mem"]:
        print("soak_fuzz: MEMORY ERROR: " + m)
    for line, msg in sorted(r["ub"].items()):
        print("soak_fuzz: UNDEFINED BEHAVIOUR: %s: %s" % (line, msg))
    if r["tail"] and (r["mem"] or r["crashed"]):
        print(r["tail"])
    print("@result fuzz execs=%d seconds=%d coverage=%d corpus=%d memory_errors=%d ub_lines=%d"
          % (r["execs"], r["seconds"], r["cov"], r["corpus"], len(r["mem"]), len(r["ub"])))
    return 1 if (r["mem"] or r["ub"] or r["crashed"]) else 0


if __name__ == "__main__":
    sys.exit(main())
