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


def natmod_dir(arch):
    """Directory holding _qtrain.mpy for `arch` (dist/<arch>_6.3)."""
    return os.path.join(DIST, "%s_%s" % (arch, MPY_ABI))


def natmod_path(arch):
    return os.path.join(natmod_dir(arch), "_qtrain.mpy")


def firmware_path(board):
    """Emulated-board firmware built by boards/qemu.mk."""
    return os.path.join(BUILD, "firmware", board, "firmware.elf")
