"""The operators' side: every verb through a real subprocess, offline."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from _fakes import PIP, installs
from _offline import installer_env

import lazy_import_hook
from lazy_import_hook import LazyInstallError, _target

ALLOWLIST = """\
[tool.lazy-import-hook]
target = "lazy-target"
installer = "{installer}"

[tool.lazy-import-hook.allowlist]
toymod = "toy-dist==1.0"
othermod = "other-dist==1.0"
nowhere = "toy-dist==1.0; sys_platform == 'no-such-platform'"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(ALLOWLIST.format(installer="pip"))
    return folder


def cli(
    args: list[str], env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "lazy_import_hook", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def states(env: dict[str, str], cwd: Path) -> dict[str, str]:
    report = json.loads(cli(["status", "--json"], env, cwd).stdout)
    return {e["import_name"]: e["state"] for e in report["entries"]}


def test_status_then_prefetch_then_offline_imports_with_installs_disabled(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    assert states(env, project) == {
        "toymod": "missing", "othermod": "missing", "nowhere": "not-for-this-platform",
    }  # fmt: skip
    text = cli(["status"], env, project).stdout
    assert f"target:     {project / 'lazy-target'}" in text and "installs:   enabled" in text
    out = cli(["prefetch"], env, project).stdout
    assert "toymod: installed (toy-dist==1.0)" in out and "nowhere: skipped" in out
    assert states(env, project)["toymod"] == "installed"
    report = json.loads(cli(["status", "--json"], env, project).stdout)
    assert [r["import_name"] for r in report["recent"]] == [["toymod", "othermod"]]  # one resolution
    assert "recent installs:" in cli(["status"], env, project).stdout
    # The Docker-build-step promise: afterwards, with installs disabled and no
    # index at all, every allow-listed import works.
    offline = dict(env, LAZY_IMPORT_HOOK_DISABLE="1", PIP_FIND_LINKS="/nonexistent")
    code = "import lazy_import_hook; lazy_import_hook.install(); import toymod, othermod; print('ok')"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=offline, cwd=project, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert proc.stdout.strip() == "ok", proc.stderr
    assert cli(["prefetch", "toymod"], env, project).stdout.startswith("toymod: already present")


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_prefetching_again_with_a_new_entry_keeps_what_is_installed(
    installer: str, project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """The Docker step after an entry was added: the group install stages
    toymod again (uv with its compiled files, which no RECORD lists); the
    installed toymod must stay whole and in place."""
    (project / "pyproject.toml").write_text(ALLOWLIST.format(installer=installer))
    env = installer_env(wheelhouse, tmp_path)
    cli(["prefetch", "toymod"], env, project)
    package = project / "lazy-target" / "toymod"
    before = {p.name: p.stat().st_ino for p in package.iterdir() if p.is_file()}
    assert "__init__.py" in before
    out = cli(["prefetch"], env, project).stdout
    assert "othermod: installed" in out, out
    assert {p.name: p.stat().st_ino for p in package.iterdir() if p.is_file()} == before
    code = (
        "import lazy_import_hook\n"
        "lazy_import_hook.install()\n"
        "import toymod, othermod\n"
        "print(toymod.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=project, capture_output=True, text=True, check=False
    )
    assert proc.stdout.strip() == str(package / "__init__.py"), proc.stderr


def test_prefetch_failures_exit_non_zero_with_the_installers_message(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    (project / "pyproject.toml").write_text(
        ALLOWLIST.format(installer="pip") + 'brokenmod = "broken-dist==1.0"\n'
    )
    env = installer_env(wheelhouse, tmp_path)
    proc = cli(["prefetch", "brokenmod"], env, project, check=False)
    assert proc.returncode == 1
    assert "dependency-that-exists-nowhere" in proc.stderr
    unknown = cli(["prefetch", "numpy"], env, project, check=False)
    assert unknown.returncode == 2 and "not on the allowlist: numpy" in unknown.stderr


def test_status_shows_stale_entries_and_core_provided_ones(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    cli(["prefetch", "toymod"], env, project)
    (project / "pyproject.toml").write_text(
        ALLOWLIST.format(installer="pip").replace("toy-dist==1.0\"\nother", "toy-dist==2.0\"\nother")
        + 'packaging = "packaging>=20"\n'
    )
    report = states(env, project)
    assert report["toymod"] == "stale" and report["packaging"] == "core"


def test_prune_removes_only_what_nothing_needs(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    cli(["prefetch"], env, project)
    # othermod leaves the allowlist; toymod's dependency toy-dep must stay.
    (project / "pyproject.toml").write_text(
        ALLOWLIST.format(installer="pip").replace('othermod = "other-dist==1.0"\n', "")
    )
    dry = cli(["prune", "--dry-run"], env, project).stdout
    assert dry.splitlines() == ["would remove other_dist-1.0: no allowlist entry needs it"]
    target = project / "lazy-target"
    assert (target / "othermod").exists()
    assert cli(["prune"], env, project).stdout.startswith("removed other_dist-1.0")
    assert not (target / "othermod").exists()
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "toy_dep-2.0.dist-info", "toy_dist-1.0.dist-info",
    ]  # fmt: skip
    assert (target / "toydep" / "__init__.py").exists()
    assert cli(["prune"], env, project).stdout.strip() == "nothing to prune"


def test_prune_removes_copies_the_core_environment_shadows(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    (project / "pyproject.toml").write_text(
        ALLOWLIST.format(installer="pip") + 'shadowmod = "shadow-dist==1.0"\n'
    )
    env = installer_env(wheelhouse, tmp_path)
    target = project / "lazy-target"
    target.mkdir()
    _target.write_stamp(str(target))
    # A stray copy of a core distribution in the target (e.g. a dependency).
    dist = target / "packaging-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: packaging\nVersion: 1.0\n")
    (dist / "RECORD").write_text("packaging-1.0.dist-info/METADATA,,\n")
    out = cli(["prune", "--dry-run"], env, project).stdout
    assert "would remove packaging-1.0: shadowed by the core environment's packaging" in out


def test_run_passes_arguments_and_exit_codes_through(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    script = project / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import toymod
            print("args", sys.argv[1:], toymod.VERSION, __name__)
            sys.exit(int(sys.argv[1]))
            """
        )
    )
    proc = cli(["run", str(script), "7", "--flag"], env, project, check=False)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.strip() == "args ['7', '--flag'] 1.0 __main__"
    (project / "jobmod.py").write_text("import sys, othermod\nprint(sys.argv, othermod.VERSION)\n")
    by_hand = subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_module('jobmod', alter_sys=True)"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "othermod" in by_hand.stderr  # without the hook, the import fails...
    proc = cli(["run", "-m", "jobmod", "a", "-b"], env, project)
    argv, version = proc.stdout.strip().rsplit(" ", 1)
    assert version == "1.0"  # ...with it, it installs, and argv is what python -m gives
    assert argv == str([str(project / "jobmod.py"), "a", "-b"])


@pytest.mark.parametrize("kind", ["script", "folder", "zip"])
def test_run_puts_on_sys_path_what_python_puts(project: Path, tmp_path: Path, kind: str) -> None:
    import zipfile

    main = "import sys, json\nprint(json.dumps(sys.path[:2]))\n"
    if kind == "script":
        path = project / "show.py"
        path.write_text(main)
    elif kind == "folder":
        path = project / "showdir"
        path.mkdir()
        (path / "__main__.py").write_text(main)
    else:
        path = project / "show.zip"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("__main__.py", main)
    env = installer_env(tmp_path / "no-wheelhouse", tmp_path)
    by_python = subprocess.run(
        [sys.executable, path.name], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    ours = cli(["run", path.name], env, project)
    assert json.loads(ours.stdout) == json.loads(by_python.stdout)
    assert json.loads(ours.stdout)[0] == str(path if kind != "script" else project)


def test_every_verb_has_help(project: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    for verb in ("status", "prefetch", "prune", "run"):
        assert "usage: lazy-import-hook" in cli([verb, "--help"], env, project).stdout
    assert cli(["--version"], env, project).stdout == f"lazy-import-hook {lazy_import_hook.__version__}\n"


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "lazy-import-hook"
    assert script.exists()
    assert "usage: lazy-import-hook" in subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=True
    ).stdout


def test_a_bad_configuration_is_reported_with_exit_status_2(project: Path) -> None:
    (project / "pyproject.toml").write_text(ALLOWLIST.format(installer="conda"))
    proc = cli(["status"], dict(os.environ), project, check=False)
    assert proc.returncode == 2 and "installer 'conda'" in proc.stderr


def test_prune_keeps_files_a_remaining_distribution_also_owns(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    from _fakes import write_dist

    env = installer_env(wheelhouse, tmp_path)
    cli(["prefetch", "othermod"], env, project)
    target = project / "lazy-target"
    # Two builds of one module (like opencv-python and -headless): one leaves.
    write_dist(str(target), "cvx-full", "1.0", {"cvx/__init__.py": "X = 1\n"})
    write_dist(str(target), "cvx-headless", "1.0", {"cvx/__init__.py": "X = 1\n"})
    (project / "pyproject.toml").write_text(
        ALLOWLIST.format(installer="pip") + 'cvx = "cvx-headless==1.0"\n'
    )
    out = cli(["prune"], env, project).stdout
    assert "removed cvx_full-1.0" in out and "cvx_headless" not in out
    assert (target / "cvx" / "__init__.py").exists()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_pruning_leaves_no_compiled_files_that_would_import_as_a_namespace_package(
    project: Path, wheelhouse: Path, tmp_path: Path, installer: str
) -> None:
    """uv lists none of the .pyc files it compiles: a package folder left
    with only its __pycache__ imports as an empty namespace package, and an
    application's `except ImportError` fallback no longer runs."""
    (project / "pyproject.toml").write_text(ALLOWLIST.format(installer=installer))
    env = installer_env(wheelhouse, tmp_path)
    cli(["prefetch", "othermod"], env, project)
    target = project / "lazy-target"
    assert list((target / "othermod" / "__pycache__").glob("*.pyc"))
    (project / "pyproject.toml").write_text(
        ALLOWLIST.format(installer=installer).replace('othermod = "other-dist==1.0"\n', "")
    )
    assert cli(["prune"], env, project).stdout.startswith("removed other_dist-1.0")
    assert not (target / "othermod").exists()
    probe = f"import sys\nsys.path.append({str(target)!r})\n"
    probe += "try:\n import othermod\nexcept ImportError:\n print('gone')"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert proc.stdout == "gone\n", proc.stderr


def test_pruning_never_deletes_through_a_symbolic_link(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """A package folder an operator linked to a folder elsewhere (a checkout):
    prune removes the link, never what the link points to."""
    env = installer_env(wheelhouse, tmp_path)
    cli(["prefetch", "othermod"], env, project)
    target = project / "lazy-target"
    elsewhere = tmp_path / "checkout"
    (target / "othermod").rename(elsewhere)
    (elsewhere / "notes.txt").write_text("mine\n")
    (target / "othermod").symlink_to(elsewhere, target_is_directory=True)
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    (project / "pyproject.toml").write_text(
        ALLOWLIST.format(installer="pip").replace('othermod = "other-dist==1.0"\n', "")
    )
    assert cli(["prune"], env, project).stdout.startswith("removed other_dist-1.0")
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before
    assert not os.path.lexists(target / "othermod")


def test_run_m_of_an_allow_listed_module_installs_it_and_its_provenance_follows(
    project: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """`run -m` installs through the loader without running its exec_module:
    what the install left for later (uv's provenance) still starts."""
    (project / "pyproject.toml").write_text(ALLOWLIST.format(installer="uv"))
    env = installer_env(wheelhouse, tmp_path)
    proc = cli(["run", "-m", "othermod"], env, project, check=False)
    assert proc.returncode != 0
    assert "No module named othermod.__main__; 'othermod' is a package and cannot be run" in proc.stderr
    audit = project / "lazy-target" / ".lazy-import-hook" / "audit.jsonl"
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    follow = [e for e in lines if e.get("event") == "provenance"]
    assert [(e["import_name"], e["status"]) for e in follow] == [("othermod", 0)]



# -- an allowlist in code: the plan recorded in the target, the CLI's own environment -----------
# In this process, with fake installers: the application is install() here, the
# operator's shell is the environment main() runs in.

TOY = {"toymod/__init__.py": "VERSION = '1.0'\n"}
CODE_ALLOWLIST = {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}


def main_in_process(args: list[str]) -> tuple[int, str, str]:
    from lazy_import_hook._cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def run_suggested(command: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run a command an error message suggests, as a shell would: leading
    NAME=value words set the environment; `lazy-import-hook` is this package's."""
    words = shlex.split(command)
    while "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        monkeypatch.setenv(name, value)
    assert words[0] == "lazy-import-hook", command
    return main_in_process(words[1:])


def record_plan(target: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **settings: Any) -> None:
    """An application run with `env` that calls install() (which records its
    plan in the target); the operator's shell has none of `env` afterwards."""
    with monkeypatch.context() as app:
        for name, value in env.items():
            app.setenv(name, value)
        lazy_import_hook.install(CODE_ALLOWLIST, target=target, **settings)
    lazy_import_hook.uninstall()


def test_prefetch_of_a_recorded_plan_follows_the_clis_kill_switch_not_the_applications(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Docker pattern: the application runs with installs disabled (and
    records its plan so); the operator prefetches from a shell without the
    switch. With the switch in the operator's own shell, prefetch refuses."""
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    record_plan(target, monkeypatch, {"LAZY_IMPORT_HOOK_DISABLE": "1"}, installer="pip")
    code, out, err = main_in_process(["--target", str(target), "prefetch", "toymod"])
    assert code == 0, err
    assert "toymod: installed (toy-dist==1.0)" in out and (target / "toymod").is_dir()
    monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "1")
    code, _, err = main_in_process(["--target", str(target), "prefetch", "othermod"])
    assert code == 1 and "installs are disabled by LAZY_IMPORT_HOOK_DISABLE=1" in err
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_prefetch_of_a_plan_recorded_with_enabled_false_installs(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """install(enabled=False) is the application's switch for its imports;
    the operator's prefetch is what its error message tells to run."""
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    record_plan(target, monkeypatch, {}, installer="pip", enabled=False)
    text = main_in_process(["--target", str(target), "status"])[1]
    assert "installs:   enabled" in text and "DISABLED by install(enabled=False)" in text
    code, _, err = main_in_process(["--target", str(target), "prefetch", "toymod"])
    assert code == 0, err
    assert (target / "toymod").is_dir()


def test_a_recorded_plan_takes_its_settings_from_the_clis_environment_as_install_would(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the application gave install() stays (it wins over the environment
    there too); what it read from its own environment does not: the CLI's
    environment decides, and the command line over everything."""
    from lazy_import_hook._cli import _load, _parse

    record_plan(target, monkeypatch, {"LAZY_IMPORT_HOOK_INSTALLER": "uv", "LAZY_IMPORT_HOOK_TIMEOUT": "5",
                                      "LAZY_IMPORT_HOOK_VERBOSE": "1"}, retry_after=7.0)  # fmt: skip

    def settings(*args: str) -> tuple[dict[str, object], dict[str, str]]:
        with redirect_stderr(io.StringIO()):
            plan = _load(_parse(["--target", str(target), *args, "status"]))[0]
        return plan.settings.values(), plan.sources

    values, sources = settings()
    assert (values["installer"], values["timeout"], values["verbose"]) == ("auto", 900.0, False)
    assert values["retry_after"] == 7.0 and sources["retry_after"] == "install(retry_after=7.0)"
    assert values["target"] == str(target)
    monkeypatch.setenv("LAZY_IMPORT_HOOK_INSTALLER", "pip")
    monkeypatch.setenv("LAZY_IMPORT_HOOK_TIMEOUT", "30")
    values, sources = settings()
    assert (values["installer"], values["timeout"]) == ("pip", 30.0)
    assert sources["installer"] == "LAZY_IMPORT_HOOK_INSTALLER=pip"
    assert settings("--installer", "uv")[0]["installer"] == "uv"
    # An install() argument wins over the environment, as in the application.
    record_plan(target, monkeypatch, {}, installer="uv")
    assert settings()[0]["installer"] == "uv"
    assert settings("--installer", "pip")[0]["installer"] == "pip"


def write_bundle_lock(bundle: Path, version: str) -> None:
    """A bundle's lock for CODE_ALLOWLIST, each entry's closure its one dist at `version`."""
    from lazy_import_hook._lockfile import EntryLock, Locked, LockFile, this_environment, write

    entries = {}
    for name, requirement in CODE_ALLOWLIST.items():
        dist = requirement.split("==")[0]
        wheel = f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
        locked = Locked(dist, version, filename=wheel, sha256="ab" * 32)
        entries[name] = EntryLock(name, [requirement], [], [locked])
    write(str(bundle / "pylock.lazy-import-hook.toml"), LockFile(entries, environment=this_environment()))


def test_a_bundle_made_again_where_the_recorded_plan_points_counts_with_its_new_lock(
    target: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The application recorded its plan with the bundle's closures; the
    operator makes the bundle again in the same folder: status and prefetch
    use the new lock, as the application's next start will, not the
    closures recorded before it."""
    from lazy_import_hook._cli import _load, _parse

    bundle = tmp_path / "bundle"
    bundle.mkdir(mode=0o755)
    write_bundle_lock(bundle, "1.0")
    record_plan(target, monkeypatch, {}, wheelhouse=str(bundle))
    write_bundle_lock(bundle, "1.1")

    def closure(*args: str) -> tuple[str, ...]:
        with redirect_stderr(io.StringIO()):
            return _load(_parse(["--target", str(target), *args]))[0].entries["toymod"].locked

    new = (f"toy-dist==1.1 sha256:{'ab' * 32} toy_dist-1.1-py3-none-any.whl",)
    assert closure("status") == new
    assert closure("prefetch", "--from", str(bundle), "toymod") == new


def test_a_recorded_plans_pyproject_value_returns_where_the_applications_variable_hid_it(
    target: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The record keeps each setting's winner only: where the application's
    own variable beat its pyproject, this shell (without the variable) gets
    the pyproject's value, as install() here would, not the default."""
    from lazy_import_hook._cli import _load, _parse

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.lazy-import-hook]\ninstaller = "pip"\nretry-after = 9\n'
        '[tool.lazy-import-hook.allowlist]\ntoymod = "toy-dist==1.0"\n'
    )
    with monkeypatch.context() as app:
        app.setenv("LAZY_IMPORT_HOOK_INSTALLER", "uv")
        app.setenv("LAZY_IMPORT_HOOK_RETRY_AFTER", "3")
        lazy_import_hook.install(pyproject=pyproject, target=target)
    lazy_import_hook.uninstall()
    with redirect_stderr(io.StringIO()):
        plan = _load(_parse(["--target", str(target), "status"]))[0]
    values = plan.settings.values()
    assert (values["installer"], values["retry_after"]) == ("pip", 9.0)
    assert plan.sources["installer"] == f"{pyproject} [tool.lazy-import-hook] installer"
    # Someone else could rewrite it now (min-release-age = "0", say): refused,
    # as the application's next start refuses it, never read.
    pyproject.chmod(0o666)
    code, _, err = main_in_process(["--target", str(target), "status"])
    assert code == 2 and f"pyproject file {pyproject}: the file is writable by every user" in err


def test_status_of_a_recorded_plan_shows_the_clis_installer(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_plan(target, monkeypatch, {"LAZY_IMPORT_HOOK_INSTALLER": "uv"})
    monkeypatch.setenv("LAZY_IMPORT_HOOK_INSTALLER", "pip")
    text = main_in_process(["--target", str(target), "status"])[1]
    assert "installer:  pip (setting: pip)" in text


# -- the commands error messages suggest, run -------------------------------------------------


def test_the_command_a_disabled_import_suggests_installs_it(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disabled by the variable, in a shell that still has it (the
    container's environment): the suggested command must still work."""
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "1")
    lazy_import_hook.install(CODE_ALLOWLIST, target=target, installer="pip")
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value.reason == "disabled" and info.value.command is not None
    assert str(info.value).splitlines()[-1] == f"To install it by hand: {info.value.command}"
    code, out, err = run_suggested(info.value.command, monkeypatch)
    assert code == 0, err
    assert "toymod: installed" in out and (target / "toymod").is_dir()


def test_the_command_an_import_disabled_in_code_suggests_installs_it(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install(CODE_ALLOWLIST, target=target, installer="pip", enabled=False)
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value.reason == "disabled" and info.value.command is not None
    code, _, err = run_suggested(info.value.command, monkeypatch)
    assert code == 0, err
    assert (target / "toymod").is_dir()


def test_a_refused_target_says_how_to_choose_another_and_suggests_no_prefetch(
    fp: Any, tmp_path: Path
) -> None:
    """Nothing can install into a refused folder (and it holds no recorded
    plan): the advice is the setting that fixes it."""
    refused = tmp_path / "shared"
    refused.mkdir()
    os.chmod(refused, 0o777)
    with pytest.warns(UserWarning):
        lazy_import_hook.install(CODE_ALLOWLIST, target=str(refused), installer="pip")
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    message = str(info.value)
    assert info.value.reason == "target-refused" and info.value.command is None
    assert "prefetch" not in message and "To install it by hand" not in message
    last = message.splitlines()[-1]
    assert f"install(target={str(refused)!r})" in last and "LAZY_IMPORT_HOOK_TARGET" in last
    assert fp.call_count([*PIP, fp.any()]) == 0


@pytest.mark.parametrize("how", ["timeout", "sdist-refused", "installer-failed"])
def test_a_failure_within_retry_after_keeps_its_reason_and_its_command_works(
    how: str, fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process within `retry-after`: the same kind of error as the
    failure it recorded, one line of advice, and that advice works."""
    failing: dict[str, dict[str, Any]] = {
        "timeout": {"wait": 1.0},
        "sdist-refused": {"stdout": "ERROR: building from source is disabled\n", "returncode": 1},
        "installer-failed": {"stdout": "ERROR: index unreachable\n", "returncode": 1},
    }
    fp.register([*PIP, fp.any()], **failing[how])
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    settings: dict[str, Any] = {"target": target, "installer": "pip", "timeout": 0.5}
    lazy_import_hook.install(CODE_ALLOWLIST, **settings)
    with pytest.raises(LazyInstallError) as first:
        import toymod
    assert first.value.reason == how
    lazy_import_hook.install(CODE_ALLOWLIST, **settings)  # a new finder: another process
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    message = str(info.value)
    assert (info.value.reason, type(info.value)) == (how, type(first.value))
    assert "not retrying until 60 s have passed" in message
    command = f"lazy-import-hook --target {target} prefetch toymod"
    assert info.value.command == command and f"or run: {command}" in message.splitlines()[0]
    assert message.count("To install it by hand") == 1
    assert message.splitlines()[-1] == f"To install it by hand: {command}"
    assert fp.call_count([*PIP, fp.any()]) == 1
    code, out, err = run_suggested(info.value.command, monkeypatch)
    assert code == 0, err
    assert "toymod: installed" in out


def a_dist(target: Path, name: str = "stray_dist", version: str = "1.0") -> Path:
    """A distribution no entry needs: what prune would remove."""
    info = target / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    return info


def contents(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("dry_run", [True, False])
def test_prune_leaves_another_pythons_store_alone(
    target: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    """After a Python upgrade, "what would prune do?" must not wipe the target
    (the ABI wipe is for the application's next start, or prefetch)."""
    record_plan(target, monkeypatch, {}, installer="pip")
    a_dist(target)
    (target / ".python-abi").write_text("cpython-38-linux-x86_64-64bit\n")  # no Python this suite runs on
    before = contents(target)
    code, out, err = main_in_process(["--target", str(target), "prune", *(["--dry-run"] if dry_run else [])])
    assert code == 1 and out == ""
    assert "was built for another Python (cpython-38-linux-x86_64-64bit)" in err
    assert "`lazy-import-hook prefetch`" in err and "nothing was removed" in err
    assert contents(target) == before


def test_prune_refuses_a_folder_the_hook_never_installed_into(tmp_path: Path) -> None:
    """A target setting that names someone's site-packages by mistake."""
    site = tmp_path / "site-packages"
    a_dist(site)
    pyproject = ALLOWLIST.format(installer="pip").replace("lazy-target", str(site))
    (tmp_path / "pyproject.toml").write_text(pyproject)
    before = contents(site)
    code, _, err = main_in_process(["--pyproject", str(tmp_path / "pyproject.toml"), "prune"])
    assert code == 1 and f"{site} has no .python-abi stamp" in err and "nothing was removed" in err
    assert contents(site) == before


def test_prune_refuses_a_target_others_can_write(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record_plan(target, monkeypatch, {}, installer="pip")
    a_dist(target)
    target.chmod(0o777)
    before = contents(target)
    for args in ([], ["--dry-run"]):
        code, _, err = main_in_process(["--target", str(target), "prune", *args])
        assert code == 1 and "writable by every user" in err and "nothing was removed" in err
    assert contents(target) == before


def test_a_dry_run_prune_only_reads(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It takes no lock (so it works on a read-only target) and changes
    nothing; a prune that cannot take the lock is one line, not a traceback."""
    from lazy_import_hook import _lock

    record_plan(target, monkeypatch, {}, installer="pip")
    a_dist(target)

    def no_lock(folder: str) -> None:
        raise PermissionError(13, "Permission denied", os.path.join(folder, _target.LOCK))

    monkeypatch.setattr(_lock, "lock", no_lock)
    code, out, _ = main_in_process(["--target", str(target), "prune", "--dry-run"])
    assert code == 0 and "would remove stray_dist-1.0: no allowlist entry needs it" in out
    code, out, err = main_in_process(["--target", str(target), "prune"])
    assert code == 1 and err.splitlines()[-1].startswith("lazy-import-hook: prune: [Errno 13] Permission")
    assert (target / "stray_dist-1.0.dist-info").is_dir()


def test_a_copied_target_is_acted_on_where_it_was_found(
    target: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A target copied, moved or mounted elsewhere keeps the record of where
    it was: the command acts on the folder it was named, never the other."""
    import shutil

    record_plan(target, monkeypatch, {}, installer="pip")
    a_dist(target)
    copy = tmp_path / "copy"
    shutil.copytree(target, copy, symlinks=True)
    code, out, err = main_in_process(["--target", str(copy), "prune"])
    assert code == 0 and "removed stray_dist-1.0" in out, err
    assert f"the plan was recorded for the target {target}; acting on {copy}, where it was found" in err
    assert not (copy / "stray_dist-1.0.dist-info").exists()
    assert (target / "stray_dist-1.0.dist-info").is_dir()
    monkeypatch.setenv("LAZY_IMPORT_HOOK_TARGET", str(copy))
    code, out, _ = main_in_process(["status", "--json"])
    assert code == 0 and json.loads(out)["target"] == str(copy)


def test_a_target_that_is_a_file_is_named_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    for args in (["--target", str(afile), "prune"], ["--target", str(afile), "status"]):
        code, _, err = main_in_process(args)
        assert code == 2 and f"the target {afile} (--target {afile}) is a file, not a folder" in err
    monkeypatch.setenv("LAZY_IMPORT_HOOK_TARGET", str(afile))
    code, _, err = main_in_process(["status"])
    assert code == 2 and f"the target {afile} (LAZY_IMPORT_HOOK_TARGET={afile}) is a file" in err
    monkeypatch.delenv("LAZY_IMPORT_HOOK_TARGET")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(ALLOWLIST.format(installer="pip").replace("lazy-target", "afile"))
    for verb in ("prune", "status"):
        code, _, err = main_in_process(["--pyproject", str(pyproject), verb])
        assert code == 2 and f"the target {afile} ({pyproject} [tool.lazy-import-hook] target)" in err
        assert "is a file, not a folder" in err


def test_records_the_command_must_not_trust_are_named_not_missed(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as another user than the application's (root, say): its plans are
    there, but not to be trusted; the error says so and whose user to be."""
    record_plan(target, monkeypatch, {}, installer="pip")
    (record,) = (target / ".lazy-import-hook" / "plans").glob("*.plan")
    record.chmod(0o666)
    code, _, err = main_in_process(["--target", str(target), "status"])
    assert code == 2 and "holds recorded plans this user cannot read or must not trust" in err
    assert f"{record.name}: writable by every user" in err and "sudo -u" in err
    # A FIFO planted as a record would hang a plain open(): it is named instead.
    record.unlink()
    os.mkfifo(record)
    code, _, err = main_in_process(["--target", str(target), "status"])
    assert code == 2 and f"{record.name}: not a regular file" in err
    # Nor does one in place of a record's .live file, asked whether it is in use.
    live = record.with_suffix(".live")
    live.unlink(missing_ok=True)
    os.mkfifo(live)
    probe = f"from lazy_import_hook._records import _in_use; print(_in_use('x', {str(live)!r}))"
    asked = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30,
                           check=False)  # fmt: skip
    assert asked.returncode == 0 and asked.stdout.strip() in ("True", "False"), asked.stderr


def test_prune_runs_from_inside_the_target(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m` puts the current folder first on the command's own
    sys.path; that is not the application's, so the target is no less safe."""
    from conftest import ROOT

    record_plan(target, monkeypatch, {}, installer="pip")
    a_dist(target)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = cli(["--target", ".", "prune", "--dry-run"], env, target)
    assert "would remove stray_dist-1.0: no allowlist entry needs it" in proc.stdout


def test_a_refused_target_named_on_the_command_line_gets_command_line_advice(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_plan(target, monkeypatch, {}, installer="pip")
    target.chmod(0o777)
    code, _, err = main_in_process(["--target", str(target), "prefetch", "toymod"])
    assert code == 1 and f"The target comes from --target {target}" in err
    assert "with another --target, or run the command as the user the application runs as" in err
