"""The O(m n) loops of dense_step.DenseStep in plain MicroPython (see
loops_viper.py for the same with @micropython.viper).  w is row-major
[m][n] uint8; the int32 arithmetic of kernels/dense.c never overflows here,
so Python ints give the same values."""


def dot_rows(w, xs, n, m, out):
    """out[i] = sum_j w[i][j] xs[j]."""
    for i in range(m):
        o = i * n
        a = 0
        for j in range(n):
            a += w[o + j] * xs[j]
        out[i] = a


def axpy_rows(w, c, n, m, acc):
    """acc[j] = sum_i c[i] w[i][j] over the rows with c[i] != 0."""
    for j in range(n):
        acc[j] = 0
    for i in range(m):
        ci = c[i]
        if ci == 0:
            continue
        o = i * n
        for j in range(n):
            acc[j] += ci * w[o + j]


def update_rows(w, x, n, m, c, A, B, zx, rng, lohi):
    """Rows with c[i] != 0: w += ((r + B + A_i z_x - A_i x_j) >> 16), clamped
    to 0..255; r: one xorshift32 draw per two weights, its high 16 bits for
    the even weight, its low 16 bits for the odd one; lohi: the unclamped
    range of the new values (lo > hi: none yet)."""
    s = rng[0]
    lo, hi = lohi[0], lohi[1]
    if lo > hi:
        lo, hi = 2147483647, -2147483648
    for i in range(m):
        if c[i] == 0:
            continue
        a = A[i]
        rb = B + a * zx
        o = i * n
        for j in range(0, n, 2):
            s ^= (s << 13) & 0xFFFFFFFF
            s ^= s >> 17
            s ^= (s << 5) & 0xFFFFFFFF
            v = w[o + j] + (((s >> 16) + rb - a * x[j]) >> 16)
            if v < lo:
                lo = v
            if v > hi:
                hi = v
            w[o + j] = 0 if v < 0 else (255 if v > 255 else v)
            if j + 1 < n:
                v = w[o + j + 1] + (((s & 0xFFFF) + rb - a * x[j + 1]) >> 16)
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
                w[o + j + 1] = 0 if v < 0 else (255 if v > 255 else v)
    rng[0] = s
    lohi[0], lohi[1] = lo, hi
