"""The shortcuts that spare an install `packaging` (whose import, with
`packaging.tags` and `logging` behind it, costs tens of milliseconds) give
exactly `packaging`'s answers, and a cold install with exact pins imports
neither `packaging` nor `logging` (nor shutil, which needs bz2 and lzma)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from _offline import installer_env
from hypothesis import example, given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from test_real_installers import INSTALLERS, hook

from conftest import Runner
from lazy_import_hook._environment import pin_lines
from lazy_import_hook._files import canonical_name
from lazy_import_hook._holdings import installed_matches

NAME_CHARS = st.sampled_from("aAzZ09-_.İ")
VERSIONS = st.one_of(
    st.text(st.sampled_from("0123456789."), max_size=10),
    st.text(st.sampled_from("0123456789.abcrpostdevl+-!_*"), max_size=14),
    st.sampled_from(
        ["1.0", "1.0.0", "1.0+cpu", "1!2.0", "1.0rc1", "1.0.post1", "01.0", "1..0", "\u0661.\u0660"]
    ),
)


@given(st.text(NAME_CHARS, max_size=12))
@example("Foo__Bar..baz-_-Qux")
def test_canonical_name_is_packagings(name: str) -> None:
    assert canonical_name(name) == canonicalize_name(name)


def _packaging_public(version: str) -> bool:
    try:
        return Version(version).local is None
    except InvalidVersion:
        return False


@given(VERSIONS)
def test_the_core_versions_kept_as_constraints_are_packagings(version: str) -> None:
    assert pin_lines({"x": version}) == (["x==" + version] if _packaging_public(version) else [])


@given(st.sampled_from(["x==1.0", "x==1.0.0", "x>=1.0", "x==1.*", "x[a]==1.0", "x==1.0; python_version>'3'",
                        "x===1.0", "x!=1.0", "x~=1.0", "x==1.0,!=1.1", "x==1.0rc1"]), VERSIONS)  # fmt: skip
def test_a_version_matches_a_requirement_as_packaging_says(requirement: str, version: str) -> None:
    try:
        expected = Requirement(requirement).specifier.contains(version, prereleases=True)
    except InvalidVersion:
        return  # packaging 22+ raises for some invalid versions; never found in a dist-info name
    assert installed_matches(requirement, version) == expected


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_cold_install_with_exact_pins_imports_no_packaging_no_logging_and_no_shutil(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """shutil (with bz2 and lzma, about 5 ms) only when a folder to remove is
    not empty: after a clean install, the staging and temporary ones are."""
    env = installer_env(wheelhouse, tmp_path)
    code = hook(target, installer, {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"})
    # A brand-new target (its caches are made, with packaging), then one used before.
    shutil = ("shutil", "bz2", "lzma")
    for module, late in (("othermod", shutil), ("toymod", ("packaging", "logging", *shutil))):
        probe = (
            f"import {module}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {late!r})))\n"
        )
        assert json.loads(run_python(code + probe, env).stdout.splitlines()[-1]) == [], module


@pytest.mark.parametrize("installer", INSTALLERS)
def test_before_the_installer_starts_an_install_imports_only_what_it_needs(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    """The import waits for everything imported before the installer runs:
    shutil (bz2, lzma), configparser without a pip configuration file,
    sysconfig when uv sits beside the interpreter, importlib.util with
    tokenize (pip's whereabouts), and subprocess, threading, contextlib,
    collections and re (about 20 ms together: posix_spawn, _thread and a
    list do) come later or never."""
    env = installer_env(wheelhouse, tmp_path)  # PIP_CONFIG_FILE=os.devnull: no file to read
    code = hook(target, installer, {"toymod": "toy-dist==1.0", "othermod": "other-dist==1.0"})
    run_python(code + "import othermod\n", env)  # a target used before: its staging folder is there
    probe = (
        "already = set(sys.modules)\n"  # an editable install's finder imports importlib.util at startup
        "before = []\n"
        "def spy(event, args):\n"
        "    if event in ('subprocess.Popen', 'os.posix_spawn') and not before:\n"
        "        before.extend(sys.modules)\n"
        "sys.addaudithook(spy)\n"
        "import toymod\n"
        "late = ('shutil', 'configparser', 'sysconfig', 'bz2', 'importlib.util', 'tokenize',\n"
        "        'subprocess', 'threading', 'contextlib', 'collections', 're')\n"
        "print(json.dumps(sorted(m for m in before if m in late and m not in already)))\n"
    )
    beside = (Path(sys.executable).parent / "uv").exists()
    found = json.loads(run_python(code + probe, env).stdout.splitlines()[-1])
    assert found == ([] if beside or installer == "pip" else ["sysconfig"])


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_on_path_finds_what_shutil_which_finds_but_never_a_folder_relative_to_the_working_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from lazy_import_hook._files import on_path

    plain, folder, program = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (plain, folder, program):
        d.mkdir()
    (plain / "tool").write_text("not executable")
    (folder / "tool").mkdir()  # a folder, executable bit and all
    (program / "tool").write_text("#!/bin/sh\n")
    (program / "tool").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, ["", plain, folder, program])))
    for name in ("tool", "no-such-program-here"):
        assert on_path(name) == shutil.which(name)
    assert on_path("tool") == str(program / "tool")
    # Unlike shutil.which: never the current directory (an empty entry), nor
    # a folder named relative to it, which whoever can write there would fill.
    monkeypatch.chdir(tmp_path)
    for entry in (os.pathsep, ".", "c", os.path.join(".", "c")):
        monkeypatch.setenv("PATH", entry)
        assert on_path("tool") is None, entry
    monkeypatch.chdir(program)
    monkeypatch.setenv("PATH", os.pathsep)
    assert shutil.which("tool") is not None and on_path("tool") is None


def test_pips_whereabouts_need_no_importlib_util() -> None:
    """Without site (so without an editable install's own finder, which
    imports importlib.util at startup): finding pip and its version imports
    neither importlib.util nor tokenize."""
    import subprocess
    import sysconfig

    from conftest import ROOT

    code = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {sysconfig.get_path('purelib')!r}]\n"
        "from lazy_import_hook import _pip\n"
        "before = set(sys.modules)\n"
        "found = _pip.Pip.find() is not None, _pip.pip_version()\n"
        "print(json.dumps([found, sorted(set(sys.modules) - before)]))\n"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    (found, version), imported = json.loads(proc.stdout)
    assert found and version.startswith("pip ")
    assert not {"importlib.util", "tokenize", "traceback"} & set(imported), imported
