"""The durable target directory: ABI stamp, sys.path activation, contents.

Layout of a target:
    <target>/<packages...>            what the installers put there (on sys.path)
    <target>/.python-abi              the interpreter ABI the contents were built for
    <target>/.lazy-import-hook.lock   the cross-process lock (never wiped)
    <target>/.lazy-import-hook/       our own files: plan cache, staging, trash, audit log
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._plan import Plan

STAMP = ".python-abi"
LOCK = ".lazy-import-hook.lock"
META = ".lazy-import-hook"
WIPING = "wiping"  # marker inside META: a wipe started and has not finished
_OURS = (STAMP, LOCK, META)


def abi_tag() -> str:
    """What a compiled wheel is tied to: implementation, version, ABI flags, platform."""
    machine = os.uname().machine if hasattr(os, "uname") else ""
    flags = getattr(sys, "abiflags", "")
    return f"{sys.implementation.cache_tag}{flags}-{sys.platform}-{machine}-{sys.maxsize.bit_length() + 1}bit"


def meta(target: str, *parts: str) -> str:
    return os.path.join(target, META, *parts)


def read_stamp(target: str) -> str | None:
    try:
        with open(os.path.join(target, STAMP), encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def needs_wipe(target: str) -> bool:
    """Positive evidence only: another ABI's stamp, or a wipe that was interrupted.

    An unstamped folder we never managed is adopted, never wiped.
    """
    stamp = read_stamp(target)
    if stamp is not None and stamp != abi_tag():
        return True
    return os.path.exists(meta(target, WIPING))


def write_stamp(target: str) -> None:
    tmp = os.path.join(target, f"{STAMP}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(abi_tag() + "\n")
    os.replace(tmp, os.path.join(target, STAMP))


def wipe(target: str) -> list[str]:
    """Empty a target built for another ABI. Call with the target lock held.

    The stamp goes first and a WIPING marker stays until the end, so a crash
    at any point leaves a store that the next start wipes again, never one
    stamped valid while half-wiped. Entries are renamed into a trash folder
    (atomic each), so a concurrent reader sees every package whole or absent.
    """
    import shutil
    import uuid

    os.makedirs(meta(target), exist_ok=True)
    with open(meta(target, WIPING), "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    try:
        os.unlink(os.path.join(target, STAMP))
    except FileNotFoundError:
        pass
    trash = meta(target, "trash", uuid.uuid4().hex)
    os.makedirs(trash)
    removed = []
    for name in sorted(os.listdir(target)):
        if name in _OURS:
            continue
        os.rename(os.path.join(target, name), os.path.join(trash, name))
        removed.append(name)
    for name in os.listdir(meta(target)):
        if name != WIPING:
            path = meta(target, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
    write_stamp(target)
    os.unlink(meta(target, WIPING))
    return removed


def record_paths(folder: str, info: str) -> list[str]:
    """The files a *.dist-info's RECORD lists, relative to `folder`; entries
    pointing outside it (scripts as ../../bin/x, absolute paths) left out."""
    import csv

    paths = []
    try:
        with open(os.path.join(folder, info, "RECORD"), encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                if row and row[0]:
                    rel = os.path.normpath(row[0])
                    if not rel.startswith("..") and not os.path.isabs(rel):
                        paths.append(rel)
    except OSError:
        pass
    return paths


def foreign_entries(target: str) -> list[str]:
    """Top-level entries of an existing folder that no *.dist-info RECORD owns."""
    try:
        names = os.listdir(target)
    except OSError:
        return []
    # Ours (another process may be creating them right now), compiled files,
    # scripts, uv's lock.
    owned = {*_OURS, "__pycache__", "bin", ".lock"}
    for name in names:
        if name.endswith(".dist-info"):
            owned.add(name)
            owned.update(rel.split(os.sep, 1)[0] for rel in record_paths(target, name))
    return sorted(n for n in names if n not in owned and not n.startswith(f"{STAMP}."))


def mtime(target: str) -> int:
    try:
        return os.stat(target).st_mtime_ns
    except OSError:
        return -1


def activate(paths: tuple[str, ...] | list[str]) -> None:
    """Append to the END of sys.path, so the core environment always wins."""
    for path in paths:
        if path not in sys.path:
            sys.path.append(path)


def installed_versions(target: str) -> dict[str, str]:
    """Canonical distribution name -> version, from the *.dist-info folder names.

    Folder names are `{name}-{version}.dist-info`, so no metadata file is read.
    """
    from packaging.utils import canonicalize_name

    found: dict[str, str] = {}
    try:
        names = os.listdir(target)
    except OSError:
        return found
    for name in names:
        if name.endswith(".dist-info"):
            dist, sep, version = name[: -len(".dist-info")].partition("-")
            if sep:
                found[canonicalize_name(dist)] = version
    return found


def read_pth(target: str) -> tuple[list[str], list[str]]:
    """Path lines (as absolute folders that exist) and executable import lines."""
    paths: list[str] = []
    imports: list[str] = []
    try:
        names = sorted(n for n in os.listdir(target) if n.endswith(".pth"))
    except OSError:
        return paths, imports
    for name in names:
        try:
            with open(os.path.join(target, name), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for raw in lines:
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                imports.append(line)
                continue
            path = os.path.abspath(os.path.join(target, line))
            if os.path.isdir(path) and path not in paths:
                paths.append(path)
    return paths, imports


def run_pth_imports(lines: list[str]) -> None:
    """What site.py does with a .pth import line; only when pth-imports = true."""
    for line in lines:
        try:
            exec(line)
        except Exception as e:
            print(f"lazy-import-hook: error in .pth import line {line!r}: {e}", file=sys.stderr)


def problem(target: str, *, library: bool = True) -> tuple[str, str] | None:
    """Why installs into `target` must not happen, or None when they may.

    ("readonly", why): nothing can be installed, but what is there may be
    imported (e.g. a target prefetched at build time, mounted read-only).
    ("unsafe", why): the folder must not even go on sys.path.
    """
    real = os.path.realpath(target)
    for lib in _library_dirs() if library else ():
        if real == lib or real.startswith(lib + os.sep):
            return "unsafe", (
                f"{target} lies inside the interpreter's library folder {lib}; "
                "packages installed there would not stay behind the core environment"
            )
    try:
        why = untrusted(os.stat(target))
    except OSError:
        why = None
    if why:
        return "unsafe", f"{target} is {why}: another user could plant code there"
    probe = target
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.access(probe, os.W_OK | os.X_OK):
        return "readonly", f"{target} is not writable by this user (checked {probe})"
    return None


def untrusted(st: os.stat_result) -> str | None:
    """Why a folder or file others could write must not be trusted, or None.

    World-writable is refused even with the sticky bit (which only stops
    others deleting files, not creating a package); group-writable only when
    the group is not this process's own; owners other than us or root too.
    """
    import stat

    mode = stat.filemode(st.st_mode)
    if st.st_mode & stat.S_IWOTH:
        return f"writable by every user (mode {mode}; fix: chmod o-w)"
    if hasattr(os, "geteuid"):
        if st.st_mode & stat.S_IWGRP and st.st_gid != os.getegid():
            return f"writable by group {st.st_gid} (mode {mode}; fix: chmod g-w)"
        if st.st_uid not in (os.geteuid(), 0):
            return f"owned by another user (uid {st.st_uid})"
    return None


def _library_dirs() -> list[str]:
    import sysconfig

    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.realpath(path))
    try:
        import site

        dirs.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:
        pass
    return sorted(dirs)


def on_disk(target: str, name: str) -> bool:
    """The module `name` is in the target (found as the path-based finder would)."""
    from ._finder import path_entry_finder

    finder = path_entry_finder(os.path.join(target, *name.split(".")[:-1]))
    return finder is not None and finder.find_spec(name) is not None  # type: ignore[attr-defined]


def scan(plan: Plan) -> None:
    """Record in the plan what the target holds that startup must know about:
    allow-listed modules present at a version the pin no longer matches
    (hidden until reinstalled) and the .pth path lines."""
    from ._allowlist import stale_versions

    versions = installed_versions(plan.target)
    hidden = []
    for entry in plan.entries.values():
        if not entry.active:
            continue
        if any(d in versions for d in entry.dists):
            stale = bool(stale_versions(entry, versions))
        else:
            # The module without its *.dist-info: an interrupted upgrade (the
            # old dist-info goes first) or a hand-made copy. Never serve it as
            # if it were the pinned version.
            stale = on_disk(plan.target, entry.import_name)
        if stale:
            hidden.append(entry.import_name)
    plan.hidden = tuple(sorted(hidden))
    plan.pth_paths = tuple(read_pth(plan.target)[0])
