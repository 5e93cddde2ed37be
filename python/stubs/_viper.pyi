"""The casts MicroPython's viper emitter provides as builtins inside
@micropython.viper functions (ptr8/ptr16/ptr32 pointers into a buffer, uint).

Not a module: viper code imports these under `if False:` so that type
checkers know them, and MicroPython compiles that block away.
"""


class _Ptr:
    def __init__(self, buf: object, /) -> None: ...
    def __getitem__(self, i: int, /) -> int: ...
    def __setitem__(self, i: int, value: int, /) -> None: ...


class ptr8(_Ptr):
    """Bytes of a buffer (or an address)."""


class ptr16(_Ptr):
    """16-bit words of a buffer."""


class ptr32(_Ptr):
    """32-bit words of a buffer."""


def uint(x: object, /) -> int:
    """The machine word of x as an unsigned integer."""
    ...
