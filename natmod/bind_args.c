// Argument parsers shared by the uint8 and the float32/mixed bindings: see
// bind_args.h.
#include "bind_args.h"
#include "kernels/dense.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/loss.h"
#include "kernels/latent.h"

float qt_bias_scale(const float *bq) {
    if (!bq) {
        return 0.0f;
    }
    if (bq[QT_QP_ZERO] != 0.0f) {
        qt_raise_value("bq: zero point must be 0 for an int32 bias, got %f", &bq[QT_QP_ZERO]);
    }
    return bq[QT_QP_SCALE];
}

// ---- Dense -------------------------------------------------------------------

void qt_dense_shape(size_t n, const char *nx, size_t m, const char *ny, size_t wlen, const char *nw) {
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

const int32_t *qt_arg_rows(mp_obj_t sel_in, mp_obj_t k_in, size_t m, int32_t *k) {
    const int32_t *sel = qt_arg_buf_opt(sel_in, "sel", QT_TC_I32, m, QT_RO);
    if (!sel) {
        *k = (int32_t)m;
        return NULL;
    }
    *k = (int32_t)qt_arg_int(k_in, "k", 1, (mp_int_t)m);
    for (int32_t t = 0; t < *k; t++) {
        if (sel[t] < 0 || (size_t)sel[t] >= m) {
            qt_raise_value("sel: item %d must be a row index in 0..%z, got %d", (int)t, m - 1, (int)sel[t]);
        }
    }
    return sel;
}

void qt_dense_parse_bufs(size_t n_args, const mp_obj_t *a, const qt_bufarg_t *spec, size_t split,
    size_t n_spec, size_t *lens, void **p) {
    qt_parse_bufs(n_args, a, spec, split, lens, p);
    const char *name[QT_DL_LEN];
    name[QT_DL_N] = name[QT_DL_M] = name[QT_DL_W] = "";
    for (size_t i = 0; i < split; i++) {
        if (spec[i].tc != QT_TC_QP) {
            name[spec[i].slot] = spec[i].name;
        }
    }
    qt_dense_shape(lens[QT_DL_N], name[QT_DL_N], lens[QT_DL_M], name[QT_DL_M], lens[QT_DL_W], name[QT_DL_W]);
    qt_parse_bufs(n_args, a, spec + split, n_spec - split, lens, p + split);
}

// ---- update ------------------------------------------------------------------

void qt_arg_update(mp_obj_t hp_in, mp_obj_t flags_in, mp_obj_t rng_in, qt_update_t *u, float *tau,
    int32_t max_flags) {
    const float *hp = qt_arg_f32(hp_in, "hp", 3, QT_RO);
    u->lr = qt_check_f32(hp[0], "hp[0] (lr)", 0.0f, 10.0f, true, false);
    u->alpha_norm = qt_check_f32(hp[1], "hp[1] (alpha_norm)", 0.0f, 1.0f, true, false);
    *tau = qt_check_f32(hp[2], "hp[2] (tau)", 0.0f, 1.0f, false, true);
    int32_t flags = (int32_t)qt_arg_int(flags_in, "flags", 0, max_flags);
    if (flags & ~max_flags) {   // a bit inside the range that is no flag here (8 next to 16): its 0..7 message
        qt_arg_int(flags_in, "flags", 0, max_flags & 7);
    }
    u->rounding = flags & QT_UPD_ROUND_MASK;   // nearest, floor, stochastic, stochastic per row
    u->per_row = (flags & QT_UPD_PER_ROW) != 0;
    u->rms = (flags & QT_UPD_RMS) != 0;
    if (rng_in == MP_OBJ_NULL && u->rounding >= QT_ROUND_STOCHASTIC) {
        qt_raise_value("flags: float32 updates take no rounding mode (bits 0-1 must be 0 or 1)");
    }
    u->rng = rng_in == MP_OBJ_NULL ? NULL : qt_arg_u32(rng_in, "rng", 1, QT_RW);
    if (u->rounding >= QT_ROUND_STOCHASTIC) {
        qt_check_rng_seeded(u->rng);
    }
}

void qt_arg_update_filters(mp_obj_t hp_in, mp_obj_t flags_in, mp_obj_t rng_in, qt_update_t *u, float *tau) {
    qt_arg_update(hp_in, flags_in, rng_in, u, tau, 7 | QT_UPD_RMS);
    if (!u->per_row) {
        qt_raise_value("flags: the batch-1 conv update standardizes per filter (flag 4); for per-tensor use "
            "conv*_grad_u8 + update_rows_u8");
    }
}

void qt_arg_batch_update(const mp_obj_t *a, size_t glen, size_t rows, char gb_tc, qt_batch_update_args_t *out,
    qt_update_t *u) {
    out->w = qt_arg_u8(a[0], "w", glen, QT_RW);
    out->wq = qt_arg_qparams(a[1], "wq", QT_RW);
    out->gb = qt_arg_buf_opt(a[2], "gb", gb_tc, rows, QT_RW);
    out->b = qt_arg_buf_opt(a[3], "b", QT_TC_I32, rows, QT_RW);
    out->s_b = out->b ? qt_arg_qparams(a[4], "bq", QT_RO)[QT_QP_SCALE] : 1.0f;
    qt_arg_update(a[5], a[6], a[8], u, &out->tau, 7);
    u->s_w = out->wq[QT_QP_SCALE];
    u->zw = qt_qp_zero(out->wq);
}

float *qt_arg_std_state(mp_obj_t obj, size_t rows, bool per_row) {
    size_t len;
    float *st = qt_arg_buf_len(obj, "state", QT_TC_F32, QT_STD_STATE_HDR, &len, QT_RW);
    if (len != QT_STD_STATE_LEN(rows) && (per_row || len != QT_STD_STATE_HDR)) {
        if (per_row) {
            qt_raise_value("state: expected 5 + 2*rows = %z items (per-row statistics), got %z",
                (size_t)QT_STD_STATE_LEN(rows), len);
        }
        qt_raise_value("state: expected 5 (per tensor) or 5 + 2*rows = %z items, got %z",
            (size_t)QT_STD_STATE_LEN(rows), len);
    }
    return st;
}

float *qt_arg_state_rows(mp_obj_t obj, size_t *rows) {
    size_t len;
    float *st = qt_arg_buf_len(obj, "state", QT_TC_F32, QT_STD_STATE_LEN(1), &len, QT_RW);
    if ((len - QT_STD_STATE_HDR) % 2) {
        qt_raise_value("state: expected 5 + 2*rows items, got %z", len);
    }
    *rows = (len - QT_STD_STATE_HDR) / 2;
    return st;
}

// ---- Conv2d / ConvTranspose2d ------------------------------------------------

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

void qt_parse_geom(mp_obj_t obj, bool transposed, qt_conv_geom_t *g) {
    const size_t want = transposed ? 12 : 10;
    // The layout for the messages: the transposed one adds two items.
    const char *layout = "(in_ch, in_h, in_w, out_ch, k_h, k_w, stride_h, stride_w, pad_h, pad_w";
    const char *layout_end = transposed ? ", out_pad_h, out_pad_w)" : ")";
    const mp_obj_type_t *t = mp_obj_get_type(obj);
    if (t != &mp_type_tuple && t != &mp_type_list) {
        qt_raise_type("geom: expected a tuple %s%s", layout, layout_end);
    }
    size_t len;
    mp_obj_t *items;
    mp_obj_get_array(obj, &len, &items);
    if (len != want) {
        qt_raise_value("geom: expected %z items %s%s, got %z", want, layout, layout_end, len);
    }
    int32_t v[12];
    for (size_t i = 0; i < want; i++) {
        v[i] = (int32_t)qt_arg_int(items[i], geom_item_name(i), -32768, 32767);
    }
    // sizes and strides >= 1 (items 0..7), paddings >= 0 (8..)
    for (size_t i = 0; i < want; i++) {
        const int lo = i < 8;
        if (v[i] < lo) {
            qt_raise_value("%s: %s >= %d, got %d", geom_item_name(i),
                i < 6 ? "expected" : (i < 8 ? "stride must be" : "padding must be"), lo, (int)v[i]);
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

const int32_t *qt_parse_sel(size_t n_args, const mp_obj_t *a, size_t i_sel, int32_t n_ch, int32_t *n_sel) {
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

int32_t qt_conv_scratch_need(const qt_conv_geom_t *g, bool transposed) {
    return transposed ? conv_transpose2d_scratch_len_u8(g) : conv2d_scratch_len_u8(g);
}

void qt_conv_geom_lens(mp_obj_t geom, bool transposed, qt_conv_geom_t *g, size_t *lens) {
    qt_parse_geom(geom, transposed, g);
    lens[QT_CL_IN] = qt_conv_in_len(g);
    lens[QT_CL_OUT] = qt_conv_out_len(g);
    lens[QT_CL_W] = qt_conv_w_len(g);
    lens[QT_CL_CH] = (size_t)g->out_ch;
    lens[QT_CL_SCR] = (size_t)qt_conv_scratch_need(g, transposed);
}

// scratch: a bytearray of at least *_scratch_len(geom) bytes, 4-byte aligned,
// not overlapping the call's other buffers (checked by the caller).
uint8_t *qt_arg_conv_scratch(mp_obj_t obj, const qt_conv_geom_t *g, bool transposed, size_t *len) {
    const int32_t need = qt_conv_scratch_need(g, transposed);
    const char *fn = transposed ? "conv_transpose2d_scratch_len" : "conv2d_scratch_len";
    mp_buffer_info_t bi;
    if (obj == MP_OBJ_NULL || obj == mp_const_none || !mp_get_buffer(obj, &bi, MP_BUFFER_RW)) {
        qt_raise_type("scratch: expected a writable bytearray of %s(geom) = %d bytes", fn, (int)need);
    }
    uint8_t *p = qt_arg_buf_len(obj, "scratch", QT_TC_U8, (size_t)need, len, QT_RW);
    qt_check_align4(p, "scratch");
    return p;
}

// ---- loss heads and latent layer -----------------------------------------------

#define QT_STATS_LEN (3)

qt_lin_t qt_loss_in_u8(mp_obj_t x_in, const char *name, mp_obj_t qp_in, const char *qname, size_t n_min,
    size_t *n_out) {
    qt_lin_t t;
    t.q = (const uint8_t *)qt_arg_buf_len(x_in, name, QT_TC_U8, n_min, n_out, QT_RO);
    t.f = NULL;
    const float *qp = qt_arg_qparams(qp_in, qname, QT_RO);
    t.scale = qp[QT_QP_SCALE];
    t.zero = (int32_t)qp[QT_QP_ZERO];
    return t;
}

qt_lin_t qt_loss_in_f32(mp_obj_t x_in, const char *name, size_t n_min, size_t *n_out) {
    qt_lin_t t;
    t.q = NULL;
    t.f = (const float *)qt_arg_buf_len(x_in, name, QT_TC_F32, n_min, n_out, QT_RO);
    t.scale = 1.0f;
    t.zero = 0;
    return t;
}

qt_lout_t qt_loss_out_u8(mp_obj_t e_in, const char *name, size_t n, mp_obj_t qp_in, const char *qname) {
    qt_lout_t o;
    o.q = qt_arg_u8(e_in, name, n, QT_RW);
    o.f = NULL;
    o.qp = qt_arg_qparams(qp_in, qname, QT_RW);
    return o;
}

qt_lout_t qt_loss_out_f32(mp_obj_t e_in, const char *name, size_t n) {
    qt_lout_t o;
    o.q = NULL;
    o.f = qt_arg_f32(e_in, name, n, QT_RW);
    o.qp = NULL;
    return o;
}

static size_t lin_bytes(const qt_lin_t *t, size_t n) {
    return t->q ? n : n * sizeof(float);
}

static const void *lin_ptr(const qt_lin_t *t) {
    return t->q ? (const void *)t->q : (const void *)t->f;
}

static size_t lout_bytes(const qt_lout_t *o, size_t n) {
    return o->q ? n : n * sizeof(float);
}

static const void *lout_ptr(const qt_lout_t *o) {
    return o->q ? (const void *)o->q : (const void *)o->f;
}

static float *arg_stats(mp_obj_t obj) {
    return qt_arg_f32(obj, "stats", QT_STATS_LEN, QT_RW);
}

mp_obj_t qt_bce_call(qt_lin_t *x, size_t n, mp_obj_t t_in, qt_lout_t *e, mp_obj_t stats_in, mp_obj_t lut_in) {
    const uint8_t *t = qt_arg_u8(t_in, "t", n, QT_RO);
    float *stats = arg_stats(stats_in);
    float *lut = NULL;
    if (lut_in != MP_OBJ_NULL) {
        lut = lut_in == mp_const_none ? NULL : qt_arg_scratch4(lut_in, "lut", QT_TC_F32, QT_BCE_LUT_LEN);
    }
    qt_check_no_overlap(lout_ptr(e), lout_bytes(e, n), "e", lin_ptr(x), lin_bytes(x, n), "x");
    qt_check_no_overlap(lout_ptr(e), lout_bytes(e, n), "e", t, n, "t");
    if (lut) {
        qt_check_no_overlap(lut, QT_BCE_LUT_LEN * sizeof(float), "lut", lout_ptr(e), lout_bytes(e, n), "e");
        qt_check_no_overlap(lut, QT_BCE_LUT_LEN * sizeof(float), "lut", lin_ptr(x), lin_bytes(x, n), "x");
        qt_check_no_overlap(lut, QT_BCE_LUT_LEN * sizeof(float), "lut", t, n, "t");
    }
    qt_bce_sigmoid(x, t, n, e, stats, lut);
    return mp_const_none;
}

// Classes: at least 1, at most 65535 (an int label fits any board's small int).
#define QT_CE_MAX_C (65535)

void qt_ce_check_classes(size_t c) {
    if (c > QT_CE_MAX_C) {
        qt_raise_value("%s: expected at most %d items, got %z", "x", QT_CE_MAX_C, c);
    }
}

mp_obj_t qt_ce_call(qt_lin_t *x, size_t c, mp_obj_t label_in, qt_lout_t *e, mp_obj_t stats_in) {
    int32_t label = (int32_t)qt_arg_int(label_in, "label", 0, (mp_int_t)c - 1);
    float *stats = arg_stats(stats_in);
    qt_check_no_overlap(lout_ptr(e), lout_bytes(e, c), "e", lin_ptr(x), lin_bytes(x, c), "x");
    return mp_obj_new_int(qt_softmax_ce(x, c, label, e, stats));
}

size_t qt_latent_dim(size_t hlen) {
    if (hlen % 2) {
        qt_raise_value("h: expected an even number of items (mu then logvar, 2*L), got %z", hlen);
    }
    return hlen / 2;
}

void qt_check_dz_len(size_t dzlen, size_t L) {
    if (dzlen != L) {
        qt_raise_value("dz: expected L = len(h)/2 = %z items, got %z", L, dzlen);
    }
}

void qt_check_rng_seeded(const uint32_t *rng) {
    if (!rng || rng[0] == 0) {
        qt_raise_value("rng: the PRNG state must not be 0 (seed it with rng_seed)");
    }
}

uint32_t *qt_arg_rng(mp_obj_t rng_in) {
    if (rng_in == mp_const_none) {
        return NULL;
    }
    uint32_t *rng = qt_arg_u32(rng_in, "rng", 1, QT_RW);
    qt_check_rng_seeded(rng);
    return rng;
}

mp_obj_t qt_latent_fwd_call(qt_lin_t *h, size_t L, mp_obj_t rng_in, mp_obj_t eps_in, qt_lout_t *z,
    mp_obj_t stats_in) {
    uint32_t *rng = qt_arg_rng(rng_in);
    float *eps = qt_arg_f32(eps_in, "eps", L, rng ? QT_RW : QT_RO);
    float *stats = arg_stats(stats_in);
    qt_check_no_overlap(lout_ptr(z), lout_bytes(z, L), "z", lin_ptr(h), lin_bytes(h, 2 * L), "h");
    qt_check_no_overlap(lout_ptr(z), lout_bytes(z, L), "z", eps, L * sizeof(float), "eps");
    qt_check_no_overlap(eps, L * sizeof(float), "eps", lin_ptr(h), lin_bytes(h, 2 * L), "h");
    qt_latent_forward(h, L, rng, eps, z, stats);
    return mp_const_none;
}

// hp = array('f', 1): [beta], the KL weight, >= 0 and finite.
static float arg_beta(mp_obj_t hp_in) {
    const float *hp = qt_arg_f32(hp_in, "hp", 1, QT_RO);
    return qt_check_f32(hp[0], "hp[0] (beta)", 0.0f, 3.0e38f, false, false);
}

mp_obj_t qt_latent_bwd_call(qt_lin_t *h, size_t L, mp_obj_t eps_in, qt_lin_t *dz, qt_lout_t *dh,
    mp_obj_t hp_in, mp_obj_t stats_in) {
    const float *eps = qt_arg_f32(eps_in, "eps", L, QT_RO);
    float beta = arg_beta(hp_in);
    float *stats = arg_stats(stats_in);
    qt_check_no_overlap(lout_ptr(dh), lout_bytes(dh, 2 * L), "dh", lin_ptr(h), lin_bytes(h, 2 * L), "h");
    qt_check_no_overlap(lout_ptr(dh), lout_bytes(dh, 2 * L), "dh", lin_ptr(dz), lin_bytes(dz, L), "dz");
    qt_check_no_overlap(lout_ptr(dh), lout_bytes(dh, 2 * L), "dh", eps, L * sizeof(float), "eps");
    qt_latent_backward(h, L, eps, dz, beta, dh, stats);
    return mp_const_none;
}
