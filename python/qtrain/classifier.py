"""A small CNN classifier trained from scratch with softmax cross-entropy:
the FQT paper's supervised on-device experiment (4 trainable layers, digits).

    from qtrain import classifier
    net = classifier.build_cnn(classifier.Options(mode="uint8", lr=0.001, alpha_e=0.0))
    loss, pred = net.train_step(image, label)   # image: 784 uint8 pixels
    pred = net.predict(image)

Head is the classifier on a trained VAE's frozen encoder (train_head.py).

build_cnn() is Conv(1->c1, 3x3, s2) -> Conv(c1->c2, 3x3, s2) -> Dense(c2*7*7
-> hidden, ReLU) -> Dense(hidden -> classes); the convs have ReLU, stride 2
and padding 1, so a 28x28 image becomes c2 x 7 x 7.  The FQT paper's digit
CNN is not published layer by layer; the defaults (8, 16, 32: ~27 k
weights) keep it with its tensors well inside a 160 KB board heap next to
_qtrain.mpy.  Modes as in qtrain.layers (uint8, mixed, float32); every buffer
is allocated here, a step allocates nothing.
"""
import array

import _qtrain as _q
from micropython import heap_lock, heap_unlock

from . import unload
from .layers import F32, MIXED, U8, Conv2d, Dense, Options, Shared, _builder, dequantize, float_kernels, qparams, zeros  # noqa: F401 (Options re-exported)
from .models import Sequential

IMAGE = (1, 28, 28)


class SoftmaxOutput:
    """Classifier logits (uint8) -> cross-entropy loss, prediction, error."""

    def __init__(self, classes, opt):
        self.m = opt.m
        self._qf = None if self.m == U8 else float_kernels()
        if self.m == U8:
            self.e = bytearray(classes)
            self.eq = qparams(-1.0, 1.0, opt.alpha_e)
        else:
            self.e = zeros("f", classes)
            self.eq = None
        self.stats = array.array("f", [0.0] * 3)
        self.classes = classes

    def error(self, lg, lq, label):
        """Logits lg (record lq) against class `label` (int in [0, classes))
        -> the predicted class; the error goes into this head's own buffer
        (self.e, record self.eq), the cross-entropy in nats into
        self.stats[0].  Allocates nothing.  A bad label: ValueError from the
        kernel."""
        m = self.m
        if m == U8:
            return _q.softmax_ce_u8(lg, lq, label, self.e, self.eq, self.stats)
        if m == MIXED:
            return self._qf.softmax_ce_mixed(lg, lq, label, self.e, self.stats)
        return self._qf.softmax_ce_f32(lg, label, self.e, self.stats)

    def loss(self, lg, lq, label):
        """error() -> (e, eq, cross-entropy in nats, predicted class)."""
        pred = self.error(lg, lq, label)
        return self.e, self.eq, self.stats[0], pred

    def predict(self, lg, lq):
        """The class with the largest logit (ties: the lowest index)."""
        best = 0
        for i in range(1, self.classes):
            if lg[i] > lg[best]:
                best = i
        return best

    def qparams(self):
        """The error's tracked record ([] when the error is float)."""
        return [] if self.eq is None else [self.eq]


class Classifier:
    """A Sequential of trainable layers on a uint8 image, with a softmax
    cross-entropy output."""

    def __init__(self, net, classes, opt, n_pixels, shared=None):
        self.net = net
        self.classes = classes
        self.opt = opt
        self.shared = shared
        self.output = SoftmaxOutput(classes, opt)
        self.xq = qparams(0.0, 1.0)  # pixels: real = q / 255
        # float32 mode: the image as floats q / 255
        self.xf = zeros("f", n_pixels) if opt.m == F32 else None
        self.steps = 0
        self._records = net.qparams() + self.output.qparams()

    def _forward(self, x):
        if self.xf is None:
            return self.net.forward(x, self.xq)
        return self.net.forward(dequantize(x, self.xq, self.xf), None)

    def step(self, x, label):
        """One supervised step on image x (uint8 pixels) -> the predicted
        class; the loss (nats) is then self.output.stats[0].  In uint8 mode
        a step allocates nothing (a float or a tuple returned would be a heap
        object per step on a board) and runs with the heap locked: the
        layers' methods, whose frames are over the 11 words MicroPython keeps
        on the C stack, then get them there too, not from a first-fit search
        of the heap at every call (up to ~5 % of an M0 step, moving with the
        heap layout: docs/KERNELS.md, "Heap-allocated frames")."""
        if self.opt.m != U8:
            return self._step(x, label)
        heap_lock()
        # Called locked, _locked_step's frame (its try needs more than the
        # 11 words) goes on the C stack too; step()'s own fits in them.  A
        # frame from the heap here was a first-fit search at every step:
        # +14 k instructions (qemu-m0) with some layouts before the build.
        pred = self._locked_step(x, label)
        if isinstance(pred, int):
            return pred
        # Locked, a kernel's error has no heap for its message (it comes as a
        # MemoryError): the forward and the loss again, unlocked, raise a bad
        # x or label with it.  Neither changes anything a second run would
        # not (the same outputs, error and range min / max) and the checks
        # come before any update.  Else the error was the step's own.
        self._recheck(x, label)
        raise pred

    def _locked_step(self, x, label):
        """_step() with the heap locked by step(), which it unlocks: -> the
        predicted class, or the exception it raised."""
        try:
            return self._step(x, label)
        except Exception as ex:
            return ex
        finally:
            heap_unlock()

    def _recheck(self, x, label):
        lg, lq = self._forward(x)
        self.output.error(lg, lq, label)

    def _step(self, x, label):
        lg, lq = self._forward(x)
        out = self.output
        pred = out.error(lg, lq, label)
        self.net.backward(out.e, out.eq)
        for r in self._records:      # this step's range observations
            _q.qp_update(r)
        self.steps += 1
        return pred

    def train_step(self, x, label):
        """step() -> (loss, predicted class)."""
        pred = self.step(x, label)
        return self.output.stats[0], pred

    def predict(self, x):
        """The predicted class (int in [0, classes)) of image x (uint8 pixels); no training."""
        lg, lq = self._forward(x)
        return self.output.predict(lg, lq)

    def state_dict(self):
        """{name: buffer} of the weights, records and optimizer state, plus
        'steps' and 'mode': what qtrain.checkpoint.save() writes."""
        d = self.net.state_dict("cnn.")
        d["steps"] = self.steps
        d["mode"] = self.opt.mode
        return d


def _conv_args(channels, shape):
    """(in_shape, out_ch, first) of the two convs (3x3, stride 2, padding 1)."""
    c1, c2 = channels
    return ((shape, c1, True), ((c1, (shape[1] + 1) // 2, (shape[2] + 1) // 2), c2, False))


def cnn_bytes(channels=(8, 16), hidden=32, classes=10, mode="uint8", shape=IMAGE):
    """Bytes of buffers build_cnn() allocates (object headers not counted;
    nor _qtrain_float's code, which build_cnn() loads before it checks)."""
    n = 0
    sh = [0, 0, 0]
    for in_shape, out_ch, first in _conv_args(channels, shape):
        b, s = Conv2d.nbytes(in_shape, out_ch, 3, 2, 1, 0, False, first, mode=mode)
        n += b
        sh = [max(u, v) for u, v in zip(sh, s)]
    flat = channels[1] * ((shape[1] + 3) // 4) * ((shape[2] + 3) // 4)
    n += sh[0] + 4 * sh[1] + sh[2]
    n += Dense.nbytes(flat, hidden, mode=mode) + Dense.nbytes(hidden, classes, mode=mode)
    return n + 4 * shape[0] * shape[1] * shape[2] * (mode == "float32") + 4 * classes + 256


def build_cnn(opt=None, channels=(8, 16), hidden=32, classes=10, shape=IMAGE):
    """The 4-layer CNN (module docstring) in opt.mode; checks the heap first."""
    opt = opt or Options()
    if len(channels) != 2 or min(channels) < 1 or hidden < 1 or classes < 2:
        raise ValueError("build_cnn: channels=(c1, c2) >= 1, hidden >= 1, classes >= 2; got %r, %r, %r"
                         % (channels, hidden, classes))
    if opt.m != U8:
        # The float kernels' module takes its code from the same heap (tens of
        # KB on a board): loaded before the check so that gc.mem_free() sees it.
        float_kernels()
    _builder().check_memory(cnn_bytes(channels, hidden, classes, opt.mode, shape),
                  "a CNN (mode=%s, channels=%r, hidden=%d)" % (opt.mode, tuple(channels), hidden),
                  "channels=(4, 8), hidden=16")
    c1 = Conv2d(shape, channels[0], 3, 2, 1, relu=True, opt=opt, first=True, seed=opt.seed)
    c2 = Conv2d(c1.out_shape, channels[1], 3, 2, 1, relu=True, opt=opt, seed=opt.seed + 1)
    oc, oh, ow = c2.out_shape
    d1 = Dense(oc * oh * ow, hidden, relu=True, opt=opt, seed=opt.seed + 2)
    d2 = Dense(hidden, classes, opt=opt, seed=opt.seed + 3)
    layers = [c1, c2, d1, d2]
    _builder().mask_chain(layers)   # Options.mask_aware: c2, d1, d2 take ReLU outputs
    shared = Shared.for_layers((c1, c2))
    unload("builder")   # the layers' constructors' code (layers._builder)
    return Classifier(Sequential(layers), classes, opt, shape[0] * shape[1] * shape[2], shared)


class Head:
    """Classifier on the frozen encoder's mu: Dense(L->hidden, ReLU) -> Dense(hidden->classes).
    It runs in the VAE's mode (its input is the encoder's output tensor)."""

    def __init__(self, vae, hidden=32, classes=10, opt=None):
        opt = (opt or Options()).replace(mode=vae.opt.mode)
        self.vae = vae
        self.classes = classes
        L = vae.latent_dim
        layers = [Dense(L, hidden, relu=True, opt=opt, first=True, seed=opt.seed + 10),
                  Dense(hidden, classes, opt=opt, seed=opt.seed + 11)]
        _builder().mask_chain(layers)   # Options.mask_aware: the last Dense takes a ReLU output
        self.net = Sequential(layers)
        self.output = SoftmaxOutput(classes, opt)
        self._records = self.net.qparams() + self.output.qparams()
        unload("builder")   # the layers' constructors' code (layers._builder)

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
