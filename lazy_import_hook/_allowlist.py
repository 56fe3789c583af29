"""Import name -> requirements, validated with `packaging`.

Only PyPI-style `name[extras]specifier; marker` requirements get through, and
what reaches the installer is `str(Requirement(...))`, re-serialised from the
parsed object, never the user's raw text.
"""

from __future__ import annotations

import keyword
import re

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ._errors import ConfigError
from ._plan import Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# Never needed by a PyPI requirement; refused so nothing shell-like or
# multi-line can hide in one (markers need quotes and <>=, so those stay).
_FORBIDDEN = set("`$|&\\{}\r\n\t\x00")
_HASH = re.compile(r"^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$")
# What pip and uv take as a local archive file rather than a requirement.
_ARCHIVES = (
    ".whl", ".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz",
    ".tlz", ".tar.lz", ".tar.lzma", ".tar.zst", ".tzst",
)  # fmt: skip
_ENTRY_KEYS = {"requirement", "requirements", "hashes", "allow-sdist"}


def check_import_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: import name {name!r} must be a non-empty string")
    for part in name.split("."):
        if not part.isidentifier() or keyword.iskeyword(part) or not part.isascii():
            raise ConfigError(
                f"{where}: {name!r} is not an importable module name "
                "(dotted ASCII Python identifiers, e.g. 'yaml' or 'google.cloud.storage')"
            )
    return name


def parse_requirement(text: object, where: str) -> Requirement:
    if not isinstance(text, str):
        raise ConfigError(f"{where}: requirement {text!r} must be a string like 'isodate==0.7.2'")
    stripped = text.strip()
    if not stripped:
        raise ConfigError(f"{where}: empty requirement")
    if stripped.startswith("-"):
        raise ConfigError(
            f"{where}: {text!r} looks like an installer option; only requirements such as "
            "'isodate==0.7.2' are allowed"
        )
    bad = sorted({c for c in stripped if c in _FORBIDDEN or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise ConfigError(f"{where}: {text!r} contains forbidden character(s) {bad!r}")
    try:
        req = Requirement(stripped)
    except InvalidRequirement as e:
        raise ConfigError(f"{where}: {text!r} is not a valid requirement: {e}") from e
    if req.url:
        raise ConfigError(
            f"{where}: {text!r} is a direct URL reference; only index requirements "
            "like 'name==1.2' are allowed"
        )
    head = stripped.split(";", 1)[0]
    if "@" in head or "/" in head:
        raise ConfigError(f"{where}: {text!r} names a URL or path; only 'name==1.2' style is allowed")
    # pip and uv take `name-1.0-py3-none-any.whl` or `x.tar.gz` as a local file.
    if any(part.lower().endswith(_ARCHIVES) for part in (req.name, *(s.version for s in req.specifier))):
        raise ConfigError(f"{where}: {text!r} looks like an archive file name; name a distribution")
    return req


def _marker_true(req: Requirement, where: str) -> bool:
    if req.marker is None:
        return True
    try:
        return bool(req.marker.evaluate())
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as e:
        raise ConfigError(f"{where}: cannot evaluate marker of {str(req)!r}: {e}") from e


def _pinned(req: Requirement) -> bool:
    specs = list(req.specifier)
    return len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version


def _entry(import_name: str, value: object, where: str) -> Entry:
    hashes: list[str] = []
    allow_sdist = False
    if isinstance(value, dict):
        value, hashes, allow_sdist = _entry_table(value, where)
    texts = value if isinstance(value, list) else [value]
    if not texts:
        raise ConfigError(f"{where}: no requirement given")
    reqs = [parse_requirement(t, where) for t in texts]
    _check_requirements(reqs, bool(hashes), where)
    active = [r for r in reqs if _marker_true(r, where)]
    kept = active or reqs  # an all-false entry is kept (inactive) so status can show it
    return Entry(
        import_name,
        tuple(str(r) for r in kept),
        dists=tuple(canonicalize_name(r.name) for r in kept),
        hashes=tuple(hashes),
        allow_sdist=allow_sdist,
        active=bool(active),
        pins=tuple((canonicalize_name(r.name), str(r.specifier)) for r in active if r.specifier),
    )


def _entry_table(table: dict[str, object], where: str) -> tuple[object, list[str], bool]:
    """(requirement(s), hashes, allow-sdist) of an entry written as a table."""
    unknown = sorted(set(table) - _ENTRY_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; an entry table takes requirement, hashes, allow-sdist"
            + _dotted_hint(where, table, unknown)
        )
    if ("requirement" in table) == ("requirements" in table):
        raise ConfigError(f"{where}: an entry table needs exactly one 'requirement'")
    hashes = table.get("hashes", [])
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise ConfigError(f"{where}: 'hashes' must be a list of 'sha256:<hex>' strings")
    for h in hashes:
        if not _HASH.match(h):
            raise ConfigError(f"{where}: hash {h!r} is not 'sha256:' followed by 64 lowercase hex digits")
    sdist = table.get("allow-sdist", False)
    if not isinstance(sdist, bool):
        raise ConfigError(f"{where}: 'allow-sdist' must be true or false")
    return table.get("requirement", table.get("requirements")), list(hashes), sdist


def _dotted_hint(where: str, table: dict[str, object], unknown: list[str]) -> str:
    """An unquoted dotted key (google.protobuf = "...") reads in TOML as a
    table inside a table, one level per dot: say to quote the import name."""
    name = where.rpartition("entry ")[2].strip("'")
    paths = [path for key in unknown for path in _dotted(f"{name}.{key}", table[key])]
    if not paths or None in paths:
        return ""
    quoted = ", ".join(f'"{path}" = ...' for path in paths)
    return f". If {paths[0]} is an import name, quote it in TOML: {quoted}"


def _dotted(prefix: str, value: object) -> list[str | None]:
    """The dotted names down to each value that reads as an entry (None: one
    that does not)."""
    if isinstance(value, dict) and not value.keys() & {"requirement", "requirements"}:
        return [path for key, inner in value.items() for path in _dotted(f"{prefix}.{key}", inner)]
    return [prefix if isinstance(value, (str, list, dict)) else None]


def _check_requirements(reqs: list[Requirement], hashed: bool, where: str) -> None:
    seen: set[str] = set()
    for req in reqs:
        name = canonicalize_name(req.name)
        if name in seen:
            raise ConfigError(f"{where}: distribution {req.name!r} is named twice")
        seen.add(name)
        if hashed and not _pinned(req):
            raise ConfigError(
                f"{where}: {str(req)!r} has hashes, so it must be pinned with '==' "
                "(pip's --require-hashes needs an exact version)"
            )


def parse_allowlist(source: object, where: str = "allowlist") -> list[Entry]:
    """Validate a whole allowlist; raise ConfigError naming the first bad entry."""
    if not isinstance(source, dict):
        raise ConfigError(
            f"{where}: expected a mapping of import name to requirement(s), "
            f"got {type(source).__name__}"
        )
    entries = [
        _entry(check_import_name(name, where), value, f"{where} entry {name!r}")
        for name, value in source.items()
    ]
    _check_conflicts(entries, where)
    return entries


def _check_conflicts(entries: Iterable[Entry], where: str) -> None:
    by_dist: dict[str, tuple[str, str]] = {}
    for entry in entries:
        if not entry.active:
            continue
        for text, dist in zip(entry.requirements, entry.dists):
            req = Requirement(text)
            spec = str(req.specifier)
            if dist in by_dist and by_dist[dist][1] != spec:
                other = by_dist[dist][0]
                raise ConfigError(
                    f"{where}: entries {other!r} and {entry.import_name!r} ask for "
                    f"distribution {dist!r} with different versions "
                    f"({by_dist[dist][1] or 'any'} vs {spec or 'any'}); make them agree"
                )
            by_dist[dist] = (entry.import_name, spec)
