"""Where the Makefile puts things. One place, so tools and tests agree."""
import os

ROOT = os.environ.get("QTRAIN_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
DIST = os.path.join(ROOT, "dist")
UNIX_MICROPYTHON = os.path.join(BUILD, "unix", "micropython")
PYTHON_DIR = os.path.join(ROOT, "python")
MPY_ABI = "6.3"

# Target name -> natmod architecture.
TARGET_ARCH = {
    "unix": "x64",
    "qemu-m0": "armv6m",
    "qemu-m3": "armv7m",
    "qemu-m4": "armv7emsp",
}


# The native modules: _qtrain (uint8 kernels: all a uint8 model loads) and
# _qtrain_float (float32 / mixed-mode kernels, imported only by such models).
NATMOD = "_qtrain"
NATMOD_FLOAT = "_qtrain_float"
NATMODS = (NATMOD, NATMOD_FLOAT)


def natmod_dir(arch):
    """Directory holding _qtrain.mpy and _qtrain_float.mpy for `arch` (dist/<arch>_6.3)."""
    return os.path.join(DIST, "%s_%s" % (arch, MPY_ABI))


def natmod_path(arch, module=NATMOD):
    """dist/<arch>_6.3/<module>.mpy (module: _qtrain or _qtrain_float)."""
    return os.path.join(natmod_dir(arch), module + ".mpy")


def firmware_path(board):
    """Emulated-board firmware built by boards/qemu.mk, or <dir>/<board>/firmware.elf
    when QTRAIN_FIRMWARE_DIR=<dir> is set (e.g. a build with another heap size:
    `make firmware HEAP=...`, boards/qemu.mk)."""
    base = os.environ.get("QTRAIN_FIRMWARE_DIR") or os.path.join(BUILD, "firmware")
    return os.path.join(base, board, "firmware.elf")


def board_json(board):
    """boards/<board>/board.json as a dict (OSError, ValueError when missing or malformed)."""
    import json
    with open(os.path.join(ROOT, "boards", board, "board.json")) as f:
        return json.load(f)


def real_board(board):
    """(name, board.json dict) of the real board that emulated `board` stands
    in for (its "stands_in_for"); KeyError when it stands in for none."""
    real = board_json(board).get("stands_in_for")
    if not real:
        raise KeyError("board %r stands in for no real board" % board)
    return real, board_json(real)


def real_heap_bytes(board):
    """The heap of the real board that emulated `board` stands in for
    (boards/<real>/board.json heap_real_bytes_approx), not the 160 KB
    planning budget its own firmware has."""
    return real_board(board)[1]["heap_real_bytes_approx"]


def real_heap_firmware_dir(board):
    """Where `make firmware` builds `board` at real_heap_bytes(board)
    (build/firmware-heap<N>; set QTRAIN_FIRMWARE_DIR to it to run there)."""
    return os.path.join(BUILD, "firmware-heap%d" % real_heap_bytes(board))
