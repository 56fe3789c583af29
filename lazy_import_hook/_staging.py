"""Staged installs: install into an empty folder, commit in order.

Both installers handle `--target` into an EMPTY folder well, so every install
goes into a fresh staging folder inside the target (same filesystem, so the
commit is a series of renames). The order of the commit is what makes a
crash at any moment safe:

1. a distribution being upgraded loses its old *.dist-info first (so the
   target no longer claims it is whole);
2. everything but the requested import's top-level entry is merged in file
   by file (`os.replace`, atomic each; new folders move in whole), so a file
   that another package imports is never absent, only old or new;
3. the dependencies' *.dist-info;
4. the requested import's top-level entry, replaced whole (the old one moved
   aside first: while it is absent, an import of it reaches the finder, which
   waits for this lock);
5. files only the old versions had are removed, then the requested
   distribution's *.dist-info goes in, last.

So a *.dist-info in the target means its distribution is whole, and the
requested module never becomes importable before what it needs. A crash
leaves staging/trash folders behind; the next install (under the lock)
removes them. Distributions already in the target at the same version are
left alone, so a package in use is never rewritten for nothing.
"""

from __future__ import annotations

import _thread
import os
import time

from ._files import OWN_FOLDER, DistFolder, dist_folders, linked_parent, make_folders
from ._target import hook_file, meta

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def clean_leftovers(target: str) -> None:
    """Remove staging and trash folders of crashed installs. Hold the lock."""
    for sub in ("staging", "trash"):
        remove_folder(meta(target, sub))


def remove_folder(path: str) -> None:
    """shutil.rmtree, imported only for a folder that is not empty: shutil
    pulls in bz2 and lzma (about 5 ms), and after an install the staging and
    temporary folders are usually empty."""
    try:
        os.rmdir(path)
    except OSError:
        if os.path.lexists(path):
            import shutil

            shutil.rmtree(path, ignore_errors=True)


def staging_root(target: str) -> str:
    """Where staging folders live; also the installers' private working directory."""
    return meta(target, "staging")


def new_staging(target: str) -> str:
    # Unique without uuid (an import the wait for the installer need not pay).
    root = staging_root(target)
    make_folders(root)
    path = os.path.join(root, f"{os.getpid()}-{_thread.get_ident()}-{time.monotonic_ns()}")
    os.mkdir(path, OWN_FOLDER)
    return path


class _Committer:
    def __init__(
        self, staging: str, target: str, current: dict[str, DistFolder], staged: dict[str, DistFolder]
    ) -> None:
        self.staging = staging
        self.target = target
        self.current = current
        self.staged = staged
        self._shared: set[str] | None = None
        self.trash = meta(target, "trash", os.path.basename(staging))  # unique, as staging is
        self._discarded = 0

    @property
    def shared(self) -> set[str]:
        """Folders holding files of distributions this commit keeps. Read from
        their RECORDs when first asked: only replacing a folder the target
        already has asks, and a target may hold many distributions."""
        if self._shared is None:
            self._shared = _shared_folders(self.current, self.staged)
        return self._shared

    def discard(self, path: str) -> None:
        """Move aside (atomic), to be deleted once the commit is done."""
        make_folders(self.trash)
        self._discarded += 1
        os.rename(path, os.path.join(self.trash, str(self._discarded)))

    def merge(self, rel: str) -> None:
        """File by file: at every moment each file is there, old or new."""
        src = os.path.join(self.staging, rel)
        dst = os.path.join(self.target, rel)
        if _real_dir(src) and _real_dir(dst):
            for child in sorted(os.listdir(src)):
                self.merge(os.path.join(rel, child))
            return
        self._clear_for(rel, src, dst)
        os.replace(src, dst)

    def _clear_for(self, rel: str, src: str, dst: str) -> None:
        """A folder is not renamed over a folder, nor over a symbolic link
        (the link goes, never what it points to); a file replaces either
        atomically. A link that distributions kept here live behind stays,
        and the install stops: replacing it would hide them, and going
        through it would write outside the target."""
        if os.path.islink(dst) and _real_dir(src):
            if rel in self.shared:
                raise OSError(
                    f"{dst} is a symbolic link to {os.path.realpath(dst)}, where installed distributions "
                    "live: an install never replaces it nor writes through it; make it a real folder"
                )
            self.discard(dst)
        elif _real_dir(dst):
            self.discard(dst)

    def replace(self, rel: str, parts: Sequence[str]) -> None:
        """The requested import's entry, whole; through a shared namespace
        folder (no __init__.py) down to the part that is the module."""
        src = os.path.join(self.staging, rel)
        dst = os.path.join(self.target, rel)
        inner = list(parts[1:])
        if _real_dir(src) and _real_dir(dst) and (rel in self.shared or (inner and _is_namespace(src))):
            # A folder that other distributions also fill (a namespace, pkgutil
            # style or PEP 420): descend, never replace it whole.
            children = os.listdir(src)
            lead = [c for c in children if _leads_to(c, inner[0])]
            for child in sorted(c for c in children if c not in lead):
                self.merge(os.path.join(rel, child))
            for child in lead:
                self.replace(os.path.join(rel, child), inner)
            return
        self._clear_for(rel, src, dst)
        os.replace(src, dst)


def _whole(dist: DistFolder, paths: Sequence[str]) -> bool:
    return all(os.path.exists(os.path.join(dist.folder, rel)) for rel in paths)


def _real_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def _is_namespace(path: str) -> bool:
    return _real_dir(path) and not os.path.exists(os.path.join(path, "__init__.py"))


def _leads_to(name: str, head: str) -> bool:
    """Whether a folder entry is (part of) the module `head`: pkg/, pkg.py, pkg.*.so."""
    return name == head or (name.startswith(f"{head}.") and not name.endswith(".dist-info"))


def commit(staging: str, target: str, import_names: Sequence[str], requested: Sequence[str]) -> list[str]:
    """Move a finished staging install into the target; return the committed
    dist-infos. `import_names` go in last (before their dist-infos), whole."""
    staged = dist_folders(staging)
    current = dist_folders(target)
    committer = _Committer(staging, target, current, staged)
    leftovers = _drop_kept_and_replaced(committer, staged, current)
    names = [n for n in os.listdir(staging) if not n.startswith(".")]  # uv's own .lock
    infos = sorted(n for n in names if n.endswith(".dist-info"))
    wanted = set(requested)
    requested_infos = [d.info for d in staged.values() if d.key in wanted and d.info in infos]
    leads = {n: name.split(".") for name in import_names for n in names if _leads_to(n, name.split(".")[0])}
    for rel in sorted(n for n in names if n not in infos and n not in leads):
        committer.merge(rel)
    for info in infos:
        if info not in requested_infos:
            committer.replace(info, ())
    for rel, parts in leads.items():
        committer.replace(rel, parts)
    remove_listed(target, leftovers, lambda link: link in committer.shared)
    for info in requested_infos:
        committer.replace(info, ())
    for name in set(os.listdir(staging)) - set(names):  # uv's .lock: then rmdir does, without shutil
        if not _real_dir(os.path.join(staging, name)):
            remove_file(os.path.join(staging, name))
    remove_folder(staging)
    remove_folder(committer.trash)
    return infos


def _shared_folders(current: dict[str, DistFolder], staged: dict[str, DistFolder]) -> set[str]:
    """Folders holding files of distributions this commit keeps as they are."""
    shared: set[str] = set()
    for key, dist in current.items():
        if key not in staged:
            for rel in dist.record():
                folder = os.path.dirname(rel)
                while folder:
                    shared.add(folder)
                    folder = os.path.dirname(folder)
    return shared


def _drop_kept_and_replaced(
    committer: _Committer, staged: dict[str, DistFolder], current: dict[str, DistFolder]
) -> list[str]:
    """Distributions already here at the same version and whole leave staging
    (the files in use stay untouched); an upgraded one loses its old
    *.dist-info first. Returns the files only the replaced versions had."""
    leftovers: list[str] = []
    kept: list[tuple[DistFolder, list[str]]] = []
    for key, dist in staged.items():
        old = current.get(key)
        if old is None:  # new to the target: its RECORD is not read (numpy's lists 1,100 files)
            continue
        paths = dist.record()
        if old.version == dist.version and _whole(old, old.record()):
            kept.append((dist, paths))
        else:
            old_paths = old.record()
            committer.discard(os.path.join(old.folder, old.info))
            new_paths = set(paths)
            leftovers += [
                rel for rel in old_paths if rel not in new_paths and not rel.startswith(old.info + os.sep)
            ]
    if kept:
        _drop_kept(staged, kept)
    return leftovers


def _drop_kept(staged: dict[str, DistFolder], kept: list[tuple[DistFolder, list[str]]]) -> None:
    """Kept distributions leave staging with what the installer made beside
    their RECORDs there (uv lists neither its compiled files nor the empty
    folders of a wheel's folder entries): nothing of theirs is committed,
    and no staged folder of theirs replaces the real one. A top-level entry
    that no other staged distribution installs into goes whole; one shared
    with another (a namespace package, bin/) loses their files, compiled
    files and the folders left empty."""
    keys = {dist.key for dist, _ in kept}
    others = {_top(rel) for d in staged.values() if d.key not in keys for rel in d.record()}
    for dist, paths in kept:
        remove_folder(os.path.join(dist.folder, dist.info))
        _drop_compiled(dist.folder, [rel for rel in paths if rel.endswith(".py")])
        for top in sorted({_top(rel) for rel in paths} - {dist.info}):
            path = os.path.join(dist.folder, top)
            if top in others or top == "__pycache__":  # what other distributions' files share
                for rel in (r for r in paths if _top(r) == top):
                    remove_file(os.path.join(dist.folder, rel))
                _prune_empty_folders(path)
            elif _real_dir(path):
                remove_folder(path)
            else:
                remove_file(path)
        _prune_empty_folders(os.path.join(dist.folder, "__pycache__"))


def _top(rel: str) -> str:
    return rel.split(os.sep, 1)[0]


def _drop_compiled(root: str, py_files: list[str]) -> None:
    """The compiled files of these .py files (`__pycache__/<stem>.<tag>.pyc`)."""
    stems: dict[str, set[str]] = {}
    for rel in py_files:
        folder, name = os.path.split(rel)
        stems.setdefault(folder, set()).add(name[: -len(".py")])
    for folder, names in stems.items():
        cache = os.path.join(root, folder, "__pycache__")
        if os.path.islink(cache):
            continue
        try:
            compiled = os.listdir(cache)
        except OSError:
            continue
        for name in compiled:
            if name.endswith(".pyc") and name.split(".", 1)[0] in names:
                remove_file(os.path.join(cache, name))


def _prune_empty_folders(path: str) -> None:
    """The empty folders under `path`, deepest first, and `path` if it ends empty."""
    for folder, _, files in os.walk(path, topdown=False):
        if not files:
            try:
                os.rmdir(folder)
            except OSError:
                pass


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass


def remove_listed(target: str, paths: list[str], keeps: Callable[[str], bool]) -> None:
    """Remove these files of the target (paths its RECORDs list), their
    compiled files (uv lists none: a package folder left with only its
    __pycache__ would import as an empty namespace package) and the folders
    they leave empty. Never through a symbolic link: a folder linked into
    the target (a checkout, a shared folder) keeps what it holds, and the
    link goes instead, unless `keeps(link)`: files that stay live behind it.
    A file that cannot be removed stays (as an unowned leftover)."""
    seen: dict[str, bool] = {}
    links: set[str] = set()
    gone: list[str] = []
    for rel in (r for r in paths if not hook_file(r)):  # never on a RECORD's word
        link = linked_parent(target, rel, seen)
        if link is not None:
            links.add(link)
            continue
        try:
            os.unlink(os.path.join(target, rel))
        except OSError:
            continue
        gone.append(rel)
    try:
        _drop_compiled(target, [rel for rel in gone if rel.endswith(".py")])
    except OSError:
        pass
    for link in (link for link in links if not keeps(link)):
        try:
            os.unlink(os.path.join(target, link))
        except OSError:
            pass
    for folder in {os.path.dirname(rel) for rel in [*gone, *links]}:
        prune_empty(os.path.join(target, folder, "__pycache__"), target)
        prune_empty(os.path.join(target, folder), target)


def prune_empty(folder: str, stop: str) -> None:
    """Remove `folder` and its parents up to `stop` while they are empty."""
    while folder != stop and folder.startswith(stop):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)
