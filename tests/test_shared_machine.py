"""A second user on the same machine: what they could write through an
access control list, a shared group, a folder above the target, a lax
umask or the target's lock is refused or never made."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _offline import installer_env
from test_real_installers import INSTALLERS, hook

from conftest import ROOT, Runner
from lazy_import_hook import _audit, _files, _lock, _safety, _target, _trust

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX users, groups and modes")
as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
OTHER_UID = 65534  # nobody


def acl(path: Path, *spec: str) -> None:
    if not shutil.which("setfacl"):
        pytest.skip("no setfacl")
    proc = subprocess.run(["setfacl", *spec, str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"no access control lists here: {proc.stderr.strip()}")


def folder(path: Path, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)  # whatever the umask
    return path


def unsafe_because(path: Path) -> str:
    problem = _safety.problem(str(path))
    assert problem is not None and problem.unsafe
    return problem.message


@pytest.fixture
def no_group_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_trust, "_others_by_group", {})


# -- access control lists and groups -------------------------------------------------


def test_a_target_an_access_control_list_lets_another_user_write_is_unsafe(tmp_path: Path) -> None:
    target = folder(tmp_path / "t", 0o755)
    acl(target, "-m", f"u:{OTHER_UID}:rwx")
    message = unsafe_because(target)
    assert f"user {OTHER_UID}, through an access control list" in message
    assert "chmod g-w" in message  # the mask: what takes the entry's right away
    os.chmod(target, 0o755)  # the mask without w: the entry can no longer write
    assert _safety.problem(str(target)) is None


def test_an_access_control_list_that_lets_only_us_or_root_write_is_fine(tmp_path: Path) -> None:
    target = folder(tmp_path / "t", 0o755)
    acl(target, "-m", f"u:{os.geteuid()}:rwx,u:0:rwx,u:{OTHER_UID}:r-x")
    assert target.stat().st_mode & stat.S_IWGRP  # the mask shows as the group's bits
    assert _safety.problem(str(target)) is None


def test_a_default_access_control_list_that_lets_others_write_new_files_is_unsafe(tmp_path: Path) -> None:
    """The kernel ignores the umask under a default ACL: the folders an
    installer makes with mode 0777 would get its group's or user's rights,
    while the target's own bits look fine. Also for a target not made yet,
    which would inherit the list from the folder above it."""
    home = folder(tmp_path / "home", 0o755)
    acl(home, "-d", "-m", f"u:{OTHER_UID}:rwx")
    assert "lets user 65534, through an access control list" in unsafe_because(home / "target")
    target = folder(home / "target", 0o755)  # inherits it
    assert f"{target} lets user 65534" in unsafe_because(target) and "setfacl -k" in unsafe_because(target)
    acl(home, "-k")
    acl(target, "-k")
    acl(target, "-d", "-m", f"u:{OTHER_UID}:r-x")  # reading only: fine
    assert _safety.problem(str(target)) is None


def test_a_pyproject_an_access_control_list_opens_to_others_gives_no_orders(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.lazy-import-hook]\n")
    acl(pyproject, "-m", f"u:{OTHER_UID}:rw-")
    why = _target.untrusted_input(str(pyproject))
    assert why is not None and "access control list" in why


def names(monkeypatch: pytest.MonkeyPatch, group: str, members: list[str], primary: list[str]) -> None:
    """What the user and group databases say: this user is `me`, its
    primary group is this process's; `primary`: other users with that group."""
    gid, uid = os.getegid(), os.geteuid()

    def entry(name: str, u: int) -> object:
        return type("P", (), {"pw_name": name, "pw_uid": u, "pw_gid": gid})()

    monkeypatch.setattr("pwd.getpwuid", lambda u: entry("me", u))
    everyone = [entry("me", uid), *(entry(n, 1000 + i) for i, n in enumerate(primary))]
    monkeypatch.setattr("pwd.getpwall", lambda: everyone)
    monkeypatch.setattr("grp.getgrgid", lambda g: type("G", (), {"gr_name": group, "gr_mem": members})())


def test_our_own_private_group_may_write(
    tmp_path: Path, no_group_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    names(monkeypatch, "me", [], [])
    target = folder(tmp_path / "t", 0o775)  # a umask of 002 with user private groups (Debian's way)
    os.chown(target, -1, os.getegid())
    assert _safety.problem(str(target)) is None


@pytest.mark.parametrize(
    ("group", "members", "primary", "said"),
    [
        ("me", ["carol"], ["a", "b"], "which a, b, carol also belong to"),  # named after us, yet shared
        ("users", [], [], "(users), not the private group of user me"),  # a shared primary group
        (None, [], [], "which this system does not name"),  # a container's --user uid:gid
    ],
)
def test_a_group_other_users_are_or_may_be_in_may_not_write(
    group: str | None, members: list[str], primary: list[str], said: str,
    tmp_path: Path, no_group_cache: None, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A shared primary group such as `users`: one member's umask of 002
    would let every other member change what the first one imports. A
    directory service need not list a group's members: only a group that
    is plainly this user's own may write."""
    names(monkeypatch, group or "", members, primary)
    if group is None:
        monkeypatch.setattr("grp.getgrgid", lambda g: {}[g])
    target = folder(tmp_path / "t", 0o775)
    os.chown(target, -1, os.getegid())
    assert f"group {os.getegid()}, {said}" in unsafe_because(target)


# -- the folders above a target -------------------------------------------------------


def test_a_target_below_a_folder_others_can_write_is_unsafe(tmp_path: Path) -> None:
    shared = folder(tmp_path / "shared", 0o777)  # not sticky: anyone may rename app/ and put their own there
    target = folder(folder(shared / "app", 0o755) / "target", 0o755)
    assert f"the folder {shared} on the way is writable by every user" in unsafe_because(target)


def test_a_target_not_yet_made_below_such_a_folder_is_unsafe_too(tmp_path: Path) -> None:
    shared = folder(tmp_path / "shared", 0o777)
    assert str(shared) in unsafe_because(shared / "app" / "target")


def test_a_link_to_a_target_through_a_folder_others_can_write_is_unsafe(tmp_path: Path) -> None:
    shared = folder(tmp_path / "shared", 0o777)
    link = tmp_path / "link"
    link.symlink_to(folder(shared / "real", 0o755))
    assert str(shared) in unsafe_because(link)


def test_a_target_of_ours_in_a_sticky_shared_folder_is_fine(tmp_path: Path) -> None:
    shared = folder(tmp_path / "tmp", 0o1777)  # as /tmp: nobody else can rename what we own in it
    (shared / "target").mkdir()
    assert _safety.problem(str(shared / "target")) is None
    assert _safety.problem(str(shared / "not-yet-made")) is None


@as_root
def test_a_target_below_another_users_folder_in_a_sticky_one_is_unsafe(tmp_path: Path) -> None:
    theirs = folder(tmp_path / "tmp", 0o1777) / "theirs"
    (theirs / "target").mkdir(parents=True)
    os.chown(theirs, OTHER_UID, -1)
    assert f"owned by another user (uid {OTHER_UID})" in unsafe_because(theirs / "target")


@as_root
def test_a_pyproject_below_another_users_folder_gives_no_orders(tmp_path: Path) -> None:
    home = tmp_path / "home" / "alice"
    (home / "project").mkdir(parents=True)
    os.chown(home, OTHER_UID, -1)  # alice could rename project/ and write her own
    pyproject = home / "project" / "pyproject.toml"
    pyproject.write_text("[tool.lazy-import-hook]\n")
    why = _target.untrusted_input(str(pyproject))
    assert why is not None and f"the folder {home} on the way is owned by another user" in why


@as_root
def test_a_folder_owned_by_a_uid_no_account_has_is_a_volume_not_another_user(tmp_path: Path) -> None:
    """`docker run -v $PWD:/app` as root: /app is the host user's, a uid
    with no account in the container; nobody here can rename what is in
    it. Once that uid can write it through the group or others, it is
    refused again."""
    import pwd

    uid = next(u for u in range(4242, 5000) if not _has_account(pwd, u))
    app = folder(tmp_path / "app", 0o755)
    os.chown(app, uid, -1)
    assert _safety.problem(str(app / "target")) is None
    os.chmod(app, 0o777)
    assert f"the folder {app} on the way is writable by every user" in unsafe_because(app / "target")


def _has_account(pwd: Any, uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


# -- what the hook and its installers make ---------------------------------------------


@pytest.mark.parametrize("installer", INSTALLERS)
def test_under_a_lax_umask_nothing_in_the_target_is_writable_by_others(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = "import os\nos.umask(0)\n" + hook(target, installer, {"toymod": "toy-dist==1.0"}) + (
        "import toymod\nprint(json.dumps([toymod.VERSION, oct(os.umask(0))]))\n"
    )
    assert json.loads(run_python(code, env).stdout) == ["1.0", "0o0"]  # the application's umask is its own
    made = [target, *target.rglob("*")]
    assert len(made) > 5
    modes = {p: p.lstat().st_mode for p in made if not p.is_symlink()}
    writable = [f"{p} {oct(mode)}" for p, mode in modes.items() if mode & 0o022]
    assert writable == []
    assert stat.S_IMODE((target / _target.LOCK).stat().st_mode) == _lock.LOCK_MODE


@pytest.mark.parametrize("shared", [False, True], ids=["private-cache", "shared-cache"])
def test_uv_copies_from_a_cache_others_can_write_instead_of_linking(
    shared: bool, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """uv hard-links what it installs from its cache: a cached file others
    can write would be the installed file itself."""
    cache = folder(tmp_path / "team-uv-cache", 0o777 if shared else 0o755)
    env = installer_env(wheelhouse, tmp_path, UV_CACHE_DIR=str(cache))
    run_python(hook(target, "uv", {"toymod": "toy-dist==1.0"}) + "import toymod\n", env)
    installed = (target / "toymod" / "__init__.py").stat()
    assert installed.st_nlink == (1 if shared else 2)  # its own copy, or the cache's inode
    assert not installed.st_mode & 0o022


def test_the_hooks_own_files_and_folders_ignore_a_lax_umask(tmp_path: Path) -> None:
    before = os.umask(0)
    try:
        _files.make_folders(str(tmp_path / "a" / "b" / "c"))
        _files.atomic_write(str(tmp_path / "a" / "b" / "c" / "f"), "text")
        _audit.record(str(tmp_path / "t"), event="test")
    finally:
        os.umask(before)
    made = [*(tmp_path / "a").rglob("*"), tmp_path / "a", *(tmp_path / "t").rglob("*"), tmp_path / "t"]
    assert len(made) == 7
    assert [p for p in made if p.stat().st_mode & 0o022] == []


def test_a_temporary_name_with_a_link_planted_on_it_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    planted = tmp_path / "f.tmp"
    planted.symlink_to(victim)
    with pytest.raises(FileExistsError):
        _files.create(str(planted), exclusive=True)
    with pytest.raises(OSError):  # ELOOP: O_NOFOLLOW
        _files.create(str(planted))
    assert victim.read_text() == "precious"


# -- the target's lock -------------------------------------------------------------------


def test_a_lock_file_others_could_open_becomes_ours_alone(target: Path) -> None:
    """flock needs only a descriptor, even a read-only one: a lock file
    others can open is a lock others can hold forever."""
    target.mkdir()
    (target / _target.LOCK).touch(mode=0o644)
    os.chmod(target / _target.LOCK, 0o644)  # as earlier versions left it
    with _lock.lock(str(target)):
        pass
    assert stat.S_IMODE((target / _target.LOCK).stat().st_mode) == 0o600


def test_a_wait_for_a_lock_held_with_no_install_under_way_is_said(
    wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    import fcntl

    target.mkdir()
    env = installer_env(wheelhouse, tmp_path)
    env["PYTHONPATH"] = str(ROOT)
    code = hook(target, "pip", {"toymod": "toy-dist==1.0"}) + "import toymod\nprint(toymod.VERSION)\n"
    fd = os.open(target / _target.LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a stuck prune, or another tool, would hold it
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        said = _first_line_with(child, "waiting for")
    finally:
        os.close(fd)  # the child goes on once it is released
        if child.poll() is None and not said:
            child.kill()
    out, err = child.communicate(timeout=120)
    assert said.startswith("lazy-import-hook: waiting for the process holding"), err
    assert "which records no install" in said
    assert (child.returncode, out.strip()) == (0, "1.0"), err


def _first_line_with(child: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    import select

    assert child.stderr is not None
    deadline = time.monotonic() + timeout
    while select.select([child.stderr], [], [], max(0.0, deadline - time.monotonic()))[0]:
        line = child.stderr.readline()
        if text in line or not line:
            return line.strip()
    return ""


# -- what status shows of a log --------------------------------------------------------


def test_status_shows_a_log_lines_control_characters_escaped_and_none_for_log_0(
    target: Path, tmp_path: Path
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    table = f'target = "{target}"\n[tool.lazy-import-hook.allowlist]\ntoymod = "toy-dist==1.0"\n'
    pyproject.write_text("[tool.lazy-import-hook]\n" + table)
    _audit.record(str(target), import_name="x\x1b]0;owned\x07\x1b[2J", requirements=["r"], status=0)

    def status(*extra: str) -> str:
        env = {**os.environ, "LAZY_IMPORT_HOOK_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "lazy_import_hook", "--pyproject", str(pyproject), "status", *extra],
            capture_output=True, text=True, check=False, cwd=tmp_path, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    shown = status()
    assert "x\\x1b]0;owned\\x07\\x1b[2J" in shown and "\x1b" not in shown
    assert "recent installs" not in status("--log", "0")
