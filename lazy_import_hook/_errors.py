"""The exceptions of lazy-import-hook.

Everything that goes wrong inside an import is a `LazyInstallError`, a
`ModuleNotFoundError`, so `try: import x / except ImportError:` fallbacks keep
working. Bad configuration is a `ConfigError` (a `ValueError`), raised by
`install()` itself. Subclasses of `LazyInstallError` are internal; callers
branch on `LazyInstallError.reason`, a short stable string.
"""

from __future__ import annotations

import sys

__all__ = [
    "ConfigError",
    "HashMismatchError",
    "InstallInterruptedError",
    "InstallTimeoutError",
    "InstallerFailedError",
    "InstallsDisabledError",
    "LazyInstallError",
    "ModuleStillMissingError",
    "PinConflictError",
    "SdistRefusedError",
    "TargetRefusedError",
    "warn",
]


class ConfigError(ValueError):
    """A bad allowlist entry or setting, raised by `install()` (never inside an import)."""


class LazyInstallError(ModuleNotFoundError):
    """An allow-listed import that could not be satisfied.

    `name` is the module being imported, `reason` a stable keyword, `command`
    the command a person could run by hand (it also ends the message), and
    `output` the tail of the installer's own output, when there was one.
    """

    reason = "failed"

    def __init__(
        self,
        message: str,
        *,
        name: str,
        command: str | None = None,
        output: str = "",
    ) -> None:
        self.command = command
        self.output = output
        self.message = message  # without the output and the command
        text = message
        if output:
            text += "\ninstaller output (tail):\n" + _indent(output)
        if command:
            text += f"\nTo install it by hand: {command}"
        super().__init__(text, name=name)


class InstallsDisabledError(LazyInstallError):
    reason = "disabled"


class TargetRefusedError(LazyInstallError):
    """The target is not writable, or not safe to write to."""

    reason = "target-refused"


class InstallerFailedError(LazyInstallError):
    reason = "installer-failed"


class HashMismatchError(InstallerFailedError):
    reason = "hash-mismatch"


class SdistRefusedError(InstallerFailedError):
    reason = "sdist-refused"


class InstallTimeoutError(LazyInstallError):
    reason = "timeout"


class InstallInterruptedError(LazyInstallError):
    """A background prefetch that never finished here: the process began to
    exit first, was forked from the one running it, or install() or
    uninstall() replaced the hook that queued it. Only a prefetch's future
    holds it; an import then installs on its own."""

    reason = "interrupted"


class ModuleStillMissingError(LazyInstallError):
    reason = "still-missing"


class PinConflictError(LazyInstallError):
    """Another application that shares the target pins what this one would replace."""

    reason = "pin-conflict"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """A warning that points at the application's line, not at this package."""
    import warnings

    warnings.warn(f"lazy-import-hook: {message}", category, stacklevel=_outside_level())


def _outside_level() -> int:
    """The stacklevel of the first frame outside this package (and importlib)."""
    frame = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        ("lazy_import_hook", "importlib", "_frozen_importlib")
    ):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
