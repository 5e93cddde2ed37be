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

import _qtrain as _q

from .layers import F32, Conv2d, Dense, Options, Shared, dequantize, qparams, zeros  # noqa: F401 (re-export)
from .losses import BernoulliOutput, GaussianLatent, SoftmaxOutput

IMAGE = (1, 28, 28)
N_PIXELS = 784


class Sequential:
    """Layers applied in order; the error flows back through them."""

    def __init__(self, layers):
        self.layers = layers

    def forward(self, x, xq):
        for layer in self.layers:
            x, xq = layer.forward(x, xq)
        return x, xq

    def backward(self, e, eq):
        for layer in reversed(self.layers):
            e, eq = layer.backward(e, eq)
        return e, eq

    def set_trainable(self, flag):
        for layer in self.layers:
            layer.trainable = flag

    def qparams(self):
        out = []
        for layer in self.layers:
            out.extend(layer.qparams())
        return out

    def state_dict(self, prefix):
        d = {}
        for i, layer in enumerate(self.layers):
            d.update(layer.state_dict("%s%d." % (prefix, i)))
        return d


def _check_memory(need, what, smaller):
    """Fail before allocating, naming both numbers and a config that fits."""
    gc.collect()
    try:
        free = gc.mem_free()
    except AttributeError:  # CPython (host tools)
        return
    if need > free:
        raise MemoryError("%s needs about %d bytes but only %d are free; try %s"
                          % (what, need, free, smaller))


class VAE:
    """Encoder -> (mu, logvar) -> z -> decoder -> Bernoulli logits of the image."""

    def __init__(self, kind, encoder, decoder, latent_dim, opt, shared=None):
        self.kind = kind
        self.encoder = encoder
        self.decoder = decoder
        self.latent = GaussianLatent(latent_dim, opt)
        self.output = BernoulliOutput(N_PIXELS, opt)
        self.latent_dim = latent_dim
        self.opt = opt
        self.shared = shared
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
        lg, lq = self.forward(x, sample=False)
        self.output.mean_image(lg, lq, image)
        return image

    def state_dict(self):
        d = {"kind": self.kind, "latent_dim": self.latent_dim, "steps": self.steps,
             "mode": self.opt.mode}
        d.update(self.encoder.state_dict("enc."))
        d.update(self.decoder.state_dict("dec."))
        d.update(self.latent.state_dict("lat."))
        return d


def vae_bytes(kind="mlp", hidden=256, latent=10, mode="uint8", dsgu=False):
    """Bytes of buffers a VAE allocates (weights, activations, errors,
    optimizer state, shared scratch, heads), for checking before building
    one; object headers not counted."""
    if kind == "mlp":
        n = Dense.nbytes(N_PIXELS, hidden, first=True, mode=mode, dsgu=dsgu)
        n += Dense.nbytes(hidden, 2 * latent, mode=mode, dsgu=dsgu)
        n += Dense.nbytes(latent, hidden, mode=mode, dsgu=dsgu)
        n += Dense.nbytes(hidden, N_PIXELS, mode=mode, dsgu=dsgu)
    else:
        n = Dense.nbytes(32 * 7 * 7, 2 * latent, mode=mode, dsgu=dsgu)
        n += Dense.nbytes(latent, 32 * 7 * 7, mode=mode, dsgu=dsgu)
        sh = [0, 0, 0]
        for args in (((1, 28, 28), 16, 3, 2, 1, 0, False, True), ((16, 14, 14), 32, 3, 2, 1, 0, False, False),
                     ((32, 7, 7), 16, 3, 2, 1, 1, True, False), ((16, 14, 14), 1, 3, 2, 1, 1, True, False)):
            b, s = Conv2d.nbytes(*args, mode=mode, dsgu=dsgu)
            n += b
            sh = [max(u, v) for u, v in zip(sh, s)]
        n += sh[0] + 4 * sh[1] + sh[2]
    # heads: BCE error (+ lut), latent, the float image in float32 mode
    n += N_PIXELS * (1 if mode == "uint8" else 4) + (2048 if mode != "float32" else 4 * N_PIXELS) + 256
    return n + 64 * latent


def build_vae(kind="mlp", opt=None, hidden=256, latent=10):
    """kind 'mlp': 784-hidden-2L / L-hidden-784 (quick runs);
    kind 'conv': the paper's configuration (METHOD.md section 6)."""
    opt = opt or Options()
    if kind not in ("mlp", "conv"):
        raise ValueError("kind must be 'mlp' or 'conv', got %r" % (kind,))
    need = vae_bytes(kind, hidden, latent, opt.mode, opt.dsgu is not None)
    _check_memory(need, "a %s VAE (mode=%s, hidden=%d, latent=%d)" % (kind, opt.mode, hidden, latent),
                  "kind='mlp' with hidden=%d" % max(16, hidden // 2) if kind == "mlp" else "kind='mlp', hidden=64")
    if kind == "mlp":
        enc = Sequential([Dense(N_PIXELS, hidden, relu=True, opt=opt, first=True, seed=opt.seed),
                          Dense(hidden, 2 * latent, opt=opt, seed=opt.seed + 1)])
        dec = Sequential([Dense(latent, hidden, relu=True, opt=opt, seed=opt.seed + 2),
                          Dense(hidden, N_PIXELS, opt=opt, seed=opt.seed + 3)])
        return VAE(kind, enc, dec, latent, opt)
    # Conv(1->16, 3x3, s2) -> Conv(16->32, 3x3, s2) -> Dense(1568 -> 2L);
    # Dense(L -> 1568) -> DeConv(32->16, s2) -> DeConv(16->1, s2).
    c1 = Conv2d(IMAGE, 16, 3, 2, 1, relu=True, opt=opt, first=True, seed=opt.seed)
    c2 = Conv2d(c1.out_shape, 32, 3, 2, 1, relu=True, opt=opt, seed=opt.seed + 1)
    d1 = Dense(32 * 7 * 7, 2 * latent, opt=opt, seed=opt.seed + 2)
    d2 = Dense(latent, 32 * 7 * 7, relu=True, opt=opt, seed=opt.seed + 3)
    t1 = Conv2d((32, 7, 7), 16, 3, 2, 1, 1, relu=True, transposed=True, opt=opt, seed=opt.seed + 4)
    t2 = Conv2d(t1.out_shape, 1, 3, 2, 1, 1, transposed=True, opt=opt, seed=opt.seed + 5)
    shared = Shared.for_layers((c1, c2, t1, t2))
    return VAE(kind, Sequential([c1, c2, d1]), Sequential([d2, t1, t2]), latent, opt, shared)


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
        f, fq = self._features(x)
        lg, lq = self.net.forward(f, fq)
        return self.output.predict(lg, lq)

    def state_dict(self):
        return self.net.state_dict("head.")
