"""The durable target folder: its layout, its ABI stamp, who may have written
it, and putting it on sys.path: what a warm start needs. What it holds is
_distributions'; whether it is safe, _safety's; its wipe, _prepare's.

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
FolderFinder = FileFinder  # the path-based finder of one folder (subclassed by _finder)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

STAMP = ".python-abi"
LOCK = ".lazy-import-hook.lock"
META = ".lazy-import-hook"
WIPING = "wiping"  # marker inside META: a wipe started and has not finished
INSTALLING = "installing"  # inside META while a process installs: who, what, since when
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


def untrusted(st: os.stat_result, where: str | int | None = None) -> str | None:
    """Why a folder or file others could write must not be trusted, or None.

    World-writable is refused even with the sticky bit (which only stops
    others deleting files, not creating a package); group-writable only when
    someone else can write through it (a group other than this user's
    private one, an access control list's entry: `where`, its path or
    descriptor, lets the list be read); owners other than us or root too.
    """
    why = writable_by_others(st, where)
    if not why and hasattr(os, "geteuid") and st.st_uid not in (os.geteuid(), 0):
        return f"owned by another user (uid {st.st_uid})"
    return why


def writable_by_others(st: os.stat_result, where: str | int | None = None) -> str | None:
    """Why others than its owner can write a file or folder (its mode, or
    who else its group bits let write), or None."""
    import stat

    mode = stat.filemode(st.st_mode)
    if st.st_mode & stat.S_IWOTH:
        return f"writable by every user (mode {mode}; fix: chmod o-w)"
    if hasattr(os, "geteuid") and st.st_mode & stat.S_IWGRP:
        from ._trust import group_writers

        who = group_writers(st, where)
        if who:
            return f"writable by {who} (mode {mode}; fix: chmod g-w)"
    return None


def untrusted_input(path: str, st: os.stat_result | None = None) -> str | None:
    """Why a file that gives orders (a pyproject, a lock) must not be
    trusted, or None: it must be ours or root's and writable by nobody
    else, reached through no link another user made, in folders nobody
    else can write to (git's safe.directory idea; a sticky shared folder
    such as /tmp is fine, since no one else can replace a file we own there)."""
    import stat

    try:
        st = st or os.stat(path)
        link = os.lstat(path)
    except OSError as e:
        return f"it cannot be checked ({e})"
    why = untrusted(st, path)
    if why:
        return f"the file is {why}"
    if stat.S_ISLNK(link.st_mode) and hasattr(os, "geteuid") and link.st_uid not in (os.geteuid(), 0):
        return f"it is a symbolic link made by another user (uid {link.st_uid})"
    return exposed_ancestor(path)


def exposed_ancestor(path: str) -> str | None:
    """Why another user could put something else at `path` by renaming a
    folder on the way to it, or None. Every folder above it, as written and
    as its links resolve, must be ours or root's and writable by nobody
    else, or be sticky (/tmp) with the next step ours or root's: no one else
    can then rename or replace that step. Steps that do not exist yet are
    made by us."""
    for start in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        child, folder = start, os.path.dirname(start)
        while folder != child:
            why = _exposed_step(folder, child)
            if why:
                return f"the folder {folder} on the way is {why}: another user could replace its contents"
            child, folder = folder, os.path.dirname(folder)
    return None


def _exposed_step(folder: str, child: str) -> str | None:
    import stat

    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return None  # to be made by us
    except OSError as e:
        return f"not checkable ({e})"
    ours = (os.geteuid(), 0) if hasattr(os, "geteuid") else ()
    why = untrusted(st, folder)
    if why and st.st_uid not in ours and _no_account(st.st_uid):
        why = writable_by_others(st, folder)  # a volume from another host's user: see _no_account
    if not why or not st.st_mode & stat.S_ISVTX or st.st_uid not in ours:
        return why
    try:
        owner = os.lstat(child).st_uid
    except OSError:
        return None  # not there yet: we make it
    return None if owner in ours else f"{why}, and {child} in it is another user's (uid {owner})"


def _no_account(uid: int) -> bool:
    """No user of this system has `uid`: the owner of a folder mounted from
    elsewhere (`docker run -v $PWD:/app`, a CI runner's workspace in a
    container). Nobody here can log in as it to rename what is in the
    folder, and whoever owns it outside owns the application's code there
    too. A uid with an account is another user of this machine."""
    try:
        import pwd
    except ImportError:  # not POSIX: ownership is not checked at all
        return False
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return True
    return False


def read_trusted(path: str, errors: str = "strict") -> str | None:
    """The text of `path` if it is a file nobody but us (or root) could have
    written. Opened without blocking: a FIFO planted under the name would
    hang a plain open()."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, encoding="utf-8", errors=errors) as f:
            st = os.fstat(fd)
            if st.st_mode & 0o170000 != 0o100000 or untrusted(st, fd):  # not a regular file (stat.S_ISREG)
                return None
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def abi_tag() -> str:
    """What a compiled wheel is tied to: implementation, version, ABI flags, platform."""
    machine = os.uname().machine if hasattr(os, "uname") else ""
    flags = getattr(sys, "abiflags", "")
    return f"{sys.implementation.cache_tag}{flags}-{sys.platform}-{machine}-{sys.maxsize.bit_length() + 1}bit"


def environment_tag() -> str:
    """Everything an environment marker or the ABI stamp can depend on."""
    u = os.uname() if hasattr(os, "uname") else None
    host = f"{u.sysname}|{u.release}|{u.version}|{u.machine}" if u else os.name
    return f"{sys.version}|{sys.platform}|{sys.implementation.name}|{host}|{sys.executable}"


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
