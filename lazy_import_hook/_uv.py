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

    @classmethod
    def find(cls) -> Uv | None:
        path = find_uv()
        return cls(path) if path else None

    def command(self, request: InstallRequest) -> list[str]:
        # --python always: without it uv may pick another interpreter on PATH.
        # --no-config: uv would read uv.toml and [tool.uv] in every folder
        # above its working directory (inside the target), and the user's
        # and the system's uv.toml; its UV_* variables still apply.
        cmd = [self.executable, "pip", "install", "--python", sys.executable, "--no-config"]
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
    """uv of the core environment (where the `uv` package puts it), beside
    the interpreter, or on PATH. Never by importing a module named `uv`:
    one in the working directory would choose the installer."""
    beside = _executable(os.path.dirname(sys.executable))  # a stat: the usual venv case
    return beside or next(filter(None, map(_executable, _script_folders())), None) or shutil.which("uv")


def _executable(folder: str) -> str | None:
    candidate = os.path.join(folder, "uv.exe" if os.name == "nt" else "uv")
    return candidate if os.access(candidate, os.X_OK) and not os.path.isdir(candidate) else None


def _script_folders() -> list[str]:
    """Where this environment's installers put scripts (the uv package's
    binary among them), the user's scheme included."""
    import sysconfig

    folders = [sysconfig.get_path("scripts")]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        folders.append(sysconfig.get_path("scripts", user_scheme))
    return folders
