"""Settings and their sources: arguments > environment > pyproject > defaults.

`resolve()` validates the raw inputs `_settings.gather()` read (run only when
the startup cache's key changed): it parses TOML and validates everything
into a `Plan`, raising `ConfigError`.
"""

from __future__ import annotations

import os
import sys

from ._plan import Plan, lock_stamp, lock_unchanged
from ._settings import LOCK_NAME, SECTION, Raw, Setting, Settings, config_error, default_lock, read_pyproject

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._pipconf import PipConfig


def _read_table(raw: Raw) -> dict[str, object]:
    if not raw.pyproject:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        data = tomllib.loads(raw.pyproject_text)
    except tomllib.TOMLDecodeError as e:
        raise config_error(f"{raw.pyproject}: not valid TOML: {e}") from e
    table = data.get("tool", {}).get("lazy-import-hook")
    if not isinstance(table, dict):
        raise config_error(f"{raw.pyproject}: no [{SECTION}] table")
    known = [row.key for row in Settings.rows()]
    unknown = sorted(set(table) - set(known) - {"allowlist"})
    if unknown:
        raise config_error(
            f"{raw.pyproject}: unknown key(s) in [{SECTION}]: {', '.join(unknown)}; "
            f"known keys: allowlist, {', '.join(known)}"
        )
    return table


def resolve(raw: Raw, *, locked: bool = True) -> Plan:
    """Validate every source into a Plan (imports packaging and tomllib);
    the lock file's closures applied unless `locked` is false (`lock` itself)."""
    from ._allowlist import parse_allowlist

    table = _read_table(raw)
    values = {row.name: _value(row, table, raw) for row in Settings.rows()}
    source = raw.allowlist if raw.allowlist is not None else table.get("allowlist")
    if source is None:
        raise config_error(f"{raw.pyproject}: [{SECTION}] has no 'allowlist' table")
    where = f"{raw.pyproject} [{SECTION}.allowlist]" if raw.allowlist is None else "allowlist"
    plan = Plan(Settings(**{name: value for name, (value, _) in values.items()}),
                parse_allowlist(source, where=where), raw.pyproject)  # fmt: skip
    plan.sources = {name: why for name, (_, why) in values.items()}
    _check_layers(plan)
    if locked:
        apply_lock(plan)
    return plan


def _check_layers(plan: Plan) -> None:
    from ._layers import overlap

    why = overlap(plan.target, plan.settings.read_only_targets)
    if why:
        raise config_error(f"read-only-targets ({plan.sources['read_only_targets']}): {why}")


def lock_path(plan: Plan) -> str:
    """The lock file in effect: the setting, else the wheelhouse's, else the
    one beside the pyproject if there is one."""
    if plan.settings.lock:
        return plan.settings.lock
    if plan.settings.wheelhouse:
        return os.path.join(plan.settings.wheelhouse, LOCK_NAME)
    found = default_lock(plan.pyproject) if plan.pyproject else ""
    return found if found and os.path.exists(found) else ""


def apply_lock(plan: Plan) -> None:
    """Give every active entry its locked closure; an entry whose
    requirements changed since the lock (or that it lacks) is a ConfigError."""
    from ._lockfile import applies_here, read, this_environment

    path = lock_path(plan)
    if not path:
        return
    _check_wheelhouse(plan)
    if not os.path.exists(path):
        where = plan.sources.get("lock" if plan.settings.lock else "wheelhouse")
        raise config_error(f"lock file {path} ({where}) does not exist: run {_remedy(plan)}")
    lock = read(path)
    if not applies_here(lock.environment):
        raise config_error(
            f"lock file {path} was made for {lock.environment or 'another interpreter'}, not for "
            f"{this_environment()}: run {_remedy(plan)} with this Python"
        )
    closures = {}
    for entry in (e for e in plan.entries.values() if e.active):  # all checked before any is applied
        locked = lock.entries.get(entry.import_name)
        if locked is None or (locked.requirements, locked.hashes) != (entry.requirements, entry.hashes):
            was = f"locked as {', '.join(locked.requirements)}" if locked else "not in the lock"
            raise config_error(
                f"allowlist entry {entry.import_name!r} ({entry.what}) is {was} in {path}: "
                f"the allowlist changed since the lock; run {_remedy(plan)}"
            )
        closures[entry.import_name] = tuple(p.line() for p in locked.packages)
    for name, closure in closures.items():
        plan.entries[name].locked = closure
    plan.lock_stamp = lock_stamp(path)


def _check_wheelhouse(plan: Plan) -> None:
    """A wheelhouse must be a folder nobody else can write: what is in it,
    lock included, decides what installs (sticky or not: another user could
    add a lock that is not there yet)."""
    from ._target import untrusted

    folder = plan.settings.wheelhouse
    if not folder:
        return
    where = plan.sources.get("wheelhouse", "the wheelhouse setting")
    try:
        why = untrusted(os.stat(folder), folder)
    except OSError as e:
        raise config_error(f"wheelhouse {folder} ({where}): {e}; make it with {_remedy(plan)}") from e
    if why:
        raise config_error(f"wheelhouse {folder} ({where}) is {why}: it must be writable by you alone")


def _remedy(plan: Plan) -> str:
    """The command that makes the lock in effect."""
    if plan.settings.wheelhouse and not plan.settings.lock:
        return (
            f"`lazy-import-hook bundle {plan.settings.wheelhouse}` where the index is reachable, and copy "
            "the folder here"
        )
    if plan.settings.lock and not plan.pyproject:  # an allowlist in code: the CLI finds it in the target
        return (
            f"`lazy-import-hook --target {plan.target} lock --output {plan.settings.lock}` (it locks the "
            "plan this application records in the target: if it never has, start it once without lock= "
            "and with LAZY_IMPORT_HOOK_DISABLE=1, which records the plan and installs nothing)"
        )
    return "`lazy-import-hook lock`"


def pip_config(plan: Plan) -> PipConfig:
    """Where installs come from: the operator's pip settings, or the
    wheelhouse alone. ValueError for a pip configuration pip would refuse."""
    from ._pipconf import read, sealed

    operator = read()
    return sealed(plan.settings.wheelhouse, operator) if plan.settings.wheelhouse else operator


# -- a plan recorded in the target, in another process's environment -----------


def in_this_environment(plan: Plan, options: Mapping[str, object], *, verb_resolves: bool = False) -> None:
    """A recorded plan's settings resolved as install() would resolve them
    here: what the application passed to install() and read from its
    pyproject stays as recorded; what it read from its own environment does
    not (this process's variables count instead); `options` (the command
    line) win over everything. The allowlist and the target stay the
    application's. A lock or wheelhouse setting that changed, or a lock file
    that did since the plan was recorded (a bundle made again in its folder),
    is applied again, as the application's next start would (unless
    `verb_resolves`: `lock` and `bundle` make closures)."""
    before = (plan.settings.lock, plan.settings.wheelhouse)
    stale = not lock_unchanged(plan)
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    table = _recorded_pyproject(plan)
    for row in Settings.rows():
        values[row.name], sources[row.name] = _recorded_value(row, plan, table)
        if row.name in options:
            values[row.name] = row.kind.finish(row.kind.check(options[row.name], row.name), None)
            sources[row.name] = "the command line"
    plan.settings = Settings(**values)
    plan.sources = sources
    if stale or (plan.settings.lock, plan.settings.wheelhouse) != before:
        for entry in plan.entries.values():
            entry.locked = ()
        plan.lock_stamp = ""
        if not verb_resolves:
            apply_lock(plan)


def _recorded_pyproject(plan: Plan) -> dict[str, object]:
    """The recorded plan's pyproject table, read here ({} without one): the
    record keeps only each setting's winner, and where the application's
    own variable won, the pyproject's value is what this shell falls back on.
    A pyproject others could write now is refused, as the application's next
    start refuses it."""
    if not plan.pyproject or not os.path.exists(plan.pyproject):
        return {}
    return _read_table(Raw(None, {}, plan.pyproject, read_pyproject(plan.pyproject)))


def _recorded_value(row: Setting[object], plan: Plan, table: Mapping[str, object]) -> tuple[object, str]:
    """One setting of a recorded plan, with this process's environment in
    place of the application's (see _value for the order of the sources)."""
    value, was = getattr(plan.settings, row.name), plan.sources.get(row.name)
    if row.name == "target" or was is None:  # the record lives there; or no word of where it came from
        return value, was or "the recorded plan"
    env = f"{row.env}=" if row.env else None
    if row.kill_switch:  # off in the application by its pyproject or install(): still off
        parts = [] if value else was.split(" and ")
        kept = [part for part in parts if not (env and part.startswith(env))]
        off = [" and ".join(kept)] if kept else []
        if row.env_value() is False:
            off.append(f"{row.env}={os.environ.get(str(row.env))}")
        return (False, " and ".join(off)) if off else (row.default(), "the default")
    by_argument = was.startswith("install(")
    by_pyproject = not by_argument and was != "the default" and not (env and was.startswith(env))
    found: list[tuple[object, str]] = [(value, was)] if by_pyproject else []
    if env and was.startswith(env) and row.key in table:  # the application's variable hid it
        where = f"{plan.pyproject} [{SECTION}] {row.key}"
        checked = row.kind.check(table[row.key], where)
        found.append((row.kind.finish(checked, os.path.dirname(plan.pyproject)), where))
    from_env = row.env_value()
    if from_env is not None:
        found.append((row.kind.finish(from_env, None), f"{row.env}={os.environ.get(str(row.env))}"))
    if by_argument:
        found.append((value, was))
    return found[-1] if found else (row.default(), "the default")


def operators_switch(plan: Plan) -> str:
    """For the command line's own installs (`prefetch`, an explicit
    operator action, which the errors of disabled imports tell to run):
    installs are disabled only by this environment's kill switch. The
    application's own switch (`enabled = false` in its pyproject,
    install(enabled=False), the variable it ran with) is about its imports.
    Returns what disables the application's installs ("" if nothing)."""
    application = "" if plan.settings.enabled else plan.sources.get("enabled", "the configuration")
    row = Settings.enabled
    if row.env_value() is False:
        enabled, why = False, f"{row.env}={os.environ.get(str(row.env))}"
    else:
        enabled, why = True, "the default"
    plan.settings = plan.settings.replace(enabled=enabled)
    plan.sources["enabled"] = why
    return application


def _value(row: Setting[object], table: Mapping[str, object], raw: Raw) -> tuple[object, str]:
    """One setting from its sources, strongest last, and which source that
    was; a kill switch is off if any source turns it off (and says which)."""
    where = f"{raw.pyproject} [{SECTION}]" if raw.pyproject else "pyproject"
    found: list[tuple[object, str]] = []
    if row.key in table:
        checked = row.kind.check(table[row.key], f"{where} {row.key}")
        found.append((row.kind.finish(checked, os.path.dirname(raw.pyproject)), f"{where} {row.key}"))
    from_env = row.env_value()
    if from_env is not None:
        found.append((row.kind.finish(from_env, None), f"{row.env}={os.environ.get(str(row.env))}"))
    if row.name in raw.arguments:
        checked = row.kind.check(raw.arguments[row.name], f"install({row.name}=...)")
        found.append((row.kind.finish(checked, None), f"install({row.name}={raw.arguments[row.name]!r})"))
    if row.kill_switch:
        off = [why for value, why in found if not value]
        return (False, " and ".join(off)) if off else (row.default(), "the default")
    return found[-1] if found else (row.default(), "the default")
