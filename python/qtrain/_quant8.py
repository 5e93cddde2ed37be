"""float32 -> uint8 error copies at machine-code speed (@micropython.viper).

The conv layers of the 'mixed' and 'float32' modes need an 8-bit copy of a
float error (for the uint8 weight update and the DSGU scores) and the module
has no kernel for it.  Viper works on the float's bits with integer
operations only (no float per value, so it is cheap on a soft-float M0):
the scale is a power of two, 2^k with max|e| / 2^k in [64, 128), zero point
128, rounding half away from zero.  layers.py falls back to a Python loop
where the firmware has no native emitter.
"""
import micropython

if False:  # for type checkers only (python/stubs/_viper.pyi); compiled away
    from _viper import ptr8, ptr32, uint


@micropython.viper
def absmax_exp(e, n: int) -> int:
    """The biased binary exponent of max |e[i]| (array('f')), 0 if all are 0."""
    p = ptr32(e)
    mask = uint(0x3FFFFFFF) * 2 + 1   # 0x7FFFFFFF (not a small int on 32-bit ports)
    mx = uint(0)
    for i in range(n):
        b = uint(p[i]) & mask         # drop the sign: magnitudes order like their bits
        if b > mx:
            mx = b
    return int(mx >> 23)


@micropython.viper
def quant_pow2(e, out, n: int, exmax: int):
    """out[i] = 128 + round(e[i] / 2^k), k = exmax - 133 (so |q| < 128)."""
    p = ptr32(e)
    o = ptr8(out)
    for i in range(n):
        b = uint(p[i])
        ex = int((b >> 23) & 0xFF)
        sh = 17 + exmax - ex
        q = 0
        if sh <= 24 and ex != 0:
            m = int(b & 0x7FFFFF) | 0x800000
            q = (m + (1 << (sh - 1))) >> sh
        if b >> 31:
            q = 128 - q
        else:
            q = 128 + q
            if q > 255:
                q = 255
        o[i] = q
