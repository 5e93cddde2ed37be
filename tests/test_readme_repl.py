"""The README's REPL session ("## At the REPL") runs as printed on the Unix
port, against a VAE checkpoint trained here on the shipped MNIST subset.

Each `>>> ` line (with its `... ` continuation lines) is run in order; an
expression's value is printed as the REPL would (repr, unless None), and what
the session prints must match the lines under it in the README: exactly, but
for trailing spaces, and a line `...` standing for any number of lines.
"""
import ast
import os
import re
import subprocess

import pytest

from qtrain_host import paths
from subset import prepare_subset

README = os.path.join(paths.ROOT, "README.md")


def readme_session(heading="## At the REPL"):
    """-> [(source, [expected output lines])] of the first ```python block
    under `heading`."""
    text = open(README).read()
    start = text.index(heading)
    m = re.compile(r"^```python\n(.*?)^```", re.S | re.M).search(text, start)
    assert m, "no ```python block under %r in README.md" % heading
    entries = []
    for line in m.group(1).splitlines():
        if line.startswith(">>> "):
            entries.append([line[4:], []])
        elif line.startswith("... ") and entries and not entries[-1][1]:
            entries[-1][0] += "\n" + line[4:]
        else:
            assert entries, "README REPL block must start with a >>> line, got %r" % line
            entries[-1][1].append(line.rstrip())
    return entries


def as_script(entries):
    """The session as a script: a marker line before each entry, expression
    values printed like the REPL does."""
    out = []
    for i, (src, _) in enumerate(entries):
        out.append("print('@@%d')" % i)
        try:
            ast.parse(src, mode="eval")
            out.append("_r = (%s\n)\nif _r is not None:\n    print(repr(_r))" % src)
        except SyntaxError:
            out.append(src)
    return "\n".join(out) + "\nprint('@@end')\n"


def matches(expected, got):
    """expected lines (a line '...' = any lines) against got lines."""
    pat = "".join(r"(?:.*\n)*?" if ln == "..." else re.escape(ln) + r"\n" for ln in expected)
    return re.fullmatch(pat, "".join(ln + "\n" for ln in got)) is not None


def test_readme_repl_session_runs_as_printed(run, target, tmp_path):
    if target != "unix":
        pytest.skip("the README session runs on the Unix port (boards: same package, same output)")
    entries = readme_session()
    assert any("load_vae" in src for src, _ in entries) and any("qtrain.show" in src for src, _ in entries)
    # The shipped subset as stream files, and a small VAE trained on it (vae.qtc).
    prepare_subset(tmp_path)
    run("from qtrain import trainer\n"
        "trainer.train_vae(dict(trainer.VAE_DEFAULTS, data=%r, limit=600, hidden=32, log_every=0, ckpt=%r))\n"
        % (str(tmp_path / "train.qtds"), str(tmp_path / "vae.qtc")))
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([paths.natmod_dir("x64"), paths.PYTHON_DIR]))
    script = tmp_path / "readme_repl.py"
    script.write_text(as_script(entries))
    p = subprocess.run([paths.UNIX_MICROPYTHON, "-X", "heapsize=16M", str(script)], cwd=str(tmp_path),
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0 and out.rstrip().endswith("@@end"), out
    chunks = re.split(r"^@@(\d+|end)\n", out, flags=re.M)
    got = {int(chunks[i]): chunks[i + 1].splitlines() for i in range(1, len(chunks) - 2, 2)}
    for i, (src, expected) in enumerate(entries):
        lines = [ln.rstrip() for ln in got.get(i, [])]
        assert matches(expected, lines), ">>> %s\nREADME says:\n%s\nMicroPython printed:\n%s" % (
            src, "\n".join(expected), "\n".join(lines))


def test_matcher_is_strict():
    assert matches(["2"], ["2"]) and not matches(["2"], ["3"]) and not matches(["2"], [])
    assert matches(["..."], []) and matches(["..."], ["a", "b"]) and matches(["a", "...", "z"], ["a", "b", "z"])
    assert not matches(["a", "...", "z"], ["a", "b"])
    assert as_script([("1 + 1", []), ("x = 3", [])]).count("print(repr(_r))") == 1
