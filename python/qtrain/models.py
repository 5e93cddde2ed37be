"""Models: the VAE (MLP or the paper's ConvVAE).  The classifier head on
its encoder is qtrain.classifier.Head (models.Head still finds it).

    from qtrain import models
    vae = models.build_vae("mlp", models.Options(lr=0.003))   # mode="uint8"
    vae = models.build_vae("conv", models.Options(mode="mixed"))  # or "float32"
    rec, kl = vae.train_step(image)           # one unsupervised sample
    vae.encode(image, mu)                     # mu: array('f', latent)
    vae.decode(z, image_out)                  # z: array('f', latent)

Every buffer is allocated by the constructor; a step allocates nothing.
`vae_bytes(kind, ...)` tells the bytes a model needs before you build it.
"""
import _qtrain as _q

from .layers import F32, Conv2d, Dense, Options, Shared, _builder, builder_call, dequantize, qparams, xs_len, zeros  # noqa: F401 (re-export)
from .losses import BernoulliOutput, GaussianLatent

if False:  # for type checkers only; compiled away
    from typing import Any

IMAGE = (1, 28, 28)
N_PIXELS = 784


class Sequential:
    """Layers applied in order; the error flows back through them."""

    def __init__(self, layers):
        self.layers = layers

    # Both passes hand on the pair a layer returns (its own, made once: see
    # builder._result_pairs) instead of packing a new tuple, and walk the
    # layers by index: a uint8 step allocates nothing, and without a for
    # loop's iterator slots the frame fits the 11 words MicroPython keeps on
    # the C stack (a larger one is allocated on the heap at every call).
    def forward(self, x, xq):
        """Run every layer's forward in order: (x, xq) -> the last layer's (y, yq)."""
        layers = self.layers
        out = (x, xq) if not layers else None
        i = 0
        while i < len(layers):
            out = layers[i].forward(x, xq)
            x, xq = out
            i += 1
        return out

    def backward(self, e, eq):
        """Run every layer's backward in reverse order: error at the output ->
        error at the input ((None, None) when the first layer is marked first)."""
        layers = self.layers
        out = (e, eq) if not layers else None
        i = len(layers)
        while i:
            i -= 1
            out = layers[i].backward(e, eq)
            e, eq = out
        return out

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

    def state_items(self, prefix):
        """(prefix + '<layer index>.' + name, buffer) of every layer, one
        layer's dict at a time (see VAE.state_items)."""
        for i, layer in enumerate(self.layers):
            yield from layer.state_dict("%s%d." % (prefix, i)).items()

    def state_dict(self, prefix):
        """{prefix + '<layer index>.' + name: buffer} of every layer."""
        return dict(self.state_items(prefix))


class VAE:
    """Encoder -> (mu, logvar) -> z -> decoder -> Bernoulli logits of the image."""

    # Set by builder.init_vae (the constructor's body, see layers.Dense).
    kind: str
    encoder: Sequential
    decoder: Sequential
    latent: GaussianLatent
    output: BernoulliOutput
    latent_dim: int
    opt: Options
    shared: "Any"
    errors: "Any"
    xq: "Any"
    xf: "Any"
    steps: int
    _records: list

    def __init__(self, kind, encoder, decoder, latent_dim, opt, shared=None, own_lut=True, out_err=None):
        """out_err: a buffer (of the error type, >= 784 items) the BCE head
        writes its error into, lent by build_vae; None: its own."""
        _builder().init_vae(self, kind, encoder, decoder, latent_dim, opt, shared, own_lut, out_err)

    def input(self, x):
        """The image as the first layer's input tensor: (uint8 x, xq), or
        (float x/255, None) in float32 mode."""
        if self.xf is None:
            return x, self.xq
        return dequantize(x, self.xq, self.xf), None

    # forward and train_step reuse one pair of names for the tensor that
    # flows through (and unpack input() rather than calling with *): their
    # frames then fit the 11 words kept on the C stack (see Sequential).
    def forward(self, x, sample=True):
        """Image x (784 uint8) -> (decoder logits, their record); sample=False
        uses z = mu.  No training."""
        x, xq = self.input(x)
        x, xq = self.encoder.forward(x, xq)
        x, xq = self.latent.forward(x, xq, sample)
        return self.decoder.forward(x, xq)

    def train_step(self, x):
        """One unsupervised step on image x (784 uint8). Returns (rec, kl):
        the reconstruction term (BCE, nats) and the KL term of the -ELBO."""
        e, eq = self.forward(x)
        e, eq, rec = self.output.loss(e, eq, x)
        e, eq = self.decoder.backward(e, eq)
        e, eq = self.latent.backward(e, eq)
        self.encoder.backward(e, eq)
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

    def state_scalars(self):
        """{'kind', 'latent_dim', 'steps', 'mode'}: the checkpoint's entries
        that are not buffers."""
        return {"kind": self.kind, "latent_dim": self.latent_dim, "steps": self.steps, "mode": self.opt.mode}

    def state_items(self):
        """(name, buffer) of both halves, the latent layer and the moving
        quantization records ('rec.<i>'), made as they are used: the
        training loop hands this to qtrain.checkpoint.save(items=...) rather
        than keeping a dict of them, whose ~66 heap-string names and table
        (~3 KB on armv6m) the ConvVAE at the Pico's real heap cannot spare."""
        yield from self.encoder.state_items("enc.")
        yield from self.decoder.state_items("dec.")
        yield from self.latent.state_dict("lat.").items()
        for i, r in enumerate(self._records):
            yield "rec.%d" % i, r

    def state_dict(self):
        """{name: buffer} of state_items() plus state_scalars(): everything
        a resumed run needs to continue bit-exactly (weights, quantization
        records, optimizer and generator states)."""
        d = self.state_scalars()
        d.update(self.state_items())
        return d


def vae_bytes(kind="mlp", hidden=256, latent=10, mode="uint8", dsgu=False, per_row=False):
    """Bytes a VAE allocates, for checking before building one
    (qtrain.sizes.vae_bytes, imported for the call)."""
    return builder_call("vae_bytes", kind, hidden, latent, mode, dsgu, per_row)


def build_vae(kind="mlp", opt=None, hidden=256, latent=10):
    """kind 'mlp': 784-hidden-2L / L-hidden-784 (quick runs);
    kind 'conv': the paper's configuration (METHOD.md section 6).
    MemoryError naming the bytes needed, the bytes free and a model that
    fits, checked before allocating.  The builder (qtrain.builder) is
    imported for the call and dropped after it: a board's heap then holds
    only the model and the code a training step runs."""
    return builder_call("build_vae", kind, opt, hidden, latent)


# qtrain.classifier.Head, resolved by __getattr__ below: declared for type
# checkers (a bare annotation compiles to nothing in MicroPython).
Head: "Any"


def __getattr__(name):
    """models.Head: qtrain.classifier.Head, imported on use (the VAE's
    training never loads the classifier code)."""
    if name == "Head":
        from .classifier import Head
        return Head
    raise AttributeError(name)
