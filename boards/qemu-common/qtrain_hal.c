// qtrain additions to MicroPython's ports/qemu (copied into the patched port
// tree at build time; see boards/qemu.mk).
//
// - SysTick time base: the 24-bit down-counter clocked by the CPU clock
//   (QTRAIN_SYSTICK_HZ, set per board), extended to 64 bits by counting
//   wraps in SysTick_Handler.  Gives mp_hal_ticks_ms/us/cpu and delays.
// - Module `icount`: a deterministic instruction counter for benchmarks.
//   Under `qemu-system-arm -icount shift=0` the virtual clock advances 1 ns
//   per executed instruction, and SysTick counts virtual time, so
//   instructions = ticks * 1e9 / QTRAIN_SYSTICK_HZ.
//   icount.start() stops and restarts SysTick: QEMU then re-aligns its tick
//   grid to the restart instant, so the reading taken by icount.read() depends
//   only on the instructions executed since start(), not on where in a tick the
//   region began (which depends on host timing of serial input).  Resolution is
//   one tick (icount.RESOLUTION instructions).  Without -icount, the same
//   numbers are virtual nanoseconds (host time), not instructions.
// - Module `qemuboard`: RamDisk(addr, nblocks), a block device (4 KiB blocks,
//   extended interface) over memory outside the firmware's RAM, for a littlefs
//   that stands in for a board's flash filesystem.  In C so that reads and
//   writes allocate nothing on the heap, like a real board's flash driver.
// - qtrain_boot(): after every (soft) reset, mount that littlefs at / (format
//   it on first boot), as real boards mount their flash filesystem.  The RAM
//   survives soft resets, so files do too.

#include <stdint.h>
#include <string.h>

#include "py/runtime.h"
#include "py/mphal.h"
#include "py/mperrno.h"

#ifndef QTRAIN_SYSTICK_HZ
#error "board must define QTRAIN_SYSTICK_HZ (SysTick clock of the QEMU machine)"
#endif

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)
#define SYST_RELOAD (0xffffffu)
#define SYST_PERIOD ((uint64_t)SYST_RELOAD + 1)

static volatile uint32_t systick_wraps;
static uint64_t icount_t0;

void SysTick_Handler(void) {
    systick_wraps++;
}

void qtrain_systick_init(void) {
    SYST_CSR = 0;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    systick_wraps = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
    // The counter reads 0 until its first reload; wait for that so the
    // count below is monotonic from here on.
    while (SYST_CVR == 0) {
    }
}

// Ticks since boot.  The down-counter goes RELOAD..1, 0 (wrap interrupt),
// RELOAD, ...; the wrap is counted when the counter reaches 0.
static uint64_t systick_total(void) {
    uint32_t w, c;
    do {
        w = systick_wraps;
        c = SYST_CVR;
    } while (w != systick_wraps);
    if (c == 0) {
        return (uint64_t)w * SYST_PERIOD - 1;
    }
    return (uint64_t)w * SYST_PERIOD + (SYST_RELOAD - c);
}

static uint64_t ticks_to_ns(uint64_t t) {
    uint64_t q = t / QTRAIN_SYSTICK_HZ, r = t % QTRAIN_SYSTICK_HZ;
    return q * 1000000000ull + r * 1000000000ull / QTRAIN_SYSTICK_HZ;
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return (mp_uint_t)systick_total();
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)(systick_total() / (QTRAIN_SYSTICK_HZ / 1000000));
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)(systick_total() / (QTRAIN_SYSTICK_HZ / 1000));
}

// No RTC: "wall clock" = time since boot (used for littlefs file mtimes).
uint64_t mp_hal_time_ns(void) {
    return ticks_to_ns(systick_total());
}

void mp_hal_delay_us(mp_uint_t us) {
    uint64_t end = systick_total() + (uint64_t)us * (QTRAIN_SYSTICK_HZ / 1000000);
    while (systick_total() < end) {
    }
}

void mp_hal_delay_ms(mp_uint_t ms) {
    uint64_t end = systick_total() + (uint64_t)ms * (QTRAIN_SYSTICK_HZ / 1000);
    while (systick_total() < end) {
        mp_handle_pending(true);
    }
}

// ---- module icount -----------------------------------------------------------

static mp_obj_t icount_start(void) {
    uint32_t csr = SYST_CSR;
    SYST_CSR = csr & ~SYST_CSR_ENABLE;   // freezes the count (drops < 1 tick)
    icount_t0 = systick_total();
    SYST_CSR = csr | SYST_CSR_ENABLE;    // tick grid now starts here
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(icount_start_obj, icount_start);

static mp_obj_t icount_read(void) {
    return mp_obj_new_int_from_ull(ticks_to_ns(systick_total() - icount_t0));
}
static MP_DEFINE_CONST_FUN_OBJ_0(icount_read_obj, icount_read);

static const mp_rom_map_elem_t icount_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_icount) },
    { MP_ROM_QSTR(MP_QSTR_start), MP_ROM_PTR(&icount_start_obj) },
    { MP_ROM_QSTR(MP_QSTR_read), MP_ROM_PTR(&icount_read_obj) },
    // SysTick clock and instructions per tick (rounded up): the resolution.
    { MP_ROM_QSTR(MP_QSTR_HZ), MP_ROM_INT(QTRAIN_SYSTICK_HZ) },
    { MP_ROM_QSTR(MP_QSTR_RESOLUTION), MP_ROM_INT((1000000000 + QTRAIN_SYSTICK_HZ - 1) / QTRAIN_SYSTICK_HZ) },
};
static MP_DEFINE_CONST_DICT(icount_module_globals, icount_module_globals_table);

const mp_obj_module_t icount_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&icount_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_icount, icount_module);

// ---- module qemuboard: RamDisk block device ----------------------------------------

#define RAMDISK_BLOCK (4096)

typedef struct _ramdisk_obj_t {
    mp_obj_base_t base;
    uint8_t *mem;
    uint32_t nblocks;
} ramdisk_obj_t;

static mp_obj_t ramdisk_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 2, 2, false);
    ramdisk_obj_t *self = mp_obj_malloc(ramdisk_obj_t, type);
    self->mem = (uint8_t *)(uintptr_t)mp_obj_get_int_truncated(args[0]);
    self->nblocks = mp_obj_get_int(args[1]);
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t ramdisk_rw(size_t n_args, const mp_obj_t *args, bool write) {
    ramdisk_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_int_t block = mp_obj_get_int(args[1]);
    mp_int_t off = n_args == 4 ? mp_obj_get_int(args[3]) : 0;
    mp_buffer_info_t bi;
    mp_get_buffer_raise(args[2], &bi, write ? MP_BUFFER_READ : MP_BUFFER_WRITE);
    if (block < 0 || off < 0 || (uint64_t)block * RAMDISK_BLOCK + off + bi.len > (uint64_t)self->nblocks * RAMDISK_BLOCK) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EIO);
    }
    uint8_t *p = self->mem + block * RAMDISK_BLOCK + off;
    if (write) {
        memcpy(p, bi.buf, bi.len);
    } else {
        memcpy(bi.buf, p, bi.len);
    }
    return MP_OBJ_NEW_SMALL_INT(0);
}

static mp_obj_t ramdisk_readblocks(size_t n_args, const mp_obj_t *args) {
    return ramdisk_rw(n_args, args, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(ramdisk_readblocks_obj, 3, 4, ramdisk_readblocks);

static mp_obj_t ramdisk_writeblocks(size_t n_args, const mp_obj_t *args) {
    return ramdisk_rw(n_args, args, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(ramdisk_writeblocks_obj, 3, 4, ramdisk_writeblocks);

static mp_obj_t ramdisk_ioctl(mp_obj_t self_in, mp_obj_t op_in, mp_obj_t arg_in) {
    ramdisk_obj_t *self = MP_OBJ_TO_PTR(self_in);
    switch (mp_obj_get_int(op_in)) {
        case 4: // MP_BLOCKDEV_IOCTL_BLOCK_COUNT
            return MP_OBJ_NEW_SMALL_INT(self->nblocks);
        case 5: // MP_BLOCKDEV_IOCTL_BLOCK_SIZE
            return MP_OBJ_NEW_SMALL_INT(RAMDISK_BLOCK);
        default: // init, deinit, sync, erase (RAM needs none)
            return MP_OBJ_NEW_SMALL_INT(0);
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(ramdisk_ioctl_obj, ramdisk_ioctl);

static const mp_rom_map_elem_t ramdisk_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&ramdisk_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&ramdisk_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&ramdisk_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(ramdisk_locals_dict, ramdisk_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    ramdisk_type,
    MP_QSTR_RamDisk,
    MP_TYPE_FLAG_NONE,
    make_new, ramdisk_make_new,
    locals_dict, &ramdisk_locals_dict
    );

static const mp_rom_map_elem_t qemuboard_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_qemuboard) },
    { MP_ROM_QSTR(MP_QSTR_RamDisk), MP_ROM_PTR(&ramdisk_type) },
};
static MP_DEFINE_CONST_DICT(qemuboard_module_globals, qemuboard_module_globals_table);

const mp_obj_module_t qemuboard_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&qemuboard_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_qemuboard, qemuboard_module);

// ---- root filesystem at boot ----------------------------------------------------

#if defined(QTRAIN_RAMDISK_ADDR) && defined(QTRAIN_RAMDISK_BLOCKS)
#include "py/compile.h"
#include "py/lexer.h"
#include "py/parse.h"
#include "py/nlr.h"

static const char qtrain_boot_src[] =
    "import vfs, os, qemuboard\n"
    "bdev = qemuboard.RamDisk(" MP_STRINGIFY(QTRAIN_RAMDISK_ADDR) ", " MP_STRINGIFY(QTRAIN_RAMDISK_BLOCKS) ")\n"
    "try:\n"
    "    vfs.mount(vfs.VfsLfs2(bdev), '/')\n"
    "except OSError:\n"
    "    vfs.VfsLfs2.mkfs(bdev)\n"
    "    vfs.mount(vfs.VfsLfs2(bdev), '/')\n"
    "os.chdir('/')\n"
    "del vfs, os, qemuboard, bdev\n";

void qtrain_boot(void) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_lexer_t *lex = mp_lexer_new_from_str_len(MP_QSTR__boot_dot_py, qtrain_boot_src, sizeof(qtrain_boot_src) - 1, 0);
        qstr source_name = lex->source_name;
        mp_parse_tree_t pt = mp_parse(lex, MP_PARSE_FILE_INPUT);
        mp_obj_t f = mp_compile(&pt, source_name, false);
        mp_call_function_0(f);
        nlr_pop();
    } else {
        mp_printf(&mp_plat_print, "qtrain: no root filesystem: ");
        mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
}
#else
void qtrain_boot(void) {
}
#endif
