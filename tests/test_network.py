"""Network tier: a real install of isodate==0.7.2 from the package index.

Opt-in with LAZY_IMPORT_HOOK_NETWORK_TESTS=1 (CI sets it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import ROOT, Runner

pytestmark = pytest.mark.skipif(
    os.environ.get("LAZY_IMPORT_HOOK_NETWORK_TESTS") != "1",
    reason="network test: set LAZY_IMPORT_HOOK_NETWORK_TESTS=1",
)


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_isodate_installs_from_the_package_index(
    installer: str, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    # The machine's own pip/uv settings apply, as they would for a user.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAZY_IMPORT_HOOK_")}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import json, lazy_import_hook\n"
        f"lazy_import_hook.install({{'isodate': 'isodate==0.7.2'}}, target={str(target)!r},"
        f" installer={installer!r})\n"
        "import isodate, importlib.metadata\n"
        "print(json.dumps([str(isodate.parse_duration('PT90M')), isodate.__file__,"
        " importlib.metadata.version('isodate')]))\n"
    )
    parsed, where, version = json.loads(run_python(code, env, timeout=300).stdout)
    assert parsed == "1:30:00"
    assert Path(where).is_relative_to(target)
    assert version == "0.7.2"
