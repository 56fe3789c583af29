"""`lazy-import-hook status`: what the allowlist asks for, what the target
holds and serves, who shares it, and what happened lately."""

from __future__ import annotations

import json
import os
import sys

from . import _audit, _distributions, _target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._plan import Entry, Plan
    from ._verify import Verification


def entry_state(plan: Plan, entry: Entry, target_versions: dict[str, str]) -> dict[str, object]:
    """One allowlist entry as `status` shows it: its state, what backs it,
    and what looks wrong (an unpinned requirement, a core package at
    another version than the pin, an import name the distribution lacks)."""
    from ._environment import core_distributions
    from ._holdings import installed_matches

    state: dict[str, object] = {
        "import_name": entry.import_name, "requirements": list(entry.requirements), "pinned": _pinned(entry),
        "served_by": None,
    }  # fmt: skip
    if not entry.active:
        return {**state, "state": "not-for-this-platform"}
    core = core_distributions(plan.paths())
    in_core = {d: core[d] for d in entry.dists if d in core}
    if in_core or _core_provides(plan, entry.import_name):
        off = [f"the entry asks for {r}" for r, d in zip(entry.requirements, entry.dists)
               if d in in_core and not installed_matches(r, in_core[d])]  # fmt: skip
        detail = ", ".join(f"{d} {v}" for d, v in in_core.items()) or "importable without the target"
        return {**state, "state": "core", "served_by": "core", "detail": "; ".join([detail, *off])}
    layer = next((layer.folder for layer in plan.layers if entry.import_name in layer.verified), None)
    if layer is not None:
        detail = _installed_detail(layer, entry, _distributions.installed_versions(layer))
        return {**state, "state": "installed", "served_by": layer, "detail": detail}
    return _in_target(plan, entry, target_versions, state)


def _in_target(
    plan: Plan, entry: Entry, versions: dict[str, str], state: dict[str, object]
) -> dict[str, object]:
    """An entry no layer serves: what the target holds, and the stale
    copies the layers hide (the next import installs into the target)."""
    from ._holdings import stale_versions

    holds = _distributions.installed_versions
    hidden = [f"{stale} in the read-only layer {layer.folder} (hidden)"
              for layer in plan.layers if entry.import_name in layer.hidden
              for stale in stale_versions(entry, holds(layer.folder))]  # fmt: skip
    stale = stale_versions(entry, versions)
    if not stale and all(d in versions for d in entry.dists):
        detail = "; ".join([_installed_detail(plan.target, entry, versions), *hidden])
        return {**state, "state": "installed", "served_by": plan.target, "detail": detail}
    if stale or hidden:
        return {**state, "state": "stale", "detail": ", ".join([*stale, *hidden])}
    return {**state, "state": "missing"}


def _pinned(entry: Entry) -> bool:
    """Exact pins, or a locked closure (which pins every file)."""
    return bool(entry.locked) or all("==" in r.partition(";")[0] for r in entry.requirements)


def _installed_detail(folder: str, entry: Entry, versions: dict[str, str]) -> str:
    detail = ", ".join(f"{d} {versions[d]}" for d in entry.dists if d in versions)
    if not _distributions.on_disk(folder, entry.import_name):
        provides = _distributions.provided_modules(folder, entry.dists)
        detail = f"no module {entry.import_name!r}; the distribution provides {', '.join(provides) or '-'}"
    return detail


def _core_provides(plan: Plan, import_name: str) -> bool:
    from importlib.machinery import PathFinder

    top = import_name.split(".", 1)[0]
    excluded = {os.path.abspath(p) for p in plan.paths()}
    paths = [p for p in sys.path if os.path.abspath(p or ".") not in excluded]
    spec = PathFinder.find_spec(top, paths)
    return spec is not None and spec.origin is not None and top == import_name


def status_report(plan: Plan, log: int) -> dict[str, object]:
    versions = _distributions.installed_versions(plan.target)
    return {
        "target": plan.target,
        "abi_stamp": _target.read_stamp(plan.target),
        "abi_current": _target.abi_tag(),
        **_installer(plan),
        "installer_setting": plan.settings.installer,
        "installs_enabled": plan.settings.enabled,
        "installs_enabled_by": plan.sources.get("enabled", "the default"),
        **_supply_chain(plan),
        "problem": plan.problem.message if plan.problem else None,
        "pyproject": plan.pyproject or None,
        "read_only_layers": _layers(plan),
        "entries": [entry_state(plan, e, versions) for e in plan.entries.values()],
        **_applications(plan.target),
        "recent": _audit.last(plan.target, log),
    }


def _supply_chain(plan: Plan) -> dict[str, object]:
    """The lock, wheelhouse and cooldown in effect, and who set them."""
    from ._config import lock_path

    lock, age, wheelhouse = lock_path(plan), plan.settings.min_release_age, plan.settings.wheelhouse
    where = plan.sources.get
    lock_source = where("lock") if plan.settings.lock else "the wheelhouse's" if wheelhouse else "the default"
    return {
        "lock": f"{lock} ({lock_source})" if lock else None,
        "wheelhouse": f"{wheelhouse} ({where('wheelhouse', 'setting')})" if wheelhouse else None,
        "min_release_age": f"{age / 86400:g} days ({where('min_release_age', 'setting')})" if age else None,
    }


def _layers(plan: Plan) -> list[dict[str, object]]:
    """Each read-only layer: in use or why not, what it serves and hides."""
    from ._layers import in_stack, unusable

    used = {layer.folder: layer for layer in plan.layers}
    return [
        {"folder": folder, "in_use": folder in used, "abi_stamp": _target.read_stamp(folder),
         "serves": sorted(used[folder].verified) if folder in used else [],
         "hides": list(used[folder].hidden) if folder in used else [],
         "problem": None if folder in used else unusable(folder)}
        for folder in in_stack(plan.target, plan.settings.read_only_targets)
    ]  # fmt: skip


def _installer(plan: Plan) -> dict[str, object]:
    """The installer `auto` picks, and the index it will use and who said so."""
    from ._config import pip_config
    from ._installers import choose

    try:
        installer = choose(plan.settings.installer)
    except FileNotFoundError as e:
        return {"installer": f"none ({e})", "index": None}
    try:
        index = installer.index(pip_config(plan))
    except ValueError as e:
        index = f"unknown: {e}"
    return {"installer": installer.name, "index": index}


def _applications(target: str) -> dict[str, object]:
    """The applications whose plans are recorded in the target, and where
    their pins disagree."""
    from ._records import disagreements, recorded

    records = recorded(target)
    return {
        "applications": [
            {"plan": r.record_id, "origin": r.plan.origin, "pyproject": r.plan.pyproject or None,
             "in_use": r.live, "requirements": [q for e in r.plan.entries.values() for q in e.requirements]}
            for r in records
        ],
        "conflicts": disagreements(records),
    }


def status(
    plan: Plan, *, as_json: bool, log: int, verify: bool = False, application_disabled: str = "",
    lock_problem: str = "",
) -> int:
    """Print the status; with `verify`, also check the target against its
    RECORDs: exit status 1 on any finding, else 0; 2 for a lock file that
    no longer fits the allowlist (`lock_problem`, shown with the rest, the
    entries as they stand without it). `application_disabled`: what
    disables the application's own installs, when this command's are not
    disabled by the same (see _config.operators_switch)."""
    report = status_report(plan, log)
    report["application_installs_disabled_by"] = application_disabled or None
    report["lock_problem"] = lock_problem or None
    result = _verify(plan.target, trusted=plan.problem is None) if verify else None
    if as_json:
        report.pop("installer_setting")
        if result is not None:
            from ._verify import as_json as verify_json

            report["verify"] = verify_json(result)
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
        if result is not None:
            _print_verify(result)
    if lock_problem:
        return 2
    return 0 if result is None or result.ok else 1


def _print_report(report: dict[str, object]) -> None:
    stamp = report["abi_stamp"]
    if stamp is None:
        stamp_note = "(none yet)"
    elif stamp == report["abi_current"]:
        stamp_note = f"{stamp} (this Python)"
    else:
        stamp_note = f"{stamp} (another Python: the next install() wipes it)"
    print(f"target:     {report['target']}")
    print(f"abi stamp:  {stamp_note}")
    _print_layers(report["read_only_layers"])  # type: ignore[arg-type]
    print(f"installer:  {report['installer']} (setting: {report['installer_setting']})")
    print(f"index:      {report['index']}")
    enabled = "enabled" if report["installs_enabled"] else f"DISABLED by {report['installs_enabled_by']}"
    application = report["application_installs_disabled_by"]
    if application and application != report["installs_enabled_by"]:  # this command has a switch of its own
        here = "enabled for this command" if report["installs_enabled"] else enabled
        enabled = f"{here}; the application's imports: DISABLED by {application}"
    print(f"installs:   {enabled}")
    for key, label in (("lock", "lock"), ("wheelhouse", "wheelhouse"), ("min_release_age", "cooldown")):
        if report[key]:
            print(f"{label + ':':<11} {report[key]}")
    if report["problem"]:
        print(f"problem:    {report['problem']}")
    if report["lock_problem"]:
        print(f"lock:       NOT APPLIED: {report['lock_problem']}")
    layered = str(report["target"]) if report["read_only_layers"] else None
    _print_entries(report["entries"], layered)  # type: ignore[arg-type]
    _print_applications(report["applications"], report["conflicts"])  # type: ignore[arg-type]
    _print_recent(report["recent"])  # type: ignore[arg-type]


def _verify(target: str, *, trusted: bool) -> Verification:
    """The target checked against its RECORDs (and the audit line written);
    nothing is written into a target the hook must not write (another
    user's, say). A target that does not exist yet holds nothing to find."""
    from ._verify import Verification, verify

    if not os.path.isdir(target):
        return Verification(target, 0, 0, (), (), ())
    return verify(target, audit=trusted, trusted=trusted)


def _print_verify(result: Verification) -> None:
    from ._verify import findings, summary

    print(f"verify:     {summary(result)}")
    for line in findings(result):
        print(f"  {line}")


def _print_applications(applications: list[dict[str, object]], conflicts: list[str]) -> None:
    if len(applications) > 1 or conflicts:
        print("applications sharing this target:")
        for app in applications:
            use = "in use" if app["in_use"] else "not running"
            print(f"  {app['pyproject'] or app['origin']}  ({use}; plan {app['plan']})")
    if conflicts:
        print("conflicting pins (give each application its own target, or make them agree):")
        for line in conflicts:
            print(f"  {line}")


def _print_layers(layers: list[dict[str, object]]) -> None:
    def names(value: object) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else ""

    for layer in layers:
        if layer["in_use"]:
            hides = f"; hides the stale {names(layer['hides'])}" if layer["hides"] else ""
            note = f"serves {names(layer['serves']) or 'nothing allow-listed'}{hides}"
        else:
            note = f"NOT USED: {layer['problem']}"
        print(f"read-only:  {layer['folder']} ({note})")


def _print_entries(entries: list[dict[str, object]], target: str | None = None) -> None:
    """One line per entry; with read-only layers (`target` given), also what serves it."""
    print("allowlist:")
    width = max((len(str(e["import_name"])) for e in entries), default=0)
    for item in entries:
        detail = f" ({item['detail']})" if item.get("detail") else ""
        wanted = ", ".join(str(r) for r in item["requirements"])  # type: ignore[attr-defined]
        unpinned = "" if item.get("pinned", True) else " [unpinned]"
        served = f" [served by {_place(item['served_by'], target)}]" if target and item["served_by"] else ""
        print(f"  {item['import_name']:<{width}}  {item['state']:<22} {wanted}{unpinned}{detail}{served}")


def _place(served_by: object, target: str) -> str:
    if served_by == "core":
        return "the core environment"
    return "the target" if served_by == target else f"the read-only layer {served_by}"


def _print_recent(recent: list[dict[str, object]]) -> None:
    if not recent:
        return
    verified = any(r.get("event") == "verify" for r in recent)
    print("recent installs and verifications:" if verified else "recent installs:")
    lines = {"verify": _verify_line, "provenance": _provenance_line}
    for r in recent:
        print(printable(f"  {r.get('time')}  {lines.get(str(r.get('event')), _install_line)(r)}"))


def printable(text: str) -> str:
    """`text` with control characters escaped: a log line must not drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _install_line(r: dict[str, object]) -> str:
    outcome = "ok" if r.get("status") == 0 else f"failed ({r.get('status')})"
    listed = r.get("requirements")
    what = ", ".join(map(str, listed)) if isinstance(listed, list) else ""
    tool = r.get("installer_version") or r.get("installer")
    names = r.get("import_name")
    names = ", ".join(map(str, names)) if isinstance(names, list) else names
    return f"{names}: {what} with {tool} in {r.get('duration_s')} s: {outcome}"


def _provenance_line(r: dict[str, object]) -> str:
    """`toymod: where its wheels came from (uv's resolution): 2 recorded`."""
    files = r.get("provenance")
    names = r.get("import_name")
    names = ", ".join(map(str, names)) if isinstance(names, list) else names
    if isinstance(files, list) and r.get("status") == 0:
        said = f"{len(files)} recorded"
    else:
        first = files[0] if isinstance(files, list) and files else None
        said = f"unavailable ({first.get('unavailable') if isinstance(first, dict) else files})"
    return f"{names}: where its wheels came from ({r.get('installer')}'s resolution): {said}"


def _verify_line(r: dict[str, object]) -> str:
    """`verify: 3 distributions, 40 files in 0.02 s: ok` (or the counts of findings)."""
    counts = r.get("counts")
    found = ", ".join(f"{n} {k}" for k, n in counts.items() if n) if isinstance(counts, dict) else ""
    outcome = "ok" if r.get("status") == 0 else (found or str(r.get("status")))
    checked = f"{r.get('distributions')} distributions, {r.get('files')} files"
    return f"verify: {checked} in {r.get('duration_s')} s: {outcome}"
