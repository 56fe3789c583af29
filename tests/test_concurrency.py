"""Nothing lost: concurrent processes, kills, pin changes, timeouts (real installers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _offline import installer_env
from _slow_index import serve_find_links
from test_real_installers import INSTALLERS, audit_lines, hook

from conftest import Runner

ROUNDS = 5  # each round: 4 cold processes on one empty target


def start(code: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.parametrize("installer", INSTALLERS)
def test_processes_cold_starting_together_install_once(
    installer: str, wheelhouse: Path, tmp_path: Path
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    for round_ in range(ROUNDS):
        target = tmp_path / f"target-{round_}"
        code = hook(target, installer, {"toymod": "toy-dist==1.0"}) + (
            "import toymod\nprint(toymod.VERSION, toymod.DEP)\n"
        )
        procs = [start(code, env, tmp_path) for _ in range(4)]
        outputs = [p.communicate(timeout=120) for p in procs]
        for proc, (out, err) in zip(procs, outputs):
            assert proc.returncode == 0, err
            assert out.split() == ["1.0", "2.0"]
        runs = [e for e in audit_lines(target) if e["status"] == 0]
        assert len(runs) == 1, (round_, audit_lines(target))
        assert sum("lazy-import-hook: installing toy-dist" in err for _, err in outputs) == 1
        # A process that waits for another's install says so, once.
        assert all(err.count("lazy-import-hook: waiting for process") <= 1 for _, err in outputs)
        assert sorted(p.name for p in target.glob("*.dist-info")) == [
            "toy_dep-2.0.dist-info", "toy_dist-1.0.dist-info",
        ]  # fmt: skip


@pytest.mark.parametrize("installer", INSTALLERS)
def test_threads_importing_two_packages_at_once(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}) + (
        "import importlib, threading\n"
        "results = {}\n"
        "def work(name):\n"
        "    results[name] = importlib.import_module(name).VERSION\n"
        "threads = [threading.Thread(target=work, args=(n,)) for n in ('toymod', 'othermod')]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(json.dumps(results, sort_keys=True))\n"
    )
    assert json.loads(run_python(code, env).stdout) == {"othermod": "1.0", "toymod": "1.0"}
    assert len(audit_lines(target)) == 2


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_process_killed_mid_install_loses_nothing(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    allowlist = {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}
    fast = installer_env(wheelhouse, tmp_path)
    run_python(hook(target, installer, allowlist) + "import toymod\n", fast)
    log: list[str] = []
    with serve_find_links(
        wheelhouse, delay_seconds=60, delay_for=["other_dist"], request_log=log
    ) as url:
        slow = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        victim = start(hook(target, installer, allowlist) + "import othermod\n", slow, tmp_path)
        deadline = time.monotonic() + 60
        while not any("other_dist-1.0" in line and line.startswith("GET") for line in log):
            assert victim.poll() is None, victim.communicate()
            assert time.monotonic() < deadline, log
            time.sleep(0.05)
        time.sleep(0.5)  # inside the download now
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
    staging = target / ".lazy-import-hook" / "staging"
    assert not (target / "othermod").exists()  # the interrupted one is absent...
    assert (target / "toymod" / "__init__.py").exists()  # ...the earlier one whole
    code = hook(target, installer, allowlist) + (
        "import toymod, othermod\nprint(toymod.VERSION, othermod.VERSION)\n"
    )
    assert run_python(code, fast).stdout.split() == ["1.0", "1.0"]
    assert list(staging.iterdir()) == []  # the killed process's staging was removed


def versions_in(target: Path) -> list[str]:
    return sorted(p.name for p in target.glob("*.dist-info"))


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_pin_change_takes_effect_and_leaves_one_dist_info(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    for version, dep in (("1.0", "1.0"), ("2.0", "2.0"), ("1.0", "1.0")):
        allowlist = {"toymod": f"toy-dist=={version}", "toydep": f"toy-dep=={dep}"}
        code = hook(target, installer, allowlist) + (
            "import toymod, importlib.metadata as md\n"
            "print(toymod.VERSION, toymod.DEP, md.version('toy-dist'), md.version('toy-dep'))\n"
        )
        result = run_python(code, env)
        assert result.stdout.split() == [version, dep, version, dep]
        assert versions_in(target) == [f"toy_dep-{dep}.dist-info", f"toy_dist-{version}.dist-info"]
        # The next start with the same pins runs no installer.
        assert run_python(code, env).stderr == ""


@pytest.mark.parametrize("installer", INSTALLERS)
def test_with_installs_disabled_a_stale_version_is_never_served(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    run_python(hook(target, installer, {"toymod": "toy-dist==1.0"}) + "import toymod\n", env)
    code = hook(target, installer, {"toymod": "toy-dist==2.0"}, enabled=False) + (
        "try:\n    import toymod\nexcept ImportError as e:\n    print(e.reason, str(e))\n"
    )
    out = run_python(code, env).stdout
    assert out.startswith("disabled") and "toy-dist 1.0, which does not match" in out
    assert versions_in(target) == ["toy_dep-2.0.dist-info", "toy_dist-1.0.dist-info"]


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_timeout_stops_the_installer_and_cleans_up(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    with serve_find_links(wheelhouse, delay_seconds=60, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        code = hook(target, installer, {"othermod": "other-dist==1.0"}, timeout=3) + (
            "import time\nstarted = time.monotonic()\n"
            "try:\n    import othermod\nexcept ImportError as e:\n"
            "    print(json.dumps([e.reason, time.monotonic() - started]))\n"
        )
        reason, elapsed = json.loads(run_python(code, env).stdout)
    assert reason == "timeout" and elapsed < 20
    assert not (target / "othermod").exists()
    assert list((target / ".lazy-import-hook" / "staging").iterdir()) == []
    (entry,) = audit_lines(target)
    assert entry["status"] == "timeout"
