"""Settings sources and the startup cache."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

import lazy_import_hook
from lazy_import_hook import ConfigError, _plan
from lazy_import_hook._plan import Plan
from lazy_import_hook._settings import Settings
from lazy_import_hook._target import Problem

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
    assert finder.plan.settings.installer == "pip" and finder.plan.settings.timeout == 30
    assert finder.plan.entries["six"].hashes == ("sha256:" + "0" * 64,)


def test_arguments_beat_environment_beats_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pyproject(tmp_path / "app")
    monkeypatch.setenv("LAZY_IMPORT_HOOK_TARGET", str(tmp_path / "from-env"))
    monkeypatch.setenv("LAZY_IMPORT_HOOK_INSTALLER", "uv")
    finder = lazy_import_hook.install(pyproject=path)
    assert finder.target == str(tmp_path / "from-env") and finder.plan.settings.installer == "uv"
    finder = lazy_import_hook.install(pyproject=path, target=tmp_path / "arg", installer="auto")
    assert finder.target == str(tmp_path / "arg") and finder.plan.settings.installer == "auto"


def test_home_is_expanded_in_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_pyproject(tmp_path / "app", target="~/lazy")
    assert lazy_import_hook.install(pyproject=path).target == str(tmp_path / "home" / "lazy")


def test_the_default_target_is_per_environment_outside_site_packages() -> None:
    import sys
    import sysconfig

    from lazy_import_hook._settings import default_target

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
    from lazy_import_hook import _config, _settings

    calls: list[_settings.Raw] = []
    real = _config.resolve

    def counting(raw: _settings.Raw) -> Plan:
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
    assert lazy_import_hook.install(pyproject=path).plan.settings.timeout == 30
    path.write_text(path.read_text().replace("timeout = 30", "timeout = 31"))
    assert lazy_import_hook.install(pyproject=path).plan.settings.timeout == 31
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
    assert finder.plan.problem is None and str(target) in sys.path


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
    plan = Plan(Settings(target="/t/x", installer="uv", timeout=12.5, confirm=True), entries)
    plan.hidden, plan.pth_paths = ("yaml",), ("/t/x/extra",)
    plan.problem = Problem(Problem.READONLY, "no")
    loaded = _plan.loads(_plan.dumps(plan, "KEY", 42), "KEY")
    assert loaded is not None
    again, mtime = loaded
    assert mtime == 42 and list(again.entries.values()) == entries
    assert again.settings == plan.settings
    for attr in ("hidden", "pth_paths", "problem"):
        assert getattr(again, attr) == getattr(plan, attr), attr
    assert again.entries["x"].pins == (("a", "==1"), ("b", "==2"))
    assert _plan.loads(_plan.dumps(plan, "KEY", 42), "OTHER") is None
    assert _plan.loads(_plan.dumps(plan, "KEY", 42).replace("\t", " "), "KEY") is None


def test_a_cached_plans_entries_are_parsed_once_on_first_use_for_every_thread() -> None:
    import threading

    from lazy_import_hook._allowlist import parse_allowlist

    entries = parse_allowlist({f"mod{i}": f"dist-{i}==1.{i}" for i in range(200)})
    text = _plan.dumps(Plan(Settings(target="/t/x"), entries), "KEY", 1)

    def first_use_in_threads() -> None:
        loaded = _plan.loads(text, "KEY")
        assert loaded is not None
        plan = loaded[0]
        assert plan.active_names() == [e.import_name for e in entries]  # without parsing them
        seen: list[object] = []
        threads = [threading.Thread(target=lambda: seen.append(plan.entries)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 8 and all(got is seen[0] for got in seen)
        assert list(plan.entries.values()) == entries

    for _ in range(10):
        first_use_in_threads()


def test_one_row_in_the_settings_table_is_an_argument_a_variable_a_key_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook._settings import Seconds, Setting

    row: Setting[float] = Setting(Seconds(), 5.0, "a setting added for this test", env="PROBE_SECONDS")
    row.__set_name__(Settings, "probe_seconds")
    monkeypatch.setattr(Settings, "probe_seconds", row, raising=False)
    allowlist = {"toymod": "toy-dist==1.0"}
    finder = lazy_import_hook.install(allowlist, target=tmp_path / "a", probe_seconds=7)
    assert finder.plan.settings.probe_seconds == 7.0  # type: ignore[attr-defined]
    monkeypatch.setenv("LAZY_IMPORT_HOOK_PROBE_SECONDS", "8")
    finder = lazy_import_hook.install(allowlist, target=tmp_path / "b")
    assert finder.plan.settings.probe_seconds == 8.0  # type: ignore[attr-defined]
    monkeypatch.delenv("LAZY_IMPORT_HOOK_PROBE_SECONDS")
    path = write_pyproject(tmp_path / "app", **{"probe-seconds": "9"})
    finder = lazy_import_hook.install(pyproject=path)
    assert finder.plan.settings.probe_seconds == 9.0  # type: ignore[attr-defined]
    text = _plan.dumps(finder.plan, "K", 1)
    assert "setting.probe_seconds\t9.0" in text
    loaded = _plan.loads(text, "K")
    assert loaded is not None and loaded[0].settings == finder.plan.settings
    with pytest.raises(ConfigError, match="probe-seconds = 'x'"):
        lazy_import_hook.install(pyproject=write_pyproject(tmp_path / "bad", **{"probe-seconds": '"x"'}))


@pytest.mark.parametrize(
    "damage",
    [
        "another version", "a field missing", "an extra field", "an entry field missing", "a bad value",
        "a bad pin",
    ],
)
def test_a_cache_of_another_shape_is_ignored_never_misread(
    damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook import _config, _settings

    target = tmp_path / "t"
    allowlist = {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}
    first = lazy_import_hook.install(allowlist, target=target, timeout=12)
    cache = target / ".lazy-import-hook" / "plan"
    lines = cache.read_text().splitlines(keepends=True)
    if damage == "another version":
        lines[0] = "lazy-import-hook plan 0.0.1\n"
    elif damage == "a field missing":
        lines = [line for line in lines if not line.startswith("setting.timeout\t")]
    elif damage == "an extra field":
        lines.insert(3, "setting.added_later\t1\n")
    elif damage == "an entry field missing":
        lines = [line.rsplit("\t", 1)[0] + "\n" if line.startswith("entry\t") else line for line in lines]
    elif damage == "a bad value":
        lines = [line.replace("setting.enabled\t1", "setting.enabled\tyes") for line in lines]
    else:  # an entry's pin that does not read: found at load, though entries are parsed on first use
        assert sum("\ttoy-dist ==1.0\t" in line for line in lines) == 1
        lines = [line.replace("\ttoy-dist ==1.0\t", "\ttoy-dist==1.0\t") for line in lines]
    cache.write_text("".join(lines))
    calls: list[object] = []
    real = _config.resolve

    def counting(raw: _settings.Raw) -> Plan:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(_config, "resolve", counting)
    again = lazy_import_hook.install(allowlist, target=target, timeout=12)
    assert len(calls) == 1  # the slow path ran
    assert again.plan.settings == first.plan.settings
    assert again.plan.entries == first.plan.entries
    assert cache.read_text().startswith(f"lazy-import-hook plan {lazy_import_hook.__version__}\n")


def test_a_lock_stamp_sees_a_change_a_removal_and_survives_any_path(tmp_path: Path) -> None:
    from lazy_import_hook._plan import lock_stamp, same_lock

    folder = tmp_path / "a\tfolder"  # a tab in the path split the old stamp apart at every start
    folder.mkdir()
    lock = folder / "pylock.lazy-import-hook.toml"
    lock.write_text("lock-version = '1.0'\n")
    stamp = lock_stamp(str(lock))
    assert same_lock(stamp)
    lock.write_text("lock-version = '1.0'\n# changed\n")
    assert not same_lock(stamp)
    lock.unlink()
    assert not same_lock(stamp)
