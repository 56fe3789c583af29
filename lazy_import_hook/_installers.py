"""The installers this package can drive, in the order `auto` prefers them.

Adding one: a module with an `Installer` subclass, its name in NAMES and
its branch in installer_class."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._installer import Installer

NAMES = ("uv", "pip")  # "auto" takes the first one available
CHOICES = ("auto", *NAMES)


def installer_class(name: str) -> type[Installer]:
    if name == "uv":
        from ._uv import Uv

        return Uv
    if name == "pip":
        from ._pip import Pip

        return Pip
    raise ValueError(f"unknown installer {name!r}; known: {', '.join(NAMES)}")


def choose(preference: str) -> Installer:
    """The installer to use. `auto` means the first of NAMES that is available;
    forcing an installer that is missing raises, never silently falls back."""
    for name in NAMES if preference == "auto" else (preference,):
        found = installer_class(name).find()
        if found is not None:
            return found
    if preference == "uv":
        raise FileNotFoundError(
            "installer 'uv' was requested but no uv was found (neither the uv package "
            "nor uv on PATH): pip install uv, or use installer='pip'"
        )
    raise FileNotFoundError(
        f"no installer available: {sys.executable} has no pip and no uv was found; "
        "pip install uv, or install pip into this environment"
    )
