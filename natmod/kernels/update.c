// Weight/bias update with gradient standardization: see update.h.
// Float math happens once per structure (or per element only in the batch
// path, once per batch); every float operation is a single binary32 op in the
// order written here, mirrored by host_tools/qtrain_host/golden/dense.py.
#include "update.h"

void qt_std_blend(float *st, float mu, float sig, float alpha, int first) {
    if (first) {
        st[0] = mu;
        st[1] = sig;
    } else {
        float b = 1.0f - alpha;
        st[0] = b * st[0] + alpha * mu;
        st[1] = b * st[1] + alpha * sig;
    }
}

static float clampf(float v, float lim) {
    return v > lim ? lim : (v < -lim ? -lim : v);
}

static inline int32_t gb_at(const int32_t *gb, const uint8_t *e, int32_t ze, int32_t i) {
    return gb ? gb[i] : (int32_t)e[i] - ze;
}

void qt_update_bias_i32(int32_t *b, const int32_t *gb, const uint8_t *e, int32_t ze,
    int32_t rows_total, const int32_t *rows, int32_t k, float s_g, float s_b,
    const qt_update_t *u, float *state, int first) {
    int32_t cnt = rows ? k : rows_total;
    int64_t sum = 0;
    float sq = 0.0f;
    int32_t nz = 0;
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t gi = gb_at(gb, e, ze, i);
        if (gi != 0) {
            float g = (float)gi;
            sum += gi;
            sq = sq + g * g;
            nz++;
        }
    }
    if (nz == 0) {
        return;
    }
    float fn = (float)nz;
    float mean = (float)sum / fn;
    float var = sq / fn - mean * mean;
    if (var < 0.0f) {
        var = 0.0f;
    }
    qt_std_blend(state + 3, s_g * mean, s_g * qt_sqrt_f32(var), u->alpha_norm, first);
    float sig = state[4];
    if (!(sig > 0.0f)) {
        return;
    }
    float c = u->lr / (s_b * sig);
    float mu = state[3];
    for (int32_t t = 0; t < cnt; t++) {
        int32_t i = rows ? rows[t] : t;
        int32_t gi = gb_at(gb, e, ze, i);
        if (gi == 0) {
            continue;
        }
        float d = c * (s_g * (float)gi - mu);
        float r = (float)qt_round_offset(u) * (1.0f / 65536.0f);
        int64_t nb = (int64_t)b[i] + qt_floor_f32(clampf(r - d, 1.0e9f));
        b[i] = nb > INT32_MAX ? INT32_MAX : (nb < -INT32_MAX ? -INT32_MAX : (int32_t)nb);
    }
}

// Statistics of one row of g: number of nonzeros, exact sum, float sum of squares.
static int32_t row_stats(const int32_t *g, int32_t len, int64_t *sum, float *sq) {
    int32_t nz = 0;
    int64_t s = 0;
    float q = 0.0f;
    for (int32_t j = 0; j < len; j++) {
        int32_t v = g[j];
        if (v) {
            nz = 1;
            float f = (float)v;
            s += v;
            q = q + f * f;
        }
    }
    *sum = s;
    *sq = q;
    return nz;
}

void qt_update_rows_u8(uint8_t *w, int32_t *g, int32_t rows_total, int32_t len, float s_g,
    const qt_update_t *u, float *state, int first, int32_t new_range[2]) {
    int32_t qmin = INT32_MAX, qmax = INT32_MIN;
    float fl = (float)len;
    // Per tensor: statistics over all rows that have a gradient.
    if (!u->per_row) {
        int64_t sum = 0;
        float sq = 0.0f;
        int32_t rows = 0;
        for (int32_t i = 0; i < rows_total; i++) {
            int64_t s;
            float q;
            if (row_stats(g + (size_t)i * (size_t)len, len, &s, &q)) {
                sum += s;
                sq = sq + q;
                rows++;
            }
        }
        if (rows) {
            float fn = (float)rows * fl;
            float mean = (float)sum / fn;
            float var = sq / fn - mean * mean;
            if (var < 0.0f) {
                var = 0.0f;
            }
            qt_std_blend(state + 1, s_g * mean, s_g * qt_sqrt_f32(var), u->alpha_norm, first);
        }
    }
    for (int32_t i = 0; i < rows_total; i++) {
        int32_t *gr = g + (size_t)i * (size_t)len;
        uint8_t *wr = w + (size_t)i * (size_t)len;
        int64_t s;
        float q;
        if (!row_stats(gr, len, &s, &q)) {
            continue;
        }
        float *st = state + 1;
        if (u->per_row) {
            st = state + QT_STD_STATE_HDR + 2 * i;
            float mean = (float)s / fl;
            float var = q / fl - mean * mean;
            if (var < 0.0f) {
                var = 0.0f;
            }
            // A row seen for the first time takes its statistics as they are.
            qt_std_blend(st, s_g * mean, s_g * qt_sqrt_f32(var), u->alpha_norm, first || !(st[1] > 0.0f));
        }
        float sig = st[1];
        if (sig > 0.0f) {
            float c = u->lr / (u->s_w * sig);
            float mu = st[0];
            float rrow = 0.0f;
            if (u->rounding == QT_ROUND_STOCH_ROW) {
                rrow = (float)(int32_t)(qt_rng_next(u->rng) >> 16) * (1.0f / 65536.0f);
            }
            for (int32_t j = 0; j < len; j++) {
                float d = c * (s_g * (float)gr[j] - mu);
                float r = u->rounding == QT_ROUND_STOCH_ROW ? rrow
                    : (float)qt_round_offset(u) * (1.0f / 65536.0f);
                int32_t v = (int32_t)wr[j] + qt_floor_f32(clampf(r - d, 1024.0f));
                qmin = v < qmin ? v : qmin;
                qmax = v > qmax ? v : qmax;
                wr[j] = qt_clamp_u8(v, 0);
            }
        }
        qt_fill_i32(gr, (size_t)len, 0);
    }
    new_range[0] = qmin;
    new_range[1] = qmax;
}

int32_t qt_weights_qp_update(uint8_t *w, size_t n, float *wq, const int32_t new_range[2], float tau) {
    float s = wq[QT_QP_SCALE];
    int32_t z = (int32_t)wq[QT_QP_ZERO];
    if (new_range[0] <= new_range[1]) {
        qt_qp_observe(wq, s * (float)(new_range[0] - z), s * (float)(new_range[1] - z));
    }
    qt_qp_update(wq);
    float s2 = wq[QT_QP_SCALE];
    int32_t z2 = (int32_t)wq[QT_QP_ZERO];
    if (s2 == s && z2 == z) {
        return 0;
    }
    float d = s2 / s - 1.0f;
    if (d <= tau && d >= -tau) {
        // Keep the scale; follow the range with the zero point only.
        float zf = -wq[QT_QP_MIN] / s;
        int32_t z3 = zf > 300.0f ? 255 : qt_round_f32(zf);
        z3 = z3 < 0 ? 0 : (z3 > 255 ? 255 : z3);
        wq[QT_QP_SCALE] = s;
        wq[QT_QP_ZERO] = (float)z3;
        if (z3 != z) {
            qt_remap_u8(w, n, s, z, s, z3);
        }
        return 0;
    }
    qt_remap_u8(w, n, s, z, s2, z2);
    return 1;
}
