"""The VAE's output head and latent layer over the _qtrain loss kernels.

BernoulliOutput  sigmoid + binary cross-entropy against the input image
GaussianLatent   z = mu + exp(logvar / 2) * eps and the KL term

Each owns its buffers (sized at construction) and its error's quantization
record.  Modes (Options.mode): 'uint8' errors are uint8 with a tracked range
(alpha_e); 'mixed' takes uint8 inputs and writes float32 errors; 'float32'
is float throughout (the _u8 kernels of _qtrain; the _mixed / _f32 ones of
_qtrain_float, see layers.float_kernels).
"""
import math

import _qtrain as _q

from .layers import F32, MIXED, U8, _builder

if False:  # for type checkers only; compiled away
    from typing import Any


class BernoulliOutput:
    """Decoder logits (uint8) -> BCE loss and its error sigmoid(l) - t."""

    LUT_BYTES = 2048   # 512 floats
    # Set by builder.init_bernoulli (the constructor's body, see layers.Dense).
    n: int
    m: int
    e: "Any"
    eq: "Any"
    stats: "Any"
    lut: "Any"
    _lut: "Any"
    _qf: "Any"

    def __init__(self, n, opt, own_lut=True, e=None):
        """own_lut=False: the BCE table (scratch of one call) comes from a
        Shared the model attaches (builder.attach).  e: a buffer of the
        error's type (uint8 in 'uint8' mode, else array('f')), >= n items,
        to write the error into (a model's error buffer); None: its own."""
        _builder().init_bernoulli(self, n, opt, own_lut, e)

    def loss(self, lg, lq, target):
        """-> (e, eq, bce summed over pixels, in nats)."""
        m = self.m
        if m == U8:
            _q.bce_sigmoid_u8(lg, lq, target, self.e, self.eq, self.stats, self.lut)
        elif m == MIXED:
            self._qf.bce_sigmoid_mixed(lg, lq, target, self.e, self.stats, self.lut)
        else:
            self._qf.bce_sigmoid_f32(lg, target, self.e, self.stats)
        return self.e, self.eq, self.stats[0]

    def mean_image(self, lg, lq, image):
        """image[i] = round(255 * sigmoid(logit_i)): uint8 logits by one table
        of the 256 possible values, then a lookup per pixel."""
        if lq is None:
            exp = math.exp
            for i in range(self.n):
                v = lg[i]
                p = 1.0 / (1.0 + exp(-v)) if v > -60 else 0.0
                image[i] = int(255 * p + 0.5)
            return image
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
        """The error's tracked record ([] when the error is float)."""
        return [] if self.eq is None else [self.eq]


class GaussianLatent:
    """h = [mu (L), logvar (L)] (uint8) -> z (uint8); KL in self.kl."""

    # Set by builder.init_latent (the constructor's body, see layers.Dense).
    L: int
    m: int
    z: "Any"
    zq: "Any"
    eps: "Any"
    zero_eps: "Any"
    rng: "Any"
    dh: "Any"
    dhq: "Any"
    hp: "Any"
    stats: "Any"
    kl: float
    h: "Any"
    hq: "Any"
    _eps: "Any"
    _qf: "Any"

    def __init__(self, L, opt, beta=1.0):
        _builder().init_latent(self, L, opt, beta)

    def forward(self, h, hq, sample=True):
        """h = [mu, logvar] (2L values, record hq) -> (z, zq), the layer's own
        buffer; sample=False uses eps = 0 (z = mu).  Sets self.kl (nats)."""
        self.h, self.hq = h, hq
        rng = self.rng if sample else None
        self._eps = eps = self.eps if sample else self.zero_eps  # zero eps: z = mu
        if self.m == F32:
            self._qf.latent_forward_f32(h, rng, eps, self.z, self.stats)
        else:
            _q.latent_forward_u8(h, hq, rng, eps, self.z, self.zq, self.stats)
        self.kl = self.stats[0]
        return self.z, self.zq

    def backward(self, ez, ezq):
        """Error ez at z -> (dh, dhq): the error at h = [mu, logvar], including
        beta times the KL term's gradient."""
        m = self.m
        if m == U8:
            _q.latent_backward_u8(self.h, self.hq, self._eps, ez, ezq, self.dh, self.dhq, self.hp,
                                  self.stats)
        elif m == MIXED:
            self._qf.latent_backward_mixed(self.h, self.hq, self._eps, ez, self.dh, self.hp, self.stats)
        else:
            self._qf.latent_backward_f32(self.h, self._eps, ez, self.dh, self.hp, self.stats)
        return self.dh, self.dhq

    def mean(self, h, hq, mu):
        """mu (array('f', L)) <- the dequantized mean part of h; returns mu."""
        if hq is None:
            for i in range(self.L):
                mu[i] = h[i]
            return mu
        s, z = hq[0], int(hq[1])
        for i in range(self.L):
            mu[i] = s * (h[i] - z)
        return mu

    def mu_view(self, h, hq):
        """The uint8 mu part of h, as the head's input (no copy)."""
        return memoryview(h)[:self.L], hq

    def set(self, zf):
        """Quantize float latents zf into self.z with the tracked zq."""
        if self.zq is None:
            for i in range(self.L):
                self.z[i] = zf[i]
            return self.z, None
        s, zp = self.zq[0], int(self.zq[1])
        for i in range(self.L):
            q = int(zf[i] / s + 0.5 if zf[i] >= 0 else zf[i] / s - 0.5) + zp
            self.z[i] = 0 if q < 0 else (255 if q > 255 else q)
        return self.z, self.zq

    def qparams(self):
        """The records of z and of the error at h that move once per step."""
        return [r for r in (self.zq, self.dhq) if r is not None]

    def state_dict(self, prefix):
        """{prefix + name: buffer}: z's record and the sampling generator state."""
        if self.zq is None:
            return {prefix + "rng": self.rng}
        return {prefix + "zq": self.zq, prefix + "rng": self.rng}
