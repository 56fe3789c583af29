"""The durable target folder: its layout, ABI stamp, wipe, safety and contents.

Layout of a target:
    <target>/<packages...>            what the installers put there (on sys.path)
    <target>/.python-abi              the interpreter ABI the contents were built for
    <target>/.lazy-import-hook.lock   the cross-process lock (never wiped)
    <target>/.lazy-import-hook/       our own files: plan cache, staging, trash, audit log
"""

from __future__ import annotations

import os
import sys

try:  # what importlib.machinery re-exports, without importing importlib (and warnings) at every start
    import _frozen_importlib_external as _machinery
except ImportError:  # an interpreter whose import system is not CPython's frozen one
    import importlib.machinery as _machinery  # type: ignore[no-redef]

BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES = (
    _machinery.BYTECODE_SUFFIXES, _machinery.EXTENSION_SUFFIXES, _machinery.SOURCE_SUFFIXES,
)  # fmt: skip
ExtensionFileLoader = _machinery.ExtensionFileLoader
try:
    import _frozen_importlib as _bootstrap
except ImportError:
    import importlib.machinery as _bootstrap  # type: ignore[no-redef]
ModuleSpec = _bootstrap.ModuleSpec
PathFinder = _machinery.PathFinder
SourceFileLoader = _machinery.SourceFileLoader
SourcelessFileLoader = _machinery.SourcelessFileLoader
FileFinder = _machinery.FileFinder
FolderFinder = FileFinder  # the path-based finder of one folder (subclassed by _guard)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._files import DistFolder

STAMP = ".python-abi"
LOCK = ".lazy-import-hook.lock"
META = ".lazy-import-hook"
WIPING = "wiping"  # marker inside META: a wipe started and has not finished
OURS = (STAMP, LOCK, META)
# What the path-based finder loads from a folder, as CPython sets it up.
ALL_LOADERS = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (SourceFileLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)
# For a target built for another Python that could not be wiped: its
# compiled modules must not be loaded by this one.
SOURCE_ONLY = ((SourceFileLoader, SOURCE_SUFFIXES),)


class Problem:
    """Why installs into a target must not happen.

    `UNSAFE`: the folder must not even go on sys.path. `READONLY`: nothing
    can be installed, but what is there may be imported (e.g. a target
    prefetched at build time, mounted read-only)."""

    UNSAFE = "unsafe"
    READONLY = "readonly"
    __slots__ = ("kind", "message")

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message

    @property
    def unsafe(self) -> bool:
        return self.kind == self.UNSAFE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and (self.kind, self.message) == (other.kind, other.message)

    def __hash__(self) -> int:
        return hash((self.kind, self.message))

    def __repr__(self) -> str:
        return f"Problem({self.kind!r}, {self.message!r})"


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


def untrusted_input(path: str, st: os.stat_result | None = None) -> str | None:
    """Why a file that gives orders (a pyproject, a lock) must not be
    trusted, or None: it must be ours or root's and writable by nobody
    else, reached through no link another user made, in a folder nobody
    else can write to (git's safe.directory idea; a sticky shared folder
    such as /tmp is fine, since no one else can replace a file we own there)."""
    import stat

    try:
        st = st or os.stat(path)
        link = os.lstat(path)
    except OSError as e:
        return f"it cannot be checked ({e})"
    why = untrusted(st)
    if why:
        return f"the file is {why}"
    if stat.S_ISLNK(link.st_mode) and hasattr(os, "geteuid") and link.st_uid not in (os.geteuid(), 0):
        return f"it is a symbolic link made by another user (uid {link.st_uid})"
    folder = os.path.dirname(os.path.realpath(path))
    try:
        folder_st = os.stat(folder)
    except OSError as e:
        return f"its folder cannot be checked ({e})"
    if folder_st.st_mode & stat.S_ISVTX:
        return None
    why = untrusted(folder_st)
    return f"its folder {folder} is {why}" if why else None


def read_trusted(path: str) -> str | None:
    """The text of `path` if nobody but us (or root) could have written it."""
    try:
        with open(path, encoding="utf-8") as f:
            if untrusted(os.fstat(f.fileno())):
                return None
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


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
    except (OSError, UnicodeDecodeError):
        return None


# What a stamp says about the target (see stamp_state).
OWN, NONE, FOREIGN, DAMAGED = "own", "none", "foreign", "damaged"


def stamp_state(target: str) -> str:
    """OWN: stamped for this Python. NONE: not stamped. FOREIGN: a well-formed
    stamp of another Python, or a wipe that was interrupted: the only
    evidence that justifies wiping. DAMAGED: a stamp that is no evidence of
    anything (empty, cut short, garbage), what a crash can leave."""
    if os.path.exists(meta(target, WIPING)):
        return FOREIGN
    stamp = read_stamp(target)
    if stamp is None:
        return NONE
    if stamp == abi_tag():
        return OWN
    return FOREIGN if well_formed(stamp) else DAMAGED


def well_formed(stamp: str) -> bool:
    """Shaped like abi_tag(): `<impl>-<version+flags>-<platform>-<machine>-<N>bit`.

    >>> well_formed("cpython-311-linux-x86_64-64bit"), well_formed("cpyth")
    (True, False)
    """
    parts = stamp.split("-")
    return (
        len(parts) >= 5
        and parts[0].isalpha()
        and parts[1][:1].isdigit()
        and parts[1].isalnum()
        and parts[-1].endswith("bit")
        and parts[-1][:-3].isdigit()
        and all(p and p.isascii() and p.replace("_", "").isalnum() for p in parts)
    )


def needs_wipe(target: str) -> bool:
    """Positive evidence only: another ABI's well-formed stamp, or an
    interrupted wipe. An unstamped folder we never managed is adopted."""
    return stamp_state(target) == FOREIGN


def write_stamp(target: str) -> None:
    from ._files import atomic_write

    atomic_write(os.path.join(target, STAMP), abi_tag() + "\n", durable=True)


def wipe(target: str) -> tuple[list[str], list[str]]:
    """Empty a target built for another ABI of what the hook installed there:
    every top-level entry a RECORD owns (and compiled files, scripts), never
    a file no distribution owns. Returns (removed, left). Call it with the
    target lock held.

    The stamp goes first and a WIPING marker stays until the end, so a crash
    at any point leaves a store that the next start wipes again, never one
    stamped valid while half-wiped. Entries are renamed into a trash folder
    (atomic each), so a concurrent reader sees every package whole or absent.
    """
    import uuid

    from ._files import atomic_write

    left = foreign_entries(target)
    os.makedirs(meta(target), exist_ok=True)
    atomic_write(meta(target, WIPING), f"{os.getpid()}\n")
    try:
        os.unlink(os.path.join(target, STAMP))
    except FileNotFoundError:
        pass
    trash = meta(target, "trash", uuid.uuid4().hex)
    os.makedirs(trash)
    removed = []
    # The dist-info folders go last: after a crash, what is left is still
    # known to be the hook's (their RECORDs say so) and the next start wipes it.
    for name in sorted(os.listdir(target), key=lambda n: (n.endswith(".dist-info"), n)):
        if name not in OURS and name not in left:
            os.rename(os.path.join(target, name), os.path.join(trash, name))
            removed.append(name)
    _empty_meta(target)
    write_stamp(target)
    os.unlink(meta(target, WIPING))
    return removed, left


def _empty_meta(target: str) -> None:
    import shutil

    for name in os.listdir(meta(target)):
        path = meta(target, name)
        if name == WIPING:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def foreign_entries(target: str) -> list[str]:
    """Top-level entries of an existing folder that no *.dist-info RECORD owns."""
    from ._files import record_paths

    try:
        names = os.listdir(target)
    except OSError:
        return []
    # Ours (another process may be creating them right now), compiled files,
    # scripts, uv's lock.
    owned = {*OURS, "__pycache__", "bin", ".lock"}
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


ACTIVATED: set[str] = set()  # folders this process appended to sys.path


def activate(paths: Iterable[str]) -> None:
    """Append to the END of sys.path, so the core environment always wins."""
    for path in paths:
        ACTIVATED.add(path)
        if path not in sys.path:
            sys.path.append(path)


def hook_file(rel: str) -> bool:
    """A path (relative to the target) that is the hook's own, whatever a
    RECORD says: the ABI stamp, the lock, the hook's folder."""
    top = rel.split(os.sep, 1)[0]
    return top.startswith(STAMP) or top in (LOCK, META)


def dist_folders(target: str) -> dict[str, DistFolder]:
    from ._files import dist_folders

    return dist_folders(target)


def installed_versions(target: str) -> dict[str, str]:
    """Canonical distribution name -> version of what the target holds."""
    from ._files import dist_folders

    return {key: dist.version for key, dist in dist_folders(target).items()}


def on_disk(target: str, name: str) -> bool:
    """The module `name` is in the target (found as the path-based finder would)."""
    finder = FileFinder(os.path.join(target, *name.split(".")[:-1]), *ALL_LOADERS)
    return finder.find_spec(name) is not None


def provided_modules(target: str, dists: Iterable[str]) -> list[str]:
    """The top-level modules the distributions installed in the target provide."""
    found: set[str] = set()
    folders = dist_folders(target)
    for dist in dists:
        for rel in folders[dist].record() if dist in folders else ():
            top = rel.split(os.sep, 1)[0]
            if not top.endswith((".dist-info", ".data", ".pth")) and top not in ("__pycache__", "bin"):
                found.add(top[: -len(".py")] if top.endswith(".py") else top.split(".", 1)[0])
    return sorted(found)


def top_level_names(target: str) -> list[str]:
    """What the target offers to import at its top level (for error messages)."""
    try:
        names = os.listdir(target)
    except OSError:
        return []
    return sorted(
        n for n in names
        if not n.startswith(".") and not n.endswith((".dist-info", ".pth")) and n != "bin"
    )  # fmt: skip


def problem(target: str, *, library: bool = True) -> Problem | None:
    """Why installs into `target` must not happen, or None when they may.

    `library`: also the checks that need sysconfig and a look at every
    sys.path entry (install() makes them; an import relies on its answer)."""
    why = unsafe(target, library=library)
    if why:
        return Problem(Problem.UNSAFE, why)
    probe = _existing_ancestor(target)
    if not os.access(probe, os.W_OK | os.X_OK):
        return Problem(Problem.READONLY, f"{target} is not writable by this user (checked {probe})")
    return None


def unsafe(folder: str, *, library: bool = True) -> str | None:
    """Why nothing may be served from `folder`, or None: another user could
    write it, or (with `library`) it would not stay behind the core environment."""
    found = _shadowing(folder) if library else None
    if found:
        return f"{found}; packages installed there would not stay behind the core environment"
    try:
        why = untrusted(os.stat(folder))
    except OSError:
        why = None
    return f"{folder} is {why}: another user could plant code there" if why else None


def _shadowing(target: str) -> str | None:
    """Why `target` would not stay behind the core environment: inside the
    interpreter's library folders or the user's site-packages (whose .pth
    lines run at every start), or already on sys.path."""
    real = os.path.realpath(target)
    for lib in _library_dirs():
        if real == lib or real.startswith(lib + os.sep):
            return f"{target} lies inside the interpreter's library folder {lib}"
    for entry in sys.path:
        if entry not in ACTIVATED and os.path.realpath(entry or os.curdir) == real:
            return f"{target} is already on sys.path (as {entry!r}), ahead of where the hook puts it"
    return None


def _existing_ancestor(path: str) -> str:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _library_dirs() -> list[str]:
    import sysconfig

    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.realpath(path))
    import site

    try:
        dirs.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # an old virtualenv's site module
        pass
    user_site = getattr(site, "getusersitepackages", lambda: None)()
    if user_site:
        dirs.add(os.path.realpath(user_site))
    return sorted(dirs)
