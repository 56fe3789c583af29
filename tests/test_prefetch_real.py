"""Background warm-up with the real pip and uv, each scenario in fresh
interpreters: an import in another thread, another process, a fork() and the
interpreter's exit, all while a prefetch is held mid-download by a gated
find-links page. Every step waits for an event (a request, a line), never
for a clock."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _offline import installer_env
from _slow_index import serve_find_links
from test_real_installers import INSTALLERS, audit_lines, hook

if TYPE_CHECKING:
    from collections.abc import Iterator

ALLOWLIST = {"othermod": "other-dist==1.0", "toymod": "toy-dist==1.0"}
WHEEL = "GET /other_dist-1.0-py3-none-any.whl"

# The waits below are bounds for a hang, far above any run; no outcome depends on them.
BOUND = 120


class Child:
    """A Python child whose output the test reads line by line as it comes."""

    def __init__(self, code: str, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: dict[str, queue.Queue[str]] = {"out": queue.Queue(), "err": queue.Queue()}
        self.seen: dict[str, list[str]] = {"out": [], "err": []}
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines[name].put(line.rstrip("\n"))
        self.lines[name].put("")  # end of stream

    def expect(self, text: str, stream: str = "out") -> str:
        """The first line (from here on) that contains `text`."""
        while True:
            try:
                line = self.lines[stream].get(timeout=BOUND)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r}; so far: {self._so_far()}") from None
            if line == "" and self.proc.poll() is not None and self.lines[stream].empty():
                raise AssertionError(f"ended without {text!r}: {self._so_far()}, exit {self.proc.returncode}")
            self.seen[stream].append(line)
            if text in line:
                return line

    def _so_far(self) -> dict[str, list[str]]:
        """What the child printed so far, on both streams, without waiting."""
        for stream, lines in self.lines.items():
            while not lines.empty():
                self.seen[stream].append(lines.get())
        return self.seen

    def tell(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self) -> tuple[str, str]:
        """Wait for the end; everything it printed."""
        assert self.proc.wait(BOUND) == 0, self.rest()
        return self.rest()

    def rest(self) -> tuple[str, str]:
        self.proc.wait(BOUND)
        for stream in ("out", "err"):
            while True:
                line = self.lines[stream].get(timeout=BOUND)
                if line == "" and self.lines[stream].empty():
                    break
                self.seen[stream].append(line)
        return "\n".join(self.seen["out"]), "\n".join(self.seen["err"])


class Held:
    """Children whose installer stalls half-way through the download of
    other-dist until `release()`; the request log shows when it is there."""

    def __init__(self, env: dict[str, str], log: list[str], gate: threading.Event, target: Path, cwd: Path):
        self.env, self.log, self.gate, self.target, self.cwd = env, log, gate, target, cwd

    def start(self, installer: str, code: str, *, before: str = "") -> Child:
        """`code` after install() with ALLOWLIST (`before`: before it)."""
        return Child(before + hook(self.target, installer, ALLOWLIST) + code, self.env, self.cwd)

    def downloading(self, child: Child) -> None:
        """Until the child's installer is inside the stalled download."""
        deadline = time.monotonic() + BOUND
        while WHEEL not in self.log:
            assert child.proc.poll() is None, child.rest()
            assert time.monotonic() < deadline, self.log
            time.sleep(0.02)

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def held(wheelhouse: Path, target: Path, tmp_path: Path) -> Iterator[Held]:
    log: list[str] = []
    gate = threading.Event()
    with serve_find_links(
        wheelhouse, delay_seconds=BOUND, delay_for=["other_dist"], request_log=log, gate=gate
    ) as url:
        env = installer_env(wheelhouse, tmp_path, offline=False, PIP_FIND_LINKS=url, UV_FIND_LINKS=url)
        yield Held(env, log, gate, target, tmp_path)
        gate.set()


def installs(target: Path) -> list[dict[str, object]]:
    return [line for line in audit_lines(target) if line["status"] == 0]


WAITING_THREAD = """
def blocked_in(thread, function):
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False
"""


@pytest.mark.parametrize("installer", INSTALLERS)
def test_an_import_in_another_thread_waits_for_the_prefetch(installer: str, held: Held, target: Path) -> None:
    child = held.start(
        installer,
        WAITING_THREAD
        + """
import importlib, threading, time
warm = lazy_import_hook.prefetch("othermod", wait=False)
sys.stdin.readline()  # the installer is mid-download
box = {}
thread = threading.Thread(target=lambda: box.update(module=importlib.import_module("othermod")))
thread.start()
while thread.is_alive() and not blocked_in(thread, "wait_for"):
    time.sleep(0.01)
print("import waits for the prefetch", flush=True)
thread.join()
print(json.dumps([warm.result(), box["module"].VERSION]))
""",
    )
    held.downloading(child)
    child.tell()
    child.expect("import waits for the prefetch")
    held.release()
    out, err = child.finish()
    assert out.splitlines()[-1] == '[{"othermod": "installed"}, "1.0"]'
    (line,) = installs(target)  # one installer run
    assert (line["via"], line["triggered_by"], line["import_name"]) == ("prefetch", "__main__", "othermod")
    assert err.count("lazy-import-hook: installing other-dist==1.0 for prefetch('othermod')") == 1


@pytest.mark.parametrize("installer", INSTALLERS)
def test_another_process_importing_waits_for_the_prefetch_on_the_target_lock(
    installer: str, held: Held, target: Path
) -> None:
    warming = held.start(installer, "print(json.dumps(lazy_import_hook.prefetch('othermod')))\n")
    held.downloading(warming)
    importer = held.start(installer, "import othermod\nprint(othermod.VERSION)\n")
    importer.expect(f"waiting for process {warming.proc.pid}, installing other-dist==1.0 for prefetch", "err")
    held.release()
    assert warming.finish()[0] == '{"othermod": "installed"}'
    out, err = importer.finish()
    assert out == "1.0"
    assert "lazy-import-hook: installing" not in err  # it only waited
    assert [line["pid"] for line in installs(target)] == [warming.proc.pid]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX only")
@pytest.mark.parametrize("installer", INSTALLERS)
def test_ctrl_c_stops_the_wait_not_the_install(installer: str, held: Held, target: Path) -> None:
    child = held.start(
        installer,
        """
try:
    lazy_import_hook.prefetch("othermod")
except KeyboardInterrupt:
    print("the wait was interrupted", flush=True)
import othermod  # waits for the install that went on
print(othermod.VERSION, flush=True)
""",
        # Ctrl-C as a program started at a terminal gets it: a background job
        # of a script (as CI's lanes are) starts with SIGINT ignored, and so
        # would this child.
        before="import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n",
    )
    held.downloading(child)  # its main thread can only be waiting in prefetch() now
    child.proc.send_signal(signal.SIGINT)
    child.expect("the wait was interrupted")
    held.release()
    assert child.finish()[0].splitlines()[-1] == "1.0"
    assert [line["via"] for line in installs(target)] == ["prefetch"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
@pytest.mark.parametrize("installer", INSTALLERS)
def test_fork_while_a_prefetch_runs(installer: str, held: Held, target: Path) -> None:
    child = held.start(
        installer,
        WAITING_THREAD
        + """
import os, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: what this test is about
warm = lazy_import_hook.prefetch("othermod", wait=False)
sys.stdin.readline()
# Fork while the worker reads the installer's output, not while it imports a
# module: a module lock held by a thread at fork() stays held in the child.
worker = next(t for t in threading.enumerate() if t.name == "lazy-import-hook prefetch")
while not blocked_in(worker, "_collect"):
    time.sleep(0.01)
pid = os.fork()
if pid == 0:
    try:
        warm.result()
    except lazy_import_hook.LazyInstallError as e:
        print("forked child's future:", e.reason, e, flush=True)
    import othermod  # no worker here: waits for the parent's install on the target lock
    print("forked child imported", othermod.VERSION, flush=True)
    os._exit(0)
print("parent:", json.dumps(warm.result()), flush=True)
_, status = os.waitpid(pid, 0)
print("forked child exit status", status, flush=True)
""",
    )
    held.downloading(child)
    child.tell()
    line = child.expect("forked child's future:")
    forked = f"this process was forked from process {child.proc.pid} while it ran there"
    assert f"interrupted prefetch('othermod') did not finish: {forked}" in line
    child.expect(f"waiting for process {child.proc.pid}", "err")
    held.release()
    out, _ = child.finish()
    assert 'parent: {"othermod": "installed"}' in out
    assert "forked child imported 1.0" in out and "forked child exit status 0" in out
    assert [line["pid"] for line in installs(target)] == [child.proc.pid]


@pytest.mark.parametrize("installer", INSTALLERS)
def test_exit_during_a_prefetch_abandons_it_at_once_and_the_next_run_installs_it(
    installer: str, held: Held, wheelhouse: Path, target: Path, tmp_path: Path
) -> None:
    child = held.start(
        installer,
        """
futures.append(lazy_import_hook.prefetch("othermod", wait=False))
futures.append(lazy_import_hook.prefetch("toymod", wait=False))  # queued behind it
sys.stdin.readline()
""",  # and the main thread ends, mid-download
        before="""
import atexit
futures = []
# Registered before the hook's own handler, so it runs after it.
atexit.register(lambda: print("at exit:", [f.exception().reason for f in futures], flush=True))
""",
    )
    held.downloading(child)
    child.tell()
    out, err = child.finish()  # the gate is still shut: the exit did not wait for the install
    assert "at exit: ['interrupted', 'interrupted']" in out
    assert "exiting while prefetch('othermod') installs other-dist==1.0: the install is abandoned" in err
    if sys.platform.startswith("linux"):
        assert_no_installer_left(target)
    held.release()
    assert installs(target) == []
    fast = installer_env(wheelhouse, tmp_path)
    rerun = Child(
        hook(target, installer, ALLOWLIST)
        + "import othermod, toymod\nprint(othermod.VERSION, toymod.VERSION)\n",
        fast,
        tmp_path,
    )
    assert rerun.finish()[0] == "1.0 1.0"
    assert list((target / ".lazy-import-hook" / "staging").iterdir()) == []


def assert_no_installer_left(target: Path) -> None:
    """No process still works in the target (the installer died with its parent)."""
    deadline = time.monotonic() + BOUND

    def alive() -> list[str]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(target) in cmdline:
                found.append(cmdline)
        return found

    while alive():
        assert time.monotonic() < deadline, alive()
        time.sleep(0.05)
