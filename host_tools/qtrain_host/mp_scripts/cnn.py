"""The FQT paper's supervised experiment: qtrain.classifier.build_cnn()
trained from scratch with softmax cross-entropy (batch 1) on a labelled
stream, test accuracy after every epoch.  A MicroPython script (the driver of
`python -m qtrain_host.bench_cnn`), run on the Unix port.

    micropython cnn.py --mode uint8 --epochs 4 --lr 0.001 --lr_decay 0.5 --alpha_e 0

One line per epoch:
    @epoch epoch=1 train_loss=.. train_acc=.. test_acc=.. train_s=.. eval_s=..
"""
import time

from qtrain import classifier, config, trainer
from qtrain.data import Stream
from weight_stats import std_rms

DEFAULTS = {
    "data": "train.qtds",
    "test": "test.qtds",
    "mode": "uint8",
    "lr": 0.001,         # uint8's; bench_cnn.LR has each mode's
    "lr_decay": 0.5,     # lr is multiplied by this after every epoch
    "alpha_norm": 0.15,
    "rounding": "stochastic",
    "per_row": False,
    "alpha_w": 0.001,
    "alpha_e": 0.0,      # 0: fixed error ranges [-1, 1] (the FQT paper's); 0.1 tracks them
    "c1": 8,
    "c2": 16,
    "hidden": 32,
    "epochs": 4,
    "limit": 0,          # train on the first N samples only (0 = all)
    "test_limit": 0,
    "seed": 1,
    "std_rms": False,    # uint8: weights standardized by their RMS, not centred (weight_stats.std_rms)
}


def ticks():
    return time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.time() * 1000)


def main():
    cfg = config.load(config.argv(), DEFAULTS, "cnn")
    opt = classifier.Options(mode=cfg["mode"], lr=cfg["lr"], alpha_norm=cfg["alpha_norm"],
                             rounding=cfg["rounding"], per_row=cfg["per_row"], alpha_w=cfg["alpha_w"],
                             alpha_e=cfg["alpha_e"], seed=cfg["seed"])
    net = classifier.build_cnn(opt, channels=(cfg["c1"], cfg["c2"]), hidden=cfg["hidden"])
    if cfg["std_rms"]:
        std_rms(net.net.layers, cfg["mode"])
    s = Stream(cfg["data"], shuffle=True, seed=cfg["seed"], limit=cfg["limit"] or None)
    if not s.labelled:
        raise ValueError("%s has no labels" % cfg["data"])
    print("@start mode=%s samples=%d epochs=%d lr=%g channels=%d,%d hidden=%d seed=%d" % (
        cfg["mode"], s.count, cfg["epochs"], cfg["lr"], cfg["c1"], cfg["c2"], cfg["hidden"], cfg["seed"]))
    for ep in range(cfg["epochs"]):
        t0 = ticks()
        tot = 0.0
        hit = 0
        for label in s:
            loss, pred = net.train_step(s.image, label)
            tot += loss
            hit += pred == label
        for layer in net.net.layers:
            layer.hp[0] *= cfg["lr_decay"]
        t1 = ticks()
        acc = trainer.evaluate_head(net, cfg["test"], cfg["test_limit"])   # any model with predict(image)
        print("@epoch epoch=%d train_loss=%.4f train_acc=%.4f test_acc=%.4f train_s=%.1f eval_s=%.1f"
              % (ep + 1, tot / s.count, hit / s.count, acc, (t1 - t0) / 1000, (ticks() - t1) / 1000))
    s.close()
    print("@done")


main()
