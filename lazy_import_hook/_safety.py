"""Whether a folder may be a target: nobody else can write it, it stays
behind the core environment, and this user can write it. Checked when a
plan is made and before an install, never at a warm start (the cached plan
says what was found)."""

from __future__ import annotations

import os
import sys

from ._target import ACTIVATED, Problem, exposed_ancestor, untrusted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def problem(target: str, *, library: bool = True, path: Sequence[str] | None = None) -> Problem | None:
    """Why installs into `target` must not happen, or None when they may.

    `library`: also the checks that need sysconfig and a look at every
    entry of `path` (sys.path; install() makes them; an import relies on
    its answer)."""
    why = unsafe(target, library=library, path=path)
    if why:
        return Problem(Problem.UNSAFE, why)
    probe = _existing_ancestor(target)
    if not os.access(probe, os.W_OK | os.X_OK):
        return Problem(Problem.READONLY, f"{target} is not writable by this user (checked {probe})")
    return None


def unsafe(folder: str, *, library: bool = True, path: Sequence[str] | None = None) -> str | None:
    """Why nothing may be served from `folder`, or None: another user could
    write it, or (with `library`) it would not stay behind the core environment."""
    found = _shadowing(folder, sys.path if path is None else path) if library else None
    if found:
        return f"{found}; packages installed there would not stay behind the core environment"
    try:
        why = untrusted(os.stat(folder), folder)
    except OSError:
        why = None
    if why:
        return f"{folder} is {why}: another user could plant code there"
    why = exposed_ancestor(folder) or _inherited_writers(folder)
    return f"{folder} is not safe: {why}" if why else None


def _inherited_writers(folder: str) -> str | None:
    """Who else could write what is made in `folder` (or, not made yet,
    in the folders it will be made in): a default access control list."""
    from ._trust import inherited_writers

    existing = _existing_ancestor(folder)
    who = inherited_writers(existing)
    return f"{existing} lets {who} write what is made in it (fix: setfacl -k {existing})" if who else None


def _shadowing(target: str, path: Sequence[str]) -> str | None:
    """Why `target` would not stay behind the core environment: inside the
    interpreter's library folders or the user's site-packages (whose .pth
    lines run at every start), or already on `path`."""
    real = os.path.realpath(target)
    for lib in _library_dirs():
        if real == lib or real.startswith(lib + os.sep):
            return f"{target} lies inside the interpreter's library folder {lib}"
    for entry in path:
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
