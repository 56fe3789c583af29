"""Workers get the hook without child_env(): multiprocessing (spawn,
forkserver, fork), process pools, and a real Dask cluster through the
plugin. Real installers, offline, each scenario in a fresh interpreter."""

from __future__ import annotations

import importlib
import importlib.util
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _offline import installer_env
from test_real_installers import audit_lines, hook

import lazy_import_hook
from conftest import Runner
from lazy_import_hook import _finder, _hook, _plan, _workers

# Imported by the parent and, by name, by its workers (a function defined in
# a `python -c` program cannot be sent to a spawned worker).
WORK = """\
import os, sys
from concurrent.futures import ProcessPoolExecutor
import multiprocessing


def probe(name="toymod"):
    try:
        module = __import__(name)
    except ImportError as e:
        return {"error": type(e).__name__, "reason": getattr(e, "reason", None), "message": str(e),
                "hooked": hooked()}
    return {"file": module.__file__, "last": sys.path[-1], "pid": os.getpid(), "hooked": hooked()}


def hooked():
    return any(type(f).__name__ == "LazyFinder" for f in sys.meta_path)


def report(queue, name):
    queue.put(probe(name))


def run(method, name="toymod"):
    \"\"\"`probe(name)` in a worker started by `method`.\"\"\"
    if method.startswith("pool"):
        context = multiprocessing.get_context("spawn") if method == "pool-spawn" else None
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            return pool.submit(probe, name).result(timeout=90)
    context = multiprocessing.get_context(method)
    queue = context.Queue()
    process = context.Process(target=report, args=(queue, name))
    process.start()
    try:
        return queue.get(timeout=90)
    finally:
        process.join(30)
"""

POSIX_ONLY = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no forkserver on this platform"
)
METHODS = ["spawn", pytest.param("forkserver", marks=POSIX_ONLY), "pool", "pool-spawn"]
TOY = {"toymod": "toy-dist==1.0"}


def scenario(tmp_path: Path, target: Path, body: str) -> str:
    """The parent: install() with an allowlist and a target, then `body`."""
    (tmp_path / "work.py").write_text(WORK)
    return "import os\nbefore = dict(os.environ)\n" + hook(target, "uv", TOY) + "import work\n" + body


def run_json(run_python: Runner, code: str, env: dict[str, str]) -> Any:
    result = run_python(code, env, timeout=240)
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("method", METHODS)
def test_a_worker_installs_through_the_hook_into_the_target_kept_last_on_its_path(
    method: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    body = (
        f"print(json.dumps([os.getpid(), dict(os.environ) == before, work.run({method!r})]))\n"
    )
    parent, environ_untouched, worker = run_json(run_python, scenario(tmp_path, target, body), env)
    assert environ_untouched  # nothing global: other subprocesses (the installers) get nothing
    assert worker["hooked"], worker
    assert Path(worker["file"]).is_relative_to(target) and worker["last"] == str(target)
    (entry,) = audit_lines(target)  # installed once, by the worker, through the hook
    assert entry["pid"] == worker["pid"] != parent and entry["import_name"] == "toymod"


@pytest.mark.parametrize("method", ["spawn", pytest.param("forkserver", marks=POSIX_ONLY)])
def test_the_kill_switch_in_the_parent_holds_in_its_workers(
    method: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    body = (
        # A first worker starts the forkserver while installs are still enabled:
        # the switch reaches workers it forks later all the same.
        f"first = work.run({method!r}, 'json')\n"
        "os.environ['LAZY_IMPORT_HOOK_DISABLE'] = '1'\n"
        f"print(json.dumps([first, work.run({method!r})]))\n"
    )
    first, worker = run_json(run_python, scenario(tmp_path, target, body), env)
    assert first["hooked"] and "error" not in first
    assert worker["reason"] == "disabled", worker  # a LazyInstallError
    assert "LAZY_IMPORT_HOOK_DISABLE=1" in worker["message"]
    assert audit_lines(target) == []


def test_after_uninstall_workers_get_no_hook_and_after_install_the_new_plan(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    body = (
        "lazy_import_hook.uninstall()\n"
        "without = work.run('spawn')\n"
        f"lazy_import_hook.install({{'othermod': 'other-dist==1.0'}}, target={str(target)!r})\n"
        "print(json.dumps([without, work.run('spawn', 'othermod'), work.run('spawn')]))\n"
    )
    without, other, toymod = run_json(run_python, scenario(tmp_path, target, body), env)
    assert without["error"] == "ModuleNotFoundError" and without["reason"] is None
    assert not without["hooked"]
    assert Path(other["file"]).is_relative_to(target)  # the new plan
    assert toymod["error"] == "ModuleNotFoundError" and toymod["reason"] is None  # not on it


def test_a_main_module_that_installs_at_import_works_in_spawned_and_forkserver_workers(
    wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    # spawn and forkserver run the parent's main module again in the child,
    # with the parent's sys.path: install() there must know the target at its
    # end is the hook's own, not a folder put ahead of the core environment.
    methods = [m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "app.py").write_text(
        hook(target, "uv", TOY)
        + "import work\n"
        + "if __name__ == '__main__':\n"
        + "    print(json.dumps([work.run(m) for m in sys.argv[1:]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "app.py", *methods],
        cwd=tmp_path,
        env=installer_env(wheelhouse, tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "already on sys.path" not in result.stderr and "Warning" not in result.stderr, result.stderr
    for worker in json.loads(result.stdout):
        assert Path(worker["file"]).is_relative_to(target) and worker["last"] == str(target)
    assert len(audit_lines(target)) == 1


def test_install_imports_no_multiprocessing_and_patches_it_once_it_is_imported(
    target: Path, tmp_path: Path, run_python: Runner
) -> None:
    code = hook(target, "uv", TOY) + (
        "from lazy_import_hook import _workers\n"
        "ours = [type(f).__name__ for f in sys.meta_path\n"
        "        if type(f).__module__.startswith('lazy_import_hook')]\n"
        "hooks = [type(h).__name__ for h in sys.path_hooks]\n"
        "loaded = 'multiprocessing' in sys.modules\n"
        "import inspect, multiprocessing.spawn as spawn\n"
        "data = spawn.get_preparation_data('Process-1')\n"
        "server = spawn.get_preparation_data('ignore')\n"
        "lazy_import_hook.uninstall()\n"
        "print(json.dumps([[ours, hooks], loaded, '_Watch' in [type(h).__name__ for h in sys.path_hooks],\n"
        "    type(spawn.__loader__).__name__, 'def spawn_main' in inspect.getsource(spawn),\n"
        "    _workers.KEY in data, data['sys_path'][-1], server['sys_path'][-1:],\n"
        "    _workers.KEY in spawn.get_preparation_data('Process-2')]))\n"
    )
    env = installer_env(tmp_path, tmp_path)
    first, loaded, watching, loader, source, item, last, server_last, after_uninstall = run_json(
        run_python, code, env
    )
    ours, hooks = first
    assert ours == ["LazyFinder"] and "_Watch" in hooks and not loaded  # no import pays for the watch
    assert not watching  # uninstall() removed it
    assert loader == "SourceFileLoader" and source  # the module looks as it always does
    assert item and last == str(target)  # a worker gets the item, and the parent's sys.path
    assert server_last != [str(target)]  # the forkserver process: not the hook's folders
    assert not after_uninstall


def test_a_worker_that_cannot_import_the_package_starts_anyway_and_says_why(tmp_path: Path) -> None:
    item = _workers._Item("a plan", "")
    item.path = [str(tmp_path / "nowhere")]
    blob = pickle.dumps({"sys_path": ["x"], _workers.KEY: item})
    result = subprocess.run(
        [sys.executable, "-S", "-c", f"import pickle; print(pickle.loads(bytes.fromhex({blob.hex()!r})))"],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{{'sys_path': ['x'], {_workers.KEY!r}: None}}"
    assert "lazy-import-hook: not active in this worker: No module named 'lazy_import_hook'" in result.stderr


def test_a_worker_on_another_host_settles_its_own_target_and_kill_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lazy_import_hook.install(TOY, target=tmp_path / "client")
    finder = _finder.active_finder()
    assert finder is not None
    text = _plan.child_text(finder.plan)
    there = tmp_path / "worker-host"
    moved = _hook.install_on_worker(text, target=str(there))
    assert moved.target == str(there) == sys.path[-1] and (there / ".python-abi").is_file()
    assert moved.plan.record_id != finder.plan.record_id and moved.plan.settings.enabled
    monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "1")
    off = _hook.install_on_worker(text)
    assert off.target == str(tmp_path / "client") and not off.plan.settings.enabled
    assert off.plan.sources["enabled"] == "LAZY_IMPORT_HOOK_DISABLE=1"


DASK = """
from distributed import Client, LocalCluster

options = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
with LocalCluster(**options) as cluster, Client(cluster, timeout=60) as client:
    # Workers that started before install(), as on another host: only the plugin helps.
    client.wait_for_workers(2, timeout=60)
    before = client.submit(work.probe, pure=False).result(timeout=60)
    lazy_import_hook.install({allowlist!r}, target={target!r}, installer="uv")
    client.register_plugin(lazy_import_hook.dask_plugin())
    # Both workers import at once: one installs, the other waits for it.
    both = [client.submit(work.probe, workers=[w], pure=False) for w in client.scheduler_info()["workers"]]
    results = client.gather(both, errors="raise")
    missing = client.submit(work.probe, "not_allowlisted_anywhere", pure=False).result(timeout=60)
print(json.dumps([before, results, missing]))
"""


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="distributed is not installed")
def test_a_dask_cluster_installs_on_its_workers_through_the_plugin(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    (tmp_path / "work.py").write_text(WORK)
    code = "import json, sys, lazy_import_hook, work\n" + DASK.format(allowlist=TOY, target=str(target))
    env = installer_env(wheelhouse, tmp_path)
    before, results, missing = run_json(run_python, code, env)
    assert before["error"] == "ModuleNotFoundError" and not before["hooked"]
    assert len(results) == 2 and len({r["pid"] for r in results}) == 2
    for worker in results:
        assert worker["hooked"] and Path(worker["file"]).is_relative_to(target), worker
        assert worker["last"] == str(target)
    (entry,) = audit_lines(target)  # one install for both workers
    assert entry["pid"] in {r["pid"] for r in results} and entry["status"] == 0
    assert missing["error"] == "ModuleNotFoundError" and missing["reason"] is None
    assert "No module named 'not_allowlisted_anywhere'" in missing["message"]


def test_dask_plugin_needs_install_first() -> None:
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("distributed is not installed")
    lazy_import_hook.uninstall()
    with pytest.raises(RuntimeError, match="install"):
        lazy_import_hook.dask_plugin()


# -- the watch that patches multiprocessing.spawn, on a package of our own ------------


def _package(where: Path, name: str) -> None:
    (where / name).mkdir(parents=True)
    (where / name / "__init__.py").write_text("")
    (where / name / "sub.py").write_text("VALUE = 1\n")


def test_the_watch_runs_once_the_submodule_has_run_and_no_import_pays_for_it(tmp_path: Path) -> None:
    _package(tmp_path, "watchedpkg")
    sys.path.append(str(tmp_path))
    seen: list[object] = []
    meta_path = list(sys.meta_path)
    _finder.after_import("watchedpkg.sub", seen.append)
    assert sys.meta_path == meta_path and seen == []
    importlib.import_module("watchedpkg.sub")
    assert seen == [sys.modules["watchedpkg.sub"]] and sys.modules["watchedpkg.sub"].VALUE == 1
    assert type(sys.modules["watchedpkg.sub"].__loader__).__name__ == "SourceFileLoader"
    _finder.forget("watchedpkg.sub")
    assert not [h for h in sys.path_hooks if type(h).__name__ == "_Watch"]


def test_the_watch_sees_the_submodule_when_its_package_was_loaded_before(tmp_path: Path) -> None:
    _package(tmp_path, "loadedpkg")
    sys.path.append(str(tmp_path))
    importlib.import_module("loadedpkg")  # its folder has a finder now
    seen: list[object] = []
    _finder.after_import("loadedpkg.sub", seen.append)
    assert seen == [] and "loadedpkg.sub" not in sys.modules  # nothing imported for it
    module = importlib.import_module("loadedpkg.sub")
    assert seen == [module]


def test_the_watch_sees_a_folder_pkgutil_looked_at_before(tmp_path: Path) -> None:
    import pkgutil

    _package(tmp_path, "listedpkg")
    sys.path.append(str(tmp_path))
    assert pkgutil.get_importer(str(tmp_path / "listedpkg")) is not None  # cached, package not imported
    seen: list[object] = []
    _finder.after_import("listedpkg.sub", seen.append)
    module = importlib.import_module("listedpkg.sub")
    assert seen == [module]
    assert [name for _, name, _ in pkgutil.iter_modules([str(tmp_path / "listedpkg")])] == ["sub"]


def test_the_watch_works_for_a_package_in_a_zip_archive(tmp_path: Path) -> None:
    _package(tmp_path / "src", "zippedpkg")
    archive = shutil.make_archive(str(tmp_path / "lib"), "zip", tmp_path / "src")
    sys.path.append(archive)
    seen: list[object] = []
    _finder.after_import("zippedpkg.sub", seen.append)
    module = importlib.import_module("zippedpkg.sub")
    assert str(module.__file__).startswith(archive)
    # zipimport has the finder interface the watch wraps from 3.10 on; before, the import still works
    assert seen == ([module] if sys.version_info >= (3, 10) else [])
