"""The .pyi stubs of the native modules agree with the modules themselves.

python/stubs/<module>.pyi is what mypy, pyright and IDEs see for each native
module (_qtrain, _qtrain_float); the natmods are what runs.  Both directions
are checked on the Unix port, module by module: every public name of a stub
exists in its module and every function of a module has a stub, and each
stub's positional parameters accept exactly the argument counts the binding
accepts (the bindings check their arity before anything else, so calls with
n Nones tell which counts are allowed).  A function both modules hold (abi,
the conv geometry checks) is declared once and re-exported by the other stub
(`from _qtrain import abi as abi`), so each signature has one place.
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
    """A stub's public API: ({name: (required, maximum) positional arguments}
    of the functions it declares, {name: module} of the functions it
    re-exports (`from m import f as f`), the set of its other public names)."""
    tree = ast.parse(open(path).read(), path)
    funcs, reexports, other = {}, {}, set()
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
        elif isinstance(node, ast.ImportFrom):
            # In a stub only `from m import f as f` re-exports f (PEP 484);
            # other imports (array, typing, the shared buffer types) are private.
            reexports.update((al.name, node.module) for al in node.names
                             if al.asname == al.name and not al.name.startswith("_"))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            other.update(t.id for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_"))
    return funcs, reexports, other


def stubs():
    """({module: {name: (required, maximum)}} with re-exports resolved, the
    set of public non-functions the stubs declare)."""
    declared, reexported, other = {}, {}, set()
    files = sorted(glob.glob(os.path.join(STUB_DIR, "_qtrain*.pyi")))
    assert files, "no stubs in %s" % STUB_DIR
    for path in files:
        mod = os.path.basename(path)[:-4]
        f, r, o = stub_functions(path)
        for other_mod, g in declared.items():
            dup = set(f) & set(g)
            assert not dup, "%s: also declared in %s.pyi (re-export it instead): %s" % (
                path, other_mod, sorted(dup))
        declared[mod], reexported[mod] = f, r
        other |= o
    out = {}
    for mod, f in declared.items():
        out[mod] = dict(f)
        for name, src in reexported[mod].items():
            assert name in declared.get(src, {}), "%s.pyi re-exports %s.%s, which no stub declares" % (
                mod, src, name)
            out[mod][name] = declared[src][name]
    return out, other


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
    out[mod] = {}
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
        out[mod][name] = ok
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
    assert sorted(runtime) == sorted(NATIVE_MODULES), "native modules that do not import: %s" % (
        sorted(set(NATIVE_MODULES) - set(runtime)))
    assert sorted(funcs) == sorted(NATIVE_MODULES), "stub files: %s, modules: %s" % (
        sorted(funcs), sorted(NATIVE_MODULES))
    wrong = []
    for mod in NATIVE_MODULES:
        for name in sorted(set(runtime[mod]) - set(funcs[mod])):
            wrong.append("%s.%s: in the module, no stub in %s.pyi" % (mod, name, mod))
        for name in sorted(set(funcs[mod]) - set(runtime[mod])):
            wrong.append("%s.%s: in %s.pyi, not in the module" % (mod, name, mod))
    assert not wrong, "\n".join(wrong)


def test_stub_arity_matches_the_bindings(runtime):
    """A stub may require an argument the binding only rejects later (conv
    scratch: accepted by the arity check, then a TypeError naming it), but
    must accept every count up to the binding's maximum."""
    funcs, _ = stubs()
    wrong = []
    for mod, names in sorted(runtime.items()):
        for name, ok in sorted(names.items()):
            if name not in funcs.get(mod, {}):
                continue
            lo, hi = funcs[mod][name]
            if not ok or max(ok) != hi or min(ok) > lo or ok != list(range(min(ok), hi + 1)):
                wrong.append("%s.%s: stub takes %d..%d positional arguments, the binding %s"
                             % (mod, name, lo, hi, "%d..%d" % (min(ok), max(ok)) if ok else "none"))
    assert not wrong, "\n".join(wrong)


def test_stub_checker_catches_a_wrong_stub(tmp_path):
    """The parser the tests rely on sees defaults and re-exports (only the
    `import f as f` form, as type checkers do) and rejects keyword parameters."""
    p = tmp_path / "_qtrain_x.pyi"
    p.write_text("from array import array\nfrom _qtrain import _F32, abi as abi, crc32, rng_seed as seed\n"
                 "def f(a: int, b: int = 0, /) -> int: ...\nX = 1\n_Y = 2\n")
    assert stub_functions(str(p)) == ({"f": (1, 2)}, {"abi": "_qtrain"}, {"X"})
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
