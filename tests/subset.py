"""The shipped MNIST subset (data/mnist-subset) as stream files, the way a
user makes them: `python -m qtrain_host prepare`."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prepare_subset(out, *args):
    """Run `qtrain_host prepare` on the shipped subset into directory `out`
    (seed 0, then `args`, e.g. "--per-class", "10"). -> str(out)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "host_tools"))
    subprocess.run([sys.executable, "-m", "qtrain_host", "prepare", "--data",
                    os.path.join(ROOT, "data", "mnist-subset"), "--out", str(out), "--seed", "0"] + list(args),
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return str(out)
