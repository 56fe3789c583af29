"""`lazy-import-hook` / `python -m lazy_import_hook`: status, prefetch, prune, run."""

from __future__ import annotations

import argparse
import os
import sys

from . import _config, _safety, _settings
from ._errors import ConfigError, LazyInstallError
from ._installers import CHOICES
from ._plan import VERSION
from ._settings import Settings, folder_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._plan import Entry, Plan
    from ._records import Recorded

EPILOG = """\
Settings come from the same places as install(): the options here, then
LAZY_IMPORT_HOOK_* environment variables, then [tool.lazy-import-hook] in the
nearest pyproject.toml (or --pyproject). With --target and the plan an
application recorded there: the options, then its install() arguments, then
this shell's variables, then its pyproject. Only this shell's
LAZY_IMPORT_HOOK_DISABLE=1 stops prefetch."""
RESOLVING = ("lock", "bundle")  # verbs that make closures rather than use them
_VALUED = ("--pyproject", "--target", "--installer")  # global options that take a value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lazy-import-hook",
        description="Inspect and steer the lazy-import-hook target.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pyproject", help="pyproject.toml to read (default: nearest one above)")
    parser.add_argument("--target", help="target folder (overrides environment and pyproject)")
    parser.add_argument("--installer", choices=CHOICES)
    parser.add_argument("-v", "--verbose", action="store_true", help="stream installer output")
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    status = verbs.add_parser("status", help="what is allowed, installed, stale, missing")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--log", type=int, default=5, metavar="N", help="audit entries shown")
    status.add_argument(
        "--verify", action="store_true",
        help="check every file in the target against its RECORD (hash, size) and list modified, missing "
        "and unowned files; exit status 1 on any finding",
    )  # fmt: skip
    prefetch = verbs.add_parser("prefetch", help="install the allowlist now (e.g. in a Docker build step)")
    prefetch.add_argument("names", nargs="*", metavar="NAME", help="import names (default: all)")
    prefetch.add_argument(
        "--from", dest="wheelhouse", metavar="DIR",
        help="install only from this bundle (see bundle): no index, hashes required",
    )  # fmt: skip
    prune = verbs.add_parser("prune", help="remove what no entry needs and what the core environment shadows")
    prune.add_argument("--dry-run", action="store_true", help="only list what would go")
    _lock_parser(verbs)
    run = verbs.add_parser(
        "run",
        help="run a program with the hook installed",
        usage="lazy-import-hook run [-h] (-m MODULE | SCRIPT) [ARGS ...]",
    )
    run.add_argument("-m", dest="module", help="run a module, like python -m")
    run.add_argument("args", nargs=argparse.REMAINDER, help="SCRIPT and its arguments")
    return parser


def _lock_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lock = verbs.add_parser(
        "lock", help="resolve every entry's closure into a lock file (exact versions, sha256 of every wheel)"
    )
    lock.add_argument(
        "--upgrade", nargs="*", metavar="NAME",
        help="re-resolve these entries (none named: all) instead of keeping their locked closures",
    )  # fmt: skip
    lock.add_argument("--output", metavar="FILE", help="where to write (default: the lock setting, or "
                      "pylock.lazy-import-hook.toml beside the pyproject)")  # fmt: skip
    _for_another_interpreter(lock)
    bundle = verbs.add_parser(
        "bundle", help="download every entry's locked closure into DIR, for hosts with no index "
        "(install from it with the wheelhouse setting, or prefetch --from DIR)",
    )  # fmt: skip
    bundle.add_argument("folder", metavar="DIR")
    _for_another_interpreter(bundle)


def _for_another_interpreter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python-version", metavar="X.Y", help="for another Python (default: this one)")
    parser.add_argument(
        "--platform",
        help="for another platform, in the installer's words (uv: linux, macos, "
        "x86_64-manylinux_2_28...; pip: manylinux2014_x86_64...)",
    )


def _parse(argv: list[str]) -> argparse.Namespace:
    """`run` hands everything after the script or module to the program untouched."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # global options come first
        i += 2 if argv[i] in _VALUED else 1
    if i >= len(argv) or argv[i] != "run":
        return _parser().parse_args(argv)
    head, rest = argv[: i + 1], argv[i + 1 :]
    if rest and rest[0] == "-m" and len(rest) >= 2:
        options = _parser().parse_args([*head, "-m", rest[1]])
        options.args = rest[2:]
    elif rest and not rest[0].startswith("-"):
        options = _parser().parse_args(head)
        options.module, options.args = None, rest
    else:
        options = _parser().parse_args(argv)
    return options


def _plain_warnings() -> None:
    """The hook's own warnings as one plain line, like the command's other
    messages (a program `run` starts keeps the usual format for its own)."""
    import warnings

    usual = warnings.formatwarning

    def formatted(message: Warning | str, category: type[Warning], *rest: object, **kw: object) -> str:
        if str(message).startswith("lazy-import-hook:"):
            return f"{message}\n"
        return usual(message, category, *rest, **kw)  # type: ignore[arg-type]

    warnings.formatwarning = formatted


def _load(options: argparse.Namespace) -> tuple[Plan, _settings.Raw | None, str]:
    """The plan to act on: a named pyproject; else the plan recorded in a named
    target (an application configured in code records it at install()); else
    the nearest pyproject above the current directory. Its settings are
    resolved here, as install() would resolve them in this environment:
    the command line, then what the application passed to install(), then
    this environment, then its pyproject. Every verb but `run` (which runs
    the application) installs unless this environment's kill switch is on
    (see _config.operators_switch). Also returns what disables the
    application's own installs ("" if nothing)."""
    overrides = _overrides(options)
    target, how = _named_target(options)
    raw = None
    chosen = _recorded_plan(target) if options.pyproject is None and target else None
    plan = chosen.plan if chosen else None
    # With no application running, the plan chosen is one of several: prune keeps what each needs.
    options.every_record, options.lock_problem = bool(chosen and not chosen.live), ""
    if plan is not None:
        _found_in(plan, folder_path(target), how)
        # The application's environment is not this one: its variables give way to ours.
        _config.in_this_environment(plan, overrides, verb_resolves=options.verb in RESOLVING)
    else:
        try:
            raw = _settings.gather(None, options.pyproject, {**overrides, "target": options.target})
        except ConfigError as e:
            raise ConfigError(_nothing_found(target) if options.pyproject is None else str(e)) from e
        plan = _config.resolve(raw, locked=options.verb not in (*RESOLVING, "status"))
        if options.verb == "status":  # a lock that no longer fits is shown with the rest
            options.lock_problem = _lock_problem(plan)
    _not_a_file(plan.target, plan.sources.get("target", "the default"))
    application = _config.operators_switch(plan) if options.verb != "run" else ""
    # This command's own first sys.path entry (the current folder, for -m) is not the application's.
    plan.problem = _safety.problem(plan.target, path=sys.path[1:])
    _check_layers(plan, quiet=options.verb == "status")
    return plan, raw, application


def _lock_problem(plan: Plan) -> str:
    """The lock file applied to `plan`; why it cannot be ("" when it can)."""
    try:
        _config.apply_lock(plan)
    except ConfigError as e:
        return str(e)
    return ""


def _overrides(options: argparse.Namespace) -> dict[str, object]:
    """The settings the command line gives (prefetch --from's wheelhouse among them)."""
    wheelhouse = getattr(options, "wheelhouse", None)  # prefetch --from
    if wheelhouse and not os.path.isdir(wheelhouse):
        raise ConfigError(f"prefetch --from {wheelhouse}: no such folder (see `lazy-import-hook bundle`)")
    overrides = {"installer": options.installer, "verbose": True if options.verbose else None,
                 "wheelhouse": os.path.abspath(wheelhouse) if wheelhouse else None}  # fmt: skip
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if options.verb in RESOLVING:
        overrides["wheelhouse"] = ""  # they resolve from the index, never from a bundle
    return overrides


def _named_target(options: argparse.Namespace) -> tuple[str, str]:
    """The target this command was given (--target, else the variable; "" if
    none), and how, as a setting's source is shown."""
    variable = str(Settings.target.env)
    target = options.target or os.environ.get(variable) or ""
    how = f"--target {target}" if options.target else f"{variable}={target}"
    _not_a_file(target, how)
    return target, how


def _not_a_file(target: str, how: str) -> None:
    if target and os.path.exists(target) and not os.path.isdir(target):
        raise ConfigError(f"the target {target} ({how}) is a file, not a folder: name a folder")


def _check_layers(plan: Plan, *, quiet: bool) -> None:
    """The read-only layers as they are now; why any is left out is a
    warning, except where `status` shows it."""
    from ._errors import warn
    from ._holdings import scan_layers

    refused = [f"ignoring the .pth path line {line}" for line in scan_layers(plan)]
    for line in [] if quiet else [*plan.layer_problems, *refused]:
        warn(line)


def _recorded_plan(target: str) -> Recorded | None:
    """A running application's plan, else the newest recorded."""
    from ._records import recorded

    found = recorded(folder_path(target))
    if not found:
        return None
    chosen = next((r for r in found if r.live), found[0])
    print(f"lazy-import-hook: using the plan recorded by {chosen.describe()}", file=sys.stderr)
    return chosen


def _found_in(plan: Plan, folder: str, how: str) -> None:
    """A recorded plan acts on the folder it was found in, the one named: a
    target copied, moved or seen through another mount keeps the path it
    was recorded at, which may be another folder, or none, here."""
    if os.path.realpath(plan.target) != os.path.realpath(folder):
        print(f"lazy-import-hook: the plan was recorded for the target {plan.target}; acting on {folder}, "
              "where it was found", file=sys.stderr)  # fmt: skip
    plan.settings = Settings(**{**plan.settings.values(), "target": folder})
    plan.sources["target"] = how


def _nothing_found(target: str) -> str:
    from ._records import untrusted_records

    refused = untrusted_records(folder_path(target)) if target else []
    if refused:
        return (
            f"the target {folder_path(target)} holds recorded plans this user cannot read or must not trust "
            f"({'; '.join(refused[:3])}): run the command as the user who runs the application "
            "(sudo -u THAT_USER lazy-import-hook ...)"
        )
    where = f"the target {folder_path(target)} holds no recorded plan" if target else "no --target was given"
    return (
        f"no pyproject.toml with a [tool.lazy-import-hook] table (that only you or root can write) "
        f"in {os.getcwd()} or above, and {where}. Pass --pyproject FILE, or --target FOLDER of an "
        "application that called lazy_import_hook.install() (it records its plan there)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    _plain_warnings()
    options = _parse(list(sys.argv[1:] if argv is None else argv))
    try:
        plan, raw, application_disabled = _load(options)
        if options.verb == "run":
            return run(plan, raw, options.module, options.args)  # the application's own errors stay its own
        return _act(plan, options, application_disabled)
    except ConfigError as e:
        print(f"lazy-import-hook: configuration error: {e}", file=sys.stderr)
        return 2


def _act(plan: Plan, options: argparse.Namespace, application_disabled: str) -> int:
    """Every verb but `run`; a folder that cannot be read or written, or a
    full disk, is one line."""
    verbs: dict[str, Callable[[Plan, argparse.Namespace], int]] = {
        "status": lambda p, o: _status(p, o, application_disabled),
        "prefetch": lambda p, o: prefetch(p, o.names),
        "prune": lambda p, o: prune(p, dry_run=o.dry_run, every_record=o.every_record),
        "lock": lock,
        "bundle": bundle,
    }
    try:
        if options.verb == "prefetch" and plan.problem is None:
            from ._prepare import prepare

            prepare(plan.target, enabled=plan.settings.enabled)  # the ABI wipe and stamp, as install() does
        return verbs[options.verb](plan, options)
    except OSError as e:
        print(f"lazy-import-hook: {options.verb}: {e}", file=sys.stderr)
        return 1


def _status(plan: Plan, options: argparse.Namespace, application_disabled: str) -> int:
    from ._status import status

    return status(plan, as_json=options.json, log=options.log, verify=options.verify,
                  application_disabled=application_disabled, lock_problem=options.lock_problem)  # fmt: skip


# -- prefetch -----------------------------------------------------------------


def prefetch(plan: Plan, names: Sequence[str]) -> int:
    """Install the named entries (default: all) in one installer run, one
    resolution; when it fails, find and name the entries at fault."""
    unknown = [n for n in names if n not in plan.entries]
    if unknown:
        print(
            f"lazy-import-hook: not on the allowlist: {', '.join(unknown)} "
            f"(allow-listed: {', '.join(plan.entries)})",
            file=sys.stderr,
        )
        return 2
    chosen = [e for n, e in plan.entries.items() if not names or n in names]
    for entry in chosen:
        if not entry.active:
            print(f"{entry.import_name}: skipped, not for this platform ({entry.what})")
    for layer in plan.layers:  # what a read-only layer serves is never installed again
        for entry in [e for e in chosen if e.import_name in layer.verified]:
            print(f"{entry.import_name}: served by the read-only layer {layer.folder} ({entry.what})")
            chosen.remove(entry)
    groups: dict[tuple[bool, bool], list[Entry]] = {}
    for entry in (e for e in chosen if e.active):  # hashed entries and sdist opt-ins run apart
        groups.setdefault((bool(entry.hashes), entry.allow_sdist), []).append(entry)
    failed = [e for group in groups.values() for e in _prefetch_group(plan, group)]
    return 1 if failed else 0


def _prefetch_group(plan: Plan, entries: list[Entry]) -> list[Entry]:
    """Install `entries` together; the ones that failed. Only a failed
    installer run is tried again one entry at a time, to name the entries at
    fault: an entry still missing after a run that succeeded (an import name
    its distribution does not provide) fails as it is, and a group already
    whole is not installed again (a read-only target serves it as it is)."""
    from ._job import Job
    from ._transaction import install, satisfied, still_missing

    present = {e.import_name for e in entries if satisfied(plan.target, e)}
    if len(present) < len(entries):
        try:
            install(Job(plan, entries, "by prefetch"), ignore_backoff=True)
        except LazyInstallError as e:
            if len(entries) == 1:
                print(f"{entries[0].import_name}: FAILED\n{e}", file=sys.stderr)
                return entries
            print(f"lazy-import-hook: the prefetch of {len(entries)} entries failed; trying them one by one",
                  file=sys.stderr)  # fmt: skip
            return [e for entry in entries for e in _prefetch_group(plan, [entry])]
    failed = []
    for entry in entries:
        if entry.import_name in present or satisfied(plan.target, entry):
            done = "already present" if entry.import_name in present else "installed"
            print(f"{entry.import_name}: {done} ({entry.what})")
        else:
            print(f"{entry.import_name}: FAILED\n{still_missing(plan, entry)}", file=sys.stderr)
            failed.append(entry)
    return failed


# -- lock ---------------------------------------------------------------------


def lock(plan: Plan, options: argparse.Namespace) -> int:
    from ._installer import LockError
    from ._locker import Target, default_path
    from ._locker import lock as write_lock

    path = default_path(plan, options.output)
    upgrade = True if options.upgrade == [] else (options.upgrade or False)
    unknown = [n for n in (upgrade if isinstance(upgrade, list) else []) if n not in plan.entries]
    if unknown:
        print(f"lazy-import-hook: --upgrade takes import names; not on the allowlist: {', '.join(unknown)} "
              f"(allow-listed: {', '.join(plan.entries)})", file=sys.stderr)  # fmt: skip
        return 2
    try:
        target = Target(options.python_version, options.platform)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    try:
        _, report = write_lock(plan, path, upgrade=upgrade, target=target)
    except LockError as e:
        print(f"lazy-import-hook: could not lock; nothing written:\n{e}", file=sys.stderr)
        return 1
    print("\n".join(report))
    print(f"wrote {path}")
    return 0


def bundle(plan: Plan, options: argparse.Namespace) -> int:
    from ._bundle import bundle as make_bundle
    from ._installer import LockError
    from ._locker import Target

    try:
        target = Target(options.python_version, options.platform)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    try:
        report = make_bundle(plan, options.folder, target)
    except LockError as e:
        print(f"lazy-import-hook: could not bundle; the bundle's lock is unchanged:\n{e}", file=sys.stderr)
        return 1
    print("\n".join(report))
    return 0


# -- prune --------------------------------------------------------------------


def prune(plan: Plan, *, dry_run: bool, every_record: bool = False) -> int:
    """Remove what neither this plan nor any application using the target
    right now needs; `every_record`: nor any plan recorded there (with only
    --target and no application running, the plan chosen is just the newest,
    and a stopped application's is as much the target's as a one-off run's)."""
    from . import _prune

    if not os.path.isdir(plan.target):
        print(f"nothing to prune: {plan.target} does not exist")
        return 0
    refusal = _prune.refusal(plan, dry_run=dry_run)
    if refusal:
        print(f"lazy-import-hook: prune: {refusal}; nothing was removed", file=sys.stderr)
        return 1
    pruned = _prune.prune(plan, dry_run=dry_run, every_record=every_record)
    if pruned.unread:
        why = (
            f"{len(pruned.unread)} application(s) using the target now have a plan this user cannot "
            f"read or trust ({', '.join(pruned.unread)}); prune would remove what they need"
        )
        done = "would be" if dry_run else "was"
        print(f"lazy-import-hook: prune: {why}; nothing {done} removed. Run it as their user, or when they "
              "have stopped", file=sys.stderr)  # fmt: skip
        return 1
    for other in pruned.kept_for:
        print(f"keeping what {other}")
    if not pruned.removals:
        print("nothing to prune")
        return 0
    for info, why in pruned.removals:
        print(f"{'would remove' if dry_run else 'removed'} {info[: -len('.dist-info')]}: {why}")
    return 0


# -- run ----------------------------------------------------------------------


def run(plan: Plan, raw: _settings.Raw | None, module: str | None, args: list[str]) -> int:
    """As `python SCRIPT` or `python -m MODULE` would, with the hook installed:
    from the pyproject (as the application would call install()), or from the
    plan recorded in the target. A missing script or module is one line and
    exit status 2 or 1, as with python."""
    from ._hook import activate, install

    if not module and not args:
        print("lazy-import-hook run: give -m MODULE or SCRIPT", file=sys.stderr)
        return 2
    if not module and not os.path.exists(args[0]):
        print(f"lazy-import-hook run: can't open file {os.path.abspath(args[0])!r}: "
              "[Errno 2] No such file or directory", file=sys.stderr)  # fmt: skip
        return 2
    if raw is not None:
        install(None, pyproject=raw.pyproject, **raw.arguments)
    else:
        activate(plan)
    return _run_module(module, args) if module else _run_script(args)


def _run_module(module: str, args: list[str]) -> int:
    import runpy

    sys.argv = [module, *args]
    sys.path[0:1] = [os.getcwd()]
    missing = _missing_module(module)
    if missing:
        print(f"lazy-import-hook run: {missing}", file=sys.stderr)
        return 1
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


def _missing_module(module: str) -> str | None:
    """Why `python -m module` would not start, in python's words, or None.
    An allow-listed module is installed first (runpy needs its real loader)."""
    import importlib.util

    from ._loader import InstallingLoader

    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and isinstance(spec.loader, InstallingLoader):
            spec = spec.loader.install_now()
        package = spec is not None and spec.submodule_search_locations is not None
        if package and importlib.util.find_spec(f"{module}.__main__") is None:
            return f"No module named {module}.__main__; {module!r} is a package and cannot be run"
    except ImportError as e:
        return str(e).splitlines()[0]
    return None if spec is not None else f"No module named {module}"


def _run_script(args: list[str]) -> int:
    import runpy

    script, *rest = args
    sys.argv = [script, *rest]
    here = os.path.abspath(script)
    if os.path.isdir(here) or _is_zip(here):
        # As python does: a folder or zip runs its __main__ with itself, and
        # nothing else, first on sys.path (runpy puts it there).
        if not _has_main(here):
            print(f"lazy-import-hook run: can't find '__main__' module in {here!r}", file=sys.stderr)
            return 1
        del sys.path[0]
        runpy.run_path(here, run_name="__main__")
    else:
        sys.path[0] = os.path.dirname(here)
        runpy.run_path(script, run_name="__main__")
    return 0


def _has_main(path: str) -> bool:
    """Whether a folder or zip has the __main__ python would run (checked
    first: runpy's ImportError is indistinguishable from the script's own)."""
    from importlib.machinery import PathFinder

    return PathFinder.find_spec("__main__", [path]) is not None


def _is_zip(path: str) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)
