"""The trust boundary: nothing another user can write steers the installer,
chooses the allowlist, joins sys.path or runs at startup; a wipe needs
evidence and takes only what the hook installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from _fakes import PIP, installs, write_dist
from _offline import installer_env
from _wheelhouse import build_wheel
from test_real_installers import hook

import lazy_import_hook
from conftest import ROOT, Runner
from lazy_import_hook import ConfigError, LazyInstallError

TOY = {"toymod/__init__.py": "VERSION = '1.0'\n"}
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="creating another user's file needs root"
)

# -- what steers the installer ---------------------------------------------------


def test_a_uv_toml_planted_above_the_target_is_not_read(
    wheelhouse: Path, tmp_path: Path, run_python: Runner
) -> None:
    shared = tmp_path / "shared"  # writable by every user, sticky, as /tmp is
    shared.mkdir()
    os.chmod(shared, 0o1777)
    target = shared / "app-target"
    evil = tmp_path / "evil-wheels"
    build_wheel(evil, "evil-dist", "1.0", {"evilmod/__init__.py": "PLANTED = True\n"})
    (shared / "uv.toml").write_text(f'[pip]\nfind-links = ["{evil}"]\n')
    env = installer_env(wheelhouse, tmp_path)
    del env["UV_NO_CONFIG"]  # as an application's environment would be
    code = hook(target, "uv", {"evilmod": "evil-dist==1.0"}) + (
        "try:\n    import evilmod\n    print('planted code imported')\n"
        "except ImportError as e:\n    print(e.reason)\n"
    )
    assert run_python(code, env).stdout.strip() == "installer-failed"
    assert not (target / "evilmod").exists()


def test_a_uv_module_in_the_working_directory_never_chooses_the_installer(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    # An environment without uv beside its interpreter, so the hook has to look elsewhere.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    work = tmp_path / "untrusted-checkout"
    work.mkdir()
    marker = tmp_path / "planted-uv-imported"
    (work / "uv.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef find_uv_bin():\n    return '/bin/false'\n"
    )
    env = installer_env(wheelhouse, tmp_path)
    site = next(Path(sys.prefix).glob("lib/python*/site-packages"), None) or Path(sys.prefix)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(site)])  # packaging, filelock, pip
    code = hook(target, "auto", {"othermod": "other-dist==1.0"})
    code += "import othermod\nprint(othermod.VERSION)\n"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], env=env, cwd=work,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert not marker.exists(), "a module named uv in the working directory was imported"
    assert result.stdout.strip() == "1.0", result.stderr


def test_an_operators_uv_config_file_variable_is_not_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from lazy_import_hook._installer import base_environment
    from lazy_import_hook._pipconf import PipConfig
    from lazy_import_hook._uv import Uv

    monkeypatch.setenv("UV_CONFIG_FILE", "/somewhere/uv.toml")  # --no-config still reads it
    env, _ = base_environment()
    assert "UV_CONFIG_FILE" not in env and env["LAZY_IMPORT_HOOK_INSIDE_INSTALLER"] == "1"
    launch = Uv("uv").launch(PipConfig({}, {}))
    assert "UV_CONFIG_FILE" not in launch.env and "UV_CONFIG_FILE" in launch.dropped  # named in the audit


# -- which pyproject gives orders ------------------------------------------------

TABLE = '[tool.lazy-import-hook]\ntarget = "{target}"\n[tool.lazy-import-hook.allowlist]\n{name} = "{req}"\n'


def planted_below_a_trusted_one(tmp_path: Path) -> tuple[Path, Path]:
    """A trusted pyproject in `app`, and below it a folder someone else could
    use, holding their own pyproject."""
    app = tmp_path / "app"
    work = app / "work"
    work.mkdir(parents=True)
    mine = TABLE.format(target=tmp_path / "mine", name="toymod", req="toy-dist==1.0")
    (app / "pyproject.toml").write_text(mine)
    theirs = TABLE.format(target=tmp_path / "theirs", name="evilmod", req="evil==1")
    (work / "pyproject.toml").write_text(theirs)
    return app, work


@pytest.mark.parametrize("how", ["world-writable file", "world-writable folder", "another owner"])
def test_a_pyproject_others_could_write_is_ignored_with_a_warning(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "another owner" and (not hasattr(os, "geteuid") or os.geteuid() != 0):
        pytest.skip("creating another user's file needs root")
    _, work = planted_below_a_trusted_one(tmp_path)
    if how == "world-writable file":
        os.chmod(work / "pyproject.toml", 0o666)
    elif how == "world-writable folder":
        os.chmod(work, 0o777)
    else:
        os.chown(work / "pyproject.toml", 65534, 65534)  # nobody
    monkeypatch.chdir(work)
    with pytest.warns(UserWarning, match="ignoring .*work/pyproject.toml"):
        finder = lazy_import_hook.install()
    assert finder.target == str(tmp_path / "mine") and "evilmod" not in finder.plan.entries
    with pytest.raises(ConfigError, match="could choose what installs and where"):
        lazy_import_hook.install(pyproject=work / "pyproject.toml")


def test_the_command_line_ignores_an_untrusted_pyproject_too(tmp_path: Path) -> None:
    app, work = planted_below_a_trusted_one(tmp_path)
    (app / "pyproject.toml").unlink()
    os.chmod(work / "pyproject.toml", 0o666)
    env = {**os.environ, "LAZY_IMPORT_HOOK_CACHE_DIR": str(tmp_path / "cache")}
    for verb in (["status"], ["run", "-m", "json.tool", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-m", "lazy_import_hook", *verb], cwd=work, env=env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 2, (verb, proc.stdout, proc.stderr)
        assert "ignoring" in proc.stderr and "no pyproject.toml with a [tool.lazy-import-hook]" in proc.stderr


def test_a_mention_in_a_comment_does_not_stop_the_walk_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, work = planted_below_a_trusted_one(tmp_path)
    comment = "# settings live in ../pyproject.toml, [tool.lazy-import-hook]\n[tool.x]\n"
    (work / "pyproject.toml").write_text(comment)
    monkeypatch.chdir(work)
    assert lazy_import_hook.install().target == str(tmp_path / "mine")


# -- what joins sys.path or runs -------------------------------------------------


def test_the_user_site_packages_is_refused_as_a_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import site

    user_site = tmp_path / "user-site"
    user_site.mkdir()
    monkeypatch.setattr(site, "getusersitepackages", lambda: str(user_site))
    with pytest.warns(UserWarning, match="library folder"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=user_site)
    assert str(user_site) not in sys.path


def test_a_folder_already_on_sys_path_is_refused_as_a_target(tmp_path: Path) -> None:
    folder = tmp_path / "on-path"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    with pytest.warns(UserWarning, match="already on sys.path"):
        finder = lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=folder)
    assert finder.plan.unsafe
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value.reason == "target-refused"


def test_a_pth_path_to_a_foreign_or_unsafe_folder_never_joins_sys_path(target: Path, tmp_path: Path) -> None:
    everyone = tmp_path / "ww"
    everyone.mkdir()
    os.chmod(everyone, 0o777)
    (everyone / "theirmod.py").write_text("PLANTED = True\n")
    write_dist(str(target), "pth-dist", "1.0", {"x.pth": "../ww\ninside\n", "inside/insidemod.py": ""})
    (target / "inside").mkdir(exist_ok=True)
    with pytest.warns(UserWarning, match=r"ignoring the \.pth path line '\.\./ww'"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    assert str(everyone) not in sys.path and str(target / "inside") in sys.path
    with pytest.raises(ModuleNotFoundError):
        import theirmod  # type: ignore[import-not-found]  # noqa: F401


def test_customize_modules_in_the_target_never_run_in_a_child(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    run_python(hook(target, "pip", {"othermod": "other-dist==1.0"}) + "import othermod\n", env)
    ran = tmp_path / "ran"
    for name in ("sitecustomize", "usercustomize"):  # shipped by some package into the target
        (target / f"{name}.py").write_text(f"open({str(ran)!r} + '-{name}', 'w').close()\n")
    code = hook(target, "pip", {"othermod": "other-dist==1.0"}) + (
        "import subprocess\n"
        "child = 'import sys, othermod; print(othermod.VERSION)'\n"
        "r = subprocess.run([sys.executable, '-c', child], env=lazy_import_hook.child_env(),"
        " capture_output=True, text=True)\n"
        "print(json.dumps([r.returncode, r.stdout.strip(), r.stderr]))\n"
    )
    env.pop("PYTHONNOUSERSITE", None)
    code_, out, err = json.loads(run_python(code, env).stdout)
    assert (code_, out) == (0, "1.0"), err
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == []


# -- the ABI wipe needs evidence -------------------------------------------------


@pytest.mark.parametrize("stamp", ["", "cpyth", "\x00\x01garbage"])
def test_a_damaged_stamp_is_no_reason_to_wipe(stamp: str, target: Path) -> None:
    write_dist(str(target), "toy-dist", "1.0", TOY)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    (target / ".python-abi").write_text(stamp)
    with pytest.warns(UserWarning, match="stamp of .* was damaged"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    import toymod

    assert toymod.VERSION == "1.0"


def test_with_installs_disabled_another_pythons_store_is_kept_and_only_its_sources_served(
    target: Path,
) -> None:
    from importlib.machinery import EXTENSION_SUFFIXES

    write_dist(str(target), "toy-dist", "1.0", TOY)
    compiled = f"fastmod{EXTENSION_SUFFIXES[0]}"
    write_dist(str(target), "fast-dist", "1.0", {compiled: "not a real extension module"})
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    (target / ".python-abi").write_text("cpython-27-linux-x86_64-64bit\n")
    with pytest.warns(RuntimeWarning, match="installs are disabled, so it is not wiped"):
        lazy_import_hook.install(
            {"toymod": "toy-dist==1.0", "fastmod": "fast-dist==1.0"}, target=target, enabled=False
        )
    assert (target / compiled).exists() and (target / ".python-abi").read_text().startswith("cpython-27")
    import toymod

    assert toymod.VERSION == "1.0"
    with pytest.raises(LazyInstallError) as info:
        import fastmod  # type: ignore[import-not-found]  # noqa: F401  (built for another Python)
    assert info.value.reason == "disabled"


# -- what prune and upgrades may delete ------------------------------------------

HOOK_FILES = [".python-abi", ".lazy-import-hook.lock", ".lazy-import-hook/audit.jsonl"]


def a_record_claiming_the_hooks_files(target: Path, dist: str, version: str) -> None:
    write_dist(str(target), dist, version, {f"{dist.replace('-', '_')}_mod.py": ""})
    record = next(target.glob(f"{dist.replace('-', '_')}-{version}.dist-info")) / "RECORD"
    record.write_text(record.read_text() + "".join(f"{path},,\n" for path in HOOK_FILES))


def test_prune_never_deletes_the_hooks_own_files(target: Path, tmp_path: Path) -> None:
    from lazy_import_hook import _config, _prune, _settings

    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    (target / ".lazy-import-hook" / "audit.jsonl").write_text("{}\n")
    a_record_claiming_the_hooks_files(target, "greedy-dist", "1.0")
    plan = _config.resolve(_settings.gather({"toymod": "toy-dist==1.0"}, None, {"target": str(target)}))
    removed = _prune.prune(plan, dry_run=False).removals
    assert [info for info, _ in removed] == ["greedy_dist-1.0.dist-info"]
    assert all((target / path).exists() for path in HOOK_FILES)


def test_an_upgrade_never_deletes_the_hooks_own_files(fp: Any, target: Path) -> None:
    lazy_import_hook.install({"greedy_dist_mod": "greedy-dist==2.0"}, target=target, installer="pip")
    (target / ".lazy-import-hook" / "audit.jsonl").write_text("{}\n")
    a_record_claiming_the_hooks_files(target, "greedy-dist", "1.0")
    fp.register([*PIP, fp.any()], callback=installs("greedy-dist", "2.0", {"greedy_dist_mod.py": "V = 2\n"}))
    lazy_import_hook.install({"greedy_dist_mod": "greedy-dist==2.0"}, target=target, installer="pip")
    import greedy_dist_mod  # type: ignore[import-not-found]

    assert greedy_dist_mod.V == 2
    assert all((target / path).exists() for path in HOOK_FILES)


# -- failure records -------------------------------------------------------------


@pytest.mark.parametrize("record", ["from the future", "cut mid-character"])
def test_a_strange_failure_record_never_blocks_an_install(record: str, fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    failed = target / ".lazy-import-hook" / "failed"
    failed.mkdir()
    path = failed / "toymod"
    if record == "from the future":  # clock skew, NFS
        path.write_text("toy-dist==1.0\nit failed")
        day = 86400
        os.utime(path, (os.stat(path).st_atime + day, os.stat(path).st_mtime + day))
    else:
        path.write_bytes(b"toy-dist==1.0\nit failed \xe2\x82")
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    import toymod

    assert toymod.VERSION == "1.0"


# -- smaller ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".tlz", ".tar.lz", ".tar.lzma", ".tar.zst"])
def test_archive_file_names_pip_and_uv_would_open_are_refused(suffix: str, target: Path) -> None:
    with pytest.raises(ConfigError, match="archive file name"):
        lazy_import_hook.install({"x": f"x===1{suffix}"}, target=target)


def test_status_reads_past_a_damaged_audit_line(target: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE.format(target=target, name="toymod", req="toy-dist==1.0"))
    lazy_import_hook.install(pyproject=tmp_path / "pyproject.toml")
    audit = target / ".lazy-import-hook" / "audit.jsonl"
    damaged = b'[1, 2]\n{"broken\n\xff\xfe\n"a string"\n'
    audit.write_bytes(damaged + json.dumps({"import_name": "x"}).encode() + b"\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lazy_import_hook", "--pyproject", str(tmp_path / "pyproject.toml"), "status"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "LAZY_IMPORT_HOOK_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "recent installs:" in proc.stdout


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_target_on_a_virtual_file_system_is_refused_with_what_to_do() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target="/proc/lazy-import-hook-target")
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value.reason == "target-refused" and info.value.command is None  # nothing can install there
    last = str(info.value).splitlines()[-1]
    assert last.startswith("The target comes from install(target='/proc/lazy-import-hook-target')")
    assert "point it at a folder" in last


@pytest.mark.parametrize("planted", ["log", "folder"])
def test_the_audit_log_is_never_written_through_a_planted_link(
    planted: str, target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another user who could once write the target links audit.jsonl (or
    the folder holding it) to a file of ours: no line goes there, no file is
    created where the link points."""
    from lazy_import_hook import _audit

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config").write_text("secret = 1\n")
    meta = target / ".lazy-import-hook"
    if planted == "log":
        meta.mkdir(parents=True)
        (meta / "audit.jsonl").symlink_to(victim / "config")
    else:
        target.mkdir(parents=True, exist_ok=True)
        meta.symlink_to(victim)
    _audit.record(str(target), event="verify", status=0)
    assert (victim / "config").read_text() == "secret = 1\n"
    assert sorted(p.name for p in victim.iterdir()) == ["config"]
    assert "could not write the audit log" in capsys.readouterr().err


def test_status_verify_writes_nothing_into_a_target_it_must_not_trust(target: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE.format(target=target, name="toymod", req="toy-dist==1.0"))
    lazy_import_hook.install(pyproject=tmp_path / "pyproject.toml")
    lazy_import_hook.uninstall()
    target.chmod(0o777)
    (target / ".lazy-import-hook.lock").unlink()  # as before anyone installed: none to take
    before = {str(p): p.stat().st_mtime_ns for p in target.rglob("*")}
    proc = subprocess.run(
        [sys.executable, "-m", "lazy_import_hook", "--pyproject", str(tmp_path / "pyproject.toml"), "status",
         "--verify"], capture_output=True, text=True, check=False,
        env={**os.environ, "LAZY_IMPORT_HOOK_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert "writable by every user" in proc.stdout + proc.stderr, proc.stderr
    assert "verify:" in proc.stdout
    assert {str(p): p.stat().st_mtime_ns for p in target.rglob("*")} == before  # no lock, no audit line
