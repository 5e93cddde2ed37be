"""Trace a ConvVAE training run on the MicroPython Unix port: what the
accuracy bench's -ELBO per epoch hides when a run diverges or drifts (the
notes on float32 and DSGU in docs/BENCHMARKS.md come from it).

    cd out/bench-accuracy/data   # stream files made by bench_accuracy
    micropython vae_trace.py --mode float32 --lr 0.0005 --lr_decay 1.0 --samples 60000 --every 2000
    micropython vae_trace.py --mode uint8 --lmin 0.1 --samples 200000 --every 5000

(run it like the bench does: MICROPYPATH = the x64 natmods and python/.)
One line per --every samples: mean reconstruction and KL terms, the largest
|mu|/|logvar| seen (float32: the values; uint8: the tracked range), each
trainable layer's weight range (largest |w|), the fraction of its uint8
weights clipped at the range's edges (0 or 255) and its mean number of
output structures updated per step (DSGU's k; all of them without DSGU).
A uint8 run also prints, per layer (encoder then decoder layers), the weight
record as it is at the line (`wq=` scale/zero point/tracked range), the mean
update step in quanta that the lr asks for (`step=` lr / s_w: the
standardized update moves a weight by about this many uint8 steps per
sample) and the fraction of the error values each layer hands back that sit
at 0 or 255 (`esat=`, sampled every --esat_every steps; '-' for a first
layer, which hands nothing back).  And per layer the re-scales of its
weights per 1000 samples (`@rescale per1000=`: steps whose weight update
moved the stored scale, i.e. re-mapped every stored weight; seen from the
scale in the record, so the kernels count nothing), the mean relative scale
change of a re-scale (`dscale=`, signed: > 0 the window grew) and the
largest one (`dmax=`).
"""
from qtrain import config, trainer, vae_loop
from qtrain.data import Stream
from weight_stats import clamped, std_rms

DEFAULTS = dict(trainer.VAE_DEFAULTS)
DEFAULTS.update({"model": "conv", "samples": 60000, "every": 2000, "esat_every": 50,
                 "std_rms": False,   # uint8: weights standardized by their RMS (weight_stats.std_rms)
                 # DSGU per layer: "l1/l2/..." sets lmin = lmax = li for the i-th trainable
                 # layer (encoder then decoder; 1 = all its structures), with --lmin < 1 on
                 "layer_l": ""})


def largest(buf, qp):
    """max |v| of a float tensor, or of a uint8 tensor's tracked range."""
    if qp is not None:
        return max(abs(qp[2]), abs(qp[3]))
    m = 0.0
    for v in buf:
        if abs(v) > m:
            m = abs(v)
    return m


def wq_text(layer):
    """scale/zero/[min,max] of a uint8 layer's weights ('-' for float)."""
    q = layer.wq
    if q is None:
        return "-"
    return "%.3g/%d/[%.3g,%.3g]" % (q[0], int(q[1]), q[2], q[3])


def saturated(buf):
    """Fraction of a uint8 tensor's values at 0 or 255."""
    return sum(1 for v in buf if v == 0 or v == 255) / len(buf)


def main():
    cfg = config.load(config.argv(), DEFAULTS, "vae_trace")
    vae = trainer.build_vae_from(cfg)
    layers = vae.encoder.layers + vae.decoder.layers
    if cfg["std_rms"]:
        std_rms(vae.encoder.layers + vae.decoder.layers, cfg["mode"])
    if cfg["layer_l"]:
        for layer, v in zip([lay for lay in layers if lay.trainable], str(cfg["layer_l"]).split("/")):
            layer.dsgu_hp[0] = layer.dsgu_hp[1] = float(v)
    stream = Stream(cfg["data"], shuffle=True, seed=cfg["seed"], limit=cfg["limit"] or None)
    every = cfg["every"]
    n = 0
    rec = kl = h_max = 0.0
    ks = [0] * len(layers)
    u8 = cfg["mode"] == "uint8"
    esat = [0.0] * len(layers)
    esat_n = 0
    scale = [layer.wq[0] if layer.wq is not None else 0.0 for layer in layers]
    resc = [0] * len(layers)
    dsum = [0.0] * len(layers)
    dmax = [0.0] * len(layers)
    while n < cfg["samples"]:
        if stream.pos >= stream.count:
            stream.seek(0, stream.epoch + 1)
        vae_loop.set_lr(vae, vae_loop.epoch_lr(cfg, stream.epoch))
        for _ in stream:
            r, k = vae.train_step(stream.image)
            rec += r
            kl += k
            n += 1
            h_max = max(h_max, largest(vae.latent.h, vae.latent.hq))
            for i, layer in enumerate(layers):
                ks[i] += layer.k
                if u8 and layer.wq[0] != scale[i]:
                    d = layer.wq[0] / scale[i] - 1.0
                    resc[i] += 1
                    dsum[i] += d
                    dmax[i] = max(dmax[i], abs(d))
                    scale[i] = layer.wq[0]
            if u8 and n % cfg["esat_every"] == 0:
                esat_n += 1
                for i, layer in enumerate(layers):
                    if layer.epq is not None:
                        esat[i] += saturated(layer.ep)
            if n % every == 0:
                print("@trace n=%d epoch=%d rec=%.2f kl=%.2f h_max=%.3g w_max=%s clamped=%s k=%s" % (
                    n, stream.epoch + 1, rec / every, kl / every, h_max,
                    ",".join("%.3g" % largest(layer.w, layer.wq) for layer in layers),
                    ",".join("%.3f" % clamped(layer) for layer in layers),
                    ",".join("%.2f" % (v / every) for v in ks)))
                if u8:
                    lr = layers[0].hp[0]
                    print("@wq n=%d wq=%s step=%s esat=%s" % (
                        n, ",".join(wq_text(layer) for layer in layers),
                        ",".join("%.3g" % (lr / layer.wq[0]) for layer in layers),
                        ",".join("%.4f" % (esat[i] / max(1, esat_n)) if layer.epq is not None else "-"
                                 for i, layer in enumerate(layers))))
                    print("@rescale n=%d per1000=%s dscale=%s dmax=%s" % (
                        n, ",".join("%.1f" % (1000.0 * v / every) for v in resc),
                        ",".join("%+.4f" % (dsum[i] / max(1, v)) for i, v in enumerate(resc)),
                        ",".join("%.4f" % v for v in dmax)))
                    resc = [0] * len(layers)
                    dsum = [0.0] * len(layers)
                    dmax = [0.0] * len(layers)
                rec = kl = h_max = 0.0
                ks = [0] * len(layers)
                esat = [0.0] * len(layers)
                esat_n = 0
            if n >= cfg["samples"]:
                break
    stream.close()


main()
