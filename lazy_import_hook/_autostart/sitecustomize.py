"""Activates lazy-import-hook in a child process started with `child_env()`.

`child_env()` puts this folder first on PYTHONPATH and the parent's validated
plan in LAZY_IMPORT_HOOK_CHILD_PLAN. At startup, `site` imports this module;
it takes its folder off sys.path again (so nothing is ever prepended for
good), installs the hook from the plan (the target is appended, never
prepended), then hands over to any other sitecustomize it was hiding.
"""

from __future__ import annotations

import os
import sys


def _activate() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    text = os.environ.get("LAZY_IMPORT_HOOK_CHILD_PLAN")
    if text:
        try:
            from lazy_import_hook._hook import install_plan

            install_plan(text)
        except Exception as e:  # a child must start even if activation fails
            print(f"lazy-import-hook: not active in this child: {e}", file=sys.stderr)
    # Run the sitecustomize this module stands in front of, if there is one.
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    spec = PathFinder.find_spec("sitecustomize", sys.path)
    if spec is not None and spec.loader is not None:
        module = module_from_spec(spec)
        spec.loader.exec_module(module)


_activate()
