"""Field-ready installs, with real pip and uv from the local wheelhouse: one
index configuration for both installers, ambient settings that must not
subvert the install, no silent waits, errors that say what to do, a command
line for every allowlist, bytecode at install, prefetch/prune/run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from _offline import installer_env
from _simple_index import serve_index
from _slow_index import serve_find_links
from test_real_installers import INSTALLERS, audit_lines, hook

import lazy_import_hook
from conftest import ROOT, Runner

REPORT = (
    "try:\n    import {name}\n    print(json.dumps(['ok', {name}.__file__]))\n"
    "except ImportError as e:\n    print(json.dumps([e.reason, str(e)]))\n"
)


def report(name: str) -> str:
    return REPORT.format(name=name)


def pip_only_env(wheelhouse: Path | str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The operator configured pip only: uv must follow it all the same."""
    env = installer_env(wheelhouse, tmp_path, offline=False, **extra)
    for name in ("UV_FIND_LINKS", "UV_NO_INDEX", "UV_OFFLINE"):
        env.pop(name, None)
    return env


# -- 1. one index configuration for both installers --------------------------------


@pytest.mark.parametrize("installer", INSTALLERS)
def test_pips_no_index_holds_for_both_installers(
    installer: str, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """isodate 0.7.2 exists on the public index: an installer that ignored
    PIP_NO_INDEX would install it from there."""
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    env = pip_only_env(empty, tmp_path)
    code = hook(target, installer, {"isodate": "isodate==0.7.2"}) + report("isodate")
    reason, _ = json.loads(run_python(code, env).stdout)
    assert reason == "installer-failed"
    assert not (target / "isodate").exists()
    assert (
        audit_lines(target)[-1]["index"]
        == "no index (PIP_NO_INDEX), find-links " + str(empty) + " (PIP_FIND_LINKS)"
    )


@pytest.mark.parametrize("installer", INSTALLERS)
def test_pips_extra_index_is_searched_as_pip_searches_it(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """The extra index has toy-dist 1.0 only; the pin, 2.0, is on the main
    index. pip takes the best match across both; so must uv (which asks an
    extra index first and, by default, stops at the first that has the
    project)."""
    first, extra = tmp_path / "first", tmp_path / "extra"
    for folder, version in ((first, "2.0"), (extra, "1.0")):
        folder.mkdir()
        for wheel in [*wheelhouse.glob(f"toy_dist-{version}-*.whl"), *wheelhouse.glob("toy_dep-*.whl")]:
            (folder / wheel.name).write_bytes(wheel.read_bytes())
    with serve_index(first) as first_url, serve_index(extra) as extra_url:
        indexes = {"PIP_INDEX_URL": first_url, "PIP_EXTRA_INDEX_URL": extra_url}
        env = pip_only_env(tmp_path / "none", tmp_path, **indexes)
        for name in ("PIP_NO_INDEX", "PIP_FIND_LINKS"):
            env.pop(name, None)
        code = hook(target, installer, {"toymod": "toy-dist==2.0"}) + report("toymod")
        ok, where = json.loads(run_python(code, env).stdout)
    assert ok == "ok" and Path(where).is_relative_to(target)


@pytest.mark.parametrize("installer", INSTALLERS)
def test_an_index_configured_only_in_pip_conf_reaches_both_installers(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nno-index = true\n[install]\nfind-links = {wheelhouse}\n")
    env = pip_only_env(wheelhouse, tmp_path, PIP_CONFIG_FILE=str(conf))
    for name in ("PIP_NO_INDEX", "PIP_FIND_LINKS"):
        del env[name]
    code = hook(target, installer, {"othermod": "other-dist==1.0"}) + report("othermod")
    ok, where = json.loads(run_python(code, env).stdout)
    assert ok == "ok" and Path(where).is_relative_to(target)
    index = audit_lines(target)[-1]["index"]
    assert index == f"no index ({conf} [global]), find-links {wheelhouse} ({conf} [install])"


@pytest.mark.parametrize(("value", "installs"), [("1", False), ("TRUE", False), ("0", True)])
def test_uvs_no_index_variable_holds_although_uv_pip_install_ignores_it(
    value: str, installs: bool, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """`uv pip install` reads UV_FIND_LINKS but not UV_NO_INDEX (it has no
    variable for --no-index), so an image that sets both, as many do, would
    still reach the index. The pin is only on the served index here."""
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    asked: list[str] = []
    with serve_index(wheelhouse, request_log=asked) as url:
        own = {"UV_DEFAULT_INDEX": url, "UV_FIND_LINKS": str(empty), "UV_NO_INDEX": value}
        env = {**pip_only_env(empty, tmp_path), **own}
        code = hook(target, "uv", {"othermod": "other-dist==1.0"}) + report("othermod")
        status = json.loads(run_python(code, env).stdout)[0]
    assert status == ("ok" if installs else "installer-failed")
    assert bool(asked) == installs
    line = audit_lines(target)[-1]
    sealed = "" if installs else f"; uv: no index, find-links only (UV_NO_INDEX={value})"
    assert line["index"] == f"UV_DEFAULT_INDEX={url}, UV_FIND_LINKS={empty} (uv's own settings){sealed}"
    dropped = line.get("not_passed_on", [])
    assert isinstance(dropped, list) and "UV_NO_INDEX" not in dropped


def test_uvs_no_index_variable_beside_pips_settings_keeps_pips_find_links(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """UV_NO_INDEX restricts the sources, it names none: pip's find-links
    still reach uv, pip's index (which has the pin too) is never asked."""
    asked: list[str] = []
    with serve_index(wheelhouse, request_log=asked) as url:
        env = {**pip_only_env(wheelhouse, tmp_path, PIP_INDEX_URL=url), "UV_NO_INDEX": "1"}
        del env["PIP_NO_INDEX"]
        code = hook(target, "uv", {"othermod": "other-dist==1.0"}) + report("othermod")
        ok, where = json.loads(run_python(code, env).stdout)
    assert ok == "ok" and Path(where).is_relative_to(target)
    assert asked == []
    assert audit_lines(target)[-1]["index"] == (
        f"{url} (PIP_INDEX_URL), find-links {wheelhouse} (PIP_FIND_LINKS); "
        "uv: no index, find-links only (UV_NO_INDEX=1)"
    )


class CommandLinesAtEachRequest(list):  # type: ignore[type-arg]
    """A find-links server's request log that, at each request (the installer
    waits for the answer meanwhile), reads every process's command line."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret.encode()
        self.installers_seen = 0
        self.holding_secret: list[str] = []

    def append(self, request: str) -> None:
        super().append(request)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                words = cmdline.read_bytes().split(b"\0")
            except OSError:  # ended meanwhile
                continue
            self.installers_seen += b"install" in words and b"--target" in words
            if any(self.secret in word for word in words):
                self.holding_secret.append(b" ".join(words).decode(errors="replace"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads command lines from /proc")


@needs_proc
def test_uv_finds_wheels_through_pips_find_links_url_with_a_password(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """The link goes to uv in its variable, off the command line every user
    can read; uv still reads it (and sends the password: the page is asked for)."""
    asked = CommandLinesAtEachRequest("s3cr3t")
    with serve_find_links(wheelhouse, request_log=asked) as url:
        link = url.replace("http://", "http://alice:s3cr3t@")
        env = pip_only_env(tmp_path / "nowhere", tmp_path, PIP_FIND_LINKS=link)
        code = hook(target, "uv", {"othermod": "other-dist==1.0"}) + report("othermod")
        ok, where = json.loads(run_python(code, env).stdout)
    assert ok == "ok" and Path(where).is_relative_to(target)
    assert any("other_dist-1.0" in request for request in asked), asked
    assert asked.installers_seen and not asked.holding_secret
    line = audit_lines(target)[-1]
    assert "s3cr3t" not in json.dumps(line)
    shown = link.replace("s3cr3t", "****")
    assert line["index"] == f"no index (PIP_NO_INDEX), find-links {shown} (PIP_FIND_LINKS)"


@needs_proc
def test_uv_reads_a_folder_with_a_comma_beside_a_find_links_url_with_a_password(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """The variable is comma-separated: the folder goes there as its file://
    URL, and the password still stays off uv's command line."""
    folder = tmp_path / "wheels,here"
    shutil.copytree(wheelhouse, folder)
    (tmp_path / "empty").mkdir()
    asked = CommandLinesAtEachRequest("s3cr3t")
    with serve_find_links(tmp_path / "empty", request_log=asked) as url:
        link = url.replace("http://", "http://alice:s3cr3t@")
        env = pip_only_env(f"{link} {folder}", tmp_path)
        code = hook(target, "uv", {"othermod": "other-dist==1.0"}) + report("othermod")
        ok, where = json.loads(run_python(code, env).stdout)
    assert ok == "ok" and Path(where).is_relative_to(target)
    assert asked.installers_seen and not asked.holding_secret, asked.holding_secret
    assert "s3cr3t" not in json.dumps(audit_lines(target)[-1])


def test_status_shows_the_effective_index_and_where_it_came_from(wheelhouse: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lazy-import-hook]\ntarget = "t"\ninstaller = "uv"\n'
        '[tool.lazy-import-hook.allowlist]\nx = "x==1"\n'
    )
    env = pip_only_env(wheelhouse, tmp_path, PIP_INDEX_URL="https://mirror.example/simple")
    del env["PIP_NO_INDEX"]
    out = subprocess.run(
        [sys.executable, "-m", "lazy_import_hook", "status"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert (
        f"index:      https://mirror.example/simple (PIP_INDEX_URL), find-links {wheelhouse} (PIP_FIND_LINKS)"
        in out
    )


# -- 2. ambient settings that would change where or what gets installed --------------

PIP_AMBIENT = {
    "PIP_TARGET": "{tmp}/elsewhere",
    "PIP_PREFIX": "{tmp}/prefix",
    "PIP_USER": "1",
    "PIP_ROOT": "{tmp}/root",
    "PIP_NO_BINARY": ":all:",
    "PIP_REQUIRE_VIRTUALENV": "1",
    "PIP_PLATFORM": "win_amd64",
    "PIP_PYTHON_VERSION": "3.7",
    "PIP_DRY_RUN": "1",
    "PIP_NO_DEPS": "1",
    "PIP_REQUIREMENT": "{tmp}/more.txt",
    "PIP_NO_COMPILE": "no",
    "_PIP_IN_BUILD_IGNORE_CONSTRAINTS": "1",
}
UV_AMBIENT = {
    "UV_PYTHON": "/usr/bin/python3",
    "UV_SYSTEM_PYTHON": "1",
    "UV_PREFIX": "{tmp}/prefix",
    "UV_NO_BINARY": "1",
    "UV_OVERRIDE": "{tmp}/override.txt",
    "UV_LINK_MODE": "symlink",
    "UV_RESOLUTION": "lowest",
    "UV_EXCLUDE": "{tmp}/exclude.txt",
    "UV_REQUIRE_HASHES": "1",
    "UV_PRERELEASE": "allow",
    "UV_COMPILE_BYTECODE": "1",
}


@pytest.mark.parametrize(("installer", "variable"), [
    *(("pip", name) for name in PIP_AMBIENT), *(("uv", name) for name in UV_AMBIENT),
])  # fmt: skip
def test_an_ambient_setting_never_subverts_the_install_and_is_named(
    installer: str, variable: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    (tmp_path / "more.txt").write_text("other-dist==1.0\n")
    (tmp_path / "override.txt").write_text("toy-dep==1.0\n")
    (tmp_path / "exclude.txt").write_text("toy-dep\n")
    value = {**PIP_AMBIENT, **UV_AMBIENT}[variable].format(tmp=tmp_path)
    env = installer_env(wheelhouse, tmp_path)
    env[variable] = value
    code = hook(target, installer, {"toymod": "toy-dist==1.0"}) + (
        "import toymod, toydep\n"
        "print(json.dumps([toymod.__file__, toydep.VERSION, os.path.islink(toymod.__file__)]))\n"
    )
    where, dep, linked = json.loads(run_python("import os\n" + code, env).stdout)
    assert Path(where).is_relative_to(target) and not linked
    assert dep == "2.0"  # the newest allowed, as without the variable
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "toy_dep-2.0.dist-info",
        "toy_dist-1.0.dist-info",
    ]
    assert not (target / "othermod").exists() and not (tmp_path / "elsewhere").exists()
    assert list(target.rglob("*.pyc")), "compiled at install, as asked"
    named = audit_lines(target)[-1]["not_passed_on"]
    assert isinstance(named, list)
    key = variable[4:].lower().replace("_", "-") if variable.startswith("PIP_") else variable
    assert any(item == key or item.startswith(f"{key} ({variable})") for item in named), named


# -- 3. no silent waits ----------------------------------------------------------------


def test_a_silent_installer_gets_a_line_every_stall_after_seconds(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    with serve_find_links(wheelhouse, delay_seconds=3.5, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url,
                            LAZY_IMPORT_HOOK_STALL_AFTER="1")  # fmt: skip
        result = run_python(hook(target, "pip", {"othermod": "other-dist==1.0"}) + "import othermod\n", env)
    lines = [line for line in result.stderr.splitlines() if "still installing" in line]
    assert len(lines) >= 2, result.stderr
    first = lines[0]
    assert "still installing other-dist==1.0 for 'import othermod' with pip after" in first
    assert (
        "silent for" in first
        and f"index: https://pypi.org/simple (the default), find-links {url}" not in first
    )
    assert f"find-links {url} (PIP_FIND_LINKS)" in first and "To stop it: Ctrl-C, or kill" in first
    assert any("its last line: '" in line for line in lines)  # once pip has said something
    assert "\x1b" not in result.stderr and "\r" not in result.stderr  # logs get no control characters


def test_a_process_waiting_for_anothers_install_says_so_once(
    wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    with serve_find_links(wheelhouse, delay_seconds=3, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        code = hook(target, "pip", {"othermod": "other-dist==1.0"}) + "import othermod\n"
        first = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (target / ".lazy-import-hook" / "installing").exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.02)
        second = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        first.communicate(timeout=60)
    waits = [line for line in second.stderr.splitlines() if "waiting for" in line]
    assert len(waits) == 1, second.stderr
    assert f"waiting for process {first.pid}, installing other-dist==1.0 for 'import othermod'" in waits[0]
    assert f"into {target} since " in waits[0]


def test_a_terminal_gets_one_live_line(wheelhouse: Path, target: Path, tmp_path: Path) -> None:
    from test_child_and_prompt import _run_on_a_terminal

    with serve_find_links(wheelhouse, delay_seconds=3.5, delay_for=["other_dist"]) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        code = hook(target, "pip", {"othermod": "other-dist==1.0"}) + "import othermod\nprint('done')\n"
        screen = _run_on_a_terminal(code, env, None, tmp_path, columns=60)
    assert "\r\x1b[Klazy-import-hook: installing other-dist==1.0 for 'imp" in screen
    live = [part.split("\r")[0].split("\n")[0] for part in screen.split("\x1b[K")[1:]]
    assert live and all(len(line) < 60 for line in live), live  # a wrapped line would stay on screen
    assert "done" in screen


# -- 4. errors that say what to do ------------------------------------------------------


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_conflict_with_the_applications_own_packages_is_named(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    import packaging

    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"oldpackmod": "needs-old-packaging==1.0"}) + report("oldpackmod")
    reason, message = json.loads(run_python(code, env).stdout)
    assert reason == "installer-failed"
    assert f"packaging {packaging.__version__} is installed in the application's environment" in message
    assert message.splitlines()[-1].endswith(f"--target {target} prefetch oldpackmod")


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_version_that_does_not_exist_gets_no_source_archive_hint(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    reason, message = json.loads(run_python(hook(target, installer, {"toymod": "toy-dist==9.9"})
                                            + report("toymod"), env).stdout)  # fmt: skip
    assert reason == "installer-failed"
    assert "source archive" not in message and "allow-sdist" not in message


def test_disabled_by_pyproject_names_the_file_and_refused_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.lazy-import-hook]\nenabled = false\n'
        '[tool.lazy-import-hook.allowlist]\ntoymod = "toy-dist==1.0"\n'
    )
    lazy_import_hook.install(pyproject=path, target=tmp_path / "t")
    with pytest.raises(
        lazy_import_hook.LazyInstallError,
        match=r"disabled by .*pyproject.toml \[tool.lazy-import-hook\] enabled",
    ):
        import toymod  # noqa: F401
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lazy_import_hook.install({"othermod": "other-dist==1.0"}, target=blocker / "t")
    assert [w.filename for w in caught] == [__file__]  # the warning points at the caller's line
    with pytest.raises(lazy_import_hook.LazyInstallError) as info:
        import othermod  # noqa: F401
    assert info.value.reason == "target-refused" and "LAZY_IMPORT_HOOK_TARGET" in str(info.value)


# -- 5. a command line for every allowlist ------------------------------------------------


def test_the_command_line_works_for_an_allowlist_written_in_code(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    run_python(hook(target, "pip", {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}), env)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lazy_import_hook", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip

    status = cli("--target", str(target), "status", "--json")
    assert status.returncode == 0, status.stderr
    assert {e["import_name"]: e["state"] for e in json.loads(status.stdout)["entries"]} == {
        "toymod": "missing", "othermod": "missing"}  # fmt: skip
    assert "using the plan recorded by" in status.stderr
    assert cli("--target", str(target), "prefetch", "othermod").returncode == 0
    assert (target / "othermod").is_dir()
    assert cli("--target", str(target), "prune", "--dry-run").returncode == 0
    nothing = cli("status")
    assert nothing.returncode == 2
    assert (
        "no --target was given" in nothing.stderr
        and "Pass --pyproject FILE, or --target FOLDER" in nothing.stderr
    )


def test_prune_with_only_the_target_keeps_what_every_recorded_plan_needs(
    wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    """With --target alone and nothing running, the plan prune acts for is
    just the newest recorded: a one-off run's, recorded after the
    application stopped, must not take the application's packages with it.
    A plan nobody will run again is deleted by hand, as prune's line says."""
    env = installer_env(wheelhouse, tmp_path)

    def run(script: str, allowlist: dict[str, str]) -> None:
        imports = "".join(f"import {name}\n" for name in allowlist)
        (tmp_path / script).write_text(hook(target, "pip", allowlist) + imports)
        subprocess.run([sys.executable, script], cwd=tmp_path, env=env, check=True, capture_output=True)

    def prune() -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "lazy_import_hook", "--target", str(target), "prune"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, check=True)  # fmt: skip
        return proc.stdout.splitlines()

    run("app.py", {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"})
    run("oneoff.py", {"othermod": "other-dist==1.0"})
    said = prune()
    assert said[-1] == "nothing to prune"
    kept = next(line for line in said if line.startswith("keeping what app.py"))
    assert (target / "toymod").is_dir() and (target / "othermod").is_dir()
    # What to do when that application is gone for good: the line says.
    Path(kept.split("if it never runs again, delete ")[1].removesuffix(")")).unlink()
    assert "removed toy_dist-1.0: no allowlist entry needs it" in prune()
    assert not (target / "toymod").exists() and (target / "othermod").is_dir()


# -- 6. wrong import names caught early ----------------------------------------------------


def test_status_flags_a_wrong_import_name_an_unpinned_entry_and_a_core_package_at_another_version(
    wheelhouse: Path, tmp_path: Path
) -> None:
    import packaging

    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent("""
        [tool.lazy-import-hook]
        target = "t"
        installer = "pip"
        [tool.lazy-import-hook.allowlist]
        misnamed = "misnamed-dist==1.0"
        toymod = "toy-dist>=1"
        packaging = "packaging==1.0"
    """)
    )
    env = installer_env(wheelhouse, tmp_path)

    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "lazy_import_hook", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, check=True).stdout  # fmt: skip

    subprocess.run([sys.executable, "-m", "lazy_import_hook", "prefetch", "misnamed"], cwd=tmp_path, env=env,
                   capture_output=True, text=True, check=False)  # fmt: skip
    entries = {e["import_name"]: e for e in json.loads(cli("status", "--json"))["entries"]}
    assert entries["misnamed"]["state"] == "installed"
    assert entries["misnamed"]["detail"] == "no module 'misnamed'; the distribution provides actual_name"
    assert entries["toymod"]["pinned"] is False and entries["misnamed"]["pinned"] is True
    core = entries["packaging"]
    assert core["state"] == "core" and "the entry asks for packaging==1.0" in core["detail"]
    assert f"packaging {packaging.__version__}" in core["detail"]
    assert "[unpinned]" in cli("status")


@pytest.mark.parametrize(
    ("lines", "quoted"),
    [
        ('google.protobuf = "protobuf==5.29.3"', '"google.protobuf" = ...'),
        ('google.cloud.storage = "google-cloud-storage==3.1.0"', '"google.cloud.storage" = ...'),
        (
            'a.b.c = "x==1"\na.b.d = { requirement = "y==1" }\na.e = ["z==1"]',
            '"a.b.c" = ..., "a.b.d" = ..., "a.e" = ...',
        ),
    ],
)
def test_an_unquoted_dotted_key_is_told_to_quote_it(tmp_path: Path, lines: str, quoted: str) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.lazy-import-hook.allowlist]\n{lines}\n")
    with pytest.raises(lazy_import_hook.ConfigError) as raised:
        lazy_import_hook.install(pyproject=path, target=tmp_path / "t")
    assert str(raised.value).endswith(f"quote it in TOML: {quoted}")


# -- 7. bytecode at install -------------------------------------------------------------------


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("compile_bytecode", [True, False])
def test_bytecode_is_written_at_install_even_with_dont_write_bytecode(
    installer: str, compile_bytecode: bool, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)  # sets PYTHONDONTWRITEBYTECODE, as many images do
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    options = {} if compile_bytecode else {"compile_bytecode": False}
    run_python(hook(target, installer, {"toymod": "toy-dist==1.0"}, **options) + "import toymod\n", env)
    assert bool(list((target / "toymod").rglob("*.pyc"))) is compile_bytecode


# -- 8. prefetch, prune, run ---------------------------------------------------------------------


def test_prefetch_names_the_entry_at_fault_and_installs_the_others(wheelhouse: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lazy-import-hook]\ntarget = "t"\ninstaller = "pip"\n[tool.lazy-import-hook.allowlist]\n'
        'toymod = "toy-dist==1.0"\nbrokenmod = "broken-dist==1.0"\nothermod = "other-dist==1.0"\n'
    )
    env = installer_env(wheelhouse, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "lazy_import_hook", "prefetch"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "toymod: installed" in proc.stdout and "othermod: installed" in proc.stdout
    assert "brokenmod: FAILED" in proc.stderr and "dependency-that-exists-nowhere" in proc.stderr
    assert "installing toy-dist==1.0, broken-dist==1.0, other-dist==1.0 by prefetch with pip" in proc.stderr
    assert "for 'import" not in proc.stderr


def test_prefetch_of_a_wrong_import_name_fails_that_entry_alone_after_one_run(
    wheelhouse: Path, tmp_path: Path
) -> None:
    """misnamed-dist provides actual_name, not misnamed: the group's one run
    succeeds, so nothing is installed again one by one, and the entries it
    installed say installed, not already present. A second prefetch of what
    is whole runs no installer (a read-only target serves it as it is)."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lazy-import-hook]\ntarget = "t"\ninstaller = "pip"\n[tool.lazy-import-hook.allowlist]\n'
        'misnamed = "misnamed-dist==1.0"\nothermod = "other-dist==1.0"\n'
    )
    env = installer_env(wheelhouse, tmp_path)
    command = [sys.executable, "-m", "lazy_import_hook", "prefetch"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "othermod: installed" in proc.stdout and "misnamed: FAILED" in proc.stderr
    assert "one by one" not in proc.stderr and "already present" not in proc.stdout
    assert len(audit_lines(tmp_path / "t")) == 1
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lazy-import-hook]\ntarget = "t"\ninstaller = "pip"\n[tool.lazy-import-hook.allowlist]\n'
        'othermod = "other-dist==1.0"\n'
    )
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert "othermod: already present" in again.stdout
    assert len(audit_lines(tmp_path / "t")) == 1


def test_prune_removes_the_console_scripts_of_what_it_removes(wheelhouse: Path, tmp_path: Path) -> None:
    table = '[tool.lazy-import-hook]\ntarget = "t"\ninstaller = "{i}"\n[tool.lazy-import-hook.allowlist]\n'
    env = installer_env(wheelhouse, tmp_path)
    for installer in INSTALLERS:
        (tmp_path / "pyproject.toml").write_text(table.format(i=installer) + 'toolmod = "tool-dist==1.0"\n')
        subprocess.run(
            [sys.executable, "-m", "lazy_import_hook", "prefetch"], cwd=tmp_path, env=env, check=True
        )
        assert (tmp_path / "t" / "bin" / "toolcmd").exists()
        (tmp_path / "pyproject.toml").write_text(table.format(i=installer) + 'x = "other-dist==1.0"\n')
        out = subprocess.run([sys.executable, "-m", "lazy_import_hook", "prune"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert "removed tool_dist-1.0" in out
        assert not (tmp_path / "t" / "bin" / "toolcmd").exists(), installer


@pytest.mark.parametrize(("args", "code", "message"), [
    (["missing.py"], 2, "can't open file"),
    (["-m", "no_such_module_anywhere"], 1, "No module named no_such_module_anywhere"),
    (["-m", "email"], 1, "No module named email.__main__; 'email' is a package and cannot be run"),
    (["adir"], 1, "can't find '__main__' module in "),
    (["a.zip"], 1, "can't find '__main__' module in "),
])  # fmt: skip
def test_run_fails_in_one_line_as_python_does(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    import zipfile

    (tmp_path / "pyproject.toml").write_text(
        '[tool.lazy-import-hook]\ntarget = "t"\n[tool.lazy-import-hook.allowlist]\nx = "x==1"\n'
    )
    (tmp_path / "adir").mkdir()
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("other.py", "")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LAZY_IMPORT_HOOK_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "lazy_import_hook", "run", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == code
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# -- 9. a library's own optional imports ------------------------------------------------------------


def test_the_notice_names_the_module_whose_import_triggered_the_install(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    (tmp_path / "library_with_optional.py").write_text(
        "try:\n    import othermod as fast\nexcept ImportError:\n    fast = None\n"
    )
    env = installer_env(wheelhouse, tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    result = run_python(
        hook(target, "pip", {"othermod": "other-dist==1.0"}) + "import library_with_optional\n", env
    )
    assert "for 'import othermod' (imported by library_with_optional) with pip" in result.stderr
