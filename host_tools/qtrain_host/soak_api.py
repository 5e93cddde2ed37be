"""Fuzzed API (issue 6 item 1): hypothesis-driven random calls at every entry
point of the native modules on the Unix port; only Python exceptions, no
crash, no hang.

    python -m qtrain_host.soak_api [--per-entry 100000] [--seed 1]

Entry points are found with dir() on `_qtrain` (and `_qtrain_float` when it
exists), so new ones are covered without editing this file.  Valid argument
lists are not written by hand: the micropython process first trains small
models of every kind and mode through the `qtrain` package (MLP and ConvVAE
in uint8, mixed and float32, with DSGU and per-row variants, the classifier
head) with the modules wrapped, and keeps a copy of the arguments of the
first calls of each function and of up to three later calls whose argument
types (None, buffer, tuple, ...) are new for it: a DSGU selection, a
mask-aware propagation's x, xq (entry points the package never calls get a
hand-written valid call).  It prints each template's argument kinds.

Hypothesis then draws the calls (`@given(st.data())`; an example is a
program calling each entry point of a group of --calls-per-example once, so
every entry point gets the same count).  For each call its strategies
(built from that entry point's template kinds) choose a template (5 in 6)
and 0-3 mutations, each an (op, argument) pair among those that fit the
argument plus two values, s (the op's variant or a kind of value) and v (32
bits: the value, a length, or the seed of a buffer's elements):
  a buffer resized (0, 1, n-1, n+1, n/2, 2n, n+3, any) or given another
  typecode; elements set to extremes or any bits (floats: NaN, inf, -0,
  denormals); a float buffer poisoned, quantization records' scale and
  zero point first; two buffer arguments made the same object (aliased
  input and output); an unaligned or shortened memoryview; a geometry
  tuple's field broken, the tuple cut or extended; an int set to an
  extreme (0/-1/2^31/2^63/10^30) or any value, a float to a special or any
  float32; an argument replaced by any value (None/bool/str/bytes/list/
  dict, ints, floats, tuples, quantization records, buffers of any
  typecode and length), dropped or one added;
or (1 in 6) a random argument list of such values.  Each hypothesis run (a
fresh engine, seeded from --seed) draws up to --examples-per-run examples
for one group; runs repeat until every entry point has --per-entry calls.
The programs go, as JSON lines, to one micropython process that builds the
arguments, runs the calls in order and acknowledges each program with its
calls' outcomes (the device has no random generator: every choice is
hypothesis').  A program after which the process crashes, or that is not
acknowledged within --timeout s, is rerun alone in a fresh process
printing each call first, to name the call; the run goes on in a new
process.

Prints per entry point the calls, how many returned normally, the recorded
templates, and `nonfinite`: calls that returned normally although a
quantization record's scale or zero point had been made NaN/inf (garbage
accepted silently); then exceptions by type, crashes/hangs and calls/s.
Exit status 1 if any program crashed or hung the process.
"""
import argparse
import collections
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from . import paths, runner

DEVICE = r"""
import sys, gc, struct, json
from array import array
TRACE = @TRACE@

# ---- record the package's own calls ------------------------------------------
TEMPL = {}      # (module, name) -> [arg tuples]
SHAPES = {}     # (module, name) -> the argument shapes kept
KEEP = 3        # the first calls of each function, and then
KEEP_NEW = 3    # up to this many more of a shape not seen yet

def tc(v):
    # typecode of an array (MicroPython's array has no .typecode)
    return repr(v[:0])[7]

def cp(v):
    if isinstance(v, bytearray):
        return bytearray(v)
    if type(v) is array:
        return array(tc(v), v)
    return v    # scalars, tuples, None

def own(v):
    # a recorded argument: a memoryview (a buffer the model lends its layers)
    # becomes a buffer of its own, so mutants do not write into one object
    if type(v) is memoryview and len(v):
        size = len(bytes(v)) // len(v)
        if size == 1:
            return bytearray(v)
        return array('f' if type(v[0]) is float else 'i', v)
    return cp(v)

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
            # the shape: which arguments are None, buffers, ... (not their
            # lengths), so a later call with a DSGU selection or without a
            # mask-aware x is kept although the first calls filled KEEP
            t = TEMPL.setdefault(key, [])
            seen = SHAPES.setdefault(key, [])
            sh = tuple(type(x) for x in args)
            if len(t) < KEEP or (sh not in seen and len(t) < KEEP + KEEP_NEW):
                t.append(tuple(own(x) for x in args))
                if sh not in seen:
                    seen.append(sh)
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
    # the ReLU layers' own mask pass: with Options.mask_aware (default) every
    # ReLU layer the setups build is followed by a mask-aware propagation
    'relu_backward_u8': [(ub(6), u8(), ub(6), u8())],
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
    # (the package calls _qtrain's; _qtrain_float's, for the batch gradients, get these)
    'conv2d_scratch_len': [(G,)],
    'conv_transpose2d_scratch_len': [(GT,)],
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

# ---- the programs hypothesis draws on the host, one JSON line each --------------
# A line [id, [[f, t, ops], ...]]: call FUNCS[f] with a copy of its template t
# changed by ops [[op, position, s, v], ...], or (t = -1) with the argument
# list ops [[s, v], ...].  Hypothesis chooses every op, position, s and v; s
# picks a kind of value (or a variant of the op) and v (32 bits) the value
# itself: an int, a float's bits, a length, or, expanded by xorshift, the
# elements a buffer gets.
OTHERS = (None, True, False, 'x', b'', b'\x01' * 9, [1, 2], (1, 2), {}, 1.5, -1, 0)
NF = (float('nan'), float('inf'), -float('inf'), -0.0, 0.0, 1e-45, 1e-38, 3e38, -1.0, 1e30, 255.5)
NI = (0, -1, 1, 2, 255, 256, 65535, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 2**63, -2**64, 10**30)
EXTREMES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
TFIELDS = (0, 1, 2, 3, 5, 28, -1, 200, 30000, 2**31)
TCS = 'YBbhHiIf'
LENS = (0, 1, 2, 3, 4, 7, 8, 9, 16, 27, 54, 72, 100, 784, 1568, 4096)
SIZE = {'b': 1, 'B': 1, 'h': 2, 'H': 2, 'i': 4, 'I': 4, 'f': 4}
V_INT, V_FLOAT, V_TUPLE, V_QP, V_BUF = 12, 16, 18, 19, 20   # value kinds s (after OTHERS)
NV = V_BUF + len(TCS)

def F(bits):
    return struct.unpack('<f', struct.pack('<I', bits & 0xFFFFFFFF))[0]

def words(v, n):
    # n 32-bit words expanded from v (xorshift32)
    x = (v & 0xFFFFFFFF) or 0x9E3779B9
    out = []
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out.append(x)
    return out

def isbuf(v):
    return isinstance(v, (bytearray, memoryview)) or type(v) is array

def tcode(v):
    return 'Y' if isinstance(v, bytearray) else tc(v)

def put(b, t, p, w):
    # element p of buffer b (typecode t) <- word w: an extreme or any bits
    w = EXTREMES[(w >> 1) % len(EXTREMES)] if w & 1 else w
    if t == 'f':
        b[p] = F(w)
    elif t in 'bhi':
        bits = 8 * SIZE[t]
        w &= (1 << bits) - 1
        b[p] = w - (1 << bits) if w >> (bits - 1) else w
    else:
        b[p] = w & ((1 << 8 * SIZE.get(t, 1)) - 1)

def poke(b, v, n):
    L = len(b)
    if L:
        t = tcode(b)
        ws = words(v, 2 * n)
        for i in range(n):
            put(b, t, ws[2 * i] % L, ws[2 * i + 1])

def mkbuf(t, n, v):
    b = bytearray(n) if t == 'Y' else array(t, bytes(n * SIZE[t]))
    poke(b, v, v % 9)
    return b

def val(s, v):
    s %= NV
    if s < V_INT:
        return OTHERS[s]
    if s == V_INT:
        return NI[v % len(NI)]
    if s == V_INT + 1:
        return v - (1 << 31)
    if s == V_INT + 2:
        return v
    if s == V_INT + 3:
        return (v - (1 << 31)) << 40
    if s == V_FLOAT:
        return NF[v % len(NF)]
    if s == V_FLOAT + 1:
        return F(v)
    if s == V_TUPLE:
        ws = words(v, 14)
        return tuple(TFIELDS[w % len(TFIELDS)] for w in ws[1:1 + (3, 9, 10, 11, 12, 13)[ws[0] % 6]])
    if s == V_QP:
        ws = words(v, 8)
        q = array('f', [(0.02, 1e-30, 1e30, 0.0, -1.0)[ws[0] % 5], (0, 3, 128, 255, 256, -1, 2.5)[ws[1] % 7],
                        -1, 1, (0.0, 0.1, 1.0)[ws[2] % 3], 0, 0, 0])
        if ws[3] & 1:
            q[ws[4] % 3] = F(ws[5]) if ws[6] & 1 else NF[ws[5] % len(NF)]
        return q
    n = LENS[v % 16] if v & 16 else (v >> 5) % 5000
    return mkbuf(TCS[s - V_BUF], n, v)

# template ops; the host sends only those that fit the argument's kind
DROP, INS, SET, RESIZE, RETYPE, POKE, POISON, ALIAS, VIEW, TFIELD, TLEN, SETINT, SETFLOAT = range(13)

def apply(args, op):
    k, i, s, v = op
    n = len(args)
    if k == INS:
        args.insert(i % (n + 1), val(s, v))
        return
    if not n:
        return
    i %= n
    a = args[i]
    plain = isbuf(a) and type(a) is not memoryview
    if k == DROP:
        args.pop(i)
    elif k == RESIZE and plain:            # same typecode, another length
        L = len(a)
        sizes = (0, 1, max(L - 1, 0), L + 1, L // 2, 2 * L, L + 3, v % (2 * L + 9))
        args[i] = mkbuf(tcode(a), sizes[s % 8], v)
    elif k == RETYPE and plain:            # same length, another typecode
        args[i] = mkbuf(TCS[s % 8], len(a), v)
    elif k == POKE and plain:              # elements changed (in the copy)
        poke(a, v, 1 + s % 8)
    elif k == POISON and plain and tcode(a) == 'f' and len(a):   # records' scale, zero point first
        p = s % 2 if s & 2 else s % 16
        if p < len(a):
            a[p] = NF[v % len(NF)] if v & 1 else F(v)
    elif k == ALIAS and isbuf(a):          # two arguments the same object
        j = s % n
        if j != i and isbuf(args[j]):
            args[j] = a
    elif k == VIEW and plain and len(a) > 1:   # unaligned / shortened view
        args[i] = memoryview(a)[1:] if s & 1 else memoryview(a)[:-1]
    elif k == TFIELD and type(a) is tuple and a:
        t = list(a)
        c = NI + (3, 5, 'x', 1.5)
        t[s % len(t)] = c[v % len(c)] if v & 1 else v >> 1
        args[i] = tuple(t)
    elif k == TLEN and type(a) is tuple:
        args[i] = a[:-1] if s & 1 else list(a) + [1]
    elif k == SETINT:                      # an int: an extreme or any
        args[i] = val(V_INT + s % 4, v)
    elif k == SETFLOAT:                    # a float: a special one or any bits
        args[i] = val(V_FLOAT + s % 2, v)
    else:
        args[i] = val(s, v)

def poisoned(args, tmpl):
    # Does the call hand over a quantization record (an 8-float array where
    # the template had one) whose scale or zero point is NaN/inf?
    if len(args) != len(tmpl):
        return False
    for i in range(len(args)):
        v = args[i]
        if (type(v) is array and len(v) == 8 and tc(v) == 'f' and type(tmpl[i]) is array
                and len(tmpl[i]) == 8 and tc(tmpl[i]) == 'f'
                and not (v[0] - v[0] == 0.0 and v[1] - v[1] == 0.0)):
            return True
    return False

def kind(v):
    # an argument's kind for the host's strategies
    if isinstance(v, bytearray):
        return 'Y%d' % len(v)
    if type(v) is array:
        return '%s%d' % (tc(v), len(v))
    if type(v) is tuple:
        return 'T%d' % len(v)
    if type(v) is bool or v is None:
        return 'o'
    if type(v) is int:
        return 'n'
    if type(v) is float:
        return 'r'
    return 'o'

CODE = {'TypeError': 'T', 'ValueError': 'V', 'OverflowError': 'O', 'IndexError': 'I',
        'MemoryError': 'M', 'KeyError': 'K', 'ZeroDivisionError': 'Z', 'AttributeError': 'A'}
for i, (mname, a, f) in enumerate(FUNCS):
    ts = TEMPL.get((mname, a), ())
    print('@f', i, mname, a, len(ts))
    for j, t in enumerate(ts):
        print('@t', i, j, ' '.join(kind(v) for v in t))
print('@ready', len(FUNCS))
while True:
    line = sys.stdin.readline()
    if not line:
        break
    pid, prog = json.loads(line)
    out = []
    for c, (fi, ti, ops) in enumerate(prog):
        mname, name, f = FUNCS[fi]
        bad = False
        if ti >= 0:
            tmpl = TEMPL[(mname, name)][ti]
            args = [cp(x) for x in tmpl]
            for op in ops:
                apply(args, op)
            bad = poisoned(args, tmpl)
        else:
            args = [val(s, v) for s, v in ops]
        if TRACE:
            print('@call', pid, c, name, len(args))
        try:
            f(*args)
            out.append('p' if bad else '.')
        except Exception as e:
            k = type(e).__name__
            if k in CODE:
                out.append(CODE[k])
            else:
                out.append('X')
                print('@other', pid, c, name, k)
        args = None
    print('@ack', pid, ''.join(out))
    gc.collect()
print('@end')
"""


# ---- the device process ------------------------------------------------------------

class DeviceDied(Exception):
    """The micropython process crashed ('crash') or stopped answering ('hang')."""

    def __init__(self, status, output):
        Exception.__init__(self, status)
        self.status = status
        self.output = output


class Device:
    """One micropython process running DEVICE: it records the templates, prints
    the function table, then runs the programs written to its stdin."""

    def __init__(self, trace=False, timeout=60.0, heapsize="16M"):
        runner._check_built("unix")
        self.tmp = tempfile.mkdtemp(prefix="qtrain-soak-api-")
        path = os.path.join(self.tmp, "main.py")
        with open(path, "w") as f:
            f.write(DEVICE.replace("@TRACE@", "1" if trace else "0"))
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([self.tmp, paths.natmod_dir("x64"), paths.PYTHON_DIR, ".frozen"])
        self.p = subprocess.Popen([paths.UNIX_MICROPYTHON, "-X", "heapsize=" + heapsize, path], cwd=self.tmp,
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.timeout = timeout
        self.buf = b""
        self.tail = []          # the last lines, for a report
        self.funcs = []         # [(name, [template kinds])]
        self.setup_errors = []
        self.calls_traced = []  # (program id, call index, name) with trace
        while True:
            line = self.readline(timeout=600)
            if line.startswith("@f "):
                _, i, mname, name, _n = line.split()
                # a name both modules have (abi, ..._out_shape) is the float module's twice
                if any(n == name for n, _ in self.funcs):
                    name = mname + "." + name
                self.funcs.append((name, []))
            elif line.startswith("@t "):
                parts = line.split(" ", 3)
                self.funcs[int(parts[1])][1].append(parts[3].split() if len(parts) > 3 else [])
            elif line.startswith(("@setup-error", "@templ-bad")):
                self.setup_errors.append(line)
            elif line.startswith("@ready"):
                break

    def readline(self, timeout=None):
        """The next line of output; DeviceDied on EOF or after timeout s of silence."""
        timeout = self.timeout if timeout is None else timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                self.kill()
                raise DeviceDied("hang", "\n".join(self.tail))
            chunk = os.read(fd, 65536)
            if not chunk:
                self.kill()
                raise DeviceDied("crash", "\n".join(self.tail) + "\n[exit %s]" % self.p.returncode)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode("utf-8", "replace")
        self.tail = (self.tail + [text])[-30:]
        if text.startswith("@call "):
            self.calls_traced.append(tuple(text.split()[1:4]))
        return text

    def send(self, pid, prog):
        try:
            self.p.stdin.write((json.dumps([pid, prog], separators=(",", ":")) + "\n").encode())
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            raise DeviceDied("crash", "\n".join(self.tail))

    def ack(self):
        """-> (program id, outcome string, [other exception names]) of the next program done."""
        others = []
        while True:
            line = self.readline()
            if line.startswith("@ack "):
                parts = line.split(" ")
                return int(parts[1]), parts[2] if len(parts) > 2 else "", others
            if line.startswith("@other "):
                others.append(line.split()[4])

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.kill()


# ---- hypothesis strategies ------------------------------------------------------------
# A call is a few choices: the template, then per mutation (op, argument
# position) among those that fit the template's argument kinds, s (a kind
# of value / the op's variant) and v (32 bits: the value, a length, or the
# seed of a buffer's elements); see apply() and val() in DEVICE.

TCS = "YBbhHiIf"
DROP, INS, SET, RESIZE, RETYPE, POKE, POISON, ALIAS, VIEW, TFIELD, TLEN, SETINT, SETFLOAT = range(13)
NV = 20 + len(TCS)          # value kinds (val() in DEVICE)
s_choice = st.integers(0, 255)
v_choice = st.integers(0, 2**32 - 1)


def arg_ops(pos, k):
    """(op, position) pairs that fit an argument of template kind k."""
    if k[0] in TCS:
        ops = [RESIZE, RETYPE, POKE, ALIAS, VIEW] + ([POISON, POISON] if k[0] == "f" else [])
    elif k[0] == "T":
        ops = [TFIELD, TFIELD, TLEN]
    elif k == "n":
        ops = [SETINT, SETINT]
    elif k == "r":
        ops = [SETFLOAT, SETFLOAT]
    else:
        ops = [SET]
    return [(op, pos) for op in ops]


def call_strategy(fi, templates):
    """One call of entry point fi: most often (5 in 6, when it has
    templates) a recorded call with 0-3 mutations, else random arguments."""
    rand = st.tuples(st.just(fi), st.just(-1),
                     st.lists(st.tuples(st.integers(0, NV - 1), v_choice), max_size=12))
    if not templates:
        return rand
    tmpl = []
    for ti, kinds in enumerate(templates):
        pairs = [p for i, k in enumerate(kinds) for p in arg_ops(i, k)]
        pairs += [(DROP, i) for i in range(len(kinds))] + [(INS, i) for i in range(len(kinds) + 1)]
        pairs += [(SET, i) for i in range(len(kinds))]
        op = st.tuples(st.sampled_from(pairs), s_choice, v_choice).map(lambda t: (t[0][0], t[0][1], t[1], t[2]))
        tmpl.append(st.tuples(st.just(fi), st.just(ti), st.lists(op, max_size=3)))
    templ = st.one_of(tmpl)
    return st.one_of(templ, templ, templ, templ, templ, rand)


# ---- the run ----------------------------------------------------------------------------

def fuzz(per_entry=100000, calls_per_example=16, examples_per_run=200, seed=1, timeout=60.0,
         inflight=4, log=print):
    """Every entry point gets per_entry calls, drawn by hypothesis: the entry
    points go in groups of calls_per_example; an example is a program
    calling each of a group's entry points once; a hypothesis run (a fresh
    engine, seeded from seed and the run's number) draws up to
    examples_per_run examples for one group.  -> dict with the totals (see
    report)."""
    t0 = time.time()
    dev = Device(timeout=timeout)
    t_start = time.time() - t0
    funcs = dev.funcs
    nf = len(funcs)
    strategies = [call_strategy(i, ts) for i, (_, ts) in enumerate(funcs)]
    target = per_entry * nf
    fns = {name: [0, 0, len(ts), 0] for name, ts in funcs}
    excs = {}
    failures = []
    state = dict(done=0, pid=0, dev=dev, restarts=0)
    pending = collections.OrderedDict()     # program id -> program, sent, not yet acknowledged
    last_log = [t0]

    def account(pid, outcome, others):
        prog = pending.pop(pid)
        for (fi, _, _), o in zip(prog, outcome):
            acc = fns[funcs[fi][0]]
            acc[0] += 1
            if o in ".p":
                acc[1] += 1
                acc[3] += o == "p"
            else:
                k = "other" if o == "X" else DECODE[o]
                excs[k] = excs.get(k, 0) + 1
        for k in others:
            excs[k] = excs.get(k, 0) + 1
        state["done"] += len(prog)
        state["last"] = (pid, prog)

    def died(e):
        # A process found dead while a program was written to it may have
        # acknowledged the programs before the one it died in: read what it
        # printed first (else the culprit named was an innocent program
        # still waiting in the pipe).  Then the first unacknowledged program
        # is the culprit (the last acknowledged one if it died after it, in
        # its gc.collect()): rerun it alone, traced, to name the call; then
        # resend the others to a new process.
        try:
            while pending:
                account(*state["dev"].ack())
        except DeviceDied as e2:
            e = DeviceDied(e.status, e2.output)
        if pending:
            culprit_pid, culprit = next(iter(pending.items()))
        else:
            culprit_pid, culprit = state["last"]
            pending[culprit_pid] = culprit
            state["done"] -= len(culprit)
        status, call, tail = isolate(culprit, timeout)
        failures.append((e.status, culprit_pid, call, tail or e.output[-2000:], culprit))
        log("soak_api: program %d: %s; alone: %s at %s" % (culprit_pid, e.status.upper(), status, call))
        pending.pop(culprit_pid)
        state["done"] += len(culprit)
        state["dev"] = Device(timeout=timeout)
        state["restarts"] += 1
        redo = list(pending.items())
        pending.clear()
        for pid, prog in redo:
            submit(prog, pid)

    def submit(prog, pid=None):
        if pid is None:
            pid = state["pid"]
            state["pid"] += 1
        pending[pid] = prog
        try:
            state["dev"].send(pid, prog)
            while len(pending) > inflight:
                tw = time.time()
                a = state["dev"].ack()
                state["wait"] = state.get("wait", 0) + time.time() - tw
                account(*a)
        except DeviceDied as e:
            died(e)

    def log_progress():
        if time.time() - last_log[0] > 60:
            last_log[0] = time.time()
            log("soak_api: %d/%d calls (%.0f calls/s)" % (state["done"], target,
                                                         state["done"] / (time.time() - t0)))

    def run_group(group, examples, hseed):
        # One hypothesis engine: each example calls every entry point of the
        # group once.  The draws depend on nothing but the group, as
        # hypothesis requires; a program is sent only once fully drawn (an
        # example hypothesis aborts sends nothing).
        def example(data):
            prog = [data.draw(strategies[fi]) for fi in group]
            if sent[group[0]] < per_entry:     # hypothesis may run an example more than asked
                submit(prog)
                sent[group[0]] += 1
            log_progress()
        test = settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck))(given(st.data())(example))
        hypothesis.seed(hseed)(test)()

    # Entry points in groups of calls_per_example; every group gets per_entry
    # examples, over runs of examples_per_run (a fresh engine each).
    groups = [tuple(range(i, min(i + calls_per_example, nf))) for i in range(0, nf, calls_per_example)]
    sent = {g[0]: 0 for g in groups}
    run = 0
    while any(sent[g[0]] < per_entry for g in groups):
        for g in groups:
            left = per_entry - sent[g[0]]
            if left > 0:
                run_group(g, min(left, examples_per_run), seed * 100003 + run)
                run += 1
    while pending:
        try:
            account(*state["dev"].ack())
        except DeviceDied as e:
            died(e)
    state["dev"].close()
    # which side bounds the rate: hypothesis drawing, or the device running
    log("soak_api: device start %.1f s, waited for the device %.1f s of %.0f s" % (
        t_start, state.get("wait", 0), time.time() - t0))
    return dict(fns=fns, excs=excs, total=state["done"], failures=failures, setup_errors=sorted(set(dev.setup_errors)),
                seconds=time.time() - t0, per_entry=per_entry, hypothesis_runs=run, restarts=state["restarts"])


DECODE = {"T": "TypeError", "V": "ValueError", "O": "OverflowError", "I": "IndexError", "M": "MemoryError",
          "K": "KeyError", "Z": "ZeroDivisionError", "A": "AttributeError"}


def isolate(prog, timeout):
    """Run one program alone in a fresh process printing each call first.
    -> (status 'crash' / 'hang' / 'not reproduced', last call started, output tail)."""
    dev = Device(trace=True, timeout=timeout)
    try:
        dev.send(0, prog)
        dev.ack()
    except DeviceDied as e:
        last = dev.calls_traced[-1] if dev.calls_traced else None
        return e.status, last, e.output[-2000:]
    dev.close()
    return "not reproduced", None, ""


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
    counts = [v[0] for v in fns.values()] or [0]
    out("@result api calls=%d entry_points=%d min_per_entry=%d max_per_entry=%d crashes=%d hangs=%d "
        "hypothesis_runs=%d seconds=%.0f calls_per_s=%.0f" % (
            r["total"], len(fns), min(counts), max(counts), sum(1 for f in r["failures"] if f[0] == "crash"),
            sum(1 for f in r["failures"] if f[0] == "hang"), r["hypothesis_runs"], r["seconds"],
            r["total"] / max(r["seconds"], 1e-9)))
    for status, pid, call, tail, prog in r["failures"]:
        out("%s: program %d, call started last when rerun alone: %s\n%s\nprogram: %s" % (
            status, pid, call, tail, json.dumps(prog)))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qtrain_host.soak_api", description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-entry", type=int, default=100000, help="calls to each entry point")
    ap.add_argument("--calls-per-example", type=int, default=16, help="calls in one hypothesis example")
    ap.add_argument("--examples-per-run", type=int, default=200, help="examples of one hypothesis engine")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60, help="seconds without an answer that count as a hang")
    a = ap.parse_args(argv)
    r = fuzz(a.per_entry, a.calls_per_example, a.examples_per_run, a.seed, a.timeout)
    report(r)
    return 1 if r["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
