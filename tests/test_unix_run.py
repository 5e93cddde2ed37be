"""`qtrain_host run --target unix` (what `make demo` does): train_vae.py
with the package compiled from source (python/) on the Unix port's 16 MB heap.

The heap reservation meant for boards (qtrain.reserve) once held all but
32 KB of that heap, and compiling the package's source then failed with a
MemoryError: the demo broke while every board test passed."""
import math
import os

import numpy as np

from qtrain_host import cli_run, idx, paths, stream

SAMPLES = 8


def test_unix_run_trains_the_conv_vae_from_source(tmp_path):
    images = idx.read_images(os.path.join(paths.ROOT, "data", "mnist-subset", "train-images-idx3-ubyte.gz"))
    stream.write(str(tmp_path / "train.qtds"), np.ascontiguousarray(images[:SAMPLES]))
    args = ["--model", "conv", "--data", "train.qtds", "--limit", str(SAMPLES), "--log_every", "4",
            "--fresh", "true"]
    view = cli_run.ProgressView(stream=open(os.devnull, "w"))
    rc, out = cli_run.run_target("unix", str(tmp_path), os.path.join(paths.PYTHON_DIR, "train_vae.py"),
                                 args, view=view)
    assert rc == 0 and "@result vae" in out, out[-3000:]
    elbo = [float(kv.split("=", 1)[1]) for line in out.splitlines() if line.startswith("@progress vae ")
            for kv in line.split() if kv.startswith("elbo=")]
    assert len(elbo) == 2 and all(math.isfinite(e) for e in elbo), out[-3000:]
