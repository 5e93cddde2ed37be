"""Training loops behind the scripts (train_vae.py, train_head.py).

Progress goes to stdout as lines the host tools parse (and a person can read):

    @progress vae epoch=1 step=500/6000 rec=171.2 kl=10.9 elbo=182.1 sps=880
    @result vae samples=6000 elbo=150.3 ...

Checkpoints are written atomically every `ckpt_every` samples and at the end
(qtrain.checkpoint); a run started again with the same checkpoint path
resumes at the sample where the last checkpoint was taken.

The heap of a board holds the package's bytecode next to the model (a real
board's flash filesystem, or `mpremote mount`), so train_vae() loads code in
phases: the model is built first (its builder, qtrain.builder, is dropped
once the model exists), then the per-step code (data reader, checkpoint
writer) is imported.  Peak heap = the model + the code one phase needs.
"""
import gc
import time

from . import heap_trace
from .defaults import HEAD_DEFAULTS, VAE_DEFAULTS  # noqa: F401 (re-export)


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
                   mode=cfg.get("mode", "uint8"))


def epoch_lr(cfg, epoch):
    """The learning rate of `epoch` (from 0): lr * lr_decay**epoch."""
    decay = cfg.get("lr_decay", 1.0)
    if not 0 < decay <= 1:
        raise ValueError("lr_decay must be in (0, 1], got %r" % (decay,))
    return cfg["lr"] * decay ** epoch


def set_lr(model, lr):
    """The learning rate of every trainable layer of a VAE (or anything with
    .encoder and .decoder Sequentials)."""
    for layer in model.encoder.layers + model.decoder.layers:
        layer.hp[0] = lr


def vae_state(vae):
    """Everything a resumed run needs to continue bit-exactly: weights,
    quantization records, optimizer and generator states."""
    d = vae.state_dict()
    for i, r in enumerate(vae._records):
        d["rec.%d" % i] = r
    return d


def _peak():
    try:
        return gc.mem_alloc()
    except AttributeError:
        return 0


def _free():
    try:
        return gc.mem_free()
    except AttributeError:
        return 0


def build_vae_from(cfg):
    """models.build_vae() for a config dict (keys 'model', 'hidden', 'latent'
    and those options() reads).  MemoryError (naming the bytes needed and
    free) if the heap is too small."""
    from . import models
    return models.build_vae(cfg["model"], options(cfg), hidden=cfg["hidden"], latent=cfg["latent"])


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
    st = vae_state(vae)
    st["hidden"] = c["hidden"]
    loaded, _ = checkpoint.load(path, into=st)
    vae.steps = loaded["steps"]
    return vae


def _checkpoint_code():
    """qtrain.checkpoint, imported after a collection (its bytecode goes into
    the holes the steps' garbage leaves)."""
    gc.collect()
    from . import checkpoint
    heap_trace("checkpoint code")
    return checkpoint


def train_vae(cfg, out=print):
    """Train a VAE as cfg (VAE_DEFAULTS keys) says, printing @start/@progress/
    @result lines through `out`; resumes from cfg['ckpt'] unless cfg['fresh'].
    Returns the VAE.  ValueError if the checkpoint holds another model kind;
    OSError if cfg['data'] cannot be opened."""
    heap_trace("trainer")
    vae = build_vae_from(cfg)   # first, into the heap's large free blocks
    heap_trace("model")
    from .data import LinkLostError, Stream   # then the per-step code
    heap_trace("data code")
    stream = Stream(cfg["data"], shuffle=True, seed=cfg["seed"], limit=cfg["limit"] or None)
    heap_trace("stream")
    st = vae_state(vae)
    st["hidden"] = cfg["hidden"]
    epoch, pos = 0, 0
    # The checkpoint code is loaded when it is first needed (a resume, the
    # first save), so the steps before that have its heap (5 KB on armv6m).
    checkpoint = None if cfg["fresh"] else _checkpoint_code()
    if checkpoint and checkpoint.latest(cfg["ckpt"]):
        loaded, _ = checkpoint.load(cfg["ckpt"], into=st)
        if loaded["kind"] != cfg["model"]:
            raise ValueError("%s holds a %r model, not %r (use --fresh true or another --ckpt)"
                             % (cfg["ckpt"], loaded["kind"], cfg["model"]))
        checkpoint.commit(cfg["ckpt"])   # resumed from a `.tmp` whose renames a reset cut
        vae.steps = loaded["steps"]
        epoch, pos = loaded["epoch"], loaded["pos"]
        out("resuming from %s at epoch %d, sample %d" % (cfg["ckpt"], epoch + 1, pos))
    stream.seek(pos, epoch)
    n = stream.count
    out("@start vae model=%s samples=%d epochs=%d heap_used=%d" % (cfg["model"], n, cfg["epochs"], _peak()))
    t0 = time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.time() * 1000)
    ticks = time.ticks_ms if hasattr(time, "ticks_ms") else (lambda: int(time.time() * 1000))
    log_every = cfg["log_every"] or n
    sum_r = sum_k = 0.0
    cnt = 0
    done = 0
    last_elbo = 0.0
    lr_epoch = -1
    # heap_free_min: the free heap after a step (or checkpoint write) that
    # started from a collected heap.  Garbage is only freed by a collection
    # (MicroPython collects when an allocation fails), so that is the heap the
    # step needs at its peak; the free heap after any other step would also
    # count the garbage of the steps before it and drift to ~0.
    gc.collect()
    low = _free()
    measure = True
    while stream.epoch < cfg["epochs"]:
        if stream.epoch != lr_epoch:   # also right after resuming mid-epoch
            lr_epoch = stream.epoch
            set_lr(vae, epoch_lr(cfg, lr_epoch))
        try:
            stream.next()
        except LinkLostError:  # `mpremote mount` host gone: keep the progress on the board
            st["epoch"], st["pos"], st["steps"] = stream.epoch, stream.pos, vae.steps
            checkpoint = checkpoint or _checkpoint_code()
            out(checkpoint.save_on_board(cfg["ckpt"], st, seq=vae.steps))
            raise
        rec, kl = vae.train_step(stream.image)
        if measure:
            low = min(low, _free())
            measure = False
        if done == 0:
            heap_trace("first step")
        sum_r += rec
        sum_k += kl
        cnt += 1
        done += 1
        p = stream.pos
        if p % log_every == 0 or p == n:
            dt = (ticks() - t0) / 1000
            gc.collect()   # heap_used after a collection: the same at every line (a step keeps nothing)
            measure = True
            last_elbo = (sum_r + sum_k) / cnt
            out("@progress vae epoch=%d step=%d/%d rec=%.2f kl=%.2f elbo=%.2f sps=%.1f heap_used=%d heap_free_min=%d"
                % (stream.epoch + 1, p, n, sum_r / cnt, sum_k / cnt, last_elbo, done / dt if dt > 0 else 0,
                   _peak(), low))
            sum_r = sum_k = 0.0
            cnt = 0
        if p == n or p % cfg["ckpt_every"] == 0:
            ep, pp = (stream.epoch + 1, 0) if p == n else (stream.epoch, p)
            st["epoch"], st["pos"], st["steps"] = ep, pp, vae.steps
            checkpoint = checkpoint or _checkpoint_code()
            gc.collect()
            checkpoint.save(cfg["ckpt"], st, seq=vae.steps)
            low = min(low, _free())
            heap_trace("checkpoint")
            if p == n:
                stream.seek(0, stream.epoch + 1)
        if cfg["stop_after"] and done >= cfg["stop_after"]:
            if p != n and p % cfg["ckpt_every"]:
                checkpoint = checkpoint or _checkpoint_code()
                st["epoch"], st["pos"], st["steps"] = stream.epoch, p, vae.steps
                checkpoint.save(cfg["ckpt"], st, seq=vae.steps)
            out("@stopped vae after %d samples; run again to resume" % done)
            break
    test_elbo = ""
    if cfg["test"]:
        test_elbo = " test_elbo=%.2f" % evaluate_vae(vae, cfg["test"])
    out("@result vae samples=%d elbo=%.2f%s heap_used=%d heap_free_min=%d"
        % (vae.steps, last_elbo, test_elbo, _peak(), low))
    stream.close()
    return vae


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


def train_head(cfg, out=print):
    """Train the classifier head on cfg['vae']'s frozen encoder (HEAD_DEFAULTS
    keys), evaluate it on cfg['test'] if set, save cfg['ckpt'].  Returns
    (head, test accuracy in [0, 1], or -1.0 without a test set).  ValueError
    if cfg['data'] has no labels."""
    from . import checkpoint, models
    from .data import Stream
    from .layers import Options
    vae = load_vae(cfg["vae"])
    vae.encoder.set_trainable(False)
    opt = Options(lr=cfg["lr"], seed=cfg["seed"], alpha_e=cfg["alpha_e"])
    head = models.Head(vae, hidden=cfg["hidden"], opt=opt)
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
