"""The training scripts' settings and their defaults (qtrain.config merges
board defaults, config files and the command line over them).

A module of its own so that a script can read its settings, then drop the
config parser (qtrain.unload("config")) before building the model.  It also
turns the settings into a model (options, build_vae_from): train_vae.py
builds the VAE with this module alone, not qtrain.trainer, whose bytecode
(head training, evaluation) would sit in the heap next to the model while
it is built, the heap's fullest moment (the ConvVAE at the Pico's real
heap).
"""

# Heap the code that builds a model takes (trainer, layers, losses, models,
# builder: ~29 KB of bytecode loaded through `mpremote mount`, plus the mount's
# read buffers): train_vae.py reserves the largest free block less this for
# the model before importing that code (qtrain.reserve).
BUILD_CODE_BYTES = 32768
# ... and holds at most this much: a big heap (the Unix port's, where the
# package is compiled from source, which needs far more than the bytecode)
# keeps all but BUILD_CODE_BYTES free for that code; a board's heap is smaller.
RESERVE_MOST = 262144

VAE_DEFAULTS = {
    "data": "train.qtds",      # training stream (.qtds)
    "test": "",                # optional test stream for the final ELBO
    "model": "mlp",            # 'mlp' or 'conv' (the paper's ConvVAE)
    "mode": "uint8",           # 'uint8', 'mixed' (uint8 forward, float32 errors) or 'float32'
    "hidden": 256,             # MLP hidden width
    "latent": 10,
    "epochs": 1,
    "limit": 0,                # use only the first N samples (0 = all)
    "lr": 0.0005,              # batch 1: half the paper's 0.001 (batch 100); 0.001 diverges after ~3 epochs
    "lr_decay": 1.0,           # lr of epoch e (from 0) = lr * lr_decay**e.  Constant by default: an
                               # epoch's length depends on the dataset, and halving per epoch starves
                               # short runs (make demo: heads 69/83 % instead of 76/85 %).  On full
                               # MNIST use 0.5: the standardized update moves every weight by ~lr per
                               # sample whatever the loss (docs/BENCHMARKS.md, bench_accuracy)
    "alpha_norm": 0.15,
    "per_row": False,
    "rounding": "stochastic",
    "alpha_e": 0.1,
    "alpha_a": 0.1,
    "alpha_w": 0.001,
    "lmin": 1.0,               # DSGU: lmin = lmax = 1.0 updates everything
    "lmax": 1.0,
    "seed": 1,
    "ckpt": "vae.qtc",
    "ckpt_every": 1000,
    "log_every": 500,
    "fresh": False,            # ignore an existing checkpoint
    "stop_after": 0,           # end this run after N samples (checkpointed; 0 = run to the end)
    "heap_trace": False,       # print `@heap <phase> free=.. largest=..` at each phase (slow; diagnostics)
}

HEAD_DEFAULTS = {
    "vae": "vae.qtc",          # the trained VAE checkpoint (encoder is frozen)
    "data": "train-labelled-100.qtds",
    "test": "test.qtds",
    "hidden": 64,              # with lr 0.005 (was 32, 0.003): the uint8 head then matches the float32 head
    "epochs": 25,              # (same VAE, 3-4 seeds): full MNIST 89.9 / 91.0 % at 100 / 200 per class (was
    "lr": 0.005,               # 88.1 / 89.2 %), demo VAE 72.7 / 86.0 % at 10 / 100 (was 71.5 / 83.7 %)
    "lr_decay": 0.95,          # lr of head epoch e (from 0) = lr * lr_decay**e: a uint8 head at a
                               # constant lr wanders off once it fits its few labels.  Demo VAE, 4 seeds,
                               # 10 / 100 per class: 1.0 -> 74.2 / 82.0 %, 0.95 -> 72.4 / 84.7 %,
                               # 0.9 -> 70.9 / 84.3 % (more decay starves the 10-per-class head)
    "alpha_e": 0.0,            # the uint8 head's error ranges: fixed [-1, 1] (softmax - one-hot is in it).
                               # Tracked (0.1, the VAE's) they shrink to a fitted sample's small errors and
                               # clip the misclassified ones: full MNIST, 3 seeds, 100 / 200 per class
                               # 86.8 / 87.1 % -> 88.1 / 89.2 % (docs/BENCHMARKS.md)
    "seed": 1,
    "ckpt": "head.qtc",
    "log_every": 0,            # 0: one progress line per epoch
    "eval_limit": 0,           # evaluate on the first N test samples (0 = all)
}


def options(cfg):
    """layers.Options from a config dict (VAE_DEFAULTS / HEAD_DEFAULTS keys);
    DSGU is on when cfg['lmin'] < 1.  KeyError if 'lr' or 'seed' is missing,
    ValueError from Options for values out of range."""
    dsgu = None
    if cfg.get("lmin", 1.0) < 1.0:
        dsgu = (cfg["lmin"], max(cfg["lmin"], cfg.get("lmax", 1.0)))
    from .layers import Options
    return Options(lr=cfg["lr"], alpha_norm=cfg.get("alpha_norm", 0.15),
                   per_row=cfg.get("per_row", False), rounding=cfg.get("rounding", "stochastic"),
                   alpha_a=cfg.get("alpha_a", 0.1), alpha_e=cfg.get("alpha_e", 0.1),
                   alpha_w=cfg.get("alpha_w", 0.001), dsgu=dsgu, seed=cfg["seed"],
                   mode=cfg.get("mode", "uint8"), mask_aware=cfg.get("mask_aware", True))


def build_vae_from(cfg):
    """models.build_vae() for a config dict (keys 'model', 'hidden', 'latent'
    and those options() reads).  MemoryError (naming the bytes needed and
    free) if the heap is too small."""
    from . import models
    return models.build_vae(cfg["model"], options(cfg), hidden=cfg["hidden"], latent=cfg["latent"])
