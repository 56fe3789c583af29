"""`optional(name)`: the module, or None when it cannot be had, and never a
swallowed error that says something else (unit tier, fake installers)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from _fakes import PIP, installs, write_dist

import lazy_import_hook
from lazy_import_hook import LazyInstallError

TOY = {"toymod/__init__.py": "VERSION = '1.0'\n"}


def on_path(folder: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    sys.path.insert(0, str(folder))


def test_without_the_hook_it_is_a_plain_optional_import(tmp_path: Path) -> None:
    lazy_import_hook.uninstall()
    assert lazy_import_hook.optional("json") is json
    assert lazy_import_hook.optional("no_such_module_anywhere") is None
    assert lazy_import_hook.optional("json.no_such_submodule") is None
    assert lazy_import_hook.optional("no_such_package.sub") is None


def test_an_allow_listed_name_is_installed_at_the_call(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    module = lazy_import_hook.optional("toymod")
    assert module is not None and module.VERSION == "1.0"
    assert lazy_import_hook.optional("toymod") is module
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_a_name_off_the_allowlist_is_none_with_no_installer(fp: Any, target: Path) -> None:
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    assert lazy_import_hook.optional("othermod") is None
    assert fp.call_count([*PIP, fp.any()]) == 0


def test_a_failed_install_is_none_and_is_not_retried_at_once(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: No matching distribution\n", returncode=1)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    assert lazy_import_hook.optional("toymod") is None
    assert lazy_import_hook.optional("toymod") is None
    assert fp.call_count([*PIP, fp.any()]) == 1
    with pytest.raises(LazyInstallError) as info:  # the reason is one import away
        import toymod  # noqa: F401
    assert info.value.reason == "installer-failed"


@pytest.mark.parametrize("why", ["disabled", "marker"])
def test_disabled_installs_and_false_markers_give_none(why: str, fp: Any, target: Path) -> None:
    marker = "; sys_platform == 'no-such-platform'" if why == "marker" else ""
    lazy_import_hook.install(
        {"toymod": f"toy-dist==1.0{marker}"}, target=target, installer="pip", enabled=why != "disabled"
    )
    assert lazy_import_hook.optional("toymod") is None
    assert fp.call_count([*PIP, fp.any()]) == 0


def test_the_parent_of_one_dotted_entry_that_fails_is_none(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: No matching distribution\n", returncode=1)
    lazy_import_hook.install({"nsroot.cloud.storage": "ns-storage==1.0"}, target=target, installer="pip")
    assert lazy_import_hook.optional("nsroot") is None  # its import installs the entry below it


def test_a_module_that_is_there_but_broken_is_an_error(target: Path, tmp_path: Path) -> None:
    write_dist(str(target), "toy-dist", "1.0", {"toymod/__init__.py": "def broken(:\n"})
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    with pytest.raises(SyntaxError):
        lazy_import_hook.optional("toymod")
    on_path(
        tmp_path / "lib",
        {
            "needsdep/__init__.py": "import dependency_it_lacks\n",
            "halfpkg/__init__.py": "from .missing_part import x\n",
            "wrongname/__init__.py": "from json import no_such_name\n",
        },
    )
    with pytest.raises(ModuleNotFoundError) as info:
        lazy_import_hook.optional("needsdep")  # there, but its dependency is not: a broken install
    assert info.value.name == "dependency_it_lacks"
    with pytest.raises(ModuleNotFoundError) as info:
        lazy_import_hook.optional("halfpkg")  # a part of it is missing: broken too
    assert info.value.name == "halfpkg.missing_part"
    with pytest.raises(ImportError, match="no_such_name"):
        lazy_import_hook.optional("wrongname")


def test_ctrl_c_and_other_errors_propagate(tmp_path: Path) -> None:
    on_path(
        tmp_path / "lib",
        {"interrupted_mod.py": "raise KeyboardInterrupt\n", "failing_mod.py": "raise RuntimeError('boom')\n"},
    )
    with pytest.raises(KeyboardInterrupt):
        lazy_import_hook.optional("interrupted_mod")
    with pytest.raises(RuntimeError, match="boom"):
        lazy_import_hook.optional("failing_mod")


def test_a_package_whose_own_import_of_an_entry_fails_is_an_error(
    fp: Any, target: Path, tmp_path: Path
) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: No matching distribution\n", returncode=1)
    on_path(tmp_path / "lib", {"corepkg/__init__.py": "import corepkg.accel\n"})
    lazy_import_hook.install({"corepkg.accel": "corepkg-accel==1.0"}, target=target, installer="pip")
    with pytest.raises(LazyInstallError) as info:
        lazy_import_hook.optional("corepkg")  # there, and broken: not a missing feature
    assert info.value.name == "corepkg.accel"
