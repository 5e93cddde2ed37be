"""Thousands of random calls to the loss/latent/rng/vmath entry points on the
Unix port: random argument kinds (buffers of every typecode and length, None,
ints, floats, strings), valid-looking qparams with extreme values.  Every call
must either succeed or raise TypeError/ValueError; a crash fails the run."""
import pytest

FUZZ_SCRIPT = r"""
from array import array
import random
import struct
import _qtrain as Q
import _qtrain_float as QF
random.seed(SEED)
R = random.getrandbits
def rflt():
    if R(3) == 0:    # any bit pattern: NaN, inf, subnormal, huge
        return struct.unpack('<f', struct.pack('<I', R(32)))[0]
    return (random.random() * 2 - 1) * (10 ** random.randint(-3, 6))
def rbuf(n=None):
    n = random.choice([0, 1, 2, 3, 7, 8, 10, 16, 20, 512, 784]) if n is None else n
    tc = random.choice('BBBffbhiI')
    if tc == 'B' and R(1):
        b = bytearray(n)
        for i in range(min(n, 64)):
            b[i] = R(8)
        return b
    a = array(tc, [0] * n)
    if tc == 'f':
        for i in range(min(n, 64)):
            a[i] = rflt()
    return a
def rqp():
    if R(3) == 0:
        return rbuf()
    a = array('f', [random.choice([2/255, 1e-30, 1e30, 0.0, -1.0, rflt()]),
                    random.choice([0, 128, 255, 256, -1, 1.5]), -1, 1,
                    random.choice([0.0, 0.1, 1.0, 2.0]), 0, 0, 0])
    return a
def rarg():
    k = R(4)
    if k == 0:
        return random.choice([None, 0, 1, -1, 3, 10**20, 1.5, 'x', (1, 2)])
    if k == 1:
        return rqp()
    return rbuf()
def rstate():
    return random.choice([array('I', [R(32) | 1]), array('I', [0]), None, rbuf()])
def fb(n):
    a = array('f', [0.0] * n)
    for i in range(min(n, 16)):
        a[i] = rflt()
    return a
def ub(n):
    b = bytearray(n)
    for i in range(min(n, 16)):
        b[i] = R(8)
    return b
def st():
    return array('I', [R(32) | 1])
def valid(name):
    # a valid call of `name` with random sizes and values
    n = random.choice([1, 2, 10, 100, 784]); c = random.choice([1, 2, 10]); L = random.choice([1, 3, 10])
    S = array('f', [0.0] * 3); hp = array('f', [random.choice([0.0, 1.0, 1e30])])
    T = {
        'bce_sigmoid_u8': lambda: [ub(n), rqp(), ub(n), ub(n), rqp(), S, random.choice([None, fb(512)])],
        'bce_sigmoid_mixed': lambda: [ub(n), rqp(), ub(n), fb(n), S, random.choice([None, fb(512)])],
        'bce_sigmoid_f32': lambda: [fb(n), ub(n), fb(n), S],
        'softmax_ce_u8': lambda: [ub(c), rqp(), R(4) % c, ub(c), rqp(), S],
        'softmax_ce_mixed': lambda: [ub(c), rqp(), R(4) % c, fb(c), S],
        'softmax_ce_f32': lambda: [fb(c), R(4) % c, fb(c), S],
        'latent_forward_u8': lambda: [ub(2 * L), rqp(), random.choice([None, st()]), fb(L), ub(L), rqp(), S],
        'latent_forward_f32': lambda: [fb(2 * L), random.choice([None, st()]), fb(L), fb(L), S],
        'latent_backward_u8': lambda: [ub(2 * L), rqp(), fb(L), ub(L), rqp(), ub(2 * L), rqp(), hp, S],
        'latent_backward_mixed': lambda: [ub(2 * L), rqp(), fb(L), fb(L), fb(2 * L), hp, S],
        'latent_backward_f32': lambda: [fb(2 * L), fb(L), fb(L), fb(2 * L), hp, S],
        'rng_seed': lambda: [st(), R(32)],
        'rng_normal': lambda: [st(), fb(R(6))],
        'vmath': lambda: [R(3) % 5, fb(n), fb(n)],
    }
    return T[name]()
NAMES = ['bce_sigmoid_u8', 'bce_sigmoid_mixed', 'bce_sigmoid_f32', 'softmax_ce_u8', 'softmax_ce_mixed',
         'softmax_ce_f32', 'latent_forward_u8', 'latent_forward_f32', 'latent_backward_u8',
         'latent_backward_mixed', 'latent_backward_f32', 'rng_seed', 'rng_normal', 'vmath']
ok = err = 0
for it in range(N):
    name = random.choice(NAMES)
    args = valid(name)
    # mutate 0..2 arguments, sometimes drop or add one
    for _ in range(random.choice([0, 0, 1, 1, 2])):
        args[R(8) % len(args)] = rarg()
    k = R(4)
    if k == 0 and len(args) > 1:
        args.pop()
    elif k == 1:
        args.append(rarg())
    try:
        getattr(QF if name.endswith(('_f32', '_mixed')) else Q, name)(*args)
        ok += 1
    except (TypeError, ValueError):
        err += 1
print('fuzz', ok, err)
"""


def test_loss_fuzz_no_crash(run):
    if run.target != "unix":
        pytest.skip("fuzzing runs on the Unix port")
    for seed in (1, 2, 3):
        out = run(FUZZ_SCRIPT.replace("SEED", str(seed)).replace("N)", "4000)"))
        ok, err = [int(v) for v in out.split("fuzz")[1].split()[:2]]
        assert ok + err == 4000
        assert ok > 200, out         # a good share of the calls is valid and runs
