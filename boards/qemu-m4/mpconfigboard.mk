# qtrain qemu-m4: QEMU `mps2-an386` (Cortex-M4F, armv7e-m, single-precision
# FPU, hard-float ABI).  The port has no board for it; the FPU is switched on
# in Reset_Handler by our patch (CPACR bits 20-23) before any C code runs.
QEMU_ARCH = arm
QEMU_MACHINE = mps2-an386

CFLAGS += -mthumb -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M4F (qtrain qemu-m4)"'
# MPS2 SYSCLK is 25 MHz in QEMU.
CFLAGS += -DQTRAIN_SYSTICK_HZ=25000000

LDSCRIPT = mcu/arm/mps2.ld

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
SRC_C += qtrain_hal.c

# littlefs: the runner's writable RAM disk (stands in for the board's flash FS).
MICROPY_VFS_LFS2 = 1

MPY_CROSS_FLAGS += -march=armv7emsp
