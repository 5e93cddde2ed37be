"""Host side of the case-file protocol of the kernel tests (test_dense_u8,
test_conv_kernels, test_loss_kernels and the files importing from them).

Cases are generated on the host with the numpy golden model and sent to the
target as one binary file: per buffer a typecode byte, its length in bytes
(uint32, little-endian) and the raw bytes; None travels as typecode 'N'.
Each test's DEVICE_LIB reads them back into bytearray/array and prints every
output as a line 'tag <case> <item> ...'.
"""
import numpy as np

TYPECODES = {np.dtype(np.uint8): b"B", np.dtype(np.int16): b"h", np.dtype(np.int32): b"i",
             np.dtype(np.uint32): b"I", np.dtype(np.float32): b"f"}


def pack(*bufs):
    """Serialize np arrays (uint8, int16, int32, uint32, float32) or None."""
    out = bytearray()
    for b in bufs:
        if b is None:
            out += b"N" + (0).to_bytes(4, "little")
            continue
        a = np.ascontiguousarray(b)
        raw = a.tobytes()
        out += TYPECODES[a.dtype] + len(raw).to_bytes(4, "little") + raw
    return bytes(out)


def parse_fields(out, tag):
    """Lines 'tag <i> <item> ...' of a target's output -> {i: [str, ...]}."""
    res = {}
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == tag:
            res[int(p[1])] = p[2:]
    return res


def parse(out, tag):
    """Lines 'tag <i> <hex> [<hex> ...]' -> {i: [bytes, ...]}."""
    return {i: [bytes.fromhex(h) for h in items] for i, items in parse_fields(out, tag).items()}
