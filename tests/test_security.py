"""Security model, with real installers: hashes, binary-only, refused targets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _offline import installer_env
from _wheelhouse import wheel_sha256
from test_real_installers import INSTALLERS, audit_lines, hook

import lazy_import_hook
from conftest import Runner


def report(name: str) -> str:
    return (
        f"try:\n    import {name}\n    print(json.dumps(['ok', {name}.__file__]))\n"
        "except ImportError as e:\n    print(json.dumps([e.reason, str(e)]))\n"
    )


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("marker", ["", "; platform_release != ' --no-such-option '"])
def test_a_hash_pinned_entry_installs_with_require_hashes(
    installer: str, marker: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    sha = wheel_sha256(wheelhouse / "other_dist-1.0-py3-none-any.whl")
    entry = {"requirement": "other-dist==1.0" + marker, "hashes": [sha]}
    result = run_python(hook(target, installer, {"othermod": entry}) + report("othermod"), dict(
        installer_env(wheelhouse, tmp_path)))
    assert json.loads(result.stdout)[0] == "ok", result.stdout


@pytest.mark.parametrize("installer", INSTALLERS)
def test_the_operators_constraint_ranges_hold_for_a_hash_pinned_entry(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """uv refuses a constraint that is not an exact pin when every file is
    hashed, where pip takes it: the same constraint files work with both, and
    a range the pinned version falls outside refuses the install with both."""
    sha = wheel_sha256(wheelhouse / "other_dist-1.0-py3-none-any.whl")
    entry = {"requirement": "other-dist==1.0", "hashes": [sha]}
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# the image's policy\ntorch<=2.14.1\nother-dist>=0.5  # fine\nsix==1.16.0\n")
    env = installer_env(wheelhouse, tmp_path, PIP_CONSTRAINT=str(constraints))
    result = run_python(hook(target, installer, {"othermod": entry}) + report("othermod"), env)
    assert json.loads(result.stdout)[0] == "ok", result.stderr

    constraints.write_text("other-dist<1.0\n")
    env = installer_env(wheelhouse, tmp_path, PIP_CONSTRAINT=str(constraints))
    other = tmp_path / "other-target"
    code = hook(other, installer, {"othermod": entry}) + report("othermod")
    reason, message = json.loads(run_python(code, env).stdout)
    assert reason != "ok" and not (other / "othermod").exists()
    if installer == "uv":
        assert f"the operator's constraint other-dist<1.0 (in {constraints}) excludes" in message


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_wrong_hash_is_an_import_error_naming_the_distribution(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    entry = {"requirement": "other-dist==1.0", "hashes": ["sha256:" + "0" * 64]}
    env = installer_env(wheelhouse, tmp_path)
    reason, message = json.loads(
        run_python(hook(target, installer, {"othermod": entry}) + report("othermod"), env).stdout
    )
    assert reason == "hash-mismatch"
    assert "other-dist" in message.splitlines()[0]
    assert not (target / "othermod").exists()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_source_only_distribution_is_refused_by_default_and_installs_when_allowed(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path, PIP_CACHE_DIR=str(tmp_path / "pip-cache"))
    refused, message = json.loads(
        run_python(hook(target, installer, {"sdistmod": "sdist-only==1.0"}) + report("sdistmod"), env).stdout
    )
    assert refused == "sdist-refused"
    assert "only a source archive" in message and "allow-sdist = true" in message
    assert not (target / "sdistmod").exists()
    for allowlist in (
        {"sdistmod": {"requirement": "sdist-only==1.0", "allow-sdist": True}},
        {"sdistmod": "sdist-only==1.0"},
    ):
        options = {} if isinstance(allowlist["sdistmod"], dict) else {"allow_sdist": True}
        fresh = tmp_path / f"t-{len(options)}"
        ok, where = json.loads(
            run_python(hook(fresh, installer, allowlist, **options) + report("sdistmod"), env).stdout
        )
        assert ok == "ok" and Path(where).is_relative_to(fresh)
        assert audit_lines(fresh)[-1]["status"] == 0


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize(("pin", "expected"), [("1.0", "sdist-refused"), ("3.0", "installer-failed")])
def test_a_pinned_version_with_only_a_source_archive_is_told_apart_from_one_that_does_not_exist(
    installer: str, pin: str, expected: str,
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner,
) -> None:  # fmt: skip
    """older-sdist 2.0 has a wheel, 1.0 only a source archive, 3.0 nothing:
    pip lists 2.0 where 1.0 is missing, which is not "from versions: none"."""
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"oldersdist": f"older-sdist=={pin}"}) + report("oldersdist")
    reason, message = json.loads(run_python(code, env).stdout)
    assert reason == expected, message
    assert ("only a source archive" in message) == (expected == "sdist-refused"), message


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_distribution_that_exists_nowhere_is_not_mistaken_for_source_only(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"brokenmod": "broken-dist==1.0"}) + report("brokenmod")
    reason, message = json.loads(run_python(code, env).stdout)
    assert reason == "installer-failed" and "dependency-that-exists-nowhere" in message


def test_a_world_writable_target_is_refused(
    wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    target.mkdir()
    os.chmod(target, 0o777)
    env = installer_env(wheelhouse, tmp_path)
    result = run_python(hook(target, "pip", {"othermod": "other-dist==1.0"}) + report("othermod"), env)
    reason, message = json.loads(result.stdout)
    assert reason == "target-refused" and "writable by every user" in message
    assert "writable by every user" in result.stderr  # install() warned too
    assert not (target / "othermod").exists()


def test_a_symlink_into_site_packages_is_refused(tmp_path: Path) -> None:
    import sysconfig

    link = tmp_path / "innocent-looking"
    link.symlink_to(sysconfig.get_paths()["purelib"])
    with pytest.warns(UserWarning, match="library folder"):
        lazy_import_hook.install({"othermod": "other-dist==1.0"}, target=link)
    with pytest.raises(lazy_import_hook.LazyInstallError) as info:
        import othermod  # noqa: F401
    assert info.value.reason == "target-refused"


def test_an_unsafe_target_is_not_even_put_on_sys_path(tmp_path: Path) -> None:
    import sys

    target = tmp_path / "t"
    (target / "planted").mkdir(parents=True)
    (target / "planted" / "__init__.py").write_text("raise SystemExit('planted code ran')\n")
    os.chmod(target, 0o777)
    with pytest.warns(UserWarning, match="NOT added to sys.path"):
        lazy_import_hook.install({"othermod": "other-dist==1.0"}, target=target)
    assert str(target) not in sys.path
    with pytest.raises(ModuleNotFoundError):
        import planted  # noqa: F401


@pytest.mark.parametrize("installer", INSTALLERS)
def test_files_in_the_working_directory_never_steer_the_installer(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    cwd = tmp_path / "untrusted-checkout"
    (cwd / "pip").mkdir(parents=True)
    marker = tmp_path / "planted-pip-ran"
    (cwd / "pip" / "__init__.py").write_text("")
    (cwd / "pip" / "__main__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (cwd / "uv.toml").write_text('[pip]\nindex-url = "http://127.0.0.1:9/nowhere"\n')
    env = installer_env(wheelhouse, tmp_path)
    env.pop("UV_NO_CONFIG")
    code = hook(target, installer, {"othermod": "other-dist==1.0"}) + report("othermod")
    result = run_python(code, env, cwd=cwd)
    assert json.loads(result.stdout)[0] == "ok", result.stdout
    assert not marker.exists()
