"""PNG outputs from plain numpy arrays (training tools call these directly).

    from qtrain_host import plot
    plot.save_grid("samples.png", images)                 # (N, 28, 28) or (N, 784)
    plot.save_reconstructions("recon.png", originals, recons)
    plot.save_latent("latent.png", z, labels)             # (N, d) -> PCA to 2-D
    plot.save_curves("curves.png", {"step": [...], "elbo": [...], "acc": [...]})

Image grids are written by a small PNG encoder here (exact pixels, no
dependency).  Scatter plots and curves use matplotlib (Agg backend), imported
only when needed.  Image values: uint8 as they are; floats in [0, 1] scaled to
0..255; other floats min-max scaled.
"""
import csv
import json
import math
import os
import struct
import zlib

import numpy as np

PAD_VALUE = 96


# ---- PNG encoder -------------------------------------------------------------

def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(img):
    """(H, W) gray or (H, W, 3) RGB uint8 array -> PNG file bytes."""
    img = np.ascontiguousarray(img)
    if img.dtype != np.uint8:
        raise ValueError("png_bytes: need uint8, got %s" % img.dtype)
    if img.ndim == 2:
        color = 0
    elif img.ndim == 3 and img.shape[2] == 3:
        color = 2
    else:
        raise ValueError("png_bytes: need (H, W) or (H, W, 3), got %s" % (img.shape,))
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("png_bytes: empty image %dx%d" % (h, w))
    rows = img.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b""))


def save_png(path, img):
    _ensure_dir(path)
    with open(path, "wb") as f:
        f.write(png_bytes(img))
    return path


def _ensure_dir(path):
    d = os.path.dirname(os.fspath(path))
    if d:
        os.makedirs(d, exist_ok=True)


# ---- image grids -----------------------------------------------------------------

def to_uint8(a):
    """Images to uint8: uint8 unchanged, [0,1] floats * 255, others min-max."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float64)
    if a.size and (not np.isfinite(a).all()):
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(a * 255).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0 and np.all(a == np.rint(a)):
        return a.astype(np.uint8)
    if hi == lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def as_images(images, shape=None):
    """(N, H, W) from (N, H, W), (N, H*W) (square, or `shape`) or (H, W)."""
    a = np.asarray(images)
    if a.ndim == 2 and shape is None and int(math.isqrt(a.shape[1])) ** 2 != a.shape[1]:
        return a[None]  # one (H, W) image
    if a.ndim == 2:
        if shape is None:
            s = int(math.isqrt(a.shape[1]))
            shape = (s, s)
        a = a.reshape(a.shape[0], *shape)
    elif a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 4 and a.shape[3] == 1:
        a = a[..., 0]
    if a.ndim != 3:
        raise ValueError("images must be (N, H, W) or (N, H*W), got shape %s" % (a.shape,))
    return a


def grid(images, ncols=None, pad=1, scale=1, shape=None):
    """Tile images into one uint8 array with `pad` pixels between them."""
    imgs = to_uint8(as_images(images, shape))
    n, h, w = imgs.shape
    if n == 0:
        raise ValueError("grid: no images")
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = (n + ncols - 1) // ncols
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), PAD_VALUE, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = imgs[i]
    if scale > 1:
        out = np.repeat(np.repeat(out, scale, axis=0), scale, axis=1)
    return out


def save_grid(path, images, ncols=None, scale=2, shape=None):
    """PNG of a grid of images (samples, a batch, ...)."""
    return save_png(path, grid(images, ncols, scale=scale, shape=shape))


def save_reconstructions(path, originals, reconstructions, ncols=10, scale=2, shape=None):
    """PNG with rows of originals, each followed by the row of their
    reconstructions."""
    a = to_uint8(as_images(originals, shape))
    b = to_uint8(as_images(reconstructions, shape))
    if a.shape != b.shape:
        raise ValueError("save_reconstructions: originals %s vs reconstructions %s" % (a.shape, b.shape))
    n = len(a)
    ncols = min(ncols, n)
    tiles = []
    for start in range(0, n, ncols):
        row_a, row_b = a[start:start + ncols], b[start:start + ncols]
        fill = ncols - len(row_a)
        if fill:
            blank = np.full((fill,) + a.shape[1:], PAD_VALUE, np.uint8)
            row_a, row_b = np.concatenate([row_a, blank]), np.concatenate([row_b, blank])
        tiles.extend([row_a, row_b])
    return save_png(path, grid(np.concatenate(tiles), ncols, scale=scale))


# ---- latent space and curves (matplotlib) ------------------------------------------

def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plotting curves and scatter plots needs matplotlib: "
                           "run `make setup` (it is in host_tools/requirements.txt)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pca_2d(z):
    """(N, d) -> (N, 2): projection on the two main principal components
    (d <= 2: returned as is, padded with zeros)."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError("pca_2d: need (N, d), got %s" % (z.shape,))
    if z.shape[1] <= 2:
        return np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
    zc = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    p = zc @ vt[:2].T
    # fix the sign so the picture is reproducible
    for k in range(2):
        if p[np.argmax(np.abs(p[:, k])), k] < 0:
            p[:, k] = -p[:, k]
    return p


def save_latent(path, z, labels=None, class_names=None, title="latent space (PCA)", dpi=100):
    """Scatter plot of latent vectors projected to 2-D, coloured by label."""
    plt = _pyplot()
    p = pca_2d(z)
    fig, ax = plt.subplots(figsize=(6, 5))
    if labels is None:
        ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.6)
    else:
        labels = np.asarray(labels).astype(int)
        cmap = plt.get_cmap("tab10")
        for c in np.unique(labels):
            m = labels == c
            name = class_names[c] if class_names is not None and c < len(class_names) else str(c)
            ax.scatter(p[m, 0], p[m, 1], s=4, alpha=0.7, color=cmap(c % 10), label=name)
        ax.legend(markerscale=3, fontsize=7, loc="best")
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    _ensure_dir(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def load_log(path):
    """A training log -> dict column -> numpy float array.  CSV with a header
    row, JSON (list of records, or dict of lists, optionally under "log"),
    or JSON lines.  Non-numeric columns are dropped."""
    path = os.fspath(path)
    with open(path) as f:
        text = f.read()
    rows = None
    if path.endswith(".csv"):
        rows = list(csv.DictReader(text.splitlines()))
    else:
        try:
            obj = json.loads(text)
        except ValueError:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            if isinstance(obj, dict) and "log" in obj:
                obj = obj["log"]
            if isinstance(obj, dict):
                return _numeric_columns({k: v for k, v in obj.items() if isinstance(v, list)})
            rows = obj
    cols = {}
    for r in rows:
        for k, v in r.items():
            cols.setdefault(k, []).append(v)
    return _numeric_columns(cols)


def _numeric_columns(cols):
    out = {}
    for k, vals in cols.items():
        try:
            out[k] = np.array([float("nan") if v in (None, "") else float(v) for v in vals])
        except (TypeError, ValueError):
            continue
    if not out:
        raise ValueError("log has no numeric columns")
    return out


X_NAMES = ("step", "sample", "samples", "iter", "epoch")


def save_curves(path, log, x=None, title=None, dpi=100):
    """One panel per metric (loss, ELBO, accuracy, ...) against `x` (default:
    the first of step/sample/samples/iter/epoch present, else the row number).
    `log`: dict name -> sequence, or a path for load_log()."""
    if not isinstance(log, dict):
        log = load_log(log)
    cols = {k: np.asarray(v, dtype=np.float64) for k, v in log.items()}
    if x is None:
        x = next((n for n in X_NAMES if n in cols), None)
    xs = cols.pop(x) if x is not None else None
    names = [k for k in cols if cols[k].size]
    if not names:
        raise ValueError("save_curves: nothing to plot")
    panels = {n: {"": (xs[:len(cols[n])] if xs is not None else np.arange(len(cols[n])), cols[n])} for n in names}
    return save_compare(path, panels, xlabel=x or "row", title=title, dpi=dpi, marker=None)


def save_compare(path, panels, xlabel="epoch", title=None, dpi=80, marker="o"):
    """One panel per metric, one line per run: panels = {metric: {run label:
    (xs, ys)}} (ys may hold None where a run has no value; no legend when
    every label is empty)."""
    plt = _pyplot()
    names = [k for k in panels if panels[k]]
    if not names:
        raise ValueError("save_compare: nothing to plot")
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.0 * len(names) + 0.4), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        for label, (xs, ys) in panels[name].items():
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, ms=3, lw=1.2,
                        label=label or None)
        ax.set_ylabel(name, fontsize=8 if marker else None)
        ax.grid(alpha=0.3)
    if any(label for runs in panels.values() for label in runs):
        axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel(xlabel)
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    _ensure_dir(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
