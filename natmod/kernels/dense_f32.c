// Dense kernels, float32 reference mode and mixed mode (uint8 forward, float32
// errors).  See dense.h.  Sums run in a fixed order (rows outer, columns
// inner) with no fused multiply-add, so every arch computes the same bits.
#include "dense.h"

void dense_forward_f32(const float *x, const float *w, const float *b, float *y, int32_t m, int32_t n,
    int32_t relu) {
    for (int32_t i = 0; i < m; i++) {
        const float *wr = w + (size_t)i * (size_t)n;
        float acc = b ? b[i] : 0.0f;
        for (int32_t j = 0; j < n; j++) {
            acc = acc + wr[j] * x[j];
        }
        y[i] = (relu && acc < 0.0f) ? 0.0f : acc;
    }
}

void dense_backward_f32(const float *e, const float *w, float *ep, int32_t m, int32_t n,
    const int32_t *rows, int32_t k) {
    qt_fill_f32(ep, (size_t)n, 0.0f);
    int32_t cnt = rows ? k : m;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        float c = e[i];
        if (c == 0.0f) {
            continue;
        }
        const float *wr = w + (size_t)i * (size_t)n;
        for (int32_t j = 0; j < n; j++) {
            ep[j] = ep[j] + c * wr[j];
        }
    }
}

void dense_backward_mixed(const float *e, const uint8_t *w, int32_t zw, float s_w, float *ep, int32_t m,
    int32_t n, const int32_t *rows, int32_t k) {
    // sum_i e_i (w_ij - zw) = sum_i e_i w_ij - zw sum_i e_i; scaled by s_w at the end.
    qt_fill_f32(ep, (size_t)n, 0.0f);
    float esum = 0.0f;
    int32_t cnt = rows ? k : m;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        float c = e[i];
        if (c == 0.0f) {
            continue;
        }
        esum = esum + c;
        const uint8_t *wr = w + (size_t)i * (size_t)n;
        for (int32_t j = 0; j < n; j++) {
            ep[j] = ep[j] + c * (float)wr[j];
        }
    }
    float off = (float)zw * esum;
    for (int32_t j = 0; j < n; j++) {
        ep[j] = s_w * (ep[j] - off);
    }
}

int32_t relu_backward_f32(float *e, const float *y, int32_t n) {
    int32_t cnt = 0;
    for (int32_t i = 0; i < n; i++) {
        if (y[i] <= 0.0f) {
            cnt += e[i] != 0.0f;
            e[i] = 0.0f;
        }
    }
    return cnt;
}

int32_t relu_backward_mixed(float *e, const uint8_t *y, int32_t n, int32_t zy) {
    int32_t cnt = 0;
    for (int32_t i = 0; i < n; i++) {
        if (y[i] <= zy) {
            cnt += e[i] != 0.0f;
            e[i] = 0.0f;
        }
    }
    return cnt;
}

// mean and std of v[0..n) (two float sums), the biased (population) std.
static void mean_std(float s, float sq, float cnt, float *mean, float *sd) {
    float mu = s / cnt;
    float var = sq / cnt - mu * mu;
    *mean = mu;
    *sd = qt_sqrt_f32(var < 0.0f ? 0.0f : var);
}

// Bias update (per tensor) from a float gradient g_i = e_i, used by the f32
// and mixed paths: into a float bias bf, or an int32 bias bi in steps of s_b
// (rounded like the weights).  Standardized by the RMS, as every bias
// (qt_bias_rms_sigma, update.h).
static void bias_update_from_f32(float *bf, int32_t *bi, float s_b, const float *e, int32_t m,
    const int32_t *rows, int32_t k, const qt_update_t *u, int32_t plain, float *state, int first) {
    int32_t cnt = rows ? k : m;
    float sq = 0.0f;
    int32_t nz = 0;
    for (int32_t t = 0; t < cnt; t++) {
        float g = e[rows ? rows[t] : t];
        if (g != 0.0f) {
            sq = sq + g * g;
            nz++;
        }
    }
    if (nz == 0) {
        return;
    }
    float c = u->lr, mu = 0.0f;
    if (!plain) {
        // state[3] blends towards 0: a state saved by the centred rule decays
        float sig = qt_bias_rms_sigma(state, sq, nz, 1.0f, u->alpha_norm, first);
        if (!(sig > 0.0f)) {
            return;
        }
        c = u->lr / sig;
        mu = state[3];
    }
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        float g = e[i];
        if (g == 0.0f) {
            continue;
        }
        float d = c * (g - mu);
        if (bf) {
            bf[i] = bf[i] - d;
        } else {
            float r = (float)qt_round_offset(u) * (1.0f / 65536.0f);
            float v = r - d / s_b;
            v = v > 1.0e9f ? 1.0e9f : (v < -1.0e9f ? -1.0e9f : v);
            int64_t nb = (int64_t)bi[i] + qt_floor_f32(v);
            bi[i] = nb > INT32_MAX ? INT32_MAX : (nb < -INT32_MAX ? -INT32_MAX : (int32_t)nb);
        }
    }
}

// Statistics of the rank-1 gradient e x^T over the rows with e_i != 0:
// per tensor into state[1..2], per row into the row's slot (done by the caller).
static void rank1_tensor_stats(const float *e, int32_t m, const int32_t *rows, int32_t k, float mx,
    float mxx, const qt_update_t *u, float *state, int first) {
    int32_t cnt = rows ? k : m;
    float se = 0.0f, see = 0.0f;
    int32_t kk = 0;
    for (int32_t t = 0; t < cnt; t++) {
        float c = e[rows ? rows[t] : t];
        if (c != 0.0f) {
            se = se + c;
            see = see + c * c;
            kk++;
        }
    }
    if (kk) {
        float fk = (float)kk;
        float me = se / fk, mee = see / fk;
        float mup = me * mx;
        float varp = mee * mxx - mup * mup;
        qt_std_blend(state + 1, mup, qt_sqrt_f32(varp < 0.0f ? 0.0f : varp), u->alpha_norm, first);
    }
}

void dense_update_f32(const float *e, const float *x, float *w, float *b, int32_t m, int32_t n,
    const int32_t *rows, int32_t k, const qt_update_t *u, int32_t plain, float *state) {
    const int first = !(state[0] > 0.0f);
    float sx = 0.0f, sxx = 0.0f;
    for (int32_t j = 0; j < n; j++) {
        sx = sx + x[j];
        sxx = sxx + x[j] * x[j];
    }
    float mx, sdx;
    mean_std(sx, sxx, (float)n, &mx, &sdx);
    float mxx = sxx / (float)n;
    if (!plain && !u->per_row) {
        rank1_tensor_stats(e, m, rows, k, mx, mxx, u, state, first);
    }
    int32_t cnt = rows ? k : m;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        float ce = e[i];
        if (ce == 0.0f) {
            continue;
        }
        float a, bb;      // w_ij += a x_j + bb
        if (plain) {
            a = -u->lr * ce;
            bb = 0.0f;
        } else {
            float *st = state + 1;
            if (u->per_row) {
                st = state + QT_STD_STATE_HDR + 2 * i;
                float ace = ce < 0.0f ? -ce : ce;
                qt_std_blend(st, ce * mx, ace * sdx, u->alpha_norm, first || !(st[1] > 0.0f));
            }
            if (!(st[1] > 0.0f)) {
                continue;
            }
            float c = u->lr / st[1];
            a = -c * ce;
            bb = c * st[0];
        }
        float *wr = w + (size_t)i * (size_t)n;
        for (int32_t j = 0; j < n; j++) {
            wr[j] = wr[j] + (a * x[j] + bb);
        }
    }
    if (b) {
        bias_update_from_f32(b, NULL, 1.0f, e, m, rows, k, u, plain, state, first);
    }
    state[0] += 1.0f;
}

void dense_update_mixed(const float *e, const uint8_t *x, int32_t zx, float s_x, uint8_t *w, int32_t *b,
    float s_b, int32_t m, int32_t n, const int32_t *rows, int32_t k, const qt_update_t *u, float *state,
    qt_wrange_t *new_range) {
    // Gradient g_ij = e_i s_x (x_j - z_x): statistics as in the float path on
    // the real x; the row loops are the uint8 ones (dense.c) with
    // A = round(2^16 c s_x e_i), B = round(2^16 c mu), in weight steps.
    const int first = !(state[0] > 0.0f);
    int32_t sxi = 0;
    uint32_t sxxi = 0;
    for (int32_t j = 0; j < n; j++) {
        int32_t c = (int32_t)x[j] - zx;
        sxi += c;
        sxxi += (uint32_t)(c * c);
    }
    const float fn = (float)n;
    const float mx = s_x * ((float)sxi / fn);
    const float mxx = (s_x * s_x) * ((float)sxxi / fn);
    float varx = mxx - mx * mx;
    const float sdx = qt_sqrt_f32(varx < 0.0f ? 0.0f : varx);
    if (!u->per_row) {
        rank1_tensor_stats(e, m, rows, k, mx, mxx, u, state, first);
    }
    int32_t qmin = INT32_MAX, qmax = INT32_MIN, updated = 0;
    int32_t cnt = rows ? k : m;
    const int32_t r0 = u->rounding == QT_ROUND_NEAREST ? 32768 : 0;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        float ce = e[i];
        if (ce == 0.0f) {
            continue;
        }
        float *st = state + 1;
        if (u->per_row) {
            st = state + QT_STD_STATE_HDR + 2 * i;
            float ace = ce < 0.0f ? -ce : ce;
            qt_std_blend(st, ce * mx, ace * sdx, u->alpha_norm, first || !(st[1] > 0.0f));
        }
        if (!(st[1] > 0.0f)) {
            continue;
        }
        float c = u->lr / (u->s_w * st[1]);
        float fa = c * (s_x * ce) * 65536.0f;
        float fb = c * st[0] * 65536.0f;
        fa = fa > 2097152.0f ? 2097152.0f : (fa < -2097152.0f ? -2097152.0f : fa);
        fb = fb > 536870912.0f ? 536870912.0f : (fb < -536870912.0f ? -536870912.0f : fb);
        int32_t A = qt_round_f32(fa), B = qt_round_f32(fb);
        uint8_t *wr = w + (size_t)i * (size_t)n;
        if (u->rounding == QT_ROUND_STOCHASTIC) {
            dense_update_row_stoch_u8(wr, x, n, A, B + A * zx, u->rng, &qmin, &qmax);
        } else {
            int32_t r = u->rounding == QT_ROUND_STOCH_ROW ? (int32_t)(qt_rng_next(u->rng) >> 16) : r0;
            dense_update_row_det_u8(wr, x, n, A, r + B + A * zx, &qmin, &qmax);
        }
        updated += n;
    }
    if (b) {
        bias_update_from_f32(NULL, b, s_b, e, m, rows, k, u, 0, state, first);
    }
    state[0] += 1.0f;
    new_range->lo = qmin;
    new_range->hi = qmax;
    new_range->n = qt_rows_distinct(rows, cnt) ? updated : 0;
}

void dense_grad_acc_f32(const float *e, const float *x, float *g, float *gb, int32_t m, int32_t n,
    const int32_t *rows, int32_t k) {
    int32_t cnt = rows ? k : m;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        float c = e[i];
        if (c == 0.0f) {
            continue;
        }
        if (gb) {
            gb[i] = gb[i] + c;
        }
        float *gr = g + (size_t)i * (size_t)n;
        for (int32_t j = 0; j < n; j++) {
            gr[j] = gr[j] + c * x[j];
        }
    }
}

void update_rows_f32(float *w, float *g, float *b, float *gb, int32_t rows_total, int32_t len,
    const qt_update_t *u, int32_t plain, float *state) {
    const int first = !(state[0] > 0.0f);
    const float fl = (float)len;
    if (!plain && !u->per_row) {
        float s = 0.0f, sq = 0.0f;
        int32_t nrows = 0;
        for (int32_t i = 0; i < rows_total; i++) {
            const float *gr = g + (size_t)i * (size_t)len;
            int32_t nz = 0;
            for (int32_t j = 0; j < len; j++) {
                nz |= gr[j] != 0.0f;
                s = s + gr[j];
                sq = sq + gr[j] * gr[j];
            }
            nrows += nz;
        }
        if (nrows) {
            float mean, sd;
            mean_std(s, sq, (float)nrows * fl, &mean, &sd);
            qt_std_blend(state + 1, mean, sd, u->alpha_norm, first);
        }
    }
    for (int32_t i = 0; i < rows_total; i++) {
        float *gr = g + (size_t)i * (size_t)len;
        float *wr = w + (size_t)i * (size_t)len;
        float s = 0.0f, sq = 0.0f;
        int32_t nz = 0;
        for (int32_t j = 0; j < len; j++) {
            nz |= gr[j] != 0.0f;
            s = s + gr[j];
            sq = sq + gr[j] * gr[j];
        }
        if (!nz) {
            continue;
        }
        float c = u->lr, mu = 0.0f;
        if (!plain) {
            float *st = state + 1;
            if (u->per_row) {
                st = state + QT_STD_STATE_HDR + 2 * i;
                float mean, sd;
                mean_std(s, sq, fl, &mean, &sd);
                qt_std_blend(st, mean, sd, u->alpha_norm, first || !(st[1] > 0.0f));
            }
            if (!(st[1] > 0.0f)) {
                c = 0.0f;
            } else {
                c = u->lr / st[1];
                mu = st[0];
            }
        }
        if (c != 0.0f) {
            for (int32_t j = 0; j < len; j++) {
                wr[j] = wr[j] - c * (gr[j] - mu);
            }
        }
        qt_fill_f32(gr, (size_t)len, 0.0f);
    }
    if (b && gb) {
        bias_update_from_f32(b, NULL, 1.0f, gb, rows_total, NULL, 0, u, plain, state, first);
        qt_fill_f32(gb, (size_t)rows_total, 0.0f);
    }
    state[0] += 1.0f;
}

void bias_update_f32(float *b, float *gb, int32_t n, const qt_update_t *u, int32_t plain, float *state) {
    bias_update_from_f32(b, NULL, 1.0f, gb, n, NULL, 0, u, plain, state, !(state[0] > 0.0f));
    qt_fill_f32(gb, (size_t)n, 0.0f);
    state[0] += 1.0f;
}

void dense_grad_acc_mixed(const float *e, const uint8_t *x, int32_t zx, float s_x, float *g, float *gb,
    int32_t m, int32_t n, const int32_t *rows, int32_t k) {
    int32_t cnt = rows ? k : m;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        float c = e[i];
        if (c == 0.0f) {
            continue;
        }
        if (gb) {
            gb[i] = gb[i] + c;
        }
        float cs = c * s_x;      // real gradient e_i s_x (x_j - z_x)
        float *gr = g + (size_t)i * (size_t)n;
        for (int32_t j = 0; j < n; j++) {
            gr[j] = gr[j] + cs * (float)((int32_t)x[j] - zx);
        }
    }
}

void update_rows_mixed(uint8_t *w, float *g, int32_t *b, float *gb, float s_b, int32_t rows_total,
    int32_t len, const qt_update_t *u, float *state, qt_wrange_t *new_range) {
    const int first = !(state[0] > 0.0f);
    const float fl = (float)len;
    int32_t qmin = INT32_MAX, qmax = INT32_MIN, updated = 0;
    if (!u->per_row) {
        float s = 0.0f, sq = 0.0f;
        int32_t nrows = 0;
        for (int32_t i = 0; i < rows_total; i++) {
            const float *gr = g + (size_t)i * (size_t)len;
            int32_t nz = 0;
            for (int32_t j = 0; j < len; j++) {
                nz |= gr[j] != 0.0f;
                s = s + gr[j];
                sq = sq + gr[j] * gr[j];
            }
            nrows += nz;
        }
        if (nrows) {
            float mean, sd;
            mean_std(s, sq, (float)nrows * fl, &mean, &sd);
            qt_std_blend(state + 1, mean, sd, u->alpha_norm, first);
        }
    }
    for (int32_t i = 0; i < rows_total; i++) {
        float *gr = g + (size_t)i * (size_t)len;
        uint8_t *wr = w + (size_t)i * (size_t)len;
        float s = 0.0f, sq = 0.0f;
        int32_t nz = 0;
        for (int32_t j = 0; j < len; j++) {
            nz |= gr[j] != 0.0f;
            s = s + gr[j];
            sq = sq + gr[j] * gr[j];
        }
        if (!nz) {
            continue;
        }
        float *st = state + 1;
        if (u->per_row) {
            st = state + QT_STD_STATE_HDR + 2 * i;
            float mean, sd;
            mean_std(s, sq, fl, &mean, &sd);
            qt_std_blend(st, mean, sd, u->alpha_norm, first || !(st[1] > 0.0f));
        }
        if (st[1] > 0.0f) {
            float c = u->lr / (u->s_w * st[1]);
            float mu = st[0];
            float rrow = 0.0f;
            if (u->rounding == QT_ROUND_STOCH_ROW) {
                rrow = (float)(int32_t)(qt_rng_next(u->rng) >> 16) * (1.0f / 65536.0f);
            }
            for (int32_t j = 0; j < len; j++) {
                float d = c * (gr[j] - mu);
                float r = u->rounding == QT_ROUND_STOCH_ROW ? rrow
                    : (float)qt_round_offset(u) * (1.0f / 65536.0f);
                float v = r - d;
                v = v > 1024.0f ? 1024.0f : (v < -1024.0f ? -1024.0f : v);
                int32_t q = (int32_t)wr[j] + qt_floor_f32(v);
                qmin = q < qmin ? q : qmin;
                qmax = q > qmax ? q : qmax;
                wr[j] = qt_clamp_u8(q, 0);
            }
            updated += len;
        }
        qt_fill_f32(gr, (size_t)len, 0.0f);
    }
    if (gb) {
        if (b) {
            bias_update_from_f32(NULL, b, s_b, gb, rows_total, NULL, 0, u, 0, state, first);
        }
        qt_fill_f32(gb, (size_t)rows_total, 0.0f);
    }
    state[0] += 1.0f;
    new_range->lo = qmin;
    new_range->hi = qmax;
    new_range->n = updated;
}
