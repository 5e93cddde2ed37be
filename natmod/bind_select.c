// DSGU for any layer whose per-structure scores are computed elsewhere
// (Conv2d / ConvTranspose2d: conv_scores_u8).  Dense has its own fused
// dense_select_u8; both use kernels/select.h, so the rule is the same.
#include "bind_common.h"
#include "bind_args.h"
#include "kernels/quant.h"
#include "kernels/select.h"

// select_scores(scores, n_err, eq, hp, state, sel, scratch) -> k
//   scores uint32[ch]: sum |e - z_e| per structure; n_err: how many error
//   values those sums cover (ch * H * W), so ebar = sum(scores) / n_err * s_e
//   is the layer's mean |error| (METHOD 5); hp array('f', [lmin, lmax]);
//   state array('f', 1): running max of ebar; sel int32[ch] receives the k
//   chosen structures (ascending); scratch uint32[ch].
static mp_obj_t qt_select_scores_fn(size_t n_args, const mp_obj_t *a) {
    size_t ch;
    const uint32_t *scores = qt_arg_buf_len(a[0], "scores", QT_TC_U32, 1, &ch, QT_RO);
    mp_int_t n_err = qt_arg_int(a[1], "n_err", (mp_int_t)ch, 0x7fffffff);
    const float *eq = qt_arg_qparams(a[2], "eq", QT_RO);
    const float *hp = qt_arg_f32(a[3], "hp", 2, QT_RO);
    float lmin = qt_check_f32(hp[0], "hp[0] (lmin)", 0.0f, 1.0f, true, false);
    qt_check_f32(hp[1], "hp[1] (lmax)", lmin, 1.0f, false, false);
    float *st = qt_arg_f32(a[4], "state", 1, QT_RW);
    int32_t *sel = qt_arg_i32(a[5], "sel", ch, QT_RW);
    uint32_t *scratch = qt_arg_u32(a[6], "scratch", ch, QT_RW);
    // Summed exactly (uint64: ch * H * W * 255 can pass 2^32) and rounded
    // to float once, as conv_select_u8 and the golden model do: a float
    // running sum rounds at every add past 2^24 and could move k by one.
    uint64_t sum = 0;
    for (size_t i = 0; i < ch; i++) {
        sum += scores[i];
    }
    float ebar = (float)sum / (float)n_err * eq[QT_QP_SCALE];
    int32_t k = dsgu_k(ebar, st, hp[0], hp[1], (int32_t)ch);
    select_topk_u32(scores, (int32_t)ch, k, sel, scratch);
    return mp_obj_new_int(k);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qt_select_scores_obj, 7, 7, qt_select_scores_fn);

const uint8_t *qt_arg_relu_y(size_t n_args, const mp_obj_t *a, size_t iy, size_t n, int32_t *zy) {
    if (n_args <= iy || a[iy] == mp_const_none) {
        return NULL;
    }
    const uint8_t *e = qt_arg_u8(a[0], "e", n, QT_RW);
    const uint8_t *y = qt_arg_u8(a[iy], "y", n, QT_RO);
    // (yq missing: the last argument is y itself, no record: TypeError naming yq)
    *zy = qt_qp_zero(qt_arg_qparams(a[n_args - 1], "yq", QT_RO));
    qt_check_no_overlap(e, n, "e", y, n, "y");
    return y;
}

void qt_bind_select(void) {
    mp_store_global(MP_QSTR_select_scores, MP_OBJ_FROM_PTR(&qt_select_scores_obj));
}

void qt_observe_masked(float *qp, int32_t *r, float s, bool masked) {
    if (masked) {
        r[0] = r[0] > 0 ? 0 : r[0];
        r[1] = r[1] < 0 ? 0 : r[1];
    }
    qt_qp_observe(qp, (float)r[0] * s, (float)r[1] * s);
}
