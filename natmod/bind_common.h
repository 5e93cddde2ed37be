// Shared argument checking for the bind_*.c files (implementation: bind_common.c).
//
// Every Python-visible function of _qtrain checks its arguments with these
// helpers, so all entry points fail the same way: TypeError for a wrong kind of
// object or typecode, ValueError for a wrong length/shape/range, and the message
// always starts with the argument's name, then what was expected and what was
// given, e.g.
//     ValueError: w: expected 6272 items, got 6270
//     TypeError: x: expected typecode 'B' (bytearray or array('B')), got 'f'
//     ValueError: wq: scale must be > 0 and finite, got -0.5
//
// Conventions (stable API, used by every bind file):
// - Buffers come through the buffer protocol (bytearray, bytes, array.array,
//   memoryview).  Typecodes: QT_TC_U8 'B' (bytearray/bytes/array('B')),
//   QT_TC_I8 'b', QT_TC_I16 'h', QT_TC_I32 'i', QT_TC_U32 'I', QT_TC_F32 'f'.
//   Lengths are counted in items, not bytes.
// - Output and scratch buffers must be writable (QT_RW); bytes objects are not.
// - Quantization parameters of a tensor travel as array('f', QT_QP_LEN) (layout
//   in kernels/quant.h); qt_arg_qparams checks scale > 0, finite, and the zero
//   point an integer in 0..255.
// - No float scalar crosses the runtime API (an armv6m soft-float module may run
//   on a hard-float firmware): float parameters come in array('f') buffers, and
//   messages print floats with our own formatter.
#ifndef QT_BIND_COMMON_H
#define QT_BIND_COMMON_H
#include "py/dynruntime.h"
#include <stdint.h>
#include <stdbool.h>

#define QT_TC_U8  'B'
#define QT_TC_I8  'b'
#define QT_TC_I16 'h'
#define QT_TC_I32 'i'
#define QT_TC_U32 'I'
#define QT_TC_F32 'f'

#define QT_RO false   // buffer is only read
#define QT_RW true    // buffer is written (output, scratch, state)

// ---- raising with a formatted message ------------------------------------
// Format: %s (C string), %d (int), %u (unsigned), %z (size_t), %c (char),
// %f (a float, passed as a pointer: const float *), %% -- nothing else.
// The message is copied into a str object, so a stack buffer is fine.
MP_NORETURN void qt_raise_fmt(const mp_obj_type_t *type, const char *fmt, ...);
#define qt_raise_value(...) qt_raise_fmt(&mp_type_ValueError, __VA_ARGS__)
#define qt_raise_type(...)  qt_raise_fmt(&mp_type_TypeError, __VA_ARGS__)

// ---- buffers ---------------------------------------------------------------
// A buffer of exactly n items of the given typecode; returns its data pointer.
void *qt_arg_buf(mp_obj_t obj, const char *name, char typecode, size_t n, bool writable);
// A buffer of any length >= n_min items; its length in items goes to *n_out.
void *qt_arg_buf_len(mp_obj_t obj, const char *name, char typecode, size_t n_min,
    size_t *n_out, bool writable);
// As qt_arg_buf, but None is allowed (returns NULL).
void *qt_arg_buf_opt(mp_obj_t obj, const char *name, char typecode, size_t n, bool writable);
// Shorthands for the common typecodes.
#define qt_arg_u8(o, name, n, wr)  ((uint8_t *)qt_arg_buf((o), (name), QT_TC_U8, (n), (wr)))
#define qt_arg_i32(o, name, n, wr) ((int32_t *)qt_arg_buf((o), (name), QT_TC_I32, (n), (wr)))
#define qt_arg_f32(o, name, n, wr) ((float *)qt_arg_buf((o), (name), QT_TC_F32, (n), (wr)))
#define qt_arg_u32(o, name, n, wr) ((uint32_t *)qt_arg_buf((o), (name), QT_TC_U32, (n), (wr)))

// Scratch of n 4-byte items: an array of `typecode` with exactly n items, or a
// writable byte buffer (bytearray, or a memoryview of one) of at least 4n
// bytes, 4-byte aligned -- so a model can lend one shared bytearray to every
// call that needs scratch.
void *qt_arg_scratch4(mp_obj_t obj, const char *name, char typecode, size_t n);
// A scratch byte buffer must be 4-byte aligned (it is read as words).
void qt_check_align4(const void *p, const char *name);

// Quantization parameters: array('f') of QT_QP_LEN items (see kernels/quant.h),
// scale > 0 and finite, zero point an integer in 0..255, alpha in [0, 1],
// range min/max finite.
float *qt_arg_qparams(mp_obj_t obj, const char *name, bool writable);

// Items lo..hi of qparams data (a range, observations) become a zero point
// through a float->int conversion when the record is updated: each must be
// finite, |v| <= 3e38 (qp_from_range's bound, so a blend cannot reach inf).
void qt_check_qp_finite(const float *qp, const char *name, size_t lo, size_t hi);

// Two buffers must not overlap (an output written while an input is read).
void qt_check_no_overlap(const void *a, size_t a_bytes, const char *name_a,
    const void *b, size_t b_bytes, const char *name_b);

// (_qtrain only, bind_select.c) The optional ReLU mask of a DSGU scores
// pass (conv_scores_u8, dense_select_u8): y = a[iy], a ReLU layer's output
// of n values (None or absent: no mask, NULL), its record the last argument
// (*zy = its zero point); the error e = a[0] (n values) is then written in
// place: it must be writable and not share memory with y.
const uint8_t *qt_arg_relu_y(size_t n_args, const mp_obj_t *a, size_t iy, size_t n, int32_t *zy);

// (_qtrain only, bind_select.c) An error propagation's range r (int32
// accumulator steps of scale s) recorded in qp; masked (a mask-aware call):
// widened to hold 0, the value of every position not computed.
void qt_observe_masked(float *qp, int32_t *r, float s, bool masked);

// ---- a table of buffer arguments ------------------------------------------
// An entry point with many buffers describes them in a const table, parsed
// (in table order, so the first bad argument is the one named) and checked
// for aliasing by two shared functions instead of a call per argument: a
// table entry is 8 bytes of flash, a call ~16 bytes of code.
#define QT_TC_QP  'q'   // a quantization record (qt_arg_qparams)
#define QT_TC_SCR 's'   // uint8 scratch: writable, >= the slot's bytes, 4-byte aligned

#define QT_A_RW    (1)  // written by the call (must not share memory with the others)
#define QT_A_OPT   (2)  // None allowed (-> NULL)
#define QT_A_IFPREV (4) // parsed only if the previous entry is not NULL (bias -> bq)
#define QT_A_ANY   (8)  // any length >= lens[slot] items; the length is written back

typedef struct {
    const char *name;
    uint8_t pos;        // index of the argument in the call
    char tc;            // QT_TC_*
    uint8_t flags;      // QT_A_*
    uint8_t slot;       // lens[slot]: the item count (exact, or the minimum with QT_A_ANY)
} qt_bufarg_t;

// p[i] <- the data of argument spec[i] (NULL for a missing optional one);
// arguments past n_args count as None.
void qt_parse_bufs(size_t n_args, const mp_obj_t *a, const qt_bufarg_t *spec, size_t n, size_t *lens,
    void **p);
// Every written buffer (QT_A_RW, not a record) must not share memory with
// any other buffer of the table.
void qt_check_aliasing(const qt_bufarg_t *spec, size_t n, const size_t *lens, void *const *p);

// ---- scalars ---------------------------------------------------------------
// A small int in lo..hi (inclusive); TypeError if not an int.
mp_int_t qt_arg_int(mp_obj_t obj, const char *name, mp_int_t lo, mp_int_t hi);
// True/False or an int 0/1.
bool qt_arg_bool(mp_obj_t obj, const char *name);
// A float read from a buffer must lie in [lo, hi] (closed) and be finite;
// lo_open/hi_open make that end open.  `name` names it, e.g. "hp[0] (lr)".
float qt_check_f32(float v, const char *name, float lo, float hi, bool lo_open, bool hi_open);

// ---- the API version ----------------------------------------------------------
// Version of the Python-visible API of _qtrain and _qtrain_float (both
// modules export abi(); the package checks they match).
// 2: the uint8 batch > 1 calls (dense_grad_acc_u8, conv*_grad_u8,
// update_rows_u8) moved from _qtrain to _qtrain_float.
#define QT_API_VERSION (2)
extern const mp_obj_fun_builtin_fixed_t qt_abi_obj;

#endif
