// CRC-32 (IEEE 802.3, reflected, the same as zlib/binascii.crc32).
#ifndef QT_CRC32_H
#define QT_CRC32_H
#include <stddef.h>
#include <stdint.h>

// Continue a CRC over `len` bytes: start with crc = 0, feed chunks in order.
uint32_t qt_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#endif
