"""Files the hook writes and the installers' metadata it reads: atomic writes,
dist-info folder names and RECORD files. Standard library only; not used by
the warm start."""

from __future__ import annotations

import _thread
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

DIST_SUFFIXES = (".dist-info", ".egg-info")


def program_in(folder: str, name: str) -> str | None:
    """`folder`'s executable `name` (`name.exe` on Windows), if there is one."""
    candidate = os.path.join(folder, f"{name}.exe" if os.name == "nt" else name)
    return candidate if os.access(candidate, os.X_OK) and not os.path.isdir(candidate) else None


def on_path(name: str) -> str | None:
    """shutil.which without importing shutil (which pulls in bz2 and lzma):
    an install waits for every import made before its installer starts.
    Unlike it, never the current directory, nor any folder named relative
    to it (`.`, `bin`: whoever can write the working directory would choose
    the program), and an absolute path (installers run in another directory)."""
    folders = [f for f in os.environ.get("PATH", os.defpath).split(os.pathsep) if os.path.isabs(f)]
    return next(filter(None, (program_in(folder, name) for folder in folders)), None)


def atomic_write(path: str, text: str, *, durable: bool = False) -> None:
    """Replace `path` with `text` in one rename: readers see the old or the new
    file, never a part. `durable` also syncs it, for files whose loss or
    truncation after a power cut would be taken as evidence (the ABI stamp).
    The temporary name is made anew (O_EXCL): a link planted under it is
    never written through."""
    tmp = f"{path}.{os.getpid()}-{_thread.get_ident()}-{os.urandom(4).hex()}.tmp"
    try:
        with open(create(tmp, exclusive=True), "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


OWN_FILE = 0o644  # what the hook writes: never writable by the group or others, whatever the umask
OWN_FOLDER = 0o755


def create(path: str, *, exclusive: bool = False) -> int:
    """A descriptor to write `path` from its start (mode OWN_FILE at most:
    a lax umask such as 000 or 002 must not let others change what the hook
    wrote); never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags | (os.O_EXCL if exclusive else 0), OWN_FILE)


def make_folders(path: str) -> None:
    """os.makedirs(path, exist_ok=True), every folder it makes with mode
    OWN_FOLDER at most (os.makedirs gives the folders above the last one
    0o777 under the umask)."""
    missing = []
    while path and not os.path.isdir(path):  # "": the working directory, there
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, OWN_FOLDER)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def parse_dist_folder(folder_name: str) -> tuple[str, str] | None:
    """(name as written, version) of `name-version.dist-info`, or of an
    `.egg-info` folder (`name-version-py3.11.egg-info`); None for anything else.

    >>> parse_dist_folder("PyYAML-6.0.2.dist-info")
    ('PyYAML', '6.0.2')
    >>> parse_dist_folder("six-1.16.0-py3.11.egg-info")
    ('six', '1.16.0')
    """
    for suffix in DIST_SUFFIXES:
        if folder_name.endswith(suffix):
            name, sep, version = folder_name[: -len(suffix)].partition("-")
            if sep and name and version:
                return name, version.partition("-")[0]
    return None


class DistFolder:
    """One installed distribution's metadata folder in a folder on sys.path."""

    __slots__ = ("folder", "info", "key", "version")

    def __init__(self, folder: str, info: str, key: str, version: str) -> None:
        self.folder = folder  # where it is installed
        self.info = info  # the *.dist-info (or *.egg-info) folder name
        self.key = key  # canonical distribution name
        self.version = version

    def record(self) -> list[str]:
        return record_paths(self.folder, self.info)

    def lists(self, program: os.stat_result) -> bool:
        """Whether its RECORD lists `program`, that very file of that size, by
        a relative path: as an installer records the console scripts it
        wrote. False when the RECORD cannot be read."""
        import csv

        size = str(program.st_size)
        try:
            with open(os.path.join(self.folder, self.info, "RECORD"), encoding="utf-8", newline="") as f:
                rows = [row[0] for row in csv.reader(f) if len(row) == 3 and row[2] == size and row[0]]
        except (OSError, UnicodeDecodeError, ValueError, csv.Error):
            return False
        relative = (rel for rel in rows if not os.path.isabs(rel))  # an installer's own rows are relative
        return any(_same_file(os.path.join(self.folder, rel), program) for rel in relative)


def _same_file(path: str, program: os.stat_result) -> bool:
    try:
        return os.path.samestat(os.stat(path), program)
    except (OSError, ValueError):
        return False


def canonical_name(name: str) -> str:
    """PEP 503's normalised name, `re.sub(r"[-_.]+", "-", name).lower()`, as
    `packaging.utils.canonicalize_name` gives it (a test checks they agree).
    Every install reads the target's dist-info names; importing
    `packaging.utils` for this pulls in `packaging.tags` and `logging`."""
    name = name.lower().replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name


def dist_folders(folder: str, suffixes: Iterable[str] = (".dist-info",)) -> dict[str, DistFolder]:
    """Canonical name -> DistFolder for the distributions installed in `folder`
    (read from folder names alone: no metadata file is opened)."""
    found: dict[str, DistFolder] = {}
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found
    wanted = tuple(suffixes)
    for name in names:
        parsed = parse_dist_folder(name) if name.endswith(wanted) else None
        if parsed is not None:
            key = canonical_name(parsed[0])
            found.setdefault(key, DistFolder(folder, name, key, parsed[1]))
    return found


def linked_parent(folder: str, rel: str, seen: dict[str, bool]) -> str | None:
    """The first folder on the way from `folder` down to `rel` that is a
    symbolic link (as a path relative to `folder`), or None. `seen` keeps
    the answers for the next path: a distribution's files share folders."""
    parts = rel.split(os.sep)[:-1]
    for depth in range(1, len(parts) + 1):
        sub = os.sep.join(parts[:depth])
        linked = seen.get(sub)
        if linked is None:
            linked = seen[sub] = os.path.islink(os.path.join(folder, sub))
        if linked:
            return sub
    return None


def record_paths(folder: str, info: str) -> list[str]:
    """The files a *.dist-info's RECORD lists, relative to `folder` (see
    `record_rows`); [] when it cannot be read, what was read when it breaks off."""
    import csv

    paths = []
    try:
        with open(os.path.join(folder, info, "RECORD"), encoding="utf-8", newline="") as f:
            for rel, _, _ in record_rows(f):
                paths.append(rel)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error):  # csv.Error: a field over csv's limit
        pass
    return paths


def record_rows(lines: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """(path relative to the target, hash, size) of each row of a RECORD;
    hash and size may be "" (RECORD itself, compiled files pip lists).

    pip installs `--target` into a temporary home and writes what lies
    outside its lib folder as ../../X: console scripts (../../bin/x), data
    (../../share/...), headers (../../include/...); then it moves them to
    <target>/X, where uv puts them and writes them as X. Those count as X
    (../../lib/python/x, the lib folder itself, as x). Anything else
    outside the target (an absolute path, other ../) is left out: it is not
    in the target. csv errors propagate (the caller decides)."""
    import csv

    for row in csv.reader(lines):
        if not row or not row[0]:
            continue
        rel = os.path.normpath(row[0])
        if rel.startswith(_HOME):
            rel = _from_home(rel[len(_HOME) :])
        if rel not in (os.curdir, os.pardir) and not rel.startswith(_UP) and not os.path.isabs(rel):
            yield rel, (row[1] if len(row) > 1 else ""), (row[2] if len(row) > 2 else "")


_UP = os.path.join(os.pardir, "")
_HOME = os.path.join(os.pardir, os.pardir, "")


def _from_home(rel: str) -> str:
    """A path below pip's temporary home, as it lands in the target."""
    top, _, below = rel.partition(os.sep)
    lib, _, inside = below.partition(os.sep)
    if top in ("lib", "lib64") and lib == "python" and inside:
        return inside
    return rel
