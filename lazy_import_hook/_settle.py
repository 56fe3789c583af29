"""The slow start: a configuration validated afresh (its startup cache key
changed), the target checked, prepared and recorded, the cache written.
What a start with an unchanged configuration never loads."""

from __future__ import annotations

import os

from . import _config, _plan, _target
from ._errors import warn
from ._holdings import scan, scan_layers
from ._plan import Plan
from ._prepare import prepare
from ._records import origin, record_id, running_elsewhere
from ._safety import problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._settings import Raw


def slow_plan(raw: Raw) -> Plan:
    """The plan validated afresh, its target settled, recorded and cached."""
    plan = _config.resolve(raw)  # ConfigError for anything bad
    checked_at = settle(plan)
    if not plan.unsafe:  # nothing of ours goes into an unsafe folder
        _record(plan)
        _plan.write_cache(raw.cache_path, plan, raw.key, checked_at)
    return plan


def settle(plan: Plan) -> int:
    """Check the read-only layers and the target, get the target ready
    (create, wipe, stamp) and record in the plan what each holds; returns
    the target's mtime as it was checked."""
    refused = scan_layers(plan)
    plan.problem = problem(plan.target)
    if plan.problem is None:
        _prepare_target(plan)
    report_problem(plan)
    checked_at = _target.mtime(plan.target)
    refused += [f"{line} in {plan.target}" for line in scan(plan)]
    for line in refused:
        warn(f"ignoring the .pth path line {line}")
    return checked_at


def _prepare_target(plan: Plan) -> None:
    """Create, wipe or stamp the target. One made now is checked again:
    another user may have made a folder on the way first (in /tmp)."""
    made_now = not os.path.isdir(plan.target)

    def users() -> list[str]:  # asked only when another Python built the target
        return running_elsewhere(plan.target)

    try:
        plan.foreign_abi = prepare(plan.target, enabled=plan.settings.enabled, users=users)
    except OSError as e:
        plan.problem = _target.Problem(_target.Problem.READONLY, f"{plan.target} is not writable: {e}")
        return
    if made_now:
        plan.problem = problem(plan.target)


def _record(plan: Plan) -> None:
    """Record the validated plan in the target (see _records)."""
    plan.record_id = record_id(plan)
    plan.origin = origin()
    try:
        _plan.write_record(plan)
    except OSError:
        pass  # a read-only target: nothing will be installed into it by this process


def report_problem(plan: Plan) -> None:
    for line in plan.warnings():
        warn(line)
