"""Background warm-up, unit tier: `prefetch()` with fake installers
(pytest-subprocess) in this process. Real installers, threads, a second
process, fork and exit: test_prefetch_real.py."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest
from _fakes import PIP, installs, write_dist

import lazy_import_hook
from lazy_import_hook import LazyInstallError, _prefetch

if TYPE_CHECKING:
    from collections.abc import Iterator

TOY = {"toymod/__init__.py": "VERSION = '1.0'\n"}
OTHER = {"othermod/__init__.py": "X = 2\n"}
ALLOWLIST = {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"}


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """Every test starts and ends with no worker thread: it ends when idle."""
    idle()
    yield
    idle()


def idle() -> None:
    worker = _prefetch._WARMUP.worker
    if worker is not None:
        worker.join(60)
    assert _prefetch._WARMUP.worker is None


def prefetching_toymod(
    fp: Any, target: Path, *, fails: bool = False
) -> tuple[Future[dict[str, str]], threading.Event]:
    """install() and prefetch("toymod", wait=False), whose fake installer
    runs now and waits for the event returned before it installs (or fails)."""
    started, go = threading.Event(), threading.Event()

    def run(process: Any) -> None:
        started.set()
        assert go.wait(60)
        if not fails:
            installs("toy-dist", "1.0", TOY)(process)

    fp.register([*PIP, fp.any()], callback=run, returncode=1 if fails else 0)
    lazy_import_hook.install(ALLOWLIST, target=target, installer="pip")
    future = lazy_import_hook.prefetch("toymod", wait=False)
    assert started.wait(60)
    return future, go


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Polls a state the test cannot be told of (no clock decides the outcome)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def waits_in(thread: threading.Thread, function: str) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def importing(name: str) -> tuple[threading.Thread, dict[str, object]]:
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["module"] = importlib.import_module(name)
        except BaseException as e:  # asserted by the test
            box["error"] = e

    thread = threading.Thread(target=work)
    thread.start()
    return thread, box


def audit(target: Path) -> list[dict[str, object]]:
    path = target / ".lazy-import-hook" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prefetch_says_per_name_what_happened(
    fp: Any, target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    write_dist(str(target), "other-dist", "1.0", OTHER)
    allowlist = {**ALLOWLIST, "winmod": "win-dist==1.0; sys_platform == 'no-such-platform'"}
    lazy_import_hook.install(allowlist, target=target, installer="pip")
    result = lazy_import_hook.prefetch("toymod", "othermod", "winmod")
    assert result == {"toymod": "installed", "othermod": "present", "winmod": "not-for-this-platform"}
    assert fp.call_count([*PIP, fp.any()]) == 1
    import toymod

    assert toymod.VERSION == "1.0"
    (line,) = audit(target)
    assert (line["status"], line["via"], line["triggered_by"]) == (0, "prefetch", "test_prefetch")
    err = capsys.readouterr().err
    assert "installing toy-dist==1.0 for prefetch('toymod') (called by test_prefetch) with pip" in err


def test_no_names_means_the_whole_allowlist_and_a_repeat_finds_them_present(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    fp.register([*PIP, fp.any()], callback=installs("other-dist", "1.0", OTHER))
    lazy_import_hook.install(ALLOWLIST, target=target, installer="pip")
    assert lazy_import_hook.prefetch() == {"toymod": "installed", "othermod": "installed"}
    future = lazy_import_hook.prefetch(wait=False)
    assert future.done() and future.result() == {"toymod": "present", "othermod": "present"}
    assert fp.call_count([*PIP, fp.any()]) == 2


def test_a_dotted_name_is_prefetched_without_importing_its_parent(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], callback=installs("ns-b", "1.0", {"nsroot/b/__init__.py": "B = 1\n"}))
    lazy_import_hook.install(
        {"nsroot.a": "ns-a==1.0", "nsroot.b": "ns-b==1.0"}, target=target, installer="pip"
    )
    assert lazy_import_hook.prefetch("nsroot.b") == {"nsroot.b": "installed"}
    assert "nsroot" not in sys.modules
    assert lazy_import_hook.prefetch("nsroot.b") == {"nsroot.b": "present"}
    import nsroot.b

    assert nsroot.b.B == 1
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_wait_false_returns_a_running_future_at_once(fp: Any, target: Path) -> None:
    future, go = prefetching_toymod(fp, target)
    assert isinstance(future, Future)
    assert future.running() and not future.done()
    assert not future.cancel()  # the install goes on: an import may be waiting for it
    go.set()
    assert future.result(60) == {"toymod": "installed"}


def test_names_not_on_the_allowlist_are_an_immediate_error_naming_them(fp: Any, target: Path) -> None:
    lazy_import_hook.install(ALLOWLIST, target=target, installer="pip")
    with pytest.raises(
        ValueError, match=r"not on the allowlist: nope, json \(allow-listed: toymod, othermod\)"
    ):
        lazy_import_hook.prefetch("toymod", "nope", "json", wait=False)
    with pytest.raises(TypeError, match=r"prefetch\('a', 'b'\); got \['toymod'\]"):
        lazy_import_hook.prefetch(["toymod"])  # type: ignore[call-overload]
    assert fp.call_count([*PIP, fp.any()]) == 0
    assert _prefetch._WARMUP.worker is None


def test_prefetch_before_install_says_so() -> None:
    lazy_import_hook.uninstall()
    with pytest.raises(RuntimeError, match=r"prefetch\(\) needs install\(\) to have run first"):
        lazy_import_hook.prefetch("toymod")


def test_a_failure_is_the_error_the_import_raises_too(fp: Any, target: Path) -> None:
    fp.register(
        [*PIP, fp.any()], stdout="ERROR: No matching distribution found for toy-dist==1.0\n", returncode=1
    )
    fp.register([*PIP, fp.any()], callback=installs("other-dist", "1.0", OTHER))
    lazy_import_hook.install(ALLOWLIST, target=target, installer="pip")
    future = lazy_import_hook.prefetch("toymod", "othermod", wait=False)
    error = future.exception(60)
    assert isinstance(error, LazyInstallError)
    assert (error.reason, error.name) == ("installer-failed", "toymod")
    assert "No matching distribution found for toy-dist==1.0" in str(error)
    import othermod  # the other name was installed all the same

    assert othermod.X == 2
    with pytest.raises(LazyInstallError) as info:
        import toymod  # noqa: F401
    assert info.value is error
    with pytest.raises(LazyInstallError) as again:
        lazy_import_hook.prefetch("toymod")
    assert again.value is error
    assert fp.call_count([*PIP, fp.any()]) == 2


def test_disabled_installs_fail_missing_names_only(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dist(str(target), "other-dist", "1.0", OTHER)
    monkeypatch.setenv("LAZY_IMPORT_HOOK_DISABLE", "1")
    lazy_import_hook.install(ALLOWLIST, target=target, installer="pip")
    assert lazy_import_hook.prefetch("othermod") == {"othermod": "present"}
    with pytest.raises(LazyInstallError) as info:
        lazy_import_hook.prefetch("othermod", "toymod")
    assert info.value.reason == "disabled" and info.value.name == "toymod"
    assert fp.call_count([*PIP, fp.any()]) == 0


def test_names_being_prefetched_share_one_install(fp: Any, target: Path) -> None:
    first, go = prefetching_toymod(fp, target)
    fp.register([*PIP, fp.any()], callback=installs("other-dist", "1.0", OTHER))
    second = lazy_import_hook.prefetch("othermod", "toymod", wait=False)
    third = lazy_import_hook.prefetch("toymod", wait=False)
    go.set()
    assert first.result(60) == third.result(60) == {"toymod": "installed"}
    assert second.result(60) == {"othermod": "installed", "toymod": "installed"}
    assert fp.call_count([*PIP, fp.any()]) == 2
    assert [line["import_name"] for line in audit(target)] == ["toymod", "othermod"]


@pytest.mark.parametrize("outcome", ["installed", "failed"])
def test_an_import_during_a_prefetch_waits_for_it(outcome: str, fp: Any, target: Path) -> None:
    future, go = prefetching_toymod(fp, target, fails=outcome == "failed")
    thread, box = importing("toymod")
    try:
        wait_until(lambda: waits_in(thread, "wait_for"), "the import waits for the prefetch")
    finally:
        go.set()
    thread.join(60)
    if outcome == "installed":
        assert getattr(box["module"], "VERSION", None) == "1.0"
        assert future.result(60) == {"toymod": "installed"}
    else:
        assert box["error"] is future.exception(60)  # the prefetch's own error, not a second attempt
    assert fp.call_count([*PIP, fp.any()]) == 1


def test_a_callback_may_import_a_queued_name_without_waiting_for_itself(fp: Any, target: Path) -> None:
    first, go = prefetching_toymod(fp, target)
    fp.register([*PIP, fp.any()], callback=installs("other-dist", "1.0", OTHER))
    seen: list[object] = []

    def on_done(_: object) -> None:  # runs on the worker thread, while othermod is queued
        seen.append(importlib.import_module("othermod").X)
        try:
            lazy_import_hook.prefetch("othermod")
        except RuntimeError as e:
            seen.append(str(e))

    first.add_done_callback(on_done)
    second = lazy_import_hook.prefetch("othermod", wait=False)
    go.set()
    assert second.result(60) == {"othermod": "present"}  # the callback's import installed it
    assert seen == [2, "prefetch(wait=True) in a prefetch's callback waits for itself; use wait=False"]
    assert fp.call_count([*PIP, fp.any()]) == 2


def test_a_probe_of_a_name_being_prefetched_does_not_wait(fp: Any, target: Path) -> None:
    future, go = prefetching_toymod(fp, target)
    assert importlib.util.find_spec("toymod") is not None  # answered at once
    go.set()
    assert future.result(60) == {"toymod": "installed"}


# -- found in review: each failed before its fix ------------------------------


def test_a_done_callback_that_exits_does_not_end_the_queue(fp: Any, target: Path) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: No matching distribution\n", returncode=1)
    fp.register([*PIP, fp.any()], callback=installs("other-dist", "1.0", OTHER))
    lazy_import_hook.install(ALLOWLIST, target=target, installer="pip")
    first = lazy_import_hook.prefetch("toymod", wait=False)
    first.add_done_callback(lambda f: sys.exit("warm-up failed") if f.exception() else None)
    assert isinstance(first.exception(60), LazyInstallError)
    idle()  # the worker ended cleanly, keeping nothing
    assert lazy_import_hook.prefetch("othermod") == {"othermod": "installed"}
    import othermod

    assert othermod.X == 2


def test_an_import_of_a_queued_name_installs_it_itself(fp: Any, target: Path, tmp_path: Path) -> None:
    """A done-callback on the worker imports a module whose import, in
    another thread, needs a name queued behind the one running: the import
    must not wait for the worker, which waits for that module's lock."""
    first, go = prefetching_toymod(fp, target)
    fp.register([*PIP, fp.any()], callback=installs("other-dist", "1.0", OTHER))
    queued = lazy_import_hook.prefetch("othermod", wait=False)
    on_path = tmp_path / "lib"
    on_path.mkdir()
    (on_path / "appmod.py").write_text("import othermod\n")
    sys.path.insert(0, str(on_path))
    first.add_done_callback(lambda f: importlib.import_module("appmod"))
    thread, box = importing("appmod")
    wait_until(lambda: waits_in(thread, "wait_for"), "the import of othermod reached its prefetch")
    go.set()  # toymod's callback now waits for appmod's module lock, which that thread holds
    thread.join(60)
    assert not thread.is_alive() and "error" not in box
    assert queued.result(60) == {"othermod": "installed"} and first.result(60) == {"toymod": "installed"}
    assert fp.call_count([*PIP, fp.any()]) == 2


def test_a_prefetch_for_a_new_install_is_not_the_old_finders(fp: Any, target: Path) -> None:
    old, go = prefetching_toymod(fp, target)
    old_queued = lazy_import_hook.prefetch("othermod", wait=False)
    lazy_import_hook.install({"toymod": "toy-dist==2.0"}, target=target, installer="pip")
    toy_2 = {"toymod/__init__.py": "VERSION = '2.0'\n"}
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "2.0", toy_2))
    new = lazy_import_hook.prefetch("toymod", wait=False)
    assert new is not old
    go.set()
    assert new.result(60) == {"toymod": "installed"}
    import toymod

    assert toymod.VERSION == "2.0"
    error = old_queued.exception(60)  # queued by the hook install() replaced: never run
    assert isinstance(error, LazyInstallError) and error.reason == "interrupted"
    assert fp.call_count([*PIP, fp.any()]) == 2


def test_a_dotted_name_found_outside_the_target_is_present(fp: Any, target: Path, tmp_path: Path) -> None:
    core = tmp_path / "core"
    (core / "nsx" / "sub").mkdir(parents=True)
    (core / "nsx" / "__init__.py").write_text("")
    (core / "nsx" / "sub" / "__init__.py").write_text("WHERE = 'core'\n")
    sys.path.insert(0, str(core))
    lazy_import_hook.install({"nsx.sub": "nsx-sub==1.0"}, target=target, installer="pip")
    assert lazy_import_hook.prefetch("nsx.sub") == {"nsx.sub": "present"}
    assert fp.call_count([*PIP, fp.any()]) == 0


@pytest.mark.parametrize("retry_after", [60.0, 0.05])
def test_a_failed_prefetch_of_a_dotted_name_is_the_error_of_its_parents_import(
    retry_after: float, fp: Any, target: Path
) -> None:
    fp.register([*PIP, fp.any()], stdout="ERROR: No matching distribution\n", returncode=1)
    fp.register([*PIP, fp.any()], stdout="ERROR: No matching distribution\n", returncode=1)
    lazy_import_hook.install({"nsroot.b": "ns-b==1.0"}, target=target, installer="pip",
                             retry_after=retry_after)  # fmt: skip
    error = lazy_import_hook.prefetch("nsroot.b", wait=False).exception(60)
    time.sleep(0.1)  # with 0.05: the failure record on disk no longer holds the import back
    with pytest.raises(LazyInstallError) as info:
        import nsroot.b  # noqa: F401
    assert info.value is error and fp.call_count([*PIP, fp.any()]) == 1


def test_confirm_asks_on_the_thread_that_calls_prefetch(
    fp: Any, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY))
    asked: list[str] = []

    def answer(prompt: str) -> str:
        asked.append(threading.current_thread().name)
        return "n" if "other-dist" in prompt else "y"

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", answer)
    lazy_import_hook.install(ALLOWLIST, target=target, installer="pip", confirm=True)
    warm = lazy_import_hook.prefetch("toymod", "othermod", wait=False)
    error = warm.exception(60)
    assert isinstance(error, LazyInstallError) and "declined" in str(error) and error.name == "othermod"
    assert asked == [threading.current_thread().name] * 2
    assert fp.call_count([*PIP, fp.any()]) == 1  # toymod only
