"""Activates lazy-import-hook in a child process started with `child_env()`.

`child_env()` puts this folder first on PYTHONPATH and the parent's validated
plan in LAZY_IMPORT_HOOK_CHILD_PLAN. At startup, `site` imports this module;
it takes its folder off sys.path again (so nothing is ever prepended for
good), finds the sitecustomize it stands in front of while the target is
not yet on sys.path (one shipped into the target must never run), installs
the hook from the plan (the target is appended, never prepended), makes sure
`usercustomize` cannot come from the target either, then runs the other
sitecustomize.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder


def _activate() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    hidden = PathFinder.find_spec("sitecustomize", sys.path)
    user = PathFinder.find_spec("usercustomize", sys.path)
    text = os.environ.get("LAZY_IMPORT_HOOK_CHILD_PLAN")
    if text:
        try:
            from lazy_import_hook._hook import install_plan

            install_plan(text)
        except Exception as e:  # a child must start even if activation fails
            print(f"lazy-import-hook: not active in this child: {e}", file=sys.stderr)
        if user is None:
            # site imports usercustomize after this module, with the target on
            # sys.path now: there is none elsewhere, so there must be none at all.
            sys.modules["usercustomize"] = None  # type: ignore[assignment]
    if hidden is not None and hidden.loader is not None:
        from importlib.util import module_from_spec

        module = module_from_spec(hidden)
        hidden.loader.exec_module(module)


_activate()
