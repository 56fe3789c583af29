"""The package's structure: layers that import only downward, short functions,
one settings table, and a warm start that stays light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lazy_import_hook
from conftest import ROOT
from lazy_import_hook._settings import Settings

PACKAGE = ROOT / "lazy_import_hook"

# The layers, bottom first. A module may import only from layers below its
# own (at the top of the file or inside a function, where imports are
# deferred to keep the warm start cheap). This list is the one place the
# order is written; the README's Development section draws it.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["_errors", "_files", "_child", "_trust"]),
    ("the target folder", ["_target"]),
    ("what a folder holds, whether it is safe", ["_distributions", "_safety"]),
    ("mechanisms", ["_pth", "_pipconf", "_process", "_lock", "_audit", "_staging", "_lockfile", "_layers",
                    "_constraints"]),
    ("verify against RECORDs", ["_verify"]),
    ("import machinery", ["_loader"]),
    ("installer interface, notices", ["_installer", "_watch", "_provenance"]),
    ("installers", ["_uv", "_pip"]),
    ("installer registry", ["_installers"]),
    ("settings table", ["_settings"]),
    ("plan and startup cache", ["_plan"]),
    ("allowlist, failure records, startup", ["_allowlist", "_holdings", "_failures", "_prepare", "_records"]),
    ("configuration, core environment", ["_config", "_environment", "_job"]),
    ("the slow start", ["_settle"]),
    ("locking", ["_locker"]),
    ("bundles", ["_bundle"]),
    ("one installer run", ["_run"]),
    ("one install", ["_transaction"]),
    ("serving an import", ["_serve"]),
    ("the finder", ["_finder"]),
    ("prefetch, optional imports", ["_prefetch", "_optional"]),
    ("multiprocessing's workers", ["_workers"]),
    ("public surface", ["_hook"]),
    ("a Dask worker plugin", ["_dask"]),
    ("pruning, status", ["_prune", "_status"]),
    ("the command line", ["_cli"]),
    ("entry points", ["__init__", "__main__", "_autostart.sitecustomize"]),
]
LAYER_OF = {module: i for i, (_, modules) in enumerate(LAYERS) for module in modules}


def package_modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        found[".".join(path.relative_to(PACKAGE).with_suffix("").parts)] = path
    return found


def internal_imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module of this package) for every import in the file."""
    found = []
    package_parts = module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                names = [node.module] if node.module else [a.name for a in node.names]
                found += [(node.lineno, ".".join([*base, n])) for n in names]
            elif node.module and node.module.startswith("lazy_import_hook."):
                found.append((node.lineno, node.module.removeprefix("lazy_import_hook.")))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name.removeprefix("lazy_import_hook."))
                for a in node.names
                if a.name.startswith("lazy_import_hook.")
            ]
    return found


def test_every_module_has_a_layer() -> None:
    assert sorted(package_modules()) == sorted(LAYER_OF)


def test_imports_point_only_to_lower_layers() -> None:
    wrong = []
    for module, path in package_modules().items():
        for line, imported in internal_imports(path, module):
            if imported not in LAYER_OF:
                wrong.append(f"{path.name}:{line} imports unknown module {imported}")
            elif LAYER_OF[imported] >= LAYER_OF[module]:
                wrong.append(
                    f"{path.name}:{line} ({LAYERS[LAYER_OF[module]][0]}) imports {imported} "
                    f"({LAYERS[LAYER_OF[imported]][0]})"
                )
    assert not wrong, "\n".join(wrong)


def test_the_layer_test_sees_function_local_imports(tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from ._hook import install\n    from . import _cli, _plan\n")
    assert internal_imports(path, "_target") == [(2, "_hook"), (3, "_cli"), (3, "_plan")]


def test_the_readme_draws_these_layers() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    drawing = re.search(r"<!-- layers -->\n```text\n(.*?)```", readme, re.S)
    assert drawing is not None, "the README's Development section must draw the layers"
    expected = "".join(
        f"{name:<34} {', '.join(m.removeprefix('_autostart.') for m in modules)}\n"
        for name, modules in reversed(LAYERS)
    )
    assert drawing.group(1) == expected


def test_every_function_is_short() -> None:
    long = []
    for module, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 40:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, long


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| setting |") :].split("\n\n", 1)[0]
    for row in Settings.rows():
        assert f"`{row.name}=`" in table, f"README configuration table lacks {row.name}"
        assert f"`{row.key}`" in table, f"README configuration table lacks the key {row.key}"
        if row.env:
            assert f"`{row.env}" in table, f"README configuration table lacks {row.env}"


def test_install_refuses_an_unknown_setting(tmp_path: Path) -> None:
    said = r"unknown setting.*retry_afer \(did you mean retry_after\?\), zzz; known: target"
    with pytest.raises(TypeError, match=said):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=tmp_path, retry_afer=3, zzz=1)


def test_install_documents_every_setting() -> None:
    doc = lazy_import_hook.install.__doc__ or ""
    for row in Settings.rows():
        assert f"    {row.name}: " in doc


HEAVY = [
    "packaging", "tomllib", "tomli", "importlib.metadata", "subprocess", "logging", "json", "multiprocessing",
]  # fmt: skip


# The package's modules a warm start loads. Each costs a start ~0.2 ms, however
# small (budget 1 is 5 ms in all): one more on this list is a decision.
WARM_SUBMODULES = ("_finder", "_hook", "_plan", "_settings", "_target")
WARM = ["lazy_import_hook", *(f"lazy_import_hook.{m}" for m in WARM_SUBMODULES)]


@pytest.mark.parametrize("source", ["arguments", "pyproject"])
def test_the_warm_start_imports_nothing_heavy(source: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.lazy-import-hook]\ntarget = "{target}"\ntimeout = 30\n'
        '[tool.lazy-import-hook.allowlist]\ntoymod = "toy-dist==1.0"\nyaml = "PyYAML>=6"\n'
    )
    call = (
        "lazy_import_hook.install()"
        if source == "pyproject"
        else f"lazy_import_hook.install({{'toymod': 'toy-dist==1.0'}}, target={str(target)!r})"
    )
    code = (
        "import sys\n"
        f"before = set(sys.modules)\nimport lazy_import_hook\n{call}\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before)\n"
        "print(repr((heavy, sorted(m for m in sys.modules if m.startswith('lazy_import_hook')))))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "LAZY_IMPORT_HOOK_CACHE_DIR": str(tmp_path / "cache")}

    def start() -> tuple[list[str], list[str]]:
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        heavy, ours = ast.literal_eval(proc.stdout.strip())
        return list(heavy), list(ours)

    cold = start()
    assert "packaging" in cold[0]  # the first start validates: the test can tell the two apart
    assert start() == ([], WARM)


def test_the_variables_read_before_the_package_loads_are_the_packages_own() -> None:
    """Two places read a variable of _child without importing it, for speed:
    install() (the installer marker) and the child's sitecustomize (the plan)."""
    from lazy_import_hook import _child, _hook

    assert _hook.INSIDE_INSTALLER == _child.INSIDE_INSTALLER
    sitecustomize = (PACKAGE / "_autostart" / "sitecustomize.py").read_text(encoding="utf-8")
    assert f'os.environ.get("{_child.CHILD_PLAN}")' in sitecustomize
