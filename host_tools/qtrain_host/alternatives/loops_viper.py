"""The O(m n) loops of dense_step.DenseStep with @micropython.viper: native
machine-word integer code on raw pointers, what a MicroPython user can do
without a C module.  Same contract and values as loops_pure.py (the
xorshift32 state is masked to 32 bits: viper's uint is the machine word)."""
import micropython


@micropython.viper
def dot_rows(w: ptr8, xs: ptr32, n: int, m: int, out: ptr32):
    for i in range(m):
        o = i * n
        a = 0
        for j in range(n):
            a += w[o + j] * xs[j]
        out[i] = a


@micropython.viper
def axpy_rows(w: ptr8, c: ptr32, n: int, m: int, acc: ptr32):
    for j in range(n):
        acc[j] = 0
    for i in range(m):
        ci = c[i]
        if ci == 0:
            continue
        o = i * n
        for j in range(n):
            acc[j] += ci * w[o + j]


@micropython.viper
def _update_row(w: ptr8, o: int, x: ptr8, n: int, a: int, rb: int, st: ptr32):
    # One row (a, rb as arguments: machine words with their sign).  st[0]:
    # the xorshift32 state in and out; st[1], st[2] <- this row's lo, hi.
    # One draw per two weights: high 16 bits for the even one, low for the odd.
    s = uint(st[0]) & uint(0xFFFFFFFF)
    lo = 0
    hi = -1
    j = 0
    while j < n:
        s = (s ^ (s << 13)) & uint(0xFFFFFFFF)
        s = s ^ (s >> 17)
        s = (s ^ (s << 5)) & uint(0xFFFFFFFF)
        v = w[o + j] + ((int(s >> 16) + rb - a * x[j]) >> 16)
        if lo > hi:
            lo = v
            hi = v
        if v < lo:
            lo = v
        if v > hi:
            hi = v
        w[o + j] = 0 if v < 0 else (255 if v > 255 else v)
        if j + 1 < n:
            v = w[o + j + 1] + ((int(s & uint(0xFFFF)) + rb - a * x[j + 1]) >> 16)
            if v < lo:
                lo = v
            if v > hi:
                hi = v
            w[o + j + 1] = 0 if v < 0 else (255 if v > 255 else v)
        j += 2
    st[0] = int(s)
    st[1] = lo
    st[2] = hi


_ST = None


def update_rows(w, x, n, m, c, A, B, zx, rng, lohi):
    """See loops_pure.update_rows (rows looped here, weights in viper)."""
    global _ST
    import array
    if _ST is None:
        _ST = array.array("I", [0, 0, 0])
    st = _ST
    st[0] = rng[0]
    lo, hi = lohi[0], lohi[1]
    for i in range(m):
        if c[i] == 0:
            continue
        a = A[i]
        _update_row(w, i * n, x, n, a, B + a * zx, st)
        rlo = st[1] - 0x100000000 if st[1] >= 0x80000000 else st[1]
        rhi = st[2] - 0x100000000 if st[2] >= 0x80000000 else st[2]
        if lo > hi:
            lo, hi = rlo, rhi
        lo = rlo if rlo < lo else lo
        hi = rhi if rhi > hi else hi
    rng[0] = st[0]
    lohi[0], lohi[1] = lo, hi
