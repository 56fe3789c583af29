"""Real tier: real pip and real uv, offline, from the session's own wheelhouse,
each scenario in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from _offline import installer_env

from conftest import Runner

INSTALLERS = ["pip", "uv"]


def hook(target: Path, installer: str, allowlist: Mapping[str, object], **options: object) -> str:
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    return (
        "import json, sys, lazy_import_hook\n"
        f"lazy_import_hook.install({allowlist!r}, target={str(target)!r}, "
        f"installer={installer!r}{extra})\n"
    )


def audit_lines(target: Path, *, follow_ups: bool = False) -> list[dict[str, object]]:
    """The audit log's lines; without uv's provenance lines, which follow an
    install after its import returned, unless `follow_ups`."""
    path = target / ".lazy-import-hook" / "audit.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [e for e in lines if follow_ups or e.get("event") != "provenance"]


@pytest.mark.parametrize("installer", INSTALLERS)
def test_install_then_a_warm_second_process_runs_no_installer(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"toymod": "toy-dist==1.0"}) + (
        "import toymod, toydep\n"
        "print(json.dumps([toymod.VERSION, toymod.DEP, toymod.__file__, toydep.__file__,"
        " sys.path[-1], 'subprocess' in sys.modules, 'packaging' in sys.modules,"
        " 'filelock' in sys.modules]))\n"
    )
    first = run_python(code, env)
    version, dep, mod_file, dep_file, last_path, _, _, filelock_loaded = json.loads(first.stdout)
    assert not filelock_loaded  # an uncontended install takes the lock without importing it
    assert (version, dep) == ("1.0", "2.0")  # the newest dependency allowed
    # The import name (toymod) differs from the distribution (toy-dist); the
    # dependency landed in the target too.
    assert Path(mod_file).is_relative_to(target) and Path(dep_file).is_relative_to(target)
    assert last_path == str(target)
    assert "installing toy-dist==1.0 for 'import toymod'" in first.stderr
    infos = sorted(p.name for p in target.glob("*.dist-info"))
    assert infos == ["toy_dep-2.0.dist-info", "toy_dist-1.0.dist-info"]
    (entry,) = audit_lines(target)
    assert entry["status"] == 0 and entry["installer"] == installer
    assert entry["requirements"] == ["toy-dist==1.0"] and entry["import_name"] == "toymod"
    wheels = ["toy_dep-2.0-py3-none-any.whl", "toy_dist-1.0-py3-none-any.whl"]
    assert_provenance(target, wheelhouse, installer, wheels)
    status = subprocess.run(
        [sys.executable, "-m", "lazy_import_hook", "--target", str(target), "status"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert f"toymod: toy-dist==1.0 with {entry['installer_version']}" in status
    follow_up = "toymod: where its wheels came from (uv's resolution): 2 recorded"
    assert (follow_up in status) == (installer == "uv")
    # Only uv's version is remembered: pip's program is the interpreter, the same after a pip upgrade.
    assert (target / ".lazy-import-hook" / "installer-versions").exists() == (installer == "uv")

    second = run_python(code, env)
    assert second.stderr == ""
    *_, subprocess_loaded, packaging_loaded, _ = json.loads(second.stdout)
    assert not subprocess_loaded and not packaging_loaded  # the warm path stays light
    assert len(audit_lines(target)) == 1


def last_provenance(target: Path, installer: str) -> list[dict[str, str]]:
    """The files of the last install: pip's from its own audit line, uv's
    from the line that follows it (written before the process ended)."""
    lines = audit_lines(target, follow_ups=True)
    install = [e for e in lines if e.get("event") != "provenance"][-1]
    if installer == "uv":
        assert str(install["provenance"]).startswith("in a line of its own")
        later, committed = lines[lines.index(install) + 1 :], install["committed"]
        (follow,) = [e for e in later if e.get("event") == "provenance" and e["committed"] == committed]
        assert follow["status"] == 0, follow
        assert follow["committed"] == install["committed"] and follow["import_name"] == install["import_name"]
        files = follow["provenance"]
    else:
        assert not [e for e in lines if e.get("event") == "provenance"]
        files = install["provenance"]
    assert isinstance(files, list)
    return files


def assert_provenance(target: Path, wheelhouse: Path, installer: str, wheels: list[str]) -> None:
    """Each installed wheel with its sha256 and where it came from: pip's in
    the install's line; uv's in a line of its own, asked after the import
    returned and written before the process ended."""
    import hashlib

    files = last_provenance(target, installer)
    assert sorted(f["file"] for f in files) == wheels
    for f in files:
        # pip 23.0 (3.9 and 3.10 here) reports no hash for a local file; when one is given, it is the file's.
        if f["sha256"] or installer == "uv":
            assert f["sha256"] == hashlib.sha256((wheelhouse / f["file"]).read_bytes()).hexdigest()
        assert f["index"] == f"find-links {wheelhouse}"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_package_in_the_target_never_shadows_the_core_environment(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"shadowmod": "shadow-dist==1.0"}) + (
        "import shadowmod, packaging\n"
        "print(json.dumps([shadowmod.CORE_PACKAGING, packaging.__file__,"
        " hasattr(packaging, 'SENTINEL')]))\n"
    )
    for _ in range(2):  # cold, then warm
        seen_by_package, seen_by_app, shadowed = json.loads(run_python(code, env).stdout)
        assert (target / "packaging" / "__init__.py").exists()  # the copy is there...
        assert not shadowed  # ...and never wins
        assert seen_by_package == seen_by_app
        assert not Path(seen_by_app).is_relative_to(target)


@pytest.mark.parametrize("installer", INSTALLERS)
def test_pth_path_lines_are_honoured_and_import_lines_are_not_run(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    body = (
        "import pthpkg, pthmod, builtins\n"
        "print(json.dumps([pthmod.WHERE, sys.path.index(str(pthmod.__file__).rsplit('/', 1)[0]) >"
        " sys.path.index(sys.path[-2]) - 1, getattr(builtins, 'PTH_IMPORT_RAN', False)]))\n"
    )
    allowlist = {"pthpkg": "pth-dist==1.0"}
    cold = json.loads(run_python(hook(target, installer, allowlist) + body, env).stdout)
    warm = json.loads(run_python(hook(target, installer, allowlist) + body, env).stdout)
    assert cold == warm == ["pth_extra", True, False]
    # Opting in runs the import lines at startup.
    opted = run_python(
        hook(target, installer, allowlist, pth_imports=True)
        + "import builtins; print(getattr(builtins, 'PTH_IMPORT_RAN', False))\n",
        env,
    )
    assert opted.stdout.strip() == "True"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_target_built_for_another_abi_is_wiped_and_refilled(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    from _fakes import write_dist

    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"toymod": "toy-dist==1.0"}) + "import toymod\n"
    run_python(code, env)
    (target / ".python-abi").write_text("cpython-27-linux-x86_64-64bit\n")
    write_dist(str(target), "py27-only", "1.0", {"leftover_from_py27.py": "X = 1\n"})
    (target / "notes-of-the-operator.txt").write_text("no distribution owns me\n")
    again = run_python(code, env)
    assert "built for another Python" in again.stderr
    assert "left in place, no distribution owns them: notes-of-the-operator.txt" in again.stderr
    assert "installing toy-dist==1.0" in again.stderr
    assert not (target / "leftover_from_py27.py").exists()
    assert (target / "notes-of-the-operator.txt").exists()  # evidence first: never someone's file
    assert (target / ".python-abi").read_text().strip() != "cpython-27-linux-x86_64-64bit"
    assert (target / "toymod").is_dir()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_failing_install_surfaces_the_installers_message_as_an_import_error(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"brokenmod": "broken-dist==1.0"}) + (
        "try:\n"
        "    import brokenmod\n"
        "except ImportError as e:\n"
        "    print(json.dumps([type(e).__mro__[1].__name__, e.name, e.reason, str(e)]))\n"
    )
    _, name, reason, message = json.loads(run_python(code, env).stdout)
    assert name == "brokenmod" and reason == "installer-failed"
    assert "dependency-that-exists-nowhere" in message
    assert message.splitlines()[-1].startswith("To install it by hand: ")
    assert not list(target.glob("broken*"))
    assert list((target / ".lazy-import-hook" / "staging").iterdir()) == []


@pytest.mark.parametrize("installer", INSTALLERS)
def test_the_try_except_import_error_fallback_idiom_keeps_working(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(
        target,
        installer,
        {"brokenmod": "broken-dist==1.0", "wrong_name": "misnamed-dist==1.0"},
    ) + (
        "results = []\n"
        "for name in ('brokenmod', 'wrong_name', 'not_allowlisted'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "        results.append('imported')\n"
        "    except ImportError as e:\n"
        "        results.append(getattr(e, 'reason', 'plain'))\n"
        "print(json.dumps(results))\n"
    )
    results = json.loads(run_python(code, env).stdout)
    assert results == ["installer-failed", "still-missing", "plain"]
    # The next start knows the name is wrong without installing it again.
    assert json.loads(run_python(code, env).stdout) == results
    runs = [line for line in audit_lines(target) if line.get("requirements") == ["misnamed-dist==1.0"]]
    assert len(runs) == 1, runs


def test_uvs_version_is_asked_once_per_program_and_target(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """`uv --version` beside every install cost a small install about 15 ms:
    the target remembers the answer for that very program (path, size, mtime)."""
    env = installer_env(wheelhouse, tmp_path)
    allowlist = {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0", "pthpkg": "pth-dist==1.0"}
    counted = (
        "from lazy_import_hook import _uv\n"
        "asked = []\n"
        "real = _uv.Uv.version_probe\n"
        "_uv.Uv.version_probe = lambda self: asked.append(1) or real(self)\n"
    )
    report = "print(len(asked))\n"
    first = run_python(counted + hook(target, "uv", allowlist) + "import toymod\n" + report, env)
    second = run_python(counted + hook(target, "uv", allowlist) + "import othermod\n" + report, env)
    assert (first.stdout.strip(), second.stdout.strip()) == ("1", "0")
    versions = [line["installer_version"] for line in audit_lines(target)]
    assert versions[0] == versions[1] and str(versions[0]).startswith("uv ")
    # Another program at that path (here: another mtime) is asked again.
    cache = target / ".lazy-import-hook" / "installer-versions"
    size, mtime, ctime, version, path = cache.read_text().rstrip("\n").split("\t")
    cache.write_text(f"{size}\t{int(mtime) + 1}\t{ctime}\tuv 0.0.1\t{path}\n")
    third = run_python(counted + hook(target, "uv", allowlist) + "import pthpkg\n" + report, env)
    assert third.stdout.strip() == "1" and audit_lines(target)[-1]["installer_version"] == version


def test_a_uv_from_its_wheel_is_not_asked_its_version_even_on_a_new_target(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """This environment's uv came from its wheel (`.[test]`, as `.[uv]`): its
    RECORD gives the version, so even the first install into a new target
    starts no `uv --version` beside uv's own run."""
    from importlib.metadata import version

    env = installer_env(wheelhouse, tmp_path)
    spied = (
        "from lazy_import_hook import _process\n"
        "started = []\n"
        "real = _process.Probe.__init__\n"
        "def spy(self, cmd, **kw):\n"
        "    started.append(list(cmd))\n"
        "    real(self, cmd, **kw)\n"
        "_process.Probe.__init__ = spy\n"
    )
    code = hook(target, "uv", {"toymod": "toy-dist==1.0"}) + "import toymod\nprint(json.dumps(started))\n"
    started = json.loads(run_python(spied + code, env).stdout.strip().splitlines()[-1])
    assert not [cmd for cmd in started if cmd[-1] == "--version"], started
    assert audit_lines(target)[0]["installer_version"] == f"uv {version('uv')}"


def test_back_to_back_uv_installs_each_get_their_provenance(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """The second install empties the staging folder while the first one's
    provenance may still be starting: that one keeps its input elsewhere."""
    env = installer_env(wheelhouse, tmp_path)
    allowlist = {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}
    run_python(hook(target, "uv", allowlist) + "import toymod, othermod\n", env)
    follow = [e for e in audit_lines(target, follow_ups=True) if e.get("event") == "provenance"]
    assert sorted(str(e["import_name"]) for e in follow) == ["othermod", "toymod"]
    assert all(e["status"] == 0 and e["provenance"] for e in follow), follow
