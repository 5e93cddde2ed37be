"""Models: the VAE (MLP or the paper's ConvVAE) and the classifier head.

    from qtrain import models
    vae = models.build_vae("mlp", models.Options(lr=0.003))   # mode="uint8"
    vae = models.build_vae("conv", models.Options(mode="mixed"))  # or "float32"
    rec, kl = vae.train_step(image)           # one unsupervised sample
    vae.encode(image, mu)                     # mu: array('f', latent)
    vae.decode(z, image_out)                  # z: array('f', latent)

Every buffer is allocated by the constructor; a step allocates nothing.
`vae_bytes(kind, ...)` tells the bytes a model needs before you build it.
"""
import gc
import sys

import _qtrain as _q

from .layers import F32, Conv2d, Dense, Options, Shared, dequantize, qparams, xs_len, zeros  # noqa: F401 (re-export)
from .losses import BernoulliOutput, GaussianLatent, SoftmaxOutput

IMAGE = (1, 28, 28)
N_PIXELS = 784


class Sequential:
    """Layers applied in order; the error flows back through them."""

    def __init__(self, layers):
        self.layers = layers

    def forward(self, x, xq):
        """Run every layer's forward in order: (x, xq) -> the last layer's (y, yq)."""
        for layer in self.layers:
            x, xq = layer.forward(x, xq)
        return x, xq

    def backward(self, e, eq):
        """Run every layer's backward in reverse order: error at the output ->
        error at the input ((None, None) when the first layer is marked first)."""
        for layer in reversed(self.layers):
            e, eq = layer.backward(e, eq)
        return e, eq

    def set_trainable(self, flag):
        """Freeze (False) or unfreeze (True) every layer's weight update."""
        for layer in self.layers:
            layer.trainable = flag

    def qparams(self):
        """The moving quantization records of all layers, in order."""
        out = []
        for layer in self.layers:
            out.extend(layer.qparams())
        return out

    def state_dict(self, prefix):
        """{prefix + '<layer index>.' + name: buffer} of every layer."""
        d = {}
        for i, layer in enumerate(self.layers):
            d.update(layer.state_dict("%s%d." % (prefix, i)))
        return d


def _check_memory(need, what, smaller):
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


class VAE:
    """Encoder -> (mu, logvar) -> z -> decoder -> Bernoulli logits of the image."""

    def __init__(self, kind, encoder, decoder, latent_dim, opt, shared=None, own_lut=True):
        self.kind = kind
        self.encoder = encoder
        self.decoder = decoder
        self.latent = GaussianLatent(latent_dim, opt)
        self.output = BernoulliOutput(N_PIXELS, opt, own_lut=own_lut)
        self.latent_dim = latent_dim
        self.opt = opt
        self.shared = shared
        self.errors = None   # the error buffers build_vae lends to the layers
        self.xq = qparams(0.0, 1.0)  # pixels: real = q / 255
        # float32 mode: the image as floats q / 255 (the BCE target stays uint8)
        self.xf = zeros("f", N_PIXELS) if opt.m == F32 else None
        self.steps = 0
        self._records = encoder.qparams() + decoder.qparams() + self.latent.qparams() + self.output.qparams()

    def input(self, x):
        """The image as the first layer's input tensor: (uint8 x, xq), or
        (float x/255, None) in float32 mode."""
        if self.xf is None:
            return x, self.xq
        return dequantize(x, self.xq, self.xf), None

    def forward(self, x, sample=True):
        """Image x (784 uint8) -> (decoder logits, their record); sample=False
        uses z = mu.  No training."""
        h, hq = self.encoder.forward(*self.input(x))
        z, zq = self.latent.forward(h, hq, sample)
        return self.decoder.forward(z, zq)

    def train_step(self, x):
        """One unsupervised step on image x (784 uint8). Returns (rec, kl):
        the reconstruction term (BCE, nats) and the KL term of the -ELBO."""
        lg, lq = self.forward(x)
        e, eq, rec = self.output.loss(lg, lq, x)
        ez, ezq = self.decoder.backward(e, eq)
        eh, ehq = self.latent.backward(ez, ezq)
        self.encoder.backward(eh, ehq)
        self.step_done()
        return rec, self.latent.kl

    def step_done(self):
        """Apply this step's range observations (activations, errors)."""
        for r in self._records:
            _q.qp_update(r)
        self.steps += 1

    def evaluate(self, x):
        """-> (rec, kl) for x without training (z = mu, no sampling noise)."""
        lg, lq = self.forward(x, sample=False)
        rec = self.output.loss(lg, lq, x)[2]
        return rec, self.latent.kl

    def encode(self, x, mu):
        """mu (array('f', latent)) <- the encoder's mean for image x."""
        h, hq = self.encoder.forward(*self.input(x))
        self.latent.mean(h, hq, mu)
        return mu

    def decode(self, z, image):
        """image (bytearray 784) <- the decoded mean image for latent z (floats)."""
        zb, zq = self.latent.set(z)
        lg, lq = self.decoder.forward(zb, zq)
        self.output.mean_image(lg, lq, image)
        return image

    def reconstruct(self, x, image):
        """image (bytearray 784) <- the mean reconstruction of x (z = mu); returns image."""
        lg, lq = self.forward(x, sample=False)
        self.output.mean_image(lg, lq, image)
        return image

    def state_dict(self):
        """{name: buffer} of both halves and the latent layer, plus 'kind',
        'latent_dim', 'steps' and 'mode': what qtrain.checkpoint.save() writes."""
        d = {"kind": self.kind, "latent_dim": self.latent_dim, "steps": self.steps,
             "mode": self.opt.mode}
        d.update(self.encoder.state_dict("enc."))
        d.update(self.decoder.state_dict("dec."))
        d.update(self.latent.state_dict("lat."))
        return d


# The paper's ConvVAE (METHOD.md section 6), encoder then decoder:
# (in_shape, out_ch, k, stride, pad, out_pad, transposed, first, relu).
CONV_ENC = (((1, 28, 28), 16, 3, 2, 1, 0, False, True, True),
            ((16, 14, 14), 32, 3, 2, 1, 0, False, False, True))
CONV_DEC = (((32, 7, 7), 16, 3, 2, 1, 1, True, False, True),
            ((16, 14, 14), 1, 3, 2, 1, 1, True, False, False))
CONV_FLAT = 32 * 7 * 7
# Object headers and the Python objects of a built VAE (layers, records,
# views, dicts) in machine words, measured on the Unix port (8-byte words)
# and qemu-m4 (4-byte words): what vae_bytes adds to the buffers so that it
# predicts build_vae's gc.mem_alloc() growth.
VAE_OBJ_WORDS = {"mlp": 840, "conv": 1440}
WORD = 8 if sys.maxsize > 0xFFFFFFFF else 4


def _error_sizes(n_ins, mode):
    """Two error buffers serve a chain of layers (backward order, input
    sizes n_ins; None = no error at the input): layer i writes buffer i % 2
    while it reads the other one.  -> (bytes of buffer 0, of buffer 1)."""
    size = [0, 0]
    i = 0
    for n in n_ins:
        if n is not None:
            size[i % 2] = max(size[i % 2], n)
            i += 1
    return size


def _error_lenders(sizes, mode):
    """The two buffers _error_sizes sized, and a function giving the next one
    to lend (alternating, in backward order)."""
    bufs = [bytearray(n) if mode == "uint8" else zeros("f", n) for n in sizes]
    turn = [0]

    def lend():
        b = bufs[turn[0] % 2]
        turn[0] += 1
        return b
    return bufs, lend


def _vae_layout(kind, hidden, latent):
    """-> (backward-ordered input sizes of the layers that propagate an
    error, for _error_sizes)."""
    if kind == "mlp":
        return [hidden, latent, hidden]          # dec 2, dec 1, enc 2 (enc 1 is first)
    return [16 * 14 * 14, CONV_FLAT, latent, CONV_FLAT, 16 * 14 * 14]   # t2, t1, d2, d1, c2


def _vae_shared(kind, hidden, latent, mode, dsgu):
    """-> (own bytes of the layers, [scratch bytes, floats, error bytes] of
    the model's Shared): what the layers take before their objects."""
    own = dict(mode=mode, dsgu=dsgu)
    sh = [0, 0, 0]
    if mode != "float32":
        sh[0] = 2048                               # the BCE table
    if kind == "mlp":
        if mode != "float32":
            sh[0] = max(sh[0], 4 * xs_len(N_PIXELS))
        return 0, sh
    if mode != "float32":
        sh[0] = max(sh[0], 4 * xs_len(CONV_FLAT))
    n = 0
    for in_shape, oc, k, s, p, op, tr, first, _ in CONV_ENC + CONV_DEC:
        b, need = Conv2d.nbytes(in_shape, oc, k, s, p, op, tr, first, own_ep=False, **own)
        n += b
        sh = [max(u, v) for u, v in zip(sh, need)]
    return n, sh


def vae_bytes(kind="mlp", hidden=256, latent=10, mode="uint8", dsgu=False, per_row=False):
    """Bytes a VAE allocates (weights, activations, errors, optimizer state,
    shared scratch, heads, and its objects), for checking before building
    one: build_vae's gc.mem_alloc() growth on the Unix port within a few %
    (tests/test_vae_memory.py)."""
    dense = dict(mode=mode, dsgu=dsgu, per_row=per_row, own_scratch=False, own_ep=False)
    n, sh = _vae_shared(kind, hidden, latent, mode, dsgu)
    if kind == "mlp":
        n += Dense.nbytes(N_PIXELS, hidden, first=True, **dense)
        n += Dense.nbytes(hidden, 2 * latent, **dense)
        n += Dense.nbytes(latent, hidden, **dense)
        n += Dense.nbytes(hidden, N_PIXELS, **dense)
    else:
        n += Dense.nbytes(CONV_FLAT, 2 * latent, **dense)
        n += Dense.nbytes(latent, CONV_FLAT, **dense)
    n += sh[0] + 4 * sh[1] + sh[2]
    n += sum(_error_sizes(_vae_layout(kind, hidden, latent), mode)) * (1 if mode == "uint8" else 4)
    # heads: BCE error; latent z, eps, dh; the float image in float32 mode
    n += N_PIXELS * (1 if mode == "uint8" else 4) + 256 + (4 * N_PIXELS if mode == "float32" else 0)
    return n + 64 * latent + WORD * VAE_OBJ_WORDS[kind]


def build_vae(kind="mlp", opt=None, hidden=256, latent=10):
    """kind 'mlp': 784-hidden-2L / L-hidden-784 (quick runs);
    kind 'conv': the paper's configuration (METHOD.md section 6)."""
    opt = opt or Options()
    if kind not in ("mlp", "conv"):
        raise ValueError("kind must be 'mlp' or 'conv', got %r" % (kind,))
    need = vae_bytes(kind, hidden, latent, opt.mode, opt.dsgu is not None, opt.per_row)
    what = "a %s VAE (mode=%s, hidden=%d, latent=%d)" % (kind, opt.mode, hidden, latent)

    def smaller(free):
        """The widest MLP VAE that fits `free` bytes."""
        h = hidden // 2 if kind == "mlp" else 256
        while h > 8 and vae_bytes("mlp", h, latent, opt.mode) > free:
            h //= 2
        return "kind='mlp', hidden=%d" % h

    free = _check_memory(need, what, smaller)
    try:
        return _build_vae(kind, opt, hidden, latent)
    except MemoryError as e:
        # Enough bytes in total, but no free block large enough for one buffer.
        gc.collect()
        raise MemoryError("%s needs about %d bytes and %d were free, but the heap is too fragmented (%s); try %s"
                          % (what, need, free, e, smaller(free)))


def _build_vae(kind, opt, hidden, latent):
    # The largest buffers first, while the heap still has large free blocks:
    # the scratch the layers share, the two error buffers, then (conv) the
    # Dense layers (d1's weights are 31 KB in uint8).
    shared = Shared(*_vae_shared(kind, hidden, latent, opt.mode, opt.dsgu is not None)[1])
    errs, lend = _error_lenders(_error_sizes(_vae_layout(kind, hidden, latent), opt.mode), opt.mode)
    # Layers are built decoder-last-first, so the lent error buffers alternate
    # in backward order (a layer never writes the buffer it reads).
    if kind == "mlp":
        e4 = lend()
        e3 = lend()
        e2 = lend()
        enc = Sequential([Dense(N_PIXELS, hidden, relu=True, opt=opt, first=True, seed=opt.seed,
                                own_scratch=False),
                          Dense(hidden, 2 * latent, opt=opt, seed=opt.seed + 1, own_scratch=False, ep=e2)])
        dec = Sequential([Dense(latent, hidden, relu=True, opt=opt, seed=opt.seed + 2, own_scratch=False, ep=e3),
                          Dense(hidden, N_PIXELS, opt=opt, seed=opt.seed + 3, own_scratch=False, ep=e4)])
        vae = VAE(kind, enc, dec, latent, opt, own_lut=False)
        vae.shared = shared.attach_to(enc.layers + dec.layers + [vae.output])
        vae.errors = errs
        return vae
    # Conv(1->16, 3x3, s2) -> Conv(16->32, 3x3, s2) -> Dense(1568 -> 2L);
    # Dense(L -> 1568) -> DeConv(32->16, s2) -> DeConv(16->1, s2).
    ep_t2, ep_t1, ep_d2, ep_d1, ep_c2 = lend(), lend(), lend(), lend(), lend()
    d1 = Dense(CONV_FLAT, 2 * latent, opt=opt, seed=opt.seed + 2, own_scratch=False, ep=ep_d1)
    d2 = Dense(latent, CONV_FLAT, relu=True, opt=opt, seed=opt.seed + 3, own_scratch=False, ep=ep_d2)
    convs = []
    for (in_shape, oc, k, s, p, op, tr, first, relu), ep, sd in zip(
            CONV_ENC + CONV_DEC, (None, ep_c2, ep_t1, ep_t2), (0, 1, 4, 5)):
        convs.append(Conv2d(in_shape, oc, k, s, p, op, relu=relu, transposed=tr, opt=opt, first=first,
                            seed=opt.seed + sd, ep=ep))
    c1, c2, t1, t2 = convs
    vae = VAE(kind, Sequential([c1, c2, d1]), Sequential([d2, t1, t2]), latent, opt, own_lut=False)
    vae.shared = shared.attach_to((c1, c2, d1, d2, t1, t2, vae.output))
    vae.errors = errs
    return vae


class Head:
    """Classifier on the frozen encoder's mu: Dense(L->hidden, ReLU) -> Dense(hidden->classes).
    It runs in the VAE's mode (its input is the encoder's output tensor)."""

    def __init__(self, vae, hidden=32, classes=10, opt=None):
        opt = (opt or Options()).replace(mode=vae.opt.mode)
        self.vae = vae
        self.classes = classes
        L = vae.latent_dim
        self.net = Sequential([Dense(L, hidden, relu=True, opt=opt, first=True, seed=opt.seed + 10),
                               Dense(hidden, classes, opt=opt, seed=opt.seed + 11)])
        self.output = SoftmaxOutput(classes, opt)
        self._records = self.net.qparams() + self.output.qparams()

    def _features(self, x):
        h, hq = self.vae.encoder.forward(*self.vae.input(x))
        return self.vae.latent.mu_view(h, hq)

    def train_step(self, x, label):
        """One supervised step (encoder frozen). Returns (loss, predicted)."""
        f, fq = self._features(x)
        lg, lq = self.net.forward(f, fq)
        e, eq, loss, pred = self.output.loss(lg, lq, label)
        self.net.backward(e, eq)
        for r in self._records:
            _q.qp_update(r)
        return loss, pred

    def predict(self, x):
        """The predicted class of image x (784 uint8); no training."""
        f, fq = self._features(x)
        lg, lq = self.net.forward(f, fq)
        return self.output.predict(lg, lq)

    def state_dict(self):
        """{'head.<layer>.<name>': buffer} of the head's layers (not the VAE's)."""
        return self.net.state_dict("head.")
