"""numpy golden model of every _qtrain kernel: the oracle the tests compare the
native module against.

Integer paths are bit-exact mirrors of the C code (same rounding, same
fixed-point math, same float32 operation order); float paths are plain float
references.  Modules: quant (the quantization core, natmod/kernels/quant.c),
dense (natmod/kernels/dense*.c), conv (natmod/kernels/conv*.c).
"""
