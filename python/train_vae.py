"""Train a variational autoencoder on this board, unsupervised.

On a board (settings from qtrain.json on the board or in the mounted dir):
    mpremote mount out/data run python/train_vae.py
On the Unix port:
    micropython python/train_vae.py --data out/data/train.qtds --model mlp --epochs 1

Prints @progress lines (the host's `qtrain_host run` draws a progress bar
from them), checkpoints to --ckpt every --ckpt_every samples, and resumes from
that checkpoint when started again (--fresh true starts over).
"""
import _qtrain  # noqa: F401 (first: its code needs the heap's largest block)
import qtrain
from qtrain import config, defaults

cfg = config.load(config.argv(), defaults.VAE_DEFAULTS, "train_vae")
if cfg.get("help"):
    config.usage("train_vae.py", defaults.VAE_DEFAULTS, globals().get("__doc__"))  # MicroPython keeps no docstrings
else:
    # The settings parser is not needed any more: free its bytecode before the model is built.
    del config
    qtrain.unload("config")
    if cfg["heap_trace"]:
        qtrain.TRACE.append(print)
    qtrain.heap_trace("settings")
    # Keep the big free block for the model while the code that builds it is
    # loaded (that leaves garbage behind); builder.build_vae releases it.
    # defaults builds it (not qtrain.trainer: its head and evaluation code
    # would take heap while the model is built, the run's fullest moment).
    qtrain.reserve(defaults.BUILD_CODE_BYTES, defaults.RESERVE_MOST)
    qtrain.heap_trace("reserve")
    vae = defaults.build_vae_from(cfg)
    qtrain.heap_trace("model")
    # The loop (qtrain.vae_loop) needs none of the code that built the
    # model: its heap goes to the data reader and the checkpoint writer (the
    # ConvVAE at the Pico's real heap needs it).
    del defaults
    qtrain.unload("defaults")
    from qtrain import vae_loop
    vae_loop.train(vae, cfg)
