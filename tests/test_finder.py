"""Unit tier: the whole finder path with a fake installer (pytest-subprocess)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _fakes import PIP, installs, write_dist

import lazy_import_hook
from lazy_import_hook import LazyInstallError
from lazy_import_hook._finder import LazyFinder

TOY = {"toymod/__init__.py": "VERSION = '1.0'\n"}


def test_a_name_not_on_the_allowlist_is_a_plain_miss_with_no_subprocess(
    fp: Any, target: Path
) -> None:
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    with pytest.raises(ModuleNotFoundError) as info:
        import not_allowlisted_anywhere  # noqa: F401
    assert not isinstance(info.value, LazyInstallError)
    assert fp.call_count([*PIP, fp.any()]) == 0
    assert sorted(os.listdir(target)) == [".lazy-import-hook", ".lazy-import-hook.lock", ".python-abi"]


def test_an_allowlisted_miss_installs_and_returns_the_module(
    fp: Any, target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    finder = lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    assert sys.meta_path[-1] is finder
    assert sys.path[-1] == str(target)
    import toymod

    assert toymod.VERSION == "1.0"
    assert Path(toymod.__file__ or "").parent.parent == target
    assert os.listdir(target / ".lazy-import-hook" / "staging") == []
    err = capsys.readouterr().err
    assert "installing toy-dist==1.0 for 'import toymod' (imported by test_finder) with pip" in err
    assert "installed toy-dist==1.0 in" in err


def test_the_notices_reach_the_applications_logging(
    fp: Any, target: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    with caplog.at_level("INFO", logger="lazy_import_hook"):
        import toymod  # noqa: F401
    said = [r.getMessage() for r in caplog.records if r.name == "lazy_import_hook"]
    assert any(m.startswith("installing toy-dist==1.0 for 'import toymod'") for m in said)
    assert any(m.startswith("installed toy-dist==1.0 in") for m in said)


def test_a_notice_while_another_thread_imports_logging_is_printed_and_not_logged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """filelock imports logging when a lock is contended: another thread's
    notice then finds the module in sys.modules before its body has run."""
    import types

    from lazy_import_hook._watch import notice

    monkeypatch.setitem(sys.modules, "logging", types.ModuleType("logging"))  # partly initialised
    notice("waiting for the lock")
    assert capsys.readouterr().err == "lazy-import-hook: waiting for the lock\n"


def test_nothing_is_printed_when_nothing_is_installed(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dist(str(target), "toy-dist", "1.0", TOY)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    import toymod  # noqa: F401

    assert capsys.readouterr().err == ""


def test_install_twice_keeps_one_finder_and_uninstall_tolerates_absence(target: Path) -> None:
    first = lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    second = lazy_import_hook.install({"othermod": "other-dist==1.0"}, target=target)
    finders = [f for f in sys.meta_path if isinstance(f, LazyFinder)]
    assert finders == [second] and first is not second
    assert sys.path.count(str(target)) == 1
    lazy_import_hook.uninstall()
    lazy_import_hook.uninstall()
    assert not any(isinstance(f, LazyFinder) for f in sys.meta_path)


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_a_pip_setting_pip_would_refuse_is_named_with_what_to_write_instead(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch, installer: str
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "maybe")
    monkeypatch.setattr("lazy_import_hook._uv.find_uv", lambda: "/bin/uv")
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer=installer)
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value.reason == "installer-failed"
    assert "PIP_NO_INDEX sets no-index to 'maybe', which pip refuses: use 1 or 0" in str(info.value)
    assert fp.call_count([fp.any()]) == 0


def test_a_failed_install_is_an_import_error_with_the_installer_message(
    fp: Any, target: Path
) -> None:
    fp.register(
        [*PIP, fp.any()],
        stdout="Looking in links\nERROR: No matching distribution found for toy-dist==1.0\n",
        returncode=1,
    )
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    with pytest.raises(ImportError) as info:
        import toymod
    error = info.value
    assert isinstance(error, LazyInstallError) and error.name == "toymod"
    message = str(error)
    assert "No matching distribution found for toy-dist==1.0" in message
    # The same constrained, staged install, by hand; no guess that it only ships a source archive.
    expected = f"To install it by hand: lazy-import-hook --target {target} prefetch toymod"
    assert message.splitlines()[-1] == expected
    assert "allow-sdist" not in message
    # The same error comes back at once, without running the installer again.
    with pytest.raises(LazyInstallError) as again:
        import toymod  # noqa: F401
    assert str(again.value) == message
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_invalidate_caches_allows_a_retry(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: temporary failure\n", returncode=1)
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    with pytest.raises(LazyInstallError):
        import toymod
    importlib.invalidate_caches()
    import toymod

    assert toymod.VERSION == "1.0"


def test_another_process_does_not_retry_a_fresh_failure_at_once(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: index unreachable\n", returncode=1)
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    with pytest.raises(LazyInstallError):
        import toymod
    # A new finder stands for a new process: the failure on disk is recent.
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert "not retrying until 60 s have passed" in str(info.value)
    assert "index unreachable" in str(info.value)
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_installs_disabled_raises_with_the_manual_command_but_installed_still_imports(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dist(str(target), "other-dist", "1.0", {"othermod/__init__.py": "X = 1\n"})
    monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "1")
    lazy_import_hook.install(
        {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}, target=target, installer="pip"
    )
    import othermod

    assert othermod.X == 1
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value.reason == "disabled"
    assert "installs are disabled by LAZY_IMPORT_HOOK_DISABLE=1" in str(info.value)  # which switch
    assert str(info.value).splitlines()[-1].endswith(f"--target {target} prefetch toymod")


@pytest.mark.parametrize("how", ["argument", "pyproject"])
def test_every_kill_switch_disables_installs(
    how: str, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "argument":
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, enabled=False)
    else:
        (tmp_path / "pyproject.toml").write_text(
            '[tool.lazy-import-hook]\nenabled = false\n[tool.lazy-import-hook.allowlist]\n'
            'toymod = "toy-dist==1.0"\n'
        )
        monkeypatch.chdir(tmp_path)
        lazy_import_hook.install(target=target)
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value.reason == "disabled"


def test_timeout_kills_the_installer_and_raises(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], wait=1.0)
    lazy_import_hook.install(
        {"toymod": "toy-dist==1.0"}, target=target, installer="pip", timeout=0.1
    )
    with pytest.raises(ImportError) as info:
        import toymod  # noqa: F401
    assert isinstance(info.value, LazyInstallError) and info.value.reason == "timeout"
    assert "timed out after 0.1 s" in str(info.value)
    assert os.listdir(target / ".lazy-import-hook" / "staging") == []


def test_installed_but_still_missing_names_the_wrong_import_name(fp: Any, target: Path) -> None:
    fp.register(
        [*PIP, fp.any()],
        callback=installs("misnamed-dist", "1.0", {"actual_name/__init__.py": ""}),
    )
    lazy_import_hook.install({"wrong_name": "misnamed-dist==1.0"}, target=target, installer="pip")
    with pytest.raises(LazyInstallError) as info:
        import wrong_name  # noqa: F401
    assert info.value.reason == "still-missing"
    assert "actual_name" in str(info.value)
    assert "e.g. 'actual_name'" in str(info.value) and "To install it by hand" not in str(info.value)


def test_a_target_that_cannot_be_created_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="not writable"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=blocker / "target")
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert "not writable" in str(info.value)
    assert info.value.reason == "target-refused"


def test_a_false_marker_never_installs(fp: Any, target: Path) -> None:
    lazy_import_hook.install(
        {"toymod": "toy-dist==1.0; sys_platform == 'no-such-platform'"}, target=target
    )
    with pytest.raises(ModuleNotFoundError) as info:
        import toymod  # noqa: F401
    assert not isinstance(info.value, LazyInstallError)


def test_two_threads_importing_two_names_at_once_both_succeed(fp: Any, target: Path) -> None:
    by_spec = {
        "toy-dist==1.0": installs("toy-dist", "1.0", TOY),
        "other-dist==1.0": installs("other-dist", "1.0", {"othermod/__init__.py": "X = 2\n"}),
    }

    def install_what_was_asked(process: Any) -> None:
        # Whichever thread gets the lock first runs first: answer by the spec.
        time.sleep(0.2)
        by_spec[list(process.args)[-1]](process)

    fp.register([*PIP, fp.any()], callback=install_what_was_asked, occurrences=2)
    lazy_import_hook.install(
        {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}, target=target, installer="pip"
    )
    results: dict[str, object] = {}

    def work(name: str) -> None:
        try:
            results[name] = importlib.import_module(name)
        except BaseException as e:  # recorded, asserted below
            results[name] = e

    threads = [threading.Thread(target=work, args=(n,)) for n in ("toymod", "othermod")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert getattr(results["toymod"], "VERSION", None) == "1.0", results
    assert getattr(results["othermod"], "X", None) == 2, results


def test_the_hooks_own_imports_during_an_install_never_recurse(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazy_import_hook import _environment

    seen: list[str] = []
    real = _environment.core_constraints

    def constraints_that_import(*args: Any) -> list[str]:
        # Runs inside the install, in the installing thread, like the hook's
        # own lazy imports (packaging, filelock, subprocess) do.
        try:
            import othermod  # noqa: F401
        except ModuleNotFoundError as e:
            seen.append(type(e).__name__)
        return real(*args)

    monkeypatch.setattr(_environment, "core_constraints", constraints_that_import)
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    lazy_import_hook.install(
        {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}, target=target, installer="pip"
    )
    import toymod  # noqa: F401

    assert seen == ["ModuleNotFoundError"]  # a plain miss, not a nested install
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_a_dotted_name_whose_parents_exist_nowhere_installs(fp: Any, target: Path) -> None:
    fp.register(
        [*PIP, fp.any()],
        callback=installs("ns-storage", "1.0", {"nsroot/cloud/storage/__init__.py": "OK = 1\n"}),
    )
    lazy_import_hook.install(
        {"nsroot.cloud.storage": "ns-storage==1.0"}, target=target, installer="pip"
    )
    import nsroot.cloud.storage

    assert nsroot.cloud.storage.OK == 1
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_a_parent_of_one_dotted_entry_is_no_phantom_package(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "1")
    lazy_import_hook.install({"nsroot.cloud.storage": "ns-storage==1.0"}, target=target)
    with pytest.raises(LazyInstallError) as info:
        import nsroot  # noqa: F401
    assert info.value.reason == "disabled"


def test_parents_of_several_dotted_entries_lead_to_the_one_imported(fp: Any, target: Path) -> None:
    fp.register(
        [*PIP, fp.any()],
        callback=installs("ns-b", "1.0", {"nsroot/b/__init__.py": "B = 1\n"}),
    )
    lazy_import_hook.install(
        {"nsroot.a": "ns-a==1.0", "nsroot.b": "ns-b==1.0"}, target=target, installer="pip"
    )
    import nsroot.b

    assert nsroot.b.B == 1
    assert fp.call_count([*PIP, fp.any()]) == 1  # ns-a was not installed


def test_the_finder_is_a_meta_path_finder(target: Path) -> None:
    import importlib.abc

    finder = lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target)
    assert isinstance(finder, importlib.abc.MetaPathFinder)


def test_a_stale_version_is_hidden_and_a_second_install_call_can_unhide_it(
    fp: Any, target: Path
) -> None:
    write_dist(str(target), "toy-dist", "1.0", TOY)
    fp.register(
        [*PIP, fp.any()],
        callback=installs("toy-dist", "2.0", {"toymod/__init__.py": "VERSION = '2.0'\n"}),
    )
    finder = lazy_import_hook.install({"toymod": "toy-dist==2.0"}, target=target, installer="pip")
    assert finder.hidden == {"toymod"}
    lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, installer="pip")
    import toymod

    assert toymod.VERSION == "1.0"  # matches the pin again: served, nothing installed
    assert fp.call_count([*PIP, fp.any()]) == 0
    del sys.modules["toymod"]
    lazy_import_hook.install({"toymod": "toy-dist==2.0"}, target=target, installer="pip")
    import toymod

    assert toymod.VERSION == "2.0"  # the stale 1.0 was never served
    assert sorted(p.name for p in target.glob("*.dist-info")) == ["toy_dist-2.0.dist-info"]
