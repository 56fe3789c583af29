"""PEP 810 lazy imports (Python 3.15) through the hook, with the real pip and
uv, each scenario in a fresh interpreter: `lazy import x` installs at the
first use of `x`, a failed install surfaces there, a prefetch is waited
for, and the hook never takes a module out of sys.modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from _offline import installer_env
from test_real_installers import INSTALLERS, audit_lines, hook

from conftest import ROOT, Runner

needs_lazy_imports = pytest.mark.skipif(
    sys.version_info < (3, 15), reason="`lazy import` (PEP 810) is new in Python 3.15"
)
ALLOWLIST = {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0", "brokenmod": "broken-dist==1.0"}
Hooked = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def hooked(wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner) -> Hooked:
    """Runs `code` in a fresh interpreter after install(ALLOWLIST) with
    `installer`, offline from the wheelhouse (`env`: more variables)."""

    def run(installer: str, code: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_python(
            hook(target, installer, ALLOWLIST) + code, {**installer_env(wheelhouse, tmp_path), **env}
        )

    return run


@needs_lazy_imports
@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_lazy_import_installs_at_the_first_use(installer: str, hooked: Hooked, target: Path) -> None:
    code = (
        "before = dict(sys.modules)\n"
        "lazy import toymod\n"
        "print('bound; imported:', 'toymod' in sys.modules, file=sys.stderr, flush=True)\n"
        "def use():\n"
        "    return toymod.VERSION\n"
        "print('used', use(), file=sys.stderr, flush=True)\n"
        "print(json.dumps([name for name, m in before.items() if sys.modules.get(name) is not m]))\n"
    )
    result = hooked(installer, code)
    assert json.loads(result.stdout) == []  # nothing taken out of sys.modules, nothing replaced
    lines = [line for line in result.stderr.splitlines() if not line.startswith("  ")]
    assert lines[0] == "bound; imported: False"
    assert lines[1].startswith("lazy-import-hook: installing toy-dist==1.0 for 'import toymod'")
    assert lines[-1] == "used 1.0"


@needs_lazy_imports
@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_failed_install_surfaces_at_each_use_as_the_same_error(
    installer: str, hooked: Hooked, target: Path
) -> None:
    code = (
        "lazy import brokenmod\n"
        "errors = []\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        brokenmod.X\n"
        "    except ImportError as e:\n"
        "        errors.append(e)\n"
        "first, second = errors\n"
        "print(json.dumps([isinstance(first, lazy_import_hook.LazyInstallError), first.reason,\n"
        "                  first is second, str(first.__cause__), getattr(first, '__notes__', [])]))\n"
    )
    is_lazy_install_error, reason, same, cause, notes = json.loads(hooked(installer, code).stdout)
    assert (is_lazy_install_error, reason, same) == (True, "installer-failed", True)
    assert cause == "lazy import of 'brokenmod' raised an exception during resolution"
    assert any(note.startswith("lazy import of 'brokenmod' declared in") for note in notes)
    assert [line["status"] for line in audit_lines(target)] == [1]  # the second use ran no installer


@needs_lazy_imports
def test_lazy_modules_defers_a_plain_import_statement(hooked: Hooked, target: Path) -> None:
    code = (
        "__lazy_modules__ = ['toymod']  # ignored before 3.15: there the import is eager\n"
        "import toymod\n"
        "print('toymod' in sys.modules, toymod.VERSION)\n"
    )
    assert hooked("uv", code).stdout.split() == ["False", "1.0"]


@needs_lazy_imports
def test_the_first_use_waits_for_a_prefetch_of_the_name(hooked: Hooked, target: Path) -> None:
    code = (
        "lazy import othermod\n"
        "warm = lazy_import_hook.prefetch('othermod', wait=False)\n"
        "print(othermod.VERSION, json.dumps(warm.result()))\n"
    )
    result = hooked("uv", code)
    assert result.stdout.strip() == '1.0 {"othermod": "installed"}'
    assert [(line["status"], line.get("via")) for line in audit_lines(target)] == [(0, "prefetch")]
    assert "for 'import othermod'" not in result.stderr


@needs_lazy_imports
def test_optional_at_the_point_of_use_beside_lazy_imports(hooked: Hooked, target: Path) -> None:
    code = (
        "lazy import toymod\n"
        "def feature():\n"
        "    return lazy_import_hook.optional('toymod') is toymod, lazy_import_hook.optional('brokenmod')\n"
        "print(json.dumps(feature()))\n"
    )
    assert json.loads(hooked("uv", code).stdout) == [True, None]


@needs_lazy_imports
@pytest.mark.parametrize("installer", INSTALLERS)
def test_the_hook_works_when_every_import_is_lazy(installer: str, hooked: Hooked, target: Path) -> None:
    """PYTHON_LAZY_IMPORTS=all (or -X lazy_imports=all) makes the hook's own
    module-level imports lazy too; the installers never see it (pip breaks)."""
    code = (
        "import toymod, othermod\n"
        "warm = lazy_import_hook.prefetch('othermod', wait=False)\n"
        "print(sys.get_lazy_imports(), toymod.VERSION, othermod.VERSION, json.dumps(warm.result()))\n"
    )
    printed = hooked(installer, code, PYTHON_LAZY_IMPORTS="all").stdout.strip().split(maxsplit=3)
    assert printed == ["all", "1.0", "1.0", '{"othermod": "installed"}']
    assert all("PYTHON_LAZY_IMPORTS" in str(line["not_passed_on"]) for line in audit_lines(target))


READS = {f"sys.modules.{read}" for read in ("get", "items", "keys", "values", "copy")}
SET_ONLY = "sys.modules['usercustomize']"  # set to None: a target's usercustomize never runs


def changes_to_sys_modules(source: str) -> list[str]:
    """Every statement of `source` that deletes, pops, clears or sets an
    entry of sys.modules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = node.targets if isinstance(node, (ast.Delete, ast.Assign)) else []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            targets = [node.func]
        if any(ast.unparse(t).startswith("sys.modules") and ast.unparse(t) not in READS for t in targets):
            found.append(f"{getattr(node, 'lineno', 0)}: {ast.unparse(node)}")
    return found


def test_the_hook_never_takes_a_module_out_of_sys_modules() -> None:
    """A lazy binding, and code that stays loaded, may refer to any module by
    name: the package never deletes, pops or clears an entry of sys.modules."""
    found = [
        f"{path.name}:{change}"
        for path in sorted((ROOT / "lazy_import_hook").rglob("*.py"))
        for change in changes_to_sys_modules(path.read_text(encoding="utf-8"))
    ]
    assert [change for change in found if SET_ONLY not in change] == []
    probe = [
        "del sys.modules[n]",
        "sys.modules.pop(n)",
        "sys.modules.clear()",
        "sys.modules.get(n)",
        "x = sys.modules[n]",
    ]
    assert [line.split(":")[0] for line in changes_to_sys_modules("\n".join(probe))] == ["1", "2", "3"]
