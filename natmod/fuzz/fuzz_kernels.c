// libFuzzer target for the C kernels (issue 6 item 2): the geometry checks
// and every operator, with fuzzer-chosen shapes, scales, zero points, flags,
// DSGU selections and tensor contents.  Built with
//   clang -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
// (host_tools/soak.mk, `make soak-fuzz`), so an out-of-bounds access, a
// signed overflow, a bad shift or a float->int conversion out of range is a
// finding.  Buffers are malloc'd at exactly the size the Python binding
// accepts, so an access past the end lands in ASan's red zone.
//
// Arguments respect what the bindings (natmod/bind_*.c) check before a
// kernel runs -- scales > 0 and finite, zero points 0..255, hp ranges,
// sel indices in range, geometry from *_geom_init -- and nothing more:
// tensor contents, optimizer state and unsorted/duplicate sel are free,
// because Python code can pass any of those.
//
// Input layout: byte 0 picks the operator family, the rest is read as a
// stream of choices (zeros once it runs out).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/conv2d.h"
#include "../kernels/conv_transpose2d.h"
#include "../kernels/crc32.h"
#include "../kernels/dense.h"
#include "../kernels/latent.h"
#include "../kernels/loss.h"
#include "../kernels/mathf.h"
#include "../kernels/quant.h"
#include "../kernels/rng.h"
#include "../kernels/select.h"
#include "../kernels/update.h"

// ---- reading choices ---------------------------------------------------------

typedef struct {
    const uint8_t *p;
    size_t n;
} rd_t;

static uint32_t rd_u8(rd_t *r) {
    if (!r->n) {
        return 0;
    }
    r->n--;
    return *r->p++;
}

static uint32_t rd_u32(rd_t *r) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v = v << 8 | rd_u8(r);
    }
    return v;
}

// lo..hi inclusive, hi - lo < 2^16
static int32_t rd_range(rd_t *r, int32_t lo, int32_t hi) {
    uint32_t v = rd_u8(r) << 8 | rd_u8(r);
    return lo + (int32_t)(v % (uint32_t)(hi - lo + 1));
}

// Any float bit pattern (NaN, inf, subnormal) a quarter of the time, else a
// moderate value.
static float rd_any_f32(rd_t *r) {
    uint32_t k = rd_u8(r);
    if (k < 64) {
        return qt_u2f(rd_u32(r));
    }
    return (float)((int32_t)rd_u32(r)) * 1.0e-9f;
}

// A finite positive float 2^-40 .. 2^24 (what a qparams scale may be).
static float rd_scale(rd_t *r) {
    uint32_t e = 127 - 40 + (rd_u8(r) % 65);
    return qt_u2f(e << 23 | (rd_u32(r) & 0x7fffffu));
}

// A float in [lo, hi] (both finite).
static float rd_unit(rd_t *r, float lo, float hi) {
    return lo + (hi - lo) * (float)(rd_u32(r) >> 8) * (1.0f / 16777216.0f);
}

// ---- buffers of exactly the size the binding accepts ------------------------------

#define MAX_BUFS 32
static void *bufs[MAX_BUFS];
static int n_bufs;

static void *xalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        abort();
    }
    if (n_bufs < MAX_BUFS) {
        bufs[n_bufs++] = p;
    }
    return p;
}

static void free_all(void) {
    while (n_bufs) {
        free(bufs[--n_bufs]);
    }
}

static uint8_t *u8_buf(rd_t *r, size_t n) {
    uint8_t *b = xalloc(n);
    uint32_t mode = rd_u8(r) & 3;   // 0: fuzz bytes, 1: all 0, 2: all 255, 3: one value
    uint8_t v = (uint8_t)rd_u8(r);
    for (size_t i = 0; i < n; i++) {
        b[i] = mode == 0 ? (uint8_t)rd_u8(r) : mode == 1 ? 0 : mode == 2 ? 255 : v;
    }
    return b;
}

static float *f32_buf(rd_t *r, size_t n) {
    float *b = xalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        b[i] = rd_any_f32(r);
    }
    return b;
}

static int32_t *i32_buf(rd_t *r, size_t n) {
    int32_t *b = xalloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        b[i] = (rd_u8(r) & 1) ? (int32_t)rd_u32(r) : (int32_t)rd_u8(r) - 128;
    }
    return b;
}

// A qparams record as the binding accepts it.
static float *qp_buf(rd_t *r) {
    float *q = xalloc(QT_QP_LEN * sizeof(float));
    q[QT_QP_SCALE] = rd_scale(r);
    q[QT_QP_ZERO] = (float)rd_u8(r);
    q[QT_QP_MIN] = -rd_scale(r);
    q[QT_QP_MAX] = rd_scale(r);
    q[QT_QP_ALPHA] = rd_unit(r, 0.0f, 1.0f);
    q[QT_QP_OBS_MIN] = rd_any_f32(r);
    q[QT_QP_OBS_MAX] = rd_any_f32(r);
    q[QT_QP_OBS_N] = (float)(rd_u8(r) & 3);
    return q;
}

// DSGU selection: NULL (all) or k in-range indices (any order, repeats allowed:
// the bindings only check the range).
static const int32_t *sel_buf(rd_t *r, int32_t n, int32_t *k, int32_t k_min) {
    if (!(rd_u8(r) & 1)) {
        *k = n;
        return NULL;
    }
    *k = rd_range(r, k_min, n);
    int32_t *s = xalloc((size_t)n * sizeof(int32_t));
    int sorted = rd_u8(r) & 1;
    for (int32_t i = 0; i < n; i++) {
        s[i] = sorted ? i : rd_range(r, 0, n - 1);
    }
    return s;
}

// ConvTranspose2d input-channel slices: NULL (all) when allow_null, or a
// strictly ascending subset of 0..n-1 (qt_check_slices: what the bindings
// accept); int32[n] as the bindings size sel.
static const int32_t *asc_sel_buf(rd_t *r, int32_t n, int32_t *k, int allow_null) {
    if (allow_null && !(rd_u8(r) & 1)) {
        *k = n;
        return NULL;
    }
    int32_t *s = xalloc((size_t)n * sizeof(int32_t));
    *k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (rd_u8(r) & 1) {
            s[(*k)++] = i;
        }
    }
    return s;
}

// Mask-aware propagation (conv2d.h, dense.h): the receiving layer's input x,
// n items, as the bindings' optional x, xq give it; NULL half the time.
static const uint8_t *mask_buf(rd_t *r, size_t n, int32_t *zero_mask) {
    if (!(rd_u8(r) & 1)) {
        *zero_mask = 0;
        return NULL;
    }
    *zero_mask = (int32_t)rd_u8(r);
    return u8_buf(r, n);
}

static qt_update_t upd(rd_t *r, uint32_t *rng, const float *wq) {
    qt_update_t u;
    u.lr = rd_unit(r, 1.0e-6f, 10.0f);
    u.alpha_norm = rd_unit(r, 1.0e-6f, 1.0f);
    u.s_w = wq[QT_QP_SCALE];
    u.zw = (int32_t)wq[QT_QP_ZERO];
    u.rounding = (int32_t)(rd_u8(r) & 3);
    uint8_t f = rd_u8(r);
    u.per_row = (int32_t)(f & 1);
    u.rms = (int32_t)((f >> 1) & 1);
    *rng = rd_u32(r) | 1u;
    u.rng = rng;
    return u;
}

static float *state_buf(rd_t *r, int32_t rows) {
    float *s = f32_buf(r, QT_STD_STATE_LEN(rows));
    if (rd_u8(r) & 1) {
        memset(s, 0, QT_STD_STATE_LEN(rows) * sizeof(float));   // a fresh layer
    }
    return s;
}

static qt_fixmul_t mul(rd_t *r) {
    return qt_fixmul_from_f32(rd_scale(r));
}

// ---- geometry ---------------------------------------------------------------------------

static int32_t rd_dim(rd_t *r) {
    switch (rd_u8(r) & 7) {
        case 0:
            return (int32_t)rd_u32(r);             // anything
        case 1:
            return rd_range(r, 30000, 33000);     // around the limit
        case 2:
            return rd_range(r, -2, 300);
        default:
            return rd_range(r, 0, 9);
    }
}

static int geom(rd_t *r, qt_conv_geom_t *g, int transposed, int any) {
    int32_t v[12];
    for (int i = 0; i < 12; i++) {
        v[i] = any ? rd_dim(r) : (i < 4 ? rd_range(r, 1, 6) + (i == 1 || i == 2 ? rd_range(r, 0, 6) : 0)
                                   : rd_range(r, i >= 8 ? 0 : 1, 4));
    }
    if (transposed) {
        return conv_transpose2d_geom_init(g, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
            v[10], v[11]);
    }
    return conv2d_geom_init(g, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
}

// The checks the bindings rely on: every size the kernels compute in int32 fits.
static void geom_invariants(const qt_conv_geom_t *g, int transposed) {
    if (g->out_h < 1 || g->out_w < 1 || g->out_h > 32767 || g->out_w > 32767) {
        abort();
    }
    int64_t in = (int64_t)g->in_ch * g->in_h * g->in_w;
    int64_t out = (int64_t)g->out_ch * g->out_h * g->out_w;
    int64_t w = (int64_t)g->out_ch * g->in_ch * g->k_h * g->k_w;
    if (in != qt_conv_in_size(g) || out != qt_conv_out_size(g) || w != qt_conv_w_size(g)) {
        abort();
    }
    int32_t s = transposed ? conv_transpose2d_scratch_len_u8(g) : conv2d_scratch_len_u8(g);
    if (s < 0 || (transposed && conv_transpose2d_slices_scratch_len_u8(g) < 0)) {
        abort();
    }
}

// ---- operator families ---------------------------------------------------------------

static void fuzz_geometry(rd_t *r) {
    qt_conv_geom_t g;
    int t = (int)(rd_u8(r) & 1);
    if (geom(r, &g, t, 1) == QT_CONV_OK) {
        geom_invariants(&g, t);
    }
}

static void conv_rq(rd_t *r, qt_conv_rq_t *q, int relu) {
    q->zero_in = (int32_t)rd_u8(r);
    q->zero_w = (int32_t)rd_u8(r);
    q->zero_out = (int32_t)rd_u8(r);
    q->out = mul(r);
    q->bias = mul(r);
    q->relu = relu;
    q->mask = NULL;
    q->zero_mask = 0;
}

static void fuzz_conv(rd_t *r) {
    qt_conv_geom_t g;
    int t = (int)(rd_u8(r) & 1);
    if (geom(r, &g, t, 0) != QT_CONV_OK) {
        return;
    }
    geom_invariants(&g, t);
    size_t nin = (size_t)qt_conv_in_size(&g), nout = (size_t)qt_conv_out_size(&g);
    size_t nw = (size_t)qt_conv_w_size(&g);
    int32_t sl = t ? conv_transpose2d_scratch_len_u8(&g) : conv2d_scratch_len_u8(&g);
    uint8_t *scratch = u8_buf(r, (size_t)sl);
    int32_t stats[2], k;
    qt_wrange_t wr;     // what an update saw of its new weights
    uint32_t rng;
    qt_conv_rq_t q;
    switch (rd_u8(r) % 13) {
        case 0: {
            conv_rq(r, &q, (int)(rd_u8(r) & 1));
            uint8_t *x = u8_buf(r, nin), *w = u8_buf(r, nw), *y = xalloc(nout);
            int32_t *b = (rd_u8(r) & 1) ? i32_buf(r, (size_t)g.out_ch) : NULL;
            (t ? conv_transpose2d_forward_u8 : conv2d_forward_u8)(&g, x, w, b, y, &q, stats, scratch);
            break;
        }
        case 1: {
            conv_rq(r, &q, 0);
            q.mask = mask_buf(r, nin, &q.zero_mask);
            uint8_t *e = u8_buf(r, nout), *w = u8_buf(r, nw), *ex = xalloc(nin);
            if (t && (rd_u8(r) & 1)) {
                // DSGU over input-channel slices (bind_conv.c: with a sel only)
                const int32_t *sel = asc_sel_buf(r, g.in_ch, &k, 0);
                uint8_t *ss = u8_buf(r, (size_t)conv_transpose2d_slices_scratch_len_u8(&g));
                conv_transpose2d_backward_slices_u8(&g, e, w, ex, &q, stats, sel, k, ss);
                break;
            }
            const int32_t *sel = sel_buf(r, g.out_ch, &k, 0);
            (t ? conv_transpose2d_backward_input_u8 : conv2d_backward_input_u8)(&g, e, w, ex, &q, stats, sel,
                k, scratch);
            break;
        }
        case 2: {
            uint8_t *e = u8_buf(r, nout), *x = u8_buf(r, nin);
            int32_t *gw = i32_buf(r, nw), *gb = (rd_u8(r) & 1) ? i32_buf(r, (size_t)g.out_ch) : NULL;
            const int32_t *sel = sel_buf(r, g.out_ch, &k, 0);
            (t ? conv_transpose2d_grad_acc_u8 : conv2d_grad_acc_u8)(&g, e, (int32_t)rd_u8(r), x,
                (int32_t)rd_u8(r), gw, gb, sel, k, scratch);
            break;
        }
        case 3: {
            float *wq = qp_buf(r);
            qt_update_t u = upd(r, &rng, wq);
            u.per_row = 1;   // the conv batch-1 update standardizes per filter
            uint8_t *e = u8_buf(r, nout), *x = u8_buf(r, nin), *w = u8_buf(r, nw);
            int32_t *b = (rd_u8(r) & 1) ? i32_buf(r, (size_t)g.out_ch) : NULL;
            const int32_t *sel = sel_buf(r, g.out_ch, &k, 0);
            float *st = state_buf(r, g.out_ch);
            (t ? conv_transpose2d_update_u8 : conv2d_update_u8)(&g, e, (int32_t)rd_u8(r), x, (int32_t)rd_u8(r),
                w, b, sel, k, rd_scale(r), rd_scale(r), rd_scale(r), &u, st, (int)(rd_u8(r) & 1), &wr, scratch);
            qt_weights_qp_update(w, nw, wq, &wr, rd_unit(r, 0.0f, 1.0f));
            break;
        }
        case 4: {
            uint8_t *e = u8_buf(r, nout), *y = u8_buf(r, nout);
            conv_relu_mask_u8(e, y, (int32_t)nout, (int32_t)rd_u8(r), (int32_t)rd_u8(r));
            uint32_t *sc = xalloc((size_t)g.out_ch * sizeof(uint32_t));
            conv_channel_scores_u8(e, g.out_ch, g.out_h * g.out_w, (int32_t)rd_u8(r), sc);
            conv_relu_mask_scores_u8(e, y, g.out_ch, g.out_h * g.out_w, (int32_t)rd_u8(r), (int32_t)rd_u8(r), sc);
            break;
        }
        case 5: {
            float *e = f32_buf(r, nout), *ex = (rd_u8(r) & 1) ? xalloc(nin * sizeof(float)) : NULL;
            uint8_t *y = (rd_u8(r) & 1) ? u8_buf(r, nout) : NULL, *w = u8_buf(r, nw);
            const int32_t *sel = sel_buf(r, g.out_ch, &k, 0);
            (t ? conv_transpose2d_backward_mixed : conv2d_backward_mixed)(&g, e, y, (int32_t)rd_u8(r), w,
                (int32_t)rd_u8(r), rd_scale(r), ex, sel, k);
            break;
        }
        case 6: {
            float *e = f32_buf(r, nout), *gw = f32_buf(r, nw);
            float *gb = (rd_u8(r) & 1) ? f32_buf(r, (size_t)g.out_ch) : NULL;
            uint8_t *x = u8_buf(r, nin);
            const int32_t *sel = sel_buf(r, g.out_ch, &k, 0);
            (t ? conv_transpose2d_grad_mixed : conv2d_grad_mixed)(&g, e, x, (int32_t)rd_u8(r), rd_scale(r), gw,
                gb, sel, k);
            break;
        }
        case 7: {
            float *wq = qp_buf(r);
            qt_update_t u = upd(r, &rng, wq);
            u.per_row = 1;
            float *e = f32_buf(r, nout);
            uint8_t *x = u8_buf(r, nin), *w = u8_buf(r, nw);
            int32_t *b = (rd_u8(r) & 1) ? i32_buf(r, (size_t)g.out_ch) : NULL;
            const int32_t *sel = sel_buf(r, g.out_ch, &k, 0);
            float *st = state_buf(r, g.out_ch);
            // the mixed update's float rows: 4*(in_ch*k_h*k_w + out_ch) bytes (conv2d.h)
            size_t need = 4 * ((size_t)g.in_ch * g.k_h * g.k_w + (size_t)g.out_ch);
            uint8_t *s2 = (size_t)sl >= need ? scratch : xalloc(need);
            (t ? conv_transpose2d_update_mixed : conv2d_update_mixed)(&g, e, x, (int32_t)rd_u8(r), rd_scale(r), w,
                b, rd_scale(r), sel, k, &u, st, &wr, s2);
            break;
        }
        case 8: {
            float *x = f32_buf(r, nin), *w = f32_buf(r, nw), *y = xalloc(nout * sizeof(float));
            float *b = (rd_u8(r) & 1) ? f32_buf(r, (size_t)g.out_ch) : NULL;
            (t ? conv_transpose2d_forward_f32 : conv2d_forward_f32)(&g, x, w, b, y, (int)(rd_u8(r) & 1));
            break;
        }
        case 9: {
            float *e = f32_buf(r, nout), *x = f32_buf(r, nin), *w = f32_buf(r, nw);
            float *y = (rd_u8(r) & 1) ? f32_buf(r, nout) : NULL;
            float *ex = (rd_u8(r) & 1) ? xalloc(nin * sizeof(float)) : NULL;
            float *gw = (rd_u8(r) & 1) ? f32_buf(r, nw) : NULL;
            float *gb = (rd_u8(r) & 1) ? f32_buf(r, (size_t)g.out_ch) : NULL;
            const int32_t *sel = sel_buf(r, g.out_ch, &k, 0);
            (t ? conv_transpose2d_backward_f32 : conv2d_backward_f32)(&g, e, y, x, w, ex, gw, gb, sel, k);
            break;
        }
        case 10: {
            // filter-major copies (the float/mixed per-filter update paths)
            size_t kk = (size_t)g.k_h * g.k_w;
            if (rd_u8(r) & 1) {
                uint8_t *src = u8_buf(r, nw), *dst = xalloc(nw);
                conv_swap_axes_u8(src, dst, g.in_ch, g.out_ch, (int32_t)kk);
            } else {
                uint32_t *src = (uint32_t *)i32_buf(r, nw), *dst = xalloc(nw * 4);
                conv_swap_axes_u32(src, dst, g.in_ch, g.out_ch, (int32_t)kk);
            }
            break;
        }
        case 11: {
            // ConvTranspose2d DSGU over input-channel slices: scores, update
            if (!t) {
                break;
            }
            uint8_t *e = u8_buf(r, nout), *x = u8_buf(r, nin);
            size_t nsc = 2 * (size_t)g.in_ch + (size_t)g.in_h * g.in_w;   // the binding's scratch
            uint32_t *sc = xalloc(nsc * sizeof(uint32_t));
            conv_transpose2d_slice_scores_u8(&g, e, (int32_t)rd_u8(r), x, (int32_t)rd_u8(r), sc,
                sc + 2 * g.in_ch);
            float *wq = qp_buf(r);
            qt_update_t u = upd(r, &rng, wq);
            u.per_row = 1;
            uint8_t *w = u8_buf(r, nw);
            int32_t *b = (rd_u8(r) & 1) ? i32_buf(r, (size_t)g.out_ch) : NULL;
            const int32_t *sel = asc_sel_buf(r, g.in_ch, &k, 1);
            float *st = state_buf(r, g.in_ch);
            uint8_t *ss = u8_buf(r, (size_t)conv_transpose2d_slices_scratch_len_u8(&g));
            conv_transpose2d_update_slices_u8(&g, e, (int32_t)rd_u8(r), x, (int32_t)rd_u8(r), w, b, sel, k,
                rd_scale(r), rd_scale(r), rd_scale(r), &u, st, (int)(rd_u8(r) & 1), &wr, ss);
            qt_weights_qp_update(w, nw, wq, &wr, rd_unit(r, 0.0f, 1.0f));
            break;
        }
        default: {
            // the batch-1 gradient pieces the update is built from
            uint8_t *e = u8_buf(r, nout), *x = u8_buf(r, nin);
            int32_t o = rd_range(r, 0, g.out_ch - 1);
            if (!t) {
                int32_t *colsum;
                int32_t zx = (int32_t)rd_u8(r);
                uint8_t *cols = conv2d_grad_prepare_u8(&g, x, zx, scratch, &colsum);
                int32_t *grow = xalloc((size_t)g.in_ch * g.k_h * g.k_w * 4);
                uint32_t *work = xalloc(2 * (((size_t)g.out_h * g.out_w + 3) & ~(size_t)3) + 8);
                conv2d_filter_grad_u8(&g, e, (int32_t)rd_u8(r), cols, colsum, zx, o, grow, (int)(rd_u8(r) & 1),
                    work);
            }
            break;
        }
    }
}

static void fuzz_dense(rd_t *r) {
    int32_t m = rd_range(r, 1, 40), n = rd_range(r, 1, 300), k;
    int32_t nr[2];
    qt_wrange_t wr;
    uint32_t rng;
    switch (rd_u8(r) % 16) {
        case 0: {
            qt_dense_fwd_t q = {(int32_t)rd_u8(r), (int32_t)rd_u8(r), (int32_t)rd_u8(r), mul(r), mul(r),
                                (int32_t)(rd_u8(r) & 1)};
            uint8_t *x = u8_buf(r, (size_t)n), *w = u8_buf(r, (size_t)m * n), *y = xalloc((size_t)m);
            int32_t *b = (rd_u8(r) & 1) ? i32_buf(r, (size_t)m) : NULL;
            int32_t *xs = (rd_u8(r) & 1) ? xalloc(QT_XS_LEN(n) * 4) : NULL;
            dense_forward_u8(x, w, b, y, m, n, &q, nr, xs);
            break;
        }
        case 1: {
            qt_dense_bwd_t q = {(int32_t)rd_u8(r), (int32_t)rd_u8(r), (int32_t)rd_u8(r), mul(r), NULL, 0};
            q.mask = mask_buf(r, (size_t)n, &q.zm);
            uint8_t *e = u8_buf(r, (size_t)m), *w = u8_buf(r, (size_t)m * n), *ep = xalloc((size_t)n);
            const int32_t *rows = sel_buf(r, m, &k, 1);
            int32_t *acc = xalloc((size_t)n * 4);
            dense_backward_u8(e, w, ep, m, n, rows, k, &q, acc, nr);
            break;
        }
        case 2: {
            uint8_t *e = u8_buf(r, (size_t)m), *y = u8_buf(r, (size_t)m);
            relu_backward_u8(e, y, m, (int32_t)rd_u8(r), (int32_t)rd_u8(r));
            float *ef = f32_buf(r, (size_t)m), *yf = f32_buf(r, (size_t)m);
            relu_backward_f32(ef, yf, m);
            relu_backward_mixed(ef, y, m, (int32_t)rd_u8(r));
            break;
        }
        case 3: {
            float *wq = qp_buf(r);
            qt_update_t u = upd(r, &rng, wq);
            qt_dense_upd_t d = {(int32_t)rd_u8(r), (int32_t)rd_u8(r), rd_scale(r), rd_scale(r), rd_scale(r)};
            uint8_t *e = u8_buf(r, (size_t)m), *x = u8_buf(r, (size_t)n), *w = u8_buf(r, (size_t)m * n);
            int32_t *b = (rd_u8(r) & 1) ? i32_buf(r, (size_t)m) : NULL;
            const int32_t *rows = sel_buf(r, m, &k, 1);
            float *st = state_buf(r, m);
            dense_update_u8(e, x, w, b, m, n, rows, k, &d, &u, st, &wr);
            qt_weights_qp_update(w, (size_t)m * n, wq, &wr, rd_unit(r, 0.0f, 1.0f));
            break;
        }
        case 4: {
            uint8_t *e = u8_buf(r, (size_t)m), *x = u8_buf(r, (size_t)n);
            int32_t *g = i32_buf(r, (size_t)m * n), *gb = (rd_u8(r) & 1) ? i32_buf(r, (size_t)m) : NULL;
            const int32_t *rows = sel_buf(r, m, &k, 1);
            dense_grad_acc_u8(e, x, g, gb, m, n, rows, k, (int32_t)rd_u8(r), (int32_t)rd_u8(r));
            break;
        }
        case 5: {
            float *wq = qp_buf(r);
            qt_update_t u = upd(r, &rng, wq);
            uint8_t *w = u8_buf(r, (size_t)m * n);
            int32_t *g = i32_buf(r, (size_t)m * n);
            float *st = state_buf(r, m);
            qt_update_rows_u8(w, g, m, n, rd_scale(r), &u, st, (int)(rd_u8(r) & 1), &wr);
            if (rd_u8(r) & 1) {
                int32_t *b = i32_buf(r, (size_t)m), *gb = i32_buf(r, (size_t)m);
                const int32_t *rows = sel_buf(r, m, &k, 1);
                uint8_t *e = (rd_u8(r) & 1) ? u8_buf(r, (size_t)m) : NULL;
                qt_update_bias_i32(b, e ? NULL : gb, e, (int32_t)rd_u8(r), m, rows, k, rd_scale(r), rd_scale(r),
                    &u, st, (int)(rd_u8(r) & 1));
            }
            qt_weights_qp_update(w, (size_t)m * n, wq, &wr, rd_unit(r, 0.0f, 1.0f));
            break;
        }
        case 6: {
            float *x = f32_buf(r, (size_t)n), *w = f32_buf(r, (size_t)m * n), *y = xalloc((size_t)m * 4);
            float *b = (rd_u8(r) & 1) ? f32_buf(r, (size_t)m) : NULL;
            dense_forward_f32(x, w, b, y, m, n, (int32_t)(rd_u8(r) & 1));
            break;
        }
        case 7: {
            float *e = f32_buf(r, (size_t)m), *w = f32_buf(r, (size_t)m * n), *ep = xalloc((size_t)n * 4);
            const int32_t *rows = sel_buf(r, m, &k, 1);
            dense_backward_f32(e, w, ep, m, n, rows, k);
            break;
        }
        case 8: {
            float *e = f32_buf(r, (size_t)m), *ep = xalloc((size_t)n * 4);
            uint8_t *w = u8_buf(r, (size_t)m * n);
            const int32_t *rows = sel_buf(r, m, &k, 1);
            dense_backward_mixed(e, w, (int32_t)rd_u8(r), rd_scale(r), ep, m, n, rows, k);
            break;
        }
        case 9: {
            float wq[QT_QP_LEN] = {1.0f};
            qt_update_t u = upd(r, &rng, wq);
            float *e = f32_buf(r, (size_t)m), *x = f32_buf(r, (size_t)n), *w = f32_buf(r, (size_t)m * n);
            float *b = (rd_u8(r) & 1) ? f32_buf(r, (size_t)m) : NULL;
            const int32_t *rows = sel_buf(r, m, &k, 1);
            float *st = state_buf(r, m);
            dense_update_f32(e, x, w, b, m, n, rows, k, &u, (int32_t)(rd_u8(r) & 1), st);
            break;
        }
        case 10: {
            float *wq = qp_buf(r);
            qt_update_t u = upd(r, &rng, wq);
            float *e = f32_buf(r, (size_t)m);
            uint8_t *x = u8_buf(r, (size_t)n), *w = u8_buf(r, (size_t)m * n);
            int32_t *b = (rd_u8(r) & 1) ? i32_buf(r, (size_t)m) : NULL;
            const int32_t *rows = sel_buf(r, m, &k, 1);
            float *st = state_buf(r, m);
            dense_update_mixed(e, x, (int32_t)rd_u8(r), rd_scale(r), w, b, rd_scale(r), m, n, rows, k, &u, st, &wr);
            break;
        }
        case 11: {
            float *e = f32_buf(r, (size_t)m), *x = f32_buf(r, (size_t)n), *g = f32_buf(r, (size_t)m * n);
            float *gb = (rd_u8(r) & 1) ? f32_buf(r, (size_t)m) : NULL;
            const int32_t *rows = sel_buf(r, m, &k, 1);
            dense_grad_acc_f32(e, x, g, gb, m, n, rows, k);
            float wq[QT_QP_LEN] = {1.0f};
            qt_update_t u = upd(r, &rng, wq);
            float *w = f32_buf(r, (size_t)m * n), *b = gb ? f32_buf(r, (size_t)m) : NULL;
            update_rows_f32(w, g, b, gb, m, n, &u, (int32_t)(rd_u8(r) & 1), state_buf(r, m));
            break;
        }
        case 12: {
            float *e = f32_buf(r, (size_t)m), *g = f32_buf(r, (size_t)m * n);
            float *gb = (rd_u8(r) & 1) ? f32_buf(r, (size_t)m) : NULL;
            uint8_t *x = u8_buf(r, (size_t)n);
            const int32_t *rows = sel_buf(r, m, &k, 1);
            dense_grad_acc_mixed(e, x, (int32_t)rd_u8(r), rd_scale(r), g, gb, m, n, rows, k);
            float *wq = qp_buf(r);
            qt_update_t u = upd(r, &rng, wq);
            uint8_t *w = u8_buf(r, (size_t)m * n);
            int32_t *b = gb ? i32_buf(r, (size_t)m) : NULL;
            update_rows_mixed(w, g, b, gb, rd_scale(r), m, n, &u, state_buf(r, m), &wr);
            break;
        }
        case 13: {
            // Dense DSGU: the rows' scores (ReLU mask fused), k, the top k
            uint8_t *e = u8_buf(r, (size_t)m);
            uint8_t *y = (rd_u8(r) & 1) ? u8_buf(r, (size_t)m) : NULL;
            float *st = f32_buf(r, 1);
            float lmin = rd_unit(r, 1.0e-6f, 1.0f);
            int32_t *idx = xalloc((size_t)m * 4);
            uint32_t *scr = xalloc((size_t)m * 8);
            dense_select_rows_u8(e, m, (int32_t)rd_u8(r), rd_scale(r), st, lmin, rd_unit(r, lmin, 1.0f), idx, scr,
                y, (int32_t)rd_u8(r));
            break;
        }
        case 14: {
            // a float32 bias vector alone (bias_update_f32: RMS standardized)
            float wq[QT_QP_LEN] = {1.0f};
            qt_update_t u = upd(r, &rng, wq);
            float *gb = f32_buf(r, (size_t)m), *b = f32_buf(r, (size_t)m);
            bias_update_f32(b, gb, m, &u, (int32_t)(rd_u8(r) & 1), state_buf(r, 0));
            break;
        }
        default: {
            uint32_t ws;
            uint8_t *w = u8_buf(r, (size_t)n), *x = u8_buf(r, (size_t)n);
            qt_dot_u8(w, x, n, &ws);
            break;
        }
    }
}

static void lin(rd_t *r, qt_lin_t *t, size_t n, int q) {
    t->q = q ? u8_buf(r, n) : NULL;
    t->f = q ? NULL : f32_buf(r, n);
    t->scale = rd_scale(r);
    t->zero = (int32_t)rd_u8(r);
}

static void lout(rd_t *r, qt_lout_t *t, size_t n, int q) {
    t->q = q ? xalloc(n) : NULL;
    t->f = q ? NULL : xalloc(n * 4);
    t->qp = q ? qp_buf(r) : NULL;
}

static void fuzz_loss(rd_t *r) {
    qt_lin_t a, b;
    qt_lout_t o;
    float stats[3];
    int qa = (int)(rd_u8(r) & 1), qo = (int)(rd_u8(r) & 1);
    switch (rd_u8(r) % 4) {
        case 0: {
            size_t n = (size_t)rd_range(r, 1, 800);
            lin(r, &a, n, qa);
            uint8_t *t = u8_buf(r, n);
            lout(r, &o, n, qo);
            float *lut = (qa && (rd_u8(r) & 1)) ? xalloc(QT_BCE_LUT_LEN * 4) : NULL;
            qt_bce_sigmoid(&a, t, n, &o, stats, lut);
            break;
        }
        case 1: {
            size_t c = (size_t)rd_range(r, 1, 20);
            lin(r, &a, c, qa);
            lout(r, &o, c, qo);
            qt_softmax_ce(&a, c, rd_range(r, 0, (int32_t)c - 1), &o, stats);
            break;
        }
        case 2: {
            size_t L = (size_t)rd_range(r, 1, 20);
            lin(r, &a, 2 * L, qa);
            float *eps = f32_buf(r, L);
            uint32_t rng = rd_u32(r);
            lout(r, &o, L, qo);
            qt_latent_forward(&a, L, (rd_u8(r) & 1) ? &rng : NULL, eps, &o, stats);
            break;
        }
        default: {
            size_t L = (size_t)rd_range(r, 1, 20);
            lin(r, &a, 2 * L, qa);
            float *eps = f32_buf(r, L);
            lin(r, &b, L, (int)(rd_u8(r) & 1));
            lout(r, &o, 2 * L, qo);
            float beta = (rd_u8(r) & 1) ? rd_unit(r, 0.0f, 1.0e30f) : rd_any_f32(r);
            qt_latent_backward(&a, L, eps, &b, beta, &o, stats);
            break;
        }
    }
}

static void fuzz_misc(rd_t *r) {
    switch (rd_u8(r) % 6) {
        case 0: {
            int32_t n = rd_range(r, 1, 300);
            int32_t k = rd_range(r, 1, n);
            uint32_t *sc = (uint32_t *)i32_buf(r, (size_t)n), *scr = xalloc((size_t)n * 4);
            int32_t *idx = xalloc((size_t)n * 4);
            select_topk_u32(sc, n, k, idx, scr);
            float emax = rd_any_f32(r);
            float lmin = rd_unit(r, 1.0e-6f, 1.0f);
            dsgu_k(rd_any_f32(r), &emax, lmin, rd_unit(r, lmin, 1.0f), n);
            break;
        }
        case 1: {
            size_t n = (size_t)rd_range(r, 0, 64);
            uint32_t st = rd_u32(r);
            float *out = xalloc(n * 4 + 1);
            qt_rng_normal(&st, out, n);
            qt_rng_seed(rd_u32(r));
            break;
        }
        case 2: {
            size_t n = (size_t)rd_range(r, 0, 300);
            uint8_t *b = u8_buf(r, n);
            qt_crc32_update(rd_u32(r), b, n);
            break;
        }
        case 3: {
            float x = rd_any_f32(r);
            qt_expf(x);
            qt_logf(x);
            qt_log1pf(x);
            qt_sqrtf(x);
            qt_sigmoidf(x);
            float u = qt_u2f(rd_u32(r) & 0x3f800000u);  // [0, 1]
            qt_log1p_unitf(u);
            break;
        }
        case 4: {
            float s;
            int32_t z;
            // qp_from_range's binding checks the range is finite
            qt_qparams_from_range(rd_unit(r, -3.0e38f, 3.0e38f), rd_unit(r, -3.0e38f, 3.0e38f), &s, &z);
            // qp_update's binding checks alpha, and the range and observations
            // of the records it updates; the kernel must stay defined with
            // any value (NaN, inf) in every other field, and in those too.
            float *qp = qp_buf(r);
            for (int i = 0; i < QT_QP_LEN; i++) {
                if (i != QT_QP_ALPHA && (rd_u8(r) & 1)) {
                    qp[i] = rd_any_f32(r);
                }
            }
            qt_qp_update(qp);
            qt_fixmul_from_f32(rd_any_f32(r));
            qt_round_f32(rd_any_f32(r));          // saturating, NaN -> 0: any float
            qt_floor_f32(rd_any_f32(r));
            break;
        }
        default: {
            qt_fixmul_t f = mul(r);
            int32_t acc = (int32_t)rd_u32(r);
            int32_t z = (int32_t)rd_u8(r);
            qt_requant_u8(acc, f, z, (rd_u8(r) & 1) ? z : 0);
            qt_fixmul_apply(acc, f);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) {
        return 0;
    }
    rd_t r = {data + 1, size - 1};
    switch (data[0] % 5) {
        case 0:
            fuzz_geometry(&r);
            break;
        case 1:
            fuzz_conv(&r);
            break;
        case 2:
            fuzz_dense(&r);
            break;
        case 3:
            fuzz_loss(&r);
            break;
        default:
            fuzz_misc(&r);
            break;
    }
    free_all();
    return 0;
}
