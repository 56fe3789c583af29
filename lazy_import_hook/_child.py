"""What carries the hook into a child process (`child_env()`), and what keeps
it out of the installers."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

CHILD_PLAN = "LAZY_IMPORT_HOOK_CHILD_PLAN"
# Set in every installer's environment: the hook is inert there, whatever
# activated it (a sitecustomize, a .pth file, child_env()), so an installer
# that tries an optional import never waits for the lock its parent holds.
INSIDE_INSTALLER = "LAZY_IMPORT_HOOK_INSIDE_INSTALLER"


def autostart_dir() -> str:
    """The folder holding the tiny `sitecustomize` that activates a child."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_autostart")


def with_child_hook(env: Mapping[str, str], plan_text: str) -> dict[str, str]:
    result = without_child_hook(env)
    result["PYTHONPATH"] = os.pathsep.join(
        [autostart_dir(), *filter(None, result.get("PYTHONPATH", "").split(os.pathsep))]
    )
    result[CHILD_PLAN] = plan_text
    return result


def installer_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment an installer runs with: no child hook, and the marker.
    UV_CONFIG_FILE is dropped: it names a uv.toml that --no-config still reads."""
    result = without_child_hook(env)
    result.pop("UV_CONFIG_FILE", None)
    result[INSIDE_INSTALLER] = "1"
    return result


def inside_installer() -> bool:
    return bool(os.environ.get(INSIDE_INSTALLER))


def without_child_hook(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without what `with_child_hook()` adds (the installers run with
    this: the hook must never run inside them)."""
    result = dict(env)
    result.pop(CHILD_PLAN, None)
    if "PYTHONPATH" in result:
        here = autostart_dir()
        kept = [p for p in result["PYTHONPATH"].split(os.pathsep) if p and p != here]
        if kept:
            result["PYTHONPATH"] = os.pathsep.join(kept)
        else:
            del result["PYTHONPATH"]
    return result
