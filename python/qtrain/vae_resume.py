"""Resuming the VAE training loop from its checkpoint (vae_loop.train calls
resume() when a run is not --fresh).  A module of its own, loaded only to
resume and dropped after it: a board's heap holds the bytecode of every
imported module next to the model, and a fresh run of the ConvVAE at the
Pico's real heap needs that room for its steps and saves.
"""
import gc


def resume(vae, cfg, st, out):
    """Load the newest checkpoint of cfg['ckpt'] (if any) into `vae`'s
    buffers and its other entries into `st` (the scalars the loop saves with
    them; an entry this model does not make is kept there and saved again);
    -> (epoch, pos) to continue at, (0, 0) without one.  ValueError if it
    holds another model kind."""
    gc.collect()   # the checkpoint code goes into the holes the garbage leaves
    from . import checkpoint, heap_trace, unload
    heap_trace("checkpoint code")
    try:
        if not checkpoint.latest(cfg["ckpt"]):
            return 0, 0
        loaded, _ = checkpoint.load(cfg["ckpt"], into=vae.state_dict())
        for name, _ in vae.state_items():   # (a dict of them only while loading)
            del loaded[name]
        st.update(loaded)
        if loaded["kind"] != cfg["model"]:
            raise ValueError("%s holds a %r model, not %r (use --fresh true or another --ckpt)"
                             % (cfg["ckpt"], loaded["kind"], cfg["model"]))
        vae.steps = loaded["steps"]
        epoch, pos = loaded["epoch"], loaded["pos"]
        out("resuming from %s at epoch %d, sample %d" % (cfg["ckpt"], epoch + 1, pos))
        if checkpoint.commit(cfg["ckpt"]):   # a board copy: into the mount now, not at the next save
            st["epoch"], st["pos"], st["steps"] = epoch, pos, vae.steps
            checkpoint.save(cfg["ckpt"], st, seq=vae.steps, items=vae.state_items)
        return epoch, pos
    finally:
        unload("checkpoint_read")   # the steps only write checkpoints (.latest, .load loaded it)
