// Argument parsers that the uint8 bindings (_qtrain) and the float32/mixed
// bindings (_qtrain_float) both use: Dense shapes and DSGU row lists, update
// hyperparameters and state, conv geometry / channel selection / scratch, and
// the loss heads' tensor arguments.  Linked into both modules (like
// bind_common.c), so each rule is written once.
#ifndef QT_BIND_ARGS_H
#define QT_BIND_ARGS_H
#include "bind_common.h"
#include "kernels/quant.h"
#include "kernels/update.h"
#include "kernels/conv2d.h"
#include "kernels/loss_io.h"

static inline int32_t qt_qp_zero(const float *qp) {
    return (int32_t)qp[QT_QP_ZERO];
}

// The scale of an int32 bias from its qparams record bq (parsed, or NULL: no
// bias -> 0); its zero point must be 0.
float qt_bias_scale(const float *bq);

// ---- Dense -------------------------------------------------------------------
// n = len(x) (named nx), m = len(y) (ny), w (nw) must hold m*n items.
void qt_dense_shape(size_t n, const char *nx, size_t m, const char *ny, size_t wlen, const char *nw);
// The optional DSGU row list: sel (int32[m]) and k, or None (all m rows, NULL).
const int32_t *qt_arg_rows(mp_obj_t sel_in, mp_obj_t k_in, size_t m, int32_t *k);
// Length slots of the Dense buffer tables (bind_dense.c, bind_batch.c):
// n = len(x), m = len(y), the weights' length.
enum { QT_DL_N, QT_DL_M, QT_DL_W, QT_DL_LEN };
// Parses spec[0..split), checks that the weights are m x n (naming the
// buffers that set n, m and the weights' length: each is in that first part),
// then parses spec[split..n_spec) with the lengths now known.
void qt_dense_parse_bufs(size_t n_args, const mp_obj_t *a, const qt_bufarg_t *spec, size_t split,
    size_t n_spec, size_t *lens, void **p);

// ---- update ------------------------------------------------------------------
// hp = array('f', [lr, alpha_norm, tau]); flags = rounding | per_row << 2
// (| 8 plain SGD in the float32 calls: max_flags 15); rng array('I', 1) with
// a nonzero state for stochastic rounding, or MP_OBJ_NULL (float32 calls:
// no rounding mode then).
void qt_arg_update(mp_obj_t hp_in, mp_obj_t flags_in, mp_obj_t rng_in, qt_update_t *u, float *tau,
    int32_t max_flags);
// The arguments a batch update from gradient buffers (update_rows_u8,
// update_rows_mixed) shares after its gradient: a[0..8] = w, wq, gb, b, bq,
// hp, flags, (state, read by the caller), rng; w has glen items, gb (of
// typecode gb_tc), b and bq are optional (None).  u gets the options and w's
// scale and zero point.
typedef struct {
    uint8_t *w;
    float *wq;
    void *gb;
    int32_t *b;
    float s_b;   // b's scale (1 without b)
    float tau;
} qt_batch_update_args_t;
void qt_arg_batch_update(const mp_obj_t *a, size_t glen, size_t rows, char gb_tc, qt_batch_update_args_t *out,
    qt_update_t *u);
// As qt_arg_update for the batch-1 conv updates, which standardize per filter
// (flag 4 required).
void qt_arg_update_filters(mp_obj_t hp_in, mp_obj_t flags_in, mp_obj_t rng_in, qt_update_t *u, float *tau);
// Standardization state of `rows` structures: array('f', 5 + 2*rows), or
// array('f', 5) when the statistics are per tensor (no per-row slots).
float *qt_arg_std_state(mp_obj_t obj, size_t rows, bool per_row);
// The state of a batch update from gradient buffers, which gives the number
// of structures: array('f', 5 + 2*rows) -> rows in *rows.
float *qt_arg_state_rows(mp_obj_t obj, size_t *rows);

// ---- Conv2d / ConvTranspose2d ------------------------------------------------
// geom tuple (10 ints; 12 transposed) -> checked geometry; ValueError naming
// the bad item.
void qt_parse_geom(mp_obj_t obj, bool transposed, qt_conv_geom_t *g);
// sel = a[i_sel] (int32 channel indices or None), k = a[i_sel + 1]: -> sel
// pointer or NULL (all n_ch channels), *n_sel the count.
const int32_t *qt_parse_sel(size_t n_args, const mp_obj_t *a, size_t i_sel, int32_t n_ch, int32_t *n_sel);
// The scratch bytearray of a uint8 conv call: >= *_scratch_len(geom) bytes,
// 4-byte aligned; its length in *len.
uint8_t *qt_arg_conv_scratch(mp_obj_t obj, const qt_conv_geom_t *g, bool transposed, size_t *len);
int32_t qt_conv_scratch_need(const qt_conv_geom_t *g, bool transposed);
// Length slots of the conv buffer tables (bind_conv.c, bind_batch.c), from
// the geometry: input, output, weights, out_ch (biases), the uint8 scratch.
enum { QT_CL_IN, QT_CL_OUT, QT_CL_W, QT_CL_CH, QT_CL_SCR, QT_CL_LEN };
// qt_parse_geom(geom) into *g, and the slots' lengths into lens[QT_CL_LEN].
void qt_conv_geom_lens(mp_obj_t geom, bool transposed, qt_conv_geom_t *g, size_t *lens);

static inline size_t qt_conv_in_len(const qt_conv_geom_t *g) {
    return (size_t)qt_conv_in_size(g);
}
static inline size_t qt_conv_out_len(const qt_conv_geom_t *g) {
    return (size_t)qt_conv_out_size(g);
}
static inline size_t qt_conv_w_len(const qt_conv_geom_t *g) {
    return (size_t)qt_conv_w_size(g);
}

// ---- loss heads and latent layer -----------------------------------------------
// A uint8 input tensor and its qparams (length from the buffer, >= n_min).
qt_lin_t qt_loss_in_u8(mp_obj_t x_in, const char *name, mp_obj_t qp_in, const char *qname, size_t n_min,
    size_t *n_out);
qt_lin_t qt_loss_in_f32(mp_obj_t x_in, const char *name, size_t n_min, size_t *n_out);
qt_lout_t qt_loss_out_u8(mp_obj_t e_in, const char *name, size_t n, mp_obj_t qp_in, const char *qname);
qt_lout_t qt_loss_out_f32(mp_obj_t e_in, const char *name, size_t n);
// The bodies shared by the _u8, _mixed and _f32 entry points (bind_loss.c
// documents their arguments).  lut_in: MP_OBJ_NULL when the call has none.
mp_obj_t qt_bce_call(qt_lin_t *x, size_t n, mp_obj_t t_in, qt_lout_t *e, mp_obj_t stats_in, mp_obj_t lut_in);
// Classes of a softmax head: at most 65535 (ValueError naming x otherwise).
void qt_ce_check_classes(size_t c);
mp_obj_t qt_ce_call(qt_lin_t *x, size_t c, mp_obj_t label_in, qt_lout_t *e, mp_obj_t stats_in);
size_t qt_latent_dim(size_t hlen);
void qt_check_dz_len(size_t dzlen, size_t L);
mp_obj_t qt_latent_fwd_call(qt_lin_t *h, size_t L, mp_obj_t rng_in, mp_obj_t eps_in, qt_lout_t *z,
    mp_obj_t stats_in);
mp_obj_t qt_latent_bwd_call(qt_lin_t *h, size_t L, mp_obj_t eps_in, qt_lin_t *dz, qt_lout_t *dh,
    mp_obj_t hp_in, mp_obj_t stats_in);
// rng: array('I', 1) with a nonzero state, or None (-> NULL).
uint32_t *qt_arg_rng(mp_obj_t rng_in);
// ValueError unless rng (a parsed rng buffer, or NULL) holds a nonzero state.
void qt_check_rng_seeded(const uint32_t *rng);

#endif
