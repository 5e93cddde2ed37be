"""Train a variational autoencoder on this board, unsupervised.

On a board (settings from qtrain.json on the board or in the mounted dir):
    mpremote mount out/data run python/train_vae.py
On the Unix port:
    micropython python/train_vae.py --data out/data/train.qtds --model mlp --epochs 1

Prints @progress lines (the host's `qtrain_host run` draws a progress bar
from them), checkpoints to --ckpt every --ckpt_every samples, and resumes from
that checkpoint when started again (--fresh true starts over).
"""
import qtrain
from qtrain import config, defaults

cfg = config.load(config.argv(), defaults.VAE_DEFAULTS, "train_vae")
if cfg.get("help"):
    config.usage("train_vae.py", defaults.VAE_DEFAULTS, globals().get("__doc__"))  # MicroPython keeps no docstrings
else:
    # The settings parser is not needed any more: free its bytecode before the model is built.
    del config
    qtrain.unload("config")
    from qtrain import trainer
    trainer.train_vae(cfg)
