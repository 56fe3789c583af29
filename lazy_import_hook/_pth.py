"""`.pth` files in the target (or a read-only layer): their path lines join
sys.path after the folder; their executable `import` lines run only when
the user opted in."""

from __future__ import annotations

import os
import sys

from ._target import untrusted


def read_pth(target: str, *, outside: bool = False) -> tuple[list[str], list[str], list[str]]:
    """(path lines as absolute folders that exist and are safe, executable
    import lines, refused path lines with why). A path line must stay inside
    the target unless `outside` (the user opted in with pth-imports), and
    pass the target's own checks: nobody else may write to it."""
    paths: list[str] = []
    imports: list[str] = []
    refused: list[str] = []
    real_target = os.path.realpath(target)
    for lines in _pth_files(target):
        for raw in lines:
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                imports.append(line)
                continue
            path = os.path.abspath(os.path.join(target, line))
            if not os.path.isdir(path) or path in paths:
                continue
            why = _refusal(real_target, path, outside)
            if why:
                refused.append(f"{line!r} ({why})")
            else:
                paths.append(path)
    return paths, imports, refused


def _refusal(real_target: str, path: str, outside: bool) -> str | None:
    real = os.path.realpath(path)
    if not outside and real != real_target and not real.startswith(real_target + os.sep):
        return f"{real} is outside {real_target}; pth-imports = true allows it"
    try:
        why = untrusted(os.stat(path), path)
    except OSError as e:
        return str(e)
    return f"{real} is {why}" if why else None


def _pth_files(target: str) -> list[list[str]]:
    try:
        names = sorted(n for n in os.listdir(target) if n.endswith(".pth"))
    except OSError:
        return []
    found = []
    for name in names:
        try:
            with open(os.path.join(target, name), encoding="utf-8") as f:
                found.append(f.read().splitlines())
        except (OSError, UnicodeDecodeError):
            continue
    return found


def run_pth_imports(lines: list[str]) -> None:
    """What site.py does with a .pth import line; only when pth-imports = true."""
    for line in lines:
        try:
            exec(line)
        except Exception as e:
            print(f"lazy-import-hook: error in .pth import line {line!r}: {e}", file=sys.stderr)
