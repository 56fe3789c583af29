"""Processes that multiprocessing starts get the hook, without `child_env()`.

`fork` needs nothing: the child is a copy of this process, hook included.
`spawn` and `forkserver` start a fresh interpreter and send it, through a
pipe, the "preparation data" of `multiprocessing.spawn.get_preparation_data()`
(the parent's sys.path, its main module, ...), which the child unpickles
first of all: before it sets sys.path, re-imports the parent's main module
or unpickles the task. While a hook is installed, one more item goes along,
and unpickling it in the child installs the hook from this process's
validated plan (`_hook.install_plan`, as for `child_env()`). Why this way:

- Only multiprocessing's children get it. `os.environ` is not touched, so a
  subprocess the application starts itself (an installer above all, and any
  other Python) gets nothing, as before.
- The plan is the one in force when the child starts: after `uninstall()` a
  child gets no hook, after another `install()` the new plan; a kill switch
  set in this process by then goes along (and the child's own environment
  is read too).
- A worker's sys.path is the parent's (multiprocessing sets it), so the
  target is where the parent has it: last. The hook in the child knows the
  target is its own, so a main module that calls `install()` again in the
  child (spawn re-imports it) does not take it for a folder put ahead of
  the core environment.
- The forkserver process itself gets at most sys.path and the main module
  from the parent (recent patch releases of 3.12 and 3.13 use them, older
  ones ignore them), never the item: each worker it forks gets its own.
  That sys.path leaves out the folders the hook appended: the main
  module's `install()` appends them again, and without the hook a version
  there that the pins no longer allow must not be served.
- Nothing of multiprocessing is imported for this (the warm start stays
  light), and no import pays for the wait: `multiprocessing.spawn` is
  patched at `install()` if it is loaded, else once it has run (see
  `_finder.after_import`: a path hook, nothing on sys.meta_path; a
  multiprocessing served by a meta-path finder of its own is not seen).

The item imports lazy_import_hook in the child with the parent's sys.path
(the one the child adopts a moment later anyway), so the child finds the
package where the parent did; if it cannot start the hook, it says so on
stderr and the worker runs without it.
"""

from __future__ import annotations

import os
import sys

from ._errors import ConfigError
from ._finder import active_finder
from ._plan import child_text
from ._settings import Settings
from ._target import ACTIVATED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

KEY = "lazy_import_hook"  # the item's key; multiprocessing's prepare() ignores keys it does not know
# The name forkserver's ensure_running() asks get_preparation_data() for (3.9
# to 3.14): that data starts the forkserver process itself.
_FORKSERVER = "ignore"

# Runs in the child, while it unpickles the preparation data (see _Item).
_START = """\
import sys
own, sys.path = sys.path, list(path)
try:
    from lazy_import_hook._hook import install_plan
    sys.path = own
    install_plan(plan, disabled_by=disabled_by)
except Exception as e:
    print(f"lazy-import-hook: not active in this worker: {e}", file=sys.stderr)
finally:
    sys.path = own
"""


def patch(spawn: ModuleType) -> None:
    """Wrap `spawn.get_preparation_data` (once); `install()` asks for it
    once `multiprocessing.spawn` is loaded."""
    original = getattr(spawn, "get_preparation_data", None)
    if original is not None and not isinstance(original, _WithHook):
        # setattr: mypy knows no such attribute on a plain module.
        setattr(spawn, "get_preparation_data", _WithHook(original))  # noqa: B010


class _WithHook:
    """`multiprocessing.spawn.get_preparation_data`, plus the hook's item."""

    def __init__(self, original: Callable[[str], dict[str, object]]) -> None:
        self.__wrapped__ = original

    def __call__(self, name: str) -> dict[str, object]:
        data = self.__wrapped__(name)
        finder = active_finder()
        if finder is None:
            return data
        if name == _FORKSERVER:
            path = data.get("sys_path")
            if isinstance(path, list):  # it is sys.path itself: replaced, never changed
                data["sys_path"] = [p for p in path if p not in ACTIVATED]
        else:
            data[KEY] = _Item(child_text(finder.plan), _kill_switch())
        return data


def _kill_switch() -> str:
    """What disables installs in this process's environment now ("" if nothing).
    A forkserver's workers have the environment the forkserver started with."""
    row = Settings.enabled
    try:
        off = row.env_value() is False
    except ConfigError:  # a value that is neither on nor off: the safe reading
        off = True
    return f"{row.env}={os.environ.get(str(row.env))} (in the process that started this one)" if off else ""


class _Item:
    """Pickled into the preparation data; unpickling it runs `_START` in the child."""

    __slots__ = ("disabled_by", "path", "plan")

    def __init__(self, plan: str, disabled_by: str) -> None:
        self.plan = plan
        self.disabled_by = disabled_by
        self.path = list(sys.path)

    def __reduce__(self) -> tuple[object, ...]:
        # exec, not a function of ours: the child may not find lazy_import_hook
        # on its own sys.path yet, and a worker must start even then.
        return (exec, (_START, {"plan": self.plan, "disabled_by": self.disabled_by, "path": self.path}))
