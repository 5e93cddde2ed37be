"""The package end to end on the Unix port: a VAE learns, a checkpointed
run resumes bit-exactly, a head trained on the frozen encoder beats chance."""
import os

import pytest

from subset import prepare_subset


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    return prepare_subset(tmp_path_factory.mktemp("data"))


def _unix(run, target):
    if target != "unix":
        pytest.skip("training runs are exercised on the Unix port here (boards: test_boards_training)")


def _progress(out, phase):
    rows = []
    for line in out.splitlines():
        if line.startswith("@progress " + phase):
            rows.append(dict(kv.split("=") for kv in line.split()[2:]))
    return rows


def test_vae_elbo_goes_down(run, target, streams):
    _unix(run, target)
    out = run("""
from qtrain import trainer
cfg = dict(trainer.VAE_DEFAULTS, data=%r, limit=2000, hidden=64, log_every=500, ckpt='v.qtc')
trainer.train_vae(cfg)
""" % os.path.join(streams, "train.qtds"))
    elbo = [float(r["elbo"]) for r in _progress(out, "vae")]
    assert len(elbo) == 4, out
    assert elbo[-1] < elbo[0] - 30, elbo


def test_resume_is_bit_exact(run, target, streams):
    """600 samples in one run == 250 + stop + resume for the rest: every
    weight, quantization record and generator state identical."""
    _unix(run, target)
    out = run("""
from qtrain import trainer, checkpoint
base = dict(trainer.VAE_DEFAULTS, data=%r, limit=600, hidden=32, log_every=0, ckpt_every=100)
quiet = lambda s: None
trainer.train_vae(dict(base, ckpt='a.qtc'), out=quiet)
trainer.train_vae(dict(base, ckpt='b.qtc', stop_after=250), out=quiet)
print('mid', checkpoint.peek('b.qtc')['pos'])
trainer.train_vae(dict(base, ckpt='b.qtc'), out=print)
a, sa = checkpoint.load('a.qtc')
b, sb = checkpoint.load('b.qtc')
diff = [k for k in a if not isinstance(a[k], (int, float, str)) and bytes(a[k]) != bytes(b[k])]
print('steps', sa, sb, 'diff', diff)
""" % os.path.join(streams, "train.qtds"))
    assert "mid 250" in out
    assert "resuming from b.qtc at epoch 1, sample 250" in out
    assert "steps 600 600 diff []" in out, out


def test_lr_decays_per_epoch_and_after_resume(run, target, streams):
    """lr_decay: epoch e trains at lr * lr_decay**e, also when a run resumes
    in the middle of epoch 2 (bit-exact with the uninterrupted run)."""
    _unix(run, target)
    out = run("""
from qtrain import trainer, checkpoint
base = dict(trainer.VAE_DEFAULTS, data=%r, limit=200, hidden=32, epochs=2, lr=0.0004, lr_decay=0.5,
            log_every=0, ckpt_every=50)
quiet = lambda s: None
va = trainer.train_vae(dict(base, ckpt='a.qtc'), out=quiet)
trainer.train_vae(dict(base, ckpt='b.qtc', stop_after=300), out=quiet)
vb = trainer.train_vae(dict(base, ckpt='b.qtc'), out=quiet)
a, _ = checkpoint.load('a.qtc')
b, _ = checkpoint.load('b.qtc')
diff = [k for k in a if not isinstance(a[k], (int, float, str)) and bytes(a[k]) != bytes(b[k])]
print('lr %%g %%g' %% (va.decoder.layers[-1].hp[0], vb.encoder.layers[0].hp[0]), 'diff', diff)
c = trainer.train_vae(dict(base, ckpt='c.qtc', lr_decay=1.0), out=quiet)
print('same', bytes(a['enc.0.w']) == bytes(checkpoint.load('c.qtc')[0]['enc.0.w']))
try:
    trainer.train_vae(dict(base, ckpt='d.qtc', lr_decay=0.0), out=quiet)
except ValueError as e:
    print('ValueError', e)
""" % os.path.join(streams, "train.qtds"))
    assert "lr 0.0002 0.0002 diff []" in out, out
    assert "same False" in out, out          # the decay changed the second epoch's training
    assert "ValueError lr_decay must be in (0, 1]" in out, out


def test_head_beats_chance(run, target, streams):
    _unix(run, target)
    d = streams
    out = run("""
from qtrain import trainer
trainer.train_vae(dict(trainer.VAE_DEFAULTS, data=%r, limit=2000, hidden=64, log_every=0, ckpt='v.qtc'))
trainer.train_head(dict(trainer.HEAD_DEFAULTS, vae='v.qtc', data=%r, test=%r, epochs=3, eval_limit=500))
""" % (os.path.join(d, "train.qtds"), os.path.join(d, "train-labelled-100.qtds"), os.path.join(d, "test.qtds")))
    acc = float(out.split("test_acc=")[1].split()[0])
    assert acc > 0.4, out


def test_head_error_range_is_fixed_by_default(run, target, streams):
    """HEAD_DEFAULTS alpha_e = 0: the uint8 head's softmax error keeps the
    range [-1, 1] (tracked, it shrinks to a fitted sample's errors and clips
    the misclassified ones); alpha_e > 0 still tracks it."""
    _unix(run, target)
    d = streams
    out = run("""
from qtrain import trainer
trainer.train_vae(dict(trainer.VAE_DEFAULTS, data=%r, limit=100, hidden=16, log_every=0, ckpt='v.qtc'))
for ae in (trainer.HEAD_DEFAULTS['alpha_e'], 0.1):
    head, _ = trainer.train_head(dict(trainer.HEAD_DEFAULTS, vae='v.qtc', data=%r, test='', epochs=2, alpha_e=ae))
    print('range', ae, head.output.eq[2], head.output.eq[3])
""" % (os.path.join(d, "train.qtds"), os.path.join(d, "train-labelled-10.qtds")))
    assert "range 0.0 -1.0 1.0" in out, out
    assert "range 0.1 -1.0 1.0" not in out, out
