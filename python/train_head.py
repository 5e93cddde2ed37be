"""Train the classifier head on a few labelled samples, encoder frozen.

    mpremote mount out/data run python/train_head.py
    micropython python/train_head.py --vae vae.qtc --data out/data/train-labelled-10.qtds --test out/data/test.qtds

Loads the VAE checkpoint (--vae), trains two Dense layers on the encoder's
mu for --epochs epochs, prints the test accuracy (@result line) and saves the
head to --ckpt.
"""
from qtrain import config, trainer

cfg = config.load(config.argv(), trainer.HEAD_DEFAULTS, "train_head")
if cfg.get("help"):
    config.usage("train_head.py", trainer.HEAD_DEFAULTS, globals().get("__doc__"))  # MicroPython keeps no docstrings
else:
    trainer.train_head(cfg)
