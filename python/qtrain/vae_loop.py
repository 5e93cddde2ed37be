"""The VAE training loop (train_vae.py's steps, checkpoints and progress
lines) and the small helpers it shares with qtrain.trainer.

Progress goes to stdout as lines the host tools parse (and a person can read):

    @progress vae epoch=1 step=500/6000 rec=171.2 kl=10.9 elbo=182.1 sps=880
    @result vae samples=6000 elbo=150.3 ...

Checkpoints are written atomically every `ckpt_every` samples and at the end
(qtrain.checkpoint); a run started again with the same checkpoint path
resumes at the sample where the last checkpoint was taken.

A module of its own, apart from qtrain.trainer, because a board's heap holds
the bytecode of every imported module next to the model: train_vae.py builds
the model with trainer (and its settings, builder), drops that code
(qtrain.unload), and only then imports this loop and the per-step code it
loads (data reader, checkpoint writer).  On the Pico's real heap the
ConvVAE's data reader fits only that way.
"""
import gc
import time

from . import heap_trace, release, reserve, unload

# Bytes held for the data stream's buffers (a 789-byte record, the 48-byte
# header, its objects) while the data reader's code is loaded: that code
# fills the small holes the model and the unloaded build code leave, and
# without the hold no 789-byte block was left at the Pico's real heap.
STREAM_BYTES = 2048


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


def _checkpoint_code():
    """qtrain.checkpoint, imported after a collection (its bytecode goes into
    the holes the steps' garbage leaves)."""
    gc.collect()
    from . import checkpoint
    heap_trace("checkpoint code")
    return checkpoint


def _save(vae, cfg, st, epoch, pos):
    """Checkpoint the training state (the scalars `st`, the model's
    buffers) into cfg['ckpt'], to continue at sample `pos` of `epoch`."""
    st["epoch"], st["pos"], st["steps"] = epoch, pos, vae.steps
    _checkpoint_code().save(cfg["ckpt"], st, seq=vae.steps, items=vae.state_items)


def train(vae, cfg, out=print):
    """Train the built `vae` as cfg (VAE_DEFAULTS keys) says, printing
    @start/@progress/@result lines through `out`; resumes from cfg['ckpt']
    unless cfg['fresh'].  Returns the VAE.  ValueError if the checkpoint holds
    another model kind; OSError if cfg['data'] cannot be opened."""
    # The checkpoint's scalars; its buffers (VAE.state_items) are named only
    # while a save writes them: a dict of the ConvVAE's 66 entries took
    # ~3 KB of the Pico's real heap for the whole run.
    st = vae.state_scalars()
    st["hidden"] = cfg["hidden"]
    st["epoch"] = st["pos"] = 0   # set before every save
    heap_trace("state")
    reserve(0, STREAM_BYTES)
    from .data import LinkLostError, Stream   # then the per-step code
    release()
    heap_trace("data code")
    stream = Stream(cfg["data"], shuffle=True, seed=cfg["seed"], limit=cfg["limit"] or None)
    unload("data_open")   # the header checks: only while opening
    heap_trace("stream")
    epoch, pos = 0, 0
    if not cfg["fresh"]:
        from .vae_resume import resume   # loaded only to resume (its code is not kept)
        epoch, pos = resume(vae, cfg, st, out)
        unload("vae_resume")
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
    # heap_free_min: the lowest of (1) the free heap after a step that
    # started from a collected heap and (2) the free heap after a checkpoint
    # write, collected, i.e. with the checkpoint code loaded.  Garbage is
    # only freed by a collection (MicroPython collects when an allocation
    # fails), so (1) is the heap a step needs at its peak; the free heap
    # after any other step would also count the garbage of the steps before
    # it and drift to ~0.  (2) is read after a collection because the save's
    # garbage left uncollected varies between runs of the same code (1.1 to
    # 4.3 KB on the Pico-heap ConvVAE), which is noise, not a smaller heap.
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
            out(_checkpoint_code().save_on_board(cfg["ckpt"], st, seq=vae.steps, items=vae.state_items))
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
            _save(vae, cfg, st, *((stream.epoch + 1, 0) if p == n else (stream.epoch, p)))
            gc.collect()   # see heap_free_min above: its garbage is not a figure
            low = min(low, _free())
            measure = True   # the next step starts from this collected heap
            heap_trace("checkpoint")
            if p == n:
                stream.seek(0, stream.epoch + 1)
        if cfg["stop_after"] and done >= cfg["stop_after"]:
            if p != n and p % cfg["ckpt_every"]:
                _save(vae, cfg, st, stream.epoch, p)
            out("@stopped vae after %d samples; run again to resume" % done)
            break
    test_elbo = ""
    if cfg["test"]:
        from .trainer import evaluate_vae   # only now: the steps do not keep its code
        test_elbo = " test_elbo=%.2f" % evaluate_vae(vae, cfg["test"])
    out("@result vae samples=%d elbo=%.2f%s heap_used=%d heap_free_min=%d"
        % (vae.steps, last_elbo, test_elbo, _peak(), low))
    stream.close()
    # The run is over: the checkpoint code's heap goes back to what follows
    # (`mpremote mount ... run` unmounts after the script, in ~512 B).
    unload("checkpoint")
    return vae

