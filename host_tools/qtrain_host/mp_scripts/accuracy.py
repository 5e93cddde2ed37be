"""The VAE paper's accuracy experiment, run on the MicroPython Unix port with
the same qtrain package and _qtrain kernels as on a board (the driver of
`python -m qtrain_host.bench_accuracy`; a MicroPython script, not a host
module).

    micropython accuracy.py --model conv --mode uint8 --epochs 10 --per_class 10,100,200

Per VAE epoch: one pass over --data (shuffled, batch 1), the mean -ELBO of
that pass (train, z sampled) and over --test (z = mu); then for each labelled
subset train-labelled-K.qtds a classifier head on the frozen encoder's mu,
fine-tuned --head_epochs epochs (one head per K, kept across VAE epochs like
the paper's "fine-tuned after each VAE epoch"), and its test accuracy.  The
encoder's mu of the labelled and test samples is computed once per VAE
epoch (the encoder is frozen while a head trains, so this is the same input
the head would see).  One line per epoch:

    @epoch epoch=1 train_elbo=.. test_elbo=.. acc10_float32=.. acc10_uint8=.. ... upd=.. vae_s=.. eval_s=..

upd = mean fraction of output structures (rows/filters) updated per layer
and step (1.0 without DSGU); upd_w = the same weighted by weights.  A uint8
VAE also prints, per epoch, the fraction of each trainable layer's weights
clipped at the edges of its range (0 or 255), encoder then decoder layers:

    @clamped epoch=1 layers=0.001,0.000,...
"""
import array
import time

from qtrain import config, models, trainer, vae_loop
from qtrain.data import Permutation, Stream
from qtrain.layers import Options
from weight_stats import clamped, std_rms

DEFAULTS = dict(trainer.VAE_DEFAULTS)
DEFAULTS.update({
    "std_rms": False,          # uint8: weights standardized by their RMS, not centred (weight_stats.std_rms)
    "test": "test.qtds",
    "test_limit": 0,           # evaluate on the first N test samples (0 = all)
    "per_class": "10,100,200",  # labelled subsets train-labelled-K.qtds
    "head_hidden": 32,
    "head_epochs": 25,         # head epochs after each VAE epoch
    "head_lr": 0.003,
    "head_lr_decay": 1.0,      # the head's lr is multiplied by this after each of its epochs
                               # (back to head_lr after every VAE epoch)
    "head_decay_samples": 0,   # > 0: ... and also per this many training samples, whichever decays
                               # more (set per head epoch: lr * decay ** max(epochs, samples / this)):
                               # a head on many labels takes many more steps per epoch, and the
                               # standardized update's noise is per step
    "head_decay_modes": "float32,uint8,mixed",  # the head modes head_decay_samples applies to ("": none)
                               # (the others decay per head epoch only)
    "head_modes": "float32,uint8",  # heads trained on each epoch's mu: float32 (the paper's float
                               # head) and/or uint8 / mixed (a uint8 VAE only: on its uint8 mu)
    "head_opts": "",           # more layers.Options of the heads, "name=value,...", e.g.
                               # "alpha_e=0.01,rounding=nearest" (numbers as floats)
    "head_alpha_e": trainer.HEAD_DEFAULTS["alpha_e"],  # the uint8 head's error ranges (0: fixed [-1, 1])
    "head_fresh": False,       # a new head after each VAE epoch instead of fine-tuning the last one
    "save_vae": "",            # write the VAE after every epoch to <save_vae>-e<epoch>.qtc
    "load_vae": "",            # start from this VAE checkpoint (--epochs 0: train and test heads only)
})


def ticks():
    return time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.time() * 1000)


class FeatureSource:
    """What models.Head reads from a VAE (latent_dim, opt.mode), for a head
    whose mode differs from the VAE's."""

    def __init__(self, latent_dim, opt):
        self.latent_dim = latent_dim
        self.opt = opt


class CachedHead(models.Head):
    """A models.Head whose input for sample i is row i of a feature table
    (the frozen encoder's mu, computed once per VAE epoch)."""

    def use(self, feats, fq):
        self.feats = memoryview(feats)
        self.fq = fq

    def _features(self, i):
        L = self.vae.latent_dim
        return self.feats[i * L:(i + 1) * L], self.fq


def encode_all(vae, path, want_u8, limit=0):
    """Over a stream: {mode: (mu table, its quantization record)}, labels,
    mean -ELBO (z = mu).  'float32': mu as floats (dequantized from a uint8
    encoder); 'uint8' (if want_u8): mu as the uint8 encoder stores it."""
    s = Stream(path, limit=limit or None)
    L = vae.latent_dim
    n = s.count
    ff = array.array("f", bytes(4 * n * L))
    fu = bytearray(n * L) if want_u8 else None
    labels = bytearray(n)
    tot = 0.0
    mu = array.array("f", bytes(4 * L))
    i = 0
    for lab in s:
        r, k = vae.evaluate(s.image)   # z = mu; the encoder output stays in vae.latent.h
        tot += r + k
        h, hq = vae.latent.h, vae.latent.hq
        vae.latent.mean(h, hq, mu)
        ff[i * L:(i + 1) * L] = mu
        if fu is not None:
            fu[i * L:(i + 1) * L] = h[:L]
        labels[i] = lab
        i += 1
    s.close()
    feats = {"float32": (ff, None)}
    if fu is not None:   # a copy of the record: the VAE's moves when it trains again
        feats["uint8"] = feats["mixed"] = (fu, array.array("f", vae.latent.hq))
    return feats, labels, tot / n


def train_head(head, feats, fq, labels, epochs, seed, first_epoch, lr, decay, decay_samples=0):
    head.use(feats, fq)
    n = len(labels)
    perm = Permutation(n, seed, 0)
    for ep in range(epochs):
        for layer in head.net.layers:
            layer.hp[0] = lr * decay ** (max(ep, ep * n / decay_samples) if decay_samples > 0 else ep)
        perm.set(seed, first_epoch + ep)
        for p in range(n):
            i = perm.at(p)
            head.train_step(i, labels[i])


def accuracy(head, feats, fq, labels):
    head.use(feats, fq)
    hit = 0
    for i in range(len(labels)):
        hit += head.predict(i) == labels[i]
    return hit / len(labels)


def structures(vae):
    """(layer, number of output structures, weights per structure) of the VAE's trainable layers."""
    out = []
    for layer in vae.encoder.layers + vae.decoder.layers:
        if layer.kind == "dense":
            n = layer.n_out
        else:   # a ConvTranspose2d over input-channel slices (qtrain.convt_slices) selects in_ch of them
            n = layer.in_shape[0] if getattr(layer, "slices", False) else layer.geom[3]
        nw = layer.n_in if layer.kind == "dense" else layer.n_w // n
        out.append((layer, n, nw))
    return out


def head_options(text):
    """--head_opts "name=value,..." -> keyword arguments of layers.Options."""
    kw = {}
    for item in [t for t in str(text).split(",") if t]:
        name, _, value = item.partition("=")
        if name in ("rounding", "mode"):
            kw[name] = value
        elif name == "per_row":
            kw[name] = value in ("1", "true", "True")
        else:
            try:
                kw[name] = float(value)
            except ValueError:
                raise ValueError("--head_opts: %r is not name=number" % item)
    return kw


def save_vae(vae, cfg, path, epochs):
    """The VAE as trainer.train_vae checkpoints it (trainer.load_vae reads it)."""
    from qtrain import checkpoint
    st = vae.state_dict()
    st["hidden"] = cfg["hidden"]
    st["epoch"], st["pos"], st["steps"] = epochs, 0, vae.steps
    checkpoint.save(path, st, seq=vae.steps)


def epoch_line(epoch, train_elbo, vae, cfg, heads, head_modes, hopts, per_class, frac, frac_w, t0, t1):
    """Test -ELBO and a head per (mode, K) on the VAE as it is; prints the @epoch line."""
    want_u8 = head_modes != ["float32"]
    decay_modes = str(cfg["head_decay_modes"]).split(",")
    test_f, test_l, test_elbo = encode_all(vae, cfg["test"], want_u8, cfg["test_limit"])
    accs = []
    for K in per_class:
        feats, lab, _ = encode_all(vae, "train-labelled-%d.qtds" % K, want_u8)
        for m in head_modes:
            key = (m, K)
            if key not in heads or cfg["head_fresh"]:
                heads[key] = CachedHead(FeatureSource(vae.latent_dim, hopts[m]),
                                        hidden=cfg["head_hidden"], opt=hopts[m])
            train_head(heads[key], feats[m][0], feats[m][1], lab, cfg["head_epochs"], cfg["seed"],
                       max(0, epoch - 1) * cfg["head_epochs"], cfg["head_lr"], cfg["head_lr_decay"],
                       cfg["head_decay_samples"] if m in decay_modes else 0)
            accs.append("acc%d_%s=%.4f" % (K, m, accuracy(heads[key], test_f[m][0], test_f[m][1], test_l)))
        feats = lab = None
    test_f = test_l = None
    t2 = ticks()
    print("@epoch epoch=%d train_elbo=%.3f test_elbo=%.3f %s upd=%.4f upd_w=%.4f vae_s=%.1f eval_s=%.1f"
          % (epoch, train_elbo, test_elbo, " ".join(accs), frac, frac_w, (t1 - t0) / 1000, (t2 - t1) / 1000))


def main():
    cfg = config.load(config.argv(), DEFAULTS, "accuracy")
    if cfg.get("help"):   # the options, not a training run
        config.usage("accuracy.py", DEFAULTS, globals().get("__doc__"))
        return
    opt = trainer.options(cfg)
    vae = trainer.load_vae(cfg["load_vae"], cfg) if cfg["load_vae"] else trainer.build_vae_from(cfg)
    if cfg["std_rms"]:
        std_rms(vae.encoder.layers + vae.decoder.layers, cfg["mode"])
    per_class = [int(k) for k in str(cfg["per_class"]).split(",") if k]
    head_modes = [m for m in str(cfg["head_modes"]).split(",")
                  if m == "float32" or (m in ("uint8", "mixed") and cfg["mode"] == "uint8")]
    if not head_modes:
        raise ValueError("--head_modes: none of %r applies to a %s VAE" % (cfg["head_modes"], cfg["mode"]))
    if not cfg["head_decay_samples"] >= 0:
        raise ValueError("--head_decay_samples must be >= 0 (0: decay per head epoch only), got %r"
                         % (cfg["head_decay_samples"],))
    bad = [m for m in str(cfg["head_decay_modes"]).split(",") if m and m not in ("float32", "uint8", "mixed")]
    if bad:
        raise ValueError("--head_decay_modes: %r is not a head mode (float32, uint8, mixed)" % bad[0])
    hkw = {"alpha_e": cfg["head_alpha_e"]}
    hkw.update(head_options(cfg["head_opts"]))
    hopts = {m: Options(lr=cfg["head_lr"], seed=cfg["seed"], mode=m, **hkw) for m in head_modes}
    heads = {}
    stream = Stream(cfg["data"], shuffle=True, seed=cfg["seed"], limit=cfg["limit"] or None)
    layers = structures(vae)
    w_total = sum(n * nw for _, n, nw in layers)
    test = Stream(cfg["test"], limit=cfg["test_limit"] or None)
    test_n = test.count
    test.close()
    print("@start model=%s mode=%s head_modes=%s samples=%d test_samples=%d epochs=%d lr=%g dsgu=%s seed=%d" % (
        vae.kind, cfg["mode"], ",".join(head_modes), stream.count, test_n, cfg["epochs"], cfg["lr"],
        "%g,%g" % opt.dsgu if opt.dsgu else "off", cfg["seed"]))
    for ep in range(cfg["epochs"]):
        vae_loop.set_lr(vae, vae_loop.epoch_lr(cfg, ep))   # the trainer's schedule
        t0 = ticks()
        tot = 0.0
        upd = 0.0
        upd_w = 0
        n = 0
        for _ in stream:
            r, k = vae.train_step(stream.image)
            tot += r + k
            n += 1
            if opt.dsgu:
                for layer, ns, nw in layers:
                    upd += layer.k / ns
                    upd_w += layer.k * nw
        if cfg["save_vae"]:
            save_vae(vae, cfg, "%s-e%d.qtc" % (cfg["save_vae"], ep + 1), ep + 1)
        t1 = ticks()
        if cfg["mode"] == "uint8":
            print("@clamped epoch=%d layers=%s" % (ep + 1, ",".join("%.3f" % clamped(lay) for lay, _, _ in layers)))
        frac = upd / (n * len(layers)) if opt.dsgu else 1.0
        frac_w = upd_w / (n * w_total) if opt.dsgu else 1.0
        epoch_line(ep + 1, tot / n, vae, cfg, heads, head_modes, hopts, per_class, frac, frac_w, t0, t1)
    if not cfg["epochs"]:   # a loaded VAE: its heads only
        epoch_line(0, 0.0, vae, cfg, heads, head_modes, hopts, per_class, 1.0, 1.0, ticks(), ticks())
    stream.close()
    print("@done")


main()
