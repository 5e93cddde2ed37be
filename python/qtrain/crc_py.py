"""CRC-32 (zlib's) in small-int arithmetic, for firmware with neither
_qtrain.crc32 nor binascii.crc32, and for the serial stream's frames (on a
32-bit port _qtrain.crc32 returns a big int, an allocation per frame).

A module of its own: qtrain.data imports it only when no native CRC exists,
so a board training with _qtrain does not keep this code in its heap.
"""

_TL = None
_TH = None


def crc_tables():
    """The CRC-32 table split into 16-bit halves (two array('H', 256)), built
    once: CRC in small-int arithmetic allocates nothing on 32-bit ports."""
    global _TL, _TH
    if _TL is None:
        from array import array
        tl = array("H", bytes(512))
        th = array("H", bytes(512))
        for n in range(256):
            lo, hi = n, 0
            for _ in range(8):
                if lo & 1:
                    lo = ((lo >> 1) | ((hi & 1) << 15)) ^ 0x8320
                    hi = (hi >> 1) ^ 0xEDB8
                else:
                    lo = (lo >> 1) | ((hi & 1) << 15)
                    hi >>= 1
            tl[n] = lo
            th[n] = hi
        _TL, _TH = tl, th
    return _TL, _TH


def crc32(buf, crc=0):
    """CRC-32 of `buf`, chained through `crc` like binascii.crc32."""
    tl, th = crc_tables()
    lo = (crc & 0xFFFF) ^ 0xFFFF
    hi = ((crc >> 16) & 0xFFFF) ^ 0xFFFF
    for b in buf:
        j = (lo ^ b) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tl[j]
        hi = (hi >> 8) ^ th[j]
    return ((hi ^ 0xFFFF) << 16) | (lo ^ 0xFFFF)
