"""Streaming throughput on the emulated boards and the epoch times it
implies on the real ones (issue 5 item 6).

    python -m qtrain_host.bench_stream --md docs/BENCHMARKS.md

Measures samples/s read by the board (its clock, QEMU without -icount) from
the MNIST training stream (the shipped subset's, converted to out/bench-stream):
  - `mpremote mount`: qtrain.data.Stream on the mounted file, in file order
    and shuffled (the user's path of docs/DATA_FORMAT.md);
  - the framed serial protocol (docs/SERIAL_PROTOCOL.md): zero-run encoded
    (DATAZ) and plain frames, through qtrain_host.serial_stream.bench.
Then the time of one epoch of 60 000 samples on each real board, as
N x (1 / samples/s + the training step), with the uint8 ConvVAE step in ms
estimated from its QEMU instruction count (table b of the bench block in
docs/BENCHMARKS.md, its trained-state row when it has one) at CPI = 1 and the real board's clock (boards/*/board.json).  The read rates are
the emulated UART's, which is slower than a real board's USB CDC link:
an upper bound for the I/O part on hardware.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile

from . import bench_accuracy, bench_report, datasets, paths
from .bench import board_clock
from .qemu import boards_arg

BOARDS = ("qemu-m0", "qemu-m4")
EPOCH = 60000

MOUNT_SCRIPT = """
import time
from qtrain.data import Stream
for shuffle in (False, True):
    s = Stream("train.qtds", shuffle=shuffle, seed=1)
    s.next()
    t = time.ticks_ms()
    for _ in range(%(n)d - 1):
        s.next()
    dt = time.ticks_diff(time.ticks_ms(), t)
    print("MOUNT shuffle=%%d n=%%d ms=%%d" %% (shuffle, %(n)d - 1, dt))
    s.close()
"""


def mount_rate(board, data_dir, n, log):
    """{False: samples/s in file order, True: shuffled} through mpremote mount."""
    from . import qemu
    stage = tempfile.mkdtemp(prefix="qtrain-mount-bench-")
    try:
        # a copy: mpremote mount serves no symlink that leaves the directory
        shutil.copy(os.path.join(data_dir, "train.qtds"), stage)
        os.makedirs(os.path.join(stage, "qtrain"))
        for name in ("__init__.py", "data.py", "data_open.py"):
            shutil.copy(os.path.join(paths.PYTHON_DIR, "qtrain", name), os.path.join(stage, "qtrain", name))
        shutil.copy(paths.natmod_path(qemu.board_config(board)["arch"]), stage)
        script = os.path.join(stage, "read_mount.py")
        with open(script, "w") as f:
            f.write(MOUNT_SCRIPT % {"n": n})
        for attempt in range(3):
            rc, out = qemu.mpremote_run(board, script, mount=stage, timeout=1800, capture=True, icount=False)
            if rc == 0:
                break
            # mpremote's board-side hook gives up after a while without an answer
            # from the host ("timeout waiting for remote"): a busy host; try again
            log("bench_stream: %s mount attempt %d failed: %s" % (
                board, attempt + 1, (out or "").strip().splitlines()[:2]))
        else:
            return None
        res = {}
        for m in re.finditer(r"MOUNT shuffle=(\d) n=(\d+) ms=(\d+)", out):
            res[bool(int(m.group(1)))] = int(m.group(2)) * 1000.0 / max(1, int(m.group(3)))
        log("bench_stream: %s mount %s" % (board, res))
        return res
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def framed_rate(board, data_dir, n, compress, log):
    from . import serial_stream
    r = serial_stream.bench(board, os.path.join(data_dir, "train.qtds"), n=n, window=8, compress=compress,
                            timeout=1800)
    log("bench_stream: %s framed compress=%s %.1f samples/s" % (board, compress, r["samples_per_s"]))
    return r["samples_per_s"]


def step_instructions(md):
    """{board: uint8 ConvVAE step in instructions} from table b of the bench block of `md`:
    its trained-state row (the step a training run makes) if it has one, else its uint8 row."""
    out = {}
    if not os.path.exists(md):
        return out
    text = open(md).read()
    for board in BOARDS:
        for mode in (r"uint8 \(trained\)", r"uint8(?: \(synthetic\))?"):
            m = re.search(r"^\| %s \| %s \| [^|]+\| [^|]+\| [^|]+\| ([0-9.]+) ([kM]) \|" % (board, mode), text, re.M)
            if m:
                out[board] = float(m.group(1)) * (1e6 if m.group(2) == "M" else 1e3)
                break
    return out


RECORD_BYTES = 789   # one MNIST record: 784 pixels, label, CRC (docs/DATA_FORMAT.md)


def _r(v):
    return "failed (3 tries)" if v is None else "%.1f" % v


def _h(s):
    return "%.1f h" % (s / 3600) if s >= 3600 else "%.0f min" % (s / 60)


def report(R, cmd):
    L = ["Command: `%s`  " % cmd, bench_report.provenance(), ""]
    L.append("Samples/s read on the emulated boards (board clock; MNIST records of 789 bytes, ~205 zero-run "
             "encoded; %d samples per figure through the mount, %d through the framed protocol, window 8):"
             % (R["n_mount"], R["n_framed"]))
    L.append("")
    L.append("| board | mount, file order | mount, shuffled | framed, plain DATA | framed, DATAZ (zero-run) |")
    L.append("|---|---:|---:|---:|---:|")
    for b in R["boards"]:
        r = R["rates"][b]
        L.append("| %s | %s | %s | %.1f | %.1f |" % (b, _r(r["mount"]), _r(r["mount_shuffled"]), r["plain"], r["dataz"]))
    L.append("")
    L.append("One epoch of %d samples on the real boards = reading (at the emulated link's rate above) + "
             "training (the uint8 ConvVAE step, table b of the bench block (its trained state when it has one), "
             "**estimated** at CPI = 1: "
             "instructions / clock).  Reading and training add up (the protocols do not prefetch)." % EPOCH)
    L.append("")
    L.append("| board (instructions from) | step (est.) | epoch: training | + mount, shuffled | + framed DATAZ |")
    L.append("|---|---:|---:|---:|---:|")
    for b in R["boards"]:
        name, hz = board_clock(b)
        name = "%s (%g MHz)" % (name, hz / 1e6)
        ins = R["step_instructions"].get(b)
        r = R["rates"][b]
        if ins is None:
            L.append("| %s (%s) | no step figure in the bench block | | | |" % (name, b))
            continue
        st = ins / hz
        L.append("| %s (%s) | %.0f ms | %s | %s | %s |" % (
            name, b, 1e3 * st, _h(EPOCH * st),
            _h(EPOCH * (st + 1 / r["mount_shuffled"])) if r["mount_shuffled"] else "- (mount failed)",
            _h(EPOCH * (st + 1 / r["dataz"]))))
    L.append("")
    # The link's own rate in this run (789-byte records at the plain DATA
    # rate), not a fixed range: it follows the host (see the text).
    uart = ", ".join("%s %.0f KB/s" % (b, R["rates"][b]["plain"] * RECORD_BYTES / 1000) for b in R["boards"])
    L.append("In this run the emulated UART moved %s (plain DATA records).  Its rate follows the host, not the "
             "board: QEMU feeds it one byte per main-loop iteration, so a busy host gives several times lower "
             "figures (up to 5x between runs on this 2-CPU host, with a test suite beside it or not).  A real "
             "board's USB CDC link is another link: the read part of these epoch times is indicative only."
             % uart)
    return "\n".join(L)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.bench_stream", description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=boards_arg, default=" ".join(BOARDS), help="emulated boards, separated by spaces or commas (default: %(default)s)")
    ap.add_argument("--n-mount", type=int, default=60, help="samples per mount figure (~7/s)")
    ap.add_argument("--n-framed", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(paths.ROOT, "out", "bench-stream"))
    ap.add_argument("--md", default="", help="write the tables into this Markdown file (block 'stream')")
    ap.add_argument("--from-json", default="", help="only redo the report from a results.json (step "
                    "figures read again from the bench block)")
    a = ap.parse_args(argv)
    log = lambda s: print(s, flush=True)  # noqa: E731
    md = a.md or os.path.join(paths.ROOT, "docs", "BENCHMARKS.md")
    if a.from_json:
        with open(a.from_json) as f:
            R = json.load(f)
        R["step_instructions"] = step_instructions(md)
        return write(R, a, R.get("cmd", "python -m qtrain_host.bench_stream --md docs/BENCHMARKS.md"))
    os.makedirs(a.out, exist_ok=True)
    data_dir = bench_accuracy.prepare(datasets.SHIPPED, a.out, log)
    boards = list(a.boards)
    R = {"boards": boards, "n_mount": a.n_mount, "n_framed": a.n_framed, "rates": {},
         "step_instructions": step_instructions(md)}
    for b in boards:
        m = mount_rate(b, data_dir, a.n_mount, log) or {False: None, True: None}
        R["rates"][b] = {"mount": m[False], "mount_shuffled": m[True],
                         "plain": framed_rate(b, data_dir, a.n_framed, False, log),
                         "dataz": framed_rate(b, data_dir, a.n_framed, True, log)}
    R["cmd"] = bench_report.command("bench_stream", argv)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(R, f, indent=1)
    return write(R, a, R["cmd"])


def write(R, a, cmd):
    bench_report.publish(a.md, "stream", report(R, cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
