"""One install of one allowlist entry: check, lock, look again, run, commit, record.

Used on an import and by `lazy-import-hook prefetch`. Every failure is raised
as a `LazyInstallError` that ends with the manual command. The caller does
its own bookkeeping afterwards (the finder unhides the module and rewrites
the startup cache).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from . import _audit, _environment, _failures, _lock, _staging, _target
from ._errors import (
    InstallerFailedError,
    InstallsDisabledError,
    LazyInstallError,
    ModuleStillMissingError,
    PinConflictError,
    TargetRefusedError,
)
from ._installer import Failure, InstallRequest, failure_error, run, write_requirements
from ._installers import choose

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import NoReturn

    from ._installer import Installer
    from ._plan import Entry, Plan


def notice(message: str) -> None:
    """One line on stderr, and the same through logging."""
    import logging

    print(f"lazy-import-hook: {message}", file=sys.stderr, flush=True)
    logging.getLogger("lazy_import_hook").info(message)


def satisfied(target: str, entry: Entry) -> bool:
    """The module is on disk in the target and every pinned version matches.

    The cheap half first: on a cold install the module is not there, and no
    version (so no `packaging`) needs to be looked at."""
    if not _target.on_disk(target, entry.import_name):
        return False
    from ._allowlist import installed_matches

    versions = _target.installed_versions(target)
    return all(
        dist in versions and installed_matches(req, versions[dist])
        for req, dist in zip(entry.requirements, entry.dists)
    )


def only_binary(plan: Plan, entry: Entry) -> bool:
    return not (plan.settings.allow_sdist or entry.allow_sdist)


def install_entry(plan: Plan, entry: Entry, *, since: float = 0.0, ignore_backoff: bool = False) -> bool:
    """Make `entry` present in the target. Returns whether an installer ran.

    `since`: failures recorded before this time are no reason to wait;
    `ignore_backoff`: run even after a recent failure (prefetch)."""
    installer = _choose(plan, entry)
    manual = installer.manual_command(
        plan.target, entry.requirements, hashed=bool(entry.hashes), only_binary=only_binary(plan, entry)
    )
    _check_allowed(plan, entry, manual)
    if not ignore_backoff:
        _failures.check(plan.target, entry, plan.settings.retry_after, manual, since)
    if plan.settings.confirm and not _confirmed(entry, plan.target):
        raise InstallsDisabledError(
            f"installing {entry.what} for 'import {entry.import_name}' was declined",
            name=entry.import_name,
            command=manual,
        )
    with _locked_target(plan.target, entry, manual):
        if satisfied(plan.target, entry):
            return False  # another process installed it while we waited
        _check_conflicts(plan, entry, manual)
        if not ignore_backoff:  # a process that waited for the lock may find a fresh failure
            _failures.check(plan.target, entry, plan.settings.retry_after, manual, since)
        _run(plan, entry, installer, manual)
    return True


@contextlib.contextmanager
def _locked_target(target: str, entry: Entry, manual: str) -> Iterator[None]:
    """The target locked, stamped for this Python and cleaned of crashed
    installs' leftovers; a target that cannot even be that (a read-only or
    virtual file system) is refused with what the system said."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_lock.lock(target))
            _check_stamp(target, entry, manual)
            _staging.clean_leftovers(target)
        except OSError as e:
            raise TargetRefusedError(
                f"cannot install {entry.what} for 'import {entry.import_name}': "
                f"{target} cannot be used: {e}",
                name=entry.import_name,
                command=manual,
            ) from e
        yield


def _check_conflicts(plan: Plan, entry: Entry, manual: str) -> None:
    """Never replace a version another live application pins: two
    applications with conflicting pins on one target would take turns
    reinstalling, each breaking the other."""
    from ._records import conflicts

    found = conflicts(plan, entry)
    if not found:
        return
    _audit.record(
        plan.target, status="pin-conflict", import_name=entry.import_name,
        requirements=list(entry.requirements), conflicts=found,
    )  # fmt: skip
    raise PinConflictError(
        f"'import {entry.import_name}' needs {entry.what}, but another application that uses "
        f"{plan.target} right now needs what is there: {'; '.join(found)}. Give each application "
        "its own target (setting 'target'), or make their pins agree; `lazy-import-hook status` "
        "lists the applications sharing this target",
        name=entry.import_name,
        command=manual,
    )


def _choose(plan: Plan, entry: Entry) -> Installer:
    try:
        return choose(plan.settings.installer)
    except FileNotFoundError as e:
        from ._pip import Pip

        manual = Pip(sys.executable).manual_command(
            plan.target, entry.requirements, hashed=bool(entry.hashes), only_binary=only_binary(plan, entry)
        )
        raise InstallerFailedError(
            f"cannot install {entry.what} for 'import {entry.import_name}': {e}",
            name=entry.import_name,
            command=manual,
        ) from e


def _check_allowed(plan: Plan, entry: Entry, manual: str) -> None:
    """Installs disabled, or a target that must not be written: raise."""
    name, target = entry.import_name, plan.target
    if not plan.settings.enabled:
        from ._allowlist import stale_versions

        stale = stale_versions(entry, _target.installed_versions(target)) if os.path.isdir(target) else []
        raise InstallsDisabledError(
            f"'import {name}' needs {entry.what}, but installs are "
            "disabled (LAZY_IMPORT_HOOK_DISABLE=1, enabled = false, or install(enabled=False))"
            + (f"; the target holds {', '.join(stale)}, which does not match" if stale else ""),
            name=name,
            command=manual,
        )
    # The library-folder check needs sysconfig; install() did it and kept the answer.
    found = plan.problem if plan.unsafe else _target.problem(target, library=False)
    if found:
        raise TargetRefusedError(
            f"cannot install {entry.what} for 'import {name}': {found.message}", name=name, command=manual
        )


def _check_stamp(target: str, entry: Entry, manual: str) -> None:
    """Under the lock: stamp a new target (or one whose stamp says nothing);
    refuse one another Python stamped (or is wiping) since we started."""
    state = _target.stamp_state(target)
    if state in (_target.NONE, _target.DAMAGED):
        _target.write_stamp(target)
    elif state == _target.FOREIGN:
        raise TargetRefusedError(
            f"cannot install {entry.what} for 'import {entry.import_name}': "
            f"{target} now belongs to another Python ({_target.read_stamp(target)}); restart the application",
            name=entry.import_name,
            command=manual,
        )


def _run(plan: Plan, entry: Entry, installer: Installer, manual: str) -> None:
    """Run the installer into a fresh staging folder and commit what it made."""
    staging = _staging.new_staging(plan.target)
    request = _request(plan, entry, staging)
    started = time.monotonic()
    try:
        code, output, version = _execute(plan, entry, installer, installer.command(request))
    except BaseException:
        _cleanup(staging, request)
        raise
    fields: dict[str, object] = {
        "import_name": entry.import_name,
        "requirements": list(entry.requirements),
        "installer": installer.name,
        "installer_version": version(),
        "duration_s": round(time.monotonic() - started, 3),
        "triggered_by": _audit.triggering_module(),
    }
    if code != 0:
        _cleanup(staging, request)
        failure = Failure(
            entry.import_name, entry.what, entry.dists,
            code=code, output=output, command=manual, only_binary=request.only_binary,
        )  # fmt: skip
        _failed(plan, entry, installer, failure, fields)
    try:
        committed = _staging.commit(staging, plan.target, entry.import_name, entry.dists)
    finally:
        _cleanup(staging, request)
    _audit.record(plan.target, status=0, committed=committed, **fields)
    _failures.forget(plan.target, entry.import_name)
    notice(f"installed {entry.what} in {fields['duration_s']:.1f} s")


def _request(plan: Plan, entry: Entry, staging: str) -> InstallRequest:
    constraints = f"{staging}.constraints.txt"
    _environment.write_constraints(plan, entry, constraints)
    requirements = f"{staging}.requirements.txt" if entry.hashes else None
    if requirements:
        write_requirements(requirements, entry.requirements, entry.hashes)
    return InstallRequest(
        staging,
        entry.requirements,
        constraints=constraints,
        requirements_file=requirements,
        require_hashes=bool(entry.hashes),
        only_binary=only_binary(plan, entry),
        compile_bytecode=not sys.dont_write_bytecode,
    )


def _execute(
    plan: Plan, entry: Entry, installer: Installer, cmd: list[str]
) -> tuple[int | None, str, Callable[[], str]]:
    """Run `cmd`; announce it once it started, and meanwhile load what the
    commit and the audit need (the user waits for the installer anyway)."""
    version: list[Callable[[], str]] = []

    def on_start() -> None:
        version.append(installer.version_probe())
        notice(
            f"installing {entry.what} for 'import {entry.import_name}' with {installer.name} "
            f"into {plan.target} ..."
        )
        _preload_for_commit()

    def stream(line: str) -> None:
        sys.stderr.write(f"  {installer.name}: {line}")

    try:
        code, output = run(
            cmd,
            timeout=plan.settings.timeout,
            stream=stream if plan.settings.verbose else None,
            cwd=_staging.staging_root(plan.target),
            on_start=on_start,
        )
    except OSError as e:
        code, output = -1, f"{type(e).__name__}: {e}"
    return code, output, (version[0] if version else (lambda: installer.name))


def _preload_for_commit() -> None:
    import csv  # noqa: F401  (the commit reads RECORD files)
    import json  # noqa: F401  (_audit)

    import packaging.requirements
    import packaging.utils  # noqa: F401


def _failed(
    plan: Plan, entry: Entry, installer: Installer, failure: Failure, fields: dict[str, object]
) -> NoReturn:
    """Record a failed run everywhere it must be seen, then raise its error."""
    if failure.code is not None and failure.only_binary:
        failure.source_only = installer.source_only(
            failure.output, plan.settings.timeout, _staging.staging_root(plan.target)
        )
    error = failure_error(failure, plan.settings.timeout)
    _audit.record(plan.target, status="timeout" if failure.code is None else failure.code, **fields)
    _failures.remember(plan.target, entry, str(error))
    notice(f"installing {entry.what} failed after {fields['duration_s']:.1f} s ({error.reason})")
    raise error


def _cleanup(staging: str, request: InstallRequest) -> None:
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
    for path in (request.constraints, request.requirements_file):
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass


def still_missing(target: str, entry: Entry) -> LazyInstallError:
    versions = _target.installed_versions(target)
    have = ", ".join(f"{d} {versions[d]}" for d in entry.dists if d in versions) or "nothing"
    from ._pip import Pip

    return ModuleStillMissingError(
        f"{entry.what} was installed ({have} in {target}) but "
        f"'import {entry.import_name}' still finds no module: the allowlist probably maps the wrong "
        "import name to it. Top-level modules in the target: "
        f"{', '.join(_target.top_level_names(target)) or 'none'}",
        name=entry.import_name,
        command=Pip(sys.executable).manual_command(
            target, entry.requirements, hashed=bool(entry.hashes), only_binary=True
        ),
    )


def _confirmed(entry: Entry, target: str) -> bool:
    """Ask only on a terminal; anything else follows the configuration without blocking."""
    try:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        return True
    try:
        answer = input(
            f"lazy-import-hook: 'import {entry.import_name}' needs {entry.what}; "
            f"install it into {target}? [Y/n] "
        )
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")
