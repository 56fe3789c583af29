"""pip as an installer: `python -m pip install --target ...` with this interpreter.

pip gets the operator's pip settings that say where packages come from, and
only those: every `PIP_*` variable and pip.conf is replaced by the effective
values of the keys `_pipconf` carries (`PIP_CONFIG_FILE=os.devnull`), so a
`target`, `user`, `root`, `platform`, `no-binary`... set anywhere never
reaches it."""

from __future__ import annotations

import os
import sys

from ._installer import Installer, InstallRequest, Launch, base_environment, run_resolver

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from importlib.machinery import ModuleSpec

    from ._lockfile import Locked
    from ._pipconf import PipConfig


class Pip(Installer):
    name = "pip"

    @classmethod
    def find(cls) -> Pip | None:
        return cls(sys.executable) if _pip_spec() is not None else None

    def command(self, request: InstallRequest, launch: Launch | None = None) -> list[str]:
        cmd = [self.executable, "-m", "pip", "install", "--target", request.target]
        cmd += ["--no-input", "--disable-pip-version-check", "--no-warn-script-location"]
        cmd += ["--progress-bar", "off"]
        cmd.append("--compile" if request.compile_bytecode else "--no-compile")
        if request.report:
            cmd += ["--report", request.report]
        return cmd + self.options(request, launch)

    def provenance_probe(self, request: InstallRequest, launch: Launch) -> Callable[[], object]:
        """What pip installed, as its --report file says (read after the run)."""

        def read() -> object:
            from ._provenance import from_pip_report

            try:
                with open(request.report, encoding="utf-8") as f:
                    return from_pip_report(f.read())
            except (OSError, ValueError) as e:
                return f"pip's report could not be read: {e}"

        return read

    def resolve(
        self, requirements: Sequence[str], constraints: str, launch: Launch, *, work: str, cutoff: str,
        python_version: str | None = None, platform: str | None = None,
    ) -> list[Locked]:  # fmt: skip
        from ._provenance import from_pip_report

        # --target (never written: a dry run) is what lets pip take --platform.
        cmd = [self.executable, "-m", "pip", "install", "--dry-run", "--target", os.path.join(work, "t")]
        cmd += ["--ignore-installed", "--quiet"]
        cmd += ["--report", "-", "--no-input", "--disable-pip-version-check", "--only-binary", ":all:"]
        cmd += ["--constraint", constraints, *(self.cutoff_options(cutoff) if cutoff else [])]
        cmd += ["--python-version", python_version] if python_version else []
        cmd += ["--platform", platform] if platform else []
        return from_pip_report(run_resolver([*cmd, *launch.options, "--", *requirements], launch, work))

    def cooldown_problem(self) -> str | None:
        found = pip_version()
        number = tuple(int(p) for p in found.split(" ")[-1].split(".")[:2] if p.isdigit())
        if len(number) == 2 and number >= (26, 0):
            return None
        return (
            f"min-release-age needs pip 26.0 or later for its --uploaded-prior-to (this environment "
            f'has {found}), or uv: upgrade pip, or set installer = "uv"'
        )

    def cutoff_options(self, cutoff: str) -> list[str]:
        return ["--uploaded-prior-to", cutoff]

    def launch(self, pip: PipConfig, env: Mapping[str, str] | None = None) -> Launch:
        result, dropped = base_environment(env)
        dropped += sorted(k for k in result if k.startswith("_PIP_"))  # pip-internal switches
        result = {k: v for k, v in result.items() if not k.startswith(("PIP_", "_PIP_"))}
        result["PIP_CONFIG_FILE"] = os.devnull
        for key, value in pip.values.items():
            result["PIP_" + key.upper().replace("-", "_")] = value.raw
        dropped += [f"{key} ({value.source})" for key, value in sorted(pip.others.items())]
        return Launch(result, [], dropped)

    def index(self, pip: PipConfig, env: Mapping[str, str] | None = None) -> str:
        return pip.describe()

    def version_probe(self) -> Callable[[], str]:
        return pip_version

    def source_only(self, output: str, timeout: float, cwd: str, env: Mapping[str, str]) -> str | None:
        """pip lists only the versions that have a wheel here when --only-binary
        hides a source archive ("from versions: none", or a list without the
        pinned one). Ask pip's index listing, which shows every format: if it
        has the distribution (the pinned version, when one is pinned), only a
        source archive is there for it. A version that exists nowhere, or only
        as other platforms' wheels, gets no such hint."""
        import re

        found = re.search(_NOT_FOUND, output)
        offered = re.search(r"\(from versions: ([^)]*)\)", output)
        if not found or not offered:
            return None
        name, pinned = found.group(1), found.group(2)
        wheels = [] if offered.group(1).strip() == "none" else offered.group(1).split(", ")
        if wheels and (not pinned or _holds(wheels, pinned)):
            return None
        listed = self._listed_versions(name, timeout, cwd, env)
        if listed is None or (pinned and not _holds(listed, pinned)):
            return None
        return name

    def _listed_versions(
        self, name: str, timeout: float, cwd: str, env: Mapping[str, str]
    ) -> list[str] | None:
        """`pip index versions`: every version the index has in any format for
        this Python; None when it has none."""
        import re
        import subprocess

        probe = [self.executable, "-m", "pip", "index", "versions", name]
        try:
            result = subprocess.run(
                probe, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=min(timeout, 60), check=False, env=dict(env), cwd=cwd,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        listed = re.search(r"Available versions: ?(.*)", result.stdout)
        return listed.group(1).strip().split(", ") if result.returncode == 0 and listed else None


_NOT_FOUND = r"No matching distribution found for ([A-Za-z0-9._-]+)(?:\[[^]]*\])?(?:==([^\s;,]+))?"


def _holds(versions: list[str], pinned: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        wanted = Version(pinned)
        return any(Version(v) == wanted for v in versions if v)
    except InvalidVersion:
        return pinned in versions


def pip_version() -> str:
    """pip's version from its own source, without importing pip or importlib.metadata."""
    spec = _pip_spec()
    try:
        if spec is not None and spec.origin:
            with open(spec.origin, encoding="utf-8") as f:
                for line in f:
                    if line.startswith("__version__"):
                        return "pip " + line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return "pip"


def _pip_spec() -> ModuleSpec | None:
    """Where `python -m pip` finds pip: on sys.path, asked of the path-based
    finder itself (importlib.util would import traceback, tokenize and
    textwrap, about 7 ms an install waits for before its installer starts)."""
    from ._target import PathFinder

    spec: ModuleSpec | None = PathFinder.find_spec("pip")
    if spec is None:  # served by another finder (an editable pip): ask them all
        import importlib.util

        spec = importlib.util.find_spec("pip")
    return spec if spec is not None and spec.origin else None  # not the hook's own (allow-listed) pip
