"""Trainable layers over the _qtrain kernels (uint8 mode).

Every buffer a layer needs is allocated when it is built (`nbytes()` tells
how much before you build it), so a training step allocates nothing.

Conventions (see docs/KERNELS.md):
- a uint8 tensor travels as (buf, qp): `buf` a bytearray, `qp` its quantization
  record array('f', 8) = [scale, zero, range_min, range_max, alpha, obs...];
- `forward(x, xq)` keeps a reference to its input (the backward pass needs it)
  and returns the layer's own output buffer (y, yq);
- `backward(e, eq)` takes the error at the layer's output (the buffer is
  modified: ReLU backward works in place), updates the weights and returns the
  error at the layer's input (ep, epq), or (None, None) for a first layer;
- `qparams()` lists the records whose ranges move once per step
  (`step_done()` of the model applies them, see models.py).
"""
import array

import _qtrain as _q

QP_LEN = 8
ROUNDING = {"nearest": 0, "floor": 1, "stochastic": 2}


def qparams(lo, hi, alpha=0.0):
    """A quantization record for the real range [lo, hi] (widened to hold 0),
    tracked with moving-average factor `alpha` (0 = fixed range)."""
    qp = array.array("f", [0.0] * QP_LEN)
    qp[2] = lo
    qp[3] = hi
    qp[4] = alpha
    _q.qp_from_range(qp)
    return qp


class Options:
    """Training hyperparameters shared by the layers of a model.

    lr            learning rate of the standardized update (METHOD 4)
    alpha_norm    weight of the new gradient statistics (1 = no smoothing)
    per_row       standardize per row/filter (True) or per tensor (False)
    rounding      'nearest' | 'floor' | 'stochastic'
    tau           re-map stored weights when their scale moved by more than this
    alpha_a/e/w   moving-average factors of activation/error/weight ranges
                  (alpha_e = 0: fixed error range [-error_range, error_range])
    dsgu          None (update everything) or (lmin, lmax) (METHOD 5)
    seed          seeds weight init and stochastic rounding
    """

    def __init__(self, lr=0.005, alpha_norm=0.15, per_row=False, rounding="stochastic",
                 tau=0.01, alpha_a=0.1, alpha_e=0.1, alpha_w=0.001, error_range=1.0,
                 dsgu=None, seed=1):
        if not 0 < lr <= 10:
            raise ValueError("lr must be in (0, 10], got %r" % (lr,))
        if rounding not in ROUNDING:
            raise ValueError("rounding must be one of %s, got %r" % (sorted(ROUNDING), rounding))
        if dsgu is not None:
            lmin, lmax = dsgu
            if not (0 < lmin <= lmax <= 1):
                raise ValueError("dsgu=(lmin, lmax) needs 0 < lmin <= lmax <= 1, got %r" % (dsgu,))
        self.lr = lr
        self.alpha_norm = alpha_norm
        self.per_row = per_row
        self.rounding = rounding
        self.tau = tau
        self.alpha_a = alpha_a
        self.alpha_e = alpha_e
        self.alpha_w = alpha_w
        self.error_range = error_range
        self.dsgu = dsgu
        self.seed = seed

    def flags(self):
        return ROUNDING[self.rounding] | (4 if self.per_row else 0)


def _xorshift(s):
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    return s


def fill_uniform_u8(buf, seed):
    """Fill with uniform bytes from a seeded xorshift32: with a symmetric
    range [-a, a] (z = 128) this is a uniform(-a, a) weight init."""
    s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1
    n = len(buf)
    i = 0
    while i < n:
        s = _xorshift(s)
        v = s
        for _ in range(4):
            if i < n:
                buf[i] = v & 0xFF
                i += 1
                v >>= 8


class Dense:
    """y = relu?(W x + b), W uint8[n_out*n_in] row-major, b int32 (scale 2^-16)."""

    kind = "dense"
    BIAS_SCALE = 1.0 / 65536

    @staticmethod
    def nbytes(n_in, n_out, first=False):
        """Bytes of buffers a Dense layer allocates (excluding object headers)."""
        n = n_in * n_out + 4 * n_out + n_out  # w, b, y
        n += 4 * (5 + 2 * n_out) + 4 * n_out + 8 * n_out  # update state, sel, scores
        if not first:
            n += n_in + 4 * n_in  # ep, acc
        return n + 6 * 4 * QP_LEN

    def __init__(self, n_in, n_out, relu=False, opt=None, first=False, init_range=None, seed=None):
        if n_in <= 0 or n_out <= 0:
            raise ValueError("Dense: n_in and n_out must be > 0, got %d, %d" % (n_in, n_out))
        opt = opt or Options()
        self.n_in, self.n_out, self.relu, self.first = n_in, n_out, bool(relu), first
        self.opt = opt
        seed = opt.seed if seed is None else seed
        # He-uniform range for ReLU layers, Glorot-ish otherwise.
        a = init_range or ((6.0 / n_in) ** 0.5 if relu else (3.0 / n_in) ** 0.5)
        self.w = bytearray(n_in * n_out)
        fill_uniform_u8(self.w, seed)
        self.wq = qparams(-a, a, opt.alpha_w)
        self.b = array.array("i", [0] * n_out)
        self.bq = array.array("f", [self.BIAS_SCALE] + [0.0] * (QP_LEN - 1))
        self.y = bytearray(n_out)
        self.yq = qparams(0.0 if relu else -1.0, 1.0, opt.alpha_a)
        if first:
            self.ep = self.epq = self.acc = None
        else:
            self.ep = bytearray(n_in)
            self.epq = qparams(-opt.error_range, opt.error_range, opt.alpha_e)
            self.acc = array.array("i", [0] * n_in)
        self.state = array.array("f", [0.0] * (5 + 2 * n_out))
        self.hp = array.array("f", [opt.lr, opt.alpha_norm, opt.tau])
        self.flags = opt.flags()
        self.rng = array.array("I", [(seed * 747796405 + 2891336453) & 0xFFFFFFFF or 1])
        self.sel = array.array("i", [0] * n_out)
        self.scores = array.array("I", [0] * (2 * n_out))
        self.dsgu_hp = array.array("f", opt.dsgu or (1.0, 1.0))
        self.dsgu_state = array.array("f", [0.0])
        self.k = n_out       # rows updated in the last backward (DSGU)
        self.trainable = True
        self.x = self.xq = None

    def forward(self, x, xq):
        self.x, self.xq = x, xq
        _q.dense_forward_u8(x, xq, self.w, self.wq, self.b, self.bq, self.y, self.yq, self.relu)
        return self.y, self.yq

    def backward(self, e, eq):
        if self.relu:
            _q.relu_backward_u8(e, eq, self.y, self.yq)
        sel = k = None
        if self.opt.dsgu is not None and self.trainable:
            k = _q.dense_select_u8(e, eq, self.dsgu_hp, self.dsgu_state, self.sel, self.scores)
            sel = self.sel
        self.k = self.n_out if k is None else k
        if not self.first:
            _q.dense_backward_u8(e, eq, self.w, self.wq, self.ep, self.epq, sel, k, self.acc)
        if self.trainable:
            _q.dense_update_u8(e, eq, self.x, self.xq, self.w, self.wq, self.b, self.bq, sel, k,
                               self.hp, self.flags, self.state, self.rng)
        return self.ep, self.epq

    def qparams(self):
        return [self.yq] if self.first else [self.yq, self.epq]

    def state_dict(self, prefix):
        return {prefix + "w": self.w, prefix + "wq": self.wq, prefix + "b": self.b,
                prefix + "yq": self.yq, prefix + "st": self.state, prefix + "rng": self.rng,
                prefix + "dsgu": self.dsgu_state}


class Shared:
    """The im2col scratch that conv layers take turns with during a step.  A
    model sizes it for its largest layer, so memory grows with the largest
    layer, not with the sum of them."""

    def __init__(self, scratch_bytes=0):
        self.scratch = bytearray(scratch_bytes)


class Conv2d:
    """Conv2d (transposed=False) or ConvTranspose2d (transposed=True), uint8.

    Activations CHW.  Weights [out][in][kh][kw] (Conv2d) or [in][out][kh][kw]
    (ConvTranspose2d, PyTorch's layout).  The batch-1 update forms one
    filter's gradient at a time in the shared scratch (no gradient buffer) and
    standardizes per output filter."""

    kind = "conv2d"

    def __init__(self, in_shape, out_ch, k=3, stride=1, pad=0, out_pad=0, relu=False,
                 transposed=False, opt=None, first=False, shared=None, seed=None):
        opt = opt or Options()
        c, h, w = in_shape
        geom = [c, h, w, out_ch, k, k, stride, stride, pad, pad]
        if transposed:
            geom += [out_pad, out_pad]
            self.kind = "conv_transpose2d"
        self.geom = tuple(geom)
        p = "conv_transpose2d" if transposed else "conv2d"
        self._fwd = getattr(_q, p + "_forward_u8")
        self._bwd = getattr(_q, p + "_backward_u8")
        self._upd = getattr(_q, p + "_update_u8")
        self.out_shape = getattr(_q, p + "_out_shape")(self.geom)  # checks the geometry
        self.scratch_len = getattr(_q, p + "_scratch_len")(self.geom)
        self.in_shape = tuple(in_shape)
        self.transposed, self.relu, self.first, self.opt = transposed, bool(relu), first, opt
        seed = opt.seed if seed is None else seed
        n_in = c * h * w
        oc, oh, ow = self.out_shape
        n_w = c * out_ch * k * k
        fan_in = (c if not transposed else out_ch) * k * k
        a = (6.0 / fan_in) ** 0.5 if relu else (3.0 / fan_in) ** 0.5
        self.w = bytearray(n_w)
        fill_uniform_u8(self.w, seed)
        self.wq = qparams(-a, a, opt.alpha_w)
        self.b = array.array("i", [0] * out_ch)
        self.bq = array.array("f", [Dense.BIAS_SCALE] + [0.0] * (QP_LEN - 1))
        self.y = bytearray(oc * oh * ow)
        self.yq = qparams(0.0 if relu else -1.0, 1.0, opt.alpha_a)
        if first:
            self.ep = self.epq = None
        else:
            self.ep = bytearray(n_in)
            self.epq = qparams(-opt.error_range, opt.error_range, opt.alpha_e)
        self.state = array.array("f", [0.0] * (5 + 2 * out_ch))
        self.hp = array.array("f", [opt.lr, opt.alpha_norm, opt.tau])
        self.flags = opt.flags() | 4  # the batch-1 conv update is per filter
        self.rng = array.array("I", [(seed * 747796405 + 2891336453) & 0xFFFFFFFF or 1])
        self.sel = array.array("i", [0] * out_ch)
        self.scores = array.array("I", [0] * out_ch)
        self.sel_scratch = array.array("I", [0] * out_ch)
        self.dsgu_hp = array.array("f", opt.dsgu or (1.0, 1.0))
        self.dsgu_state = array.array("f", [0.0])
        self.n_out = oc * oh * ow
        self.k = out_ch
        self.trainable = True
        self.shared = None
        if shared is not None:
            self.attach(shared)
        self.x = self.xq = None

    def attach(self, shared):
        """Use `shared` (a Shared sized for the largest layer) for scratch and gradient."""
        if len(shared.scratch) < self.scratch_len:
            raise ValueError("%s: shared scratch too small: %d bytes, this layer needs %d" % (
                self.kind, len(shared.scratch), self.scratch_len))
        self.shared = shared
        self._scr = memoryview(shared.scratch)[:self.scratch_len]

    def forward(self, x, xq):
        self.x, self.xq = x, xq
        self._fwd(x, xq, self.w, self.wq, self.b, self.bq, self.y, self.yq, self.geom, self.relu, self._scr)
        return self.y, self.yq

    def backward(self, e, eq):
        g = self.geom
        if self.relu:  # mask e in place where the forward output was clamped
            self._bwd(e, eq, self.y, self.yq, self.w, self.wq, None, None, g)
        sel = k = None
        if self.opt.dsgu is not None and self.trainable:
            _q.conv_scores_u8(e, eq, self.scores)
            k = _q.select_scores(self.scores, self.n_out, eq, self.dsgu_hp, self.dsgu_state,
                                 self.sel, self.sel_scratch)
            sel = self.sel
        self.k = self.geom[3] if k is None else k
        if not self.first:
            self._bwd(e, eq, None, None, self.w, self.wq, self.ep, self.epq, g, sel, k, self._scr)
        if self.trainable:
            self._upd(e, eq, self.x, self.xq, self.w, self.wq, self.b, self.bq, g, sel, k,
                      self.hp, self.flags, self.state, self.rng, self._scr)
        return self.ep, self.epq

    def qparams(self):
        return [self.yq] if self.first else [self.yq, self.epq]

    def state_dict(self, prefix):
        return {prefix + "w": self.w, prefix + "wq": self.wq, prefix + "b": self.b,
                prefix + "yq": self.yq, prefix + "st": self.state, prefix + "rng": self.rng,
                prefix + "dsgu": self.dsgu_state}
