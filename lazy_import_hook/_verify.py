"""Verify a target against its RECORDs: every file every distribution lists,
by hash and size; and every file no distribution lists.

Only what the installers leave is judged. Never reported: the hook's own
files (the ABI stamp, the lock, `.lazy-import-hook/`), uv's `.lock` at the
top, and compiled files (`__pycache__/*.pyc`) of a source a RECORD lists
(uv's --compile-bytecode writes them after its RECORD; Python itself writes
them at import). Such a compiled file is checked for its place only, never
its content, even where a RECORD gives a hash: the installers' compile step
rewrites what a wheel ships (numpy 2.2 ships one; pip then lists it twice,
with no hash and with the wheel's), and Python rewrites a stale one.

Symbolic links are never followed, wherever they point: a link at a path a
RECORD lists is "modified" (installers write files, never links), a link
elsewhere is unowned, and nothing below a linked folder is read. Following
links inside the target would already let a file that matches today be
swapped for another tomorrow (the link's destination is not the target's),
and reading through them could block on a FIFO or read a device; a link is
itself the change worth reporting. Files are opened relative to their
folder's descriptor with O_NOFOLLOW at every step where the platform allows,
so a folder swapped for a link while this runs is not followed either.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from typing import BinaryIO, NamedTuple

from . import _audit
from ._files import record_rows
from ._target import LOCK, hook_file

# Why a file a RECORD lists is "modified".
HASH = "hash"  # the content differs, the size is the same
SIZE = "size"  # the size differs (so does the content)
SYMLINK = "symlink"  # a symbolic link, or below one
NOT_A_FILE = "not a file"  # a folder, FIFO, device... where a file belongs
UNREADABLE = "unreadable"  # could not be read: nothing can be said for it
BAD_ROW = "bad RECORD row"  # a hash this module cannot check
REASONS = {
    HASH: "content differs, same size", SIZE: "size differs", SYMLINK: "a symbolic link",
    NOT_A_FILE: "not a regular file", UNREADABLE: "could not be read",
    BAD_ROW: "its RECORD row has no usable hash",
}  # fmt: skip

AUDITED = 50  # the audit line lists at most this many items of each kind
_CHUNK = 1 << 20
_ALGORITHMS = ("sha256", "sha384", "sha512")
_FILE, _DIR, _LINK, _OTHER, _UNREADABLE_DIR = "file", "dir", "link", "other", "unreadable"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
# Folders by descriptor (openat, fdopendir): the POSIX way to never follow a
# link that appears while walking. Elsewhere, paths (and the scan's word).
_BY_FD = os.open in os.supports_dir_fd and os.scandir in os.supports_fd and bool(_NOFOLLOW)


class Modified(NamedTuple):
    """A file a RECORD lists that is not as listed: `reason` is "hash" (the
    content differs, same size), "size", "symlink", "not a file",
    "unreadable" or "bad RECORD row"."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} ({REASONS.get(self.reason, self.reason)})"


class Verification(NamedTuple):
    """What `lazy_import_hook.verify()` found in a target. `modified`
    (`Modified(path, reason)` items), `missing` and `unowned` are sorted
    tuples of paths relative to the target; an unowned folder (nothing in it
    is listed) is one item ending in the path separator. `distributions`:
    the *.dist-info folders read; `files`: the files their RECORDs list."""

    target: str
    distributions: int
    files: int
    modified: tuple[Modified, ...]
    missing: tuple[str, ...]
    unowned: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Nothing modified, missing or unowned."""
        return not (self.modified or self.missing or self.unowned)

    def __str__(self) -> str:
        return "\n".join([f"{self.target}: {summary(self)}", *(f"  {line}" for line in findings(self))])


def summary(result: Verification) -> str:
    """One line: what was checked, and how many of each finding."""
    checked = f"{result.distributions} distributions, {result.files} files"
    if result.ok:
        return f"{checked}: ok (every file as its RECORD lists it, none unowned)"
    counts = _counts(result)
    return f"{checked}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())


def findings(result: Verification) -> list[str]:
    """One line per finding: `modified  path (why)`, `missing  path`, `unowned  path`."""
    return [
        *(f"modified  {m}" for m in result.modified),
        *(f"missing   {p}" for p in result.missing),
        *(f"unowned   {p}" for p in result.unowned),
    ]


def as_json(result: Verification, limit: int | None = None) -> dict[str, object]:
    """For JSON (status --json, the audit line): modified items as {"path",
    "reason"}; with `limit`, at most that many items of each kind, and the
    counts of all."""
    return {
        "ok": result.ok, "distributions": result.distributions, "files": result.files,
        "modified": [m._asdict() for m in result.modified[:limit]], "missing": list(result.missing[:limit]),
        "unowned": list(result.unowned[:limit]),
        "counts": _counts(result),
    }  # fmt: skip


def _counts(result: Verification) -> dict[str, int]:
    return {"modified": len(result.modified), "missing": len(result.missing), "unowned": len(result.unowned)}


def verify(target: str, *, audit: bool = True, trusted: bool = True) -> Verification:
    """Check every file of every distribution in `target` against its RECORD
    and list what is modified, missing and unowned; write the result to the
    audit log (`audit`). Waits for an install in progress (the target lock)
    when the target is writable and `trusted` (a lock file root creates in
    another user's target would lock that user out of it), so a commit half
    done is not reported.
    `target` itself may be a link (to a volume, say); nothing in it is
    followed. Raises FileNotFoundError when there is no such folder."""
    started = time.monotonic()
    if not os.path.isdir(target):
        raise FileNotFoundError(f"no target folder at {target}")
    with _locked(target, trusted):
        result = _verify(target)
    if audit:
        fields = as_json(result, AUDITED)
        del fields["ok"]
        _audit.record(
            target, event="verify", status=0 if result.ok else "findings", **fields,
            duration_s=round(time.monotonic() - started, 3),
        )  # fmt: skip
    return result


class _locked:
    """The target lock, when it can be had: a read-only target (mounted, or
    another user's) has nobody installing into it through this hook."""

    def __init__(self, target: str, trusted: bool) -> None:
        lock = os.path.join(target, LOCK)
        writable = os.access(lock if os.path.lexists(lock) else target, os.W_OK)
        self.lock = None
        if writable and trusted:
            from ._lock import lock as target_lock

            self.lock = target_lock(target)

    def __enter__(self) -> None:
        if self.lock is not None:
            self.lock.acquire(on_wait=_say_waiting)

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.__exit__(*exc)


def _say_waiting() -> None:
    print("lazy-import-hook: verify waits for the install in progress to finish", file=sys.stderr)


def _verify(target: str) -> Verification:
    listed: dict[str, list[tuple[str, str]]] = {}  # path -> [(hash, size)] of every RECORD row
    modified, missing = [], []
    with _Folder(target) as top:
        kinds = top.scan()
        infos = sorted(n for n in kinds if os.sep not in n and n.endswith(".dist-info") and kinds[n] == _DIR)
        modified += [m for info in infos for m in _read_record(top, info, listed, kinds)]
        for rel, rows in listed.items():
            # A compiled file the installer's compile step or Python rewrote is not the wheel's bytes.
            checked = [] if _compiled(rel, listed) else rows
            reason = _check(top, rel, checked, kinds) if rel in kinds else _blocked(rel, kinds)
            if reason is not None:
                modified.append(Modified(rel, reason))
            elif rel not in kinds:
                missing.append(rel)
    return Verification(
        target, len(infos), len(listed), tuple(sorted(set(modified))), tuple(sorted(missing)),
        tuple(_unowned(kinds, listed)),
    )  # fmt: skip


def _read_record(
    top: _Folder, info: str, listed: dict[str, list[tuple[str, str]]], kinds: dict[str, str]
) -> list[Modified]:
    """Add the rows of `info`'s RECORD to `listed` (path -> [(hash, size)]).
    The RECORD is listed itself (to be there); one that cannot be read is
    modified ("unreadable"), and the files of its folder are then unowned."""
    record = os.path.join(info, "RECORD")
    listed.setdefault(record, [])
    if kinds.get(record) != _FILE:
        return []  # missing, a link, not a file: the check of its own row says which
    try:
        with open(top.open(record), encoding="utf-8", newline="") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError("not a regular file")
            rows = list(record_rows(f))
    except (OSError, UnicodeDecodeError, ValueError):
        return [Modified(record, UNREADABLE)]
    for rel, digest, size in rows:
        if not hook_file(rel):  # the hook's own files are never a RECORD's
            listed.setdefault(rel, []).append((digest, size))
    return []


def _check(top: _Folder, rel: str, rows: list[tuple[str, str]], kinds: dict[str, str]) -> str | None:
    """Why the file at `rel` (in the scan) matches none of the rows listing it, or None."""
    kind = kinds[rel]
    if kind != _FILE:
        return SYMLINK if kind == _LINK else NOT_A_FILE
    wanted = [(d, s) for d, s in rows if d or s]
    if len(wanted) < len(rows) or not wanted:
        return None  # listed without hash or size (by one RECORD at least): being there is all
    try:
        fd = top.open(rel)
    except OSError as e:
        return SYMLINK if _is_link_error(e) else UNREADABLE
    with open(fd, "rb") as f:
        return _compare(f, wanted)


def _compare(f: BinaryIO, wanted: list[tuple[str, str]]) -> str | None:
    """None when the open file matches one of the (hash, size) rows (several
    distributions may list one file); else why it matches none."""
    import hashlib

    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        return NOT_A_FILE
    sized = [(d, s) for d, s in wanted if not s or s == str(st.st_size)]
    if not sized:
        return SIZE
    algorithms = {d.partition("=")[0] for d, _ in sized if d}
    if not algorithms.issubset(_ALGORITHMS):
        return BAD_ROW
    digests = {a: hashlib.new(a) for a in algorithms}
    for chunk in iter(lambda: f.read(_CHUNK), b""):
        for h in digests.values():
            h.update(chunk)
    found = {f"{a}={_b64(h.digest())}" for a, h in digests.items()}
    return None if any(not d or d in found for d, _ in sized) else HASH


def _b64(digest: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_link_error(e: OSError) -> bool:
    import errno

    return e.errno in (errno.ELOOP, getattr(errno, "EMLINK", -1), errno.ENOTDIR)


def _blocked(rel: str, kinds: dict[str, str]) -> str | None:
    """Why a listed path the scan did not see could not be seen: a link or an
    unreadable folder on the way. None: it is missing."""
    for parent in _parents(rel):
        kind = kinds.get(parent)
        if kind == _LINK:
            return SYMLINK
        if kind == _UNREADABLE_DIR:
            return UNREADABLE
    return None


def _unowned(kinds: dict[str, str], listed: dict[str, list[tuple[str, str]]]) -> list[str]:
    """What is in the target that no RECORD lists, but for what is expected
    there anyway (see the module's docstring). A folder nothing listed is in
    is one item, "name/", and what it holds is not listed again. An empty
    folder no import can name holds nothing to run (uv makes a wheel's empty
    `PyYAML.libs/`); an empty `yaml/` would import as a namespace package."""
    folders = {parent for rel in listed for parent in _parents(rel)}
    holding = {parent for rel in kinds for parent in _parents(rel)}
    found: list[str] = []
    collapsed: set[str] = set()
    for rel in sorted(kinds):  # a folder comes before what it holds
        kind = kinds[rel]
        is_dir = kind in (_DIR, _UNREADABLE_DIR)
        empty = kind == _DIR and rel not in holding and not os.path.basename(rel).isidentifier()
        if rel in listed or rel in folders or empty or _expected(rel, kind, listed):
            continue  # (a link where a listed folder belongs: its files say so)
        if collapsed.isdisjoint(_parents(rel)):
            found.append(rel + os.sep if is_dir else rel)
            if is_dir:
                collapsed.add(rel)
    return found


def _parents(rel: str) -> list[str]:
    """The folders `rel` is in, relative to the target: a/b/c -> [a/b, a]."""
    found = []
    parent = os.path.dirname(rel)
    while parent:
        found.append(parent)
        parent = os.path.dirname(parent)
    return found


def _expected(rel: str, kind: str, listed: dict[str, list[tuple[str, str]]]) -> bool:
    """uv's lock file at the top; a __pycache__ folder; a compiled file of a
    source a RECORD lists."""
    folder, name = os.path.split(rel)
    if kind == _DIR:
        return name == "__pycache__"
    if kind == _FILE and not folder and name == ".lock":
        return True
    return kind == _FILE and _compiled(rel, listed)


def _compiled(rel: str, listed: dict[str, list[tuple[str, str]]]) -> bool:
    """`rel` is a compiled file (`d/__pycache__/m.<tag>.pyc`) of a listed source (`d/m.py`)."""
    folder, name = os.path.split(rel)
    if os.path.basename(folder) != "__pycache__" or not name.endswith(".pyc"):
        return False
    return os.path.join(os.path.dirname(folder), name.partition(".")[0] + ".py") in listed


class _Folder:
    """The target, walked and read without following a symbolic link."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Folder:
        if _BY_FD:
            self.fd = os.open(self.path, _OPEN_DIR)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)

    def scan(self) -> dict[str, str]:
        """Path relative to the target -> kind, for everything below it but
        the hook's own files; linked folders are not entered."""
        kinds: dict[str, str] = {}
        self._scan(self.fd if _BY_FD else self.path, "", kinds)
        return kinds

    def _scan(self, where: int | str, rel: str, kinds: dict[str, str]) -> None:
        with os.scandir(where) as entries:
            found = [(e.name, _kind(e)) for e in entries]
        for name, kind in found:
            path = os.path.join(rel, name) if rel else name
            if not rel and hook_file(path):
                continue
            kinds[path] = kind
            if kind == _DIR:
                try:
                    self._enter(where, name, path, kinds)
                except OSError:
                    kinds[path] = _UNREADABLE_DIR

    def _enter(self, where: int | str, name: str, path: str, kinds: dict[str, str]) -> None:
        if isinstance(where, str):
            self._scan(os.path.join(where, name), path, kinds)
            return
        fd = os.open(name, _OPEN_DIR | _NOFOLLOW, dir_fd=where)
        try:
            self._scan(fd, path, kinds)
        finally:
            os.close(fd)

    def open(self, rel: str) -> int:
        """A descriptor of the file at `rel`, opened through no link (not
        the last component, nor a folder on the way) and without blocking."""
        if not _BY_FD:
            return os.open(os.path.join(self.path, rel), _OPEN | _NOFOLLOW)
        parts = rel.split(os.sep)
        fd = os.dup(self.fd)
        try:
            for part in parts[:-1]:
                inner = os.open(part, _OPEN_DIR | _NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = inner
            return os.open(parts[-1], _OPEN | _NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)


def _kind(entry: os.DirEntry[str]) -> str:
    try:
        if entry.is_symlink():
            return _LINK
        if entry.is_dir(follow_symlinks=False):
            return _DIR
        return _FILE if entry.is_file(follow_symlinks=False) else _OTHER
    except OSError:
        return _OTHER
