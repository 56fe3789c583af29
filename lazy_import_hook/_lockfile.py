"""The lock file: every allowlist entry's closure, exact versions and the
sha256 of every file, in the standard format (PEP 751, `pylock.*.toml`).

One file holds one closure per entry, as PEP 751 allows: each entry is a
dependency group (`dependency-groups`, none installed by default), and each
package carries the marker of the groups that need it (`'isodate' in
dependency_groups`), so a package two entries share at one version is listed
once, and a dependency two entries need at different versions is listed
twice. What only this hook needs (each entry's requirements, to notice that
the allowlist changed since the lock; the cutoff of the release-age
cooldown) is under `[tool.lazy-import-hook]`, which installers ignore. Any
PEP 751 installer can install one entry: `uv pip install -r FILE --group
isodate`, `pip install --group FILE:isodate`.
"""

from __future__ import annotations

import os
import re
import sys

from ._errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

_MARKER = re.compile(r"'([a-z0-9-]+)' in dependency_groups")


class UnreadableLock(ConfigError):
    """A lock file that does not parse (as opposed to one that must not be trusted)."""


class Locked:
    """One file of a locked closure."""

    __slots__ = ("filename", "index", "name", "sha256", "size", "upload_time", "url", "version")

    def __init__(
        self, name: str, version: str, *, filename: str, sha256: str, url: str = "", index: str = "",
        size: int | None = None, upload_time: str = "",
    ) -> None:  # fmt: skip
        self.name = name  # canonical distribution name
        self.version = version
        self.filename = filename  # the wheel's file name
        self.sha256 = sha256  # hex
        self.url = url
        self.index = index
        self.size = size
        self.upload_time = upload_time  # RFC 3339, UTC ("" when the source gives none)

    def line(self) -> str:
        """As an Entry keeps it: `name==version sha256:HEX filename [url]` (no field holds a space)."""
        return f"{self.name}=={self.version} sha256:{self.sha256} {self.filename} {self.url}".rstrip()

    def key(self) -> tuple[str, str, str]:
        return self.name, self.version, self.sha256

    def __repr__(self) -> str:
        return f"Locked({self.line()!r})"


class EntryLock:
    """What the lock says about one allowlist entry."""

    __slots__ = ("group", "hashes", "packages", "requirements")

    def __init__(
        self, group: str, requirements: Sequence[str], hashes: Sequence[str], packages: list[Locked]
    ) -> None:
        self.group = group
        self.requirements = tuple(requirements)  # as validated when it was locked
        self.hashes = tuple(hashes)
        self.packages = packages


class LockFile:
    """import name -> EntryLock, and how the closures were made."""

    def __init__(self, entries: dict[str, EntryLock], *, environment: str, exclude_newer: str = "") -> None:
        self.entries = entries
        self.environment = environment  # the marker of the interpreter it is for
        self.exclude_newer = exclude_newer  # the cooldown's cutoff, if one applied


def group_name(import_name: str, taken: Iterable[str] = ()) -> str:
    """A PEP 735 group name for an entry: normalized, unique in the file."""
    base = re.sub(r"[-_.]+", "-", import_name).lower()
    name, n = base, 1
    while name in set(taken):
        n += 1
        name = f"{base}-{n}"
    return name


def this_environment() -> str:
    """The marker that says which interpreters a closure is for: this one's
    minor version, platform, machine and implementation (wheels differ by
    those, not by a patch release)."""
    import platform

    return (
        f"python_version == '{sys.version_info[0]}.{sys.version_info[1]}' and sys_platform == "
        f"'{sys.platform}' and platform_machine == '{platform.machine()}' and implementation_name == "
        f"'{sys.implementation.name}'"
    )


def applies_here(environment: str) -> bool:
    """Whether a lock's environment marker describes this interpreter."""
    from packaging.markers import InvalidMarker, Marker

    try:
        return bool(environment) and Marker(environment).evaluate()
    except InvalidMarker:
        return False


# -- reading -------------------------------------------------------------------


def read(path: str) -> LockFile:
    """The lock at `path`; ConfigError naming the file for anything malformed."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    from ._target import untrusted_input

    try:
        with open(path, encoding="utf-8") as f:
            why = untrusted_input(path, os.fstat(f.fileno()))
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"lock file {path} cannot be read: {e}") from e
    if why:
        raise ConfigError(
            f"lock file {path}: {why}; it decides what installs. Make it yours (chown), writable only by "
            "you (chmod go-w), in a folder only you can write, or remove it"
        )
    try:
        return _parse(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        message = f"lock file {path} is not a lock this hook made ({e}); run `lazy-import-hook lock`"
        raise UnreadableLock(message) from e


def _parse(data: Any) -> LockFile:
    if data.get("lock-version") != "1.0":
        raise ValueError(f"lock-version {data.get('lock-version')!r}")
    tool = data["tool"]["lazy-import-hook"]
    by_group: dict[str, list[Locked]] = {}
    for package in data.get("packages", []):
        locked = _package(package)
        for group in _MARKER.findall(str(package.get("marker", ""))):
            by_group.setdefault(group, []).append(locked)
    entries = {
        str(name): EntryLock(e["group"], e["requirements"], e.get("hashes", []), by_group.get(e["group"], []))
        for name, e in tool["entries"].items()
    }
    environment = (data.get("environments") or [""])[0]
    return LockFile(entries, environment=str(environment), exclude_newer=_time(tool.get("exclude-newer")))


def _package(package: Any) -> Locked:
    (wheel,) = package["wheels"]  # one interpreter: one wheel
    url = str(wheel.get("url", ""))
    return Locked(
        str(package["name"]), str(package["version"]),
        filename=str(wheel.get("name") or url.rsplit("/", 1)[-1]), sha256=str(wheel["hashes"]["sha256"]),
        url=url, index=str(package.get("index", "")), size=wheel.get("size"),
        upload_time=_time(wheel.get("upload-time")),
    )  # fmt: skip


def _time(value: object) -> str:
    """A TOML datetime (or nothing) as RFC 3339 UTC text."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("+00:00", "Z")


# -- writing --------------------------------------------------------------------


def write(path: str, lock: LockFile) -> None:
    from ._files import atomic_write

    atomic_write(path, dumps(lock))


def dumps(lock: LockFile) -> str:
    groups = [e.group for e in lock.entries.values()]
    lines = [
        'lock-version = "1.0"',
        'created-by = "lazy-import-hook"',
        f"environments = [{_str(lock.environment)}]",
        "extras = []",
        f"dependency-groups = {_strs(groups)}",
        "default-groups = []",
        "",
    ]
    for locked, marker in _packages(lock):
        lines += _package_lines(locked, marker)
    lines += _tool_lines(lock)
    return "\n".join(lines) + "\n"


def _packages(lock: LockFile) -> list[tuple[Locked, str]]:
    """Each distinct file once, with the marker of every group that needs it."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    first: dict[tuple[str, str, str], Locked] = {}
    for entry in lock.entries.values():
        for locked in entry.packages:
            groups.setdefault(locked.key(), []).append(entry.group)
            first.setdefault(locked.key(), locked)
    ordered = sorted(first, key=lambda k: (k[0], k[1]))
    return [(first[k], " or ".join(f"'{g}' in dependency_groups" for g in groups[k])) for k in ordered]


def _package_lines(locked: Locked, marker: str) -> list[str]:
    wheel = [f"name = {_str(locked.filename)}"]
    if locked.url:
        wheel.append(f"url = {_str(locked.url)}")
    if locked.upload_time:
        wheel.append(f"upload-time = {locked.upload_time}")  # a TOML datetime, as PEP 751 wants
    if locked.size is not None:
        wheel.append(f"size = {int(locked.size)}")
    wheel.append(f"hashes = {{ sha256 = {_str(locked.sha256)} }}")
    lines = ["[[packages]]", f"name = {_str(locked.name)}", f"version = {_str(locked.version)}"]
    lines.append(f"marker = {_str(marker)}")
    if locked.index:
        lines.append(f"index = {_str(locked.index)}")
    return [*lines, f"wheels = [{{ {', '.join(wheel)} }}]", ""]


def _tool_lines(lock: LockFile) -> list[str]:
    lines = ["[tool.lazy-import-hook]", "format = 1"]
    if lock.exclude_newer:
        lines.append(f"exclude-newer = {lock.exclude_newer}")
    for name, entry in lock.entries.items():
        lines += [
            "",
            f"[tool.lazy-import-hook.entries.{_str(name)}]",
            f"group = {_str(entry.group)}",
            f"requirements = {_strs(entry.requirements)}",
            f"hashes = {_strs(entry.hashes)}",
        ]
    return lines


def _str(text: str) -> str:
    """A TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped) + '"'


def _strs(items: Iterable[str]) -> str:
    return "[" + ", ".join(_str(i) for i in items) + "]"
