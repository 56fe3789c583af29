"""What a folder holds: its distributions (read from their dist-info folders)
and the modules they provide. Read when installing, scanning and reporting,
never at a warm start."""

from __future__ import annotations

import os

from ._files import dist_folders, record_paths
from ._target import ALL_LOADERS, OURS, STAMP, FileFinder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def installed_versions(target: str) -> dict[str, str]:
    """Canonical distribution name -> version of what the target holds."""
    return {key: dist.version for key, dist in dist_folders(target).items()}


def on_disk(target: str, name: str) -> bool:
    """The module `name` is in the target (found as the path-based finder would)."""
    finder = FileFinder(os.path.join(target, *name.split(".")[:-1]), *ALL_LOADERS)
    return finder.find_spec(name) is not None


def provided_modules(target: str, dists: Iterable[str]) -> list[str]:
    """The top-level modules the distributions installed in the target
    provide: packages (folders an import can name, not `PyYAML.libs/`),
    modules and extension modules."""
    found: set[str] = set()
    folders = dist_folders(target)
    for dist in dists:
        for rel in folders[dist].record() if dist in folders else ():
            top, inside, _ = rel.partition(os.sep)
            name = top if inside else top.split(".", 1)[0]  # x.py, _x.cpython-311-x86_64-linux-gnu.so
            if name.isidentifier() and name not in ("__pycache__", "bin") and not top.endswith(".pth"):
                found.add(name)
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


def foreign_entries(target: str) -> list[str]:
    """Top-level entries of an existing folder that no *.dist-info RECORD owns."""
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
