// Dense kernels, uint8: see dense.h.
#include "dense.h"

#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
#include <arm_acle.h>
// Cortex-M4 allows unaligned LDR (not LDRD/LDM); a packed struct tells the
// compiler so without memcpy (no libc in a natmod).
typedef struct __attribute__((packed)) {
    uint32_t v;
} qt_u32_unaligned_t;
static inline uint32_t ld32(const uint8_t *p) {
    return ((const qt_u32_unaligned_t *)(const void *)p)->v;
}
static inline uint32_t ror8(uint32_t v) {
    return (v >> 8) | (v << 24);
}
#endif

uint32_t qt_dot_u8(const uint8_t *w, const uint8_t *x, int32_t n, uint32_t *wsum) {
    uint32_t acc = 0, ws = 0;
    int32_t j = 0;
#if defined(QT_HAVE_DSP) && QT_HAVE_DSP
    // 4 MACs per 2 loads + 4 UXTB16 + 2 SMLAD (the values 0..255 are valid
    // int16 lanes) + 1 USADA8 for the row sum.
    int32_t sacc = 0;
    for (; j + 8 <= n; j += 8) {
        uint32_t wv = ld32(w + j), xv = ld32(x + j);
        uint32_t wv2 = ld32(w + j + 4), xv2 = ld32(x + j + 4);
        sacc = __smlad((int16x2_t)__uxtb16(wv), (int16x2_t)__uxtb16(xv), sacc);
        sacc = __smlad((int16x2_t)__uxtb16(ror8(wv)), (int16x2_t)__uxtb16(ror8(xv)), sacc);
        ws = __usada8(wv, 0, ws);
        sacc = __smlad((int16x2_t)__uxtb16(wv2), (int16x2_t)__uxtb16(xv2), sacc);
        sacc = __smlad((int16x2_t)__uxtb16(ror8(wv2)), (int16x2_t)__uxtb16(ror8(xv2)), sacc);
        ws = __usada8(wv2, 0, ws);
    }
    acc = (uint32_t)sacc;
#else
    // Cortex-M0 / generic: byte loads only (the M0 faults on unaligned words);
    // unrolled by 4 so the loop overhead is spread over 4 MACs.
    for (; j + 4 <= n; j += 4) {
        uint32_t w0 = w[j], w1 = w[j + 1], w2 = w[j + 2], w3 = w[j + 3];
        acc += w0 * x[j];
        acc += w1 * x[j + 1];
        acc += w2 * x[j + 2];
        acc += w3 * x[j + 3];
        ws += w0 + w1 + w2 + w3;
    }
#endif
    for (; j < n; j++) {
        uint32_t wj = w[j];
        acc += wj * x[j];
        ws += wj;
    }
    *wsum = ws;
    return acc;
}

void dense_forward_u8(const uint8_t *x, const uint8_t *w, const int32_t *b, uint8_t *y,
    int32_t m, int32_t n, const qt_dense_fwd_t *q, int32_t acc_range[2]) {
    // sum_j (w_ij - zw)(x_j - zx) = sum w x - zx sum_j w_ij - zw sum_j x_j + n zw zx.
    // The row sum comes out of the dot loop for free (USADA8 on M4, one add
    // per 4 MACs elsewhere), so no cache has to follow weight updates.
    // Intermediate terms may exceed int32; uint32 arithmetic wraps mod 2^32
    // and the true result fits in int32, so the final cast is exact.
    uint32_t xs = 0;
    for (int32_t j = 0; j < n; j++) {
        xs += x[j];
    }
    const uint32_t zx = (uint32_t)q->zx, zw = (uint32_t)q->zw;
    const uint32_t c0 = (uint32_t)n * zw * zx - zw * xs;
    int32_t amin = INT32_MAX, amax = INT32_MIN;
    const int32_t lo = q->relu ? q->zy : 0;
    for (int32_t i = 0; i < m; i++) {
        uint32_t ws;
        uint32_t d = qt_dot_u8(w + (size_t)i * (size_t)n, x, n, &ws);
        int32_t acc = (int32_t)(d - zx * ws + c0);
        if (b) {
            int64_t t = (int64_t)acc + qt_fixmul_apply(b[i], q->bias);
            acc = t > INT32_MAX ? INT32_MAX : (t < -INT32_MAX ? -INT32_MAX : (int32_t)t);
        }
        if (q->relu && acc < 0) {
            acc = 0;
        }
        amin = acc < amin ? acc : amin;
        amax = acc > amax ? acc : amax;
        y[i] = qt_requant_u8(acc, q->out, q->zy, lo);
    }
    acc_range[0] = amin;
    acc_range[1] = amax;
}
