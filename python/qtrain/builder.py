"""Building models: the layers' constructors (layers.Dense / Conv2d do
their work here: weight init, buffers), and a VAE (models.build_vae): its
layout and allocation order (the bytes it and its layers need are in
qtrain.sizes).  Used only while a model is built:
models.build_vae imports this module for the call and drops it afterwards
(qtrain.unload), as classifier.build_cnn and classifier.Head do, so its
bytecode is not in a board's heap while the model trains.
"""
import array
import gc

import _qtrain as _q

from . import heap_trace, release, unload
from .layers import (F32, MIXED, MODES, QP_LEN, ROUNDING, U8, Conv2d, Dense, Options, Shared, _float_paths,
                     dequantize, float_kernels, qparams, xs_len, zeros)
from .losses import BernoulliOutput, GaussianLatent
from .models import N_PIXELS, VAE, Sequential

# The paper's ConvVAE (METHOD.md section 6), encoder then decoder:
# (in_shape, out_ch, k, stride, pad, out_pad, transposed, first, relu).
CONV_ENC = (((1, 28, 28), 16, 3, 2, 1, 0, False, True, True),
            ((16, 14, 14), 32, 3, 2, 1, 0, False, False, True))
CONV_DEC = (((32, 7, 7), 16, 3, 2, 1, 1, True, False, True),
            ((16, 14, 14), 1, 3, 2, 1, 1, True, False, False))
CONV_FLAT = 32 * 7 * 7


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
    # On a 32-bit port the 32-bit state is a heap object per operation: collect
    # that garbage now, or the caller's next long-lived buffers land after it,
    # in the middle of the heap's largest free block (a model then fails on
    # fragmentation with enough bytes free).
    gc.collect()


def _error_buffer(n, m, opt, first, lent):
    """(ep, epq): a layer's error at its input -- none for a first layer,
    else `lent` (a model's buffer, cut to n items) or a new one; uint8 with a
    tracked record in 'uint8' mode, array('f') otherwise."""
    if first:
        return None, None
    ep = memoryview(lent)[:n] if lent is not None else (bytearray(n) if m == U8 else zeros("f", n))
    if m == U8:
        return ep, qparams(-opt.error_range, opt.error_range, opt.alpha_e)
    return ep, None


# Buffers allocated ahead of the layers that take them (see _allocate_ahead).
_AHEAD = []  # type: list


def _allocate_ahead(sizes):
    """Allocate the buffers `sizes` (items: n > 0 a bytearray, n < 0 an
    array('i') of -n; a 0 ends them) now, largest first, for the layers built next to take
    (_new).  In one burst nothing lands between them: built layer by layer,
    each layer's small objects (its dict as it grows, records, views) went
    where the next large buffer had to go, and the ConvVAE at the Pico's heap
    failed to find a 3136-byte block with 30 KB free."""
    sizes = sorted(sizes[:sizes.index(0)], key=lambda n: -4 * n if n < 0 else n, reverse=True)
    for n in sizes:
        _AHEAD.append(bytearray(n) if n > 0 else zeros("i", -n))


def _new(tc, n):
    """A zeroed bytearray (tc "B") or array(tc) of n items: one that
    _allocate_ahead made, if it made one of that kind and length, else new."""
    for i in range(len(_AHEAD)):
        b = _AHEAD[i]
        if len(b) == n and isinstance(b, bytearray) == (tc == "B") and tc in "Bi":
            return _AHEAD.pop(i)
    return bytearray(n) if tc == "B" else zeros(tc, n)


def _init_weights(n, a, opt, seed):
    """Weights uniform(-a, a) from the seeded byte stream: uint8 (w, wq), or
    float32 (w, None) holding the same values dequantized, so the three modes
    start from the same model."""
    w8 = _new("B", n)
    fill_uniform_u8(w8, seed)
    wq = qparams(-a, a, opt.alpha_w)
    if opt.mode != "float32":
        return w8, wq
    w = zeros("f", n)
    dequantize(w8, wq, w)
    return w, None


_OPTION_FIELDS = ("lr", "alpha_norm", "per_row", "rounding", "tau", "alpha_a", "alpha_e", "alpha_w",
                  "error_range", "dsgu", "seed", "mode", "mask_aware")


def init_options(opt, lr, alpha_norm, per_row, rounding, tau, alpha_a, alpha_e, alpha_w, error_range, dsgu,
                 seed, mode, mask_aware=True):
    """The body of layers.Options(...) (arguments as there)."""
    if not 0 < lr <= 10:
        raise ValueError("lr must be in (0, 10], got %r" % (lr,))
    if rounding not in ROUNDING:
        raise ValueError("rounding must be one of %s, got %r" % (sorted(ROUNDING), rounding))
    if mode not in MODES:
        raise ValueError("mode must be one of %s, got %r" % (MODES, mode))
    if dsgu is not None:
        lmin, lmax = dsgu
        if not (0 < lmin <= lmax <= 1):
            raise ValueError("dsgu=(lmin, lmax) needs 0 < lmin <= lmax <= 1, got %r" % (dsgu,))
    opt.lr = lr
    opt.alpha_norm = alpha_norm
    opt.per_row = per_row
    opt.rounding = rounding
    opt.tau = tau
    opt.alpha_a = alpha_a
    opt.alpha_e = alpha_e
    opt.alpha_w = alpha_w
    opt.error_range = error_range
    opt.dsgu = dsgu
    opt.seed = seed
    opt.mode = mode
    opt.mask_aware = bool(mask_aware)
    opt.m = MODES.index(mode)  # U8, MIXED or F32


def mask_chain(layers):
    """Mask-aware propagation along a chain of layers (Options.mask_aware,
    uint8): a layer whose input is the previous layer's ReLU output (the same
    buffer: Dense -> ConvTranspose2d reshapes and flattens share it) gets
    mask_in (its propagation writes the error only where that input is above
    its zero point), and the ReLU layer's own mask pass is dropped (rmask:
    the error it receives is already zero where it clamped)."""
    for i in range(1, len(layers)):
        a, b = layers[i - 1], layers[i]
        if a.relu and not b.first and b.opt.mask_aware and b.m == U8 and a.m == U8:
            b.mask_in = True
            a.rmask = False


def replace_options(opt, changes):
    """The body of layers.Options.replace(**changes)."""
    d = {}
    for name in _OPTION_FIELDS:
        d[name] = getattr(opt, name)
    d.update(changes)
    return Options(**d)


def _result_pairs(layer):
    """The (buffer, record) pairs the layer's uint8 forward and backward
    return, made once: they are the layer's own buffers, and a tuple built
    per call is garbage on every step."""
    layer.y_pair = (layer.y, layer.yq)
    layer.ep_pair = (layer.ep, layer.epq)


def init_dense(layer, n_in, n_out, relu, opt, first, init_range, seed, own_scratch, ep):
    """The body of layers.Dense(...) (arguments as there)."""
    if n_in <= 0 or n_out <= 0:
        raise ValueError("Dense: n_in and n_out must be > 0, got %d, %d" % (n_in, n_out))
    opt = opt or Options()
    layer.n_in, layer.n_out, layer.relu, layer.first = n_in, n_out, bool(relu), first
    layer.rmask = layer.relu
    layer.opt = opt
    layer.m = m = opt.m
    layer._qf = None if m == U8 else float_kernels()
    layer._float_backward = None if m == U8 else _float_paths().dense_backward
    seed = opt.seed if seed is None else seed
    # He-uniform range for ReLU layers, Glorot-ish otherwise.
    a = init_range or ((6.0 / n_in) ** 0.5 if relu else (3.0 / n_in) ** 0.5)
    layer.w, layer.wq = _init_weights(n_in * n_out, a, opt, seed)
    if m == F32:
        layer.b = zeros("f", n_out)
        layer.bq = None
        layer.y = zeros("f", n_out)
        layer.yq = None
        layer.xs = layer.acc = None
    else:
        layer.b = _new("i", n_out)
        layer.bq = array.array("f", [layer.BIAS_SCALE] + [0.0] * (QP_LEN - 1))
        layer.y = _new("B", n_out)
        layer.yq = qparams(0.0 if relu else -1.0, 1.0, opt.alpha_a)
        # x - z_x unpacked once per forward (the fast path); the uint8
        # backward reuses it as its accumulator.
        layer.xs = layer.acc = None
        if own_scratch:
            layer.xs = zeros("i", xs_len(n_in))
            layer.acc = memoryview(layer.xs)[:n_in]
    layer.ep, layer.epq = _error_buffer(n_in, m, opt, first, ep)
    # Update statistics: 5 floats, plus (mu, sigma) per row when per_row.
    layer.state = zeros("f", 5 + (2 * n_out if opt.per_row else 0))
    layer.hp = array.array("f", [opt.lr, opt.alpha_norm, opt.tau])
    layer.flags = opt.flags()
    layer.rng = array.array("I", [(seed * 747796405 + 2891336453) & 0xFFFFFFFF or 1])
    # DSGU buffers only when DSGU is on and can choose: with one row k is 1
    # at every lmin, so the layer skips the scores and the selection (an
    # empty sel: backward() tests it)
    ds = 0 if opt.dsgu is None or n_out < 2 else n_out
    layer.sel = zeros("i", ds)
    layer.scores = zeros("I", 2 * ds)
    layer.dsgu_hp = array.array("f", opt.dsgu or (1.0, 1.0))
    layer.dsgu_state = array.array("f", [0.0])
    layer.k = n_out       # rows updated in the last backward (DSGU)
    layer.trainable = True
    layer.x = layer.xq = None
    _result_pairs(layer)


def init_conv(layer, in_shape, out_ch, k, stride, pad, out_pad, relu, transposed, opt, first, shared,
              seed, ep):
    """The body of layers.Conv2d(...) (arguments as there)."""
    opt = opt or Options()
    c, h, w = in_shape
    geom = [c, h, w, out_ch, k, k, stride, stride, pad, pad]
    if transposed:
        geom += [out_pad, out_pad]
        layer.kind = "conv_transpose2d"
    layer.geom = tuple(geom)
    layer.m = m = opt.m
    qf = None
    if m != U8:   # (uint8: the class's None, one entry fewer in each layer's dict)
        layer._qf = qf = float_kernels()
        fp = _float_paths()
        layer._float_backward = fp.conv_backward_mixed if m == MIXED else fp.conv_backward_f32
    p = "conv_transpose2d" if transposed else "conv2d"
    layer._fwd = getattr(qf, p + "_forward_f32") if m == F32 else getattr(_q, p + "_forward_u8")
    layer._bwd = getattr(_q, p + "_backward_u8") if m == U8 else getattr(qf, p + "_backward_f32")
    layer._upd = getattr(_q, p + "_update_u8")
    layer.out_shape = getattr(_q, p + "_out_shape")(layer.geom)  # checks the geometry
    layer.scratch_len = 0 if m == F32 else getattr(_q, p + "_scratch_len")(layer.geom)
    layer.in_shape = tuple(in_shape)
    layer.transposed, layer.relu, layer.first, layer.opt = transposed, bool(relu), first, opt
    layer.rmask = layer.relu
    seed = opt.seed if seed is None else seed
    layer.n_in = n_in = c * h * w
    oc, oh, ow = layer.out_shape
    layer.n_w = n_w = c * out_ch * k * k
    fan_in = (c if not transposed else out_ch) * k * k
    a = (6.0 / fan_in) ** 0.5 if relu else (3.0 / fan_in) ** 0.5
    layer.w, layer.wq = _init_weights(n_w, a, opt, seed)
    layer.n_out = oc * oh * ow
    if m == F32:
        layer.b = zeros("f", out_ch)
        layer.bq = None
        layer.y = zeros("f", layer.n_out)
        layer.yq = None
        layer.gb = zeros("f", out_ch)
    else:
        layer.b = zeros("i", out_ch)
        layer.bq = array.array("f", [Dense.BIAS_SCALE] + [0.0] * (QP_LEN - 1))
        layer.y = _new("B", layer.n_out)
        layer.yq = qparams(0.0 if relu else -1.0, 1.0, opt.alpha_a)
    layer.ep, layer.epq = _error_buffer(n_in, m, opt, first, ep)
    # The update's structures: output filters, except float32
    # ConvTranspose2d (update_rows_f32 takes contiguous rows: in_ch slabs).
    rows = c if (m == F32 and transposed) else out_ch
    layer.state = zeros("f", 5 + 2 * rows)
    if m == F32 and transposed:
        layer.bstate = zeros("f", 7)
    layer.hp = array.array("f", [opt.lr, opt.alpha_norm, opt.tau])
    layer.flags = opt.flags() | 4  # per filter (per slab for float32 ConvTranspose2d)
    layer.bflags = layer.flags & 3
    layer.rng = array.array("I", [(seed * 747796405 + 2891336453) & 0xFFFFFFFF or 1])
    ds = 0 if opt.dsgu is None or out_ch < 2 else out_ch   # (as Dense: one filter, no choice)
    layer.sel = zeros("i", ds)
    layer.scores = zeros("I", ds)
    layer.sel_scratch = zeros("I", ds)
    layer.dsgu_hp = array.array("f", opt.dsgu or (1.0, 1.0))
    layer.dsgu_state = array.array("f", [0.0])
    if m != U8:
        layer.eq8 = qparams(-1.0, 1.0)   # record of the 8-bit error copy
    layer.k = out_ch
    layer.trainable = True
    layer.shared = None
    if shared is not None:
        attach(layer, shared)
    layer.x = layer.xq = None
    _result_pairs(layer)


def init_bernoulli(head, n, opt, own_lut, e):
    """The body of losses.BernoulliOutput(...) (arguments as there)."""
    head.n = n
    head.m = opt.m
    head._qf = None if head.m == U8 else float_kernels()
    if e is not None:
        head.e = memoryview(e)[:n]
    else:
        head.e = bytearray(n) if head.m == U8 else zeros("f", n)
    # The error sigmoid(l) - t lies in [-1, 1]; tracked when alpha_e > 0.
    head.eq = qparams(-1.0, 1.0, opt.alpha_e) if head.m == U8 else None
    head.stats = array.array("f", [0.0] * 3)
    # uint8 logits take 256 values: their exp/log once per call (same
    # results, ~2x cheaper on a soft-float core).
    head.lut = zeros("f", 512) if head.m != F32 and own_lut else None
    head._lut = bytearray(256)


def init_latent(lat, L, opt, beta):
    """The body of losses.GaussianLatent(...) (arguments as there)."""
    lat.L = L
    lat.m = m = opt.m
    lat._qf = None if m == U8 else float_kernels()
    if m == F32:
        lat.z = zeros("f", L)
        lat.zq = None
    else:
        lat.z = bytearray(L)
        lat.zq = qparams(-3.0, 3.0, opt.alpha_a)
    lat.eps = array.array("f", [0.0] * L)
    lat.zero_eps = array.array("f", [0.0] * L)
    lat.rng = array.array("I", [1])
    _q.rng_seed(lat.rng, opt.seed)
    if m == U8:
        lat.dh = bytearray(2 * L)
        lat.dhq = qparams(-opt.error_range, opt.error_range, opt.alpha_e)
    else:
        lat.dh = zeros("f", 2 * L)
        lat.dhq = None
    lat.hp = array.array("f", [beta])
    lat.stats = array.array("f", [0.0] * 3)
    lat.kl = 0.0
    lat.h = lat.hq = None
    lat._eps = lat.eps


def init_vae(vae, kind, encoder, decoder, latent_dim, opt, shared, own_lut, out_err):
    """The body of models.VAE(...) (arguments as there)."""
    vae.kind = kind
    vae.encoder = encoder
    vae.decoder = decoder
    vae.latent = GaussianLatent(latent_dim, opt)
    vae.output = BernoulliOutput(N_PIXELS, opt, own_lut=own_lut, e=out_err)
    vae.latent_dim = latent_dim
    vae.opt = opt
    vae.shared = shared
    vae.errors = None   # the error buffers build_vae lends to the layers
    vae.xq = qparams(0.0, 1.0)  # pixels: real = q / 255
    # float32 mode: the image as floats q / 255 (the BCE target stays uint8)
    vae.xf = zeros("f", N_PIXELS) if opt.m == F32 else None
    vae.steps = 0
    vae._records = encoder.qparams() + decoder.qparams() + vae.latent.qparams() + vae.output.qparams()


def check_memory(need, what, smaller):
    """Fail before allocating, naming both numbers and a config that fits.
    -> the free bytes (None on CPython)."""
    gc.collect()
    try:
        free = gc.mem_free()
    except AttributeError:  # CPython (host tools)
        return None
    if need > free:
        raise MemoryError("%s needs about %d bytes but only %d are free; try %s"
                          % (what, need, free, smaller(free) if callable(smaller) else smaller))
    return free


def shared_needs(part):
    """(scratch bytes, floats, error bytes) that a layer (Dense, Conv2d) or
    the BCE head (losses.BernoulliOutput) takes from a Shared."""
    m = part.m
    if isinstance(part, Conv2d):
        if m == U8:
            return (part.scratch_len, 0, 0)
        if m == MIXED:
            return (part.scratch_len, 0 if part.first else max(part.n_w, part.n_in), part.n_out)
        return (0, part.n_w, part.n_out if part.opt.dsgu is not None else 0)
    if m == F32:
        return (0, 0, 0)
    if isinstance(part, Dense):
        return (4 * xs_len(part.n_in), 0, 0)    # x - z_x, the backward accumulator
    return (part.LUT_BYTES, 0, 0)                # the BCE table


def attach(part, shared):
    """Give `part` (see shared_needs) its views of `shared`, a Shared it
    takes turns with; ValueError naming the part when `shared` is too small."""
    need = shared_needs(part)
    have = (len(shared.scratch), len(shared.floats), len(shared.errs))
    for what, n, h in zip(("scratch bytes", "floats", "error bytes"), need, have):
        if h < n:
            raise ValueError("%s: shared %s too small: %d, it needs %d"
                             % (getattr(part, "kind", "bce"), what, h, n))
    if isinstance(part, Conv2d):
        part.shared = shared
        part._scr = memoryview(shared.scratch)[:part.scratch_len]
        fl = memoryview(shared.floats)
        if part.m == MIXED and not part.first:
            part._wf = fl[:part.n_w]      # dequantized weights
            part._xf = fl[:part.n_in]     # x is not read when no gradient is asked for
        elif part.m == F32:
            part._gw = fl[:part.n_w]
        part._e8 = memoryview(shared.errs)[:need[2]]
    elif isinstance(part, Dense):
        part.shared = shared
        if part.m != F32:
            part.xs = part.acc = memoryview(shared.scratch)[:need[0]]
    elif part.m != F32:
        part.lut = memoryview(shared.scratch)[:need[0]]


def attach_all(shared, parts):
    """attach() every part of `parts` to `shared`; -> shared."""
    for p in parts:
        attach(p, shared)
    return shared


def shared_for(parts):
    """One Shared big enough for every part of `parts` (layers, the BCE
    head), attached to them (layers.Shared.for_layers)."""
    need = [0, 0, 0]
    for p in parts:
        for i, v in enumerate(shared_needs(p)):
            need[i] = max(need[i], v)
    gc.collect()   # build-time temporaries (weight init) out of the way first
    return attach_all(Shared(*need), parts)


def _error_lenders(sizes, mode):
    """The two buffers sizes._error_sizes sized, and a function giving the next one
    to lend (alternating, in backward order).  The larger is allocated
    first, while the heap's largest free block is whole."""
    bufs = [None, None]  # type: list
    for i in ((0, 1) if sizes[0] >= sizes[1] else (1, 0)):
        bufs[i] = bytearray(sizes[i]) if mode == "uint8" else zeros("f", sizes[i])
    turn = [0]

    def lend():
        b = bufs[turn[0] % 2]
        turn[0] += 1
        return b
    return bufs, lend


def build_vae(kind="mlp", opt=None, hidden=256, latent=10):
    """See models.build_vae."""
    opt = opt or Options()
    if kind not in ("mlp", "conv"):
        raise ValueError("kind must be 'mlp' or 'conv', got %r" % (kind,))
    # The sizes (qtrain.sizes) are worked out, then their module dropped
    # before anything is allocated: its bytecode's space is free heap for
    # the build's small objects (measured: PICO_HEAP_MARGINS' comment).
    plan = [0] * 20   # sizes.PLAN_LEN, made before the module is loaded
    from . import sizes
    sizes.vae_plan(kind, hidden, latent, opt.mode, opt.dsgu is not None, opt.per_row, plan)
    del sizes
    unload("sizes")
    need = plan[0]
    what = "a %s VAE (mode=%s, hidden=%d, latent=%d)" % (kind, opt.mode, hidden, latent)

    def smaller(free):
        return _advice(free, hidden // 2 if kind == "mlp" else 256, latent, opt.mode)

    release()   # the space train_vae.py reserved for the model (qtrain.reserve)
    free = check_memory(need, what, smaller)
    heap_trace("builder")
    try:
        return _build_vae(kind, opt, hidden, latent, plan)
    except MemoryError as e:
        # Enough bytes in total, but no free block large enough for one buffer.
        del _AHEAD[:]
        gc.collect()
        raise MemoryError("%s needs about %d bytes and %d were free, but the heap is too fragmented (%s); try %s"
                          % (what, need, free, e, smaller(free)))
    finally:
        del _AHEAD[:]   # a failed build holds none of the buffers allocated ahead


def _advice(free, widest, latent, mode):
    """sizes.mlp_advice (a failed build's hint), its module loaded again
    for the call."""
    from . import sizes
    try:
        return sizes.mlp_advice(free, widest, latent, mode)
    finally:
        unload("sizes")


def _build_vae(kind, opt, hidden, latent, plan):
    # The largest buffers first, while the heap still has large free blocks:
    # the scratch the layers share, the two error buffers, then (conv) the
    # Dense layers (d1's weights are 31 KB in uint8).  plan: what sizes.vae_plan wrote.
    shared = Shared(plan[1], plan[2], plan[3])
    errs, lend = _error_lenders(plan[4:6], opt.mode)
    heap_trace("shared, errors")
    # Layers are built decoder-last-first, so the lent error buffers alternate
    # in backward order (a layer never writes the buffer it reads), starting
    # with the BCE head's.
    out_err = lend()
    if kind == "mlp":
        e4 = lend()
        e3 = lend()
        e2 = lend()
        # The two 784 x hidden layers first (largest buffers first).
        d1 = Dense(N_PIXELS, hidden, relu=True, opt=opt, first=True, seed=opt.seed, own_scratch=False)
        d4 = Dense(hidden, N_PIXELS, opt=opt, seed=opt.seed + 3, own_scratch=False, ep=e4)
        heap_trace("784-wide layers")
        enc = Sequential([d1, Dense(hidden, 2 * latent, opt=opt, seed=opt.seed + 1, own_scratch=False, ep=e2)])
        dec = Sequential([Dense(latent, hidden, relu=True, opt=opt, seed=opt.seed + 2, own_scratch=False, ep=e3),
                          d4])
        vae = VAE(kind, enc, dec, latent, opt, own_lut=False, out_err=out_err)
        mask_chain(enc.layers)
        mask_chain(dec.layers)
        vae.shared = attach_all(shared, enc.layers + dec.layers + [vae.output])
        vae.errors = errs
        return vae
    # Conv(1->16, 3x3, s2) -> Conv(16->32, 3x3, s2) -> Dense(1568 -> 2L);
    # Dense(L -> 1568) -> DeConv(32->16, s2) -> DeConv(16->1, s2).
    ep_t2, ep_t1, ep_d2, ep_d1, ep_c2 = lend(), lend(), lend(), lend(), lend()
    if plan[6]:
        _allocate_ahead(plan[6:])
    d1 = Dense(CONV_FLAT, 2 * latent, opt=opt, seed=opt.seed + 2, own_scratch=False, ep=ep_d1)
    d2 = Dense(latent, CONV_FLAT, relu=True, opt=opt, seed=opt.seed + 3, own_scratch=False, ep=ep_d2)
    heap_trace("dense layers")
    # c2 and t1 (4.6 KB of weights each) before c1 and t2: largest first.
    # Each layer's init has its own seed, so the order changes no value.
    convs = [None] * 4  # type: list
    eps = (None, ep_c2, ep_t1, ep_t2)
    specs = CONV_ENC + CONV_DEC
    for i in (1, 2, 0, 3):
        in_shape, oc, k, s, p, op, tr, first, relu = specs[i]
        convs[i] = Conv2d(in_shape, oc, k, s, p, op, relu=relu, transposed=tr, opt=opt, first=first,
                          seed=opt.seed + (0, 1, 4, 5)[i], ep=eps[i])
    c1, c2, t1, t2 = convs
    vae = VAE(kind, Sequential([c1, c2, d1]), Sequential([d2, t1, t2]), latent, opt, own_lut=False,
              out_err=out_err)
    mask_chain(vae.encoder.layers)
    mask_chain(vae.decoder.layers)
    vae.shared = attach_all(shared, (c1, c2, d1, d2, t1, t2, vae.output))
    vae.errors = errs
    return vae
