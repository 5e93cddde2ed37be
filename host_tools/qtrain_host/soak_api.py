"""Fuzzed API (issue 6 item 1): random calls at every entry point of the
native modules on the Unix port; only Python exceptions, no crash, no hang.

    python -m qtrain_host.soak_api [--calls 100000] [--batch 5000] [--seed 1]

Entry points are found with dir() on `_qtrain` (and `_qtrain_float` when it
exists), so new ones are covered without editing this file.  Valid argument
lists are not written by hand: each batch first trains small models of
every kind and mode through the `qtrain` package (MLP and ConvVAE in uint8,
mixed and float32, with DSGU and per-row variants, the classifier head)
with the modules wrapped, and keeps a copy of the arguments of the first
calls of each function.  A fuzz call takes a fresh copy of such a recorded
call (85% of calls, when the function has one) and changes 0-3 things:
  an argument replaced by a random value of any kind; a buffer resized
  (0, 1, n-1, n+1, n/2, 2n) or given another typecode; float buffers
  poisoned with NaN/inf/-0/denormals/1e38 (quantization records' scale
  and zero point included); random bytes; integers at 0/-1/2^31/2^63;
  geometry tuples with one field broken; two buffer arguments made the
  same object (aliased input and output); an unaligned memoryview slice;
  an argument dropped or added.
The other calls get random argument lists of random length.  Each batch
runs in one micropython process with a timeout; a batch that crashes or
hangs is rerun with a line per call to name the call.
Prints per entry point the calls, how many returned normally, the recorded
templates, and `nonfinite`: calls that returned normally although a
quantization record's scale or zero point had been made NaN/inf (garbage
accepted silently); then exceptions by type and crashes/hangs.  Exit
status 1 if any batch crashed or hung.
"""
import argparse
import re
import sys
import time

from . import runner

DEVICE = r"""
import sys, gc, random, struct
from array import array
SEED = @SEED@
NCALLS = @NCALLS@
TRACE = @TRACE@
random.seed(SEED)
R = random.getrandbits

# ---- record the package's own calls ------------------------------------------
TEMPL = {}      # (module, name) -> [arg tuples]
KEEP = 3

def tc(v):
    # typecode of an array (MicroPython's array has no .typecode)
    return repr(v[:0])[7]

def cp(v):
    if isinstance(v, bytearray):
        return bytearray(v)
    if type(v) is array:
        return array(tc(v), v)
    return v    # scalars, tuples, None, memoryviews (kept by reference)

class Recorder:
    def __init__(self, mod, name):
        self._m = mod
        self._n = name
    def __getattr__(self, a):
        f = getattr(self._m, a)
        if a.startswith('_') or not callable(f):
            return f
        key = (self._n, a)
        def wrapped(*args):
            t = TEMPL.setdefault(key, [])
            if len(t) < KEEP:
                t.append(tuple(cp(x) for x in args))
            return f(*args)
        return wrapped

MODS = {}
for mname in ('_qtrain', '_qtrain_float'):
    try:
        m = __import__(mname)
    except ImportError:
        continue
    MODS[mname] = m
    sys.modules[mname] = Recorder(m, mname)

from qtrain import models, checkpoint
from qtrain.layers import Options

img = bytearray(784)
for i in range(784):
    img[i] = (i * 37 + (i >> 5) * 11) & 255 if 150 < i < 650 else 0
setups = 0
for kind in ('mlp', 'conv'):
    for mode in ('uint8', 'mixed', 'float32'):
        for extra in ({}, {'dsgu': (0.5, 1.0), 'per_row': True, 'rounding': 'nearest'}):
            try:
                opt = Options(mode=mode, **extra)
                vae = models.build_vae(kind, opt, hidden=16, latent=3)
                for _ in range(2):
                    vae.train_step(img)
                vae.evaluate(img)
                mu = array('f', [0.0] * 3)
                vae.encode(img, mu)
                vae.decode(mu, bytearray(784))
                head = models.Head(vae, hidden=12, opt=opt)  # no float tensor of 8 items: 8 = a record
                head.train_step(img, 3)
                head.predict(img)
                setups += 1
            except Exception as e:
                print('@setup-error', kind, mode, extra, repr(e))
            vae = head = None
            gc.collect()
for mname, m in MODS.items():
    sys.modules[mname] = m

FUNCS = []
for mname, m in sorted(MODS.items()):
    for a in sorted(dir(m)):
        if not a.startswith('_') and callable(getattr(m, a)):
            FUNCS.append((mname, a, getattr(m, a)))
# Entry points the package never calls get a hand-written valid call here.
def fn(name):
    for m in MODS.values():
        if hasattr(m, name):
            return getattr(m, name)
u8 = lambda: array('f', [0.02, 3.0, -0.06, 5.0, 0.1, 0, 0, 0])
bq = lambda: array('f', [1 / 65536, 0, 0, 0, 0, 0, 0, 0])
ub = lambda n: bytearray((i * 7 + 3) & 255 for i in range(n))
ai = lambda n: array('i', (i - n // 2 for i in range(n)))
af = lambda n: array('f', ((i % 5) * 0.1 - 0.2 for i in range(n)))
hp = lambda: array('f', [0.01, 0.85, 0.02])
rng1 = lambda: array('I', [7])
G = (2, 6, 6, 3, 3, 3, 2, 2, 1, 1)             # 2x6x6 -> 3x3x3, 54 weights
GT = (3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1)      # 3x3x3 -> 2x6x6, 54 weights
HAND = {
    'dense_grad_acc_u8': [(ub(4), u8(), ub(6), u8(), ai(24), ai(4), None, 0)],
    'dense_grad_acc_f32': [(af(4), af(6), af(24), af(4), None, 0)],
    'dense_grad_acc_mixed': [(af(4), ub(6), u8(), af(24), af(4), None, 0)],
    'update_rows_u8': [(ai(24), array('f', [0.01, 0.1]), ub(24), u8(), ai(4), ai(4), bq(), hp(), 2, af(13), rng1())],
    'update_rows_mixed': [(af(24), ub(24), u8(), af(4), ai(4), bq(), hp(), 2, af(13), rng1())],
    'conv_select_u8': [(ub(27), u8(), array('f', [0.5, 1.0]), array('f', [0.0]), ai(3), array('I', [0] * 6))],
    'conv_swap_axes': [(ub(54), ub(54), 3, 2, 9), (af(54), af(54), 2, 3, 9)],
    'conv2d_grad_u8': [(ub(27), u8(), ub(72), u8(), ai(54), ai(3), G, None, 0, ub(4000))],
    'conv_transpose2d_grad_u8': [(ub(72), u8(), ub(27), u8(), ai(54), ai(2), GT, None, 0, ub(4000))],
    'conv2d_grad_mixed': [(af(27), ub(72), u8(), af(54), af(3), G, None, 0)],
    'conv_transpose2d_grad_mixed': [(af(72), ub(27), u8(), af(54), af(2), GT, None, 0)],
    'conv2d_backward_mixed': [(af(27), ub(27), u8(), ub(54), u8(), af(72), G, None, 0)],
    'conv_transpose2d_backward_mixed': [(af(72), ub(72), u8(), ub(54), u8(), af(27), GT, None, 0)],
    'conv2d_update_mixed': [(af(27), ub(72), u8(), ub(54), u8(), ai(3), bq(), G, None, 0, hp(), 6, af(11),
                             rng1(), ub(4000))],
    'conv_transpose2d_update_mixed': [(af(72), ub(27), u8(), ub(54), u8(), ai(2), bq(), GT, None, 0, hp(), 6,
                                       af(9), rng1(), ub(4000))],
    'abi': [()],
    'crc32': [(b'abc',), (bytearray(100), 7)],
    'qp_from_range': [(array('f', [0, 0, -1.0, 1.0, 0.1, 0, 0, 0]),)],
    'remap_u8': [(bytearray(range(40)), u8(), u8())],
    'rng_seed': [(array('I', [1]), 12345)],
    'rng_normal': [(array('I', [7]), array('f', [0.0] * 9))],
    'vmath': [(0, array('f', [0.5] * 10), array('f', [0.0] * 10)),
              (2, array('f', [0.5] * 10), array('f', [0.0] * 10))],
    'conv2d_out_shape': [((2, 6, 6, 3, 3, 3, 2, 2, 1, 1),)],
    'conv_transpose2d_out_shape': [((3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1),)],
}
for mname, a, f in FUNCS:
    if (mname, a) not in TEMPL and a in HAND:
        TEMPL[(mname, a)] = HAND[a]
# Every template, unchanged, must run: then the mutants reach the kernels.
for mname, a, f in FUNCS:
    for t in TEMPL.get((mname, a), ()):
        try:
            f(*[cp(x) for x in t])
        except Exception as e:
            print('@templ-bad', a, repr(e))

# ---- random values -------------------------------------------------------------
NF = (float('nan'), float('inf'), -float('inf'), -0.0, 0.0, 1e-45, 1e-38, 3e38, -1.0, 1e30, 255.5)
NI = (0, -1, 1, 2, 255, 256, 65535, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 2**63, -2**64, 10**30)
TCS = 'BbhHiIf'
LENS = (0, 1, 2, 3, 4, 7, 8, 9, 16, 27, 54, 72, 100, 784, 1568, 4096)

def rfloat():
    if R(2):
        return random.choice(NF)
    return struct.unpack('<f', struct.pack('<I', R(32)))[0]

def rbuf(n=None, t=None):
    n = random.choice(LENS) if n is None else n
    t = t or random.choice(TCS)
    if t == 'B' and R(1):
        b = bytearray(n)
    else:
        b = array(t, bytes(n * (4 if t in 'iIf' else 2 if t in 'hH' else 1)))
    for i in range(min(n, 8)):
        poke(b, R(16) % max(n, 1))
    return b

def poke(b, i):
    # one element of a buffer set to a random / extreme value
    if i >= len(b):
        return
    if isinstance(b, bytearray) or isinstance(b, memoryview):
        b[i] = R(8)
    elif tc(b) == 'f':
        b[i] = rfloat()
    else:
        t = tc(b)
        bits = {'b': 8, 'B': 8, 'h': 16, 'H': 16}.get(t, 32)
        v = R(bits)
        if t in 'bhi' and v >= 1 << (bits - 1):
            v -= 1 << bits
        b[i] = v

def rqp():
    q = array('f', [random.choice((0.02, 1e-30, 1e30, 0.0, -1.0)), random.choice((0, 3, 128, 255, 256, -1, 2.5)),
                    -1, 1, random.choice((0.0, 0.1, 1.0)), 0, 0, 0])
    if R(1):
        q[R(3)] = rfloat()
    return q

def rtuple():
    n = random.choice((3, 9, 10, 11, 12, 13))
    return tuple(random.choice((0, 1, 2, 3, 5, 28, -1, 200, 30000, 2**31)) for _ in range(n))

def rarg():
    k = R(4)
    if k == 0:
        return random.choice((None, True, 'x', b'', [1, 2], (1, 2), {}, 1.5, rfloat(), random.choice(NI)))
    if k == 1:
        return rqp() if R(1) else rtuple()
    return rbuf()

def isbuf(v):
    return isinstance(v, (bytearray, memoryview)) or type(v) is array

# ---- mutations of a recorded call -----------------------------------------------
def mutate(args):
    n = len(args)
    k = R(4)
    if k == 0 or n == 0:
        if n and R(1):
            args.pop(R(8) % n)
        else:
            args.insert(R(8) % (n + 1), rarg())
        return
    i = R(8) % n
    v = args[i]
    op = R(3)
    if isbuf(v) and not isinstance(v, memoryview):
        t = 'B' if isinstance(v, bytearray) else tc(v)
        L = len(v)
        if op == 0:    # resize
            args[i] = rbuf(random.choice((0, 1, max(L - 1, 0), L + 1, L // 2, 2 * L, L + 3)), t)
        elif op == 1:  # another typecode, same count
            args[i] = rbuf(L, random.choice(TCS))
        elif op == 2 and t == 'f':   # poison: NaN/inf/extremes, records' scale/zero first
            for j in range(1 + R(2)):
                p = R(1) if R(1) else R(16)
                if p < L:
                    v[p] = random.choice(NF)
        elif op == 3:  # alias with another buffer argument
            others = [j for j in range(n) if j != i and isbuf(args[j])]
            if others:
                args[random.choice(others)] = v
        elif op == 4 and L > 1:  # unaligned / shortened view
            args[i] = memoryview(v)[1:] if R(1) else memoryview(v)[:-1]
        else:          # random contents
            for j in range(1 + R(4)):
                poke(v, R(16) % max(L, 1))
    elif isinstance(v, tuple):
        if v and op < 5:
            t = list(v)
            t[R(8) % len(t)] = random.choice(NI + (3, 5, 'x', 1.5))
            args[i] = tuple(t)
        elif op == 5:
            args[i] = v[:-1]
        else:
            args[i] = list(v) + [1]
    elif isinstance(v, float):
        args[i] = random.choice(NF)
    elif isinstance(v, int):
        args[i] = random.choice(NI)
    else:
        args[i] = rarg()

# ---- the fuzz loop ----------------------------------------------------------------
calls = {}
oks = {}
excs = {}
acc_poison = {}
total = 0
for it in range(NCALLS):
    mname, name, f = FUNCS[R(16) % len(FUNCS)]
    t = TEMPL.get((mname, name))
    poisoned = False
    if t and R(8) < 218:
        tmpl = t[R(8) % len(t)]
        args = [cp(a) for a in tmpl]
        for _ in range(R(8) % 4):
            mutate(args)
        # Does the call hand over a quantization record (an 8-float array where
        # the recorded call had one) whose scale or zero point is NaN/inf?
        if len(args) == len(tmpl):
            for i in range(len(args)):
                v = args[i]
                if (type(v) is array and len(v) == 8 and tc(v) == 'f' and type(tmpl[i]) is array
                        and len(tmpl[i]) == 8 and tc(tmpl[i]) == 'f'
                        and not (v[0] - v[0] == 0.0 and v[1] - v[1] == 0.0)):
                    poisoned = True
    else:
        args = [rarg() for _ in range(R(8) % 17)]
    if TRACE:
        print('@call', it, name, len(args))
    calls[name] = calls.get(name, 0) + 1
    total += 1
    try:
        f(*args)
        oks[name] = oks.get(name, 0) + 1
        if poisoned:
            acc_poison[name] = acc_poison.get(name, 0) + 1
    except Exception as e:
        k = type(e).__name__
        excs[k] = excs.get(k, 0) + 1
    args = None
    if it % 500 == 499:
        gc.collect()
print('@setups', setups)
for mname, name, f in FUNCS:
    print('@fn', name, calls.get(name, 0), oks.get(name, 0), len(TEMPL.get((mname, name), ())),
          acc_poison.get(name, 0))
for k in sorted(excs):
    print('@exc', k, excs[k])
print('@done', total)
"""


def script(seed, n, trace=False):
    return (DEVICE.replace("@SEED@", str(seed)).replace("@NCALLS@", str(n))
            .replace("@TRACE@", "1" if trace else "0"))


def run_batch(seed, n, timeout=600, trace=False):
    """One micropython process: -> (status, output); status 'ok', 'crash' or 'hang'."""
    res = runner.run_unix(script(seed, n, trace), timeout=timeout, heapsize="16M")
    if res.returncode == -9 or "[qtrain runner: timeout" in res.output:
        return "hang", res.output
    if res.returncode != 0 or "@done" not in res.output:
        return "crash", res.output
    return "ok", res.output


def parse(output):
    """-> (per-function {name: [calls, ok, templates, accepted_poison]}, {exception: n}, total, setups)."""
    fns, excs = {}, {}
    for m in re.finditer(r"^@fn (\S+) (\d+) (\d+) (\d+) (\d+)", output, re.M):
        fns[m.group(1)] = [int(m.group(i)) for i in range(2, 6)]
    for m in re.finditer(r"^@exc (\S+) (\d+)", output, re.M):
        excs[m.group(1)] = int(m.group(2))
    total = int(re.search(r"^@done (\d+)", output, re.M).group(1))
    setups = int(re.search(r"^@setups (\d+)", output, re.M).group(1))
    return fns, excs, total, setups


def locate(seed, n, timeout):
    """Rerun a failed batch printing each call first: the last one is the culprit."""
    status, out = run_batch(seed, n, timeout=timeout, trace=True)
    calls = re.findall(r"^@call (\d+) (\S+) (\d+)", out, re.M)
    last = calls[-1] if calls else None
    return status, last, out[-2000:]


def fuzz(calls=100000, batch=5000, seed=1, timeout=600, log=print):
    """-> dict with the totals (see main)."""
    fns, excs = {}, {}
    total = 0
    failures = []
    setup_errors = set()
    t0 = time.time()
    nb = (calls + batch - 1) // batch
    for b in range(nb):
        n = min(batch, calls - b * batch)
        s = seed * 100003 + b
        status, out = run_batch(s, n, timeout=timeout)
        for line in re.findall(r"^@(?:setup-error|templ-bad) .*$", out, re.M):
            setup_errors.add(line)
        if status != "ok":
            st2, last, tail = locate(s, n, timeout)
            failures.append((status, s, last, tail))
            log("soak_api: batch %d (seed %d): %s at call %s" % (b, s, status.upper(), last))
            continue
        f, e, t, _ = parse(out)
        for k, v in f.items():
            acc = fns.setdefault(k, [0, 0, 0, 0])
            acc[0] += v[0]
            acc[1] += v[1]
            acc[2] = max(acc[2], v[2])
            acc[3] += v[3]
        for k, v in e.items():
            excs[k] = excs.get(k, 0) + v
        total += t
        log("soak_api: batch %d/%d seed %d: %d calls ok (%.0f s)" % (b + 1, nb, s, t, time.time() - t0))
    return dict(fns=fns, excs=excs, total=total, failures=failures, setup_errors=sorted(setup_errors),
                seconds=time.time() - t0)


def report(r, out=print):
    fns = r["fns"]
    out("%-34s %8s %8s %6s %9s" % ("entry point", "calls", "returned", "templ", "nonfinite"))
    for k in sorted(fns):
        c, ok, t, p = fns[k]
        out("%-34s %8d %8d %6d %9d" % (k, c, ok, t, p))
    out("entry points: %d, without a valid template: %s" %
        (len(fns), ", ".join(k for k in sorted(fns) if fns[k][2] == 0) or "none"))
    out("exceptions: " + ", ".join("%s %d" % kv for kv in sorted(r["excs"].items())))
    for e in r["setup_errors"]:
        out("template problem: " + e)
    out("@result api calls=%d entry_points=%d crashes=%d hangs=%d seconds=%.0f" % (
        r["total"], len(fns), sum(1 for f in r["failures"] if f[0] == "crash"),
        sum(1 for f in r["failures"] if f[0] == "hang"), r["seconds"]))
    for status, s, last, tail in r["failures"]:
        out("%s: batch seed %d, last call started: %s\n%s" % (status, s, last, tail))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.soak_api", description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=5000, help="calls per micropython process")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per batch before it counts as a hang")
    a = ap.parse_args(argv)
    r = fuzz(a.calls, a.batch, a.seed, a.timeout)
    report(r)
    return 1 if r["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
