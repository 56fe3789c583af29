"""Self-checks for the test helpers: the toy wheels, sdists and find-links server
must be accepted by the real installers (pip and uv), fully offline.

Every installer runs with an explicitly built environment (see ``_child_env``):
this machine's global pip configuration (find-links, extra index URLs,
constraints) must never leak into a test.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from _slow_index import serve_find_links
from _wheelhouse import build_sdist, build_wheel, normalize_name, wheel_sha256

APP_FILES = {"appmod/__init__.py": "from depmod import V as DEP_V\nAPP = 1\n"}
DEP_FILES = {"depmod/__init__.py": "V = 12\n"}
TOY_FILES = {"toymod/__init__.py": "T = 2\n", "toymod/data.txt": "payload\n"}
SUBPROCESS_TIMEOUT = 60.0


def _find_uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    try:
        import uv
    except ImportError:
        return None
    try:
        return uv.find_uv_bin()
    except FileNotFoundError:
        return None


def _child_env(tmp_path: Path) -> dict[str, str]:
    """os.environ without any PIP_*/UV_* key, plus isolation from all config files."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_CACHE_DIR=str(tmp_path / "pip-cache"),  # keep built wheels out of ~/.cache
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


@dataclass(frozen=True)
class Installer:
    name: str
    command: tuple[str, ...]
    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        return [*self.command, *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )

    def install(
        self, links: str, target: Path, *requirements: str, extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "--no-index", "--find-links", links, "--target", str(target), *extra, *requirements
        )


@pytest.fixture(params=["pip", "uv"])
def installer(request: pytest.FixtureRequest, tmp_path: Path) -> Installer:
    env = _child_env(tmp_path)
    if request.param == "pip":
        return Installer("pip", (sys.executable, "-m", "pip", "install"), env)
    uv = _find_uv()
    if uv is None:
        pytest.skip("uv is not installed")
    return Installer("uv", (uv, "pip", "install", "--python", sys.executable), env)


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    directory = tmp_path / "wheelhouse"
    build_wheel(directory, "App.Dist", "1.0", APP_FILES, requires=["dep-dist>=1"])
    build_wheel(directory, "dep_dist", "1.2", DEP_FILES)
    build_sdist(directory, "toy-sdist", "2.0", TOY_FILES)
    return directory


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def _python_in(target: Path, tmp_path: Path, code: str) -> str:
    """Run *code* in a fresh interpreter that sees *target* first on sys.path."""
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, sys.argv[1]); {code}", str(target)],
        env=_child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    _ok(result)
    return result.stdout.strip()


def _record_rows(archive: zipfile.ZipFile, dist_info: str) -> list[list[str]]:
    text = archive.read(f"{dist_info}/RECORD").decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


# --------------------------------------------------------------------- the archives


def test_wheel_layout_record_and_reproducibility(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "mymod/__init__.py": "X = 1\n",
        "mymod/blob.bin": bytes(range(256)),
        "mymod.pth": "import os\n",
        "single.py": "S = 1\n",
    }
    requires = ["dep>=1", "other; python_version>'3'"]
    extra = ["Requires-Python: >=3.9"]
    first = build_wheel(
        tmp_path / "a", "My.Dist", "1.0", files, requires=requires, extra_metadata=extra
    )
    second = build_wheel(
        tmp_path / "b", "My.Dist", "1.0", files, requires=requires, extra_metadata=extra
    )
    assert first.name == "my_dist-1.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    assert wheel_sha256(first) == "sha256:" + hashlib.sha256(first.read_bytes()).hexdigest()

    dist_info = "my_dist-1.0.dist-info"
    with zipfile.ZipFile(first) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        generated = ("METADATA", "WHEEL", "top_level.txt", "RECORD")
        assert set(names) == set(files) | {f"{dist_info}/{n}" for n in generated}
        assert names[-1] == f"{dist_info}/RECORD"
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        assert metadata.splitlines() == [
            "Metadata-Version: 2.1",
            "Name: My.Dist",
            "Version: 1.0",
            "Requires-Dist: dep>=1",
            "Requires-Dist: other; python_version>'3'",
            "Requires-Python: >=3.9",
        ]
        wheel = archive.read(f"{dist_info}/WHEEL").decode().splitlines()
        assert "Wheel-Version: 1.0" in wheel
        assert "Root-Is-Purelib: true" in wheel
        assert "Tag: py3-none-any" in wheel
        assert archive.read(f"{dist_info}/top_level.txt").decode().split() == ["mymod", "single"]
        assert archive.read("mymod/blob.bin") == bytes(range(256))

        rows = _record_rows(archive, dist_info)
        assert sorted(row[0] for row in rows) == sorted(names)
        for path, digest, size in rows:
            if path == f"{dist_info}/RECORD":
                assert (digest, size) == ("", "")
                continue
            data = archive.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert size == str(len(data))


def test_wheel_inputs_are_checked(tmp_path: Path) -> None:
    assert normalize_name("Foo.Bar-_baz") == "foo_bar_baz"
    for bad in ("/abs.py", "../up.py", "a//b.py", "a\\b.py", "dist-1.0.dist-info/RECORD"):
        with pytest.raises(ValueError):
            build_wheel(tmp_path, "dist", "1.0", {bad: ""})
    multi = build_wheel(tmp_path, "m", "1", {"m.py": ""}, tag="py2.py3-none-any")
    with zipfile.ZipFile(multi) as archive:
        tags = archive.read("m-1.dist-info/WHEEL").decode().splitlines()
    assert [t for t in tags if t.startswith("Tag:")] == ["Tag: py2-none-any", "Tag: py3-none-any"]


def test_sdist_layout_and_in_tree_backend(tmp_path: Path) -> None:
    sdist = build_sdist(tmp_path / "a", "Toy.Sdist", "2.0", TOY_FILES, requires=["dep-dist"])
    assert sdist.name == "toy_sdist-2.0.tar.gz"
    again = build_sdist(tmp_path / "b", "Toy.Sdist", "2.0", TOY_FILES, requires=["dep-dist"])
    assert again.read_bytes() == sdist.read_bytes()
    with tarfile.open(sdist) as tar:
        names = sorted(tar.getnames())
        assert names == sorted(
            f"toy_sdist-2.0/{n}"
            for n in ("PKG-INFO", "pyproject.toml", "toy_backend.py", *TOY_FILES)
        )
        pyproject = tar.extractfile("toy_sdist-2.0/pyproject.toml")
        assert pyproject is not None
        text = pyproject.read().decode()
        if hasattr(tarfile, "data_filter"):  # 3.12+ (and backports): no deprecation warning
            tar.extractall(tmp_path / "src", filter="data")
        else:
            tar.extractall(tmp_path / "src")  # trusted archive we just made
    assert "requires = []" in text
    assert 'build-backend = "toy_backend"' in text
    assert 'backend-path = ["."]' in text

    # Run the PEP 517 hooks by hand, in a fresh interpreter, from the tree.
    tree = tmp_path / "src" / "toy_sdist-2.0"
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import sys, toy_backend as b\n"
        "print(b.get_requires_for_build_wheel())\n"
        "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))\n"
        "print(b.build_wheel(sys.argv[1]))\n"
        "print(b.build_sdist(sys.argv[1]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=tree,
        env=_child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    _ok(result)
    assert result.stdout.split() == [
        "[]",
        "toy_sdist-2.0.dist-info",
        "toy_sdist-2.0-py3-none-any.whl",
        "toy_sdist-2.0.tar.gz",
    ]
    # The backend is this very module: its wheel is the one build_wheel makes,
    # and its sdist reproduces the original byte for byte.
    reference = build_wheel(tmp_path / "ref", "Toy.Sdist", "2.0", TOY_FILES, requires=["dep-dist"])
    assert (out / reference.name).read_bytes() == reference.read_bytes()
    assert (out / sdist.name).read_bytes() == sdist.read_bytes()
    metadata = (out / "toy_sdist-2.0.dist-info" / "METADATA").read_text()
    assert "Requires-Dist: dep-dist" in metadata


# ------------------------------------------------------------- the find-links server


def test_find_links_server_serves_index_and_files(wheelhouse: Path) -> None:
    log: list[str] = []
    with serve_find_links(wheelhouse, request_log=log) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/html")
            page = response.read().decode()
        for entry in sorted(wheelhouse.iterdir()):
            assert f'<a href="{entry.name}">{entry.name}</a>' in page
            with urllib.request.urlopen(url + entry.name, timeout=5) as response:
                assert response.read() == entry.read_bytes()
        request = urllib.request.Request(url + "dep_dist-1.2-py3-none-any.whl", method="HEAD")
        with urllib.request.urlopen(request, timeout=5) as response:
            size = (wheelhouse / "dep_dist-1.2-py3-none-any.whl").stat().st_size
            assert response.headers["Content-Length"] == str(size)
            assert response.read() == b""
        for missing in ("nope.whl", "..%2Fwheelhouse", "%2E%2E/%2E%2E/etc/passwd", "a/b"):
            with pytest.raises(urllib.error.HTTPError) as excinfo:
                urllib.request.urlopen(url + missing, timeout=5)
            assert excinfo.value.code == 404
            excinfo.value.close()
    assert log[0] == "GET /"
    assert "HEAD /dep_dist-1.2-py3-none-any.whl" in log


def test_find_links_server_stalls_mid_body_and_shuts_down_promptly(wheelhouse: Path) -> None:
    name = "dep_dist-1.2-py3-none-any.whl"
    body = (wheelhouse / name).read_bytes()
    with serve_find_links(wheelhouse, delay_seconds=0.8, delay_for={"dep_"}) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        # Not delayed: fast.
        start = time.monotonic()
        with urllib.request.urlopen(url + "app_dist-1.0-py3-none-any.whl", timeout=5) as response:
            response.read()
        assert time.monotonic() - start < 0.6
        # Delayed: the first half arrives at once, the rest after the pause.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        start = time.monotonic()
        conn.request("GET", "/" + name)
        response = conn.getresponse()
        head = response.read(len(body) // 2)
        first_half_at = time.monotonic() - start
        rest = response.read()
        total = time.monotonic() - start
        conn.close()
        assert head + rest == body
        assert first_half_at < 0.6
        assert total >= 0.75

    # A download stalled for a long time is cut short when the context exits.
    outcome: list[object] = []
    ready = threading.Event()

    def download(base: str) -> None:
        try:
            with urllib.request.urlopen(base + name, timeout=10) as response:
                ready.set()
                outcome.append(response.read())
        except Exception as exc:  # http.client.IncompleteRead expected
            outcome.append(exc)
        finally:
            ready.set()

    with serve_find_links(wheelhouse, delay_seconds=60, delay_for="dep_") as url:
        thread = threading.Thread(target=download, args=(url,), daemon=True)
        thread.start()
        assert ready.wait(5)
        time.sleep(0.1)
        start = time.monotonic()
    assert time.monotonic() - start < 1.0
    thread.join(5)
    assert len(outcome) == 1
    assert isinstance(outcome[0], http.client.IncompleteRead)


def test_find_links_server_holds_a_stall_until_its_gate_opens(wheelhouse: Path) -> None:
    name = "dep_dist-1.2-py3-none-any.whl"
    body = (wheelhouse / name).read_bytes()
    gate, half_read = threading.Event(), threading.Event()
    got: list[bytes] = []

    def download(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/" + name)
        response = conn.getresponse()
        head = response.read(len(body) // 2)
        half_read.set()
        got.append(head + response.read())
        conn.close()

    with serve_find_links(wheelhouse, delay_seconds=60, delay_for="dep_", gate=gate) as url:
        thread = threading.Thread(target=download, args=(int(url.rsplit(":", 1)[1].strip("/")),))
        thread.start()
        assert half_read.wait(30)
        assert thread.is_alive() and not got  # the rest waits for the gate, not for a clock
        gate.set()
        thread.join(30)
    assert got == [body]


# ------------------------------------------------------------------ real installers


def test_install_wheel_with_dependency(
    installer: Installer, wheelhouse: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    _ok(installer.install(str(wheelhouse), target, "app-dist"))
    assert (target / "app_dist-1.0.dist-info" / "RECORD").is_file()
    assert (target / "dep_dist-1.2.dist-info" / "RECORD").is_file()
    installer_name = (target / "dep_dist-1.2.dist-info" / "INSTALLER").read_text().strip()
    assert installer_name == installer.name
    assert _python_in(target, tmp_path, "import appmod; print(appmod.APP, appmod.DEP_V)") == "1 12"


def test_install_sdist_only_distribution(
    installer: Installer, wheelhouse: Path, tmp_path: Path
) -> None:
    refused = installer.install(
        str(wheelhouse), tmp_path / "refused", "toy-sdist", extra=("--only-binary", ":all:")
    )
    assert refused.returncode != 0
    assert not (tmp_path / "refused" / "toymod").exists()

    target = tmp_path / "target"
    _ok(installer.install(str(wheelhouse), target, "toy-sdist"))
    assert (target / "toy_sdist-2.0.dist-info" / "METADATA").is_file()
    assert (target / "toymod" / "data.txt").read_text() == "payload\n"
    assert _python_in(target, tmp_path, "import toymod; print(toymod.T)") == "2"


def test_install_through_find_links_url(
    installer: Installer, wheelhouse: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    log: list[str] = []
    with serve_find_links(wheelhouse, request_log=log) as url:
        _ok(installer.install(url, target, "app-dist", "toy-sdist"))
    for dist_info in ("app_dist-1.0", "dep_dist-1.2", "toy_sdist-2.0"):
        assert (target / f"{dist_info}.dist-info").is_dir()
    assert "GET /" in log
    assert "GET /dep_dist-1.2-py3-none-any.whl" in log
    assert "GET /toy_sdist-2.0.tar.gz" in log


def test_installer_is_observably_stuck_mid_download(
    installer: Installer, wheelhouse: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    log: list[str] = []
    delay = 1.0
    dep_get = "GET /dep_dist-1.2-py3-none-any.whl"
    with serve_find_links(
        wheelhouse, delay_seconds=delay, delay_for={"dep_"}, request_log=log
    ) as url:
        start = time.monotonic()
        proc = subprocess.Popen(
            installer.argv("--no-index", "--find-links", url, "--target", str(target), "app-dist"),
            env=installer.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = start + 10
            while dep_get not in log and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert dep_get in log, log
            time.sleep(0.15)
            # uv's first GET of a wheel may only stream its METADATA (which sits in
            # the first half); the download that installs it is the one that stalls.
            assert proc.poll() is None, "installer finished during the stall"
            assert not (target / "depmod").exists()
            output, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - start
    assert proc.returncode == 0, output
    assert elapsed >= delay
    assert (target / "depmod" / "__init__.py").is_file()


def test_hash_pinning(installer: Installer, wheelhouse: Path, tmp_path: Path) -> None:
    dep = wheelhouse / "dep_dist-1.2-py3-none-any.whl"
    good = tmp_path / "good.txt"
    good.write_text(f"dep-dist==1.2 --hash={wheel_sha256(dep)}\n")
    bad = tmp_path / "bad.txt"
    bad.write_text(f"dep-dist==1.2 --hash=sha256:{'0' * 64}\n")

    pinned = ("--require-hashes", "-r", str(good))
    _ok(installer.install(str(wheelhouse), tmp_path / "good", extra=pinned))
    assert (tmp_path / "good" / "depmod").is_dir()

    rejected = installer.install(
        str(wheelhouse), tmp_path / "bad", extra=("--require-hashes", "-r", str(bad))
    )
    assert rejected.returncode != 0
    assert "0" * 64 in rejected.stderr
    assert wheel_sha256(dep).split(":", 1)[1] in rejected.stderr
    assert not (tmp_path / "bad" / "depmod").exists()


def test_double_dash_before_requirement(
    installer: Installer, wheelhouse: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    _ok(installer.install(str(wheelhouse), target, "--", "dep-dist"))
    assert (target / "depmod").is_dir()


@pytest.fixture(autouse=True)
def _no_global_config_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belt and braces: nothing in this module relies on the parent's PIP_/UV_
    # variables; _child_env must drop them even when they point somewhere bogus.
    monkeypatch.setenv("PIP_FIND_LINKS", "/nonexistent-find-links")
    monkeypatch.setenv("PIP_CONSTRAINT", "/nonexistent-constraints.txt")
    monkeypatch.setenv("UV_FIND_LINKS", "/nonexistent-find-links")
    monkeypatch.setenv("UV_CONSTRAINT", "/nonexistent-constraints.txt")
