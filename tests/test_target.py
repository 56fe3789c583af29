"""The durable target: ABI stamp and wipe, sys.path activation."""

from __future__ import annotations

import os
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
    (target / "extra").mkdir()
    (target / "x.pth").write_text("# comment\nextra\nmissing-folder\nimport os\n")
    before = list(sys.path)
    lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)
    assert sys.path[: len(before)] == before
    assert sys.path[len(before) :] == [str(target), str(target / "extra")]
    lazy_import_hook.install({"mod_a": "dist-a==1.0"}, target=target)  # warm: same result
    assert sys.path[len(before) :] == [str(target), str(target / "extra")]
