"""Settings sources and the startup cache."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

import lazy_import_hook
from lazy_import_hook import ConfigError
from lazy_import_hook._plan import Plan

PYPROJECT = """\
[tool.lazy-import-hook]
target = "{target}"
installer = "pip"
timeout = 30

[tool.lazy-import-hook.allowlist]
toymod = "toy-dist==1.0"
six = {{ requirement = "six==1.17.0", hashes = ["sha256:{hash}"] }}
"""


def write_pyproject(folder: Path, target: str = ".lazy", **extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = PYPROJECT.format(target=target, hash="0" * 64)
    for key, value in extra.items():
        lines = [line for line in text.splitlines() if not line.startswith(f"{key} =")]
        lines.insert(1, f"{key} = {value}")
        text = "\n".join(lines) + "\n"
    path = folder / "pyproject.toml"
    path.write_text(text)
    return path


def test_pyproject_is_found_walking_up_and_target_is_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(tmp_path / "app")
    (tmp_path / "app" / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "app" / "src" / "deep")
    finder = lazy_import_hook.install()
    assert finder.target == str(tmp_path / "app" / ".lazy")
    assert finder.plan.installer == "pip" and finder.plan.timeout == 30
    assert finder.plan.entries["six"].hashes == ("sha256:" + "0" * 64,)


def test_arguments_beat_environment_beats_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pyproject(tmp_path / "app")
    monkeypatch.setenv("LAZY_IMPORT_HOOK_TARGET", str(tmp_path / "from-env"))
    monkeypatch.setenv("LAZY_IMPORT_HOOK_INSTALLER", "uv")
    finder = lazy_import_hook.install(pyproject=path)
    assert finder.target == str(tmp_path / "from-env") and finder.plan.installer == "uv"
    finder = lazy_import_hook.install(pyproject=path, target=tmp_path / "arg", installer="auto")
    assert finder.target == str(tmp_path / "arg") and finder.plan.installer == "auto"


def test_home_is_expanded_in_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_pyproject(tmp_path / "app", target="~/lazy")
    assert lazy_import_hook.install(pyproject=path).target == str(tmp_path / "home" / "lazy")


def test_the_default_target_is_per_environment_outside_site_packages() -> None:
    import sys
    import sysconfig

    from lazy_import_hook._config import default_target

    assert default_target().startswith(sys.prefix)
    assert not default_target().startswith(sysconfig.get_paths()["purelib"])


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"instaler": '"pip"'}, "unknown key(s) in [tool.lazy-import-hook]: instaler"),
        ({"timeout": '"soon"'}, "timeout = 'soon'"),
        ({"timeout": "-1"}, "positive number"),
        ({"installer": '"conda"'}, "installer 'conda'"),
        ({"enabled": '"no"'}, "expected a bool"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, extra: dict[str, str], fragment: str) -> None:
    path = write_pyproject(tmp_path / "app", **extra)
    with pytest.raises(ConfigError) as info:
        lazy_import_hook.install(pyproject=path)
    assert fragment in str(info.value)


def test_bad_environment_values_are_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "maybe")
    with pytest.raises(ConfigError, match="LAZY_IMPORT_HOOK_DISABLE='maybe'"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=tmp_path / "t")


def test_no_allowlist_and_no_pyproject_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="pass install"):
        lazy_import_hook.install()


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.lazy-import-hook\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        lazy_import_hook.install(pyproject=path)


def test_a_warm_start_reuses_the_cache_and_any_change_revalidates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook import _config

    calls: list[_config.Raw] = []
    real = _config.resolve

    def counting(raw: _config.Raw) -> Plan:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(_config, "resolve", counting)
    target = tmp_path / "t"
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    assert len(calls) == 1  # the second start read the cache only
    lazy_import_hook.install({"toymod": "toy-dist==2.0"}, target=target)
    assert len(calls) == 2  # a pin change is validated again
    with pytest.raises(ConfigError):
        lazy_import_hook.install({"toymod": "toy-dist @ https://x"}, target=target)
    (target / "newdir").mkdir()  # the target changed: checked again
    lazy_import_hook.install({"toymod": "toy-dist==2.0"}, target=target)
    assert len(calls) == 4


def test_a_changed_pyproject_is_read_again(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path / "app")
    assert lazy_import_hook.install(pyproject=path).plan.timeout == 30
    path.write_text(path.read_text().replace("timeout = 30", "timeout = 31"))
    assert lazy_import_hook.install(pyproject=path).plan.timeout == 31
    path.write_text(path.read_text().replace("timeout = 31", "timeout = 'x'"))
    with pytest.raises(ConfigError):
        lazy_import_hook.install(pyproject=path)


def test_world_writable_target_is_refused_with_a_warning(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    os.chmod(target, 0o777)
    with pytest.warns(UserWarning, match="writable by every user"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    with pytest.raises(lazy_import_hook.LazyInstallError, match="chmod o-w"):
        import toymod  # noqa: F401
    os.chmod(target, 0o1777)  # the sticky bit stops deletions, not a planted package
    with pytest.warns(UserWarning, match="writable by every user"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    os.chmod(target, 0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        finder = lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    assert finder.plan.problem == "" and str(target) in sys.path


def test_a_target_inside_the_interpreters_library_is_refused(tmp_path: Path) -> None:
    import sysconfig

    inside = Path(sysconfig.get_paths()["purelib"]) / "lazy-target-test-never-created"
    with pytest.warns(UserWarning, match="library folder"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=inside)
    assert not inside.exists()


def test_the_startup_cache_round_trips_and_rejects_another_key() -> None:
    from lazy_import_hook._allowlist import parse_allowlist

    entries = parse_allowlist(
        {
            "yaml": "PyYAML==6.0.2",
            "x": {"requirement": ["a==1", "b[c]==2; python_version > '3'"], "hashes": ["sha256:" + "1" * 64]},
            "gone": "nowhere==1; sys_platform == 'no-such-platform'",
        }
    )
    plan = Plan(target="/t/x", entries=entries, installer="uv", timeout=12.5, confirm=True)
    plan.hidden, plan.pth_paths, plan.problem = ("yaml",), ("/t/x/extra",), "readonly\tno"
    loaded = Plan.loads(plan.dumps("KEY", 42), "KEY")
    assert loaded is not None
    again, mtime = loaded
    assert mtime == 42 and list(again.entries.values()) == entries
    for attr in ("target", "installer", "timeout", "confirm", "hidden", "pth_paths", "problem"):
        assert getattr(again, attr) == getattr(plan, attr), attr
    assert again.entries["x"].pins == ("a==1", "b==2")
    assert Plan.loads(plan.dumps("KEY", 42), "OTHER") is None
    assert Plan.loads(plan.dumps("KEY", 42).replace("\t", " "), "KEY") is None
