"""Self-checks for tests/_simple_index.py: its pages, and the real installers
(pip, uv) resolving, filtering by upload time, locking and checking hashes
against it, offline except for loopback.

Every installer runs with an explicitly built environment (``_child_env``):
no PIP_*/UV_* setting or configuration file of this machine leaks in. The
one test that needs pip >= 26.0 fetches it from the package index and runs
only with LAZY_IMPORT_HOOK_NETWORK_TESTS=1.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from _simple_index import (
    DEFAULT_UPLOAD_TIME,
    HTML_TYPE,
    JSON_TYPE,
    is_loopback,
    negotiate,
    same_size_tamper,
    serve_index,
)
from _wheelhouse import build_sdist, build_wheel

from lazy_import_hook._uv import find_uv

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.9 and 3.10: the project depends on tomli there
    import tomli as tomllib

SUBPROCESS_TIMEOUT = 60.0
# The Accept headers that pip (23.2.1 and 26.x) and uv (0.13.9) send for a project page.
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
)
UV_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
DOC = '"""A toy module served by the test index: long enough to tamper with."""\n'

APP_10 = "idx_app-1.0-py3-none-any.whl"
APP_11 = "idx_app-1.1-py3-none-any.whl"
APP_20 = "idx_app-2.0-py3-none-any.whl"
DEP_10 = "idx_dep-1.0-py3-none-any.whl"
DEP_11 = "idx_dep-1.1-py3-none-any.whl"


# ------------------------------------------------------------------ the releases


@dataclass(frozen=True)
class Releases:
    """idx-app 1.0 (2020), 1.1 (10 days ago), 2.0 (1 day ago), each needing
    idx-dep>=1.0; idx-dep 1.0 (2020), 1.1 (2 days ago). A 7-day cooldown must
    pick idx-app 1.1 with idx-dep 1.0."""

    wheelhouse: Path
    upload_times: dict[str, datetime]
    cutoff: str  # now - 7 days, RFC 3339 in UTC, whole seconds

    def path(self, filename: str) -> Path:
        return self.wheelhouse / filename

    def sha256(self, filename: str) -> str:
        return hashlib.sha256(self.path(filename).read_bytes()).hexdigest()


def _module(name: str, version: str) -> dict[str, str]:
    return {f"{name}/__init__.py": f"{DOC}VERSION = {version!r}\n"}


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    wheelhouse = tmp_path_factory.mktemp("index") / "wheelhouse"
    for version in ("1.0", "1.1", "2.0"):
        build_wheel(
            wheelhouse, "idx-app", version, _module("idxapp", version),
            requires=["idx-dep>=1.0"], extra_metadata=["Requires-Python: >=3.8"],
        )  # fmt: skip
    for version in ("1.0", "1.1"):
        build_wheel(wheelhouse, "idx-dep", version, _module("idxdep", version))
    build_sdist(wheelhouse, "Idx.Sdist", "0.5", _module("idxsdist", "0.5"))
    (wheelhouse / "notes.txt").write_text("not a distribution: never served\n")
    now = datetime.now(timezone.utc).replace(microsecond=654321)
    times = {
        APP_11: now - timedelta(days=10),
        DEP_11: now - timedelta(days=2),
        APP_20: now - timedelta(days=1),
    }
    cutoff = (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Releases(wheelhouse, times, cutoff)


@pytest.fixture
def index(releases: Releases) -> Iterator[str]:
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times) as url:
        yield url


# ---------------------------------------------------------------- HTTP by hand


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _request(url: str, *, method: str = "GET", accept: str | None = None) -> Reply:
    """One request, redirects not followed, errors returned rather than raised."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, headers={"Accept": accept} if accept else {})
        response = conn.getresponse()
        headers = {key.lower(): value for key, value in response.getheaders()}
        return Reply(response.status, headers, response.read())
    finally:
        conn.close()


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def _anchors(body: bytes) -> list[dict[str, str | None]]:
    parser = _Anchors()
    parser.feed(body.decode("utf-8"))
    return parser.anchors


def _base(index_url: str) -> str:
    return index_url[: -len("simple/")]


# ------------------------------------------------------------------- the pages


def test_project_page_in_json(releases: Releases, index: str) -> None:
    reply = _request(index + "idx-app/", accept=PIP_ACCEPT)
    assert reply.status == 200
    assert reply.headers["content-type"] == JSON_TYPE
    assert reply.headers["content-length"] == str(len(reply.body))
    assert reply.headers["vary"] == "Accept"
    page = reply.json()
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "idx-app"
    assert page["versions"] == ["1.0", "1.1", "2.0"]
    assert [entry["filename"] for entry in page["files"]] == [APP_10, APP_11, APP_20]
    for entry in page["files"]:
        name = entry["filename"]
        assert entry["url"] == f"/files/{name}"
        assert entry["hashes"] == {"sha256": releases.sha256(name)}
        assert entry["size"] == releases.path(name).stat().st_size
        assert entry["requires-python"] == ">=3.8"
        when = releases.upload_times.get(name, DEFAULT_UPLOAD_TIME)
        assert entry["upload-time"] == when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["upload-time"])
        with urllib.request.urlopen(urljoin(index + "idx-app/", entry["url"]), timeout=5) as response:
            assert response.read() == releases.path(name).read_bytes()
    dep = _request(index + "idx-dep/", accept=UV_ACCEPT).json()
    assert dep["files"][0]["upload-time"] == "2020-01-01T00:00:00.000000Z"
    assert "requires-python" not in dep["files"][0]  # its METADATA has none


def test_project_page_in_html(releases: Releases, index: str) -> None:
    for accept, content_type in [
        ("text/html", "text/html; charset=utf-8"),
        (HTML_TYPE, HTML_TYPE),
        (f"{JSON_TYPE};q=0.5, {HTML_TYPE}", HTML_TYPE),
    ]:
        reply = _request(index + "idx-app/", accept=accept)
        assert reply.status == 200
        assert reply.headers["content-type"] == content_type
        assert reply.headers["content-length"] == str(len(reply.body))
        anchors = _anchors(reply.body)
        assert [a["href"] for a in anchors] == [
            f"/files/{name}#sha256={releases.sha256(name)}" for name in (APP_10, APP_11, APP_20)
        ]
        assert {a["data-requires-python"] for a in anchors} == {">=3.8"}
        assert b"&gt;=3.8" in reply.body  # escaped in the markup
        assert b"upload" not in reply.body.lower()  # PEP 700 times are JSON only


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP_ACCEPT, JSON_TYPE),
        (UV_ACCEPT, JSON_TYPE),
        (None, JSON_TYPE),  # no header means */*: the richest format
        ("*/*", JSON_TYPE),
        ("text/html", "text/html"),
        (HTML_TYPE, HTML_TYPE),
        ("application/vnd.pypi.simple.latest+json", JSON_TYPE),
        ("application/vnd.pypi.simple.latest+html", HTML_TYPE),
        (f"{JSON_TYPE};q=0.1, text/html", "text/html"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "text/html"),  # a browser
        ("application/*;q=0.5, text/html;q=0.4", JSON_TYPE),
        (f"{JSON_TYPE};q=0, */*;q=0.3", HTML_TYPE),  # the most specific range wins
        (f"{JSON_TYPE}; q=bogus, text/html; q=0.01", "text/html"),
        ("application/json", None),
        (f"{JSON_TYPE};q=0", None),
    ],
)
def test_content_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_project_list(index: str) -> None:
    listing = _request(index, accept=UV_ACCEPT).json()
    assert listing == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "idx-app"}, {"name": "idx-dep"}, {"name": "idx-sdist"}],
    }
    html_list = _request(index, accept="text/html")
    assert [a["href"] for a in _anchors(html_list.body)] == [
        "/simple/idx-app/", "/simple/idx-dep/", "/simple/idx-sdist/",
    ]  # fmt: skip
    sdist = _request(index + "idx-sdist/").json()
    assert [f["filename"] for f in sdist["files"]] == ["idx_sdist-0.5.tar.gz"]
    assert sdist["versions"] == ["0.5"]


def test_redirects_to_the_normalized_name(index: str) -> None:
    for path, location in [
        ("simple", "/simple/"),
        ("simple/IDX_App/", "/simple/idx-app/"),
        ("simple/idx.app", "/simple/idx-app/"),
        ("simple/idx-app", "/simple/idx-app/"),
    ]:
        moved = _request(_base(index) + path)
        assert (moved.status, moved.headers["location"]) == (301, location), path


def test_anything_else_is_not_found_or_not_acceptable(index: str) -> None:
    for path in [
        "simple/nothing-here/", "files/nope.whl", "files/notes.txt", "files/../wheelhouse",
        "files/%2E%2E/%2E%2E/etc/passwd", "files/a/b.whl", "files/", "", "simple/a/b/",
    ]:  # fmt: skip
        missing = _request(_base(index) + path)
        assert missing.status == 404, path
        assert missing.headers["content-length"] == str(len(missing.body))
    refused = _request(index + "idx-app/", accept="application/json")
    assert refused.status == 406
    assert JSON_TYPE.encode() in refused.body


def test_head_and_request_log(releases: Releases) -> None:
    log: list[str] = []
    with serve_index(releases.wheelhouse, request_log=log) as url:
        head = _request(_base(url) + f"files/{DEP_10}", method="HEAD")
        assert head.status == 200
        assert head.headers["content-length"] == str(releases.path(DEP_10).stat().st_size)
        assert head.headers["content-type"] == "application/octet-stream"
        assert head.body == b""
        page_head = _request(url + "idx-dep/", method="HEAD", accept=UV_ACCEPT)
        page = _request(url + "idx-dep/", accept=UV_ACCEPT)
        assert page_head.headers["content-length"] == str(len(page.body))
        assert page_head.body == b""
        _request(url + "idx-dep/?x=1", accept=UV_ACCEPT)
    assert log == [
        f"HEAD /files/{DEP_10}",
        "HEAD /simple/idx-dep/",
        "GET /simple/idx-dep/",
        "GET /simple/idx-dep/",
    ]
    with pytest.raises(urllib.error.URLError):  # stopped: nothing listens any more
        urllib.request.urlopen(url, timeout=2)


def test_upload_time_options(releases: Releases) -> None:
    with serve_index(releases.wheelhouse, default_upload_time=None) as url:
        for project in ("idx-app", "idx-dep"):
            files = _request(url + f"{project}/").json()["files"]
            assert all("upload-time" not in entry for entry in files)
    two_hours_east = timezone(timedelta(hours=2))
    times = {APP_10: datetime(2024, 5, 6, 7, 8, 9, 12, tzinfo=two_hours_east)}
    default = datetime(2021, 2, 3, tzinfo=timezone.utc)
    with serve_index(releases.wheelhouse, upload_times=times, default_upload_time=default) as url:
        files = {e["filename"]: e for e in _request(url + "idx-app/").json()["files"]}
    assert files[APP_10]["upload-time"] == "2024-05-06T05:08:09.000012Z"
    assert files[APP_20]["upload-time"] == "2021-02-03T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"upload_times": {APP_10: datetime(2024, 1, 1)}}, ValueError, "timezone-aware"),
        ({"default_upload_time": datetime(2024, 1, 1)}, ValueError, "timezone-aware"),
        ({"upload_times": {"idx_app-9-py3-none-any.whl": DEFAULT_UPLOAD_TIME}}, ValueError,
         r"upload_times names files not in .*idx_app-9"),
        ({"tamper": {"notes.txt": b""}}, ValueError, r"tamper names files not in .*notes\.txt"),
        ({"tamper": {APP_10: "text"}}, TypeError, "bytes"),
    ],
)  # fmt: skip
def test_options_are_checked(
    releases: Releases, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message), serve_index(releases.wheelhouse, **options):
        pass
    with pytest.raises(NotADirectoryError), serve_index(releases.path(APP_10)):
        pass


def test_only_loopback_clients_are_served() -> None:
    assert is_loopback(("127.0.0.1", 5000))
    assert is_loopback(("127.8.9.10", 5000))
    assert is_loopback(("::1", 5000, 0, 0))
    others = [("10.0.0.1", 5000), ("192.168.1.2", 1), ("8.8.8.8", 53), ("not-an-ip", 1)]
    for other in [*others, (2130706433, 1), "/socket", ()]:  # 2130706433 == int(127.0.0.1)
        assert not is_loopback(other)


def test_tamper_serves_other_bytes_under_the_real_hash_and_size(releases: Releases) -> None:
    evil = b"not even a zip"
    with serve_index(releases.wheelhouse, tamper={DEP_11: evil}) as url:
        files = {e["filename"]: e for e in _request(url + "idx-dep/").json()["files"]}
        html_page = _request(url + "idx-dep/", accept="text/html").body.decode()
        served = _request(_base(url) + f"files/{DEP_11}")
        head = _request(_base(url) + f"files/{DEP_11}", method="HEAD")
        honest = _request(_base(url) + f"files/{DEP_10}")
    assert files[DEP_11]["hashes"]["sha256"] == releases.sha256(DEP_11)
    assert files[DEP_11]["size"] == releases.path(DEP_11).stat().st_size
    assert f"#sha256={releases.sha256(DEP_11)}" in html_page
    assert served.body == evil
    assert served.headers["content-length"] == head.headers["content-length"] == str(len(evil))
    assert honest.body == releases.path(DEP_10).read_bytes()


def test_same_size_tamper_keeps_a_valid_archive(releases: Releases) -> None:
    original = releases.path(DEP_11).read_bytes()
    tampered = same_size_tamper(releases.path(DEP_11))
    assert len(tampered) == len(original)
    assert tampered != original
    assert same_size_tamper(releases.path(DEP_11)) == tampered  # reproducible
    with zipfile.ZipFile(io.BytesIO(original)) as before, zipfile.ZipFile(io.BytesIO(tampered)) as after:
        assert after.testzip() is None
        assert after.namelist() == before.namelist()
        changed = [n for n in before.namelist() if before.read(n) != after.read(n)]
        assert changed == ["idxdep/__init__.py", "idx_dep-1.1.dist-info/RECORD"]
        module = after.read("idxdep/__init__.py")
        assert len(module) == len(before.read("idxdep/__init__.py"))
        assert re.fullmatch(rb"TAMPERED = True\n#+", module)
        compile(module, "idxdep/__init__.py", "exec")  # still valid Python
        digest = hashlib.sha256(module).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record = after.read("idx_dep-1.1.dist-info/RECORD").decode()
        assert f"idxdep/__init__.py,sha256={expected},{len(module)}" in record.splitlines()


def test_same_size_tamper_options(releases: Releases, tmp_path: Path) -> None:
    chosen = same_size_tamper(releases.path(DEP_11), member="idxdep/__init__.py", payload=b"X=1\n")
    with zipfile.ZipFile(io.BytesIO(chosen)) as archive:
        assert archive.read("idxdep/__init__.py").startswith(b"X=1\n#")
    with pytest.raises(ValueError, match="does not fit"):
        same_size_tamper(releases.path(DEP_11), payload=b"#" * 1000)
    with pytest.raises(KeyError):
        same_size_tamper(releases.path(DEP_11), member="nope.py")
    data_only = build_wheel(tmp_path, "data-only", "1.0", {"data_only/blob.txt": "x\n"})
    with pytest.raises(ValueError, match="no module"):
        same_size_tamper(data_only)


# ------------------------------------------------------------- real installers


def _child_env(tmp_path: Path) -> dict[str, str]:
    """os.environ without any PIP_*/UV_* key, isolated from every config file and cache."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_CACHE_DIR=str(tmp_path / "pip-cache"),
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        NO_PROXY="127.0.0.1,localhost",  # the index is on loopback, never behind a proxy
        no_proxy="127.0.0.1,localhost",
    )
    return env


def _run(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


@dataclass(frozen=True)
class Installer:
    name: str
    command: tuple[str, ...]
    index_option: str  # the installer's "this is the only index" flag
    env: dict[str, str]

    def install(self, index_url: str, target: Path, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*self.command, self.index_option, index_url, "--target", str(target), *args]
        return _run(argv, self.env)


def _uv(tmp_path: Path) -> Installer:
    uv = find_uv()  # the one the hook would run
    if uv is None:
        pytest.skip("uv is not installed")
    command = (uv, "pip", "install", "--python", sys.executable)
    return Installer("uv", command, "--default-index", _child_env(tmp_path))


@pytest.fixture(params=["pip", "uv"])
def installer(request: pytest.FixtureRequest, tmp_path: Path) -> Installer:
    if request.param == "uv":
        return _uv(tmp_path)
    command = (sys.executable, "-m", "pip", "install")
    return Installer("pip", command, "--index-url", _child_env(tmp_path))


@pytest.fixture
def uv(tmp_path: Path) -> Installer:
    return _uv(tmp_path)


def _installed(target: Path) -> list[str]:
    """``name-version`` of every dist-info in *target*."""
    return sorted(p.name[: -len(".dist-info")] for p in target.glob("*.dist-info"))


def test_installs_a_closure_from_the_index(
    installer: Installer, releases: Releases, tmp_path: Path
) -> None:
    log: list[str] = []
    target = tmp_path / "target"
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times, request_log=log) as url:
        _ok(installer.install(url, target, "idx-app"))
    assert _installed(target) == ["idx_app-2.0", "idx_dep-1.1"]
    assert (target / "idx_dep-1.1.dist-info" / "INSTALLER").read_text().strip() == installer.name
    for path in ("/simple/idx-app/", "/simple/idx-dep/", f"/files/{APP_20}", f"/files/{DEP_11}"):
        assert f"GET {path}" in log, log
    if installer.name == "uv":
        assert f"HEAD /files/{APP_20}" in log  # it probes before streaming


def test_uv_exclude_newer_picks_the_release_before_the_cutoff(
    uv: Installer, releases: Releases, index: str, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    _ok(uv.install(index, target, "--exclude-newer", releases.cutoff, "idx-app"))
    assert _installed(target) == ["idx_app-1.1", "idx_dep-1.0"]


def test_uv_exclude_newer_fails_closed_without_upload_times(
    uv: Installer, releases: Releases, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    with serve_index(releases.wheelhouse, default_upload_time=None) as url:
        result = uv.install(url, target, "--exclude-newer", releases.cutoff, "idx-app")
    assert result.returncode == 1, result.stderr
    assert f"`{APP_20}` is missing an upload date, but user provided: {releases.cutoff}" in result.stderr
    assert "`idx-app` was filtered by `exclude-newer`" in result.stderr
    assert _installed(target) == []


def _uv_compile(uv: Installer, index_url: str, cutoff: str, tmp_path: Path) -> str:
    """``uv pip compile --format pylock.toml`` of ``idx-app``: the lock's text."""
    requirements = tmp_path / "requirements.in"
    requirements.write_text("idx-app\n")
    argv = [
        uv.command[0], "pip", "compile", "--python", sys.executable, "--quiet",
        "--default-index", index_url, "--exclude-newer", cutoff,
        "--format", "pylock.toml", str(requirements),
    ]  # fmt: skip
    result = _run(argv, uv.env)
    _ok(result)
    return result.stdout


def test_uv_compile_pylock_records_url_hash_size_and_upload_time(
    uv: Installer, releases: Releases, index: str, tmp_path: Path
) -> None:
    lock = tomllib.loads(_uv_compile(uv, index, releases.cutoff, tmp_path))
    assert lock["lock-version"] == "1.0"
    packages = {(p["name"], p["version"]): p for p in lock["packages"]}
    assert sorted(packages) == [("idx-app", "1.1"), ("idx-dep", "1.0")]
    for (name, version), package in packages.items():
        filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        (wheel,) = package["wheels"]
        assert wheel["url"] == _base(index) + f"files/{filename}"
        assert wheel["hashes"] == {"sha256": releases.sha256(filename)}
        assert wheel["size"] == releases.path(filename).stat().st_size
        uploaded = releases.upload_times.get(filename, DEFAULT_UPLOAD_TIME)
        assert wheel["upload-time"] == uploaded.replace(microsecond=0)  # uv keeps whole seconds
        assert "index" not in package  # uv pip compile records no index


def _tampered(releases: Releases, filename: str, kind: str, tmp_path: Path) -> bytes:
    """Other bytes for *filename*: of the same size, or a valid wheel of another size."""
    real = releases.path(filename)
    if kind == "same-size":
        return same_size_tamper(real)
    name, version = filename.split("-")[:2]
    evil = build_wheel(
        tmp_path / "evil", name, version, {f"{name.replace('_', '')}/__init__.py": "print('pwned')\n"}
    ).read_bytes()
    assert len(evil) != real.stat().st_size
    return evil


@pytest.mark.parametrize("kind", ["same-size", "other-size"])
def test_uv_refuses_a_tampered_file_from_its_pylock(
    kind: str, uv: Installer, releases: Releases, tmp_path: Path
) -> None:
    # Lock against the honest index, then install that lock from a tampered one.
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times) as honest:
        lock = _uv_compile(uv, honest, releases.cutoff, tmp_path)
    evil = _tampered(releases, APP_11, kind, tmp_path)
    target = tmp_path / "target"
    with serve_index(releases.wheelhouse, tamper={APP_11: evil}) as url:
        lock_path = tmp_path / "pylock.toml"
        lock_path.write_text(lock.replace(_base(honest), _base(url)))
        result = _run(
            [uv.command[0], "pip", "install", "--python", sys.executable, "--target", str(target),
             "--preview-features", "pylock", "-r", str(lock_path)],
            uv.env,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    if kind == "same-size":
        assert "Hash mismatch for `idx-app==1.1`" in result.stderr
        assert f"sha256:{releases.sha256(APP_11)}" in result.stderr
        assert f"sha256:{hashlib.sha256(evil).hexdigest()}" in result.stderr
    else:  # the lock's size is checked first
        size = releases.path(APP_11).stat().st_size
        assert (
            f"Size mismatch for `idx-app==1.1`: expected {size} bytes, but downloaded {len(evil)} bytes"
        ) in result.stderr
    assert _installed(target) == []


@pytest.mark.parametrize("kind", ["same-size", "other-size"])
def test_tampered_file_is_refused_when_hashes_are_required(
    kind: str, installer: Installer, releases: Releases, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"idx-dep==1.1 --hash=sha256:{releases.sha256(DEP_11)}\n")
    evil = _tampered(releases, DEP_11, kind, tmp_path)
    target = tmp_path / "target"
    with serve_index(releases.wheelhouse, tamper={DEP_11: evil}) as url:
        result = installer.install(url, target, "--require-hashes", "-r", str(requirements))
    assert result.returncode == 1, result.stderr
    expected, got = releases.sha256(DEP_11), hashlib.sha256(evil).hexdigest()
    if installer.name == "pip":
        assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stderr
        assert f"Expected sha256 {expected}" in result.stderr
        assert f"Got        {got}" in result.stderr
    else:  # from an index, uv compares hashes only, whatever the size
        assert "Hash mismatch for `idx-dep==1.1`" in result.stderr
        assert f"sha256:{expected}" in result.stderr
        assert f"sha256:{got}" in result.stderr
    assert not (target / "idxdep").exists()
    assert _installed(target) == []


# --------------------------------------------- pip >= 26.0 (from the package index)

_NETWORK = os.environ.get("LAZY_IMPORT_HOOK_NETWORK_TESTS") == "1"
_AMBIENT = dict(os.environ)  # as the machine has it, before any fixture of this module


@pytest.fixture(scope="module")
def newest_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the newest pip the package index has for this Python."""
    venv = tmp_path_factory.mktemp("newest-pip") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    upgrade = [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"]
    _ok(subprocess.run(upgrade, env=_AMBIENT, capture_output=True, text=True, timeout=300, check=False))
    return python


def _pip_version(python: Path) -> tuple[int, ...]:
    out = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    match = re.match(r"pip (\d+)\.(\d+)", out)
    assert match, out
    return tuple(int(part) for part in match.groups())


@pytest.mark.skipif(not _NETWORK, reason="network test: set LAZY_IMPORT_HOOK_NETWORK_TESTS=1")
def test_pip_uploaded_prior_to_with_the_newest_pip(
    newest_pip: Path, releases: Releases, tmp_path: Path
) -> None:
    assert _pip_version(newest_pip) >= (26, 0), "--uploaded-prior-to needs pip >= 26.0"
    pip = Installer("pip", (str(newest_pip), "-m", "pip", "install"), "--index-url", _child_env(tmp_path))
    target = tmp_path / "target"
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times) as url:
        _ok(pip.install(url, target, "--uploaded-prior-to", releases.cutoff, "idx-app"))
    assert _installed(target) == ["idx_app-1.1", "idx_dep-1.0"]

    blind = tmp_path / "blind"
    with serve_index(releases.wheelhouse, default_upload_time=None) as url:
        result = pip.install(url, blind, "--uploaded-prior-to", releases.cutoff, "idx-app")
    assert result.returncode == 1, result.stderr
    assert f"ERROR: Index {url}idx-app/ does not provide upload-time metadata." in result.stderr
    assert _installed(blind) == []


@pytest.fixture(autouse=True)
def _no_global_config_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # _child_env must drop the parent's PIP_*/UV_* variables, even these:
    # each would change what gets installed or whether hashes are checked.
    for key, value in {
        "PIP_FIND_LINKS": "/nonexistent-find-links",
        "PIP_CONSTRAINT": "/nonexistent-constraints.txt",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple/",
        "PIP_EXTRA_INDEX_URL": "http://127.0.0.1:9/simple/",
        "UV_FIND_LINKS": "/nonexistent-find-links",
        "UV_CONSTRAINT": "/nonexistent-constraints.txt",
        "UV_INDEX": "http://127.0.0.1:9/simple/",
        "UV_EXCLUDE_NEWER": "2000-01-01T00:00:00Z",
        "UV_NO_VERIFY_HASHES": "1",
    }.items():
        monkeypatch.setenv(key, value)
