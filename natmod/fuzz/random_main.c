// A main() for fuzz targets without libFuzzer (any C compiler with
// -fsanitize=address,undefined): feeds N pseudo-random inputs of random
// length to LLVMFuzzerTestOneInput.  Used by the quick test in `make test`,
// where clang's libFuzzer may not be installed.
//   ./fuzz_random [runs] [seed]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
    long runs = argc > 1 ? atol(argv[1]) : 10000;
    uint32_t s = argc > 2 ? (uint32_t)atol(argv[2]) : 1u;
    static uint8_t buf[4096];
    if (!s) {
        s = 1;
    }
    for (long i = 0; i < runs; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        size_t n = 1 + s % sizeof(buf);
        for (size_t j = 0; j < n; j++) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            buf[j] = (uint8_t)(s >> 24);
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("runs %ld\n", runs);
    return 0;
}
