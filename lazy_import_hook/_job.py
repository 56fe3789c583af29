"""One job for the installer: the entries it installs, who asked, and what a
person would run to do the same by hand."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._errors import LazyInstallError
    from ._plan import Entry, Plan


class Job:
    """One installer run for `entries`; `why` says who asked ("for 'import x'"),
    `trigger` which module (default: the first caller outside the hook), and
    `via` what, when not an import ("prefetch")."""

    def __init__(
        self, plan: Plan, entries: Sequence[Entry], why: str, *, trigger: str | None = None, via: str = ""
    ) -> None:
        from ._audit import triggering_module

        self.plan = plan
        self.trigger = triggering_module() if trigger is None else trigger
        self.via = via
        self.entries = list(entries)
        self.requirements = tuple(r for e in entries for r in e.requirements)
        self.dists = tuple(d for e in entries for d in e.dists)
        self.hashes = tuple(h for e in entries for h in e.hashes)
        self.locked = tuple(line for e in entries for line in e.locked)  # the lock's closures
        self.what = ", ".join(self.requirements)
        self.name = entries[0].import_name  # the ImportError's name
        self.subject = f"{self.what} {why}"
        self.only_binary = not (plan.settings.allow_sdist or any(e.allow_sdist for e in entries))

    @property
    def command(self) -> str:
        """What a person runs to do the same by hand: only needed when said
        (shlex imports re, before the installer could start)."""
        return prefetch_command(self.plan, [e.import_name for e in self.entries])

    @property
    def cutoff(self) -> str:
        """The release-age cooldown's cutoff (RFC 3339, UTC), or "". A locked
        closure has none: the lock decided, when it was made."""
        age = self.plan.settings.min_release_age
        if not age or self.locked:
            return ""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age))

    def error(self, kind: type[LazyInstallError], message: str) -> LazyInstallError:
        return kind(message, name=self.name, command=self.command)


def prefetch_command(plan: Plan, names: Sequence[str]) -> str:
    """The command that runs the same constrained, staged install by hand."""
    import shlex

    where = ["--pyproject", plan.pyproject] if plan.pyproject else ["--target", plan.target]
    return shlex.join(["lazy-import-hook", *where, "prefetch", *names])
