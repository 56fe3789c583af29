"""One install of one allowlist entry: check, lock, look again, run, commit, record.

Used by the finder on a miss and by `lazy-import-hook prefetch`. Every
failure is raised as a `LazyInstallError` that ends with the manual command.
"""

from __future__ import annotations

import os
import sys
import time

from . import _audit, _installer, _lock, _staging, _target
from ._errors import (
    InstallerFailedError,
    InstallsDisabledError,
    LazyInstallError,
    ModuleStillMissingError,
    TargetRefusedError,
)
from ._finder import hide
from ._plan import write_cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._finder import LazyFinder
    from ._plan import Entry, Plan

FAILED = "failed"  # folder in the target's meta folder: one file per failed import name


def notice(message: str) -> None:
    """One line on stderr, and the same through logging."""
    import logging

    print(f"lazy-import-hook: {message}", file=sys.stderr, flush=True)
    logging.getLogger("lazy_import_hook").info(message)


def satisfied(target: str, name: str, entry: Entry) -> bool:
    """The module is on disk in the target and every pinned version matches.

    The cheap half first: on a cold install the module is not there, and no
    version (so no `packaging`) needs to be looked at."""
    if not _target.on_disk(target, name):
        return False
    from ._allowlist import installed_matches

    versions = _target.installed_versions(target)
    return all(
        dist in versions and installed_matches(req, versions[dist])
        for req, dist in zip(entry.requirements, entry.dists)
    )


def install_entry(
    finder: LazyFinder | None,
    name: str,
    entry: Entry,
    plan: Plan | None = None,
    *,
    ignore_backoff: bool = False,
) -> bool:
    """Make `entry` present in the target. Returns whether an installer ran."""
    plan = plan or (finder.plan if finder else None)
    assert plan is not None
    target = plan.target
    only_binary = not (plan.allow_sdist or entry.allow_sdist)
    try:
        kind, uv = _installer.choose(plan.installer)
    except FileNotFoundError as e:
        raise InstallerFailedError(
            f"cannot install {', '.join(entry.requirements)} for 'import {name}': {e}",
            name=name,
            command=_installer.manual_command("pip", target, entry, only_binary),
        ) from e
    manual = _installer.manual_command(kind, target, entry, only_binary)
    if not plan.enabled:
        from ._allowlist import stale_versions

        stale = stale_versions(entry, _target.installed_versions(target)) if os.path.isdir(target) else []
        raise InstallsDisabledError(
            f"'import {name}' needs {', '.join(entry.requirements)}, but installs are "
            "disabled (LAZY_IMPORT_HOOK_DISABLE=1, enabled = false, or install(enabled=False))"
            + (f"; the target holds {', '.join(stale)}, which does not match" if stale else ""),
            name=name,
            command=manual,
        )
    # The library-folder check needs sysconfig; install() did it and kept the answer.
    found = _target.problem(target, library=False)
    if plan.problem.startswith("unsafe"):
        found = ("unsafe", plan.problem.partition("\t")[2])
    if found:
        raise TargetRefusedError(
            f"cannot install {', '.join(entry.requirements)} for 'import {name}': {found[1]}",
            name=name,
            command=manual,
        )
    since = finder.retry_failures_after if finder else 0.0
    if not ignore_backoff:
        _check_backoff(target, name, entry, plan.retry_after, manual, since)
    if plan.confirm and not _confirmed(name, entry, target):
        raise InstallsDisabledError(
            f"installing {', '.join(entry.requirements)} for 'import {name}' was declined",
            name=name,
            command=manual,
        )
    with _lock.lock(target):
        stamp = _target.read_stamp(target)
        if stamp is None and not _target.needs_wipe(target):
            _target.write_stamp(target)  # a target first created by this install
        elif _target.needs_wipe(target) or stamp != _target.abi_tag():
            # Another interpreter re-stamped (or is wiping) the target since we started.
            raise TargetRefusedError(
                f"cannot install {', '.join(entry.requirements)} for 'import {name}': "
                f"{target} now belongs to another Python ({stamp}); "
                "restart the application",
                name=name,
                command=manual,
            )
        _staging.clean_leftovers(target)
        if satisfied(target, name, entry):
            return False  # another process installed it while we waited
        if not ignore_backoff:  # a process that waited for the lock may find a fresh failure
            _check_backoff(target, name, entry, plan.retry_after, manual, since)
        ran = _run(plan, name, entry, kind, uv, manual, only_binary)
        if finder is not None:
            finder.unhide(name)
        refresh_cache(plan, finder)
    return ran


def _constraints_file(plan: Plan, entry: Entry, path: str) -> None:
    """Write the --constraint file: the core environment's versions plus the
    allowlist's own pins (validated, in the plan). Reading the core versions
    needs `packaging` (~12 ms); they are cached in the target, keyed by the
    core folders' mtimes, so a later install waits for the installer alone."""
    target = plan.target
    core_dirs = [p for p in sys.path if p and p != target and p not in plan.pth_paths]
    stamps = []
    for folder in core_dirs:
        try:
            stamps.append((folder, os.stat(folder).st_mtime_ns))
        except OSError:
            stamps.append((folder, -1))
    key = "# lazy-import-hook core versions " + repr((sys.executable, stamps))
    cache = _target.meta(target, "core-constraints.txt")
    core: list[str] | None = None
    try:
        with open(cache, encoding="utf-8") as f:
            # Only our own file, and only lines a constraint may hold: pip obeys
            # option lines in a constraints file.
            if not _target.untrusted(os.fstat(f.fileno())) and f.readline().rstrip("\n") == key:
                lines = f.read().split()
                core = lines if all(map(_pinned_line, lines)) else None
    except (OSError, UnicodeDecodeError):
        pass
    if core is None:
        core = _installer.core_constraints([target, *plan.pth_paths], ())
        tmp = f"{cache}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join([key, *core]) + "\n")
        os.replace(tmp, cache)
    core = [line for line in core if line.partition("==")[0] not in entry.dists]
    pins = _installer.allowlist_constraints(plan.entries.values(), entry, core)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(core + pins) + "\n")


def _pinned_line(line: str) -> bool:
    """`canonical-name==version` and nothing else."""
    name, sep, version = line.partition("==")
    return (
        bool(sep and name and version)
        and name[0].isalnum()
        and not name.strip("abcdefghijklmnopqrstuvwxyz0123456789-")
        and all(c.isalnum() or c in ".+!_" for c in version)
    )


def _while_installing(kind: str, uv: str | None, message: str) -> Callable[[], str]:
    """Runs once the installer has started: announce it, and load what the
    commit and the audit need while the user waits for the installer anyway.
    Returns a callable giving the installer's version (asked in parallel)."""
    probe = None
    if kind == "uv" and uv:
        import subprocess

        probe = subprocess.Popen(
            [uv, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    notice(message)
    import csv  # noqa: F401  (the commit reads RECORD files)
    import json  # noqa: F401  (_audit)

    # packaging: for _target.scan and _staging.commit after the run.
    import packaging.requirements
    import packaging.utils  # noqa: F401

    def version() -> str:
        if probe is not None:
            try:
                out, _ = probe.communicate(timeout=10)
                return out.strip() or kind
            except Exception:
                probe.kill()
                return kind
        return _pip_version()

    return version


def _run(
    plan: Plan, name: str, entry: Entry, kind: str, uv: str | None, manual: str, only_binary: bool
) -> bool:
    target = plan.target
    staging = _staging.new_staging(target)
    constraints = f"{staging}.constraints.txt"
    _constraints_file(plan, entry, constraints)
    requirements = f"{staging}.requirements.txt" if entry.hashes else None
    if requirements:
        _installer.write_requirements(requirements, entry)
    cmd = _installer.build_command(
        kind,
        uv,
        target=staging,
        specs=entry.requirements,
        constraints=constraints,
        requirements_file=requirements,
        require_hashes=bool(entry.hashes),
        only_binary=only_binary,
        compile_bytecode=not sys.dont_write_bytecode,
    )
    what = ", ".join(entry.requirements)
    started = time.monotonic()
    installer_version: list[Callable[[], str]] = []

    def on_start() -> None:
        message = f"installing {what} for 'import {name}' with {kind} into {target} ..."
        installer_version.append(_while_installing(kind, uv, message))

    def stream(line: str) -> None:
        sys.stderr.write(f"  {kind}: {line}")

    try:
        code, output = _installer.run(
            cmd,
            timeout=plan.timeout,
            stream=stream if plan.verbose else None,
            cwd=os.path.dirname(staging),
            on_start=on_start,
        )
    except OSError as e:
        code, output = -1, f"{type(e).__name__}: {e}"
    except BaseException:
        _cleanup(staging, constraints, requirements)
        raise
    elapsed = time.monotonic() - started
    fields: dict[str, object] = {
        "import_name": name,
        "requirements": list(entry.requirements),
        "installer": kind,
        "installer_version": installer_version[0]() if installer_version else kind,
        "duration_s": round(elapsed, 3),
        "triggered_by": _audit.triggering_module(),
    }
    if code != 0:
        _cleanup(staging, constraints, requirements)
        source_only = None
        if kind == "pip" and only_binary and code is not None and "from versions: none" in output:
            source_only = _installer.pip_source_only(output, plan.timeout, os.path.dirname(staging))
        error = _installer.failure(
            name, entry, code, output, manual, plan.timeout, only_binary, source_only
        )
        _audit.record(target, status="timeout" if code is None else code, **fields)
        _remember_failure(target, name, entry, error)
        notice(f"installing {what} failed after {elapsed:.1f} s ({error.reason})")
        raise error
    try:
        committed = _staging.commit(staging, target, name, entry.dists)
    finally:
        _cleanup(staging, constraints, requirements)
    _audit.record(target, status=0, committed=committed, **fields)
    _forget_failure(target, name)
    notice(f"installed {what} in {elapsed:.1f} s")
    return True


def _cleanup(staging: str, *files: str | None) -> None:
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
    for path in files:
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass


def refresh_cache(plan: Plan, finder: LazyFinder | None) -> None:
    """Re-scan the target and rewrite the startup cache, so other starts stay warm."""
    mtime = _target.mtime(plan.target)
    _target.scan(plan)
    if finder is not None:
        # A dependency this install brought may be another entry's module at
        # a version its pin does not allow: hide it too, never serve it.
        hide(plan.target, plan.hidden, finder.hidden)
        if finder.cache_path:
            write_cache(finder.cache_path, plan, finder.cache_key, mtime)


def still_missing(target: str, name: str, entry: Entry) -> LazyInstallError:
    versions = _target.installed_versions(target)
    tops = sorted(
        n
        for n in os.listdir(target)
        if not n.startswith(".") and not n.endswith((".dist-info", ".pth")) and n != "bin"
    ) if os.path.isdir(target) else []  # fmt: skip
    have = ", ".join(f"{d} {versions[d]}" for d in entry.dists if d in versions) or "nothing"
    return ModuleStillMissingError(
        f"{', '.join(entry.requirements)} was installed ({have} in {target}) but "
        f"'import {name}' still finds no module: the allowlist probably maps the wrong "
        f"import name to it. Top-level modules in the target: {', '.join(tops) or 'none'}",
        name=name,
        command=_installer.manual_command("pip", target, entry, True),
    )


def _pip_version() -> str:
    """pip's version from its own source, without importing pip or importlib.metadata."""
    import importlib.util

    spec = importlib.util.find_spec("pip")
    try:
        if spec is not None and spec.origin:
            with open(spec.origin, encoding="utf-8") as f:
                for line in f:
                    if line.startswith("__version__"):
                        return "pip " + line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return "pip"


def _failure_path(target: str, name: str) -> str:
    return _target.meta(target, FAILED, name)


def _remember_failure(target: str, name: str, entry: Entry, error: LazyInstallError) -> None:
    """So other processes do not hammer a failing index; see `retry-after`."""
    try:
        os.makedirs(_target.meta(target, FAILED), exist_ok=True)
        with open(_failure_path(target, name), "w", encoding="utf-8") as f:
            f.write("\x1f".join(entry.requirements) + "\n" + str(error))
    except OSError:
        pass


def _forget_failure(target: str, name: str) -> None:
    try:
        os.unlink(_failure_path(target, name))
    except OSError:
        pass


def _check_backoff(
    target: str, name: str, entry: Entry, retry_after: float, manual: str, since: float
) -> None:
    path = _failure_path(target, name)
    try:
        when = os.stat(path).st_mtime
        if when <= since:
            return
        age = time.time() - when
        with open(path, encoding="utf-8") as f:
            reqs, _, message = f.read().partition("\n")
    except OSError:
        return
    if reqs.split("\x1f") != list(entry.requirements) or age >= retry_after:
        return
    raise InstallerFailedError(
        f"installing {', '.join(entry.requirements)} for 'import {name}' failed {age:.0f} s "
        f"ago (in this or another process); not retrying until {retry_after:g} s have passed "
        "(setting 'retry-after'), or run: lazy-import-hook prefetch " + name
        + "\nThe earlier failure was:\n" + message,
        name=name,
        command=manual,
    )


def _confirmed(name: str, entry: Entry, target: str) -> bool:
    """Ask only on a terminal; anything else follows the configuration without blocking."""
    try:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        return True
    try:
        answer = input(
            f"lazy-import-hook: 'import {name}' needs {', '.join(entry.requirements)}; "
            f"install it into {target}? [Y/n] "
        )
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")
