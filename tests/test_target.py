"""The durable target: ABI stamp and wipe, sys.path activation."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from _fakes import write_dist

import lazy_import_hook
from lazy_import_hook import _target


class Crash(BaseException):
    pass


def foreign_target(target: Path) -> None:
    target.mkdir()
    (target / ".python-abi").write_text("cpython-27-linux-x86_64-64bit\n")
    for name in ("a", "b", "c"):
        write_dist(str(target), f"dist-{name}", "1.0", {f"mod_{name}/__init__.py": ""})


def test_an_interrupted_wipe_is_never_stamped_valid_and_is_finished_later(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign_target(target)
    real = os.rename
    calls = []

    def crash_on_third(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 3:
            raise Crash
        real(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_third)
    with pytest.raises(Crash):
        lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)
    monkeypatch.setattr(os, "rename", real)
    assert _target.read_stamp(str(target)) is None  # not valid for anyone
    assert _target.needs_wipe(str(target))  # the next start finishes the job
    with pytest.warns(RuntimeWarning, match="built for another Python"):
        lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)
    assert _target.read_stamp(str(target)) == _target.abi_tag()
    assert not _target.needs_wipe(str(target))
    assert not list(target.glob("mod_*")) and not list(target.glob("*.dist-info"))


def test_an_unstamped_folder_is_adopted_not_wiped(target: Path) -> None:
    target.mkdir()
    write_dist(str(target), "dist-a", "1.0", {"mod_a/__init__.py": "A = 1\n"})
    lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)
    assert _target.read_stamp(str(target)) == _target.abi_tag()
    import mod_a  # type: ignore[import-not-found]

    assert mod_a.A == 1


def test_the_target_and_its_pth_paths_go_to_the_end_of_sys_path(target: Path) -> None:
    target.mkdir()
    write_dist(
        str(target),
        "pth-dist",
        "1.0",
        {"x.pth": "# comment\nextra\nmissing-folder\nimport os\n", "extra/m.py": ""},
    )
    before = list(sys.path)
    lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)
    assert sys.path[: len(before)] == before
    assert sys.path[len(before) :] == [str(target), str(target / "extra")]
    lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)  # warm: same result
    assert sys.path[len(before) :] == [str(target), str(target / "extra")]


def test_a_folder_with_foreign_files_is_never_adopted(target: Path) -> None:
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    write_dist(str(target), "dist-a", "1.0", {"mod_a/__init__.py": ""})
    with pytest.raises(lazy_import_hook.ConfigError, match=r"notes\.txt"):
        lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)
    assert (target / "notes.txt").read_text() == "mine\n"
    assert not (target / ".python-abi").exists()


def test_a_module_without_its_dist_info_is_never_served(target: Path) -> None:
    """What an upgrade interrupted between its first and last rename leaves."""
    target.mkdir()
    write_dist(str(target), "dist-a", "1.0", {"mod_a/__init__.py": ""})
    lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)  # a managed target
    for dist_info in target.glob("*.dist-info"):
        shutil.rmtree(dist_info)
    (target / "mod_a" / "__init__.py").unlink()
    (target / "mod_a" / "__init__.py").write_text("VERSION = 'old'\n")
    finder = lazy_import_hook.install(
        {"mod_a": "dist-a==2.0"}, target=target, enabled=False
    )
    assert finder.hidden == {"mod_a"}
    with pytest.raises(lazy_import_hook.LazyInstallError) as info:
        import mod_a  # noqa: F401
    assert info.value.reason == "disabled"
