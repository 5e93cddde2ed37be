# qtrain qemu-m3: QEMU `mps2-an385` (Cortex-M3, armv7-m, soft float).
QEMU_ARCH = arm
QEMU_MACHINE = mps2-an385

CFLAGS += -mthumb -mcpu=cortex-m3 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M3 (qtrain qemu-m3)"'
# MPS2 SYSCLK is 25 MHz in QEMU.
CFLAGS += -DQTRAIN_SYSTICK_HZ=25000000

LDSCRIPT = mcu/arm/mps2.ld

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
SRC_C += qtrain_hal.c

# littlefs: the runner's writable RAM disk (stands in for the board's flash FS).
MICROPY_VFS_LFS2 = 1

MPY_CROSS_FLAGS += -march=armv7m
