"""Read-only layers, real tier: a layer built at "image build" by `prefetch`
with real pip and uv, offline from the session's wheelhouse, then served
read-only to fresh interpreters: mounted read-only (a bind mount in a
private mount namespace, as root) or only chmod-ed. Afterwards every file
of the layer is as it was: the hook never wrote there."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _offline import installer_env
from _wheelhouse import build_wheel
from test_real_installers import audit_lines

from conftest import ROOT

INSTALLERS = ["pip", "uv"]
PYPROJECT = """\
[tool.lazy-import-hook]
target = "{target}"
installer = "{installer}"
read-only-targets = ["{layer}"]

[tool.lazy-import-hook.allowlist]
{entries}
"""
APP = """\
import json, os, sys, lazy_import_hook
lazy_import_hook.install(pyproject=sys.argv[1])
import toymod, toymod.extra, othermod, toydep
writable = None  # root writes through a chmod: only a read-only mount is tried
if sys.argv[3:] == ["try-writing"]:
    try:
        os.close(os.open(os.path.join(sys.argv[2], "written-by-the-app"), os.O_CREAT | os.O_WRONLY))
        writable = True
    except OSError as e:
        writable = e.strerror
print(json.dumps({
    "toymod": [toymod.VERSION, toymod.__file__, toymod.extra.__file__],
    "othermod": othermod.__file__, "toydep": [toydep.VERSION, toydep.__file__],
    "path_tail": sys.path[-2:], "packaging": "packaging" in sys.modules, "writable": writable,
}))
"""


@functools.cache
def read_only_mount_unavailable() -> str | None:
    """Why a child cannot run with a folder bind-mounted read-only, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a read-only bind mount needs root (the chmod variant runs instead)"
    if shutil.which("unshare") is None:
        return "no unshare(1) on PATH for a private mount namespace"
    probe = subprocess.run(
        in_read_only_mount(ROOT / "tests", ["true"]), capture_output=True, text=True, check=False, timeout=60
    )
    return None if probe.returncode == 0 else f"unshare/mount refused: {probe.stderr.strip()}"


def in_read_only_mount(folder: Path, command: list[str]) -> list[str]:
    """`command` in a private mount namespace where `folder` is a read-only
    bind mount of itself: root cannot write there either, and the host
    never sees the mount."""
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    namespace = ["unshare", "--mount", "--propagation", "private", "--"]
    return [*namespace, "sh", "-c", script, "sh", str(folder), *command]


class Fleet:
    """One application, its pyproject, its writable target and its read-only layer."""

    def __init__(self, tmp_path: Path, installer: str, env: dict[str, str], *, mount: bool) -> None:
        self.app, self.target, self.layer = tmp_path / "app", tmp_path / "target", tmp_path / "layer"
        self.app.mkdir()
        self.installer, self.env, self.mount = installer, env, mount

    def configure(self, **entries: str) -> Path:
        lines = "\n".join(f'{name} = "{requirement}"' for name, requirement in entries.items())
        path = self.app / "pyproject.toml"
        path.write_text(PYPROJECT.format(target=self.target, installer=self.installer, layer=self.layer,
                                         entries=lines))  # fmt: skip
        return path

    def build_layer(self, **entries: str) -> str:
        """As an image build does: prefetch into the layer, then make it root's and read-only."""
        env = dict(self.env, LAZY_IMPORT_HOOK_TARGET=str(self.layer))
        pyproject = self.configure(**entries)
        command = [sys.executable, "-m", "lazy_import_hook", "--pyproject", str(pyproject), "prefetch"]
        built = self.run(command, env=env, read_only=False)
        for folder, _, files in os.walk(self.layer):
            for name in files:
                os.chmod(os.path.join(folder, name), 0o444)
            os.chmod(folder, 0o555)
        return built.stdout

    def run(
        self, command: list[str], *, env: dict[str, str] | None = None, read_only: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if read_only and self.mount:
            command = in_read_only_mount(self.layer, command)
        proc = subprocess.run(command, env=env or self.env, cwd=self.app, capture_output=True, text=True,
                              timeout=180, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise AssertionError(f"{command} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start(self) -> tuple[dict[str, Any], str]:
        """The application, started afresh: what it imported from where, and its stderr."""
        probe = ["try-writing"] if self.mount or os.geteuid() != 0 else []
        pyproject = str(self.app / "pyproject.toml")
        proc = self.run([sys.executable, "-c", APP, pyproject, str(self.layer), *probe])
        return json.loads(proc.stdout), proc.stderr

    def cli(self, *args: str) -> str:
        command = [sys.executable, "-m", "lazy_import_hook", "--pyproject", str(self.app / "pyproject.toml")]
        return self.run([*command, *args]).stdout



def snapshot(folder: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every file and folder under `folder`: mode, owner, size, mtime."""
    found = {}
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        found[str(path.relative_to(folder))] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns)
    return found


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("protection", ["read-only mount", "chmod"])
def test_a_layer_built_at_image_build_serves_read_only_and_a_pin_change_goes_to_the_target(
    protection: str, installer: str, wheelhouse: Path, tmp_path: Path
) -> None:
    mount = protection == "read-only mount"
    if mount and read_only_mount_unavailable():
        pytest.skip(str(read_only_mount_unavailable()))
    fleet = Fleet(tmp_path, installer, installer_env(wheelhouse, tmp_path), mount=mount)
    built = fleet.build_layer(toymod="toy-dist==1.0", othermod="other-dist==1.0")
    assert "toymod: installed" in built and "othermod: installed" in built
    before = snapshot(fleet.layer)
    layer, target = str(fleet.layer), str(fleet.target)

    # The image as built: everything from the layer, no installer.
    seen, stderr = fleet.start()
    assert stderr == ""
    assert all(path.startswith(layer + "/") for path in [*seen["toymod"][1:], seen["othermod"]])
    assert seen["path_tail"] == [layer, target]
    refused = "Read-only file system" if mount else "Permission denied"
    assert seen["writable"] == (None if not mount and os.geteuid() == 0 else refused)
    assert audit_lines(fleet.target) == []

    # A new release pins toy-dist 2.0: the target gets it and serves it; the
    # layer's 1.0 stays hidden, its other entry and toy-dep keep serving.
    fleet.configure(toymod="toy-dist==2.0", othermod="other-dist==1.0")
    seen, stderr = fleet.start()
    assert "installing toy-dist==2.0 for 'import toymod'" in stderr
    assert seen["toymod"][0] == "2.0" and all(p.startswith(target + "/") for p in seen["toymod"][1:])
    assert seen["othermod"].startswith(layer + "/")
    assert seen["toydep"][1].startswith(layer + "/")
    (entry,) = audit_lines(fleet.target)
    assert entry["status"] == 0 and entry["requirements"] == ["toy-dist==2.0"]

    # The next start is warm: no installer, no validation.
    again, stderr = fleet.start()
    seen.pop("packaging")
    assert stderr == "" and not again.pop("packaging") and again == seen
    report = json.loads(fleet.cli("status", "--json"))
    served = {e["import_name"]: (e["state"], e["served_by"]) for e in report["entries"]}
    assert served == {"toymod": ("installed", target), "othermod": ("installed", layer)}
    assert report["read_only_layers"][0]["hides"] == ["toymod"]
    out = fleet.cli("prefetch")
    assert f"othermod: served by the read-only layer {layer}" in out and "toymod: already present" in out
    assert len(audit_lines(fleet.target)) == 1
    assert snapshot(fleet.layer) == before  # never written


@pytest.fixture(scope="module")
def wheels_needing_a_newer_dep(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's wheelhouse plus toy-dist 3.0, which needs toy-dep 2.0 or later."""
    extended = tmp_path_factory.mktemp("wheelhouse-layers")
    for wheel in wheelhouse.iterdir():
        shutil.copy(wheel, extended)
    files = {"toymod/__init__.py": "VERSION = '3.0'\n"}
    build_wheel(extended, "toy-dist", "3.0", files, requires=["toy-dep>=2.0"])
    return extended


@pytest.mark.parametrize("installer", INSTALLERS)
def test_an_install_that_needs_a_newer_dependency_than_the_layer_holds_names_the_layer(
    installer: str, wheels_needing_a_newer_dep: Path, tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, installer, installer_env(wheels_needing_a_newer_dep, tmp_path), mount=False)
    fleet.build_layer(toymod="toy-dist==1.0", toydep="toy-dep==1.0")
    fleet.configure(toymod="toy-dist==3.0")  # toy-dep is no entry now: the layer's 1.0 is what imports
    code = textwrap.dedent("""\
        import sys, lazy_import_hook
        lazy_import_hook.install(pyproject=sys.argv[1])
        try:
            import toymod
        except ImportError as e:
            print(e.reason, str(e).splitlines()[0])
    """)
    out = fleet.run([sys.executable, "-c", code, str(fleet.app / "pyproject.toml")]).stdout
    assert out.startswith("installer-failed "), out
    assert f"toy-dep 1.0 is in the read-only layer {fleet.layer}, which every install keeps" in out
    assert "rebuild the layer with the new pins" in out
    assert not (fleet.target / "toymod").exists()
