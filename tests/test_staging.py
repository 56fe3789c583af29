"""The staged commit: a crash at any step leaves the target consistent."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakes import write_dist

from lazy_import_hook import _staging

OLD = {"othermod/__init__.py": "X = 1\n"}


def toy(version: str) -> dict[str, str]:
    return {
        "toymod/__init__.py": f"import toydep\nVERSION = {version!r}\n",
        "toymod/extra.py": "",
        f"toymod/only_in_{version.replace('.', '_')}.py": "",
    }


def dep(version: str) -> dict[str, str]:
    return {"toydep/__init__.py": f"VERSION = {version!r}\n", "toydep_helpers.py": ""}


def stage(target: Path, toy_version: str, dep_version: str) -> str:
    staging = _staging.new_staging(str(target))
    write_dist(staging, "toy-dist", toy_version, toy(toy_version))
    write_dist(staging, "toy-dep", dep_version, dep(dep_version))
    return staging


def whole(target: Path) -> dict[str, bool]:
    """Every *.dist-info in the target: are all the files its RECORD lists there?"""
    result = {}
    for info in target.glob("*.dist-info"):
        with open(info / "RECORD", newline="") as f:
            paths = [row[0] for row in csv.reader(f) if row]
        result[info.name] = all((target / p).exists() for p in paths)
    return result


def link_away(folder: Path, elsewhere: Path) -> None:
    """Move `folder` to `elsewhere` and leave a symbolic link to it in its place."""
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)


def prepared(target: Path) -> None:
    target.mkdir()
    write_dist(str(target), "other-dist", "1.0", OLD)
    write_dist(str(target), "toy-dist", "1.0", toy("1.0"))
    write_dist(str(target), "toy-dep", "1.0", dep("1.0"))


def test_an_upgrade_leaves_exactly_one_dist_info_per_distribution(target: Path) -> None:
    prepared(target)
    infos = _staging.commit(stage(target, "2.0", "2.0"), str(target), ["toymod"], ["toy-dist"])
    assert infos == ["toy_dep-2.0.dist-info", "toy_dist-2.0.dist-info"]
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "other_dist-1.0.dist-info", "toy_dep-2.0.dist-info", "toy_dist-2.0.dist-info",
    ]  # fmt: skip
    assert not (target / "toymod" / "only_in_1_0.py").exists()
    assert (target / "toymod" / "only_in_2_0.py").exists()
    assert all(whole(target).values())
    assert not list((target / ".lazy-import-hook").glob("trash/*"))


def test_an_upgrade_replaces_a_linked_package_folder_and_never_touches_what_it_points_to(
    target: Path, tmp_path: Path
) -> None:
    """The link goes (as a folder would, whole); the folder it points to, and
    the old version's files in it, stay as they are."""
    prepared(target)
    elsewhere = tmp_path / "checkout"
    link_away(target / "toymod", elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    _staging.commit(stage(target, "2.0", "1.0"), str(target), ["toymod"], ["toy-dist"])
    assert sorted(p.name for p in elsewhere.iterdir()) == before
    assert not (target / "toymod").is_symlink()
    assert (target / "toymod" / "only_in_2_0.py").exists()
    assert not (target / "toymod" / "only_in_1_0.py").exists()
    assert all(whole(target).values())


def test_an_upgrade_removes_no_leftover_through_a_linked_folder(target: Path, tmp_path: Path) -> None:
    """A file only the old version had, in a folder linked from elsewhere:
    the link goes, what it points to stays."""
    target.mkdir()
    write_dist(str(target), "toy-dep", "1.0", {**dep("1.0"), "toydep_data/old.txt": ""})
    elsewhere = tmp_path / "data"
    link_away(target / "toydep_data", elsewhere)
    staging = _staging.new_staging(str(target))
    write_dist(staging, "toy-dep", "2.0", dep("2.0"))
    _staging.commit(staging, str(target), ["toydep"], ["toy-dep"])
    assert (elsewhere / "old.txt").exists()
    assert not os.path.lexists(target / "toydep_data")
    assert all(whole(target).values())


def test_a_linked_folder_other_distributions_live_behind_is_never_replaced(
    target: Path, tmp_path: Path
) -> None:
    """A namespace folder linked from elsewhere that a kept distribution's
    files live behind: the install stops with an error that says so, and
    what was installed stays visible."""
    target.mkdir()
    write_dist(str(target), "proto", "4.0", {"gns/proto/__init__.py": ""})
    elsewhere = tmp_path / "gns"
    link_away(target / "gns", elsewhere)
    staging = _staging.new_staging(str(target))
    write_dist(staging, "storage", "1.0", {"gns/storage/__init__.py": ""})
    with pytest.raises(OSError, match=r"symbolic link .* make it a real folder"):
        _staging.commit(staging, str(target), ["gns.storage"], ["storage"])
    assert (target / "gns").is_symlink() and (target / "gns" / "proto" / "__init__.py").exists()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["proto"]


def test_an_upgrade_keeps_a_linked_folder_another_distribution_lives_behind(
    target: Path, tmp_path: Path
) -> None:
    """A file only the old version had, behind a link that another
    distribution's files share: the file stays and so does the link."""
    target.mkdir()
    write_dist(str(target), "toy-dep", "1.0", {**dep("1.0"), "shared/dep_extra.py": ""})
    write_dist(str(target), "other-dist", "1.0", {**OLD, "shared/other.py": ""})
    elsewhere = tmp_path / "shared"
    link_away(target / "shared", elsewhere)
    staging = _staging.new_staging(str(target))
    write_dist(staging, "toy-dep", "2.0", dep("2.0"))
    _staging.commit(staging, str(target), ["toydep"], ["toy-dep"])
    assert (target / "shared").is_symlink() and (target / "shared" / "other.py").exists()
    assert (elsewhere / "dep_extra.py").exists()


def test_an_upgrade_takes_the_compiled_files_of_what_the_old_version_alone_had(target: Path) -> None:
    """uv lists no .pyc: a package the new version dropped must not stay
    behind as a __pycache__ folder, which imports as a namespace package."""
    target.mkdir()
    write_dist(str(target), "toy-dep", "1.0", {**dep("1.0"), "toydep_old/__init__.py": ""})
    cache = target / "toydep_old" / "__pycache__"
    cache.mkdir()
    (cache / "__init__.cpython-311.pyc").write_bytes(b"")
    staging = _staging.new_staging(str(target))
    write_dist(staging, "toy-dep", "2.0", dep("2.0"))
    _staging.commit(staging, str(target), ["toydep"], ["toy-dep"])
    assert not (target / "toydep_old").exists()


def test_a_distribution_already_there_at_the_same_version_is_left_alone(target: Path) -> None:
    prepared(target)
    before = os.stat(target / "toydep" / "__init__.py").st_ino
    _staging.commit(stage(target, "2.0", "1.0"), str(target), ["toymod"], ["toy-dist"])
    assert os.stat(target / "toydep" / "__init__.py").st_ino == before


def test_a_requested_distribution_already_whole_here_is_left_alone_and_staging_emptied(target: Path) -> None:
    """Its staged copy is dropped file by file, and the folders that leaves
    empty with it: an empty staged toymod/ would replace the real one."""
    prepared(target)
    before = os.stat(target / "toymod" / "extra.py").st_ino
    staging = stage(target, "1.0", "2.0")
    _staging.commit(staging, str(target), ["toymod"], ["toy-dist"])
    assert os.stat(target / "toymod" / "extra.py").st_ino == before
    assert (target / "toymod" / "only_in_1_0.py").exists()
    assert (target / "toydep" / "__init__.py").read_text() == "VERSION = '2.0'\n"
    assert all(whole(target).values())
    assert not os.path.exists(staging) and not os.listdir(_staging.staging_root(str(target)))


@pytest.mark.parametrize("made_by_the_installer", ["an empty folder", "a compiled file"])
def test_what_the_installer_made_beside_a_kept_distribution_never_replaces_it(
    made_by_the_installer: str, target: Path
) -> None:
    """uv lists neither in RECORD: the empty folder of a wheel's folder entry,
    the .pyc files it compiles. Left in staging, either made toymod/ a folder
    that replaced the real one."""
    prepared(target)
    staging = stage(target, "1.0", "2.0")
    if made_by_the_installer == "an empty folder":
        os.makedirs(os.path.join(staging, "toymod", "data"))
    else:
        os.makedirs(os.path.join(staging, "toymod", "__pycache__"))
        Path(staging, "toymod", "__pycache__", "__init__.cpython-311.pyc").write_bytes(b"new")
        os.makedirs(os.path.join(staging, "__pycache__"))
        Path(staging, "__pycache__", "toydep_helpers.cpython-311.pyc").write_bytes(b"new dep")
    before = os.stat(target / "toymod" / "__init__.py").st_ino
    _staging.commit(staging, str(target), ["toymod"], ["toy-dist"])
    assert os.stat(target / "toymod" / "__init__.py").st_ino == before
    assert not (target / "toymod" / "data").exists()
    assert not (target / "toymod" / "__pycache__").exists()
    assert (target / "toydep" / "__init__.py").read_text() == "VERSION = '2.0'\n"
    if made_by_the_installer == "a compiled file":  # the upgraded toy-dep's own compiled file goes in
        assert (target / "__pycache__" / "toydep_helpers.cpython-311.pyc").read_bytes() == b"new dep"
    assert all(whole(target).values())


def test_a_kept_distribution_leaves_a_shared_folder_to_the_others(target: Path) -> None:
    """A namespace folder two distributions install into: the kept one's
    files (and compiled files) stay out, the new one's go in."""
    target.mkdir()
    write_dist(str(target), "ns-a", "1.0", {"nsroot/a/__init__.py": "A = 1\n"})
    staging = _staging.new_staging(str(target))
    write_dist(staging, "ns-a", "1.0", {"nsroot/a/__init__.py": "A = 1\n"})
    write_dist(staging, "ns-b", "1.0", {"nsroot/b/__init__.py": "B = 1\n"})
    os.makedirs(os.path.join(staging, "nsroot", "a", "__pycache__"))
    Path(staging, "nsroot", "a", "__pycache__", "__init__.cpython-311.pyc").write_bytes(b"x")
    before = os.stat(target / "nsroot" / "a" / "__init__.py").st_ino
    _staging.commit(staging, str(target), ["nsroot.b"], ["ns-b"])
    assert os.stat(target / "nsroot" / "a" / "__init__.py").st_ino == before
    assert not (target / "nsroot" / "a" / "__pycache__").exists()
    assert (target / "nsroot" / "b" / "__init__.py").read_text() == "B = 1\n"
    assert all(whole(target).values())


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


@contextlib.contextmanager
def renames_until(crash_at: int | None) -> Iterator[list[int]]:
    """Count the renames a commit makes; raise Crash instead of the one numbered `crash_at`."""
    done = [0]
    real = {"replace": os.replace, "rename": os.rename}

    def wrap(name: str) -> Callable[..., None]:
        def inner(*args: Any, **kwargs: Any) -> None:
            if done[0] == crash_at:
                raise Crash
            done[0] += 1
            real[name](*args, **kwargs)

        return inner

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", wrap("replace"))
        mp.setattr(os, "rename", wrap("rename"))
        yield done


def test_a_crash_at_any_step_of_a_commit_keeps_the_target_consistent(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    prepared(probe)
    with renames_until(None) as done:
        _staging.commit(stage(probe, "2.0", "2.0"), str(probe), ["toymod"], ["toy-dist"])
    steps = done[0]
    assert steps >= 6
    for crash_at in range(steps):
        target = tmp_path / f"t{crash_at}"
        prepared(target)
        staging = stage(target, "2.0", "2.0")
        with renames_until(crash_at), pytest.raises(Crash):
            _staging.commit(staging, str(target), ["toymod"], ["toy-dist"])
        # Earlier packages are untouched; every dist-info present is whole.
        assert (target / "othermod" / "__init__.py").read_text() == "X = 1\n"
        assert all(whole(target).values()), (crash_at, whole(target))
        # The requested module is visible only when everything it needs is.
        if (target / "toymod" / "__init__.py").exists():
            assert (target / "toydep" / "__init__.py").exists(), crash_at
        # The next run cleans up and commits cleanly.
        _staging.clean_leftovers(str(target))
        assert not (target / ".lazy-import-hook" / "staging").exists()
        _staging.commit(stage(target, "2.0", "2.0"), str(target), ["toymod"], ["toy-dist"])
        assert sorted(whole(target)) == [
            "other_dist-1.0.dist-info", "toy_dep-2.0.dist-info", "toy_dist-2.0.dist-info",
        ], crash_at  # fmt: skip
        assert all(whole(target).values())
        assert (target / "toymod" / "__init__.py").read_text().endswith("VERSION = '2.0'\n")


def test_a_folder_two_distributions_share_is_merged_not_replaced(target: Path) -> None:
    target.mkdir()
    write_dist(str(target), "ns-a", "1.0", {"ns/__init__.py": "", "ns/a.py": "A = 1\n"})
    staging = _staging.new_staging(str(target))
    write_dist(staging, "ns-b", "1.0", {"ns/__init__.py": "", "ns/b.py": "B = 1\n"})
    _staging.commit(staging, str(target), ["ns.b"], ["ns-b"])
    assert (target / "ns" / "a.py").exists() and (target / "ns" / "b.py").exists()
    assert all(whole(target).values())


def test_a_damaged_copy_at_the_same_version_is_repaired(target: Path) -> None:
    prepared(target)
    (target / "toydep" / "__init__.py").unlink()
    _staging.commit(stage(target, "1.0", "1.0"), str(target), ["toymod"], ["toy-dist"])
    assert (target / "toydep" / "__init__.py").read_text() == "VERSION = '1.0'\n"
    assert all(whole(target).values())
    assert sorted(whole(target)) == [
        "other_dist-1.0.dist-info", "toy_dep-1.0.dist-info", "toy_dist-1.0.dist-info",
    ]  # fmt: skip
