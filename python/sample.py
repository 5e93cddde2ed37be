"""Look at what a trained VAE learned: reconstructions, samples from the
latent space, and the test set's latent means.

    micropython python/sample.py --vae vae.qtc --data test.qtds --out out/demo
    mpremote mount out/data run python/sample.py       (a board; settings in qtrain.json)

Writes (under --out, "" = print only):
  recon.pgm    top row: --n test images; bottom row: their reconstructions
  samples.pgm  --n images decoded from z ~ N(0, I) (seeded)
  latents.csv  label, mu_1..mu_L for the first --latents test samples
and prints the first reconstruction and sample as ASCII art.
"""
import array

import _qtrain

import qtrain
from qtrain import config, trainer
from qtrain.data import Stream

DEFAULTS = {"vae": "vae.qtc", "data": "test.qtds", "out": "", "n": 10, "latents": 500, "seed": 7,
            "ascii": True}


def write_pgm(path, rows, width):
    """rows: list of bytearrays, each one image row strip of `width` pixels."""
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (width, len(rows)))
        for r in rows:
            f.write(r)


def strip(images, side=28):
    """Place images side by side: -> list of `side` rows."""
    rows = []
    for y in range(side):
        row = bytearray(side * len(images))
        for i, img in enumerate(images):
            row[i * side:(i + 1) * side] = img[y * side:(y + 1) * side]
        rows.append(row)
    return rows


def main(cfg):
    vae = trainer.load_vae(cfg["vae"])
    n = cfg["n"]
    s = Stream(cfg["data"])
    originals, recons = [], []
    for i in range(min(n, s.count)):
        s.read(i)
        originals.append(bytearray(s.image))
        recons.append(vae.reconstruct(s.image, bytearray(784)))
    rng = array.array("I", [1])
    _qtrain.rng_seed(rng, cfg["seed"])
    z = array.array("f", [0.0] * vae.latent_dim)
    samples = []
    for i in range(n):
        _qtrain.rng_normal(rng, z)
        samples.append(vae.decode(z, bytearray(784)))
    if cfg["ascii"]:
        print("a test image, its reconstruction, a sample:")
        for img in (originals[0], recons[0], samples[0]):
            qtrain.show(img)
            print()
    out = cfg["out"]
    if out:
        write_pgm(out + "/recon.pgm", strip(originals) + strip(recons), 28 * len(originals))
        write_pgm(out + "/samples.pgm", strip(samples), 28 * len(samples))
        mu = array.array("f", [0.0] * vae.latent_dim)
        with open(out + "/latents.csv", "w") as f:
            f.write("label," + ",".join("mu%d" % (j + 1) for j in range(vae.latent_dim)) + "\n")
            for i in range(min(cfg["latents"], s.count)):
                label = s.read(i)
                vae.encode(s.image, mu)
                f.write("%d,%s\n" % (label, ",".join("%.4f" % v for v in mu)))
        print("@result sample wrote %s/recon.pgm samples.pgm latents.csv" % out)
    s.close()


cfg = config.load(config.argv(), DEFAULTS, "sample")
if cfg.get("help"):
    config.usage("sample.py", DEFAULTS, globals().get("__doc__"))  # MicroPython keeps no docstrings
else:
    main(cfg)
