"""The audit trail, kept inside the target: one JSON line per install
attempt, verification and, for uv, provenance (written after the import)."""

from __future__ import annotations

import os
import sys
import time

from ._files import OWN_FILE, make_folders
from ._target import meta, read_trusted

AUDIT = "audit.jsonl"


def record(target: str, **fields: object) -> None:
    """Append one line; never lets a logging problem turn into an import failure."""
    import json

    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), **fields}
    data = (json.dumps(line, sort_keys=True) + "\n").encode("utf-8")
    try:
        make_folders(meta(target))
        # One write on an append-only descriptor: lines written by other
        # processes (uv's provenance comes outside the target's lock) never
        # interleave with this one, however long it is.
        fd = _open_log(target)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
    except OSError as e:
        print(f"lazy-import-hook: could not write the audit log: {e}", file=sys.stderr)


def _open_log(target: str) -> int:
    """The log, never through a link (ELOOP instead): a planted
    `.lazy-import-hook` or `audit.jsonl` link must not have a line appended,
    or a file created, wherever it points."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | nofollow
    if os.open not in os.supports_dir_fd:
        return os.open(meta(target, AUDIT), flags, OWN_FILE)
    folder = os.open(meta(target), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow)
    try:
        return os.open(AUDIT, flags, OWN_FILE, dir_fd=folder)
    finally:
        os.close(folder)


def last(target: str, count: int = 10) -> list[dict[str, object]]:
    """The last `count` entries, from a log nobody else could have written
    (read_trusted: a foreign target's log, or a FIFO under its name, is not read)."""
    import json

    text = read_trusted(meta(target, AUDIT), errors="replace") if count > 0 else None
    lines = text.splitlines()[-count:] if text else []
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
