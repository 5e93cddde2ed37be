"""`python -m qtrain_host <subcommand>`: the host tools' one entry point.

    prepare   IDX files -> stream files (.qtds) + balanced labelled subsets
    subset    make a small balanced IDX subset of a dataset (data/mnist-subset)
    info      describe stream, IDX or data-directory files (and check them)
    plot      PNGs: image grids, reconstructions, latent space, curves

Adding a subcommand: write `cmd_<name>(args)` and register it with the
`@subcommand(name, help, configure)` decorator, where `configure(parser)`
adds its options, either here or in a module listed in PLUGINS (imported if it
exists, so a colleague's `run`/`eval` module plugs in without editing main()).
Errors in the data (IdxError, StreamError, DatasetError, ...) end the command
with one clear line and exit status 2; --traceback shows the Python trace.
"""
import argparse
import importlib
import json
import os
import sys
import time

SUBCOMMANDS = {}   # name -> (help, configure(parser), fn(args))
PLUGINS = ("qtrain_host.cli_run", "qtrain_host.cli_eval")


def subcommand(name, help, configure=None):
    def deco(fn):
        SUBCOMMANDS[name] = (help, configure, fn)
        return fn
    return deco


def _paths():
    from . import paths
    return paths


# ---- progress ---------------------------------------------------------------

class Progress:
    """`label done/total (pct) elapsed` on stderr: redrawn in place on a
    terminal, one line per 10% otherwise (logs, CI)."""

    def __init__(self, label, total, stream=None):
        self.label, self.total = label, max(int(total), 1)
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.time()
        self._last = -1

    def __call__(self, done, total=None):
        if total is not None:
            self.total = max(int(total), 1)
        pct = 100 * done // self.total
        if self.tty:
            self.stream.write("\r%s %d/%d (%d%%) %.1f s" % (self.label, done, self.total, pct, time.time() - self.t0))
            if done >= self.total:
                self.stream.write("\n")
        elif pct // 10 != self._last // 10 or done >= self.total:
            if done >= self.total or pct // 10 > self._last // 10:
                self.stream.write("%s %d/%d (%d%%) %.1f s\n" % (self.label, done, self.total, pct, time.time() - self.t0))
        self._last = pct
        self.stream.flush()


def log(msg):
    print(msg, flush=True)


# ---- prepare ------------------------------------------------------------------

def _default_data():
    from . import datasets
    return datasets.SHIPPED


def _prepare_args(p):
    p.add_argument("--data", default=None, metavar="DIR",
                   help="directory with the IDX files (default: the subset shipped in data/mnist-subset)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: out/data)")
    p.add_argument("--seed", type=int, default=0, help="seed of the labelled subsets (default 0)")
    p.add_argument("--per-class", default="10,100,200", metavar="K,K,...",
                   help="labelled subsets to write, samples per class (default 10,100,200)")
    p.add_argument("--name", default=None, help="dataset name: mnist or fashion-mnist (default: from --data)")
    p.add_argument("--classes", type=int, default=10)


def _short(name):
    return "fashion" if name.startswith("fashion") else name[:10]


@subcommand("prepare", "IDX files -> stream files (.qtds) for the board, plus labelled subsets",
            _prepare_args)
def cmd_prepare(args):
    import numpy as np
    from . import datasets, stream
    data_dir = args.data or _default_data()
    out = args.out or os.path.join(_paths().ROOT, "out", "data")
    name = args.name or datasets.guess_name(data_dir)
    per_class = [int(k) for k in str(args.per_class).split(",") if k.strip()]
    if any(k <= 0 for k in per_class):
        raise ValueError("--per-class: every K must be positive, got %s" % args.per_class)
    os.makedirs(out, exist_ok=True)
    short = _short(name)
    manifest = {"format": "qtds v%d (docs/DATA_FORMAT.md)" % stream.VERSION, "dataset": name,
                "source_dir": os.path.abspath(data_dir) if args.data else "data/mnist-subset",
                "seed": args.seed, "source": {}, "files": {}}
    splits = {}
    for split in ("train", "test"):
        try:
            img_p = datasets.find_file(data_dir, split, "images")
            lab_p = datasets.find_file(data_dir, split, "labels")
        except datasets.DatasetError as e:
            if split == "test":
                log("prepare: no test split (%s); skipping it" % e)
                continue
            raise
        log("prepare: reading %s" % img_p)
        images, labels = datasets.load_split(data_dir, split, classes=args.classes)
        for p in (img_p, lab_p):
            manifest["source"][os.path.basename(p)] = datasets.file_sha256(p)
        splits[split] = (images, labels)

    def emit(fname, images, labels, sname, extra=None):
        path = os.path.join(out, fname)
        h = stream.write(path, images, labels, args.classes, sname,
                         progress=Progress("prepare: %s" % fname, len(images)))
        counts = np.bincount(labels, minlength=args.classes).tolist()
        entry = {"samples": h.count, "shape": [h.rows, h.cols], "labelled": True,
                 "label_counts": counts, "bytes": h.file_size, "sha256": datasets.file_sha256(path)}
        entry.update(extra or {})
        manifest["files"][fname] = entry
        log("prepare: wrote %s: %d samples, %d bytes" % (path, h.count, h.file_size))

    tr_images, tr_labels = splits["train"]
    emit("train" + stream.SUFFIX, tr_images, tr_labels, short + "/train")
    if "test" in splits:
        emit("test" + stream.SUFFIX, splits["test"][0], splits["test"][1], short + "/test")
    for k in per_class:
        sel = datasets.balanced_indices(tr_labels, k, args.seed, args.classes,
                                        name=datasets.find_file(data_dir, "train", "labels"))
        emit("train-labelled-%d%s" % (k, stream.SUFFIX), tr_images[sel], tr_labels[sel],
             "%s/l%d" % (short, k),
             {"per_class": k, "seed": args.seed, "source_indices": sel.tolist()})
    mpath = os.path.join(out, "manifest.json")
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    log("prepare: done, %d files in %s (manifest.json lists them with checksums)"
        % (len(manifest["files"]), out))
    return 0


# ---- subset -------------------------------------------------------------------

def _subset_args(p):
    p.add_argument("--data", required=True, metavar="DIR", help="directory with the full IDX files")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: data/mnist-subset)")
    p.add_argument("--train-per-class", type=int, default=600)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", type=int, default=10)


@subcommand("subset", "balanced seeded IDX subset of a dataset (how data/mnist-subset is made)",
            _subset_args)
def cmd_subset(args):
    from . import datasets
    out = args.out or datasets.SHIPPED
    datasets.make_subset(args.data, out, args.train_per_class, args.test_per_class,
                         args.seed, args.classes, log=log)
    log("subset: wrote %s (checksums in SHA256SUMS)" % out)
    return 0


# ---- info -------------------------------------------------------------------------

def _info_args(p):
    p.add_argument("paths", nargs="+", metavar="PATH", help="stream (.qtds) or IDX files, or directories")


def describe_file(path):
    from . import datasets, idx, stream
    with open(path, "rb") as f:
        head = f.read(4)
    if head == stream.MAGIC:
        return stream.describe(path)
    text = idx.describe(path)
    known = datasets.identify(path)
    if known:
        text += "\n  the original %s distribution file %s (MD5 matches)" % known
    return text


@subcommand("info", "describe and check stream (.qtds) or IDX files", _info_args)
def cmd_info(args):
    from . import datasets
    for p in args.paths:
        if os.path.isdir(p):
            if os.path.exists(os.path.join(p, "SHA256SUMS")):
                for fname, ok in datasets.verify_checksums(p):
                    log("%s: %s" % (os.path.join(p, fname), "checksum OK" if ok else "CHECKSUM MISMATCH"))
                    if not ok:
                        raise ValueError("%s: checksum mismatch" % os.path.join(p, fname))
            names = sorted(n for n in os.listdir(p)
                           if n.endswith((".qtds", ".gz")) or "-ubyte" in n)
            for n in names:
                log(describe_file(os.path.join(p, n)))
        else:
            log(describe_file(p))
    return 0


# ---- plot -------------------------------------------------------------------------

def load_array(path, key=None):
    """Images or vectors from .npy, .npz (`key` or the first array), .csv,
    a stream file (its images) or an IDX file."""
    import numpy as np
    from . import idx, stream
    if path.endswith(".npy"):
        return np.load(path)
    if path.endswith(".npz"):
        with np.load(path) as z:
            return z[key or z.files[0]]
    if path.endswith(".csv"):
        return np.loadtxt(path, delimiter=",", ndmin=2)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == stream.MAGIC:
        return stream.read(path).images
    return idx.read(path)


def load_labels(path, key=None):
    import numpy as np
    from . import stream
    with open(path, "rb") as f:
        head = f.read(4)
    if head == stream.MAGIC:
        d = stream.read(path)
        if d.labels is None:
            raise ValueError("%s: an unlabelled stream has no labels" % path)
        return d.labels
    return np.asarray(load_array(path, key)).reshape(-1)


def _plot_args(p):
    sp = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    g = sp.add_parser("grid", help="grid of images (samples, a dataset, decoded latents)")
    g.add_argument("input", help=".npy/.npz/.csv array, stream or IDX file")
    g.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    g.add_argument("--start", type=int, default=0)
    g.add_argument("--ncols", type=int, default=None)
    g.add_argument("--scale", type=int, default=2)
    g.add_argument("--key", default=None, help="array name in a .npz")
    r = sp.add_parser("recon", help="originals and their reconstructions, row over row")
    r.add_argument("originals")
    r.add_argument("reconstructions")
    r.add_argument("--n", type=int, default=20)
    r.add_argument("--ncols", type=int, default=10)
    r.add_argument("--scale", type=int, default=2)
    la = sp.add_parser("latent", help="latent vectors projected to 2-D (PCA), coloured by label")
    la.add_argument("z", help="(N, d) array: .npy/.npz/.csv")
    la.add_argument("--labels", default=None, help=".npy array, stream or IDX labels file")
    la.add_argument("--names", default="mnist", help="class names: mnist or fashion-mnist")
    la.add_argument("--title", default="latent space (PCA)")
    c = sp.add_parser("curves", help="loss / ELBO / accuracy curves from a CSV or JSON log")
    c.add_argument("log", help=".csv with a header row, .json or .jsonl")
    c.add_argument("--x", default=None, help="x column (default: step/sample/epoch if present)")
    c.add_argument("--title", default=None)
    for q in (g, r, la, c):
        q.add_argument("--out", "-o", required=True, help="PNG file to write")


@subcommand("plot", "PNG image grids, reconstructions, latent space, training curves", _plot_args)
def cmd_plot(args):
    from . import datasets, plot
    if args.kind == "grid":
        a = load_array(args.input, args.key)
        plot.save_grid(args.out, a[args.start:args.start + args.n], args.ncols, args.scale)
    elif args.kind == "recon":
        a = load_array(args.originals)[:args.n]
        b = load_array(args.reconstructions)[:args.n]
        plot.save_reconstructions(args.out, a, b, args.ncols, args.scale)
    elif args.kind == "latent":
        z = load_array(args.z)
        labels = load_labels(args.labels) if args.labels else None
        if labels is not None and len(labels) < len(z):
            raise ValueError("%s: %d labels for %d latent vectors" % (args.labels, len(labels), len(z)))
        plot.save_latent(args.out, z, None if labels is None else labels[:len(z)],
                         datasets.CLASS_NAMES.get(args.names), args.title)
    elif args.kind == "curves":
        plot.save_curves(args.out, args.log, args.x, args.title)
    log("plot: wrote %s" % args.out)
    return 0


# ---- main ---------------------------------------------------------------------------

def _load_plugins():
    for mod in PLUGINS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def build_parser():
    _load_plugins()
    parser = argparse.ArgumentParser(prog="python -m qtrain_host",
                                     description="qtrain host tools")
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, configure, fn) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if configure:
            configure(p)
        p.set_defaults(func=fn)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, OSError) as e:
        if args.traceback:
            raise
        msg = str(e)
        if isinstance(e, FileNotFoundError) and e.filename:
            msg = "%s: no such file" % e.filename
        print("qtrain_host %s: error: %s" % (args.command, msg), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qtrain_host %s: interrupted" % args.command, file=sys.stderr)
        return 130
