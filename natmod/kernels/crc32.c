// CRC-32 for checkpoints and data streams.
//
// Bitwise rather than table-driven: a natmod cannot have initialised data,
// and at ~40 instructions per byte a 60 kB checkpoint costs ~20 ms on a
// Cortex-M0 at 125 MHz, which is small next to writing it to flash.
#include "crc32.h"

uint32_t qt_crc32_update(uint32_t crc, const uint8_t *data, size_t len) {
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) {
            // Branch-free: XOR the polynomial when the low bit is set.
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}
