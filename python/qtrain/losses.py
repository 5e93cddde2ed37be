"""Output heads and the VAE latent layer over the _qtrain loss kernels.

BernoulliOutput  sigmoid + binary cross-entropy against the input image
GaussianLatent   z = mu + exp(logvar / 2) * eps and the KL term
SoftmaxOutput    softmax + cross-entropy for the classifier head

Each owns its buffers (sized at construction) and its error's quantization
record.  In uint8 mode errors are uint8 with a tracked range (alpha_e).
"""
import array
import math

import _qtrain as _q

from .layers import qparams


class BernoulliOutput:
    """Decoder logits (uint8) -> BCE loss and its error sigmoid(l) - t."""

    def __init__(self, n, opt):
        self.n = n
        self.e = bytearray(n)
        # The error sigmoid(l) - t lies in [-1, 1]; tracked when alpha_e > 0.
        self.eq = qparams(-1.0, 1.0, opt.alpha_e)
        self.stats = array.array("f", [0.0] * 3)
        self._lut = bytearray(256)

    def loss(self, lg, lq, target):
        """-> (e, eq, bce summed over pixels, in nats)."""
        _q.bce_sigmoid_u8(lg, lq, target, self.e, self.eq, self.stats)
        return self.e, self.eq, self.stats[0]

    def mean_image(self, lg, lq, image):
        """image[i] = round(255 * sigmoid(logit_i)): one table of the 256
        possible logits, then a lookup per pixel."""
        s, z = lq[0], int(lq[1])
        lut = self._lut
        exp = math.exp
        for q in range(256):
            v = s * (q - z)
            p = 1.0 / (1.0 + exp(-v)) if v > -60 else 0.0
            lut[q] = int(255 * p + 0.5)
        for i in range(self.n):
            image[i] = lut[lg[i]]
        return image

    def qparams(self):
        return [self.eq]


class GaussianLatent:
    """h = [mu (L), logvar (L)] (uint8) -> z (uint8); KL in self.kl."""

    def __init__(self, L, opt, beta=1.0):
        self.L = L
        self.z = bytearray(L)
        self.zq = qparams(-3.0, 3.0, opt.alpha_a)
        self.eps = array.array("f", [0.0] * L)
        self.zero_eps = array.array("f", [0.0] * L)
        self.rng = array.array("I", [1])
        _q.rng_seed(self.rng, opt.seed)
        self.dh = bytearray(2 * L)
        self.dhq = qparams(-opt.error_range, opt.error_range, opt.alpha_e)
        self.hp = array.array("f", [beta])
        self.stats = array.array("f", [0.0] * 3)
        self.kl = 0.0
        self.h = self.hq = None
        self._eps = self.eps

    def forward(self, h, hq, sample=True):
        self.h, self.hq = h, hq
        if sample:
            self._eps = self.eps
            _q.latent_forward_u8(h, hq, self.rng, self.eps, self.z, self.zq, self.stats)
        else:  # z = mu
            self._eps = self.zero_eps
            _q.latent_forward_u8(h, hq, None, self.zero_eps, self.z, self.zq, self.stats)
        self.kl = self.stats[0]
        return self.z, self.zq

    def backward(self, ez, ezq):
        _q.latent_backward_u8(self.h, self.hq, self._eps, ez, ezq, self.dh, self.dhq, self.hp, self.stats)
        return self.dh, self.dhq

    def mean(self, h, hq, mu):
        s, z = hq[0], int(hq[1])
        for i in range(self.L):
            mu[i] = s * (h[i] - z)
        return mu

    def mu_view(self, h, hq):
        """The uint8 mu part of h, as the head's input (no copy)."""
        return memoryview(h)[:self.L], hq

    def set(self, zf):
        """Quantize float latents zf into self.z with the tracked zq."""
        s, zp = self.zq[0], int(self.zq[1])
        for i in range(self.L):
            q = int(zf[i] / s + 0.5 if zf[i] >= 0 else zf[i] / s - 0.5) + zp
            self.z[i] = 0 if q < 0 else (255 if q > 255 else q)
        return self.z, self.zq

    def qparams(self):
        return [self.zq, self.dhq]

    def state_dict(self, prefix):
        return {prefix + "zq": self.zq, prefix + "rng": self.rng}


class SoftmaxOutput:
    """Classifier logits (uint8) -> cross-entropy loss, prediction, error."""

    def __init__(self, classes, opt):
        self.e = bytearray(classes)
        self.eq = qparams(-1.0, 1.0, opt.alpha_e)
        self.stats = array.array("f", [0.0] * 3)
        self.classes = classes

    def loss(self, lg, lq, label):
        pred = _q.softmax_ce_u8(lg, lq, label, self.e, self.eq, self.stats)
        return self.e, self.eq, self.stats[0], pred

    def predict(self, lg, lq):
        best = 0
        for i in range(1, self.classes):
            if lg[i] > lg[best]:
                best = i
        return best

    def qparams(self):
        return [self.eq]
