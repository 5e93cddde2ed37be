// Python bindings of the quantization core and the Dense kernels.
// Argument order everywhere: inputs first, then outputs, then options; every
// uint8 tensor is followed by its qparams record (array('f', 8), quant.h).
// Shapes are taken from buffer lengths (x: n, y: m, w: m*n) and cross-checked.
#include "bind_common.h"
#include "kernels/quant.h"
#include "kernels/dense.h"

#define QT_DENSE_MAX_M (65535)

// Common shape checks: n = len(x), m = len(y), w must hold m*n.
static void dense_shape(size_t n, const char *nx, size_t m, const char *ny, size_t wlen, const char *nw) {
    if (n > QT_DENSE_MAX_N) {
        qt_raise_value("%s: expected at most %d items, got %z", nx, QT_DENSE_MAX_N, n);
    }
    if (m > QT_DENSE_MAX_M) {
        qt_raise_value("%s: expected at most %d items, got %z", ny, QT_DENSE_MAX_M, m);
    }
    if (wlen != m * n) {
        qt_raise_value("%s: expected len(%s)*len(%s) = %z*%z = %z items, got %z", nw, ny, nx, m, n, m * n, wlen);
    }
}

static int32_t qp_zero(const float *qp) {
    return (int32_t)qp[QT_QP_ZERO];
}

// ---- quantization core -------------------------------------------------------

// qp_from_range(qp): s, z (items 0, 1) from the range in items 2, 3 (METHOD 1).
static mp_obj_t qt_qp_from_range_fn(mp_obj_t qp_in) {
    float *qp = qt_arg_f32(qp_in, "qp", QT_QP_LEN, QT_RW);
    qt_check_f32(qp[QT_QP_MIN], "qp[2] (range min)", -3.0e38f, 3.0e38f, false, false);
    qt_check_f32(qp[QT_QP_MAX], "qp[3] (range max)", -3.0e38f, 3.0e38f, false, false);
    float s;
    int32_t z;
    qt_qparams_from_range(qp[QT_QP_MIN], qp[QT_QP_MAX], &s, &z);
    qp[QT_QP_SCALE] = s;
    qp[QT_QP_ZERO] = (float)z;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_qp_from_range_obj, qt_qp_from_range_fn);

// qp_update(qps): apply the recorded observations of one or more qparams
// records (array('f') of 8*k items, e.g. all tensors of a model) -- once per
// step or batch, after the backward pass.
static mp_obj_t qt_qp_update_fn(mp_obj_t qps_in) {
    size_t len;
    float *qp = qt_arg_buf_len(qps_in, "qps", QT_TC_F32, QT_QP_LEN, &len, QT_RW);
    if (len % QT_QP_LEN) {
        qt_raise_value("qps: expected a multiple of %d items, got %z", QT_QP_LEN, len);
    }
    for (size_t k = 0; k < len; k += QT_QP_LEN) {
        float a = qp[k + QT_QP_ALPHA];
        if (!(a >= 0.0f && a <= 1.0f)) {
            qt_raise_value("qps: alpha of record %z must be in [0, 1], got %f", k / QT_QP_LEN, &qp[k + QT_QP_ALPHA]);
        }
    }
    for (size_t k = 0; k < len; k += QT_QP_LEN) {
        qt_qp_update(qp + k);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_qp_update_obj, qt_qp_update_fn);

// remap_u8(q, qp_old, qp_new): re-quantize stored values in place.
static mp_obj_t qt_remap_u8_fn(mp_obj_t q_in, mp_obj_t old_in, mp_obj_t new_in) {
    size_t n;
    uint8_t *q = qt_arg_buf_len(q_in, "q", QT_TC_U8, 0, &n, QT_RW);
    const float *qo = qt_arg_qparams(old_in, "qp_old", QT_RO);
    const float *qn = qt_arg_qparams(new_in, "qp_new", QT_RO);
    qt_remap_u8(q, n, qo[QT_QP_SCALE], qp_zero(qo), qn[QT_QP_SCALE], qp_zero(qn));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(qt_remap_u8_obj, qt_remap_u8_fn);

// ---- Dense forward -----------------------------------------------------------

// dense_forward_u8(x, xq, w, wq, b, bq, y, yq, relu) -> None
//   x uint8[n], w uint8[m*n] (row i -> output i), b int32[m] or None (real =
//   bq.scale * b, bq zero point 0), y uint8[m] (written), relu 0/1.
//   Records the exact real range of y into yq[5..7].
static mp_obj_t qt_dense_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n, m, wlen;
    const uint8_t *x = qt_arg_buf_len(a[0], "x", QT_TC_U8, 1, &n, QT_RO);
    const float *xq = qt_arg_qparams(a[1], "xq", QT_RO);
    uint8_t *y = qt_arg_buf_len(a[6], "y", QT_TC_U8, 1, &m, QT_RW);
    float *yq = qt_arg_qparams(a[7], "yq", QT_RW);
    const uint8_t *w = qt_arg_buf_len(a[2], "w", QT_TC_U8, 0, &wlen, QT_RO);
    dense_shape(n, "x", m, "y", wlen, "w");
    const float *wq = qt_arg_qparams(a[3], "wq", QT_RO);
    const int32_t *b = qt_arg_buf_opt(a[4], "b", QT_TC_I32, m, QT_RO);
    float sb = 0.0f;
    if (b) {
        const float *bq = qt_arg_qparams(a[5], "bq", QT_RO);
        if (bq[QT_QP_ZERO] != 0.0f) {
            qt_raise_value("bq: zero point must be 0 for an int32 bias, got %f", &bq[QT_QP_ZERO]);
        }
        sb = bq[QT_QP_SCALE];
    }
    bool relu = qt_arg_bool(a[8], "relu");
    qt_check_no_overlap(y, m, "y", x, n, "x");
    qt_check_no_overlap(y, m, "y", w, wlen, "w");

    float swx = wq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    qt_dense_fwd_t q;
    q.zx = qp_zero(xq);
    q.zw = qp_zero(wq);
    q.zy = qp_zero(yq);
    q.out = qt_fixmul_from_f32(swx / yq[QT_QP_SCALE]);
    q.bias = qt_fixmul_from_f32(b ? sb / swx : 0.0f);
    q.relu = relu;
    int32_t r[2];
    dense_forward_u8(x, w, b, y, (int32_t)m, (int32_t)n, &q, r);
    qt_qp_observe(yq, (float)r[0] * swx, (float)r[1] * swx);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_dense_forward_u8_obj, 9, 9, qt_dense_forward_u8_fn);

void qt_bind_dense(void) {
    mp_store_global(MP_QSTR_qp_from_range, MP_OBJ_FROM_PTR(&qt_qp_from_range_obj));
    mp_store_global(MP_QSTR_qp_update, MP_OBJ_FROM_PTR(&qt_qp_update_obj));
    mp_store_global(MP_QSTR_remap_u8, MP_OBJ_FROM_PTR(&qt_remap_u8_obj));
    mp_store_global(MP_QSTR_dense_forward_u8, MP_OBJ_FROM_PTR(&qt_dense_forward_u8_obj));
}
