"""Shared fixtures: import-state isolation, a clean environment, the wheelhouse."""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tests"))

from _wheelhouse import build_sdist, build_wheel

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).parent


def _loaded_from(module: object, roots: Sequence[str]) -> bool:
    """Whether a module was loaded from under one of *roots*: its file decides;
    a namespace package (no file) is, if any of its folders is."""
    spec = getattr(module, "__spec__", None)
    found: list[object] = [getattr(module, "__file__", None), getattr(spec, "origin", None)]
    files = [p for p in found if isinstance(p, str) and os.path.isabs(p)]  # not "built-in"
    if not files:
        try:
            files = [str(p) for p in getattr(spec, "submodule_search_locations", None) or ()]
        except Exception:  # an odd __path__ object: keep the module
            return False
    for path in files:
        real = os.path.realpath(path)
        if any(real == root or real.startswith(root + os.sep) for root in roots):
            return True
    return False


@contextlib.contextmanager
def import_state_restored(owned: Sequence[Path]) -> Iterator[None]:
    """Import state is global: put sys.meta_path, sys.path_hooks, sys.path,
    sys.modules and the path-importer cache back as they were, forgetting every module imported
    meanwhile from under *owned* (the tests' temporary folders: the toy
    packages a test installs, so no test sees another's).

    A module imported meanwhile from anywhere else (the standard library,
    site-packages, this project) or from nowhere (built-in, made in memory)
    stays: code that stays loaded may still refer to it by name. A PEP 810
    lazy import (``__lazy_modules__``, as in packaging 26 on 3.15) resolves
    on first use through sys.modules: forgetting the module makes that use
    import a second copy, whose classes differ from the first's, and
    ``except ParserSyntaxError`` stops matching.
    """
    roots = [os.path.realpath(root) for root in owned]
    meta_path = list(sys.meta_path)
    path_hooks = list(sys.path_hooks)
    path = list(sys.path)
    modules = dict(sys.modules)
    importer_cache = dict(sys.path_importer_cache)
    try:
        yield
    finally:
        sys.meta_path[:] = meta_path
        sys.path_hooks[:] = path_hooks
        sys.path[:] = path
        # Decide before deleting: a namespace package's folders are computed
        # from its parent's, which must still be there.
        forget = [
            (name, module)
            for name, module in list(sys.modules.items())
            if name not in modules and _loaded_from(module, roots)
        ]
        for name, module in forget:
            del sys.modules[name]
            # A kept parent package must not hand the forgotten module out either.
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and getattr(sys.modules[parent], child, None) is module:
                delattr(sys.modules[parent], child)
        sys.modules.update(modules)
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(importer_cache)
        importlib.invalidate_caches()


@pytest.fixture(autouse=True)
def isolated_imports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test's temporary folders lie under the session's base folder."""
    with import_state_restored([tmp_path_factory.getbasetemp()]):
        yield


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of the machine or the developer leaks into a test."""
    for key in list(os.environ):
        if key.startswith("LAZY_IMPORT_HOOK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LAZY_IMPORT_HOOK_CACHE_DIR", str(tmp_path / "user-cache"))


@pytest.fixture(autouse=True)
def installer_commands_as_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process the fake installers (pytest-subprocess) see the command
    as the installer object built it, through subprocess.Popen (which they
    replace), without the setpriv wrapper that makes a real installer die
    with its parent (tested in a real child instead)."""
    from lazy_import_hook import _process

    monkeypatch.setattr(_process, "_SETPRIV", [None])
    monkeypatch.setattr(_process, "POSIX_SPAWN", False)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "target"


def module_files(name: str, body: str) -> dict[str, str]:
    return {f"{name}/__init__.py": textwrap.dedent(body)}


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small wheels built by the test session itself: no network, no build tools."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    build_wheel(wh, "toy-dep", "1.0", module_files("toydep", "VERSION = '1.0'\n"))
    build_wheel(wh, "toy-dep", "2.0", module_files("toydep", "VERSION = '2.0'\n"))
    for version in ("1.0", "2.0"):
        # The import name (toymod) differs from the distribution name (toy-dist).
        build_wheel(
            wh,
            "toy-dist",
            version,
            {
                "toymod/__init__.py": f"import toydep\nVERSION = {version!r}\nDEP = toydep.VERSION\n",
                "toymod/extra.py": "EXTRA = True\n",
            },
            requires=["toy-dep>=1.0"],
        )
    build_wheel(wh, "other-dist", "1.0", module_files("othermod", "VERSION = '1.0'\n"))
    # Ships its own copy of a core package: it must never shadow the real one.
    build_wheel(
        wh,
        "shadow-dist",
        "1.0",
        {
            "packaging/__init__.py": "SENTINEL = 'shadow copy from the target'\n",
            "shadowmod/__init__.py": "import packaging\nCORE_PACKAGING = packaging.__file__\n",
        },
    )
    build_wheel(
        wh,
        "pth-dist",
        "1.0",
        {
            "pth_dist.pth": "pth_extra\nimport builtins; builtins.PTH_IMPORT_RAN = True\n",
            "pth_extra/pthmod.py": "WHERE = 'pth_extra'\n",
            "pthpkg/__init__.py": "READY = True\n",
        },
    )
    build_wheel(
        wh,
        "broken-dist",
        "1.0",
        module_files("brokenmod", "X = 1\n"),
        requires=["dependency-that-exists-nowhere==9.9"],
    )
    build_wheel(wh, "misnamed-dist", "1.0", module_files("actual_name", "X = 1\n"))
    build_sdist(wh, "sdist-only", "1.0", {"sdistmod/__init__.py": "BUILT = True\n"})
    # A wheel for the new version, only a source archive for the old one.
    build_wheel(wh, "older-sdist", "2.0", module_files("oldersdist", "X = 2\n"))
    build_sdist(wh, "older-sdist", "1.0", {"oldersdist/__init__.py": "X = 1\n"})
    # Needs another version of a package the application itself has.
    needs = ["packaging<20"]
    build_wheel(wh, "needs-old-packaging", "1.0", module_files("oldpackmod", "X = 1\n"), requires=needs)
    build_wheel(
        wh, "tool-dist", "1.0", module_files("toolmod", "def main():\n    print('tool ran')\n"),
        entry_points="[console_scripts]\ntoolcmd = toolmod:main\n",
    )  # fmt: skip
    # Stands in for the real isodate when the README's examples run offline.
    build_wheel(wh, "isodate", "0.7.2", module_files("isodate", "__version__ = '0.7.2 (toy)'\n"))
    return wh


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_python(tmp_path: Path) -> Runner:
    """Run code in a fresh interpreter (import state is global)."""

    def run(
        code: str,
        env: dict[str, str],
        *,
        cwd: Path | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=env,
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"child failed ({proc.returncode}):\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    return run


# Property tests: many examples, and deterministic in CI.
try:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass
