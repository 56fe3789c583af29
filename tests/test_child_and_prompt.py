"""Child processes get the same behaviour; the confirmation prompt asks only on a terminal."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _offline import installer_env
from test_real_installers import hook

import lazy_import_hook
from conftest import Runner


def test_child_env_gives_subprocesses_the_hook_with_the_target_appended(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    child = (
        "import json, sys, toymod\n"
        "print(json.dumps([toymod.VERSION, sys.path[-1], [p for p in sys.path if '_autostart' in p]]))\n"
    )
    code = hook(target, "pip", {"toymod": "toy-dist==1.0"}) + (
        "import subprocess\n"
        f"child = {child!r}\n"
        "plain = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True)\n"
        "hooked = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True,\n"
        "                        env=lazy_import_hook.child_env())\n"
        "print(json.dumps([plain.returncode, plain.stderr,\n"
        "                  hooked.returncode, hooked.stdout, hooked.stderr]))\n"
    )
    plain_rc, plain_err, rc, out, err = json.loads(run_python(code, env).stdout)
    assert plain_rc != 0 and "No module named 'toymod'" in plain_err  # nothing without it
    assert rc == 0, err
    version, last, autostart = json.loads(out)
    assert version == "1.0" and last == str(target) and autostart == []
    assert "installing toy-dist==1.0" in err  # the child installed it through the hook


def test_in_a_child_the_kill_switch_still_holds_and_sitecustomize_chains(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    other = tmp_path / "other-site"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import builtins; builtins.OTHER_SITECUSTOMIZE = True\n")
    env = installer_env(wheelhouse, tmp_path)
    child = (
        "import builtins\n"
        "try:\n    import toymod\n    print('imported')\n"
        "except ImportError as e:\n    print(e.reason)\n"
        "print(getattr(builtins, 'OTHER_SITECUSTOMIZE', False))\n"
    )
    code = hook(target, "pip", {"toymod": "toy-dist==1.0"}) + (
        "import os, subprocess\n"
        "env = lazy_import_hook.child_env()\n"
        "env['LAZY_IMPORT_HOOK_DISABLE'] = '1'\n"
        f"env['PYTHONPATH'] += os.pathsep + {str(other)!r}\n"
        f"r = subprocess.run([sys.executable, '-c', {child!r}], env=env, capture_output=True, text=True)\n"
        "print(json.dumps([r.stdout.split(), r.stderr]))\n"
    )
    out, err = json.loads(run_python(code, env).stdout)
    assert out == ["disabled", "True"], err
    assert err == ""  # no "Error in sitecustomize"


def test_the_installer_never_runs_with_the_hook_inside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from lazy_import_hook import _installer

    autostart = str(Path(lazy_import_hook.__file__).parent / "_autostart")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([autostart, "/kept"]))
    monkeypatch.setenv("LAZY_IMPORT_HOOK_CHILD_PLAN", "plan")
    env, _ = _installer.base_environment()
    assert env["PYTHONPATH"] == "/kept" and "LAZY_IMPORT_HOOK_CHILD_PLAN" not in env


def test_child_env_needs_install_first() -> None:
    lazy_import_hook.uninstall()
    with pytest.raises(RuntimeError, match="install"):
        lazy_import_hook.child_env()


def _run_on_a_terminal(
    code: str, env: dict[str, str], answer: str | None, cwd: Path, columns: int = 80
) -> str:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if answer is not None and not answered and b"[Y/n]" in seen:
            os.write(master, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    proc.wait(30)
    os.close(master)
    return seen.decode(errors="replace")


@pytest.mark.parametrize(("answer", "expected"), [("y", "imported 1.0"), ("n", "declined")])
def test_confirm_asks_on_a_terminal(
    answer: str, expected: str, wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, "pip", {"othermod": "other-dist==1.0"}, confirm=True) + (
        "try:\n    import othermod\n    print('imported', othermod.VERSION)\n"
        "except ImportError as e:\n    print('declined' if 'declined' in str(e) else e)\n"
    )
    screen = _run_on_a_terminal(code, env, answer, tmp_path)
    assert "install other-dist==1.0 for 'import othermod' into" in screen and "[Y/n]" in screen
    assert expected in screen


def test_confirm_never_blocks_without_a_terminal(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, "pip", {"othermod": "other-dist==1.0"}, confirm=True) + (
        "import othermod\nprint('imported', othermod.VERSION)\n"
    )
    result = run_python(code, env, timeout=60)
    assert result.stdout.strip() == "imported 1.0"
    assert "[Y/n]" not in result.stderr + result.stdout


def test_verbose_streams_the_installers_own_output(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path, LAZY_IMPORT_HOOK_VERBOSE="1")
    result = run_python(hook(target, "pip", {"othermod": "other-dist==1.0"}) + "import othermod\n", env)
    assert "  pip: " in result.stderr and "other-dist" in result.stderr
    quiet = run_python(
        hook(tmp_path / "t2", "pip", {"othermod": "other-dist==1.0"}) + "import othermod\n",
        installer_env(wheelhouse, tmp_path),
    )
    assert "  pip: " not in quiet.stderr
