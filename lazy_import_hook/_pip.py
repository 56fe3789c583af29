"""pip as an installer: `python -m pip install --target ...` with this interpreter."""

from __future__ import annotations

import sys

from ._installer import Installer, InstallRequest, installer_environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Pip(Installer):
    name = "pip"

    @classmethod
    def find(cls) -> Pip | None:
        import importlib.util

        return cls(sys.executable) if importlib.util.find_spec("pip") is not None else None

    def command(self, request: InstallRequest) -> list[str]:
        cmd = [self.executable, "-m", "pip", "install", "--target", request.target]
        cmd += ["--no-input", "--disable-pip-version-check", "--no-warn-script-location"]
        if not request.compile_bytecode:
            cmd.append("--no-compile")
        return cmd + self.options(request)

    def manual_base(self, target: str) -> list[str]:
        return [sys.executable, "-m", "pip", "install", "--target", target]

    def version_probe(self) -> Callable[[], str]:
        return pip_version

    def source_only(self, output: str, timeout: float, cwd: str) -> str | None:
        """pip says only "from versions: none" when --only-binary hides a source
        archive. Ask pip's index listing (which shows every format) whether the
        distribution exists at all; if it does, only a source archive does."""
        import re
        import subprocess

        found = re.search(r"No matching distribution found for ([A-Za-z0-9._-]+)", output)
        if "from versions: none" not in output or not found:
            return None
        probe = [self.executable, "-m", "pip", "index", "versions", found.group(1)]
        try:
            result = subprocess.run(
                probe, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=min(timeout, 60), check=False, env=installer_environment(), cwd=cwd,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return found.group(1) if result.returncode == 0 and "versions:" in result.stdout else None


def pip_version() -> str:
    """pip's version from its own source, without importing pip or importlib.metadata."""
    import importlib.util

    spec = importlib.util.find_spec("pip")
    try:
        if spec is not None and spec.origin:
            with open(spec.origin, encoding="utf-8") as f:
                for line in f:
                    if line.startswith("__version__"):
                        return "pip " + line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return "pip"
