"""Fake installers for the unit tier (pytest-subprocess): they write a small
package into the `--target` folder of the command, so the whole finder path
runs without a real installer."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from collections.abc import Mapping

PIP = [sys.executable, "-m", "pip", "install"]


def write_dist(folder: str, dist: str, version: str, files: Mapping[str, str]) -> None:
    """A distribution as an installer leaves it: files plus *.dist-info with RECORD."""
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    os.makedirs(os.path.join(folder, info), exist_ok=True)
    for rel, text in files.items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    with open(os.path.join(folder, info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    with open(os.path.join(folder, info, "RECORD"), "w", encoding="utf-8") as f:
        for rel in [*files, f"{info}/METADATA", f"{info}/RECORD"]:
            f.write(f"{rel},,\n")


def target_of(args: Any) -> str:
    args = list(args)
    return str(args[args.index("--target") + 1])


def installs(
    dist: str, version: str, files: Mapping[str, str], **kwargs: Any
) -> Callable[[Any], None]:
    """A pytest-subprocess callback that installs one distribution."""

    def callback(process: Any) -> None:
        write_dist(target_of(process.args), dist, version, files)
        for hook in kwargs.get("also", ()):
            hook(process)

    return callback
