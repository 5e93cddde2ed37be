# qtrain qemu-m0: QEMU `microbit` (nRF51, Cortex-M0, armv6-m like the RP2040).
# Used as BOARD_DIR of the patched ports/qemu copy (see boards/qemu.mk).
# MICROPY_HEAP_SIZE comes from board.json (passed by boards/qemu.mk).
QEMU_ARCH = arm
QEMU_MACHINE = microbit
QEMU_ARGS += -global nrf51-soc.flash-size=1048576 -global nrf51-soc.sram-size=262144

CFLAGS += -mthumb -mcpu=cortex-m0 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_NRF51
CFLAGS += -DMICROPY_HW_MCU_NAME='"nRF51 Cortex-M0 (qtrain qemu-m0)"'
# Native emitter (stock MICROBIT has none, so natmods would not load).
CFLAGS += -DQTRAIN_EMIT_THUMB
# QEMU clocks the nRF51 SysTick with the 16 MHz HCLK.
CFLAGS += -DQTRAIN_SYSTICK_HZ=16000000

LDSCRIPT = mcu/arm/nrf51.ld

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb1.o
SRC_C += qtrain_hal.c

# littlefs: the runner's writable RAM disk (stands in for the board's flash FS).
MICROPY_VFS_LFS2 = 1

MPY_CROSS_FLAGS += -march=armv6m
