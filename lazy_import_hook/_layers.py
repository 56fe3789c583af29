"""Read-only layers: folders prefetched at image build (root's, read-only at
run time), served after the core environment and before the writable
target. Nothing here writes: a layer is never stamped, wiped or locked.

A layer is used only when it is as safe as a target must be (nobody else
can write it, not inside the interpreter's library folders, not already on
sys.path) and stamped for this Python; any other stays off sys.path, with a
warning that names it and says how to fix it.
"""

from __future__ import annotations

import os

from . import _safety, _target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def in_stack(target: str, folders: Iterable[str]) -> list[str]:
    """The layers that go with `target`: a layer that is the target itself is
    the target (an image build that fills the layer may name it as both)."""
    real = os.path.realpath(target)
    return [folder for folder in folders if os.path.realpath(folder) != real]


def overlap(target: str, folders: Sequence[str]) -> str | None:
    """Why these layers cannot go with this target, or None: a folder named
    twice, or one inside another (the files of a folder need one finder)."""
    places = [(os.path.realpath(f), f"the read-only layer {f}") for f in in_stack(target, folders)]
    places.append((os.path.realpath(target), f"the target {target}"))
    for i, (real, name) in enumerate(places):
        for other_real, other in places[i + 1 :]:
            if real == other_real:
                return f"{name} is named twice"
            if real.startswith(other_real + os.sep) or other_real.startswith(real + os.sep):
                inner, outer = (name, other) if len(real) > len(other_real) else (other, name)
                return f"{inner} lies inside {outer}: put the layers and the target side by side"
    return None


def unusable(folder: str) -> str | None:
    """Why `folder` must not serve as a read-only layer, and how to fix that;
    None when it may."""
    import stat

    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return f"it does not exist; {_build(folder)}, or drop it from read-only-targets"
    except OSError as e:
        return f"it cannot be read ({e})"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder"
    why = _safety.unsafe(folder)
    if why and _target.untrusted(st, folder):
        why += f"; make it root's and writable by root alone: chown -R root: {folder}; chmod -R go-w {folder}"
    if not why and not os.access(folder, os.R_OK | os.X_OK):  # a umask of 077 at build time
        why = f"this user cannot read it (mode {stat.filemode(st.st_mode)}): chmod -R a+rX {folder}"
    return why or _stamp_problem(folder)


def _build(folder: str) -> str:
    command = f"LAZY_IMPORT_HOOK_TARGET={folder} lazy-import-hook prefetch"
    return f"build it at image build with the Python that runs the application (`{command}`)"


def _stamp_problem(folder: str) -> str | None:
    """A layer serves only the Python its ABI stamp names; it is never wiped."""
    state = _target.stamp_state(folder)
    if state == _target.OWN:
        return None
    stamp = _target.read_stamp(folder)
    if state == _target.FOREIGN:
        built = f"it was built for another Python ({stamp})" if stamp else "a wipe of it was interrupted"
        return f"{built}, not this one ({_target.abi_tag()}), and a layer is never wiped: {_build(folder)}"
    if state == _target.NONE:
        return f"it has no ABI stamp ({_target.STAMP}) saying which Python it was built for: {_build(folder)}"
    return f"its ABI stamp is damaged ({stamp!r}): {_build(folder)}"
