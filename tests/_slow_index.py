"""A loopback-only ``--find-links`` web page over a wheelhouse, with optional slow downloads.

``serve_find_links(wheelhouse)`` serves ``/`` as an HTML page with one
``<a href="FILE">FILE</a>`` per file in *wheelhouse* (read afresh on every
request) and each listed file at ``/FILE``. Downloads may be stalled half-way
through, so tests can catch an installer in the middle of a download. Stdlib only.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import sys
import threading
import time
from collections.abc import Container, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

__all__ = ["serve_find_links"]

_INDEX_PATHS = frozenset({"", "/", "/index.html"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled handler never blocks interpreter exit
    allow_reuse_address = False

    def __init__(
        self,
        wheelhouse: Path,
        delay_seconds: float,
        delay_for: Container[str] | None,
        request_log: list[str] | None,
        gate: threading.Event | None = None,
    ) -> None:
        self.wheelhouse = wheelhouse
        self.delay_seconds = delay_seconds
        self.delay_for = delay_for
        self.gate = gate
        self.request_log = request_log
        self.log_lock = threading.Lock()
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        host = client_address[0] if isinstance(client_address, tuple) else ""
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients (installers we kill on purpose, shutdown mid-stall) hang up
        # all the time in these tests; that is not worth a traceback. Anything
        # else is a bug in this module and still gets reported.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def stall(self) -> bool:
        """Wait out a stall; False when the server shuts down meanwhile.
        Events rather than time.sleep, so leaving the context ends it."""
        if self.gate is None:
            return not self.stopping.wait(self.delay_seconds)
        end = time.monotonic() + self.delay_seconds
        while not self.gate.wait(0.05) and time.monotonic() < end:
            if self.stopping.is_set():
                return False
        return not self.stopping.is_set()

    def should_delay(self, filename: str) -> bool:
        if self.delay_seconds <= 0:
            return False
        if self.delay_for is None:
            return True
        # Container only promises ``in``: test every prefix of the name.
        return any(filename[:end] in self.delay_for for end in range(len(filename) + 1))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: simple and robust
    server_version = "wheelhouse-find-links"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        server = self._server
        path = unquote(urlsplit(self.path).path)
        if server.request_log is not None:
            with server.log_lock:
                server.request_log.append(f"{self.command} {path}")
        if path in _INDEX_PATHS:
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self._index(), send_body)
            return
        filename = path[1:] if path.startswith("/") else path
        candidate = server.wheelhouse / filename
        if (
            not filename
            or "/" in filename
            or "\\" in filename
            or filename in (".", "..")
            or not candidate.is_file()
        ):
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", True)
            return
        body = candidate.read_bytes()
        delay = send_body and server.should_delay(filename)
        self._send(HTTPStatus.OK, "application/octet-stream", body, send_body, stall=delay)

    def _index(self) -> bytes:
        names = sorted(entry.name for entry in self._server.wheelhouse.iterdir() if entry.is_file())
        links = "".join(
            f'<a href="{html.escape(quote(name))}">{html.escape(name)}</a><br>\n' for name in names
        )
        page = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            "<title>find-links</title></head><body>\n"
            f"{links}</body></html>\n"
        )
        return page.encode("utf-8")

    def _send(
        self,
        status: HTTPStatus,
        content_type: str,
        body: bytes,
        send_body: bool,
        *,
        stall: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not send_body:
            return
        if not stall:
            self.wfile.write(body)
            return
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        if not self._server.stall():
            self.close_connection = True
            return  # shutting down: the client sees a truncated body
        self.wfile.write(body[half:])


@contextlib.contextmanager
def serve_find_links(
    wheelhouse: Path,
    *,
    delay_seconds: float = 0.0,
    delay_for: Container[str] | None = None,
    request_log: list[str] | None = None,
    gate: threading.Event | None = None,
) -> Iterator[str]:
    """Serve *wheelhouse* as a find-links page on 127.0.0.1; yield ``http://127.0.0.1:PORT/``.

    Files whose name starts with a prefix in *delay_for* (every file when it is
    None; a plain ``str`` counts as one prefix) are sent as headers plus the
    first half of the body, then a pause of *delay_seconds*, then the rest.
    If *request_log* is given, ``"GET /name"`` / ``"HEAD /name"`` entries are
    appended to it as requests arrive. With a *gate*, a stall ends when the
    gate is set (*delay_seconds* then only bounds it): a test holds an
    installer mid-download until it has seen what it waits for. The server thread is a daemon and is
    shut down (stalled downloads cut short) when the context exits.
    """
    if isinstance(delay_for, str):
        delay_for = (delay_for,)
    if delay_seconds < 0:
        raise ValueError("delay_seconds must be >= 0")
    if not wheelhouse.is_dir():
        raise NotADirectoryError(str(wheelhouse))
    server = _Server(wheelhouse.resolve(), delay_seconds, delay_for, request_log, gate)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="serve_find_links",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
