// Python bindings of the Conv2d and ConvTranspose2d kernels (kernels/conv2d.h,
// kernels/conv_transpose2d.h).  Layouts: CHW activations/errors, Conv2d weights
// [out_ch][in_ch][kh][kw], ConvTranspose2d weights [in_ch][out_ch][kh][kw].
//
// Geometry travels as a tuple of ints:
//   Conv2d          geom = (in_ch, in_h, in_w, out_ch, k_h, k_w,
//                           stride_h, stride_w, pad_h, pad_w)
//   ConvTranspose2d geom = (..same 10.., out_pad_h, out_pad_w)
// and is checked on every call (cheap next to the convolution).
// Argument order as in bind_dense.c: inputs, outputs, options; every uint8
// tensor is followed by its qparams record (array('f', 8), kernels/quant.h).
// DSGU: `sel` is array('i') of distinct output-channel indices (as
// select_topk writes them), `k` how many of them to use (None = all channels).
#include "bind_common.h"
#include "kernels/quant.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/update.h"
#include "kernels/select.h"

static const char *geom_item_name(size_t i) {
    switch (i) {
        case 0:
            return "geom[0] (in_ch)";
        case 1:
            return "geom[1] (in_h)";
        case 2:
            return "geom[2] (in_w)";
        case 3:
            return "geom[3] (out_ch)";
        case 4:
            return "geom[4] (k_h)";
        case 5:
            return "geom[5] (k_w)";
        case 6:
            return "geom[6] (stride_h)";
        case 7:
            return "geom[7] (stride_w)";
        case 8:
            return "geom[8] (pad_h)";
        case 9:
            return "geom[9] (pad_w)";
        case 10:
            return "geom[10] (out_pad_h)";
        default:
            return "geom[11] (out_pad_w)";
    }
}

// geom tuple -> checked qt_conv_geom_t; ValueError naming the bad item.
static void parse_geom(mp_obj_t obj, bool transposed, qt_conv_geom_t *g) {
    const size_t want = transposed ? 12 : 10;
    const char *layout = transposed
        ? "(in_ch, in_h, in_w, out_ch, k_h, k_w, stride_h, stride_w, pad_h, pad_w, out_pad_h, out_pad_w)"
        : "(in_ch, in_h, in_w, out_ch, k_h, k_w, stride_h, stride_w, pad_h, pad_w)";
    const mp_obj_type_t *t = mp_obj_get_type(obj);
    if (t != &mp_type_tuple && t != &mp_type_list) {
        qt_raise_type("geom: expected a tuple %s", layout);
    }
    size_t len;
    mp_obj_t *items;
    mp_obj_get_array(obj, &len, &items);
    if (len != want) {
        qt_raise_value("geom: expected %z items %s, got %z", want, layout, len);
    }
    int32_t v[12];
    for (size_t i = 0; i < want; i++) {
        v[i] = (int32_t)qt_arg_int(items[i], geom_item_name(i), -32768, 32767);
    }
    for (size_t i = 0; i < 6; i++) {
        if (v[i] < 1) {
            qt_raise_value("%s: expected >= 1, got %d", geom_item_name(i), (int)v[i]);
        }
    }
    for (size_t i = 6; i < 8; i++) {
        if (v[i] < 1) {
            qt_raise_value("%s: stride must be >= 1, got %d", geom_item_name(i), (int)v[i]);
        }
    }
    for (size_t i = 8; i < want; i++) {
        if (v[i] < 0) {
            qt_raise_value("%s: padding must be >= 0, got %d", geom_item_name(i), (int)v[i]);
        }
    }
    int err;
    if (transposed) {
        err = conv_transpose2d_geom_init(g, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
            v[10], v[11]);
    } else {
        err = conv2d_geom_init(g, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
    }
    switch (err) {
        case QT_CONV_OK:
            return;
        case QT_CONV_KERNEL_BIG:
            qt_raise_value("geom: kernel %dx%d larger than the padded input %dx%d", (int)v[4], (int)v[5],
                (int)(v[1] + 2 * v[8]), (int)(v[2] + 2 * v[9]));
        case QT_CONV_BAD_OUT_PAD:
            qt_raise_value("geom: output padding (%d, %d) must be smaller than stride (%d, %d)",
                (int)v[10], (int)v[11], (int)v[6], (int)v[7]);
        case QT_CONV_EMPTY_OUT:
            qt_raise_value("geom: padding too large, output would be empty");
        case QT_CONV_TOO_BIG:
            qt_raise_value("geom: too large (at most 255 for kernel/stride/pad, 32767 for channels*k_h*k_w and h*w)");
        default:
            qt_raise_value("geom: invalid (error %d)", err);
    }
}

// sel/k -> (pointer or NULL, count); every index checked < n_ch.
static const int32_t *parse_sel(size_t n_args, const mp_obj_t *a, size_t i_sel, int32_t n_ch,
    int32_t *n_sel) {
    *n_sel = n_ch;
    if (n_args <= i_sel || a[i_sel] == mp_const_none) {
        return NULL;
    }
    size_t len;
    const int32_t *sel = qt_arg_buf_len(a[i_sel], "sel", QT_TC_I32, 0, &len, QT_RO);
    if (n_args <= i_sel + 1) {
        qt_raise_type("k: expected an int (number of selected channels) with sel");
    }
    int32_t k = (int32_t)qt_arg_int(a[i_sel + 1], "k", 0, n_ch);
    if ((size_t)k > len) {
        qt_raise_value("k: expected at most len(sel) = %z, got %d", len, (int)k);
    }
    for (int32_t j = 0; j < k; j++) {
        if (sel[j] < 0 || sel[j] >= n_ch) {
            qt_raise_value("sel: item %d must be a channel index in 0..%d, got %d", (int)j, (int)(n_ch - 1),
                (int)sel[j]);
        }
    }
    *n_sel = k;
    return sel;
}

static int32_t qp_zero(const float *qp) {
    return (int32_t)qp[QT_QP_ZERO];
}

static size_t in_len(const qt_conv_geom_t *g) {
    return (size_t)qt_conv_in_size(g);
}
static size_t out_len(const qt_conv_geom_t *g) {
    return (size_t)qt_conv_out_size(g);
}
static size_t w_len(const qt_conv_geom_t *g) {
    return (size_t)qt_conv_w_size(g);
}

static int32_t scratch_need(const qt_conv_geom_t *g, bool transposed) {
    return transposed ? conv_transpose2d_scratch_len_u8(g) : conv2d_scratch_len_u8(g);
}

// scratch: a bytearray of at least *_scratch_len(geom) bytes, 4-byte aligned,
// not overlapping the call's other buffers (checked by the caller).
static uint8_t *arg_scratch(mp_obj_t obj, const qt_conv_geom_t *g, bool transposed, size_t *len) {
    const int32_t need = scratch_need(g, transposed);
    const char *fn = transposed ? "conv_transpose2d_scratch_len" : "conv2d_scratch_len";
    mp_buffer_info_t bi;
    if (obj == mp_const_none || !mp_get_buffer(obj, &bi, MP_BUFFER_RW)) {
        qt_raise_type("scratch: expected a writable bytearray of %s(geom) = %d bytes", fn, (int)need);
    }
    uint8_t *p = qt_arg_buf_len(obj, "scratch", QT_TC_U8, (size_t)need, len, QT_RW);
    if ((uintptr_t)p & 3u) {
        qt_raise_value("scratch: must be 4-byte aligned (a memoryview at an odd offset?)");
    }
    return p;
}

// ---- geometry queries --------------------------------------------------------

static mp_obj_t out_shape(mp_obj_t geom, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(geom, transposed, &g);
    mp_obj_t t[3] = { mp_obj_new_int(g.out_ch), mp_obj_new_int(g.out_h), mp_obj_new_int(g.out_w) };
    return mp_obj_new_tuple(3, t);
}

// conv2d_out_shape(geom) -> (out_ch, out_h, out_w)
static mp_obj_t qt_conv2d_out_shape_fn(mp_obj_t geom) {
    return out_shape(geom, false);
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv2d_out_shape_obj, qt_conv2d_out_shape_fn);

static mp_obj_t qt_conv_transpose2d_out_shape_fn(mp_obj_t geom) {
    return out_shape(geom, true);
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv_transpose2d_out_shape_obj, qt_conv_transpose2d_out_shape_fn);

// conv2d_scratch_len(geom) -> bytes of the scratch bytearray every uint8 call
// of this layer takes (one buffer may serve several layers: use the max).
static mp_obj_t qt_conv2d_scratch_len_fn(mp_obj_t geom) {
    qt_conv_geom_t g;
    parse_geom(geom, false, &g);
    return mp_obj_new_int(conv2d_scratch_len_u8(&g));
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv2d_scratch_len_obj, qt_conv2d_scratch_len_fn);

static mp_obj_t qt_conv_transpose2d_scratch_len_fn(mp_obj_t geom) {
    qt_conv_geom_t g;
    parse_geom(geom, true, &g);
    return mp_obj_new_int(conv_transpose2d_scratch_len_u8(&g));
}
static MP_DEFINE_CONST_FUN_OBJ_1(qt_conv_transpose2d_scratch_len_obj, qt_conv_transpose2d_scratch_len_fn);

// ---- float32 -----------------------------------------------------------------

// conv2d_forward_f32(x, w, b, y, geom, relu) / conv_transpose2d_forward_f32(...)
//   x float[in_ch*in_h*in_w], w float[weights], b float[out_ch] or None, y written.
static mp_obj_t forward_f32(const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[4], transposed, &g);
    const float *x = qt_arg_f32(a[0], "x", in_len(&g), QT_RO);
    const float *w = qt_arg_f32(a[1], "w", w_len(&g), QT_RO);
    const float *b = qt_arg_buf_opt(a[2], "b", QT_TC_F32, (size_t)g.out_ch, QT_RO);
    float *y = qt_arg_f32(a[3], "y", out_len(&g), QT_RW);
    bool relu = qt_arg_bool(a[5], "relu");
    qt_check_no_overlap(y, out_len(&g) * 4, "y", x, in_len(&g) * 4, "x");
    qt_check_no_overlap(y, out_len(&g) * 4, "y", w, w_len(&g) * 4, "w");
    if (transposed) {
        conv_transpose2d_forward_f32(&g, x, w, b, y, relu);
    } else {
        conv2d_forward_f32(&g, x, w, b, y, relu);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_forward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return forward_f32(a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_forward_f32_obj, 6, 6, qt_conv2d_forward_f32_fn);
static mp_obj_t qt_conv_transpose2d_forward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return forward_f32(a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_forward_f32_obj, 6, 6,
    qt_conv_transpose2d_forward_f32_fn);

// conv2d_backward_f32(e, y, x, w, ex, gw, gb, geom[, sel, k])
//   e: dL/dy (written: zeroed where y <= 0 when y is given = fused ReLU);
//   y: forward output or None; ex: dL/dx (written) or None; gw, gb: gradients
//   accumulated (+=) or None.  sel/k: only these output channels (DSGU).
static mp_obj_t backward_f32(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[7], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const float *y = qt_arg_buf_opt(a[1], "y", QT_TC_F32, no, QT_RO);
    float *e = qt_arg_f32(a[0], "e", no, y ? QT_RW : QT_RO);
    const float *x = qt_arg_f32(a[2], "x", ni, QT_RO);
    const float *w = qt_arg_f32(a[3], "w", nw, QT_RO);
    float *ex = qt_arg_buf_opt(a[4], "ex", QT_TC_F32, ni, QT_RW);
    float *gw = qt_arg_buf_opt(a[5], "gw", QT_TC_F32, nw, QT_RW);
    float *gb = qt_arg_buf_opt(a[6], "gb", QT_TC_F32, (size_t)g.out_ch, QT_RW);
    int32_t n_sel;
    const int32_t *sel = parse_sel(n_args, a, 8, g.out_ch, &n_sel);
    if (ex) {
        qt_check_no_overlap(ex, ni * 4, "ex", e, no * 4, "e");
        qt_check_no_overlap(ex, ni * 4, "ex", w, nw * 4, "w");
        qt_check_no_overlap(ex, ni * 4, "ex", x, ni * 4, "x");
    }
    if (gw) {
        qt_check_no_overlap(gw, nw * 4, "gw", e, no * 4, "e");
        qt_check_no_overlap(gw, nw * 4, "gw", x, ni * 4, "x");
    }
    if (transposed) {
        conv_transpose2d_backward_f32(&g, e, y, x, w, ex, gw, gb, sel, n_sel);
    } else {
        conv2d_backward_f32(&g, e, y, x, w, ex, gw, gb, sel, n_sel);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_backward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return backward_f32(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_backward_f32_obj, 8, 10, qt_conv2d_backward_f32_fn);
static mp_obj_t qt_conv_transpose2d_backward_f32_fn(size_t n_args, const mp_obj_t *a) {
    return backward_f32(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_backward_f32_obj, 8, 10,
    qt_conv_transpose2d_backward_f32_fn);

// ---- uint8 -------------------------------------------------------------------

// conv2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
// conv_transpose2d_forward_u8(x, xq, w, wq, b, bq, y, yq, geom, relu, scratch)
//   b int32[out_ch] (real = bq.scale * b) or None; records y's exact range in yq.
static mp_obj_t forward_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[8], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const uint8_t *x = qt_arg_u8(a[0], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[1], "xq", QT_RO);
    const uint8_t *w = qt_arg_u8(a[2], "w", nw, QT_RO);
    const float *wq = qt_arg_qparams(a[3], "wq", QT_RO);
    const int32_t *b = qt_arg_buf_opt(a[4], "b", QT_TC_I32, (size_t)g.out_ch, QT_RO);
    float sb = 0.0f;
    if (b) {
        const float *bq = qt_arg_qparams(a[5], "bq", QT_RO);
        if (bq[QT_QP_ZERO] != 0.0f) {
            qt_raise_value("bq: zero point must be 0 for an int32 bias, got %f", &bq[QT_QP_ZERO]);
        }
        sb = bq[QT_QP_SCALE];
    }
    uint8_t *y = qt_arg_u8(a[6], "y", no, QT_RW);
    float *yq = qt_arg_qparams(a[7], "yq", QT_RW);
    bool relu = qt_arg_bool(a[9], "relu");
    if (n_args < 11) {
        qt_raise_type("scratch: expected a writable bytearray of %d bytes", (int)scratch_need(&g, transposed));
    }
    size_t sl;
    uint8_t *scratch = arg_scratch(a[10], &g, transposed, &sl);
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", y, no, "y");
    qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    qt_check_no_overlap(y, no, "y", x, ni, "x");
    qt_check_no_overlap(y, no, "y", w, nw, "w");

    float swx = wq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    qt_conv_rq_t rq;
    rq.zero_in = qp_zero(xq);
    rq.zero_w = qp_zero(wq);
    rq.zero_out = qp_zero(yq);
    rq.out = qt_fixmul_from_f32(swx / yq[QT_QP_SCALE]);
    rq.bias = qt_fixmul_from_f32(b ? sb / swx : 0.0f);
    rq.relu = relu;
    int32_t r[2];
    if (transposed) {
        conv_transpose2d_forward_u8(&g, x, w, b, y, &rq, r, scratch);
    } else {
        conv2d_forward_u8(&g, x, w, b, y, &rq, r, scratch);
    }
    qt_qp_observe(yq, (float)r[0] * swx, (float)r[1] * swx);
    return mp_const_none;
}
static mp_obj_t qt_conv2d_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return forward_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_forward_u8_obj, 10, 11, qt_conv2d_forward_u8_fn);
static mp_obj_t qt_conv_transpose2d_forward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return forward_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_forward_u8_obj, 10, 11,
    qt_conv_transpose2d_forward_u8_fn);

// conv2d_backward_u8(e, eq, y, yq, w, wq, ex, exq, geom, sel, k, scratch)
// conv_transpose2d_backward_u8(... same ...)
//   Error propagation (METHOD 3).  y (forward output, uint8) given = fused
//   ReLU: e is set to its zero point in place where y <= yq's zero point.
//   ex written (uint8, scale/zero from exq) and its exact range recorded in
//   exq; ex None = only the ReLU mask (first layer).  Only the sel[:k]
//   output channels propagate (DSGU; sel None = all).
static mp_obj_t backward_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[8], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const uint8_t *y = qt_arg_buf_opt(a[2], "y", QT_TC_U8, no, QT_RO);
    uint8_t *e = qt_arg_u8(a[0], "e", no, y ? QT_RW : QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const uint8_t *w = qt_arg_u8(a[4], "w", nw, QT_RO);
    const float *wq = qt_arg_qparams(a[5], "wq", QT_RO);
    uint8_t *ex = qt_arg_buf_opt(a[6], "ex", QT_TC_U8, ni, QT_RW);
    float *exq = ex ? qt_arg_qparams(a[7], "exq", QT_RW) : NULL;
    int32_t n_sel;
    const int32_t *sel = parse_sel(n_args, a, 9, g.out_ch, &n_sel);
    uint8_t *scratch = NULL;
    if (ex) {
        if (n_args < 12) {
            qt_raise_type("scratch: expected a writable bytearray of %d bytes", (int)scratch_need(&g, transposed));
        }
        size_t sl;
        scratch = arg_scratch(a[11], &g, transposed, &sl);
        qt_check_no_overlap(scratch, sl, "scratch", e, no, "e");
        qt_check_no_overlap(scratch, sl, "scratch", ex, ni, "ex");
        qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    }
    if (y) {
        const float *yq = qt_arg_qparams(a[3], "yq", QT_RO);
        qt_check_no_overlap(e, no, "e", y, no, "y");
        conv_relu_mask_u8(e, y, (int32_t)no, qp_zero(eq), qp_zero(yq));
    }
    if (!ex) {
        return mp_const_none;
    }
    qt_check_no_overlap(ex, ni, "ex", e, no, "e");
    qt_check_no_overlap(ex, ni, "ex", w, nw, "w");
    float swe = wq[QT_QP_SCALE] * eq[QT_QP_SCALE];
    qt_conv_rq_t rq;
    rq.zero_in = qp_zero(eq);
    rq.zero_w = qp_zero(wq);
    rq.zero_out = qp_zero(exq);
    rq.out = qt_fixmul_from_f32(swe / exq[QT_QP_SCALE]);
    rq.bias = qt_fixmul_from_f32(0.0f);
    rq.relu = 0;
    int32_t r[2];
    if (transposed) {
        conv_transpose2d_backward_input_u8(&g, e, w, ex, &rq, r, sel, n_sel, scratch);
    } else {
        conv2d_backward_input_u8(&g, e, w, ex, &rq, r, sel, n_sel, scratch);
    }
    qt_qp_observe(exq, (float)r[0] * swe, (float)r[1] * swe);
    return mp_const_none;
}
static mp_obj_t qt_conv2d_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return backward_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_backward_u8_obj, 9, 12, qt_conv2d_backward_u8_fn);
static mp_obj_t qt_conv_transpose2d_backward_u8_fn(size_t n_args, const mp_obj_t *a) {
    return backward_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_backward_u8_obj, 9, 12,
    qt_conv_transpose2d_backward_u8_fn);

// conv2d_grad_u8(e, eq, x, xq, gw, gb, geom, sel, k, scratch)
//   Integer gradients, accumulated (+=) for a batch: gw int32[weights] in the
//   weight layout, real = s_e s_x gw; gb int32[out_ch] or None, real = s_e gb.
//   Only the sel[:k] output channels (DSGU); others are left untouched.
static mp_obj_t grad_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[6], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const uint8_t *e = qt_arg_u8(a[0], "e", no, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const uint8_t *x = qt_arg_u8(a[2], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[3], "xq", QT_RO);
    int32_t *gw = qt_arg_i32(a[4], "gw", nw, QT_RW);
    int32_t *gb = qt_arg_buf_opt(a[5], "gb", QT_TC_I32, (size_t)g.out_ch, QT_RW);
    int32_t n_sel;
    const int32_t *sel = parse_sel(n_args, a, 7, g.out_ch, &n_sel);
    size_t sl;
    uint8_t *scratch = arg_scratch(a[9], &g, transposed, &sl);
    qt_check_no_overlap(scratch, sl, "scratch", e, no, "e");
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", gw, nw * 4, "gw");
    qt_check_no_overlap(gw, nw * 4, "gw", e, no, "e");
    qt_check_no_overlap(gw, nw * 4, "gw", x, ni, "x");
    if (transposed) {
        conv_transpose2d_grad_acc_u8(&g, e, qp_zero(eq), x, qp_zero(xq), gw, gb, sel, n_sel, scratch);
    } else {
        conv2d_grad_acc_u8(&g, e, qp_zero(eq), x, qp_zero(xq), gw, gb, sel, n_sel, scratch);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_grad_u8_fn(size_t n_args, const mp_obj_t *a) {
    return grad_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_grad_u8_obj, 10, 10, qt_conv2d_grad_u8_fn);
static mp_obj_t qt_conv_transpose2d_grad_u8_fn(size_t n_args, const mp_obj_t *a) {
    return grad_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_grad_u8_obj, 10, 10,
    qt_conv_transpose2d_grad_u8_fn);

// ---- mixed (uint8 forward, float32 errors) --------------------------------------

// conv2d_backward_mixed(e, y, yq, w, wq, ex, geom[, sel, k])
// conv_transpose2d_backward_mixed(... same ...)
//   e array('f') dL/dy (zeroed in place where the uint8 forward output y <=
//   yq's zero point, if y is given: fused ReLU); ex array('f') = dL/dx with
//   the uint8 weights (None: mask only).  sel/k: DSGU channels.
static mp_obj_t backward_mixed(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[6], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const uint8_t *y = qt_arg_buf_opt(a[1], "y", QT_TC_U8, no, QT_RO);
    float *e = qt_arg_f32(a[0], "e", no, y ? QT_RW : QT_RO);
    int32_t zy = 0;
    if (y) {
        zy = qp_zero(qt_arg_qparams(a[2], "yq", QT_RO));
    }
    const uint8_t *w = qt_arg_u8(a[3], "w", nw, QT_RO);
    const float *wq = qt_arg_qparams(a[4], "wq", QT_RO);
    float *ex = qt_arg_buf_opt(a[5], "ex", QT_TC_F32, ni, QT_RW);
    int32_t n_sel;
    const int32_t *sel = parse_sel(n_args, a, 7, g.out_ch, &n_sel);
    if (ex) {
        qt_check_no_overlap(ex, ni * 4, "ex", e, no * 4, "e");
        qt_check_no_overlap(ex, ni * 4, "ex", w, nw, "w");
    }
    if (transposed) {
        conv_transpose2d_backward_mixed(&g, e, y, zy, w, qp_zero(wq), wq[QT_QP_SCALE], ex, sel, n_sel);
    } else {
        conv2d_backward_mixed(&g, e, y, zy, w, qp_zero(wq), wq[QT_QP_SCALE], ex, sel, n_sel);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_backward_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return backward_mixed(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_backward_mixed_obj, 7, 9, qt_conv2d_backward_mixed_fn);
static mp_obj_t qt_conv_transpose2d_backward_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return backward_mixed(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_backward_mixed_obj, 7, 9,
    qt_conv_transpose2d_backward_mixed_fn);

// conv2d_grad_mixed(e, x, xq, gw, gb, geom[, sel, k])
// conv_transpose2d_grad_mixed(... same ...)
//   Float gradients in real units, accumulated (+=), weight layout:
//   gw += s_x sum e (x - z_x), gb += sum e (gb may be None).  Then
//   update_rows_mixed (rows = filters for Conv2d).
static mp_obj_t grad_mixed(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[5], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const float *e = qt_arg_f32(a[0], "e", no, QT_RO);
    const uint8_t *x = qt_arg_u8(a[1], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[2], "xq", QT_RO);
    float *gw = qt_arg_f32(a[3], "gw", nw, QT_RW);
    float *gb = qt_arg_buf_opt(a[4], "gb", QT_TC_F32, (size_t)g.out_ch, QT_RW);
    int32_t n_sel;
    const int32_t *sel = parse_sel(n_args, a, 6, g.out_ch, &n_sel);
    qt_check_no_overlap(gw, nw * 4, "gw", e, no * 4, "e");
    qt_check_no_overlap(gw, nw * 4, "gw", x, ni, "x");
    if (transposed) {
        conv_transpose2d_grad_mixed(&g, e, x, qp_zero(xq), xq[QT_QP_SCALE], gw, gb, sel, n_sel);
    } else {
        conv2d_grad_mixed(&g, e, x, qp_zero(xq), xq[QT_QP_SCALE], gw, gb, sel, n_sel);
    }
    return mp_const_none;
}
static mp_obj_t qt_conv2d_grad_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return grad_mixed(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_grad_mixed_obj, 6, 8, qt_conv2d_grad_mixed_fn);
static mp_obj_t qt_conv_transpose2d_grad_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return grad_mixed(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_grad_mixed_obj, 6, 8,
    qt_conv_transpose2d_grad_mixed_fn);

// hp = array('f', [lr, alpha_norm, tau]) and flags (rounding | per_row << 2),
// rng array('I', 1): the conventions of dense_update_u8 / update_rows_u8.
static void arg_update(mp_obj_t hp_in, mp_obj_t flags_in, mp_obj_t rng_in, qt_update_t *u, float *tau) {
    const float *hp = qt_arg_f32(hp_in, "hp", 3, QT_RO);
    u->lr = qt_check_f32(hp[0], "hp[0] (lr)", 0.0f, 10.0f, true, false);
    u->alpha_norm = qt_check_f32(hp[1], "hp[1] (alpha_norm)", 0.0f, 1.0f, true, false);
    *tau = qt_check_f32(hp[2], "hp[2] (tau)", 0.0f, 1.0f, false, true);
    int32_t flags = (int32_t)qt_arg_int(flags_in, "flags", 0, 7);
    u->rounding = flags & QT_UPD_ROUND_MASK;   // nearest, floor, stochastic, stochastic per filter
    u->per_row = (flags & QT_UPD_PER_ROW) != 0;
    if (!u->per_row) {
        qt_raise_value("flags: the batch-1 conv update standardizes per filter (flag 4); for per-tensor use "
            "conv*_grad_u8 + update_rows_u8");
    }
    u->rng = qt_arg_u32(rng_in, "rng", 1, QT_RW);
    if (u->rounding >= QT_ROUND_STOCHASTIC && u->rng[0] == 0) {
        qt_raise_value("rng: the PRNG state must not be 0 (seed it)");
    }
}

// conv2d_update_u8(e, eq, x, xq, w, wq, b, bq, geom, sel, k, hp, flags, state, rng, scratch) -> int
// conv_transpose2d_update_u8(... same ...)
//   One SGD step of batch size 1 (METHOD 4) with per-filter gradient
//   standardization and no gradient buffer: each selected filter's gradient
//   is formed in scratch and applied at once (sel ascending, as select_topk
//   writes it; None = all).  Biases per tensor.  Then the weight range update
//   and re-map (update.h).  e is the error after the ReLU mask (see
//   conv*_backward_u8); state array('f', 5 + 2*out_ch); returns 1 if the
//   stored weights were re-mapped to a new scale.
static mp_obj_t update_u8(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[8], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const uint8_t *e = qt_arg_u8(a[0], "e", no, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const uint8_t *x = qt_arg_u8(a[2], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[3], "xq", QT_RO);
    uint8_t *w = qt_arg_u8(a[4], "w", nw, QT_RW);
    float *wq = qt_arg_qparams(a[5], "wq", QT_RW);
    int32_t *b = qt_arg_buf_opt(a[6], "b", QT_TC_I32, (size_t)g.out_ch, QT_RW);
    float s_b = 1.0f;
    if (b) {
        s_b = qt_arg_qparams(a[7], "bq", QT_RO)[QT_QP_SCALE];
    }
    int32_t n_sel;
    const int32_t *sel = parse_sel(n_args, a, 9, g.out_ch, &n_sel);
    qt_update_t u;
    float tau;
    arg_update(a[11], a[12], a[14], &u, &tau);
    float *state = qt_arg_f32(a[13], "state", QT_STD_STATE_LEN(g.out_ch), QT_RW);
    size_t sl;
    uint8_t *scratch = arg_scratch(a[15], &g, transposed, &sl);
    qt_check_no_overlap(w, nw, "w", x, ni, "x");
    qt_check_no_overlap(w, nw, "w", e, no, "e");
    qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", e, no, "e");
    u.s_w = wq[QT_QP_SCALE];
    u.zw = qp_zero(wq);
    float s_g = eq[QT_QP_SCALE] * xq[QT_QP_SCALE];
    int first = !(state[0] > 0.0f);
    int32_t r[2];
    if (transposed) {
        conv_transpose2d_update_u8(&g, e, qp_zero(eq), x, qp_zero(xq), w, b, sel, n_sel, s_g,
            eq[QT_QP_SCALE], s_b, &u, state, first, r, scratch);
    } else {
        conv2d_update_u8(&g, e, qp_zero(eq), x, qp_zero(xq), w, b, sel, n_sel, s_g,
            eq[QT_QP_SCALE], s_b, &u, state, first, r, scratch);
    }
    state[0] += 1.0f;
    return mp_obj_new_int(qt_weights_qp_update(w, nw, wq, r, tau));
}
static mp_obj_t qt_conv2d_update_u8_fn(size_t n_args, const mp_obj_t *a) {
    return update_u8(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_update_u8_obj, 16, 16, qt_conv2d_update_u8_fn);
static mp_obj_t qt_conv_transpose2d_update_u8_fn(size_t n_args, const mp_obj_t *a) {
    return update_u8(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_update_u8_obj, 16, 16,
    qt_conv_transpose2d_update_u8_fn);

// conv2d_update_mixed(e, x, xq, w, wq, b, bq, geom, sel, k, hp, flags, state, rng, scratch) -> int
// conv_transpose2d_update_mixed(... same ...)
//   Mixed mode, batch 1: float error e (after the ReLU mask), uint8 input x,
//   uint8 weights updated with per-filter standardization and no gradient
//   buffer (the shared update_rows_mixed per filter row), biases per tensor,
//   then the weight range update / re-map.  Returns 1 if re-mapped.  Same
//   result as conv*_grad_mixed + update_rows_mixed.
static mp_obj_t update_mixed(size_t n_args, const mp_obj_t *a, bool transposed) {
    qt_conv_geom_t g;
    parse_geom(a[7], transposed, &g);
    const size_t ni = in_len(&g), no = out_len(&g), nw = w_len(&g);
    const float *e = qt_arg_f32(a[0], "e", no, QT_RO);
    const uint8_t *x = qt_arg_u8(a[1], "x", ni, QT_RO);
    const float *xq = qt_arg_qparams(a[2], "xq", QT_RO);
    uint8_t *w = qt_arg_u8(a[3], "w", nw, QT_RW);
    float *wq = qt_arg_qparams(a[4], "wq", QT_RW);
    int32_t *b = qt_arg_buf_opt(a[5], "b", QT_TC_I32, (size_t)g.out_ch, QT_RW);
    float s_b = 1.0f;
    if (b) {
        s_b = qt_arg_qparams(a[6], "bq", QT_RO)[QT_QP_SCALE];
    }
    int32_t n_sel;
    const int32_t *sel = parse_sel(n_args, a, 8, g.out_ch, &n_sel);
    qt_update_t u;
    float tau;
    arg_update(a[10], a[11], a[13], &u, &tau);
    float *state = qt_arg_f32(a[12], "state", QT_STD_STATE_LEN(g.out_ch), QT_RW);
    size_t sl;
    uint8_t *scratch = arg_scratch(a[14], &g, transposed, &sl);
    qt_check_no_overlap(w, nw, "w", x, ni, "x");
    qt_check_no_overlap(w, nw, "w", e, no * 4, "e");
    qt_check_no_overlap(scratch, sl, "scratch", w, nw, "w");
    qt_check_no_overlap(scratch, sl, "scratch", x, ni, "x");
    qt_check_no_overlap(scratch, sl, "scratch", e, no * 4, "e");
    u.s_w = wq[QT_QP_SCALE];
    u.zw = qp_zero(wq);
    int32_t r[2];
    if (transposed) {
        conv_transpose2d_update_mixed(&g, e, x, qp_zero(xq), xq[QT_QP_SCALE], w, b, s_b, sel, n_sel, &u,
            state, r, scratch);
    } else {
        conv2d_update_mixed(&g, e, x, qp_zero(xq), xq[QT_QP_SCALE], w, b, s_b, sel, n_sel, &u, state, r,
            scratch);
    }
    return mp_obj_new_int(qt_weights_qp_update(w, nw, wq, r, tau));
}
static mp_obj_t qt_conv2d_update_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return update_mixed(n_args, a, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv2d_update_mixed_obj, 15, 15, qt_conv2d_update_mixed_fn);
static mp_obj_t qt_conv_transpose2d_update_mixed_fn(size_t n_args, const mp_obj_t *a) {
    return update_mixed(n_args, a, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_transpose2d_update_mixed_obj, 15, 15,
    qt_conv_transpose2d_update_mixed_fn);

// conv_swap_axes(src, dst, a, b, inner): dst[j][i][:] = src[i][j][:] for a
//   src of a*b*inner items (bytearray/array('B'), or array('i'/'I'/'f')).
//   ConvTranspose2d: (w, w_fm, in_ch, out_ch, k_h*k_w) gives the filter-major
//   copy [out][in][kh][kw] (one filter per row) for update_rows_* with
//   per-filter standardization in the float32/mixed/batch paths, and
//   (w_fm, w, out_ch, in_ch, k_h*k_w) writes it back.
static mp_obj_t qt_conv_swap_axes_fn(size_t n_args, const mp_obj_t *a) {
    mp_buffer_info_t si;
    mp_get_buffer_raise(a[0], &si, MP_BUFFER_READ);
    int tc = si.typecode == 1 ? 'B' : si.typecode;
    if (tc != 'B' && tc != 'i' && tc != 'I' && tc != 'f') {
        qt_raise_type("src: expected typecode 'B', 'i', 'I' or 'f', got '%c'", tc);
    }
    int32_t na = (int32_t)qt_arg_int(a[2], "a", 1, 32767);
    int32_t nb = (int32_t)qt_arg_int(a[3], "b", 1, 32767);
    int32_t inner = (int32_t)qt_arg_int(a[4], "inner", 1, 65535);
    size_t n = (size_t)na * (size_t)nb * (size_t)inner;
    void *src = qt_arg_buf(a[0], "src", (char)tc, n, QT_RO);
    void *dst = qt_arg_buf(a[1], "dst", (char)tc, n, QT_RW);
    size_t isz = tc == 'B' ? 1 : 4;
    qt_check_no_overlap(dst, n * isz, "dst", src, n * isz, "src");
    if (isz == 1) {
        conv_swap_axes_u8(src, dst, na, nb, inner);
    } else {
        conv_swap_axes_u32(src, dst, na, nb, inner);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_swap_axes_obj, 5, 5, qt_conv_swap_axes_fn);

// conv_select_u8(e, eq, hp, state, sel, scratch) -> k
//   DSGU for a conv layer (METHOD 5): e the CHW error the layer receives,
//   ch = len(sel) channels; score of channel c = sum |e - z_e| over its map;
//   ebar = mean |e - z_e| * s_e over the whole tensor; k from hp =
//   array('f', [lmin, lmax]) and state = array('f', 1) (running max of ebar,
//   0 initially); sel int32[ch] receives the k chosen channels (ascending),
//   scratch uint32[2*ch].  O(ch) selection (select.h).
static mp_obj_t qt_conv_select_u8_fn(size_t n_args, const mp_obj_t *a) {
    size_t n, ch;
    const uint8_t *e = qt_arg_buf_len(a[0], "e", QT_TC_U8, 1, &n, QT_RO);
    const float *eq = qt_arg_qparams(a[1], "eq", QT_RO);
    const float *hp = qt_arg_f32(a[2], "hp", 2, QT_RO);
    float lmin = qt_check_f32(hp[0], "hp[0] (lmin)", 0.0f, 1.0f, true, false);
    qt_check_f32(hp[1], "hp[1] (lmax)", lmin, 1.0f, false, false);
    float *st = qt_arg_f32(a[3], "state", 1, QT_RW);
    int32_t *sel = qt_arg_buf_len(a[4], "sel", QT_TC_I32, 1, &ch, QT_RW);
    if (n % ch || n / ch > 32767) {
        qt_raise_value("e: expected a multiple of len(sel) = %z items (at most 32767 per channel), got %z", ch, n);
    }
    uint32_t *scratch = qt_arg_u32(a[5], "scratch", 2 * ch, QT_RW);
    conv_channel_scores_u8(e, (int32_t)ch, (int32_t)(n / ch), qp_zero(eq), scratch);
    uint64_t sum = 0;
    for (size_t c = 0; c < ch; c++) {
        sum += scratch[c];
    }
    float ebar = (float)sum / (float)n * eq[QT_QP_SCALE];
    int32_t k = dsgu_k(ebar, st, hp[0], hp[1], (int32_t)ch);
    select_topk_u32(scratch, (int32_t)ch, k, sel, scratch + ch);
    return mp_obj_new_int(k);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_conv_select_u8_obj, 6, 6, qt_conv_select_u8_fn);

// conv_scores_u8(e, eq, scores): DSGU score of every channel of a CHW error,
// sum |e - z_e| over its map; scores array('I') of ch items (ch = len(scores)),
// the input of select_topk.
static mp_obj_t qt_conv_scores_u8_fn(mp_obj_t e_in, mp_obj_t eq_in, mp_obj_t s_in) {
    size_t n, ch;
    const uint8_t *e = qt_arg_buf_len(e_in, "e", QT_TC_U8, 1, &n, QT_RO);
    const float *eq = qt_arg_qparams(eq_in, "eq", QT_RO);
    uint32_t *s = qt_arg_buf_len(s_in, "scores", QT_TC_U32, 1, &ch, QT_RW);
    if (n % ch || n / ch > 32767) {
        qt_raise_value("e: expected a multiple of len(scores) = %z items (at most 32767 per channel), got %z",
            ch, n);
    }
    conv_channel_scores_u8(e, (int32_t)ch, (int32_t)(n / ch), qp_zero(eq), s);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(qt_conv_scores_u8_obj, qt_conv_scores_u8_fn);

void qt_bind_conv(void) {
    mp_store_global(MP_QSTR_conv2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv2d_out_shape_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_out_shape, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_out_shape_obj));
    mp_store_global(MP_QSTR_conv2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv2d_scratch_len_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_scratch_len, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_scratch_len_obj));
    mp_store_global(MP_QSTR_conv2d_forward_f32, MP_OBJ_FROM_PTR(&qt_conv2d_forward_f32_obj));
    mp_store_global(MP_QSTR_conv2d_backward_f32, MP_OBJ_FROM_PTR(&qt_conv2d_backward_f32_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_forward_f32, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_forward_f32_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_backward_f32, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_backward_f32_obj));
    mp_store_global(MP_QSTR_conv2d_forward_u8, MP_OBJ_FROM_PTR(&qt_conv2d_forward_u8_obj));
    mp_store_global(MP_QSTR_conv2d_backward_u8, MP_OBJ_FROM_PTR(&qt_conv2d_backward_u8_obj));
    mp_store_global(MP_QSTR_conv2d_grad_u8, MP_OBJ_FROM_PTR(&qt_conv2d_grad_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_forward_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_forward_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_backward_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_backward_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_grad_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_grad_u8_obj));
    mp_store_global(MP_QSTR_conv2d_update_u8, MP_OBJ_FROM_PTR(&qt_conv2d_update_u8_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_update_u8, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_update_u8_obj));
    mp_store_global(MP_QSTR_conv2d_backward_mixed, MP_OBJ_FROM_PTR(&qt_conv2d_backward_mixed_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_backward_mixed, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_backward_mixed_obj));
    mp_store_global(MP_QSTR_conv2d_grad_mixed, MP_OBJ_FROM_PTR(&qt_conv2d_grad_mixed_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_grad_mixed, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_grad_mixed_obj));
    mp_store_global(MP_QSTR_conv2d_update_mixed, MP_OBJ_FROM_PTR(&qt_conv2d_update_mixed_obj));
    mp_store_global(MP_QSTR_conv_transpose2d_update_mixed, MP_OBJ_FROM_PTR(&qt_conv_transpose2d_update_mixed_obj));
    mp_store_global(MP_QSTR_conv_swap_axes, MP_OBJ_FROM_PTR(&qt_conv_swap_axes_obj));
    mp_store_global(MP_QSTR_conv_select_u8, MP_OBJ_FROM_PTR(&qt_conv_select_u8_obj));
    mp_store_global(MP_QSTR_conv_scores_u8, MP_OBJ_FROM_PTR(&qt_conv_scores_u8_obj));
}
