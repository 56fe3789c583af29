"""`.pth` files in the target: their path lines join sys.path after the
target; their executable `import` lines run only when the user opted in."""

from __future__ import annotations

import os
import sys


def read_pth(target: str) -> tuple[list[str], list[str]]:
    """Path lines (as absolute folders that exist) and executable import lines."""
    paths: list[str] = []
    imports: list[str] = []
    for lines in _pth_files(target):
        for raw in lines:
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                imports.append(line)
                continue
            path = os.path.abspath(os.path.join(target, line))
            if os.path.isdir(path) and path not in paths:
                paths.append(path)
    return paths, imports


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
