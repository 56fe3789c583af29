"""Build small, valid, byte-for-byte reproducible wheels and sdists for tests.

Stdlib only, on purpose: the same source is copied verbatim into every sdist
made by :func:`build_sdist` as its in-tree PEP 517 backend (``toy_backend.py``),
so the wheel an installer builds from such an sdist is produced by exactly the
code below (and is byte-identical to ``build_wheel(...)`` with the same inputs).
Keep this module importable on Python 3.9 and free of third-party imports.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["build_sdist", "build_wheel", "normalize_name", "wheel_sha256"]

# 1980-01-01 00:00:00: the earliest timestamp a zip archive can hold.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_TAR_MTIME = 315532800  # the same instant, as a Unix timestamp
_GENERATOR = "lazy-import-hook-tests (tests/_wheelhouse.py)"

_BACKEND_MODULE = "toy_backend"
# Split in two so that the full marker line never occurs in this file itself.
_HOOKS_MARKER = "# " + "==== toy_backend: PEP 517 hooks below ====\n"


def normalize_name(name: str) -> str:
    """Return *name* normalized for file names (PEP 503 + wheel spec: ``_`` separators)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _escape_version(version: str) -> str:
    return version.replace("-", "_")


def _dist_info_dir(name: str, version: str) -> str:
    return f"{normalize_name(name)}-{_escape_version(version)}.dist-info"


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _check_member(path: str) -> None:
    parts = path.split("/")
    if (
        not path
        or "\\" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"not a plain relative POSIX path: {path!r}")


def _metadata_text(
    name: str, version: str, requires: Sequence[str], extra_metadata: Sequence[str]
) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines.extend(f"Requires-Dist: {requirement}" for requirement in requires)
    lines.extend(extra_metadata)
    return "".join(f"{line}\n" for line in lines)


def _expand_tags(tag: str) -> list[str]:
    try:
        pythons, abis, platforms = tag.split("-")
    except ValueError:
        raise ValueError(f"wheel tag must be PYTHON-ABI-PLATFORM, got {tag!r}") from None
    return [
        f"{python}-{abi}-{platform}"
        for python in pythons.split(".")
        for abi in abis.split(".")
        for platform in platforms.split(".")
    ]


def _top_level_names(paths: Sequence[str]) -> list[str]:
    names: set[str] = set()
    for path in paths:
        first, sep, _ = path.partition("/")
        if sep:
            if not first.endswith((".data", ".dist-info")):
                names.add(first)
        elif first.endswith(".py"):
            names.add(first[: -len(".py")])
        elif first.endswith((".so", ".pyd")):
            names.add(first.split(".", 1)[0])
    return sorted(names)


def _dist_info_files(
    name: str,
    version: str,
    paths: Sequence[str],
    *,
    requires: Sequence[str],
    tag: str,
    extra_metadata: Sequence[str],
) -> dict[str, bytes]:
    """METADATA, WHEEL and top_level.txt (RECORD is added by the archive writer)."""
    wheel_lines = [
        "Wheel-Version: 1.0",
        f"Generator: {_GENERATOR}",
        "Root-Is-Purelib: true",
        *(f"Tag: {expanded}" for expanded in _expand_tags(tag)),
    ]
    top_level = _top_level_names(paths)
    return {
        "METADATA": _metadata_text(name, version, requires, extra_metadata).encode("utf-8"),
        "WHEEL": "".join(f"{line}\n" for line in wheel_lines).encode("utf-8"),
        "top_level.txt": "".join(f"{top}\n" for top in top_level).encode("utf-8"),
    }


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _zip_entry(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED  # no dependence on the zlib build
    info.create_system = 3  # Unix, whatever the host
    info.external_attr = (0o100644 & 0xFFFF) << 16
    return info


def build_wheel(
    directory: Path,
    name: str,
    version: str,
    files: Mapping[str, str | bytes],
    *,
    requires: Sequence[str] = (),
    tag: str = "py3-none-any",
    extra_metadata: Sequence[str] = (),
    entry_points: str = "",
) -> Path:
    """Write ``<normalized name>-<version>-<tag>.whl`` into *directory* and return its path.

    *files* maps paths relative to the wheel root (``"pkg/__init__.py"``,
    ``"pkg.pth"``, ``"dist-1.0.data/scripts/tool"``) to their content; ``str``
    content is written as UTF-8, unchanged. *requires* become ``Requires-Dist``
    lines and *extra_metadata* lines (e.g. ``"Requires-Python: >=3.9"``) are
    appended to METADATA verbatim. The archive is reproducible: same inputs,
    same bytes (fixed timestamps and modes, sorted members, no compression).
    """
    if isinstance(requires, str) or isinstance(extra_metadata, str):
        raise TypeError("requires and extra_metadata must be sequences of lines, not str")
    dist_info = _dist_info_dir(name, version)
    members: dict[str, bytes] = {}
    for path in sorted(files):
        _check_member(path)
        if path.split("/", 1)[0] == dist_info:
            raise ValueError(f"{path!r} would clash with the generated {dist_info}")
        members[path] = _as_bytes(files[path])
    for meta_name, content in _dist_info_files(
        name,
        version,
        list(members),
        requires=requires,
        tag=tag,
        extra_metadata=extra_metadata,
    ).items():
        members[f"{dist_info}/{meta_name}"] = content
    if entry_points:  # e.g. "[console_scripts]\ntool = pkg:main\n": installers make scripts of it
        members[f"{dist_info}/entry_points.txt"] = entry_points.encode("utf-8")

    record_path = f"{dist_info}/RECORD"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in members.items():
        writer.writerow([path, _record_hash(data), str(len(data))])
    writer.writerow([record_path, "", ""])
    members[record_path] = record.getvalue().encode("utf-8")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in members.items():
            archive.writestr(_zip_entry(path), data)

    filename = f"{normalize_name(name)}-{_escape_version(version)}-{tag}.whl"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / filename
    target.write_bytes(buffer.getvalue())
    return target


def wheel_sha256(path: Path) -> str:
    """Return ``"sha256:<hex digest>"`` of the file at *path* (pip's ``--hash`` form)."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _pyproject_text() -> str:
    return (
        "[build-system]\n"
        "requires = []\n"
        f'build-backend = "{_BACKEND_MODULE}"\n'
        'backend-path = ["."]\n'
    )


def _backend_source(name: str, version: str, paths: Sequence[str], requires: Sequence[str]) -> str:
    own = Path(__file__).read_text(encoding="utf-8")
    # Drop the hooks if this copy *is* a toy_backend, so that rebuilding is idempotent.
    library = own.partition(_HOOKS_MARKER)[0].rstrip("\n") + "\n\n\n"
    hooks = f"""{_HOOKS_MARKER}
# Generated by tests/_wheelhouse.py build_sdist(); everything above is a copy
# of that module. Hooks run with the source tree as working directory.

import os as _os

_build_wheel_file = build_wheel
_build_sdist_file = build_sdist

_NAME = {name!r}
_VERSION = {version!r}
_REQUIRES = {list(requires)!r}
_FILES = {list(paths)!r}
_TREE = Path(_os.path.dirname(_os.path.abspath(__file__)))


def _tree_files():
    return {{path: (_TREE / path).read_bytes() for path in _FILES}}


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = _dist_info_dir(_NAME, _VERSION)
    target = Path(metadata_directory) / dist_info
    target.mkdir(parents=True, exist_ok=True)
    for meta_name, content in _dist_info_files(
        _NAME,
        _VERSION,
        _FILES,
        requires=_REQUIRES,
        tag="py3-none-any",
        extra_metadata=(),
    ).items():
        (target / meta_name).write_bytes(content)
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    built = _build_wheel_file(
        Path(wheel_directory), _NAME, _VERSION, _tree_files(), requires=_REQUIRES
    )
    return built.name


def build_sdist(sdist_directory, config_settings=None):
    built = _build_sdist_file(
        Path(sdist_directory), _NAME, _VERSION, _tree_files(), requires=_REQUIRES
    )
    return built.name
"""
    return library + hooks


def _tar_entry(arcname: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.size = size
    info.mtime = _TAR_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def build_sdist(
    directory: Path,
    name: str,
    version: str,
    files: Mapping[str, str | bytes],
    *,
    requires: Sequence[str] = (),
) -> Path:
    """Write ``<normalized name>-<version>.tar.gz`` into *directory* and return its path.

    The archive holds ``<normalized name>-<version>/`` with PKG-INFO, the given
    *files*, a ``pyproject.toml`` (``requires = []``, ``build-backend =
    "toy_backend"``, ``backend-path = ["."]``) and ``toy_backend.py``: a
    stdlib-only PEP 517 backend whose ``build_wheel`` makes the same wheel as
    ``build_wheel(d, name, version, files, requires=requires)`` would. It
    therefore builds offline, under build isolation, with pip and with uv.
    Reproducible like :func:`build_wheel`.
    """
    if isinstance(requires, str):
        raise TypeError("requires must be a sequence of requirement strings, not str")
    reserved = {"PKG-INFO", "pyproject.toml", f"{_BACKEND_MODULE}.py"}
    paths = sorted(files)
    for path in paths:
        _check_member(path)
        if path in reserved:
            raise ValueError(f"{path!r} is generated by build_sdist")
    members: dict[str, bytes] = {
        "PKG-INFO": _metadata_text(name, version, requires, ()).encode("utf-8"),
        "pyproject.toml": _pyproject_text().encode("utf-8"),
        f"{_BACKEND_MODULE}.py": _backend_source(name, version, paths, requires).encode("utf-8"),
    }
    for path in paths:
        members[path] = _as_bytes(files[path])

    stem = f"{normalize_name(name)}-{version}"
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in members.items():
            tar.addfile(_tar_entry(f"{stem}/{path}", len(data)), io.BytesIO(data))
    buffer = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of host-specific data.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed:
        compressed.write(tar_buffer.getvalue())

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{stem}.tar.gz"
    target.write_bytes(buffer.getvalue())
    return target
