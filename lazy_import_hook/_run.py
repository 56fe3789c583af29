"""One installer run for a job, into a staging folder: the request and its
files, the environment and options the operator's settings give, the
installer watched while it works, what it installed and from where, and, when
it fails, the ImportError that says what to do."""

from __future__ import annotations

import os
import time

from . import _audit, _environment, _failures, _staging
from ._installer import Failure, InstallRequest, failure_error, write_requirements
from ._pipconf import redacted
from ._watch import InstallWatcher, notice

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import NoReturn

    from ._installer import Installer, Launch
    from ._job import Job
    from ._pipconf import PipConfig


class Outcome:
    """A finished run: exit code (None: timed out), output tail, and the audit fields."""

    __slots__ = ("code", "fields", "later", "output", "provenance")

    def __init__(self, code: int | None, output: str, fields: dict[str, object]) -> None:
        self.code = code
        self.output = output
        self.fields = fields
        self.provenance: Callable[[], list[dict[str, object]]] = list
        # committed dist-infos -> the provenance to ask after the import, or None
        self.later: Callable[[Sequence[str]], Callable[[], object] | None] = lambda committed: None


def run(job: Job, installer: Installer, pip: PipConfig, staging: str) -> tuple[InstallRequest, Outcome]:
    """Run the installer into `staging`; raise the ImportError of a failed run."""
    launch = installer.launch(pip)
    request, core = _request(job, staging)
    launch, refused = _hashed_constraints(installer, request, launch, staging)
    started = time.monotonic()
    try:
        outcome = Outcome(1, refused, {"installer": installer.name}) if refused else (
            _execute(job, installer, request, launch, pip)
        )
    except BaseException:
        installer.stop_probes()
        cleanup(staging, request)
        raise
    outcome.fields.update(
        import_name=job.name if len(job.entries) == 1 else [e.import_name for e in job.entries],
        requirements=list(job.requirements),
        index=installer.index(pip),
        duration_s=round(time.monotonic() - started, 3),
        triggered_by=job.trigger,
        **({"via": job.via} if job.via else {}),
        **({"not_passed_on": launch.dropped} if launch.dropped else {}),
        **({"exclude_newer": request.exclude_newer} if request.exclude_newer else {}),
    )
    outcome.later = lambda committed: installer.provenance_after(request, launch, committed)
    if outcome.code != 0:
        installer.stop_probes()
        cleanup(staging, request)
        failure = Failure(
            job.name, f"installing {job.subject}", job.dists, code=outcome.code, output=outcome.output,
            command=job.command, only_binary=request.only_binary, core=core, locked=job.locked,
            layers=_layered(job, core),
        )  # fmt: skip
        _failed(job, installer, failure, outcome.fields, launch)
    return request, outcome


def _layered(job: Job, pins: list[str]) -> dict[str, str]:
    """The pins an install kept that a read-only layer holds (not the core
    environment) -> that layer, so a conflict names it."""
    core = {line.partition("==")[0] for line in _environment.cached_core(job.plan)}
    found = _environment.layer_versions(job.plan)
    names = {pin: pin.partition("==")[0] for pin in pins}
    return {pin: found[name][1] for pin, name in names.items() if name in found and name not in core}


def _request(job: Job, staging: str) -> tuple[InstallRequest, list[str]]:
    """The installer's request, and the core environment's pins it honours."""
    plan = job.plan
    constraints = f"{staging}.constraints.txt"
    core = _environment.write_constraints(plan, job.entries, constraints)
    requirements = f"{staging}.requirements.txt" if job.hashes or job.locked else None
    if requirements:
        _write_hashed(requirements, job)
    request = InstallRequest(
        staging,
        job.requirements,
        constraints=constraints,
        requirements_file=requirements,
        require_hashes=bool(job.hashes or job.locked),
        only_binary=job.only_binary,
        compile_bytecode=plan.settings.compile_bytecode,
        no_deps=bool(job.locked),  # the closure is complete: nothing else may come in
        exclude_newer=job.cutoff,
        report=f"{staging}.report.json",
    )
    return request, core


def _hashed_constraints(
    installer: Installer, request: InstallRequest, launch: Launch, staging: str
) -> tuple[Launch, str]:
    """The launch with the operator's constraints as the installer takes
    them when every file is hashed (uv: exact pins only, _constraints), and
    why the pins cannot be installed under them ("" when they can)."""
    if not (request.require_hashes and request.requirements_file and installer.exact_constraints_with_hashes):
        return launch, ""
    from ._constraints import exact_only, pins_of
    from ._installer import Launch

    pins = pins_of(request.requirements_file)
    options, conflicts = exact_only(launch.options, pins, _operator_constraints(staging))
    refused = "".join(f"\nthe operator's constraint {c} excludes what is pinned here" for c in conflicts)
    return Launch(launch.env, options, launch.dropped, launch.needs), refused.lstrip("\n")


def _operator_constraints(staging: str) -> str:
    return f"{staging}.operator-constraints.txt"


def _write_hashed(path: str, job: Job) -> None:
    """Every file hashed: the lock's closures, or the entries' own hashes."""
    if job.locked:
        with open(path, "w", encoding="utf-8") as f:
            for line in job.locked:
                pin, digest = line.split(" ")[:2]
                f.write(f"{pin} --hash={digest}\n")
    else:
        write_requirements(path, job.requirements, job.hashes)


def _execute(
    job: Job, installer: Installer, request: InstallRequest, launch: Launch, pip: PipConfig
) -> Outcome:
    """Run the command; announce it once it runs, and meanwhile ask the
    installer's version and provenance and load what the commit needs."""
    from ._process import run as run_process

    settings = job.plan.settings
    known = _known_version(installer, job.plan.target) if installer.remembers_version else None
    probes: list[Callable[[], object]] = []

    def while_it_runs() -> None:  # the user waits for the installer anyway
        probes.append((lambda: known) if known else installer.version_probe())
        # Where the files really came from, locked or not: a lock's URLs say
        # where they were found when it was made, not where they are fetched.
        probes.append(installer.provenance_probe(request, launch))
        notice(f"installing {job.subject} with {installer.name} into {job.plan.target} ...")
        _preload_for_commit()

    watcher = InstallWatcher(
        job.subject, installer.name, installer.index(pip), stream=settings.verbose, on_start=while_it_runs
    )
    try:
        code, output = run_process(
            installer.command(request, launch), env=_private_temp(launch.env, request),
            timeout=settings.timeout,
            cwd=_staging.staging_root(job.plan.target), stall_after=settings.stall_after, watcher=watcher,
        )  # fmt: skip
    except OSError as e:
        code, output = -1, f"{type(e).__name__}: {e}"
    # The tail goes into the error, the failure record and logs: no credentials (uv shows a query's).
    outcome = Outcome(code, redacted(output), {"installer": installer.name})
    version = str(probes[0]()) if probes else installer.name
    outcome.fields["installer_version"] = version
    if probes and not known and installer.remembers_version:
        _remember_version(installer, job.plan.target, version)
    if len(probes) > 1:
        outcome.provenance = lambda: _attributed(probes[1], pip)
    return outcome


def _private_temp(env: Mapping[str, str], request: InstallRequest) -> Mapping[str, str]:
    """The installer's temporary files beside its staging folder: a killed
    installer's (pip leaves its pip-* folders behind) go with the next
    install's clean-up instead of staying in /tmp for good; and, on the
    target's filesystem, pip moves what it installed by renaming, not copying.
    Not for a build from source: build tools make Unix sockets there, and a
    socket's path (107 bytes) has no room for one that deep."""
    if not request.only_binary:
        return env
    folder = _temp_folder(request.target)
    os.mkdir(folder, 0o700)
    return {**env, "TMPDIR": folder, "TEMP": folder, "TMP": folder}


def _temp_folder(staging: str) -> str:
    return f"{staging}.tmp"


VERSIONS = "installer-versions"  # in the target's meta folder: size, mtime, ctime, version, path


def _executable_key(installer: Installer) -> tuple[str, str, str, str] | None:
    """What identifies the installer's program: size, mtime, ctime (a copy
    that kept the mtime still gets a new ctime) and path."""
    try:
        st = os.stat(installer.executable)
    except OSError:
        return None
    return str(st.st_size), str(st.st_mtime_ns), str(st.st_ctime_ns), installer.executable


def _known_versions(target: str) -> dict[tuple[str, str, str, str], str]:
    from ._target import meta, read_trusted

    found = {}
    for line in (read_trusted(meta(target, VERSIONS)) or "").split("\n"):
        fields = line.split("\t", 4)
        if len(fields) == 5 and fields[3]:
            found[fields[0], fields[1], fields[2], fields[4]] = fields[3]
    return found


def _known_version(installer: Installer, target: str) -> str | None:
    """The version an earlier install asked this very program for: asking it
    again (`uv --version`, a process beside the install) cost about 15 ms of
    a small install on two cores."""
    key = _executable_key(installer)
    return _known_versions(target).get(key) if key else None


def _remember_version(installer: Installer, target: str, version: str) -> None:
    from ._files import atomic_write
    from ._target import meta

    key = _executable_key(installer)
    if key is None or version == installer.name or any(c in "".join((*key, version)) for c in "\t\n\r"):
        return  # unknown or unusable: asked again next time
    kept = [(k, v) for k, v in _known_versions(target).items() if k[3] != key[3]][:3]
    lines = ["\t".join((*k[:3], v, k[3])) + "\n" for k, v in [(key, version), *kept]]
    try:
        atomic_write(meta(target, VERSIONS), "".join(lines))
    except OSError:
        pass  # only a later install's speed depends on it


FOLLOWS = "in a line of its own (event 'provenance'), once the installer's resolution answers"


def record_provenance_later(
    target: str, probe: Callable[[], object], pip: PipConfig, committed: Sequence[str],
    fields: dict[str, object],
) -> None:  # fmt: skip
    """The provenance the installer gives only through another command: asked
    on a thread once the imported module has run, written as its own audit
    line. Not a daemon: the interpreter waits for it at exit (the command is
    bounded)."""
    import threading

    def write(files: list[dict[str, object]]) -> None:
        _audit.record(
            target, event="provenance", status="unavailable" if files and "unavailable" in files[0] else 0,
            committed=list(committed), provenance=files, import_name=fields.get("import_name"),
            installer=fields.get("installer"),
        )  # fmt: skip

    def follow_up() -> None:
        try:
            files = _attributed(probe, pip)
        except Exception as e:  # no temporary folder, uv gone since the install: said, not raised
            files = [{"unavailable": f"{type(e).__name__}: {e}"}]
        write(files)

    def start() -> None:
        try:
            threading.Thread(target=follow_up, name="lazy-import-hook provenance", daemon=False).start()
        except RuntimeError as e:  # no thread to be had (a process limit, interpreter shutdown)
            write([{"unavailable": f"no thread to ask it on: {e}"}])

    from ._loader import after_this_import

    after_this_import(start)


def _attributed(probe: Callable[[], object], pip: PipConfig) -> list[dict[str, object]]:
    from ._provenance import attribute

    files = probe()
    return attribute(files, pip) if isinstance(files, list) else [{"unavailable": str(files)}]


def _preload_for_commit() -> None:
    # Not shutil: removing the usually empty folders needs only os.rmdir, and
    # while an installer compiles on every core, a preload delays it by up to
    # what it costs.
    import csv  # noqa: F401  (the commit reads RECORD files)
    import json  # noqa: F401  (_audit)


def _failed(
    job: Job, installer: Installer, failure: Failure, fields: dict[str, object], launch: Launch
) -> NoReturn:
    """Record a failed run everywhere it must be seen, then raise its error."""
    plan = job.plan
    failure.too_old = launch.too_old(str(fields.get("installer_version", "")))
    if failure.code is not None and failure.only_binary:
        cwd = _staging.staging_root(plan.target)
        failure.source_only = installer.source_only(failure.output, plan.settings.timeout, cwd, launch.env)
    error = failure_error(failure, plan.settings.timeout)
    _audit.record(plan.target, status="timeout" if failure.code is None else failure.code, **fields)
    for entry in job.entries:
        _failures.remember(plan.target, entry, error)
    notice(f"installing {job.what} failed after {fields['duration_s']:.1f} s ({error.reason})")
    raise error


def cleanup(staging: str, request: InstallRequest) -> None:
    _staging.remove_folder(staging)
    _staging.remove_folder(_temp_folder(staging))
    for path in (request.constraints, request.requirements_file, request.report, f"{staging}.in",
                 _operator_constraints(staging)):
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass


def cooldown_problem(job: Job, installer: Installer, pip: PipConfig) -> str | None:
    """Why the release-age cooldown cannot be applied to this job, or None."""
    if not job.cutoff:
        return None
    from ._pipconf import find_links

    links = find_links(pip)
    if links:
        return (
            f"min-release-age cannot be checked for packages found through find-links "
            f"({redacted(' '.join(links))}): they carry no upload time. Remove find-links, or lock the "
            "entries (`lazy-import-hook lock`), or set min-release-age = 0"
        )
    return installer.cooldown_problem()

