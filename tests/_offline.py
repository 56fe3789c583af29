"""The environment of a child that runs REAL installers offline, from a local
wheelhouse: none of this machine's pip/uv configuration leaks in.
Shared by the tests and the benchmark (stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def installer_env(wheelhouse: Path | str, tmp: Path, *, offline: bool = True, **extra: str) -> dict[str, str]:
    """`offline`: uv may not reach any network (`uv pip install` reads no
    PIP_NO_INDEX and ignores UV_NO_INDEX, which only the hook turns into
    --no-index); pass False for a find-links URL on loopback."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "LAZY_IMPORT_HOOK_", "PYTHON"))
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_CACHE_DIR=str(tmp / "pip-cache"),
        UV_NO_INDEX="1",
        UV_FIND_LINKS=str(wheelhouse),
        UV_NO_CONFIG="1",
        **({"UV_OFFLINE": "1"} if offline else {}),
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        LAZY_IMPORT_HOOK_CACHE_DIR=str(tmp / "user-cache"),
        PYTHONPATH=str(ROOT),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env
