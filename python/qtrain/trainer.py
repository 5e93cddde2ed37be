"""Training entry points (train_head.py, sample.py, and train_vae's for a
REPL or a host script): loading a VAE from its checkpoint, training and
evaluating the classifier head.  Building a VAE from the settings is
qtrain.defaults' (options, build_vae_from; re-exported here); the VAE's
training loop and its helpers (epoch_lr, set_lr) are in
qtrain.vae_loop.

The heap of a board holds the package's bytecode next to the model (a real
board's flash filesystem, or `mpremote mount`), so training loads code in
phases: the model is built first (its builder, qtrain.builder, is dropped
once the model exists), then the per-step code (data reader, checkpoint
writer) is imported.  Peak heap = the model + the code one phase needs.
train_vae.py does not import this module at all: it builds with
qtrain.defaults, drops it and the settings, then runs qtrain.vae_loop.
"""
from . import heap_trace
from .defaults import HEAD_DEFAULTS, VAE_DEFAULTS, build_vae_from, options  # noqa: F401 (re-export)


def load_vae(path, cfg=None):
    """Rebuild a VAE from its checkpoint (kind and sizes are stored in it)."""
    from . import checkpoint
    meta = checkpoint.peek(path)
    c = dict(VAE_DEFAULTS)
    c.update(cfg or {})
    c["model"] = meta["kind"]
    c["latent"] = meta["latent_dim"]
    c["hidden"] = meta.get("hidden", c["hidden"])
    vae = build_vae_from(c)
    st = vae.state_dict()   # everything a resumed run needs, bit-exactly
    st["hidden"] = c["hidden"]
    loaded, _ = checkpoint.load(path, into=st)
    vae.steps = loaded["steps"]
    return vae


def train_vae(cfg, out=print):
    """Build a VAE as cfg (VAE_DEFAULTS keys) says and train it
    (vae_loop.train: @start/@progress/@result lines through `out`, resumes
    from cfg['ckpt'] unless cfg['fresh']).  Returns the VAE.  ValueError if
    the checkpoint holds another model kind; OSError if cfg['data'] cannot be
    opened.  train_vae.py does the same in two phases, to free this module's
    code before the loop's."""
    heap_trace("trainer")
    vae = build_vae_from(cfg)   # first, into the heap's large free blocks
    heap_trace("model")
    from .vae_loop import train
    return train(vae, cfg, out)


def train_head(cfg, out=print):
    """Train the classifier head on cfg['vae']'s frozen encoder (HEAD_DEFAULTS
    keys), evaluate it on cfg['test'] if set, save cfg['ckpt'].  Returns
    (head, test accuracy in [0, 1], or -1.0 without a test set).  ValueError
    if cfg['data'] has no labels."""
    from . import checkpoint, classifier
    from .data import Stream
    from .layers import Options
    from .vae_loop import epoch_lr
    vae = load_vae(cfg["vae"])
    vae.encoder.set_trainable(False)
    opt = Options(lr=cfg["lr"], seed=cfg["seed"], alpha_e=cfg["alpha_e"])
    head = classifier.Head(vae, hidden=cfg["hidden"], opt=opt)
    s = Stream(cfg["data"], shuffle=True, seed=cfg["seed"])
    if not s.labelled:
        raise ValueError("%s has no labels: the head needs a labelled subset (train-labelled-*.qtds)" % cfg["data"])
    out("@start head samples=%d epochs=%d" % (s.count, cfg["epochs"]))
    for ep in range(cfg["epochs"]):
        for layer in head.net.layers:
            layer.hp[0] = epoch_lr(cfg, ep)
        tot = 0.0
        hit = 0
        for label in s:
            loss, pred = head.train_step(s.image, label)
            tot += loss
            hit += pred == label
        out("@progress head epoch=%d/%d loss=%.4f train_acc=%.4f" % (ep + 1, cfg["epochs"], tot / s.count, hit / s.count))
    s.close()
    acc = evaluate_head(head, cfg["test"], cfg["eval_limit"]) if cfg["test"] else -1.0
    checkpoint.save(cfg["ckpt"], head.state_dict(), seq=cfg["epochs"])
    out("@result head labelled=%d test_acc=%.4f" % (s.count, acc))
    return head, acc


def evaluate_head(head, path, limit=0):
    """Accuracy in [0, 1] of `head` on the labelled stream at `path` (first
    `limit` samples; 0 = all)."""
    from .data import Stream
    s = Stream(path, limit=limit or None)
    hit = 0
    for label in s:
        hit += head.predict(s.image) == label
    n = s.count
    s.close()
    return hit / n

def evaluate_vae(vae, path, limit=0):
    """Mean -ELBO (rec + KL, z = mu) over a stream."""
    from .data import Stream
    s = Stream(path, limit=limit or None)
    tot = 0.0
    for _ in s:
        r, k = vae.evaluate(s.image)
        tot += r + k
    n = s.count
    s.close()
    return tot / n
