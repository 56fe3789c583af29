"""The validated configuration (a `Plan`) and its startup cache.

`install()` runs at every start of the application. Validating the allowlist
needs `packaging` and reading pyproject needs `tomllib` (together ~60 ms), so
the validated result is cached in a small line-based file, keyed by the raw
inputs (allowlist, settings, pyproject text, interpreter, platform) and by the
target's modification time. When neither changed, `install()` reads this file
and nothing else. Nothing here imports more than `os` and `sys`.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

FORMAT = "lazy-import-hook plan 4"
_SEP = "\x1f"  # never inside a validated requirement: control characters are refused


class Entry:
    """One allow-listed import name and what installs it."""

    __slots__ = ("active", "allow_sdist", "dists", "hashes", "import_name", "pins", "requirements")

    def __init__(
        self,
        import_name: str,
        requirements: tuple[str, ...],
        *,
        dists: tuple[str, ...],
        hashes: tuple[str, ...] = (),
        allow_sdist: bool = False,
        active: bool = True,
        pins: tuple[str, ...] = (),
    ) -> None:
        self.import_name = import_name
        self.requirements = requirements  # re-serialised by packaging, markers included
        self.dists = dists  # canonical distribution names, same order
        self.hashes = hashes
        self.allow_sdist = allow_sdist
        self.active = active  # False: every marker is false here; never installs
        # Constraint lines ("name<spec>", no extras or marker) of the requirements
        # whose marker is true and that have a specifier: other installs honour them.
        self.pins = pins

    def __repr__(self) -> str:
        return f"Entry({self.import_name!r}, {self.requirements!r}, active={self.active})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def _fields(self) -> tuple[object, ...]:
        return (
            self.import_name,
            self.requirements,
            self.dists,
            self.hashes,
            self.allow_sdist,
            self.active,
            self.pins,
        )

    def to_line(self) -> str:
        return "\t".join(
            (
                self.import_name,
                "1" if self.active else "0",
                "1" if self.allow_sdist else "0",
                _SEP.join(self.requirements),
                _SEP.join(self.dists),
                _SEP.join(self.hashes),
                _SEP.join(self.pins),
            )
        )

    @classmethod
    def from_line(cls, line: str) -> Entry:
        name, active, sdist, reqs, dists, hashes, pins = line.split("\t")
        return cls(
            name,
            tuple(reqs.split(_SEP)) if reqs else (),
            dists=tuple(dists.split(_SEP)) if dists else (),
            hashes=tuple(hashes.split(_SEP)) if hashes else (),
            allow_sdist=sdist == "1",
            active=active == "1",
            pins=tuple(pins.split(_SEP)) if pins else (),
        )


class Plan:
    """Validated settings plus the allowlist, and what the target held when checked."""

    __slots__ = (
        "allow_sdist",
        "confirm",
        "enabled",
        "entries",
        "hidden",
        "installer",
        "problem",
        "pth_imports",
        "pth_paths",
        "pyproject",
        "retry_after",
        "target",
        "timeout",
        "verbose",
    )

    def __init__(
        self,
        *,
        target: str,
        entries: Iterable[Entry] = (),
        installer: str = "auto",
        enabled: bool = True,
        timeout: float = 900.0,
        allow_sdist: bool = False,
        pth_imports: bool = False,
        verbose: bool = False,
        confirm: bool = False,
        retry_after: float = 60.0,
        pyproject: str = "",
    ) -> None:
        self.target = target
        self.entries = {e.import_name: e for e in entries}
        self.installer = installer
        self.enabled = enabled
        self.timeout = timeout
        self.allow_sdist = allow_sdist
        self.pth_imports = pth_imports
        self.verbose = verbose
        self.confirm = confirm
        self.retry_after = retry_after
        self.pyproject = pyproject
        # Derived from the target's contents (see _target.scan):
        self.hidden: tuple[str, ...] = ()  # import names whose installed version is stale
        self.pth_paths: tuple[str, ...] = ()  # path lines of the target's .pth files
        self.problem = ""  # why installs into the target are refused, if they are

    _SCALARS = (
        ("target", str),
        ("installer", str),
        ("enabled", bool),
        ("timeout", float),
        ("allow_sdist", bool),
        ("pth_imports", bool),
        ("verbose", bool),
        ("confirm", bool),
        ("retry_after", float),
        ("pyproject", str),
        ("problem", str),
    )

    def dumps(self, key: str, target_mtime: int) -> str:
        lines = [FORMAT, key, str(target_mtime)]
        for attr, kind in self._SCALARS:
            value = getattr(self, attr)
            lines.append(("1" if value else "0") if kind is bool else str(value))
        lines.append(_SEP.join(self.hidden))
        lines.append(_SEP.join(self.pth_paths))
        lines.extend(e.to_line() for e in self.entries.values())
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str, key: str) -> tuple[Plan, int] | None:
        """The cached plan and the target mtime it was checked at, if `key` matches."""
        lines = text.split("\n")
        n = len(cls._SCALARS)
        if len(lines) < n + 5 or lines[0] != FORMAT or lines[1] != key:
            return None
        try:
            values: dict[str, object] = {}
            for (attr, kind), raw in zip(cls._SCALARS, lines[3 : 3 + n]):
                values[attr] = raw == "1" if kind is bool else kind(raw)
            problem = values.pop("problem")
            plan = cls(
                entries=[Entry.from_line(line) for line in lines[n + 5 :] if line],
                **values,  # type: ignore[arg-type]
            )
            plan.problem = str(problem)
            hidden, pth = lines[n + 3], lines[n + 4]
            plan.hidden = tuple(hidden.split(_SEP)) if hidden else ()
            plan.pth_paths = tuple(pth.split(_SEP)) if pth else ()
            return plan, int(lines[2])
        except ValueError:
            return None


def read_cache(path: str, key: str) -> tuple[Plan, int] | None:
    """The cached plan, if `key` matches and nobody but us (or root) could have
    written the file: its contents decide what goes on sys.path."""
    from ._target import untrusted

    try:
        with open(path, encoding="utf-8") as f:
            if untrusted(os.fstat(f.fileno())):
                return None
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    return Plan.loads(text, key)


def write_cache(path: str, plan: Plan, key: str, target_mtime: int) -> None:
    """Best effort: a cache that cannot be written only costs the next start time."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(plan.dumps(key, target_mtime))
        os.replace(tmp, path)
    except (OSError, ValueError):  # ValueError: a path this file system cannot encode
        try:
            os.unlink(tmp)
        except OSError:
            pass


def environment_tag() -> str:
    """Everything an environment marker or the ABI stamp can depend on."""
    u = os.uname() if hasattr(os, "uname") else None
    host = f"{u.sysname}|{u.release}|{u.version}|{u.machine}" if u else os.name
    return f"{sys.version}|{sys.platform}|{sys.implementation.name}|{host}|{sys.executable}"
