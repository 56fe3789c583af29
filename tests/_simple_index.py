"""A loopback-only simple repository (PEP 503 HTML, PEP 691 JSON, PEP 700) over a wheelhouse.

``serve_index(wheelhouse)`` yields ``http://127.0.0.1:PORT/simple/``, an index
URL that pip (``--index-url``) and uv (``--default-index``) accept. It serves:

- ``/simple/``: the project list;
- ``/simple/<normalized-name>/``: one project's files, each with its sha256,
  size, ``requires-python`` (from a wheel's METADATA) and, in JSON only, its
  ``upload-time`` (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, UTC), API version 1.1;
- ``/files/<filename>``: the file itself, for GET and HEAD (uv sends HEAD
  first and fails on 501).

JSON or HTML is picked from the ``Accept`` header by q-value and specificity
(PEP 691): pip and uv ask for JSON first and get it; an ``Accept`` that names
none of the three simple-API types gets 406. Non-normalized project URLs are
redirected (301) to the normalized one. Every response has Content-Length;
anything else is 404. The folder is read afresh on every request (``.whl``,
``.tar.gz`` and ``.zip`` files), so files may be added while it serves.

For supply-chain tests, *upload_times* sets the upload time of single files
and *default_upload_time* that of the others (``None``: no ``upload-time`` key
at all, for installers that must fail closed); *tamper* serves other bytes
for a file while the pages still advertise the real file's sha256 and size;
:func:`same_size_tamper` makes such bytes of the very same length, for uv,
which checks the size before the hash.

What it does not do: no upload times in HTML (PEP 700 defines them for JSON
only; uv's non-standard ``data-upload-time`` attribute is not emitted, so
HTML clients see no times), no PEP 658 ``.metadata`` files (so uv probes the
wheel with HEAD and pip downloads whole wheels), no yanking, no Range
requests, no caching headers, no keep-alive (HTTP/1.0). Stdlib only.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import email.parser
import functools
import hashlib
import html
import io
import ipaddress
import json
import re
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "DEFAULT_UPLOAD_TIME",
    "HTML_TYPE",
    "JSON_TYPE",
    "is_loopback",
    "negotiate",
    "same_size_tamper",
    "serve_index",
]

DEFAULT_UPLOAD_TIME = datetime(2020, 1, 1, tzinfo=timezone.utc)
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
LEGACY_HTML_TYPE = "text/html"
API_VERSION = "1.1"
_SERVED_SUFFIXES = (".whl", ".tar.gz", ".zip")
# What the server can send, best first (PEP 691: text/html only as a last resort).
_OFFERS = (JSON_TYPE, HTML_TYPE, LEGACY_HTML_TYPE)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
}
_PROJECT_PATH = re.compile(r"/simple/([^/]+)/?")


def normalize(name: str) -> str:
    """PEP 503 normalized project name (``-`` separators, lower case)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _split_filename(filename: str) -> tuple[str, str] | None:
    """(normalized project, version) of a wheel or sdist file name, or None."""
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        return (normalize(parts[0]), parts[1]) if len(parts) in (5, 6) else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            name, sep, version = filename[: -len(suffix)].rpartition("-")
            return (normalize(name), version) if sep and name and version else None
    return None


# ------------------------------------------------------------ content negotiation


def _parse_accept(header: str) -> list[tuple[str, float]]:
    """``(media range, q)`` pairs of an Accept header; malformed q-values count as 0."""
    ranges = []
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((_ALIASES.get(media.lower(), media.lower()), quality))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """q of *offer* under the most specific matching range (exact > type/* > */*)."""
    best: tuple[int, float] = (-1, 0.0)
    for media, quality in ranges:
        if media == offer:
            specificity = 2
        elif media == offer.split("/", maxsplit=1)[0] + "/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1]


def negotiate(accept: str | None) -> str | None:
    """The content type to answer *accept* with, or None (406): highest q, then JSON first."""
    ranges = _parse_accept(accept if accept and accept.strip() else "*/*")
    scored = [(_quality(offer, ranges), -rank, offer) for rank, offer in enumerate(_OFFERS)]
    quality, _, best = max(scored)
    return best if quality > 0 else None


# ------------------------------------------------------------------ the listing


@dataclass(frozen=True)
class _File:
    filename: str
    project: str
    version: str
    sha256: str
    size: int
    requires_python: str | None
    upload_time: datetime | None


def _requires_python(path: Path) -> str | None:
    """``Requires-Python`` of a wheel's METADATA (None for sdists and unreadable wheels)."""
    if not path.name.endswith(".whl"):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                return None
            text = archive.read(names[0]).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return None
    value = email.parser.HeaderParser().parsestr(text).get("Requires-Python")
    return str(value).strip() if value else None


def _listing(wheelhouse: Path) -> dict[str, tuple[str, str]]:
    """Served file name -> (normalized project, version), read afresh from the folder."""
    listing = {}
    for entry in sorted(wheelhouse.iterdir()):
        parsed = _split_filename(entry.name) if entry.name.endswith(_SERVED_SUFFIXES) else None
        if parsed is not None and entry.is_file():
            listing[entry.name] = parsed
    return listing


def format_upload_time(moment: datetime) -> str:
    """PEP 700's form: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------- the pages


def _json_project(project: str, files: list[_File]) -> bytes:
    entries = []
    for item in files:
        entry: dict[str, Any] = {
            "filename": item.filename,
            "url": f"/files/{quote(item.filename)}",
            "hashes": {"sha256": item.sha256},
            "size": item.size,
        }
        if item.requires_python is not None:
            entry["requires-python"] = item.requires_python
        if item.upload_time is not None:
            entry["upload-time"] = format_upload_time(item.upload_time)
        entries.append(entry)
    page = {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": sorted({item.version for item in files}),
        "files": entries,
    }
    return json.dumps(page, indent=1).encode("utf-8")


def _html_page(title: str, anchors: list[str]) -> bytes:
    body = "".join(f"{anchor}<br>\n" for anchor in anchors)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f'<meta name="pypi:repository-version" content="{API_VERSION}">'
        f"<title>{html.escape(title)}</title></head><body>\n{body}</body></html>\n"
    ).encode()


def _html_project(project: str, files: list[_File]) -> bytes:
    anchors = []
    for item in files:
        href = html.escape(f"/files/{quote(item.filename)}#sha256={item.sha256}")
        extra = ""
        if item.requires_python is not None:
            extra = f' data-requires-python="{html.escape(item.requires_python)}"'
        anchors.append(f'<a href="{href}"{extra}>{html.escape(item.filename)}</a>')
    return _html_page(f"Links for {project}", anchors)


def _project_page(project: str, files: list[_File], content_type: str) -> bytes:
    if content_type == JSON_TYPE:
        return _json_project(project, files)
    return _html_project(project, files)


def _project_list(projects: list[str], content_type: str) -> bytes:
    if content_type == JSON_TYPE:
        page = {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}
        return json.dumps(page, indent=1).encode("utf-8")
    anchors = [f'<a href="/simple/{quote(p)}/">{html.escape(p)}</a>' for p in projects]
    return _html_page("Simple index", anchors)


# --------------------------------------------------------------------- the server


def is_loopback(client_address: object) -> bool:
    """Whether a socket server's *client_address* is on this machine's loopback."""
    host = client_address[0] if isinstance(client_address, tuple) and client_address else None
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler never blocks interpreter exit
    allow_reuse_address = False

    def __init__(
        self,
        wheelhouse: Path,
        upload_times: dict[str, datetime],
        default_upload_time: datetime | None,
        request_log: list[str] | None,
        tamper: dict[str, bytes],
    ) -> None:
        self.wheelhouse = wheelhouse
        self.upload_times = upload_times
        self.default_upload_time = default_upload_time
        self.request_log = request_log
        self.tamper = tamper
        self.log_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return is_loopback(client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Installers hang up early (a hash they dislike, a test that kills
        # them); that is no bug here. Anything else still gets a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def log(self, entry: str) -> None:
        if self.request_log is not None:
            with self.log_lock:
                self.request_log.append(entry)

    def describe(self, filename: str, project: str, version: str) -> _File:
        """Metadata of the real file (even when *tamper* serves other bytes for it)."""
        path = self.wheelhouse / filename
        data = path.read_bytes()
        return _File(
            filename=filename,
            project=project,
            version=version,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            requires_python=_requires_python(path),
            upload_time=self.upload_times.get(filename, self.default_upload_time),
        )

    def project_files(self, project: str) -> list[_File]:
        listing = _listing(self.wheelhouse).items()
        return [self.describe(name, *parsed) for name, parsed in listing if parsed[0] == project]

    def projects(self) -> list[str]:
        return sorted({project for project, _ in _listing(self.wheelhouse).values()})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: simple and robust
    server_version = "lazy-import-hook-test-index"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read request_log instead

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def do_GET(self) -> None:
        self._route(send_body=True)

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def _route(self, *, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self._server.log(f"{self.command} {path}")
        if path == "/simple":
            self._redirect("/simple/", send_body)
        elif path == "/simple/":
            self._negotiated(functools.partial(_project_list, self._server.projects()), send_body)
        elif path.startswith("/files/"):
            self._file(path[len("/files/") :], send_body)
        elif match := _PROJECT_PATH.fullmatch(path):
            self._project(match.group(1), path, send_body)
        else:
            self._not_found(send_body)

    def _project(self, name: str, path: str, send_body: bool) -> None:
        project = normalize(name)
        if path != f"/simple/{project}/":
            self._redirect(f"/simple/{quote(project)}/", send_body)
            return
        files = self._server.project_files(project)
        if not files:
            self._not_found(send_body)
            return
        self._negotiated(functools.partial(_project_page, project, files), send_body)

    def _negotiated(self, page: Callable[[str], bytes], send_body: bool) -> None:
        kind = negotiate(self.headers.get("Accept"))
        if kind is None:
            offered = ", ".join(_OFFERS).encode("utf-8") + b"\n"
            self._send(HTTPStatus.NOT_ACCEPTABLE, "text/plain; charset=utf-8", offered, send_body)
            return
        content_type = f"{kind}; charset=utf-8" if kind == LEGACY_HTML_TYPE else kind
        self._send(HTTPStatus.OK, content_type, page(kind), send_body, vary=True)

    def _file(self, filename: str, send_body: bool) -> None:
        server = self._server
        if "/" in filename or "\\" in filename or filename not in _listing(server.wheelhouse):
            self._not_found(send_body)
            return
        body = server.tamper.get(filename)
        if body is None:
            body = (server.wheelhouse / filename).read_bytes()
        self._send(HTTPStatus.OK, "application/octet-stream", body, send_body)

    def _redirect(self, location: str, send_body: bool) -> None:
        self._send(
            HTTPStatus.MOVED_PERMANENTLY, "text/plain; charset=utf-8", b"moved\n", send_body,
            location=location,
        )  # fmt: skip

    def _not_found(self, send_body: bool) -> None:
        self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", send_body)

    def _send(
        self,
        status: HTTPStatus,
        content_type: str,
        body: bytes,
        send_body: bool,
        *,
        vary: bool = False,
        location: str | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if vary:
            self.send_header("Vary", "Accept")
        if location is not None:
            self.send_header("Location", location)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


# ----------------------------------------------------------------------- the API


def _checked_options(
    wheelhouse: Path,
    upload_times: Mapping[str, datetime] | None,
    default_upload_time: datetime | None,
    tamper: Mapping[str, bytes] | None,
) -> tuple[dict[str, datetime], dict[str, bytes]]:
    """Copies of the options; a name not served or a naive time is a mistake in the test."""
    if not wheelhouse.is_dir():
        raise NotADirectoryError(str(wheelhouse))
    times, replaced = dict(upload_times or {}), dict(tamper or {})
    served = set(_listing(wheelhouse))
    for option, names in (("upload_times", times), ("tamper", replaced)):
        unknown = sorted(set(names) - served)
        if unknown:
            raise ValueError(f"{option} names files not in {wheelhouse}: {unknown}")
    for moment in [*times.values(), default_upload_time]:
        if moment is not None and moment.utcoffset() is None:
            raise ValueError(f"upload times must be timezone-aware, got {moment!r}")
    if not all(isinstance(body, bytes) for body in replaced.values()):
        raise TypeError("tamper maps file names to bytes")
    return times, replaced


@contextlib.contextmanager
def serve_index(
    wheelhouse: Path,
    *,
    upload_times: Mapping[str, datetime] | None = None,
    default_upload_time: datetime | None = DEFAULT_UPLOAD_TIME,
    request_log: list[str] | None = None,
    tamper: Mapping[str, bytes] | None = None,
) -> Iterator[str]:
    """Serve *wheelhouse* as a simple repository on 127.0.0.1; yield ``http://127.0.0.1:PORT/simple/``.

    *upload_times* maps file names to aware datetimes; other files get
    *default_upload_time* (None: no ``upload-time`` key). *tamper* maps file
    names to the bytes served instead of them, while the pages still give the
    real file's sha256 and size. If *request_log* is given, ``"GET /path"`` and
    ``"HEAD /path"`` entries (path unquoted, no query) are appended to it as
    requests arrive. The server thread is a daemon, stopped on exit.
    """
    times, replaced = _checked_options(wheelhouse, upload_times, default_upload_time, tamper)
    server = _Server(wheelhouse.resolve(), times, default_upload_time, request_log, replaced)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="serve_index",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _pick_member(archive: zipfile.ZipFile, member: str | None) -> str:
    """*member*, or the largest ``.py`` file outside ``.dist-info`` (first by name on ties)."""
    if member is not None:
        archive.getinfo(member)  # KeyError if absent
        return member
    modules = [
        info
        for info in archive.infolist()
        if info.filename.endswith(".py") and ".dist-info/" not in info.filename
    ]
    if not modules:
        raise ValueError(f"{archive.filename} has no module to tamper with")
    return min(modules, key=lambda info: (-info.file_size, info.filename)).filename


def _record_with(record: bytes, member: str, data: bytes) -> bytes:
    """RECORD with *member*'s digest replaced (same size, so the same length)."""
    digest = hashlib.sha256(data).digest()
    encoded = "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    rows = list(csv.reader(io.StringIO(record.decode("utf-8"))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row[0], encoded, *row[2:]] if row and row[0] == member else row)
    return out.getvalue().encode("utf-8")


def same_size_tamper(
    wheel_path: Path, *, member: str | None = None, payload: bytes = b"TAMPERED = True\n"
) -> bytes:
    """The bytes of *wheel_path* with one module replaced by *payload*, padded to the same length.

    The result is a valid zip of exactly the original size (so uv's size check
    passes and only the sha256 can tell), whose RECORD is updated to match the
    new content, as a careful attacker would. *member* defaults to the largest
    ``.py`` file outside ``.dist-info``; the padding is a ``#`` comment, so the
    module stays valid Python when *payload* ends with a newline.
    """
    original = wheel_path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source:
        chosen = _pick_member(source, member)
        size = source.getinfo(chosen).file_size
        if len(payload) > size:
            raise ValueError(f"payload of {len(payload)} bytes does not fit in {chosen} ({size} bytes)")
        new = payload + b"#" * (size - len(payload))
        with zipfile.ZipFile(buffer, "w") as target:
            for info in source.infolist():
                data = new if info.filename == chosen else source.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    data = _record_with(data, chosen, new)
                target.writestr(info, data)
    tampered = buffer.getvalue()
    if len(tampered) != len(original) or tampered == original:
        raise ValueError(f"cannot tamper with {wheel_path.name} at the same size (compressed member?)")
    return tampered
