// Shared argument checking for the bind_*.c files: see bind_common.h.
#include <stdarg.h>
#include "bind_common.h"
#include "kernels/quant.h"

// ---- message formatting (no libc: our own tiny formatter) -----------------

typedef struct {
    char *buf;
    size_t len, cap;
} qt_msg_t;

static void msg_putc(qt_msg_t *m, char c) {
    if (m->len < m->cap) {
        m->buf[m->len++] = c;
    }
}

static void msg_puts(qt_msg_t *m, const char *s) {
    while (*s) {
        msg_putc(m, *s++);
    }
}

static void msg_putu(qt_msg_t *m, uint32_t v) {
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) {
        msg_putc(m, tmp[--n]);
    }
}

static void msg_putd(qt_msg_t *m, int32_t v) {
    if (v < 0) {
        msg_putc(m, '-');
        msg_putu(m, (uint32_t)0 - (uint32_t)v);
    } else {
        msg_putu(m, (uint32_t)v);
    }
}

// Floats: sign, integer part, 6 decimals (enough to tell 0 from 1e-6).
static void msg_putf(qt_msg_t *m, float v) {
    if (v != v) {
        msg_puts(m, "nan");
        return;
    }
    if (v < 0.0f) {
        msg_putc(m, '-');
        v = -v;
    }
    if (v > 2.0e9f) {
        msg_puts(m, v > 3.4e38f ? "inf" : ">2e9");
        return;
    }
    uint32_t ip = (uint32_t)v;
    float frac = v - (float)ip;
    uint32_t fp = (uint32_t)(frac * 1000000.0f + 0.5f);
    if (fp >= 1000000u) {
        ip += 1u;
        fp -= 1000000u;
    }
    msg_putu(m, ip);
    msg_putc(m, '.');
    for (uint32_t d = 100000u; d; d /= 10u) {
        msg_putc(m, (char)('0' + (fp / d) % 10u));
    }
}

MP_NORETURN void qt_raise_fmt(const mp_obj_type_t *type, const char *fmt, ...) {
    char buf[160];
    qt_msg_t m = { buf, 0, sizeof(buf) };
    va_list ap;
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%' || p[1] == 0) {
            msg_putc(&m, *p);
            continue;
        }
        switch (*++p) {
            case 's':
                msg_puts(&m, va_arg(ap, const char *));
                break;
            case 'd':
                msg_putd(&m, (int32_t)va_arg(ap, int));
                break;
            case 'u':
                msg_putu(&m, (uint32_t)va_arg(ap, unsigned int));
                break;
            case 'z': {
                size_t z = va_arg(ap, size_t);
                if (z > 0xffffffffu) {
                    msg_puts(&m, ">4G");
                } else {
                    msg_putu(&m, (uint32_t)z);
                }
                break;
            }
            case 'c':
                msg_putc(&m, (char)va_arg(ap, int));
                break;
            case 'f':
                msg_putf(&m, *va_arg(ap, const float *));
                break;
            default:
                msg_putc(&m, *p);
                break;
        }
    }
    va_end(ap);
    mp_raise_type_arg(type, mp_obj_new_str(buf, m.len));
}

// ---- buffers ---------------------------------------------------------------

static const char *tc_desc(char tc) {
    switch (tc) {
        case QT_TC_U8:
            return " (bytearray or array('B'))";
        case QT_TC_F32:
            return " (array('f'))";
        case QT_TC_I32:
            return " (array('i'))";
        case QT_TC_U32:
            return " (array('I'))";
        case QT_TC_I16:
            return " (array('h'))";
        case QT_TC_I8:
            return " (array('b'))";
        default:
            return "";
    }
}

// Size in bytes of one item of the typecodes we accept.
static size_t tc_size(char tc) {
    switch (tc) {
        case QT_TC_U8:
        case QT_TC_I8:
        case QT_TC_SCR:
            return 1;
        case QT_TC_I16:
            return 2;
        default:
            return 4;
    }
}

static void *get_buf(mp_obj_t obj, const char *name, char typecode, size_t *n_items, bool writable) {
    mp_buffer_info_t bi;
    if (!mp_get_buffer(obj, &bi, writable ? MP_BUFFER_RW : MP_BUFFER_READ)) {
        if (writable && mp_get_buffer(obj, &bi, MP_BUFFER_READ)) {
            qt_raise_type("%s: expected a writable buffer%s, got a read-only one", name, tc_desc(typecode));
        }
        qt_raise_type("%s: expected a buffer of typecode '%c'%s, got a non-buffer object", name,
            typecode, tc_desc(typecode));
    }
    int tc = bi.typecode;
    if (tc == 1) {          // bytearray reports BYTEARRAY_TYPECODE (1): it holds uint8
        tc = 'B';
    }
    if (tc != typecode) {
        qt_raise_type("%s: expected typecode '%c'%s, got '%c'", name, typecode, tc_desc(typecode), tc);
    }
    size_t isz = tc_size(typecode);
    // Word-sized items are read as words, which faults on a Cortex-M0 if the
    // address is not aligned (possible with a memoryview at an odd offset).
    if (isz > 1 && ((uintptr_t)bi.buf & (isz - 1u)) != 0) {
        qt_raise_value("%s: buffer must be aligned to %z bytes (memoryview at an odd offset?)", name, isz);
    }
    *n_items = bi.len >> (isz >> 1);   // isz is 1, 2 or 4 (a divide is a ~400-instruction call on the M0)
    return bi.buf;
}

void *qt_arg_buf(mp_obj_t obj, const char *name, char typecode, size_t n, bool writable) {
    size_t len;
    void *p = get_buf(obj, name, typecode, &len, writable);
    if (len != n) {
        qt_raise_value("%s: expected %z items, got %z", name, n, len);
    }
    return p;
}

void *qt_arg_buf_len(mp_obj_t obj, const char *name, char typecode, size_t n_min,
    size_t *n_out, bool writable) {
    size_t len;
    void *p = get_buf(obj, name, typecode, &len, writable);
    if (len < n_min) {
        qt_raise_value("%s: expected at least %z items, got %z", name, n_min, len);
    }
    *n_out = len;
    return p;
}

void *qt_arg_buf_opt(mp_obj_t obj, const char *name, char typecode, size_t n, bool writable) {
    if (obj == mp_const_none) {
        return NULL;
    }
    return qt_arg_buf(obj, name, typecode, n, writable);
}

void qt_check_align4(const void *p, const char *name) {
    if ((uintptr_t)p & 3u) {
        qt_raise_value("%s: must be 4-byte aligned (a memoryview at an odd offset?)", name);
    }
}

void *qt_arg_scratch4(mp_obj_t obj, const char *name, char typecode, size_t n) {
    mp_buffer_info_t bi;
    if (mp_get_buffer(obj, &bi, MP_BUFFER_RW) && (bi.typecode == 1 || bi.typecode == 'B')) {
        if (bi.len < 4 * n) {
            qt_raise_value("%s: expected at least %z bytes (%z 4-byte items), got %z", name, 4 * n, n, bi.len);
        }
        qt_check_align4(bi.buf, name);
        return bi.buf;
    }
    return qt_arg_buf(obj, name, typecode, n, QT_RW);
}

float *qt_arg_qparams(mp_obj_t obj, const char *name, bool writable) {
    float *qp = qt_arg_f32(obj, name, QT_QP_LEN, writable);
    float s = qp[QT_QP_SCALE];
    if (!(s > 0.0f && s < 3.0e38f)) {
        qt_raise_value("%s: scale (item %d) must be > 0 and finite, got %f", name, QT_QP_SCALE, &qp[QT_QP_SCALE]);
    }
    float z = qp[QT_QP_ZERO];
    if (!(z >= 0.0f && z <= 255.0f) || (float)(int32_t)z != z) {
        qt_raise_value("%s: zero point (item %d) must be an integer in 0..255, got %f", name, QT_QP_ZERO,
            &qp[QT_QP_ZERO]);
    }
    float a = qp[QT_QP_ALPHA];
    if (!(a >= 0.0f && a <= 1.0f)) {
        qt_raise_value("%s: alpha (item %d) must be in [0, 1], got %f", name, QT_QP_ALPHA, &qp[QT_QP_ALPHA]);
    }
    qt_check_qp_finite(qp, name, QT_QP_MIN, QT_QP_MAX);
    return qp;
}

void qt_check_qp_finite(const float *qp, const char *name, size_t lo, size_t hi) {
    for (size_t i = lo; i <= hi; i++) {
        if (!(qp[i] >= -3.0e38f && qp[i] <= 3.0e38f)) {
            qt_raise_value("%s: item %z (range or observation) must be finite, got %f", name, i, &qp[i]);
        }
    }
}

void qt_check_no_overlap(const void *a, size_t a_bytes, const char *name_a,
    const void *b, size_t b_bytes, const char *name_b) {
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    if (a_bytes && b_bytes && a0 < b0 + b_bytes && b0 < a0 + a_bytes) {
        qt_raise_value("%s: must not share memory with %s", name_a, name_b);
    }
}

// ---- a table of buffer arguments ------------------------------------------

void qt_parse_bufs(size_t n_args, const mp_obj_t *a, const qt_bufarg_t *spec, size_t n, size_t *lens,
    void **p) {
    for (size_t i = 0; i < n; i++) {
        const qt_bufarg_t *s = &spec[i];
        mp_obj_t obj = s->pos < n_args ? a[s->pos] : mp_const_none;
        p[i] = NULL;
        if ((s->flags & QT_A_IFPREV) && (i == 0 || p[i - 1] == NULL)) {
            continue;
        }
        if ((s->flags & QT_A_OPT) && obj == mp_const_none) {
            continue;
        }
        bool rw = (s->flags & QT_A_RW) != 0;
        if (s->tc == QT_TC_QP) {
            p[i] = qt_arg_qparams(obj, s->name, rw);
        } else if (s->tc == QT_TC_SCR) {
            size_t len;
            p[i] = qt_arg_buf_len(obj, s->name, QT_TC_U8, lens[s->slot], &len, QT_RW);
            qt_check_align4(p[i], s->name);
            lens[s->slot] = len;
        } else if (s->flags & QT_A_ANY) {
            p[i] = qt_arg_buf_len(obj, s->name, s->tc, lens[s->slot], &lens[s->slot], rw);
        } else {
            p[i] = qt_arg_buf(obj, s->name, s->tc, lens[s->slot], rw);
        }
    }
}

void qt_check_aliasing(const qt_bufarg_t *spec, size_t n, const size_t *lens, void *const *p) {
    for (size_t i = 0; i < n; i++) {
        if (!p[i] || !(spec[i].flags & QT_A_RW) || spec[i].tc == QT_TC_QP) {
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            if (j != i && p[j] && spec[j].tc != QT_TC_QP) {
                qt_check_no_overlap(p[i], lens[spec[i].slot] * tc_size(spec[i].tc), spec[i].name,
                    p[j], lens[spec[j].slot] * tc_size(spec[j].tc), spec[j].name);
            }
        }
    }
}

// ---- scalars ---------------------------------------------------------------

mp_int_t qt_arg_int(mp_obj_t obj, const char *name, mp_int_t lo, mp_int_t hi) {
    if (!mp_obj_is_small_int(obj)) {
        if (obj == mp_const_true || obj == mp_const_false) {
            return qt_arg_int(MP_OBJ_NEW_SMALL_INT(obj == mp_const_true), name, lo, hi);
        }
        qt_raise_type("%s: expected an int in %d..%d", name, (int)lo, (int)hi);
    }
    mp_int_t v = MP_OBJ_SMALL_INT_VALUE(obj);
    if (v < lo || v > hi) {
        qt_raise_value("%s: expected an int in %d..%d, got %d", name, (int)lo, (int)hi, (int)v);
    }
    return v;
}

bool qt_arg_bool(mp_obj_t obj, const char *name) {
    return qt_arg_int(obj, name, 0, 1) != 0;
}

float qt_check_f32(float v, const char *name, float lo, float hi, bool lo_open, bool hi_open) {
    bool ok = (v == v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok) {
        qt_raise_value("%s: expected a value in %c%f, %f%c, got %f", name, lo_open ? '(' : '[', &lo, &hi,
            hi_open ? ')' : ']', &v);
    }
    return v;
}

// ---- the API version ----------------------------------------------------------

static mp_obj_t qt_abi(void) {
    return mp_obj_new_int(QT_API_VERSION);
}
MP_DEFINE_CONST_FUN_OBJ_0(qt_abi_obj, qt_abi);
