"""The .pyi stubs of the native modules agree with the modules themselves.

python/stubs/_qtrain*.pyi are what mypy, pyright and IDEs see; the natmods
are what runs.  Both directions are checked on the Unix port: every public
name of the stubs exists in a module and every function of the modules has a
stub, and each stub's positional parameters accept exactly the argument
counts the binding accepts (the bindings check their arity before anything
else, so calls with n Nones tell which counts are allowed).  The names are
compared as a union over _qtrain and _qtrain_float, so moving kernels between
the two modules only moves entries between stub files.
"""
import ast
import glob
import json
import os

import pytest

from qtrain_host import paths, runner

STUB_DIR = os.path.join(paths.PYTHON_DIR, "stubs")
NATIVE_MODULES = ("_qtrain", "_qtrain_float")
MAX_ARGS = 20


def run_unix(script):
    """Run on the Unix port; missing port = failure under QTRAIN_REQUIRE_TARGETS."""
    if not runner.available("unix"):
        msg = "the Unix port or dist/x64_6.3 is not built (make setup dist)"
        if "unix" in os.environ.get("QTRAIN_REQUIRE_TARGETS", "").split():
            pytest.fail(msg)
        pytest.skip(msg)
    res = runner.run_script("unix", script, timeout=120)
    assert res.returncode == 0, res.output
    return res.output


def stub_functions(path):
    """{name: (required, maximum) positional arguments} of a stub's public functions,
    and the set of its other public names."""
    tree = ast.parse(open(path).read(), path)
    funcs, other = {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            if node.name.startswith("_"):
                continue
            a = node.args
            assert not (a.kwonlyargs or a.vararg or a.kwarg), \
                "%s: %s: the natmod takes positional arguments only" % (path, node.name)
            assert not a.args, "%s: %s: mark the parameters positional-only (/)" % (path, node.name)
            n = len(a.posonlyargs)
            funcs[node.name] = (n - len(a.defaults), n)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            other.update(t.id for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_"))
    return funcs, other


def stubs():
    funcs, other = {}, set()
    files = sorted(glob.glob(os.path.join(STUB_DIR, "_qtrain*.pyi")))
    assert files, "no stubs in %s" % STUB_DIR
    for path in files:
        f, o = stub_functions(path)
        dup = set(f) & set(funcs)
        assert not dup, "%s: declared in two stubs: %s" % (path, sorted(dup))
        funcs.update(f)
        other |= o
    return funcs, other


# For every public function of the native modules: which argument counts
# 0..MAX_ARGS pass the binding's arity check.
RUNTIME_SCRIPT = """
import json
ARITY = ("function missing", "function takes", "function expected at most")
out = {}
for mod in %r:
    try:
        m = __import__(mod)
    except ImportError:
        continue
    for name in dir(m):
        if name.startswith("_"):
            continue
        fn = getattr(m, name)
        ok = []
        for n in range(%d + 1):
            try:
                fn(*([None] * n))
                ok.append(n)
            except TypeError as e:
                if not any(str(e).startswith(p) for p in ARITY):
                    ok.append(n)
            except Exception:
                ok.append(n)
        out[name] = [mod, ok]
print("@@" + json.dumps(out))
""" % (NATIVE_MODULES, MAX_ARGS)


@pytest.fixture(scope="module")
def runtime():
    out = run_unix(RUNTIME_SCRIPT)
    line = [ln for ln in out.splitlines() if ln.startswith("@@")][0]
    return json.loads(line[2:])


def test_stub_names_match_the_modules(runtime):
    funcs, other = stubs()
    assert not other, "stubs declare public non-functions the modules do not have: %s" % sorted(other)
    missing = sorted(set(runtime) - set(funcs))
    extra = sorted(set(funcs) - set(runtime))
    assert not missing, "functions of the native modules without a stub: %s" % missing
    assert not extra, "stubs of functions the native modules do not have: %s" % extra


def test_stub_arity_matches_the_bindings(runtime):
    """A stub may require an argument the binding only rejects later (conv
    scratch: accepted by the arity check, then a TypeError naming it), but
    must accept every count up to the binding's maximum."""
    funcs, _ = stubs()
    wrong = []
    for name, (mod, ok) in sorted(runtime.items()):
        if name not in funcs:
            continue
        lo, hi = funcs[name]
        if not ok or max(ok) != hi or min(ok) > lo or ok != list(range(min(ok), hi + 1)):
            wrong.append("%s.%s: stub takes %d..%d positional arguments, the binding %s"
                         % (mod, name, lo, hi, "%d..%d" % (min(ok), max(ok)) if ok else "none"))
    assert not wrong, "\n".join(wrong)


def test_stub_checker_catches_a_wrong_stub(tmp_path):
    """The parser the tests rely on sees defaults and rejects keyword parameters."""
    p = tmp_path / "_qtrain_x.pyi"
    p.write_text("def f(a: int, b: int = 0, /) -> int: ...\nX = 1\n_Y = 2\n")
    assert stub_functions(str(p)) == ({"f": (1, 2)}, {"X"})
    p.write_text("def f(a: int) -> int: ...\n")
    with pytest.raises(AssertionError, match="positional-only"):
        stub_functions(str(p))


# ---- the package: what type checkers and IDEs read (the source) == what runs --

def _is_false(test):
    return isinstance(test, ast.Constant) and test.value in (False, 0)


def _bound_names(body):
    """Names a block binds at module level, descending into if/try (not into
    `if False:`, the type-checker-only imports MicroPython compiles away)."""
    names, classes = set(), {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                classes[node.name] = {n.name for n in node.body
                                      if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Delete):
            names.difference_update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.If):
            for block in ([] if _is_false(node.test) else [node.body]) + [node.orelse]:
                n, c = _bound_names(block)
                names |= n
                classes.update(c)
        elif isinstance(node, ast.Try):
            for block in [node.body, node.orelse, node.finalbody] + [h.body for h in node.handlers]:
                n, c = _bound_names(block)
                names |= n
                classes.update(c)
    return names, classes


def package_modules():
    pkg = os.path.join(paths.PYTHON_DIR, "qtrain")
    out = {}
    for path in sorted(glob.glob(os.path.join(pkg, "*.py"))):
        base = os.path.basename(path)[:-3]
        name = "qtrain" if base == "__init__" else "qtrain." + base
        names, classes = _bound_names(ast.parse(open(path).read(), path).body)
        out[name] = ({n for n in names if not n.startswith("_")}, classes)
    return out


PACKAGE_SCRIPT = """
import json, sys
out = {}
for name in %r:
    __import__(name)
    m = sys.modules[name]
    pub = [n for n in dir(m) if not n.startswith("_")]
    out[name] = [pub, {n: dir(getattr(m, n)) for n in pub if isinstance(getattr(m, n), type)}]
print("@@" + json.dumps(out))
"""


def test_package_public_api_matches_the_source():
    """Every public module-level name and method the source declares (what
    mypy, pyright and IDEs show) exists on MicroPython, and MicroPython has no
    public module-level name the source does not declare."""
    static = package_modules()
    out = run_unix(PACKAGE_SCRIPT % (sorted(static),))
    line = [ln for ln in out.splitlines() if ln.startswith("@@")][0]
    runtime = json.loads(line[2:])
    wrong = []
    for mod, (names, classes) in sorted(static.items()):
        rt_names, rt_classes = runtime[mod]
        # Submodules appear in the package's dir() once imported: not API drift.
        rt = {n for n in rt_names if not (mod == "qtrain" and "qtrain." + n in static)}
        for n in sorted(names - rt):
            wrong.append("%s.%s: in the source, missing on MicroPython" % (mod, n))
        for n in sorted(rt - names):
            wrong.append("%s.%s: on MicroPython, not declared in the source" % (mod, n))
        for cls, methods in sorted(classes.items()):
            if cls in rt_classes:
                for meth in sorted(methods - set(rt_classes[cls])):
                    wrong.append("%s.%s.%s: in the source, missing on MicroPython" % (mod, cls, meth))
    assert not wrong, "\n".join(wrong)
