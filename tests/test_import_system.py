"""The hook's place in the import system: it decides under CPython's import
lock and installs outside it, probes never install or raise, instrumenting
finders see installed modules on the first run, installers never run the
hook, fork is safe, and an installer dies with its application."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _fakes import PIP, installs, write_dist
from _offline import installer_env
from _slow_index import serve_find_links
from test_real_installers import INSTALLERS, hook

import lazy_import_hook
from conftest import Runner
from lazy_import_hook import LazyInstallError

if TYPE_CHECKING:
    from collections.abc import Callable

TOY = {"toymod/__init__.py": "VERSION = '1.0'\n"}
posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")


def test_find_spec_returns_a_spec_and_runs_no_installer(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    spec = importlib.util.find_spec("toymod")
    assert spec is not None  # an import would install it
    assert fp.call_count([*PIP, fp.any()]) == 0
    assert not (target / "toymod").exists()
    import toymod

    assert toymod.VERSION == "1.0" and fp.call_count([*PIP, fp.any()]) == 1
    assert toymod.__spec__ is not None and toymod.__spec__.origin == str(target / "toymod" / "__init__.py")
    assert toymod.__file__ == str(target / "toymod" / "__init__.py")


@pytest.mark.parametrize("why", ["disabled", "target refused", "recent failure", "earlier failure"])
def test_a_probe_answers_none_where_an_import_fails_at_once(
    why: str, fp: Any, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: index unreachable\n", returncode=1)
    allowlist = {"toymod": "toy-dist==1.0"}
    if why == "disabled":
        monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "1")
    elif why == "target refused":
        target.mkdir()
        os.chmod(target, 0o777)
    elif why == "recent failure":  # recorded by another process, a moment ago
        lazy_import_hook.install(allowlist, target=target, installer="pip")
        with pytest.raises(LazyInstallError):
            import toymod
    with pytest.warns(UserWarning) if why == "target refused" else _nothing():
        lazy_import_hook.install(allowlist, target=target, installer="pip")
    if why == "earlier failure":  # in this process
        with pytest.raises(LazyInstallError):
            import toymod
    calls = fp.call_count([*PIP, fp.any()])
    assert importlib.util.find_spec("toymod") is None
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    expected = {"disabled": "disabled", "target refused": "target-refused"}.get(why, "installer-failed")
    assert info.value.reason == expected and info.value.name == "toymod"
    assert fp.call_count([*PIP, fp.any()]) == calls  # neither the probe nor the import ran it


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_finders_ahead_of_the_hook_see_the_module_on_the_cold_run(fp: Any, target: Path) -> None:
    """Like typeguard's import hook or pytest's assertion rewriting: a finder
    ahead of the hook that wraps the path-based finder's loader."""
    from importlib.machinery import PathFinder

    class Marking:
        def find_spec(self, name: str, path: Any = None, target_: Any = None) -> Any:
            spec = PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None or not str(spec.origin).startswith(str(target)):
                return None
            inner = spec.loader

            class Loader:
                def create_module(self, spec: Any) -> None:
                    return None

                def exec_module(self, module: Any) -> None:
                    module.MARKED_BY = "the finder ahead"
                    inner.exec_module(module)

            spec.loader = Loader()  # type: ignore[assignment]
            return spec

    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    sys.meta_path.insert(0, Marking())
    import toymod

    assert getattr(toymod, "MARKED_BY", None) == "the finder ahead"
    assert toymod.VERSION == "1.0"


def test_invalidate_caches_never_raises(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest's importlib mode once put a test module named `time` in sys.modules."""
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    monkeypatch.setitem(sys.modules, "time", types.ModuleType("time"))
    importlib.invalidate_caches()


def test_a_module_the_target_holds_at_another_version_is_never_served(
    fp: Any, target: Path
) -> None:
    """Checked at import, not only at startup: another process may have
    changed a shared target since then. Submodules follow their package."""
    write_dist(str(target), "toy-dist", "1.0", {**TOY, "toymod/sub.py": "V = '1.0'\n"})
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip", enabled=False)
    import toymod

    assert toymod.VERSION == "1.0"
    # Another process upgrades the shared target now.
    for info in target.glob("toy_dist-*.dist-info"):
        for path in info.iterdir():
            path.unlink()
        info.rmdir()
    write_dist(str(target), "toy-dist", "2.0", {"toymod/__init__.py": "VERSION = '2.0'\n",
                                                "toymod/sub.py": "V = '2.0'\n"})  # fmt: skip
    importlib.invalidate_caches()
    with pytest.raises(ImportError):
        import toymod.sub
    del sys.modules["toymod"]
    with pytest.raises(LazyInstallError) as failure:
        import toymod
    assert failure.value.reason == "disabled"
    assert "toy-dist 2.0, which does not match" in str(failure.value)


# -- real installers, fresh interpreters -----------------------------------------


def _started(target: Path) -> bool:
    staging = target / ".lazy-import-hook" / "staging"
    return staging.is_dir() and any(staging.iterdir())


WAIT_FOR_INSTALLER = """
def wait_for_installer():
    staging = os.path.join({target!r}, ".lazy-import-hook", "staging")
    deadline = time.monotonic() + 60
    while not (os.path.isdir(staging) and os.listdir(staging)):
        assert time.monotonic() < deadline, "the install never started"
        time.sleep(0.01)
    time.sleep(0.3)  # the installer is downloading (stalled) now
"""


def test_other_threads_keep_importing_while_an_install_runs(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    with serve_find_links(wheelhouse, delay_seconds=3, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        code = hook(target, "pip", {"othermod": "other-dist==1.0"}) + (
            "import os, threading, time\n"
            + WAIT_FOR_INSTALLER.format(target=str(target))
            + "installing = threading.Thread(target=lambda: __import__('othermod'))\n"
            "started = time.monotonic(); installing.start(); wait_for_installer()\n"
            "assert 'decimal' not in sys.modules\n"
            "t = time.monotonic(); import decimal; took = time.monotonic() - t\n"
            "installing.join()\n"
            "print(json.dumps([took, time.monotonic() - started, 'othermod' in sys.modules]))\n"
        )
        took, install_took, installed = json.loads(run_python(code, env).stdout)
    assert installed and install_took > 3
    assert took < 1.0, f"import decimal waited {took:.2f} s for an install in another thread"


@posix_only
def test_fork_during_an_install_neither_waits_nor_hands_the_lock_to_the_child(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    with serve_find_links(wheelhouse, delay_seconds=3, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        code = hook(target, "pip", {"othermod": "other-dist==1.0"}) + (
            "import logging, os, threading, time\n"
            "logging.basicConfig(level=logging.INFO)  # the notices go through logging too\n"
            + WAIT_FOR_INSTALLER.format(target=str(target))
            + "installing = threading.Thread(target=lambda: __import__('othermod'))\n"
            "installing.start(); forks = []\n"
            f"lock = os.path.realpath(os.path.join({str(target)!r}, '.lazy-import-hook.lock'))\n"
            + "while installing.is_alive() and len(forks) < 40:\n"
            "    t = time.monotonic(); pid = os.fork()\n"
            "    if pid == 0:\n"
            "        try:\n"
            # An import in the child, of a module no install imports: one the
            # installing thread is importing at the fork stays locked in the
            # child (fork() copies a module's lock, not the thread that frees it).
            "            import colorsys\n"
            "            fds = os.listdir('/proc/self/fd')\n"
            "            held = [os.path.realpath(f'/proc/self/fd/{fd}') for fd in fds]\n"
            "            os._exit(3 if lock in held else 0)\n"
            "        except BaseException as e:\n"
            "            print('child:', repr(e), file=sys.stderr, flush=True); os._exit(4)\n"
            "    forks.append((time.monotonic() - t, pid))\n"
            "    time.sleep(0.05)\n"
            "results = []\n"
            "for took, pid in forks:\n"
            "    deadline = time.monotonic() + 20\n"
            "    while True:\n"
            "        done, status = os.waitpid(pid, os.WNOHANG)\n"
            "        if done: results.append((took, os.waitstatus_to_exitcode(status))); break\n"
            "        if time.monotonic() > deadline:\n"
            "            os.kill(pid, 9); results.append((took, 'hung')); break\n"
            "        time.sleep(0.01)\n"
            "installing.join()\n"
            "print(json.dumps([results, 'othermod' in sys.modules]))\n"
        )
        results, installed = json.loads(run_python(code, env, timeout=180).stdout)
    assert installed and len(results) >= 10
    assert all(code == 0 for _, code in results), results  # no child hung, none held the lock
    assert max(took for took, _ in results) < 1.0, results  # fork() never waited for the install


@pytest.mark.parametrize("installer", INSTALLERS)
def test_the_hook_is_inert_inside_the_installer_whatever_activated_it(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """A sitecustomize activates the hook in every Python process, the
    installer's own included; an installer trying an optional import that is
    allow-listed would otherwise wait for the lock its parent holds."""
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "activations.log"
    (site / "sitecustomize.py").write_text(
        "import os, sys, lazy_import_hook\n"
        f"finder = lazy_import_hook.install({{'othermod': 'other-dist==1.0'}}, target={str(target)!r},"
        f" installer={installer!r}, timeout=20)\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(f'{os.getpid()} {finder in sys.meta_path}\\n')\n"
        "if os.environ.get('APP_PID') not in (None, str(os.getpid())):\n"
        "    try:\n        import othermod  # an optional import, as installers try them\n"
        "    except ImportError:\n        pass\n"
    )
    env = installer_env(wheelhouse, tmp_path, PYTHONDONTWRITEBYTECODE="")
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    code = "import os\nos.environ['APP_PID'] = str(os.getpid())\nimport othermod\nprint(othermod.VERSION)\n"
    result = run_python(code, env, timeout=120)
    assert result.stdout.strip() == "1.0", result.stderr
    lines = [line.split() for line in log.read_text().splitlines()]
    assert lines[0][1] == "True"  # the application
    assert len(lines) >= 2 and all(active == "False" for _, active in lines[1:]), lines


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
@pytest.mark.parametrize("installer", INSTALLERS)
def test_the_installer_dies_with_a_killed_application(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    with serve_find_links(wheelhouse, delay_seconds=60, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        code = hook(target, installer, {"othermod": "other-dist==1.0"}) + "import othermod\n"
        # The staging folder exists just before the installer starts.
        survivors = _kill_mid_install(code, env, lambda: _started(target))
    assert not survivors, "the installer outlived the application"


def _kill_mid_install(code: str, env: dict[str, str], ready: Callable[[], bool]) -> list[int]:
    """Run the application until it has installer processes and `ready()`,
    SIGKILL it, and give them 10 s to end; those left are killed and returned."""
    app = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (ready() and (processes := _children(app.pid))):
        assert time.monotonic() < deadline and app.poll() is None, "no installer at work found"
        time.sleep(0.05)
    os.kill(app.pid, signal.SIGKILL)
    app.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [pid for pid in processes if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_killed_installers_temporary_files_stay_in_the_target_and_go_with_the_next_install(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    """pip killed mid-install leaves its pip-* folders in the temporary
    folder for good: /tmp fills up with each timeout. They go next to the
    staging folder instead, which the next install clears."""
    app_tmp = tmp_path / "app-tmp"
    app_tmp.mkdir()
    staging = target / ".lazy-import-hook" / "staging"
    code = hook(target, installer, {"othermod": "other-dist==1.0"}) + "import othermod\n"
    with serve_find_links(wheelhouse, delay_seconds=60, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        env["TMPDIR"] = str(app_tmp)
        _kill_mid_install(code, env, lambda: _busy_temp(staging, installer))
    assert list(app_tmp.iterdir()) == []
    again = {**installer_env(wheelhouse, tmp_path), "TMPDIR": str(app_tmp)}
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, env=again, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert not staging.exists() or list(staging.iterdir()) == []
    assert list(app_tmp.iterdir()) == []


def _busy_temp(staging: Path, installer: str) -> bool:
    """The installer's temporary folder exists; pip's holds its pip-* folders."""
    folders = [p for p in staging.glob("*.tmp") if p.is_dir()] if staging.is_dir() else []
    return bool(folders) and (installer != "pip" or any(folders[0].iterdir()))


ORPHAN = """
import os, sys, time
from lazy_import_hook._process import die_with_parent
cmd = die_with_parent([sys.executable, "-c", "import sys; open(sys.argv[1], 'w').close()", sys.argv[1]])
child = os.fork()
if child == 0:
    if sys.argv[2] == "dies":
        time.sleep(0.5)  # the parent is gone before setpriv sets the signal
    os.execv(cmd[0], cmd)
if sys.argv[2] == "waits":
    os.waitpid(child, 0)
os._exit(0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
@pytest.mark.parametrize("parent", ["waits", "dies"])
def test_an_installer_whose_application_died_as_it_started_never_runs(
    parent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application killed between the fork and the parent-death signal's
    setting: no signal would ever come, so the child must see it and stop."""
    from lazy_import_hook import _process

    monkeypatch.setattr(_process, "_SETPRIV", [])  # looked for again, as the child will
    if not _process._setpriv():
        pytest.skip("no setpriv with --pdeathsig on PATH")
    ran = tmp_path / "ran"
    read_end, write_end = os.pipe()  # open in the child until it ends, whatever it runs
    argv = [sys.executable, "-c", ORPHAN, str(ran), parent]
    subprocess.run(argv, pass_fds=[write_end], check=True, timeout=30)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as until_the_child_ends:
        until_the_child_ends.read()
    assert ran.exists() == (parent == "waits")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_work_an_install_leaves_starts_once_the_installed_module_has_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uv's provenance runs after the module's own code (and its imports),
    not beside them; outside an install such work starts at once."""
    import builtins

    from lazy_import_hook._loader import InstallingLoader, after_this_import

    events: list[str] = []
    monkeypatch.setattr(builtins, "_lih_events", events, raising=False)
    source = tmp_path / "deferredmod.py"
    source.write_text("import builtins\nbuiltins._lih_events.append('module ran')\n")

    def install() -> Any:
        after_this_import(lambda: events.append("deferred work started"))
        events.append("installed")
        return importlib.util.spec_from_file_location("deferredmod", source)

    loader = InstallingLoader(install)
    spec = importlib.util.spec_from_loader("deferredmod", loader)  # type: ignore[arg-type]
    assert spec is not None
    module = importlib.util.module_from_spec(spec)  # create_module: the install
    assert events == ["installed"]
    loader.exec_module(module)
    assert events == ["installed", "module ran", "deferred work started"]
    after_this_import(lambda: events.append("at once"))
    assert events[-1] == "at once"

    # An install that fails still starts what it left.
    def failing() -> Any:
        after_this_import(lambda: events.append("started after a failure"))
        raise ImportError("no")

    with pytest.raises(ImportError):
        InstallingLoader(failing).real_spec()
    assert events[-1] == "started after a failure"


def test_work_left_for_later_never_fails_an_import_nor_starts_early() -> None:
    """A start that raises (no thread to be had) is dropped, the import
    stands; a nested install that fails leaves the outer install's work to
    the outer loader; a caller that runs no exec_module starts it itself."""
    from lazy_import_hook._loader import InstallingLoader, after_this_import

    events: list[str] = []
    real = importlib.util.find_spec("json")
    assert real is not None

    def refusing() -> None:
        raise RuntimeError("can't start new thread")

    def outer_install() -> Any:
        after_this_import(refusing)
        after_this_import(lambda: events.append("outer's work"))
        with pytest.raises(ImportError):
            InstallingLoader(nested_install).real_spec()
        assert events == []  # the nested failure started nothing of the outer's
        return real

    def nested_install() -> Any:
        after_this_import(lambda: events.append("nested's work"))
        raise ImportError("nested")

    loader = InstallingLoader(outer_install)
    assert loader.install_now() is real  # `lazy-import-hook run -m`: no exec_module follows
    assert events == ["outer's work", "nested's work"]  # in order, the refusing start dropped
    after_this_import(lambda: events.append("at once"))  # nothing of those installs is left under way
    assert events[-1] == "at once"
    with pytest.raises(ImportError):
        InstallingLoader(nested_install).real_spec()  # a failed install, on its own
    after_this_import(lambda: events.append("at once, again"))
    assert events[-2:] == ["nested's work", "at once, again"]


class _Spy:
    """A finder that counts the invalidate_caches() calls it gets."""

    def __init__(self) -> None:
        self.invalidated = 0

    def find_spec(self, *args: object) -> None:
        return None

    def invalidate_caches(self) -> None:
        self.invalidated += 1


@pytest.mark.parametrize("metadata_loaded", [False, True])
def test_the_hooks_invalidate_caches_does_what_importlibs_does(
    metadata_loaded: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without importlib.metadata loaded, on CPython 3.13+, the hook's own
    way (importlib's would load it); else importlib's. Either way: every
    finder is told, None path entries are dropped (and relative ones, from
    3.11), and a namespace package sees a portion that appeared since it was
    imported."""
    from lazy_import_hook._serve import invalidate_caches

    first, second = tmp_path / "a", tmp_path / "b"
    (first / "nsfresh").mkdir(parents=True)
    (first / "nsfresh" / "one.py").write_text("")
    second.mkdir()
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    importlib.import_module("nsfresh.one")
    (second / "nsfresh").mkdir()
    (second / "nsfresh" / "two.py").write_text("")
    meta, entry = _Spy(), _Spy()
    monkeypatch.setattr(sys, "meta_path", [meta, *sys.meta_path])
    sys.path_importer_cache.update({"/no/finder/here": None, "relative": entry, str(tmp_path): entry})
    if metadata_loaded:
        importlib.import_module("importlib.metadata")
    else:  # as late as this: importlib.invalidate_caches() (pytest calls it) loads it on 3.13+
        monkeypatch.delitem(sys.modules, "importlib.metadata", raising=False)

    invalidate_caches()

    drops_relative = sys.version_info >= (3, 11)  # as CPython's own call does since 3.11
    assert meta.invalidated == 1 and entry.invalidated == (1 if drops_relative else 2)
    assert "/no/finder/here" not in sys.path_importer_cache
    assert ("relative" in sys.path_importer_cache) != drops_relative
    assert importlib.import_module("nsfresh.two").__name__ == "nsfresh.two"
    assert ("importlib.metadata" in sys.modules) == metadata_loaded


def test_the_hooks_cache_refresh_loads_no_importlib_metadata_in_a_fresh_interpreter() -> None:
    """CPython 3.13+'s importlib.invalidate_caches() imports importlib.metadata
    (40 to 70 ms with zipfile and shutil); the hook's refresh does not."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(lazy_import_hook.__file__).parent.parent)!r})\n"
        "from lazy_import_hook._serve import invalidate_caches\n"
        "invalidate_caches()\n"
        "print(sorted(m for m in ('importlib.metadata', 'zipfile', 'shutil') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
