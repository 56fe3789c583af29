"""One installer run for one or more allowlist entries: check, lock, look
again, run, commit, record.

Used on an import (one entry) and by `lazy-import-hook prefetch` (several
entries, one resolution). Every failure is raised as a `LazyInstallError`
whose last line says what to run. The caller does its own bookkeeping
afterwards (the finder unhides the module and rewrites the startup cache).
"""

from __future__ import annotations

import os
import sys
import time

from . import _audit, _distributions, _failures, _lock, _safety, _staging, _target
from ._errors import (
    InstallerFailedError,
    InstallsDisabledError,
    LazyInstallError,
    ModuleStillMissingError,
    PinConflictError,
    TargetRefusedError,
)
from ._installers import choose
from ._job import Job
from ._watch import notice, say_waiting

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._installer import Installer
    from ._pipconf import PipConfig
    from ._plan import Entry, Plan


def satisfied(target: str, entry: Entry) -> bool:
    """The module is on disk in the target and every pinned version matches.

    The cheap half first: on a cold install the module is not there, and no
    version (so no `packaging`) needs to be looked at."""
    return _distributions.on_disk(target, entry.import_name) and _pinned_present(target, entry)


def _pinned_present(target: str, entry: Entry) -> bool:
    from ._holdings import installed_matches

    versions = _distributions.installed_versions(target)
    return all(dist in versions and installed_matches(req, versions[dist]) for req, dist in entry.wanted())


def wrong_name(target: str, entry: Entry) -> bool:
    """The pinned distributions are in the target, whole, and provide
    modules, but no `import_name` among them: the allowlist names the wrong
    import (`PyYAML` for `yaml`)."""
    if not _pinned_present(target, entry):
        return False
    provides = _distributions.provided_modules(target, entry.dists)
    return bool(provides) and entry.import_name.split(".", 1)[0] not in provides


def install_entry(
    plan: Plan,
    entry: Entry,
    *,
    since: float = 0.0,
    ignore_backoff: bool = False,
    prefetched_by: str | None = None,
) -> bool:
    """Make `entry` present in the target for its import. Returns whether an
    installer ran. `since`: failures recorded before this time are no reason
    to wait; `ignore_backoff`: run even after a recent failure;
    `prefetched_by`: for a prefetch, the module that called it (it runs on
    another thread, whose stack says nothing)."""
    from ._audit import triggering_module

    name = entry.import_name
    if prefetched_by is None:
        trigger, asked, by = triggering_module(), f"'import {name}'", "imported by"
    else:
        trigger, asked, by = prefetched_by, f"prefetch({name!r})", "called by"
    said = f" ({by} {trigger})" if trigger and trigger != "__main__" else ""
    via = "" if prefetched_by is None else "prefetch"
    job = Job(plan, [entry], f"for {asked}{said}", trigger=trigger, via=via)
    return install(job, since=since, ignore_backoff=ignore_backoff)


def install(job: Job, *, since: float = 0.0, ignore_backoff: bool = False) -> bool:
    """Make every entry of `job` present in the target; whether an installer ran."""
    plan = job.plan
    installer = _choose(job)
    _check_allowed(job)
    pip = _pip_config(job, installer)
    if not ignore_backoff:
        for entry in job.entries:
            _failures.check(plan.target, entry, plan.settings.retry_after, lambda: job.command, since)
    if plan.settings.confirm and job.via != "prefetch" and not _confirmed(job):  # prefetch: see declined()
        raise job.error(InstallsDisabledError, f"installing {job.subject} was declined")
    with _LockedTarget(job):
        if all(satisfied(plan.target, e) for e in job.entries):
            return False  # another process installed it while we waited
        for entry in job.entries:
            if wrong_name(plan.target, entry):  # installing it again would give the same files
                raise still_missing(plan, entry)
            _check_conflicts(job, entry)
            if not ignore_backoff:  # a process that waited for the lock may find a fresh failure
                _failures.check(plan.target, entry, plan.settings.retry_after, lambda: job.command, since)
        _run(job, installer, pip)
    return True


def _pip_config(job: Job, installer: Installer) -> PipConfig:
    """The operator's index settings, and whether the cooldown can be applied."""
    from ._config import pip_config
    from ._run import cooldown_problem

    try:
        pip = pip_config(job.plan)
    except ValueError as e:
        raise job.error(InstallerFailedError, f"cannot install {job.subject}: {e}") from e
    problem = cooldown_problem(job, installer, pip)
    if problem:
        raise job.error(InstallerFailedError, f"cannot install {job.subject}: {problem}")
    return pip


def _choose(job: Job) -> Installer:
    try:
        return choose(job.plan.settings.installer)
    except FileNotFoundError as e:
        raise job.error(InstallerFailedError, f"cannot install {job.subject}: {e}") from e


def _check_allowed(job: Job) -> None:
    """Installs disabled, or a target that must not be written: raise."""
    plan, target = job.plan, job.plan.target
    if not plan.settings.enabled:
        from ._holdings import stale_versions

        versions = _distributions.installed_versions(target) if os.path.isdir(target) else {}
        stale = [s for e in job.entries for s in stale_versions(e, versions)]
        raise InstallsDisabledError(
            f"{job.subject} needs an install, but installs are disabled by "
            f"{plan.sources.get('enabled', 'the configuration')}"
            + (f"; the target holds {', '.join(stale)}, which does not match" if stale else "")
            + "".join(f"; {line}" for line in _layer_notes(job)),
            name=job.name,
            command=_command_despite_switch(job),
        )
    # The library-folder check needs sysconfig; install() did it and kept the answer.
    found = plan.problem if plan.unsafe else _safety.problem(target, library=False)
    if found:
        raise _refused(job, found.message)


def _command_despite_switch(job: Job) -> str:
    """The command that installs by hand while installs are disabled. The
    command line's installs stop only at its own environment's kill switch
    (see _config.operators_switch); where this process's variable turned
    them off, the operator's shell likely has it too, so the command says
    it is an explicit override."""
    from ._settings import Settings

    variable = f"{Settings.enabled.env}="
    switches = job.plan.sources.get("enabled", "").split(" and ")
    return f"{variable}0 {job.command}" if any(s.startswith(variable) for s in switches) else job.command


def _refused(job: Job, why: str) -> LazyInstallError:
    """The target cannot take an install: no command run by hand can install
    into it either (and a refused target holds no recorded plan for the
    command line to use), so the advice is the setting that chooses another."""
    source = job.plan.sources.get("target", "the default")
    if source.startswith("install("):
        where = "the application's install(target=...) call (it wins over LAZY_IMPORT_HOOK_TARGET)"
    elif source.startswith("--target"):  # the application's target: its user can install there
        where = "another --target, or run the command as the user the application runs as (sudo -u ...)"
    else:
        where = 'target = "..." in [tool.lazy-import-hook], install(target=...) or LAZY_IMPORT_HOOK_TARGET'
    return TargetRefusedError(
        f"cannot install {job.subject}: {why}\nThe target comes from {source}; point it at a folder this "
        f"user owns and only this user can write, with {where}",
        name=job.name,
    )


def _layer_notes(job: Job) -> list[str]:
    """What the read-only layers have to do with a needed install: a stale
    copy they hide, or a layer left out."""
    from ._holdings import stale_versions

    notes = list(job.plan.layer_problems)
    for layer in job.plan.layers:
        versions = _distributions.installed_versions(layer.folder)
        stale = [s for e in job.entries if e.import_name in layer.hidden for s in stale_versions(e, versions)]
        if stale:
            notes.append(f"the read-only layer {layer.folder} holds {', '.join(stale)}, which does not match")
    return notes


class _LockedTarget:
    """The target locked (saying so once if another process holds it),
    stamped for this Python, cleaned of crashed installs' leftovers, and
    marked with what this process installs; a target that cannot even be
    that (a read-only or virtual file system) is refused. (A class, not
    contextlib: that imports functools and collections before the installer
    could start.)"""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.undo: list[Callable[[], object]] = []  # run last first, on the way out

    def __enter__(self) -> None:
        job, target = self.job, self.job.plan.target
        try:
            held = _lock.lock(target).acquire(on_wait=lambda: say_waiting(target))
            self.undo.append(lambda: held.__exit__(None, None, None))
            _check_stamp(job)
            _staging.clean_leftovers(target)
            self.undo.append(_mark_installing(target, job.subject))
        except BaseException as e:
            self.__exit__()
            if not isinstance(e, OSError):
                raise
            raise _refused(job, f"{target} cannot be used: {e}") from e

    def __exit__(self, *exc: object) -> None:
        if self.undo:
            undo = self.undo.pop()
            try:
                undo()
            finally:
                self.__exit__()


def _mark_installing(target: str, subject: str) -> Callable[[], None]:
    """Tell processes that wait for the lock who holds it and since when:
    pid, time and subject on three lines (json would be one more import
    the install waits for before its installer starts)."""
    from ._files import atomic_write, remove_quietly

    path = _target.meta(target, _target.INSTALLING)
    atomic_write(path, f"{os.getpid()}\n{time.time()!r}\n{subject}")
    return lambda: remove_quietly(path)


def _check_stamp(job: Job) -> None:
    """Under the lock: stamp a new target (or one whose stamp says nothing);
    refuse one another Python stamped (or is wiping) since we started."""
    target = job.plan.target
    state = _target.stamp_state(target)
    if state in (_target.NONE, _target.DAMAGED):
        _target.write_stamp(target)
    elif state == _target.FOREIGN:
        why = (
            "an application of that Python was using it when this one started" if job.plan.foreign_abi
            else "that Python rebuilt it since this application started"
        )  # fmt: skip
        raise job.error(
            TargetRefusedError,
            f"cannot install {job.subject}: {target} belongs to another Python "
            f"({_target.read_stamp(target)}): {why}. Restart this application once no application of "
            "that Python uses the target (it is then rebuilt for this one), or give each Python its own",
        )


def _check_conflicts(job: Job, entry: Entry) -> None:
    """Never replace a version another live application pins: two
    applications with conflicting pins on one target would take turns
    reinstalling, each breaking the other."""
    from ._records import conflicts

    found = conflicts(job.plan, entry)
    if not found:
        return
    _audit.record(
        job.plan.target, status="pin-conflict", import_name=entry.import_name,
        requirements=list(entry.requirements), conflicts=found,
    )  # fmt: skip
    raise job.error(
        PinConflictError,
        f"'import {entry.import_name}' needs {entry.what}, but another application that uses "
        f"{job.plan.target} right now needs what is there: {'; '.join(found)}. Give each application "
        "its own target (setting 'target'), or make their pins agree; `lazy-import-hook status` "
        "lists the applications sharing this target",
    )


def _run(job: Job, installer: Installer, pip: PipConfig) -> None:
    """Run the installer into a fresh staging folder and commit what it made."""
    from ._run import FOLLOWS, cleanup, record_provenance_later, run

    staging = _staging.new_staging(job.plan.target)
    request, outcome = run(job, installer, pip, staging)
    target = job.plan.target
    try:
        committed = _staging.commit(staging, target, [e.import_name for e in job.entries], job.dists)
        later = outcome.later(committed)
        provenance = FOLLOWS if later else outcome.provenance()  # before the cleanup (pip's report)
    finally:
        cleanup(staging, request)
    _audit.record(target, status=0, committed=committed, provenance=provenance, **outcome.fields)
    if later:
        record_provenance_later(target, later, pip, committed, outcome.fields)
    for entry in job.entries:
        _failures.forget(target, entry.import_name)
    notice(f"installed {job.what} in {outcome.fields['duration_s']:.1f} s")


def still_missing(plan: Plan, entry: Entry) -> LazyInstallError:
    target = plan.target
    versions = _distributions.installed_versions(target)
    have = ", ".join(f"{d} {versions[d]}" for d in entry.dists if d in versions) or "nothing"
    provides = _distributions.provided_modules(target, entry.dists)
    offers = f"; {', '.join(entry.dists)} provides {', '.join(provides)}" if provides else ""
    fix = f" Name the module you import in the allowlist instead, e.g. {provides[-1]!r}." if provides else ""
    return ModuleStillMissingError(  # no command: installing it again gives the same files
        f"{entry.what} was installed ({have} in {target}) but 'import {entry.import_name}' still "
        f"finds no module: the allowlist maps the wrong import name to it{offers}.{fix} Top-level "
        f"modules in the target: {', '.join(_distributions.top_level_names(target)) or 'none'}",
        name=entry.import_name,
    )


def declined(plan: Plan, entry: Entry, prefetched_by: str) -> LazyInstallError | None:
    """For prefetch(), on its caller's thread (a prompt from a background
    thread would fight the application for the terminal): the error of an
    install the user declined at the `confirm` prompt, else None."""
    if not plan.settings.confirm:
        return None
    job = Job(plan, [entry], f"for prefetch({entry.import_name!r})", trigger=prefetched_by, via="prefetch")
    if _confirmed(job):
        return None
    return job.error(InstallsDisabledError, f"installing {job.subject} was declined")


def _confirmed(job: Job) -> bool:
    """Ask only on a terminal; anything else follows the configuration without blocking."""
    try:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        return True
    try:
        answer = input(f"lazy-import-hook: install {job.subject} into {job.plan.target}? [Y/n] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")
