"""Settings for the training scripts: defaults, then the board's defaults,
then a JSON config file, then the command line (Unix port) -- later wins.

    from qtrain import config
    cfg = config.load(sys.argv[1:], DEFAULTS)

Command line: `--key value` pairs (`--dsgu 0.1,1.0` for tuples); config
files `qtrain.json`: the one at the root of the board's flash (`make deploy`
writes the board's defaults there), then the one in the current directory
(`mpremote mount DIR` makes that DIR) -- or only the one named by
`--config FILE`.  A file has one section per script:
{"train_vae": {"epochs": 2}, "train_head": {...}}.
"""
import json
import sys

FLASH_CONFIG = "/qtrain.json"   # the board's own settings, read before ./qtrain.json


def _convert(key, text, default):
    """Parse a command-line string to the type of the default."""
    if isinstance(default, bool):
        if text in ("1", "true", "True", "yes", "on"):
            return True
        if text in ("0", "false", "False", "no", "off"):
            return False
        raise ValueError("--%s expects true/false, got %r" % (key, text))
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (list, tuple)) or (default is None and "," in text):
            return [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError("--%s expects a %s, got %r" % (key, type(default).__name__, text))
    if default is None and text in ("none", "None", ""):
        return None
    return text


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None
    except ValueError as e:
        raise ValueError("%s: not valid JSON (%s)" % (path, e))


def load(argv, defaults, section, board_defaults=None):
    """Merge defaults <- board_defaults <- config file <- argv; unknown keys
    raise ValueError naming the key and listing the known ones."""
    cfg = dict(defaults)
    known = sorted(defaults)

    def merge(src, where):
        for k, v in src.items():
            if k not in cfg:
                raise ValueError("%s: unknown setting %r (known: %s)" % (where, k, ", ".join(known)))
            cfg[k] = v

    if board_defaults:
        merge(board_defaults, "board defaults")
    args = list(argv)
    files = [FLASH_CONFIG, "qtrain.json"]
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ValueError("--config needs a file name")
        files = [args[i + 1]]
        del args[i:i + 2]
        if _read_json(files[0]) is None:
            raise ValueError("--config %s: cannot read the file" % files[0])
    for path in files:
        filecfg = _read_json(path)
        if filecfg:
            if not isinstance(filecfg, dict):
                raise ValueError("%s: expected a JSON object with one section per script" % path)
            merge(filecfg.get(section) or {}, "%s [%s]" % (path, section))
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-h", "--help"):
            cfg["help"] = True
            i += 1
            continue
        if not a.startswith("--") or i + 1 >= len(args):
            raise ValueError("expected --key value pairs, got %r (known keys: %s)" % (a, ", ".join(known)))
        key = a[2:].replace("-", "_")
        if key not in defaults:
            raise ValueError("unknown option --%s (known: %s)" % (key, ", ".join(known)))
        cfg[key] = _convert(key, args[i + 1], defaults[key])
        i += 2
    return cfg


def usage(script, defaults, doc=None):
    """Print the script's docstring (CPython-side; MicroPython keeps none)
    and its options with their defaults."""
    print(doc.strip() if doc else "usage: micropython %s [--key value ...]" % script)
    print("\noptions (default):")
    for k in sorted(defaults):
        print("  --%-14s %r" % (k, defaults[k]))


def argv():
    """sys.argv[1:] on the Unix port; [] on a board (no command line)."""
    return sys.argv[1:] if len(sys.argv) > 1 else []
