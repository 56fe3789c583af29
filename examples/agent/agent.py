"""An "agent" that stays small: its backends install on first import.

Run from this folder:  python agent.py
"""

from __future__ import annotations

import sys
import time

import lazy_import_hook

lazy_import_hook.install()  # reads [tool.lazy-import-hook] from ./pyproject.toml

started = time.perf_counter()
import isodate  # noqa: E402  (installed into .lazy-packages on the first run)

duration = isodate.parse_duration("P3DT4H30M")
print(f"isodate {isodate.__version__ if hasattr(isodate, '__version__') else ''}".strip())
print(f"  parsed P3DT4H30M -> {duration!r} ({duration.total_seconds():.0f} s)")
print(f"  imported from {isodate.__file__}")
print(f"  import took {time.perf_counter() - started:.2f} s")

try:
    import yaml
except ImportError as e:  # the fallback idiom keeps working if an install fails
    print(f"yaml unavailable: {e}", file=sys.stderr)
else:
    print(f"yaml {yaml.__version__}: {yaml.safe_load('steps: [plan, act]')}")
    print(f"  imported from {yaml.__file__}")
