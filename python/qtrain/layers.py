"""Trainable layers over the _qtrain kernels, in three modes.

Every buffer a layer needs is allocated when it is built (`nbytes()` tells
how much before you build it), so a training step allocates nothing.

Modes (Options(mode=...), one per model, METHOD 1-3 / issue 3 item 2):
- 'uint8'   weights, activations and error tensors uint8 with per-tensor
            scale/zero point, int32 accumulators (the default);
- 'mixed'   uint8 forward (weights, activations) with float32 error tensors;
- 'float32' the float reference: float weights, activations and errors.

Conventions (see docs/KERNELS.md):
- a tensor travels as (buf, qp): for uint8 `buf` is a bytearray and `qp` its
  quantization record array('f', 8) = [scale, zero, range_min, range_max,
  alpha, obs...]; a float32 tensor is (array('f'), None).  Forward tensors
  are uint8 in 'uint8' and 'mixed', float in 'float32'; error tensors are
  uint8 only in 'uint8';
- `forward(x, xq)` keeps a reference to its input (the backward pass needs it)
  and returns the layer's own output buffer (y, yq);
- `backward(e, eq)` takes the error at the layer's output (the buffer is
  modified: ReLU backward works in place), updates the weights and returns the
  error at the layer's input (ep, epq), or (None, None) for a first layer;
- `qparams()` lists the records whose ranges move once per step
  (`step_done()` of the model applies them, see models.py).

Native modules: _qtrain holds the uint8 kernels (all a 'uint8' model uses);
the float32 and mixed-mode kernels are in _qtrain_float, imported (by
float_kernels()) only when a 'float32' or 'mixed' layer is built, so a board
that trains in uint8 never loads it.

The float32 and mixed code paths (backward of float errors, the 8-bit
error copies, dequantize) are in qtrain.layers_float, imported by the first
float32/mixed layer built: a uint8 model trains without their bytecode in the
heap.
"""
import array
import gc

import _qtrain as _q

if False:  # for type checkers only; compiled away
    from typing import Any

QP_LEN = 8
_qf = None  # _qtrain_float, once a float32/mixed layer has asked for it
ROUNDING = {"nearest": 0, "floor": 1, "stochastic": 2, "stochastic_row": 3}
MODES = ("uint8", "mixed", "float32")
U8, MIXED, F32 = 0, 1, 2


def qparams(lo, hi, alpha=0.0):
    """A quantization record for the real range [lo, hi] (widened to hold 0),
    tracked with moving-average factor `alpha` (0 = fixed range)."""
    qp = array.array("f", [0.0] * QP_LEN)
    qp[2] = lo
    qp[3] = hi
    qp[4] = alpha
    _q.qp_from_range(qp)
    return qp


def zeros(typecode, n):
    """array(typecode) of n zeros, allocated once at its final size (no
    temporary list or bytes of the same size: that would need twice the
    contiguous heap on a board)."""
    a = array.array(typecode, range(n))   # range has a length: one exact allocation
    z = 0.0 if typecode in "fd" else 0
    for i in range(n):
        a[i] = z
    return a


def float_kernels():
    """The _qtrain_float module (float32 and mixed-mode kernels), imported on
    first use; ImportError naming the file to install if it is missing."""
    global _qf
    if _qf is None:
        try:
            import _qtrain_float
        except ImportError as e:
            raise ImportError("modes 'float32' and 'mixed' need the native module _qtrain_float: install "
                              "_qtrain_float.mpy (dist/<arch>_6.3/, this board's arch) next to _qtrain.mpy (%s)"
                              % (e,))
        if _qtrain_float.abi() != _q.abi():
            raise ImportError("_qtrain_float.mpy (API %d) does not match _qtrain.mpy (API %d): install both "
                              "from the same build" % (_qtrain_float.abi(), _q.abi()))
        _qf = _qtrain_float
    return _qf


class Options:
    """Training hyperparameters shared by the layers of a model.

    mode          'uint8' | 'mixed' (uint8 forward, float32 errors) | 'float32'
    lr            learning rate of the standardized update (METHOD 4)
    alpha_norm    weight of the new gradient statistics (1 = no smoothing)
    per_row       standardize per row/filter (True) or per tensor (False)
    rounding      'nearest' | 'floor' | 'stochastic' (uint8 weights only)
    tau           re-map stored weights when their scale moved by more than this
    alpha_a/e/w   moving-average factors of activation/error/weight ranges
                  (alpha_e = 0: fixed error range [-error_range, error_range])
    dsgu          None (update everything) or (lmin, lmax) (METHOD 5); a
                  ConvTranspose2d over input-channel slices instead of
                  filters: qtrain.convt_slices.use(model)
    seed          seeds weight init and stochastic rounding
    mask_aware    uint8: a layer whose input comes from a ReLU layer (of the
                  same Sequential) propagates error only where that input is
                  above its zero point; the ReLU layer's own mask pass is
                  then skipped (docs/KERNELS.md, mask-aware propagation)
    """

    # Set by builder.init_options (the constructor's body, see Dense);
    # declared for type checkers only.
    lr: float
    alpha_norm: float
    per_row: bool
    rounding: str
    tau: float
    alpha_a: float
    alpha_e: float
    alpha_w: float
    error_range: float
    dsgu: "Any"
    seed: int
    mode: str
    mask_aware: bool
    m: int

    def __init__(self, lr=0.005, alpha_norm=0.15, per_row=False, rounding="stochastic",
                 tau=0.01, alpha_a=0.1, alpha_e=0.1, alpha_w=0.001, error_range=1.0,
                 dsgu=None, seed=1, mode="uint8", mask_aware=True):
        """ValueError naming the field for a value out of range (the checks
        are builder.init_options: models are configured only to be built)."""
        _builder().init_options(self, lr, alpha_norm, per_row, rounding, tau, alpha_a, alpha_e, alpha_w,
                                error_range, dsgu, seed, mode, mask_aware)

    def replace(self, **kw):
        """A copy with some fields changed (checked like the constructor)."""
        return _builder().replace_options(self, kw)

    def flags(self):
        """Update flags: rounding | per_row << 2.  Float weights have no
        rounding, so the float32 mode sends only the per_row bit."""
        r = 0 if self.mode == "float32" else ROUNDING[self.rounding]
        return r | (4 if self.per_row else 0)



def dequantize(q, qp, out):
    """out[i] = s (q[i] - z) (array('f') of len(q)): layers_float.dequantize,
    imported on use (only float32 and mixed models call it)."""
    from .layers_float import dequantize as deq
    return deq(q, qp, out)


def builder_call(name, *args, **kw):
    """qtrain.builder.<name>(*args, **kw), or qtrain.sizes.<name> for the
    sizes (vae_bytes, dense_bytes, conv_bytes), the module imported for the
    call and dropped after it (with the builder the sizes import): its
    bytecode is not in the heap next to a model."""
    from . import builder, unload
    try:
        if name.endswith("_bytes"):
            from . import sizes
            return getattr(sizes, name)(*args, **kw)
        return getattr(builder, name)(*args, **kw)
    finally:
        unload("builder", "sizes")


def _builder():
    """qtrain.builder: the layers' constructors do their work there (weight
    init, buffers), so that a trained model's heap does not hold that code
    (models.build_vae, classifier.build_cnn drop it after a build)."""
    from . import builder
    return builder


# builder.fill_uniform_u8, resolved by __getattr__ below: declared for type
# checkers (a bare annotation compiles to nothing in MicroPython).
fill_uniform_u8: "Any"


def __getattr__(name):
    """fill_uniform_u8 (the weight init's byte stream) lives in
    qtrain.builder; scripts that read it from here still find it."""
    if name == "fill_uniform_u8":
        return _builder().fill_uniform_u8
    raise AttributeError(name)


def _float_paths():
    """qtrain.layers_float: the float32 / mixed code paths, loaded by the first
    layer built in those modes (a uint8 model never loads its bytecode)."""
    from . import layers_float
    return layers_float


def xs_len(n):
    """Items of a Dense layer's int32 scratch for n inputs (a multiple of 4)."""
    return (n + 3) & ~3



class Dense:
    """y = relu?(W x + b), W [n_out][n_in] row-major.  uint8/mixed: W uint8,
    b int32 (scale 2^-16); float32: W, b float."""

    kind = "dense"
    BIAS_SCALE = 1.0 / 65536
    # Mask-aware propagation (Options.mask_aware, builder.mask_chain): the
    # input x comes from a ReLU layer, ep only where x > its zero point.
    mask_in = False
    # Set by builder.init_dense (the constructor's body) and builder.attach:
    # a trained model's heap does not keep that code.  Declared for type
    # checkers only: a bare annotation compiles to nothing in MicroPython.
    n_in: int
    n_out: int
    relu: bool
    rmask: bool
    first: bool
    trainable: bool
    m: int
    k: int
    opt: "Options"
    flags: int
    w: "Any"
    wq: "Any"
    b: "Any"
    bq: "Any"
    y: "Any"
    yq: "Any"
    ep: "Any"
    epq: "Any"
    state: "Any"
    hp: "Any"
    rng: "Any"
    sel: "Any"
    scores: "Any"
    dsgu_hp: "Any"
    dsgu_state: "Any"
    _qf: "Any"
    _float_backward: "Any"
    shared: "Any"
    xs: "Any"
    acc: "Any"
    y_pair: tuple
    ep_pair: tuple

    @staticmethod
    def nbytes(n_in, n_out, **kw):
        """Bytes of buffers a Dense layer allocates (excluding object headers):
        qtrain.sizes.dense_bytes, imported for the call."""
        return builder_call("dense_bytes", n_in, n_out, **kw)

    def __init__(self, n_in, n_out, relu=False, opt=None, first=False, init_range=None, seed=None,
                 own_scratch=True, ep=None):
        """own_scratch=False: the int32 scratch of the uint8 calls (x - z_x,
        the backward accumulator) comes from a Shared, attach()ed by the model
        (it is only used inside one call); ep: a buffer (uint8, or array('f')
        in the float modes) of >= n_in items the model lends for the error at
        the input (only the errors at a layer's output and input are live at
        once, so two buffers serve a whole chain)."""
        _builder().init_dense(self, n_in, n_out, relu, opt, first, init_range, seed, own_scratch, ep)

    def forward(self, x, xq):
        """y = relu?(W x + b) for input x (uint8 with record xq, or array('f') and
        None in float32 mode) -> (y, yq), the layer's own output buffer (the
        next forward overwrites it).  Keeps a reference to x for backward().
        A buffer of the wrong type or size: TypeError/ValueError from the kernel."""
        self.x, self.xq = x, xq
        if self.m == F32:
            self._qf.dense_forward_f32(x, self.w, self.b, self.y, self.relu)
        else:
            _q.dense_forward_u8(x, xq, self.w, self.wq, self.b, self.bq, self.y, self.yq, self.relu,
                                self.xs)
        return self.y_pair

    def backward(self, e, eq):
        """Error e (with record eq) at the output -> (ep, epq), the error at the
        input ((None, None) for a first layer).  Applies the ReLU mask to e in
        place, DSGU selection if on, and the weight update if trainable."""
        if self.m != U8:
            return self._float_backward(self, e)
        sel = k = None
        if self.sel and self.trainable:   # (sel: empty without a choice, builder.py)
            # the ReLU mask (e in place) in the scores' pass; kept after a
            # mask-aware propagation (a no-op then): the M0's fused pass is
            # cheaper than the plain one
            k = _q.dense_select_u8(e, eq, self.dsgu_hp, self.dsgu_state, self.sel, self.scores,
                                   self.y if self.relu else None, self.yq)
            sel = self.sel
        elif self.rmask:   # relu, unless the next layer's propagation was mask-aware
            _q.relu_backward_u8(e, eq, self.y, self.yq)
        self.k = self.n_out if k is None else k
        if not self.first:
            _q.dense_backward_u8(e, eq, self.w, self.wq, self.ep, self.epq, sel, k, self.acc,
                                 self.x if self.mask_in else None, self.xq)
        if self.trainable:
            _q.dense_update_u8(e, eq, self.x, self.xq, self.w, self.wq, self.b, self.bq, sel, k,
                               self.hp, self.flags, self.state, self.rng)
        return self.ep_pair

    def qparams(self):
        """The quantization records whose ranges move once per step (output,
        input error); empty in float32 mode."""
        out = [] if self.yq is None else [self.yq]
        if self.epq is not None:
            out.append(self.epq)
        return out

    def state_dict(self, prefix):
        """{prefix + name: buffer} of weights, records, optimizer and generator
        state, for qtrain.checkpoint (buffers, not copies)."""
        d = {prefix + "w": self.w, prefix + "wq": self.wq, prefix + "b": self.b,
             prefix + "yq": self.yq, prefix + "st": self.state, prefix + "rng": self.rng,
             prefix + "dsgu": self.dsgu_state}
        return {k: v for k, v in d.items() if v is not None}


class Shared:
    """Scratch that the layers of a model take turns with during a step,
    sized for its largest layer (memory grows with the largest layer, not
    with the sum of them); every use lives inside one kernel call:
      scratch  bytes for the uint8 conv kernels (im2col, filter rows), the
               uint8 Dense calls (x - z_x, the backward accumulator) and the
               BCE head's table;
      floats   array('f'): the weight gradient (float32 mode) or the
               dequantized weights (mixed mode);
      errs     bytearray: an 8-bit copy of a float error (mixed mode, and
               DSGU scores in float32 mode)."""

    def __init__(self, scratch_bytes=0, floats=0, err_bytes=0):
        self.scratch = bytearray(scratch_bytes)
        self.floats = zeros("f", floats)
        self.errs = bytearray(err_bytes)

    @staticmethod
    def for_layers(layers):
        """One Shared big enough for every layer in `layers` (and attached to
        them): builder.shared_for."""
        return _builder().shared_for(layers)


class Conv2d:
    """Conv2d (transposed=False) or ConvTranspose2d (transposed=True).

    Activations CHW.  Weights [out][in][kh][kw] (Conv2d) or [in][out][kh][kw]
    (ConvTranspose2d, PyTorch's layout).  uint8/mixed: the batch-1 update
    forms one filter's gradient at a time in the shared scratch (no gradient
    buffer) and standardizes per output filter.  float32: the gradient goes
    into the shared float buffer, then update_rows_f32 (per filter for
    Conv2d; per input-channel slab for ConvTranspose2d, whose output filters
    are strided in its layout; its bias as a separate tensor)."""

    kind = "conv2d"
    mask_in = False   # as Dense
    # None unless the mode needs them (float32 / mixed), set by init_conv
    # only then: a uint8 layer's attribute dict stays at 47 entries or less
    # (MicroPython's next table is 59, a 472-byte block on armv6m that the
    # ConvVAE's build at the Pico's heap found no room for).
    _qf: "Any" = None
    bstate: "Any" = None
    eq8: "Any" = None
    # Set by builder.init_conv (the constructor's body) and builder.attach (see Dense).
    geom: tuple
    out_shape: tuple
    in_shape: tuple
    n_in: int
    n_out: int
    n_w: int
    scratch_len: int
    relu: bool
    rmask: bool
    first: bool
    transposed: bool
    trainable: bool
    m: int
    k: int
    opt: "Options"
    flags: int
    bflags: int
    w: "Any"
    wq: "Any"
    b: "Any"
    bq: "Any"
    gb: "Any"
    y: "Any"
    yq: "Any"
    ep: "Any"
    epq: "Any"
    state: "Any"
    hp: "Any"
    rng: "Any"
    sel: "Any"
    scores: "Any"
    sel_scratch: "Any"
    dsgu_hp: "Any"
    dsgu_state: "Any"
    _float_backward: "Any"
    shared: "Any"
    _fwd: "Any"
    _bwd: "Any"
    _upd: "Any"
    _scr: "Any"
    _wf: "Any"
    _xf: "Any"
    _gw: "Any"
    _e8: "Any"
    y_pair: tuple
    ep_pair: tuple

    @staticmethod
    def nbytes(in_shape, out_ch, *args, **kw):
        """(own bytes, (scratch bytes, floats, error bytes) needed in a Shared)
        of a conv layer, before building it: qtrain.sizes.conv_bytes,
        imported for the call."""
        return builder_call("conv_bytes", in_shape, out_ch, *args, **kw)

    def __init__(self, in_shape, out_ch, k=3, stride=1, pad=0, out_pad=0, relu=False,
                 transposed=False, opt=None, first=False, shared=None, seed=None, ep=None):
        """ep: a buffer the model lends for the error at the input (see Dense)."""
        _builder().init_conv(self, in_shape, out_ch, k, stride, pad, out_pad, relu, transposed, opt, first,
                             shared, seed, ep)

    def forward(self, x, xq):
        """Forward of a CHW input x (record xq; None in float32 mode) -> (y, yq),
        the layer's own output buffer.  Keeps a reference to x for backward()."""
        self.x, self.xq = x, xq
        if self.m == F32:
            self._fwd(x, self.w, self.b, self.y, self.geom, self.relu)
        else:
            self._fwd(x, xq, self.w, self.wq, self.b, self.bq, self.y, self.yq, self.geom,
                      self.relu, self._scr)
        return self.y_pair

    def _select(self, e8, eq, y=None):
        # y (uint8 backward of a ReLU layer): its mask on e8 in the scores' pass
        _q.conv_scores_u8(e8, eq, self.scores, y, self.yq)
        return _q.select_scores(self.scores, self.n_out, eq, self.dsgu_hp, self.dsgu_state,
                                self.sel, self.sel_scratch)

    def backward(self, e, eq):
        """Error e at the output (CHW; record eq in uint8 mode) -> (ep, epq) at
        the input ((None, None) for a first layer), with the ReLU mask, DSGU
        selection and the per-filter weight update as for Dense.backward.
        The uint8 path is written out here, not in a method of its own: a
        bytecode call per layer and step less (~1 k instructions on armv6m)."""
        if self.m != U8:
            return self._float_backward(self, e)
        g = self.geom
        sel = k = None
        if self.sel and self.trainable:   # (sel: empty without a choice, builder.py)
            # the ReLU mask (e in place, where the forward output was clamped) fused with the scores
            # (kept after a mask-aware propagation, as Dense)
            k = self._select(e, eq, self.y if self.relu else None)
            sel = self.sel
        elif self.rmask:   # as Dense
            self._bwd(e, eq, self.y, self.yq, self.w, self.wq, None, None, g)
        self.k = g[3] if k is None else k
        if not self.first:
            self._bwd(e, eq, None, None, self.w, self.wq, self.ep, self.epq, g, sel, k, self._scr, False,
                      self.x if self.mask_in else None, self.xq)
        if self.trainable:
            self._upd(e, eq, self.x, self.xq, self.w, self.wq, self.b, self.bq, g, sel, k,
                      self.hp, self.flags, self.state, self.rng, self._scr)
        return self.ep_pair

    def qparams(self):
        """The quantization records whose ranges move once per step (output,
        input error); empty in float32 mode."""
        out = [] if self.yq is None else [self.yq]
        if self.epq is not None:
            out.append(self.epq)
        return out

    def state_dict(self, prefix):
        """{prefix + name: buffer} of weights, records, optimizer and generator
        state, for qtrain.checkpoint (buffers, not copies)."""
        d = {prefix + "w": self.w, prefix + "wq": self.wq, prefix + "b": self.b,
             prefix + "yq": self.yq, prefix + "st": self.state, prefix + "rng": self.rng,
             prefix + "dsgu": self.dsgu_state, prefix + "bst": self.bstate}
        return {k: v for k, v in d.items() if v is not None}
