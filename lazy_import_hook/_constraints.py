"""The operator's constraint files (pip's `constraint` setting, PIP_CONSTRAINT,
UV_CONSTRAINT) for an install where every file is hash-pinned (a lock, an
entry's hashes). uv then refuses any constraint that is not an exact pin
("all requirements must have their versions pinned with '=='"), where pip
takes a range. With every version fixed, a range can only accept or refuse
what is pinned: the hook checks it, and uv gets the exact pins alone. A file
with anything else in it (an option, a line packaging cannot read) goes to
uv as it is, which then says what it refuses.
"""

from __future__ import annotations

import re

from ._files import canonical_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from packaging.requirements import Requirement

OPTION = "--constraint="
_COMMENT = re.compile(r"(^|\s)#.*")


def exact_only(options: Sequence[str], pins: Sequence[str], out: str) -> tuple[list[str], list[str]]:
    """`options` with every operator constraint file that holds only
    requirements replaced by one file, `out`, of their exact pins; and the
    ranges among them that a pin of `pins` ("name==version") falls outside."""
    pinned = {_name(pin): pin.partition("==")[2] for pin in pins}
    kept, exact, conflicts = [], [], []
    for option in options:
        lines = _requirements(option[len(OPTION) :]) if option.startswith(OPTION) else None
        if lines is None:
            kept.append(option)
            continue
        for line, requirement in lines:
            if _is_exact(requirement):
                exact.append(line)
            elif not _allows(requirement, pinned):
                conflicts.append(f"{line} (in {option[len(OPTION) :]})")
    if exact:
        with open(out, "w", encoding="utf-8") as f:
            f.writelines(f"{line}\n" for line in exact)
        kept.append(OPTION + out)
    return kept, conflicts


def _requirements(path: str) -> list[tuple[str, Requirement]] | None:
    """The file's requirements whose markers hold here, or None when it
    cannot be read or holds anything else."""
    from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    found = []
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).strip()  # as pip reads it: a '#' at the start or after a blank
        if not line:
            continue
        try:
            requirement = Requirement(line)
            applies = requirement.marker is None or requirement.marker.evaluate()
        except (InvalidRequirement, InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            return None  # an option (-c, --index-url) or something only the installer reads
        if requirement.url:
            return None  # `name @ URL`: the installer decides what it allows
        if applies:
            found.append((line, requirement))
    return found


def _is_exact(requirement: Requirement) -> bool:
    specs = list(requirement.specifier)
    return len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version


def _allows(requirement: Requirement, pinned: dict[str, str]) -> bool:
    version = pinned.get(_name(requirement.name))
    return version is None or requirement.specifier.contains(version, prereleases=True)


def _name(spec: str) -> str:
    return canonical_name(spec.partition("==")[0].partition("[")[0].partition(";")[0].strip())


def pins_of(requirements_file: str) -> list[str]:
    """The `name==version` pins of a hashed requirements file the hook wrote."""
    with open(requirements_file, encoding="utf-8") as f:
        return [line.split(" ", 1)[0].partition(";")[0] for line in f if "==" in line]

