"""uv as an installer: `uv pip install --python <this interpreter> --target ...`."""

from __future__ import annotations

import os
import shutil
import sys

from ._installer import Installer, InstallRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Uv(Installer):
    name = "uv"
    constraint_option = "--constraints"

    @classmethod
    def find(cls) -> Uv | None:
        path = find_uv()
        return cls(path) if path else None

    def command(self, request: InstallRequest) -> list[str]:
        # --python always: without it uv may pick another interpreter on PATH.
        cmd = [self.executable, "pip", "install", "--python", sys.executable]
        cmd += ["--target", request.target, "--no-progress"]
        if request.compile_bytecode:
            cmd.append("--compile-bytecode")
        return cmd + self.options(request)

    def manual_base(self, target: str) -> list[str]:
        return ["uv", "pip", "install", "--python", sys.executable, "--target", target]

    def version_probe(self) -> Callable[[], str]:
        """`uv --version`, asked in parallel with the install itself."""
        import subprocess

        probe = subprocess.Popen(
            [self.executable, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

        def version() -> str:
            try:
                out, _ = probe.communicate(timeout=10)
                return out.strip() or self.name
            except Exception:
                probe.kill()
                return self.name

        return version


def find_uv() -> str | None:
    """uv from the `uv` package of this environment, else from PATH."""
    # Where the uv package puts it in a virtual environment; checking costs a
    # stat, where importing `uv` (which imports sysconfig) costs milliseconds.
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(beside, os.X_OK) and not os.path.isdir(beside):
        return beside
    try:
        from uv import find_uv_bin

        path: str | None = find_uv_bin()
    except (ImportError, FileNotFoundError):
        path = None
    return path or shutil.which("uv")
