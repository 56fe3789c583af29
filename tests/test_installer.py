"""Unit tier: the exact installer command lines, installer choice, failures."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakes import PIP, installs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import lazy_import_hook
from lazy_import_hook import LazyInstallError, _environment, _installer, _installers, _process, _uv
from lazy_import_hook._installer import Failure, InstallRequest, failure_error
from lazy_import_hook._pip import Pip
from lazy_import_hook._plan import Entry
from lazy_import_hook._uv import Uv

TOY = {"toymod/__init__.py": "VERSION = '1.0'\n"}
ENTRY = Entry("toymod", ("toy-dist==1.0",), dists=("toy-dist",))


def test_pip_command_line() -> None:
    cmd = Pip(sys.executable).command(
        InstallRequest("/t/stage", ["toy-dist==1.0"], constraints="/t/c.txt")
    )
    assert cmd == [
        sys.executable, "-m", "pip", "install", "--target", "/t/stage",
        "--no-input", "--disable-pip-version-check", "--no-warn-script-location", "--progress-bar", "off",
        "--compile", "--only-binary", ":all:", "--constraint", "/t/c.txt", "--", "toy-dist==1.0",
    ]  # fmt: skip


def test_uv_command_line_always_names_this_interpreter() -> None:
    cmd = Uv("/bin/uv").command(
        InstallRequest("/t/stage", ["a==1", "b[x]==2"], constraints="/t/c.txt")
    )
    assert cmd == [
        "/bin/uv", "pip", "install", "--python", sys.executable, "--no-config", "--target", "/t/stage",
        "--no-progress", "--color", "never", "--compile-bytecode", "--only-binary", ":all:",
        "--constraint", "/t/c.txt", "--", "a==1", "b[x]==2",
    ]  # fmt: skip


def test_no_bytecode_flags_follow_dont_write_bytecode() -> None:
    request = InstallRequest("/t", ["a==1"], compile_bytecode=False)
    pip = Pip(sys.executable).command(request)
    uv = Uv("/bin/uv").command(request)
    assert "--no-compile" in pip and "--compile-bytecode" not in uv


def test_hashed_entries_go_through_a_requirements_file(tmp_path: Path) -> None:
    entry = Entry("toymod", ("toy-dist==1.0",), dists=("toy-dist",), hashes=("sha256:" + "a" * 64,))
    req = tmp_path / "r.txt"
    _installer.write_requirements(str(req), entry.requirements, entry.hashes)
    assert req.read_text() == f"toy-dist==1.0 --hash=sha256:{'a' * 64}\n"
    cmd = Pip(sys.executable).command(
        InstallRequest("/t", entry.requirements, requirements_file=str(req), require_hashes=True)
    )
    assert cmd[-3:] == ["--require-hashes", "--requirement", str(req)]
    assert "toy-dist==1.0" not in cmd


def test_the_requirements_file_leaves_out_markers(tmp_path: Path) -> None:
    """An active entry's markers are true here; a marker string must not be
    read as a requirements-file option."""
    spec = 'toy-dist[x]==1.0; platform_release != " --index-url=http://evil "'
    entry = Entry("toymod", (spec,), dists=("toy-dist",), hashes=("sha256:" + "a" * 64,))
    req = tmp_path / "r.txt"
    _installer.write_requirements(str(req), entry.requirements, entry.hashes)
    assert req.read_text() == f"toy-dist[x]==1.0 --hash=sha256:{'a' * 64}\n"


def test_the_real_run_uses_the_pip_command_with_constraints(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    import toymod  # noqa: F401

    (call,) = [c for c in fp.calls if list(c)[:4] == PIP]
    args = list(call)
    staging = args[args.index("--target") + 1]
    assert Path(staging).parent == target / ".lazy-import-hook" / "staging"
    assert args[args.index("--") + 1 :] == ["toy-dist==1.0"]
    assert args.index("--constraint") < args.index("--")


@pytest.mark.parametrize("allow_sdist", [False, True])
def test_a_wheels_only_install_keeps_its_temporary_files_beside_its_staging_folder(
    fp: Any, target: Path, allow_sdist: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build from source keeps the application's: its tools make Unix
    sockets there, with no room for a path that deep."""
    monkeypatch.setenv("TMPDIR", "/app/tmp")
    seen: list[tuple[str, bool]] = []

    def record(process: Any) -> None:
        folder = process.kwargs["env"]["TMPDIR"]
        seen.append((folder, os.path.isdir(folder) and os.stat(folder).st_mode & 0o777 == 0o700))

    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY, also=[record]))
    entry = {"requirement": "toy-dist==1.0", "allow-sdist": allow_sdist}
    lazy_import_hook.install({"toymod": entry}, target=target, installer="pip")
    import toymod  # noqa: F401

    ((folder, private),) = seen
    if allow_sdist:
        assert folder == "/app/tmp"
    else:
        assert Path(folder).parent == target / ".lazy-import-hook" / "staging" and private
        assert not os.path.exists(folder)  # gone with the install


def test_core_constraints_pin_what_the_environment_has() -> None:
    import packaging

    lines = _environment.core_constraints([], ["toy-dist"])
    assert f"packaging=={packaging.__version__}" in lines
    assert all("==" in line for line in lines)
    assert not any(line.startswith("toy-dist") for line in lines)


def test_forced_uv_that_is_missing_is_an_error_not_a_fallback(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_uv, "find_uv", lambda: None)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="uv")
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert "installer 'uv' was requested but no uv was found" in str(info.value)


def test_auto_prefers_uv_and_falls_back_to_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_uv, "find_uv", lambda: "/opt/uv")
    chosen = _installers.choose("auto")
    assert (chosen.name, chosen.executable) == ("uv", "/opt/uv")
    assert _installers.choose("pip").name == "pip"
    monkeypatch.setattr(_uv, "find_uv", lambda: None)
    assert _installers.choose("auto").name == "pip"


def test_environment_variable_forces_the_installer(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAZY_IMPORT_HOOK_INSTALLER", "pip")
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    import toymod  # noqa: F401

    assert fp.call_count([*PIP, fp.any()]) == 1


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.", "hash-mismatch"),
        ("cause: Hash mismatch for `toy-dist==1.0`", "hash-mismatch"),
        ("Because toy-dist==1.0 has no usable wheels and building from source is disabled", "sdist-refused"),
        ("ERROR: Could not find a version that satisfies x (from versions: none)", "installer-failed"),
        ("something else", "installer-failed"),
    ],
)  # fmt: skip
def test_failures_are_classified_from_the_installers_words(output: str, reason: str) -> None:
    failure = Failure(
        "toymod", ENTRY.what, ENTRY.dists, code=1, output=output, command="pip install x", only_binary=True
    )
    error = failure_error(failure, 10)
    assert isinstance(error, ImportError) and error.reason == reason and error.name == "toymod"
    assert output in str(error)
    assert ("allow-sdist" in str(error)) == (reason == "sdist-refused")  # only when the installer says so
    if reason == "hash-mismatch":
        assert "toy-dist" in str(error)


@pytest.fixture(params=["posix_spawn", "subprocess"])
def spawner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test once with each way of starting an installer, and a check
    that it was that way (a silent fallback would pass them all)."""
    fast = request.param == "posix_spawn"
    if fast and not (sys.platform.startswith("linux") and hasattr(os, "posix_spawn")):
        pytest.skip("the installer starts with posix_spawn on Linux only")
    spawned: list[str] = []
    real = getattr(os, "posix_spawn", None)

    def spy(path: str, *args: Any, **kwargs: Any) -> int:
        spawned.append(path)
        assert real is not None
        pid: int = real(path, *args, **kwargs)
        return pid

    monkeypatch.setattr(os, "posix_spawn", spy, raising=False)
    monkeypatch.setattr(_process, "POSIX_SPAWN", fast)
    yield request.param
    assert bool(spawned) == fast, spawned


def test_a_real_timeout_kills_the_whole_process_group(spawner: str, tmp_path: Path) -> None:
    import time

    marker = tmp_path / "grandchild-survived"
    grandchild = tmp_path / "grandchild.py"
    grandchild.write_text(f"import time\ntime.sleep(1.5)\nopen({str(marker)!r}, 'w').close()\n")
    parent = tmp_path / "installer.py"
    parent.write_text(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(grandchild)!r}])\n"
        "print('started', flush=True)\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    code, output = _process.run([sys.executable, str(parent)], env=os.environ, timeout=0.5)
    assert code is None and "started" in output
    assert time.monotonic() - started < 10
    time.sleep(2)
    assert not marker.exists()  # the installer's own children died with it


@pytest.mark.parametrize("setpriv", [True, False], ids=["setpriv", "no-setpriv"])
def test_an_installer_runs_in_its_folder_with_no_stdin_and_both_streams_captured(
    spawner: str, setpriv: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process, "_SETPRIV", [] if setpriv else [None])  # [] : looked for again
    folder = tmp_path / "a folder with 'quotes' and $(echo spaces)"
    folder.mkdir()
    script = (
        "import functools, os, sys\n"
        "print = functools.partial(print, flush=True)  # stdout and stderr in the order written\n"
        "print('cwd', os.getcwd())\n"
        "print('stdin', repr(sys.stdin.read()))\n"
        "print('env', os.environ.get('PROBE_VALUE'))\n"
        "print('args', sys.argv[1:])\n"
        "print('to stderr', file=sys.stderr)\n"
        "print('sid', os.getsid(0) == os.getpid())\n"
        "sys.exit(3)\n"
    )
    env = {**os.environ, "PROBE_VALUE": "é $HOME"}
    cmd = [sys.executable, "-c", script, "-", "$1", "a b"]
    code, output = _process.run(cmd, env=env, timeout=60, cwd=str(folder))
    assert code == 3, output
    assert output.splitlines() == [
        f"cwd {folder}", "stdin ''", "env é $HOME", "args ['-', '$1', 'a b']", "to stderr", "sid True",
    ]  # fmt: skip


@pytest.mark.skipif(os.name == "nt", reason="POSIX umask")
@pytest.mark.parametrize("setpriv", [True, False], ids=["setpriv", "no-setpriv"])
@pytest.mark.parametrize(("ours", "theirs"), [(0o000, 0o022), (0o002, 0o022), (0o007, 0o027), (0o077, 0o077)])
def test_an_installer_never_makes_files_others_can_write_whatever_the_umask(
    spawner: str, setpriv: bool, ours: int, theirs: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an installer makes in the target is writable by this user alone:
    the group's and others' write bits are added to a lax umask (and a strict
    one is kept), in the installer only: the application's stays as it was."""
    monkeypatch.setattr(_process, "_SETPRIV", [] if setpriv else [None])
    script = "import os; mask = os.umask(0); print(oct(mask))"
    before = os.umask(ours)
    try:
        for cwd in (str(tmp_path), None):  # posix_spawn changes folder in the shell; without one too
            code, output = _process.run([sys.executable, "-c", script], env=os.environ, timeout=60, cwd=cwd)
            assert (code, output) == (0, oct(theirs)), cwd
        assert os.umask(ours) == ours
    finally:
        os.umask(before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_installer_inherits_no_descriptor_and_no_ignored_signal(spawner: str, tmp_path: Path) -> None:
    """As subprocess does: inheritable descriptors above 2 are closed, and
    the signals Python ignores (SIGPIPE, SIGXFSZ) are back to their default."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)  # as a descriptor handed down to the application
    try:
        shell = "grep SigIgn /proc/$$/status; ls /proc/$$/fd"
        code, output = _process.run(["/bin/sh", "-c", shell], env=os.environ, timeout=60, cwd=str(tmp_path))
    finally:
        os.close(read_end)
        os.close(write_end)
    lines = output.splitlines()
    ignored = int(lines[0].split()[1], 16)  # bit n-1: signal n (glibc's own 32 and 33 may be set)
    assert code == 0 and not ignored & (1 << 12 | 1 << 24), output  # SIGPIPE, SIGXFSZ
    assert str(write_end) not in lines[1:] and "1" in lines[1:], output


def test_an_installer_whose_watcher_fails_as_it_starts_is_killed_and_reaped(
    spawner: str, tmp_path: Path
) -> None:
    class Interrupted(_process.Watcher):
        pid = 0

        def started(self, pid: int) -> None:
            self.pid = pid
            raise KeyboardInterrupt  # a Ctrl-C while the probes start

    watcher = Interrupted()
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(KeyboardInterrupt):
        _process.run(cmd, env=os.environ, timeout=120, cwd=str(tmp_path), watcher=watcher)
    with pytest.raises(ChildProcessError):  # reaped: neither running nor a zombie
        os.waitpid(watcher.pid, os.WNOHANG)


def test_without_a_shell_to_change_folder_the_installer_runs_through_subprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[object] = []
    monkeypatch.setattr(_process, "POSIX_SPAWN", True)
    monkeypatch.setattr(_process, "SHELL", str(tmp_path / "no-shell-here"))  # a distroless image
    monkeypatch.setattr(os, "posix_spawn", lambda *args, **kwargs: spawned.append(args), raising=False)
    cmd = [sys.executable, "-c", "import os; print(os.getcwd())"]
    code, output = _process.run(cmd, env=os.environ, timeout=60, cwd=str(tmp_path))
    assert (code, output, spawned) == (0, str(tmp_path), [])


def test_an_installer_posix_spawn_cannot_start_runs_through_subprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_session(*args: object, **kwargs: object) -> int:
        raise NotImplementedError("setsid")  # as os.posix_spawn says where it lacks POSIX_SPAWN_SETSID

    monkeypatch.setattr(_process, "POSIX_SPAWN", True)
    monkeypatch.setattr(os, "posix_spawn", no_session, raising=False)
    cmd = [sys.executable, "-c", "print('ran')"]
    code, output = _process.run(cmd, env=os.environ, timeout=60, cwd=str(tmp_path))
    assert (code, output) == (0, "ran")


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("packaging==26.2", True),
        ("torch==2.13.0+cpu", True),
        ("zope-interface==7.1.post1", True),
        ("--index-url", False),
        ("--index-url==http://x", False),
        ("--pre==1", False),
        ("x==1", True),
        ("x==1;", False),
        ("X==1", False),
        ("x>=1", False),
    ],
)
def test_a_cached_core_constraint_line_must_be_a_plain_pin(line: str, ok: bool) -> None:
    assert _environment.pinned_line(line) is ok


def test_uvs_provenance_resolution_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(_uv, "PROVENANCE_WAIT", 0.3)
    started = time.monotonic()
    stuck = [sys.executable, "-c", "import time; time.sleep(30)"]
    answer = _uv._compiled(stuck, dict(os.environ), ["toy-dist==1.0"])
    assert answer == "uv's resolution did not answer within 0.3 s"
    assert time.monotonic() - started < 10
    # The pins come on its standard input ("-"): no file of theirs outlives a kill.
    echo = "import sys; sys.exit(f'no such index: {sys.argv[1]} {sys.stdin.read()}')"
    failing = [sys.executable, "-c", echo]
    answer = str(_uv._compiled(failing, dict(os.environ), ["toy-dist==1.0", "toy-dep==1.0"]))
    assert "no such index: - toy-dist==1.0\ntoy-dep==1.0" in answer


def test_a_provenance_asked_after_the_import_is_written_before_the_process_ends(tmp_path: Path) -> None:
    """Not a daemon thread: an application that exits right after the import
    still gets its audit line; the import itself did not wait for it."""
    import json
    import subprocess

    target = tmp_path / "target"
    code = (
        "import json, sys, time\n"
        "from lazy_import_hook import _run\n"
        "from lazy_import_hook._lockfile import Locked\n"
        "def slow():\n"
        "    time.sleep(1.0)\n"
        "    wheel = 'toy_dist-1.0-py3-none-any.whl'\n"
        "    return [Locked('toy-dist', '1.0', filename=wheel, sha256='ab', url='')]\n"
        "started = time.monotonic()\n"
        f"_run.record_provenance_later({str(target)!r}, slow, None, ['toy_dist-1.0.dist-info'],"
        " {'import_name': 'toymod', 'installer': 'uv'})\n"
        "print(time.monotonic() - started)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 0.5  # the caller went on at once
    (line,) = [json.loads(x) for x in (target / ".lazy-import-hook" / "audit.jsonl").read_text().splitlines()]
    assert line["event"] == "provenance" and line["status"] == 0 and line["import_name"] == "toymod"
    assert line["committed"] == ["toy_dist-1.0.dist-info"]
    assert [(f["file"], f["sha256"]) for f in line["provenance"]] == [("toy_dist-1.0-py3-none-any.whl", "ab")]


@pytest.mark.parametrize(
    "marker",
    ["", "1234\n", '{"pid": 1, "subject": "x", "since": 1.0}', "1234\ninf\nx", "1234\nnan\nx", "x\n1.0\ny"],
)
def test_a_waiting_process_says_no_install_is_recorded_rather_than_fail_on_an_odd_marker(
    marker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cut short, another version's JSON, a time no clock shows."""
    from lazy_import_hook import _target, _watch

    os.makedirs(_target.meta(str(tmp_path)))
    with open(_target.meta(str(tmp_path), _target.INSTALLING), "w") as f:
        f.write(marker)
    _watch.say_waiting(str(tmp_path))
    assert "which records no install" in capsys.readouterr().err
    with open(_target.meta(str(tmp_path), _target.INSTALLING), "w") as f:
        f.write("1234\n1700000000.5\ntoy-dist==1.0 for 'import toymod'")
    _watch.say_waiting(str(tmp_path))
    assert "waiting for process 1234, installing toy-dist==1.0 for 'import toymod'" in capsys.readouterr().err


def _provenance_lines(target: Path) -> list[dict[str, Any]]:
    import json
    import threading

    for thread in threading.enumerate():
        if thread.name == "lazy-import-hook provenance":
            thread.join(30)
    audit = target / ".lazy-import-hook" / "audit.jsonl"
    return [json.loads(line) for line in audit.read_text().splitlines()]


def test_a_provenance_that_fails_or_finds_no_thread_says_why_in_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a traceback in the application, never a missing line."""
    import threading

    from lazy_import_hook import _run

    def broken() -> object:
        raise FileNotFoundError("uv is gone")

    fields = {"import_name": "toymod", "installer": "uv"}
    _run.record_provenance_later(str(tmp_path), broken, None, ["toy_dist-1.0.dist-info"], fields)  # type: ignore[arg-type]
    (line,) = _provenance_lines(tmp_path)
    assert line["status"] == "unavailable"
    assert line["provenance"] == [{"unavailable": "FileNotFoundError: uv is gone"}]

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    _run.record_provenance_later(str(tmp_path), list, None, ["toy_dist-1.0.dist-info"], fields)  # type: ignore[arg-type]
    line = _provenance_lines(tmp_path)[-1]
    assert line["status"] == "unavailable"
    assert "no thread to ask it on" in line["provenance"][0]["unavailable"]


def test_pip_is_found_through_the_path_and_never_as_the_hooks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import types

    from lazy_import_hook import _pip, _target

    assert _pip._pip_spec() is not None  # this environment's pip, on sys.path
    monkeypatch.setattr(_target.PathFinder, "find_spec", classmethod(lambda cls, name: None))
    hooks = types.SimpleNamespace(origin=None, name="pip")  # what the hook's finder gives: no file yet
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: hooks)
    assert _pip._pip_spec() is None
    elsewhere = types.SimpleNamespace(origin="/editable/pip/__init__.py", name="pip")  # another finder's
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: elsewhere)
    assert _pip._pip_spec() is elsewhere  # type: ignore[comparison-overlap]



# -- credentials: the installer gets them, nothing shown or written holds them ----------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://pypi.org/simple", "https://pypi.org/simple"),
        ("http://alice:s3cr3t@mirror:8080/simple", "http://alice:****@mirror:8080/simple"),
        ("https://t0ken@pypi.fury.io/me/", "https://****@pypi.fury.io/me/"),  # a lone token, as pip hides it
        ("https://alice:p@ss@mirror/simple", "https://alice:****@mirror/simple"),  # an @ in the password
        ("https://alice:p/ss@mirror/simple", "https://alice:****@mirror/simple"),  # a raw / in it
        ("https://alice:p/s#s@mirror/?a=1", "https://alice:****@****"),  # a raw #: a query may follow
        ("https://alice:p?s=s@mirror/simple", "https://alice:****@****"),  # a raw ?: likewise
        ("https://alice://00@mirror/simple", "https://alice:****@mirror/simple"),  # a password "//00"
        ("https://t0ken@m/r?u=http://alice:s3cr3t@x/", "https://****@m/r?u=****://alice:****@x/"),
        ("https://mirror:8080/simple/?from=a@b", "https://mirror:****@****"),  # the safe side
        ("https://mirror/simple/?user=alice@corp.example&token=s3cr3t", "https://****@****"),  # an e-mail
        ("https://alice:s3cr3t@mirror/?email=a@b.example&key=s3cr3t", "https://alice:****@****"),
        ("https://mirror/simple/?token=s3#cr3t", "https://mirror/simple/?token=****#****"),  # raw #
        ("file:///srv/wheels;https://alice:s3cr3t@mirror/", "file:///srv/wheels;https://alice:****@mirror/"),
        ("(file:///srv/wheels)(https://alice:s3cr3t@mirror/)", "(file:///srv/wheels)(https://alice:****@mirror/)"),
        ("file://alice:s3cr3t@host/share", "file://alice:****@host/share"),  # a file URL with a host
        ("profile://t0ken@host/", "profile://****@host/"),  # a scheme that ends in "file"
        ("`HTTPS://alice:s3cr3t@mirror/`", "`HTTPS://alice:****@mirror/`"),
        ("https://alice:s3cr3t@mirror", "https://alice:****@mirror"),
        ("https://mirror/simple/?token=s3cr3t&x=1#frag", "https://mirror/simple/?token=****&x=****#****"),
        ("https://mirror/simple/?s3cr3t", "https://mirror/simple/?****"),
        ("https://mirror/simple/@scope/", "https://****@scope/"),  # an @ in the path: hidden, the safe side
        ("file:///srv/wheels@2024/", "file:///srv/wheels@2024/"),
        ("/srv/wheels@2024", "/srv/wheels@2024"),
        ("alice:s3cr3t@mirror/simple", "alice:s3cr3t@mirror/simple"),  # no scheme: not a URL, as for pip
        ("internal=https://alice:s3cr3t@mirror/simple", "internal=https://alice:****@mirror/simple"),  # uv's
        ("https://a:s3cr3t@one/ https://t0ken@two/", "https://a:****@one/ https://****@two/"),
        ("https://a:s3cr3t@one,https://t0ken@two/", "https://a:****@one,https://****@two/"),  # UV_FIND_LINKS
        (
            "error: Failed to fetch: `https://alice:s3cr3t@mirror/simple/six/`\n  cause: 401",
            "error: Failed to fetch: `https://alice:****@mirror/simple/six/`\n  cause: 401",
        ),
    ],
)  # fmt: skip
def test_credentials_in_urls_are_hidden_as_pip_hides_them(text: str, shown: str) -> None:
    from lazy_import_hook._pipconf import redacted

    assert redacted(text) == shown



# Where a URL stands in what is shown: alone, quoted, in uv's `name=URL`
# lists, after a file URL, in a comma-separated UV_FIND_LINKS, in an error.
CONTEXTS = [
    ("", ""), ("`", "`"), ("internal=", " other=https://t0ken@two.example/"), ("file:///srv/wheels;", ""),
    ("https://one.example/,", ",https://two.example/"), ("error: Failed to fetch: `", "`\n  cause: 401"),
]  # fmt: skip


@settings(max_examples=300)
@given(
    password=st.text(
        st.characters(min_codepoint=33, max_codepoint=126), min_size=4, max_size=24
    ).filter(lambda p: "://" not in p and p not in "@mirror.example/simple/"),
    token=st.booleans(),
    context=st.sampled_from(CONTEXTS),
    query=st.sampled_from(["", "?token=s3cr3t", "?email=a@b.example&key=s3cr3t#s3cr3t"]),
)
def test_no_password_or_token_is_ever_shown(
    password: str, token: bool, context: tuple[str, str], query: str
) -> None:
    """Whatever printable characters a password (or a lone token) holds, raw
    (a token with a colon is a user and a password), wherever the URL stands,
    what is shown hides it, and every value of the URL's query."""
    from lazy_import_hook._pipconf import redacted

    secret = password.replace(":", "") if token else password
    rest = "****" if any(c in secret + query for c in "?#") else "mirror.example/simple/"  # may be a query's
    shown = f"https://{'' if token else 'alice:'}****@{rest}"
    before, after = context
    assume(len(secret) >= 4 and secret not in shown + before + after)  # not one shown anyway ("***@")
    url = f"https://{'' if token else 'alice:'}{secret}@mirror.example/simple/{query}"
    assert secret not in redacted(before + url + after)
    assert "s3cr3t" not in redacted(before + url + after)
    if not query:
        assert redacted(url) == shown


PIP_INDEXES = {
    "PIP_INDEX_URL": "http://alice:s3cr3t@mirror.example/simple",
    "PIP_EXTRA_INDEX_URL": "https://t0ken@extra.example/simple",
    "PIP_FIND_LINKS": "https://bob:s3cr3t@links.example/wheels/?token=s3cr3t",
}
PIP_INDEXES_SHOWN = (
    "http://alice:****@mirror.example/simple (PIP_INDEX_URL), also https://****@extra.example/simple "
    "(PIP_EXTRA_INDEX_URL), find-links https://bob:****@links.example/wheels/?token=**** (PIP_FIND_LINKS)"
)


def _cli_output(args: list[str]) -> str:
    import io
    from contextlib import redirect_stdout

    from lazy_import_hook._cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


def test_the_audit_log_stall_lines_and_status_show_the_index_without_its_credentials(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit log is readable by every user; stall lines and status end
    up in logs. The installer still gets the real URLs."""
    import time

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name, value in PIP_INDEXES.items():
        monkeypatch.setenv(name, value)
    given: list[dict[str, str]] = []

    def slowly(process: Any) -> None:
        given.append(process.kwargs["env"])
        time.sleep(1)  # silent: stall lines

    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY, also=[slowly]))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip", stall_after=0.3)
    import toymod  # noqa: F401

    assert {name: given[0][name] for name in PIP_INDEXES} == PIP_INDEXES
    audit = (target / ".lazy-import-hook" / "audit.jsonl").read_text()
    assert json.loads(audit.splitlines()[-1])["index"] == PIP_INDEXES_SHOWN
    stalls = [line for line in capsys.readouterr().err.splitlines() if "still installing" in line]
    assert stalls and all(f"index: {PIP_INDEXES_SHOWN}. To stop it" in line for line in stalls)
    status = _cli_output(["--target", str(target), "status"])
    assert f"index:      {PIP_INDEXES_SHOWN}\n" in status
    status_json = _cli_output(["--target", str(target), "status", "--json"])
    assert json.loads(status_json)["index"] == PIP_INDEXES_SHOWN
    for text in (audit, *stalls, status, status_json):
        assert "s3cr3t" not in text and "t0ken" not in text


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("UV_INDEX_URL", "http://alice:s3cr3t@mirror/simple", "http://alice:****@mirror/simple"),
        ("UV_DEFAULT_INDEX", "https://t0ken@mirror/simple", "https://****@mirror/simple"),
        (
            "UV_INDEX",
            "internal=https://alice:s3cr3t@one/simple other=https://t0ken@two/simple",
            "internal=https://alice:****@one/simple other=https://****@two/simple",
        ),
        ("UV_EXTRA_INDEX_URL", "https://alice:s3cr3t@extra/simple", "https://alice:****@extra/simple"),
        ("UV_FIND_LINKS", "https://alice:s3cr3t@links/,https://links/?token=s3cr3t", None),
    ],
)  # fmt: skip
def test_uvs_own_index_is_shown_without_its_credentials_and_reaches_uv_whole(
    name: str, value: str, shown: str | None, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook import _pipconf

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv(name, value)
    monkeypatch.setattr(_uv, "find_uv", lambda: "/opt/uv")
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)  # the plan status reads
    uv, pip = Uv("/opt/uv"), _pipconf.read()
    index = uv.index(pip)
    assert "s3cr3t" not in index and "t0ken" not in index
    if shown:
        assert index == f"{name}={shown} (uv's own settings)"
    assert uv.launch(pip).env[name] == value
    status = _cli_output(["--target", str(target), "--installer", "uv", "status"])
    assert f"index:      {index}\n" in status and "s3cr3t" not in status


@pytest.mark.parametrize(
    ("links", "in_variable"),
    [
        ("https://alice:s3cr3t@links/ https://t0ken@more/", True),
        ("https://links/?token=s3cr3t", True),
        ("https://links/ https://more/", False),  # nothing to hide: shown in the command, as before
        ("https://alice:s3cr3t@links/?a=1,2", True),  # the comma goes as %2C
    ],
)  # fmt: skip
def test_pips_find_links_with_credentials_reach_uv_off_its_command_line(
    links: str, in_variable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every user can read a command line (ps, /proc/PID/cmdline), only the
    process's own user its environment."""
    from lazy_import_hook import _pipconf

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in [n for n in os.environ if n.startswith("UV_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_FIND_LINKS", links)
    launch = Uv("/opt/uv").launch(_pipconf.read())
    if in_variable:
        assert launch.env["UV_FIND_LINKS"] == ",".join(links.replace(",", "%2C").split())
        assert not any("s3cr3t" in o or "t0ken" in o for o in launch.options)
    else:
        assert "UV_FIND_LINKS" not in launch.env
        assert [o for o in launch.options if o.startswith("--find-links")] == [
            f"--find-links={link}" for link in links.split()
        ]


def test_a_folder_with_a_comma_reaches_uv_in_the_variable_as_its_file_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside a link with a password, a folder whose name has a comma (the
    variable's separator) once sent every link back to the command line."""
    from lazy_import_hook import _pipconf

    folder = tmp_path / "a,b"
    folder.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in [n for n in os.environ if n.startswith("UV_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_FIND_LINKS", f"https://alice:s3cr3t@links/ {folder}")
    launch = Uv("/opt/uv").launch(_pipconf.read())
    assert launch.env["UV_FIND_LINKS"] == f"https://alice:s3cr3t@links/,{folder.as_uri()}"
    assert not any("find-links" in o or "s3cr3t" in o for o in launch.options)
    assert launch.needs == _uv.READS_LIST


@pytest.mark.parametrize(
    ("pip_setting", "value", "uv_gets"),
    [
        ("PIP_CERT", "<file>", {"SSL_CERT_FILE": "<file>"}),
        ("PIP_CERT", "<folder>", {"SSL_CERT_DIR": "<folder>"}),
        ("PIP_CLIENT_CERT", "<file>", {"SSL_CLIENT_CERT": "<file>"}),
        ("PIP_TRUSTED_HOST", "mirror.internal other.internal:8080",
         {"UV_INSECURE_HOST": "mirror.internal other.internal:8080"}),
        ("PIP_KEYRING_PROVIDER", "subprocess", {"UV_KEYRING_PROVIDER": "subprocess"}),
        ("PIP_KEYRING_PROVIDER", "disabled", {"UV_KEYRING_PROVIDER": "disabled"}),
        # pip's auto uses no keyring under the hook's --no-input; uv has no
        # `import`: neither becomes a `keyring` command PATH finds.
        ("PIP_KEYRING_PROVIDER", "auto", {}),
        ("PIP_KEYRING_PROVIDER", "import", {}),
        ("PIP_KEYRING_PROVIDER", "Disabled", {}),  # pip refuses it (exact words): uv is told nothing
        ("PIP_KEYRING_PROVIDER", "bogus", {}),
        ("PIP_PROXY", "http://proxy:3128", {"HTTP_PROXY": "http://proxy:3128", "HTTPS_PROXY": "http://proxy:3128"}),
        ("PIP_TIMEOUT", "2.6", {"UV_HTTP_TIMEOUT": "3"}),
        ("PIP_DEFAULT_TIMEOUT", "30", {"UV_HTTP_TIMEOUT": "30"}),
        ("PIP_RETRIES", "7", {"UV_HTTP_RETRIES": "7"}),
    ],
)  # fmt: skip
def test_pips_trust_and_network_settings_reach_both_installers(
    pip_setting: str, value: str, uv_gets: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror behind a private CA, a client certificate, a keyring or a
    proxy, configured for pip alone, must work with uv too."""
    from lazy_import_hook import _pipconf

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("-----BEGIN CERTIFICATE-----\n")
    paths = {"<file>": str(tmp_path / "file"), "<folder>": str(tmp_path / "folder")}
    _only_pips_setting(monkeypatch, pip_setting, paths.get(value, value))
    config = _pipconf.read()
    uv_env = Uv("/opt/uv").launch(config).env
    assert {k: uv_env.get(k) for k in uv_gets} == {k: paths.get(v, v) for k, v in uv_gets.items()}
    translated = (
        "SSL_CERT_FILE", "SSL_CERT_DIR", "SSL_CLIENT_CERT", "UV_INSECURE_HOST", "UV_KEYRING_PROVIDER",
        "HTTP_PROXY", "HTTPS_PROXY", "UV_HTTP_TIMEOUT", "UV_HTTP_RETRIES",
    )  # fmt: skip
    assert not [k for k in translated if k in uv_env and k not in uv_gets]
    pip_env = Pip(sys.executable).launch(config).env
    assert pip_env[pip_setting.replace("DEFAULT_", "")] == paths.get(value, value)
    assert pip_env["PIP_CONFIG_FILE"] == os.devnull


@pytest.mark.parametrize(
    ("pip_setting", "uv_own"),
    [
        ("PIP_CERT", "SSL_CERT_DIR"),
        ("PIP_CLIENT_CERT", "SSL_CLIENT_CERT"),
        ("PIP_TRUSTED_HOST", "UV_INSECURE_HOST"),
        ("PIP_KEYRING_PROVIDER", "UV_KEYRING_PROVIDER"),
        ("PIP_PROXY", "https_proxy"),
        ("PIP_TIMEOUT", "UV_HTTP_TIMEOUT"),
        ("PIP_RETRIES", "UV_HTTP_RETRIES"),
    ],
)  # fmt: skip
def test_uvs_own_trust_and_network_settings_win_over_pips(
    pip_setting: str, uv_own: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook import _pipconf

    _only_pips_setting(monkeypatch, pip_setting, "subprocess" if "KEYRING" in pip_setting else "5")
    monkeypatch.setenv(uv_own, "uv's own")
    env = Uv("/opt/uv").launch(_pipconf.read()).env
    assert env[uv_own] == "uv's own"
    monkeypatch.delenv(pip_setting)
    assert Uv("/opt/uv").launch(_pipconf.read()).env == env  # pip's value changed nothing


@pytest.mark.parametrize(
    ("provider", "uv_own", "named"),
    [
        ("import", None, "keyring-provider=import (PIP_KEYRING_PROVIDER)"),
        ("Disabled", None, "keyring-provider (a value pip refuses) (PIP_KEYRING_PROVIDER)"),
        ("ghp_s3cr3tT0ken", None, "keyring-provider (a value pip refuses) (PIP_KEYRING_PROVIDER)"),
        ("import", "disabled", None),  # uv's own provider wins, as for every trust setting
        ("auto", None, None),  # no keyring for pip under --no-input: uv without one is the same
    ],
)  # fmt: skip
def test_a_keyring_provider_uv_cannot_take_is_named_in_the_audit(
    provider: str, uv_own: str | None, named: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip's `import` (or a value pip refuses) reaches uv as nothing: the
    audit's not_passed_on says so and where it came from, showing only pip's
    own words (a pasted token stays out), unless uv has a provider of its own."""
    from lazy_import_hook import _pipconf

    _only_pips_setting(monkeypatch, "PIP_KEYRING_PROVIDER", provider)
    if uv_own:
        monkeypatch.setenv("UV_KEYRING_PROVIDER", uv_own)
    dropped = Uv("/opt/uv").launch(_pipconf.read()).dropped
    expected = [f"{named}: uv has no such provider"] if named else []
    assert [d for d in dropped if "keyring" in d] == expected


def test_a_keyring_provider_from_pip_conf_is_named_with_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook import _pipconf

    conf = tmp_path / "pip.conf"
    conf.write_text("[install]\nkeyring-provider = import\n")
    _only_pips_setting(monkeypatch, "PIP_CONFIG_FILE", str(conf))
    dropped = [d for d in Uv("/opt/uv").launch(_pipconf.read()).dropped if "keyring" in d]
    assert dropped == [f"keyring-provider=import ({conf} [install]): uv has no such provider"]


def _only_pips_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    proxies = ("http_proxy", "https_proxy", "all_proxy")
    for key in [k for k in os.environ if k.startswith(("PIP_", "UV_", "SSL_")) or k.lower() in proxies]:
        if key != "PIP_CONFIG_FILE":
            monkeypatch.delenv(key)
    monkeypatch.setenv(name, value)


def test_an_empty_uv_find_links_needs_no_newer_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty UV_FIND_LINKS is no setting of uv's: pip's folder goes on the
    command line, which any uv reads."""
    from lazy_import_hook import _pipconf

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("UV_FIND_LINKS", "")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    launch = Uv("/opt/uv").launch(_pipconf.read())
    assert (launch.options, launch.needs) == ([f"--find-links={tmp_path}"], _uv.NEEDS_NOTHING)


@pytest.mark.parametrize(
    ("links", "version", "needed"),
    [
        ("https://alice:s3cr3t@links.example/", "0.4.10", "0.4.19"),
        ("https://alice:s3cr3t@links.example/", "0.4.19", None),
        ("https://alice:s3cr3t@links.example/ https://more.example/", "0.5.16", "0.5.17"),
        ("https://alice:s3cr3t@links.example/ https://more.example/", "0.5.17", None),
        ("https://alice:s3cr3t@links.example/ https://more.example/", "0.13.9", None),
    ],
)  # fmt: skip
def test_a_uv_too_old_to_read_the_find_links_it_was_given_is_named_when_it_fails(
    links: str, version: str, needed: str | None, fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A uv before 0.4.19 ignores UV_FIND_LINKS, where links with a password
    go, and one before 0.5.17 takes several as one: it says only that nothing
    matched, which would send the operator looking at the index, not at uv."""
    monkeypatch.setattr(_uv, "find_uv", lambda: "/opt/uv")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in [n for n in os.environ if n.startswith(("UV_", "PIP_")) and n != "PIP_CONFIG_FILE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", links)
    fp.register(["/opt/uv", "--version"], stdout=f"uv {version} (0123abcd 2024-09-01)\n")
    said = "error: toy-dist was not found\n"
    fp.register(["/opt/uv", "pip", "install", fp.any()], stdout=said, returncode=1)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="uv")
    with pytest.raises(LazyInstallError) as raised:
        import toymod  # noqa: F401
    hint = f"uv {version} is older than {needed}, which is the first to "
    assert (hint in str(raised.value)) is (needed is not None)
    assert "is older than" in str(raised.value) or needed is None
    assert raised.value.reason == "installer-failed"


@pytest.mark.parametrize(
    ("links", "version", "needed"),
    [
        # Too old for both: the higher need is the one named.
        ("https://alice:s3cr3t@links.example/ https://more.example/", "0.5.16", "0.6.15"),
        ("https://alice:s3cr3t@links.example/ https://more.example/", "0.6.15", None),
        ("", "0.6.14", "0.6.15"),  # uv 0.6.14 has no `pip compile --format pylock.toml`
        ("", "0.6.15", None),
    ],
)  # fmt: skip
@pytest.mark.parametrize("installed", [False, True])
def test_a_uv_too_old_for_the_lock_is_named_when_it_fails(
    links: str, version: str, needed: str | None, installed: bool, fp: Any, target: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """`lock` (and `bundle`, which locks first) resolve with the same launch
    as an install, and need a uv whose `pip compile` writes pylock.toml: a uv
    older than either is named, not only uv's own words. With a version
    installed (the lock's preference), a too-old uv is not asked again
    without it: that could only fail the same way, or lock another version."""
    from lazy_import_hook import _config, _settings
    from lazy_import_hook._installer import LockError
    from lazy_import_hook._locker import lock

    monkeypatch.setattr(_uv, "find_uv", lambda: "/opt/uv")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in [n for n in os.environ if n.startswith(("UV_", "PIP_")) and n != "PIP_CONFIG_FILE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    if links:
        monkeypatch.setenv("PIP_FIND_LINKS", links)
    if installed:
        (target / "toy_dist-1.0.dist-info").mkdir(parents=True)
    fp.register(["/opt/uv", "--version"], stdout=f"uv {version} (0123abcd 2024-12-01)\n", occurrences=2)
    said = "error: unexpected argument '--format' found\n" if version == "0.6.14" else "error: no toy-dist\n"
    fp.register(["/opt/uv", "pip", "compile", fp.any()], stderr=said, returncode=1, occurrences=2)
    raw = _settings.gather({"toymod": "toy-dist>=1.0"}, None, {"target": str(target), "installer": "uv"})
    with pytest.raises(LockError) as raised:
        lock(_config.resolve(raw), str(tmp_path / "lazy-import-hook.lock"))
    said = str(raised.value)
    assert said.startswith("uv, resolving toymod: error: ")
    assert ("unexpected argument '--format'" in said) is (version == "0.6.14")
    retried = installed and needed is None
    assert fp.call_count(["/opt/uv", "pip", "compile", fp.any()]) == (2 if retried else 1)
    assert fp.call_count(["/opt/uv", "--version"]) == (2 if retried else 1)
    hint = f" uv {version} is older than {needed}, which is the first whose `pip compile` writes pylock.toml"
    assert (hint in said) is (needed is not None), said
    assert "UV_FIND_LINKS" not in said  # the lesser need is not named as well
    assert said.endswith("upgrade uv.") is (needed is not None)
    assert "s3cr3t" not in said


UNHASHED_PYLOCK = """lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "toy-dist"
version = "1.0"
wheels = [{ url = "file:///srv/wheels/toy_dist-1.0-py3-none-any.whl", hashes = {} }]

[[packages]]
name = "helper-dist"
version = "2.0"
wheels = [{ url = "https://mirror.example/helper_dist-2.0-py3-none-any.whl", hashes = {} }]
"""


@pytest.mark.parametrize(("version", "named"), [("0.12.10", True), ("0.12.11", False)])
def test_a_uv_too_old_to_hash_a_find_links_folder_is_named_when_a_lock_has_no_sha256(
    version: str, named: bool, fp: Any, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uv 0.6.15 to 0.12.10 write `hashes = {}` for a local folder's wheels:
    "no sha256" alone would send the operator to the folder, not to uv. A
    file from an index that gave no hash is not uv's age: it is not named so."""
    from lazy_import_hook import _config, _settings
    from lazy_import_hook._installer import LockError
    from lazy_import_hook._locker import lock

    monkeypatch.setattr(_uv, "find_uv", lambda: "/opt/uv")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in [n for n in os.environ if n.startswith(("UV_", "PIP_")) and n != "PIP_CONFIG_FILE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    (tmp_path / "wheels").mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    fp.register(["/opt/uv", "--version"], stdout=f"uv {version} (0123abcd 2025-08-01)\n")
    fp.register(["/opt/uv", "pip", "compile", fp.any()], stdout=UNHASHED_PYLOCK)
    raw = _settings.gather({"toymod": "toy-dist==1.0"}, None, {"target": str(target), "installer": "uv"})
    with pytest.raises(LockError) as raised:
        lock(_config.resolve(raw), str(tmp_path / "lazy-import-hook.lock"))
    said = str(raised.value)
    assert fp.call_count(["/opt/uv", "--version"]) == 1
    hint = f"uv {version} is older than 0.12.11, which is the first to hash local wheels (find-links folders)"
    assert (hint in said) is named, said
    assert said.endswith("upgrade uv.") is named
    if named:  # the local file alone is uv's doing
        assert "no sha256 for toy_dist-1.0-py3-none-any.whl (local files)" in said
    else:
        assert "no sha256 for toy_dist-1.0-py3-none-any.whl, helper_dist-2.0-py3-none-any.whl" in said
    assert not (tmp_path / "lazy-import-hook.lock").exists()


def test_a_uv_gone_since_it_was_found_is_asked_its_version_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without setpriv, starting the probe is what meets the missing program:
    the failed lock or install still gets reported, with "uv" as its version."""
    from lazy_import_hook import _process

    monkeypatch.setattr(_process, "_SETPRIV", [None])
    assert _uv.Uv(str(tmp_path / "removed" / "uv")).version_probe()() == "uv"


def _wheel_installed_uv(prefix: Path, version: str = "0.9.9", recorded_size: int | None = None) -> Path:
    """`<prefix>/bin/uv` and the dist-info that `pip install uv` leaves for it."""
    program = prefix / "bin" / "uv"
    program.parent.mkdir(parents=True)
    program.write_bytes(b"\x7fELF not really uv")
    info = prefix / "lib" / "site-packages" / f"uv-{version}.dist-info"
    info.mkdir(parents=True)
    size = program.stat().st_size if recorded_size is None else recorded_size
    rows = ["uv/__init__.py,sha256=abc,10", f"../../bin/uv,sha256=def,{size}", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
    return program


def test_a_uv_installed_from_its_wheel_gives_its_version_without_a_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fp: Any
) -> None:
    """`uv --version` beside a new target's first install costs about 10 ms
    of CPU time uv's own run wants: the wheel's RECORD names the program."""
    program = _wheel_installed_uv(tmp_path / "venv")
    monkeypatch.setattr(_uv, "_site_folders", lambda: [str(tmp_path / "venv" / "lib" / "site-packages")])
    assert _uv.recorded_version(str(program)) == "uv 0.9.9"
    assert Uv(str(program)).version_probe()() == "uv 0.9.9"
    assert list(fp.calls) == []  # no process: pytest-subprocess would have refused an unregistered one


def test_the_site_folders_are_the_ones_pip_installs_into() -> None:
    import sysconfig

    assert sysconfig.get_path("purelib") in _uv._site_folders()


NOT_NAMED = ["replaced since", "a copy", "on sys.path only", "an absolute path", "no RECORD", "bad RECORD"]


@pytest.mark.parametrize("how", NOT_NAMED)
def test_a_uv_its_wheel_does_not_name_is_asked_its_version(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fp: Any
) -> None:
    """Only the very file the RECORD lists (same file, same size, by a
    relative path), in a folder pip installs into, takes its version from
    there: a standalone uv copied beside the interpreter, or a uv-*.dist-info
    planted in another folder on sys.path (the working directory, a target),
    is asked."""
    prefix = tmp_path / "venv"
    program = _wheel_installed_uv(prefix, recorded_size=5 if how == "replaced since" else None)
    site = prefix / "lib" / "site-packages"
    record = next(site.glob("uv-*.dist-info")) / "RECORD"
    if how == "a copy":  # same size, another file
        copy = prefix / "bin" / "uv-copy"
        copy.write_bytes(program.read_bytes())
        program = copy
    elif how == "an absolute path":
        record.write_text(record.read_text().replace("../../bin/uv", str(program)), encoding="utf-8")
    elif how == "no RECORD":
        record.unlink()
    elif how == "bad RECORD":
        record.write_bytes(b'"' + b"x" * 200_000 + b'",,1\n\xff\n')
    if how == "on sys.path only":
        monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    else:
        monkeypatch.setattr(_uv, "_site_folders", lambda: [str(site)])
    fp.register([str(program), "--version"], stdout="uv 0.9.10 (abc 2026-01-01)\n")
    assert _uv.recorded_version(str(program)) is None
    assert Uv(str(program)).version_probe()() == "uv 0.9.10 (abc 2026-01-01)"


def test_a_launch_needing_a_version_keeps_the_higher_need() -> None:
    from lazy_import_hook._installer import Launch

    plain = Launch({}, [], [])
    links = Launch({}, [], [], _uv.READS_LIST)
    assert plain.needing(_uv.WRITES_PYLOCK).needs == _uv.WRITES_PYLOCK
    assert links.needing(_uv.WRITES_PYLOCK).needs == _uv.WRITES_PYLOCK  # 0.6.15 > 0.5.17
    assert links.needing(_uv.READS_LINKS) is links  # 0.4.19: the launch's own need is higher
    assert links.needing(_uv.READS_LIST) is links
    assert links.needing(_uv.NEEDS_NOTHING) is links
    assert plain.needing(_uv.NEEDS_NOTHING) is plain


INSTALLER_SAYS = (
    "Looking in indexes: https://alice:s3cr3t@mirror.example/simple\n"
    "error: Failed to fetch: `https://mirror.example/simple/toy-dist/?token=s3cr3t`\n"  # as uv shows it
)


def test_the_installers_own_words_are_shown_and_recorded_without_credentials(
    fp: Any, target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its output's tail goes into the ImportError, the failure record in the
    target (which other processes raise again) and the audit log; with
    `verbose`, every line to stderr."""
    fp.register([*PIP, fp.any()], stdout=INSTALLER_SAYS, returncode=1)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip", verbose=True)
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401

    error = info.value
    assert "Looking in indexes: https://alice:****@mirror.example/simple" in str(error)
    assert "https://mirror.example/simple/toy-dist/?token=****" in error.output
    stderr = capsys.readouterr().err
    assert "pip: Looking in indexes: https://alice:****@mirror.example/simple" in stderr
    record = (target / ".lazy-import-hook" / "failed" / "toymod").read_text()
    assert "?token=****" in record
    audit = (target / ".lazy-import-hook" / "audit.jsonl").read_text()
    for text in (str(error), error.output, stderr, record, audit):
        assert "s3cr3t" not in text


def test_a_stall_line_and_the_live_line_show_the_installers_last_words_without_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook import _watch

    monkeypatch.setattr(_watch, "_terminal", lambda: True)
    monkeypatch.setattr(_watch, "_columns", lambda: 200)  # the whole line
    watcher = _watch.InstallWatcher("toy-dist==1.0", "uv", "the index", stream=False, on_start=lambda: None)
    last = INSTALLER_SAYS.splitlines()[-1]
    watcher.silent(10, last)
    watcher.tick(10, last)
    watcher.finished()
    stderr = capsys.readouterr().err
    shown = "error: Failed to fetch: `https://mirror.example/simple/toy-dist/?token=****"
    assert f"its last line: '{shown}'" in stderr and f"(10 s) {shown}" in stderr
    assert "s3cr3t" not in stderr


def test_where_each_file_came_from_is_recorded_without_credentials() -> None:
    from lazy_import_hook._lockfile import Locked
    from lazy_import_hook._pipconf import PipConfig, Value
    from lazy_import_hook._provenance import attribute

    pip = PipConfig({"index-url": Value("https://alice:s3cr3t@mirror.example/simple", "PIP_INDEX_URL")}, {})
    url = "https://alice:s3cr3t@mirror.example/files/toy_dist-1.0-py3-none-any.whl?token=s3cr3t"
    wheel = Locked("toy-dist", "1.0", filename="toy_dist-1.0-py3-none-any.whl", sha256="a" * 64, url=url)
    (record,) = attribute([wheel], pip)
    assert record["index"] == "https://alice:****@mirror.example/simple"
    assert record["url"] == "https://alice:****@mirror.example/files/toy_dist-1.0-py3-none-any.whl?token=****"


def test_a_cooldown_that_refuses_find_links_names_them_without_credentials(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", "https://alice:s3cr3t@links.example/wheels/")
    settings = {"installer": "pip", "min_release_age": "7 days"}
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, **settings)
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert "found through find-links (https://alice:****@links.example/wheels/)" in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_a_resolvers_words_are_reported_without_credentials(tmp_path: Path) -> None:
    """`lock` prints them; uv's provenance resolution's go into the audit log."""
    from lazy_import_hook._installer import Launch, LockError, run_resolver

    failing = [sys.executable, "-c", "import sys; sys.exit('error: https://alice:s3cr3t@mirror.example/simple')"]
    with pytest.raises(LockError) as info:
        run_resolver(failing, Launch(dict(os.environ), [], []), str(tmp_path))
    assert str(info.value) == "error: https://alice:****@mirror.example/simple"
    said = str(_uv._compiled(failing, dict(os.environ), ["toy-dist==1.0"]))
    assert said == "uv pip compile failed: error: https://alice:****@mirror.example/simple"


def test_a_resolver_that_times_out_is_reported_without_the_credentials_in_its_command(tmp_path: Path) -> None:
    """subprocess quotes the whole command in a timeout's message."""
    from lazy_import_hook._installer import Launch, LockError, run_resolver

    cmd = [sys.executable, "-c", "import time; time.sleep(10)", "--find-links=https://alice:s3cr3t@links/"]
    with pytest.raises(LockError) as raised:
        run_resolver(cmd, Launch(dict(os.environ), [], []), str(tmp_path), timeout=0.5)
    assert "timed out" in str(raised.value) and "alice:****@links" in str(raised.value)
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_a_pip_configuration_file_others_can_write_stops_the_install(
    installer: str, fp: Any, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip would take its index from it (sudo -E with another user's HOME,
    say); the hook takes orders from no file others can write, for either
    installer, and says which file and how to fix it."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://evil.example/simple\n")
    conf.chmod(0o666)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setattr(_uv, "find_uv", lambda: "/opt/uv")
    fp.register([fp.any()], occurrences=0)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer=installer)
    with pytest.raises(LazyInstallError) as raised:
        import toymod  # noqa: F401
    message = str(raised.value)
    assert raised.value.reason == "installer-failed"
    assert f"pip configuration file {conf}: the file is writable by every user" in message
    assert "make it writable only by you (chmod go-w)" in message
    assert not list(target.glob("*.dist-info"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a file away")
def test_another_users_pip_configuration_is_not_taken_and_not_told_to_be_chowned(
    target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sudo -E keeps the user's HOME: root must not take over their file."""
    from lazy_import_hook import _pipconf

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://evil.example/simple\n")
    os.chown(conf, 65534, 65534)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    with pytest.raises(ValueError) as raised:
        _pipconf.read()
    assert "owned by another user (uid 65534)" in str(raised.value)
    assert "Use sudo -H, or set PIP_CONFIG_FILE to a file of yours" in str(raised.value)


def test_with_every_file_hashed_uv_gets_the_exact_pins_and_the_ranges_are_checked(tmp_path: Path) -> None:
    """uv refuses a constraint that is not an exact pin when every file is
    hashed: the exact ones go to it, the ranges are checked against the pins
    here, and a file the hook cannot read through goes to uv as it is."""
    from lazy_import_hook._constraints import OPTION, exact_only

    policy = tmp_path / "policy.txt"
    policy.write_text(
        "# the image's policy\n"
        "six==1.16.0  # exact: passed on\n"
        "torch<=2.14.1\t# a range nothing here pins\n"
        "Toy_Dist>=0.5\n"
        "toy-dist!=1.0; sys_platform == 'no-such-platform'\n"
        "other-dist<1.0 ; python_version >= '3'\n"
    )
    url, option = tmp_path / "url.txt", tmp_path / "option.txt"
    url.write_text("toy-dist @ file:///wheels/toy_dist-0.9-py3-none-any.whl\n")
    option.write_text("-c more.txt\n")
    options = ["--no-index", *(OPTION + str(p) for p in (policy, url, option))]
    out = str(tmp_path / "exact.txt")
    kept, conflicts = exact_only(options, ["toy-dist==1.0", "other-dist==1.0"], out)
    assert kept == ["--no-index", OPTION + str(url), OPTION + str(option), OPTION + out]
    assert Path(out).read_text() == "six==1.16.0\n"
    assert conflicts == [f"other-dist<1.0 ; python_version >= '3' (in {policy})"]
