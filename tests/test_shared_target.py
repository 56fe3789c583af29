"""Applications sharing one target: a process is never served a version its
allowlist does not pin, and two applications with conflicting pins are told
so (error, audit log, status) instead of taking turns reinstalling."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _offline import installer_env
from test_real_installers import INSTALLERS, audit_lines

from conftest import ROOT

APP = """
import importlib, json, sys, lazy_import_hook
lazy_import_hook.install({{"toymod": "toy-dist=={version}"}}, target={target!r}, installer={installer!r})
def attempt():
    try:
        import toymod
        return toymod.VERSION
    except ImportError as e:
        return getattr(e, "reason", "plain") + ": " + str(e).splitlines()[0]
for command in sys.stdin:
    if command.strip() == "import":
        print(json.dumps(attempt()), flush=True)
    elif command.strip() == "retry":
        sys.modules.pop("toymod", None)
        importlib.invalidate_caches()
        print(json.dumps(attempt()), flush=True)
"""


class App:
    """An application process that imports when told to, and stays alive."""

    def __init__(self, version: str, target: Path, installer: str, env: dict[str, str]) -> None:
        code = textwrap.dedent(APP.format(version=version, target=str(target), installer=installer))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, self.finish()
        answer: str = json.loads(line)
        return answer

    def finish(self) -> str:
        """Let it end (its input closed) and return what it printed on stderr."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait(60)
        return self.proc.stderr.read()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_conflicting_pins_on_one_target_are_reported_never_served_or_flip_flopped(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    old = App("1.0", target, installer, env)  # started, has not imported toymod yet
    try:
        new = App("2.0", target, installer, env)
        assert new.ask("import") == "2.0"  # a rolling deploy: the new release upgrades the target
        answer = old.ask("import")
        assert answer.startswith("pin-conflict: 'import toymod' needs toy-dist==1.0"), answer
        assert "pins toy-dist==2.0 and the target holds toy-dist 2.0" in answer
        assert sorted(p.name for p in target.glob("toy_dist-*")) == ["toy_dist-2.0.dist-info"]
        assert audit_lines(target)[-1]["status"] == "pin-conflict"
        status = subprocess.run(
            [sys.executable, "-m", "lazy_import_hook", "--target", str(target), "status", "--json"],
            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=False,
        )  # fmt: skip
        report = json.loads(status.stdout)
        assert len([a for a in report["applications"] if a["in_use"]]) == 2, report["applications"]
        assert any("toy-dist" in line for line in report["conflicts"]), report["conflicts"]
        new.finish()
        assert old.ask("retry") == "1.0"  # the other application is gone: now it may change the target
    finally:
        for app in (old,):
            if app.proc.poll() is None:
                app.proc.kill()
                app.proc.wait()


LIVE = """
import sys, lazy_import_hook
lazy_import_hook.install({allowlist!r}, target={target!r}, installer="uv")
import {module}
print("ready", flush=True)
sys.stdin.read()
"""


def live_app(module: str, requirement: str, target: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """An application that imported `module` through the hook and keeps running."""
    code = textwrap.dedent(LIVE.format(allowlist={module: requirement}, target=str(target), module=module))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.communicate()
    return proc


def test_prune_keeps_what_every_application_using_the_target_needs(
    wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    """Two applications share the target; whichever plan prune acts on, what
    the other running one imports stays. Once it has ended, it goes."""
    env = installer_env(wheelhouse, tmp_path)
    cli_env = {**env, "PYTHONPATH": str(ROOT)}

    def prune(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "lazy_import_hook", "--target", str(target), "prune", *args]
        return subprocess.run(command, env=cli_env, capture_output=True, text=True, check=False)

    toy = live_app("toymod", "toy-dist==1.0", target, env)
    other = live_app("othermod", "other-dist==1.0", target, env)
    before = len(list(target.glob("*.dist-info")))
    try:
        for args in ((), ("--dry-run",)):
            proc = prune(*args)
            assert proc.returncode == 0, proc.stderr
            assert "keeping what" in proc.stdout and proc.stdout.splitlines()[-1] == "nothing to prune"
        assert len(list(target.glob("*.dist-info"))) == before
    finally:
        toy.communicate()
    proc = prune()
    assert proc.returncode == 0, proc.stderr
    assert "removed toy_dist-1.0: no allowlist entry needs it" in proc.stdout.splitlines()
    assert not (target / "toymod").exists() and (target / "othermod").exists()
    other.communicate()


def test_prune_removes_nothing_while_an_application_it_cannot_read_uses_the_target(
    wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    """Another user's application shares the target; its plan is not one
    this user may trust, so what it needs is unknown: nothing goes."""
    env = installer_env(wheelhouse, tmp_path)
    toy = live_app("toymod", "toy-dist==1.0", target, env)
    other = live_app("othermod", "other-dist==1.0", target, env)
    try:
        plans = sorted((target / ".lazy-import-hook" / "plans").glob("*.plan"))
        for plan in plans:
            if "othermod" in plan.read_text():
                plan.chmod(0o666)
        before = sorted(p.name for p in target.iterdir())
        for args in ((), ("--dry-run",)):
            command = [sys.executable, "-m", "lazy_import_hook", "--target", str(target), "prune", *args]
            proc = subprocess.run(command, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                                  text=True, check=False)  # fmt: skip
            assert proc.returncode == 1, proc.stdout
            assert "1 application(s) using the target now have a plan this user cannot read" in proc.stderr
        assert sorted(p.name for p in target.iterdir()) == before
    finally:
        toy.communicate()
        other.communicate()


def test_another_python_never_wipes_a_target_an_application_of_the_first_runs_on(
    wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    """A Python upgrade rolled out one process at a time: the new Python's
    first start finds the old one's store in use, keeps it (its pure-Python
    modules still import), refuses installs into it, and says why; once the
    old application has stopped, the next start rebuilds it."""
    env = installer_env(wheelhouse, tmp_path)
    running = live_app("toymod", "toy-dist==1.0", target, env)
    stamp = target / ".python-abi"
    ours = stamp.read_text()
    stamp.write_text("cpython-399-linux-x86_64-64bit\n")  # as the running application's Python wrote it
    code = (
        "import json, lazy_import_hook\n"
        f"lazy_import_hook.install({{'toymod': 'toy-dist==1.0', 'othermod': 'other-dist==1.0'}}, "
        f"target={str(target)!r}, installer='uv')\n"
        "import toymod\n"
        "try:\n    import othermod\n    print(json.dumps('imported'))\n"
        "except ImportError as e:\n    print(json.dumps(str(e)))\n"
    )

    def start() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", code]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    try:
        proc = start()
        assert proc.returncode == 0, proc.stderr
        assert "so it is not wiped under it" in proc.stderr and "(plan " in proc.stderr
        refused = json.loads(proc.stdout)
        assert "an application of that Python was using it when this one started" in refused
        assert (target / "toymod").is_dir() and stamp.read_text() != ours
    finally:
        running.communicate()
    proc = start()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == "imported" and stamp.read_text() == ours
