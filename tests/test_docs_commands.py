"""The commands README.md and docs/*.md tell a reader to type still exist.

Every `make TARGET`, `python -m qtrain_host[.module] [SUBCOMMAND] --flag`,
script option (`python/train_vae.py --limit 600`, run on the Unix port with
--help) and repository path (`tests/test_x.py`, `python/...`) in a code block
or code span of the docs is checked against the tree: a renamed target,
subcommand, flag or file fails here instead of in a reader's shell.  What the
commands *produce* is tested elsewhere (the REPL session:
test_readme_repl.py, the kernel example: test_dense_u8.py, `prepare`:
test_cli_data.py); this only keeps the docs from pointing at things that are
gone.  Placeholders (DIR, PORT, `...`, <arch>) are not checked.
"""
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from qtrain_host import paths

DOCS = [os.path.join(paths.ROOT, "README.md")] + sorted(glob.glob(os.path.join(paths.ROOT, "docs", "*.md")))
SCRIPTS = ("python/train_vae.py", "python/train_head.py", "python/sample.py")
PATH_PREFIXES = ("tests/", "python/", "host_tools/", "boards/", "docs/", "natmod/", "data/")


def _rel(path):
    return os.path.relpath(path, paths.ROOT)


def doc_commands(path):
    """[(line number, command)] of the shell lines in `path`: the lines of
    fenced blocks (not ```python, not generated marker blocks), of 4-space
    indented blocks, and the inline code spans of the prose."""
    out = []
    fence = None
    generated = False
    for i, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1):
        if re.match(r"<!-- \w+:begin", line):
            generated = True
        elif re.match(r"<!-- \w+:end", line):
            generated = False
        if generated:
            continue
        m = re.match(r"^\s*```(\w*)", line)
        if m:
            fence = None if fence is not None else m.group(1)
            continue
        if fence is not None:
            if fence in ("", "sh", "bash", "console", "shell"):
                out.append((i, line.strip()))
            continue
        if line.startswith("    ") and line.strip():
            out.append((i, line.strip()))
            continue
        out.extend((i, span) for span in re.findall(r"`([^`\n]+)`", line))
    return out


def _tokens(cmd):
    """shlex tokens of a command without its comment, its leading VAR=value
    assignments and a `$ ` prompt; [] if it does not parse."""
    try:
        toks = shlex.split(cmd, comments=True)
    except ValueError:
        return []
    if toks[:1] == ["$"]:
        toks = toks[1:]
    while toks and re.match(r"^[A-Z_][A-Z0-9_]*=", toks[0]):
        toks = toks[1:]
    return toks


def _placeholder(tok):
    return tok in ("...", "PATH") or "<" in tok or tok.isupper()


def make_targets():
    """Every target the Makefile and its host_tools/*.mk and boards/*.mk fragments define."""
    targets = set()
    for mk in [os.path.join(paths.ROOT, "Makefile")] + glob.glob(os.path.join(paths.ROOT, "host_tools", "*.mk")) \
            + glob.glob(os.path.join(paths.ROOT, "boards", "*.mk")):
        for line in open(mk, encoding="utf-8"):
            m = re.match(r"^([A-Za-z0-9_.%/ -]+?)\s*::?(?!=)", line)
            if m and not line.startswith("\t"):
                targets.update(m.group(1).split())
    return targets


_help_cache = {}


def help_text(argv):
    """stdout+stderr of `argv --help` (cached), or None if it fails."""
    key = tuple(argv)
    if key not in _help_cache:
        p = subprocess.run(list(argv) + ["--help"], cwd=paths.ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120,
                           env=dict(os.environ, PYTHONPATH=os.path.join(paths.ROOT, "host_tools"),
                                    MICROPYPATH=os.pathsep.join([paths.natmod_dir("x64"), paths.PYTHON_DIR])))
        _help_cache[key] = p.stdout.decode("utf-8", "replace") if p.returncode == 0 else None
    return _help_cache[key]


def _flags(toks):
    """The --flags of a token list (brackets of optional flags and =values stripped)."""
    return sorted({t.strip("[]").split("=")[0] for t in toks if t.strip("[").startswith("--")})


def check_python_m(toks):
    """Problems with `python -m MODULE [SUBCOMMAND] args` (qtrain_host only)."""
    mod = toks[2] if len(toks) > 2 else ""
    if not mod.startswith("qtrain_host"):
        return []
    base = [sys.executable, "-m", mod]
    top = help_text(base)
    if top is None:
        return ["`python -m %s --help` fails: no such module or command line" % mod]
    args = toks[3:]
    sub = args[0] if args and not args[0].startswith("-") and not _placeholder(args[0]) else None
    if sub is not None and re.search(r"^\s+%s\b|[{,]%s[,}]" % (re.escape(sub), re.escape(sub)), top, re.M):
        helptext = help_text(base + [sub])
        if helptext is None:
            return ["`python -m %s %s --help` fails" % (mod, sub)]
        args = args[1:]
    elif sub is not None and "COMMAND" in top:
        return ["`python -m %s` has no subcommand %r" % (mod, sub)]
    else:
        helptext = top
    problems = []
    script = next((a for a in args if a in SCRIPTS), None)
    own = args[:args.index(script)] if script else args
    for flag in _flags(own):
        if not re.search(r"(^|[\s\[,])%s\b" % re.escape(flag), helptext):
            problems.append("`python -m %s%s` has no option %s" % (mod, " " + sub if sub else "", flag))
    if script:
        problems += check_script(script, args[args.index(script) + 1:])
    return problems


def check_script(script, args):
    """The --key options of a qtrain script exist (its --help on the Unix port)."""
    if not os.path.exists(paths.UNIX_MICROPYTHON) or not os.path.isdir(paths.natmod_dir("x64")):
        if "unix" in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail("the Unix port or dist/x64_6.3 is not built (make setup dist)")
        return []
    helptext = help_text([paths.UNIX_MICROPYTHON, script])
    if helptext is None:
        return ["`%s --help` fails on the Unix port" % script]
    return ["%s has no option %s" % (script, f) for f in _flags(args)
            if f != "--help" and not re.search(r"^\s+%s\s" % re.escape(f), helptext, re.M)]


def check_path(ref):
    """A repository path (`natmod/kernels/quant.[ch]` globs) or a test
    (`tests/test_x.py::test_name`) exists."""
    path, _, test = ref.partition("::")
    found = glob.glob(os.path.join(paths.ROOT, path))
    if not found:
        return ["no file or directory %s" % path]
    if test and not any(re.search(r"^\s*def %s\(" % re.escape(test.split("[")[0]), open(f).read(), re.M)
                        for f in found):
        return ["%s has no test %s" % (path, test)]
    return []


def check_command(cmd):
    """-> [problem] for one command line or code span of the docs."""
    toks = _tokens(cmd)
    problems = []
    if not toks:
        return problems
    if toks[0] == "make" and len(toks) > 1:
        known = make_targets()
        for t in toks[1:]:
            if t.startswith("-") or "=" in t or _placeholder(t):
                continue
            if t not in known:
                problems.append("no make target %r" % t)
    elif toks[0].endswith("python") and toks[1:2] == ["-m"]:
        problems += check_python_m(toks)
    elif toks[0].endswith("micropython") and len(toks) > 1 and toks[1] in SCRIPTS:
        problems += check_script(toks[1], toks[2:])
    for t in toks:
        t = t.rstrip(".,;:")
        if t.startswith(PATH_PREFIXES) and not _placeholder(t) and not any(c in t for c in "*{$"):
            problems += check_path(t)
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_doc_commands_exist(doc):
    wrong = []
    for line, cmd in doc_commands(doc):
        wrong += ["%s:%d: `%s`: %s" % (_rel(doc), line, cmd, p) for p in check_command(cmd)]
    assert not wrong, "\n".join(wrong)


def test_checker_catches_stale_commands():
    """The checks above can fail: a missing target, subcommand, option, script
    option and file are each reported; placeholders are not."""
    assert check_command("make test") == []
    assert check_command("make no-such-target") == ["no make target 'no-such-target'"]
    assert check_command("make data-full MNIST_DIR=...") == []
    assert check_command("python -m qtrain_host prepare --data DIR --out out/data") == []
    assert check_command("python -m qtrain_host prepare --no-such-flag 1") == \
        ["`python -m qtrain_host prepare` has no option --no-such-flag"]
    assert check_command("python -m qtrain_host frobnicate") == ["`python -m qtrain_host` has no subcommand 'frobnicate'"]
    assert check_command("see tests/test_no_such_file.py") == ["no file or directory tests/test_no_such_file.py"]
    assert check_command("ls docs/KERNELS.md natmod/kernels/quant.[ch]") == []
    assert check_command("tests/test_docs_commands.py::test_checker_catches_stale_commands") == []
    assert check_command("tests/test_docs_commands.py::test_gone") == \
        ["tests/test_docs_commands.py has no test test_gone"]
    if os.path.exists(paths.UNIX_MICROPYTHON) and os.path.isdir(paths.natmod_dir("x64")):
        assert check_command("python -m qtrain_host run --target unix python/train_vae.py --limit 6") == []
        assert check_command("python -m qtrain_host run python/train_vae.py --no_such_key 1") == \
            ["python/train_vae.py has no option --no_such_key"]
