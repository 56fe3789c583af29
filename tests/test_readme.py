"""The README's code runs as written: its Python blocks, in order, in a fresh
interpreter with real installers (offline, from the session's wheelhouse),
and its TOML sample as configuration."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from _offline import installer_env

from conftest import ROOT, Runner
from lazy_import_hook import _config, _settings

README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)


def test_the_python_examples_run_in_order(wheelhouse: Path, tmp_path: Path, run_python: Runner) -> None:
    # `lazy import` is a SyntaxError before 3.15: those blocks run on 3.15 only.
    lazy = [s for s in blocks("python") if re.search(r"^lazy import ", s, re.M)]
    snippets = [s for s in blocks("python") if sys.version_info >= (3, 15) or s not in lazy]
    assert len(snippets) >= 2 and lazy
    (tmp_path / "worker.py").write_text("import isodate\nprint('worker got', isodate.__version__)\n")
    (tmp_path / "tasks.py").write_text(
        "import os\n\ndef parse(text):\n    import isodate\n"
        "    return f'{text} parsed in {os.getpid()} with isodate {isodate.__version__}'\n"
    )
    env = installer_env(wheelhouse, tmp_path, LAZY_IMPORT_HOOK_TARGET=str(tmp_path / "target"))
    script = "\n".join(snippets) + "\nprint('isodate from', isodate.__file__, 'uvloop', uvloop)\n"
    result = run_python(script, env, timeout=300)
    assert f"isodate from {tmp_path / 'target'}" in result.stdout
    assert "uvloop None" in result.stdout  # not in the wheelhouse: the fallback idiom took over
    assert "worker got 0.7.2 (toy)" in result.stdout  # child_env() carried the hook
    assert "warm-up of telegram failed (installer-failed)" in result.stdout  # not in the wheelhouse either
    # A pool's worker and a Dask worker ran the task (see test_workers.py for the hook in them).
    assert "PT1H parsed in" in result.stdout and "PT2H parsed in" in result.stdout


def test_the_toml_sample_is_a_valid_configuration(tmp_path: Path) -> None:
    (sample,) = blocks("toml")
    path = tmp_path / "pyproject.toml"
    path.write_text(sample)
    plan = _config.resolve(_settings.gather(None, path, {}))
    assert plan.target == str(tmp_path / ".lazy-packages")
    assert set(plan.entries) >= {"isodate", "yaml", "telegram", "six"}
    assert plan.entries["six"].hashes
