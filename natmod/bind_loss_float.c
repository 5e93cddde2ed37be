// Python bindings of the output heads and the latent layer in the mixed
// (uint8 inputs, float32 errors) and float32 modes: the _qtrain_float
// module.  Arguments as documented in bind_loss.c.
#include "bind_args.h"

// bce_sigmoid_mixed(x, xq, t, e, stats, lut=None): as _u8 but e is
// array('f', n).
static mp_obj_t qt_bce_sigmoid_mixed_fn(size_t n_args, const mp_obj_t *a) {
    size_t n;
    qt_lin_t x = qt_loss_in_u8(a[0], "x", a[1], "xq", 1, &n);
    qt_lout_t e = qt_loss_out_f32(a[3], "e", n);
    return qt_bce_call(&x, n, a[2], &e, a[4], n_args > 5 ? a[5] : MP_OBJ_NULL);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_bce_sigmoid_mixed_obj, 5, 6, qt_bce_sigmoid_mixed_fn);

// bce_sigmoid_f32(x, t, e, stats): float logits x, float error e.
static mp_obj_t qt_bce_sigmoid_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t n;
    qt_lin_t x = qt_loss_in_f32(a[0], "x", 1, &n);
    qt_lout_t e = qt_loss_out_f32(a[2], "e", n);
    return qt_bce_call(&x, n, a[1], &e, a[3], MP_OBJ_NULL);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_bce_sigmoid_f32_obj, 4, 4, qt_bce_sigmoid_f32_fn);

// softmax_ce_mixed(x, xq, label, e, stats) -> predicted class: float error e.
static mp_obj_t qt_softmax_ce_mixed_fn(size_t n_args, const mp_obj_t *a) {
    size_t c;
    qt_lin_t x = qt_loss_in_u8(a[0], "x", a[1], "xq", 1, &c);
    qt_ce_check_classes(c);
    qt_lout_t e = qt_loss_out_f32(a[3], "e", c);
    return qt_ce_call(&x, c, a[2], &e, a[4]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_softmax_ce_mixed_obj, 5, 5, qt_softmax_ce_mixed_fn);

// softmax_ce_f32(x, label, e, stats) -> predicted class.
static mp_obj_t qt_softmax_ce_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t c;
    qt_lin_t x = qt_loss_in_f32(a[0], "x", 1, &c);
    qt_ce_check_classes(c);
    qt_lout_t e = qt_loss_out_f32(a[2], "e", c);
    return qt_ce_call(&x, c, a[1], &e, a[3]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_softmax_ce_f32_obj, 4, 4, qt_softmax_ce_f32_fn);

// latent_forward_f32(h, rng, eps, z, stats): float h and z.
static mp_obj_t qt_latent_forward_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen;
    qt_lin_t h = qt_loss_in_f32(a[0], "h", 2, &hlen);
    size_t L = qt_latent_dim(hlen);
    qt_lout_t z = qt_loss_out_f32(a[3], "z", L);
    return qt_latent_fwd_call(&h, L, a[1], a[2], &z, a[4]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_forward_f32_obj, 5, 5, qt_latent_forward_f32_fn);

// latent_backward_mixed(h, hq, eps, dz, dh, hp, stats): uint8 h, float dz, dh.
static mp_obj_t qt_latent_backward_mixed_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen, dzlen;
    qt_lin_t h = qt_loss_in_u8(a[0], "h", a[1], "hq", 2, &hlen);
    size_t L = qt_latent_dim(hlen);
    qt_lin_t dz = qt_loss_in_f32(a[3], "dz", 1, &dzlen);
    qt_check_dz_len(dzlen, L);
    qt_lout_t dh = qt_loss_out_f32(a[4], "dh", 2 * L);
    return qt_latent_bwd_call(&h, L, a[2], &dz, &dh, a[5], a[6]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_backward_mixed_obj, 7, 7, qt_latent_backward_mixed_fn);

// latent_backward_f32(h, eps, dz, dh, hp, stats): float throughout.
static mp_obj_t qt_latent_backward_f32_fn(size_t n_args, const mp_obj_t *a) {
    size_t hlen, dzlen;
    qt_lin_t h = qt_loss_in_f32(a[0], "h", 2, &hlen);
    size_t L = qt_latent_dim(hlen);
    qt_lin_t dz = qt_loss_in_f32(a[2], "dz", 1, &dzlen);
    qt_check_dz_len(dzlen, L);
    qt_lout_t dh = qt_loss_out_f32(a[3], "dh", 2 * L);
    return qt_latent_bwd_call(&h, L, a[1], &dz, &dh, a[4], a[5]);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_latent_backward_f32_obj, 6, 6, qt_latent_backward_f32_fn);

void qt_bind_loss_float(void) {
    mp_store_global(MP_QSTR_bce_sigmoid_mixed, MP_OBJ_FROM_PTR(&qt_bce_sigmoid_mixed_obj));
    mp_store_global(MP_QSTR_bce_sigmoid_f32, MP_OBJ_FROM_PTR(&qt_bce_sigmoid_f32_obj));
    mp_store_global(MP_QSTR_softmax_ce_mixed, MP_OBJ_FROM_PTR(&qt_softmax_ce_mixed_obj));
    mp_store_global(MP_QSTR_softmax_ce_f32, MP_OBJ_FROM_PTR(&qt_softmax_ce_f32_obj));
    mp_store_global(MP_QSTR_latent_forward_f32, MP_OBJ_FROM_PTR(&qt_latent_forward_f32_obj));
    mp_store_global(MP_QSTR_latent_backward_mixed, MP_OBJ_FROM_PTR(&qt_latent_backward_mixed_obj));
    mp_store_global(MP_QSTR_latent_backward_f32, MP_OBJ_FROM_PTR(&qt_latent_backward_f32_obj));
}
