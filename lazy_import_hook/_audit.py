"""The audit trail: one JSON line per install attempt, kept inside the target."""

from __future__ import annotations

import os
import sys
import time

from ._target import meta

AUDIT = "audit.jsonl"


def record(target: str, **fields: object) -> None:
    """Append one line; never lets a logging problem turn into an import failure."""
    import json

    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), **fields}
    try:
        os.makedirs(meta(target), exist_ok=True)
        with open(meta(target, AUDIT), "a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
    except OSError as e:
        print(f"lazy-import-hook: could not write the audit log: {e}", file=sys.stderr)


def last(target: str, count: int = 10) -> list[dict[str, object]]:
    import json

    try:
        with open(meta(target, AUDIT), encoding="utf-8", errors="replace") as f:
            lines = f.readlines()[-count:]
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def triggering_module() -> str | None:
    """The first module on the stack that is neither importlib nor this package."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (
            name.startswith(("importlib", "_frozen_importlib", "lazy_import_hook"))
            or frame.f_code.co_filename.startswith("<frozen importlib")
        ):
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return None
