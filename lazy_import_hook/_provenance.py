"""Where installed files came from: for every wheel, its file name, its
sha256 and its index, read from what the installers report.

pip writes it (`pip install --report`); uv reports nothing of the kind, so
its resolution of exactly the committed versions is asked for once the
imported module has run (`uv pip compile --no-deps --format pylock.toml`),
for a locked entry too (the lock's URLs say where the files were when it
was made, not where they came from now). The hash is the one the index
published and the installer checked the download against."""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import unquote, urlsplit

from ._files import canonical_name
from ._lockfile import Locked
from ._pipconf import redacted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from packaging.tags import Tag

    from ._pipconf import PipConfig

PYPI = "https://pypi.org/simple"


def from_pip_report(text: str) -> list[Locked]:
    """The files of a `pip install --report` (format 1, pip 23.0 and later)."""
    found = []
    for item in json.loads(text).get("install", []):
        info, meta = item.get("download_info", {}), item.get("metadata", {})
        url = str(info.get("url", ""))
        sha256 = str(info.get("archive_info", {}).get("hashes", {}).get("sha256", ""))
        found.append(Locked(
            canonical_name(str(meta.get("name", ""))), str(meta.get("version", "")),
            filename=_filename(url), sha256=sha256, url=url,
        ))  # fmt: skip
    return found


def from_pylock(text: str) -> list[Locked]:
    """The files of a single-use pylock.toml, as `uv pip compile --format pylock.toml` writes it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    found = []
    for package in tomllib.loads(text).get("packages", []):
        for wheel in package.get("wheels", []):
            url = str(wheel.get("url", ""))
            upload = wheel.get("upload-time")
            found.append(Locked(
                str(package["name"]), str(package["version"]),
                filename=str(wheel.get("name") or _filename(url)),
                sha256=str(wheel.get("hashes", {}).get("sha256", "")), url=url, size=wheel.get("size"),
                upload_time=upload.isoformat().replace("+00:00", "Z") if hasattr(upload, "isoformat") else "",
            ))  # fmt: skip
    return found


def preferred(files: list[Locked], here: bool = True) -> list[Locked]:
    """One file per distribution version: the one an installer picks. uv's
    pylock.toml lists every wheel of a version the target could use (a
    cp311 wheel and a py3-none-any one), and the installer takes the first
    in the target's order of tags: this interpreter's (`here`), or, for
    another Python or platform, CPython's order in general (its own ABI,
    then abi3 from the newest, then none; a platform's before any)."""
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename

    order = {tag: i for i, tag in enumerate(sys_tags())} if here else {}

    def rank(f: Locked) -> tuple[object, ...]:
        try:
            tags = parse_wheel_filename(f.filename)[3]
        except ValueError:  # not a wheel's name: keep it, after the wheels
            return (1, f.filename)
        return (0, min((order.get(t, len(order)), *_general_rank(t)) for t in tags), f.filename)

    best: dict[tuple[str, str], Locked] = {}
    for f in sorted(files, key=rank):
        best.setdefault((canonical_name(f.name), f.version), f)
    return [f for f in files if best[canonical_name(f.name), f.version] is f]


def _general_rank(tag: Tag) -> tuple[int, int, int]:
    abi = 0 if tag.abi.startswith("cp") else 1 if tag.abi == "abi3" else 2
    version = int("".join(c for c in tag.interpreter if c.isdigit()) or 0)
    return (tag.platform == "any", abi, -version)


def attribute(files: Iterable[Locked], pip: PipConfig) -> list[dict[str, object]]:
    """Audit records: each file with the index (or find-links folder) it came from."""
    records: list[dict[str, object]] = []
    for f in files:
        index = f.index or index_of(f.url, pip)
        records.append({"name": f.name, "version": f.version, "file": f.filename, "sha256": f.sha256,
                        "url": redacted(f.url), "index": redacted(index)})  # fmt: skip
    return records


def index_of(url: str, pip: PipConfig) -> str:
    """The configured index (or find-links folder) a file's URL belongs to."""
    if not url:
        return ""
    if url.startswith("file:"):
        return "find-links " + os.path.dirname(unquote(urlsplit(url).path))
    host = urlsplit(url).netloc
    configured = [pip.get("index-url") or PYPI, *pip.items("extra-index-url"), *pip.items("find-links")]
    for index in configured:
        if urlsplit(index).netloc == host:
            return index
    if host == "files.pythonhosted.org" and PYPI in configured:
        return PYPI  # PyPI serves its files from another host
    return f"{urlsplit(url).scheme}://{host}"


def _filename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
