"""Budget 6: the first import of real packages through the hook, against an
application that runs the same installer by hand and then imports.

Wheels of numpy, pydantic (with pydantic-core) and requests, and their
dependencies, are fetched once from the package index (pip download, this
machine's pip configuration) into a cache folder and then served offline.
Each sample is one fresh interpreter that reports the seconds from just
before `import <package>` (after `install()`, which budget 1 measures) until
the package is imported:

  A  subprocess.run(the installer command by hand) + sys.path.append + import
  B  import through the hook

"By hand" is the command an application would write: `uv pip install
--python <this python> --target T ...` and `python -m pip install --target
T ...`, without the hook's constraints and safety options, doing the same
work as the hook: byte-compiling at install (pip does by default; uv gets
--compile-bytecode), since the hook does unless compile-bytecode = false.
Cells: each package x installer x a brand-new target / a target the
application has used before (another package installed through it) x
PYTHONDONTWRITEBYTECODE unset / set. Budgets (median of paired runs):
used target B - A <= 10 ms with uv and B / A <= 1.03 with pip; brand-new
target B - A <= 30 ms with uv and B / A <= 1.05 with pip.

A second-long install varies far more between runs on a small machine than
these limits (a virtual machine's CPU can run at half speed for seconds at a
time), so: the sides alternate A B B A A B ..., which cancels a slow drift;
the disk is synced before each timed sample, so that no sample pays for
writing out the one before; a run takes 3 pairs per package for every 10
rounds, at least 9 (with --quick 1, at least 2); each figure comes with a
95% interval of its median (the sign test's), and a cell whose interval
holds its limit is one this machine could not decide. Both sides of every
pair must have installed the same file names, or the run stops (exit 2).
Each cell's detail line also gives the part the installer's own run does
not hide: the time outside it (the hook: total minus its audit line's
duration_s; by hand: total minus the subprocess.run), paired; the pairs
again at equal installer speed (see _at_equal_speed); and the ratio of the
two sides' installer CPU times.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    from run import Bench

PACKAGES = {"numpy": "numpy==2.2.6", "pydantic": "pydantic==2.11.7", "requests": "requests==2.32.4"}
EARLIER = ("othermod", "other-dist==1.0")  # what a used target already holds
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lazy-import-hook-bench"
META = ".lazy-import-hook"  # the hook's own folder in a target
LIMITS = {("uv", "used"): 10.0, ("uv", "new"): 30.0, ("pip", "used"): 1.03, ("pip", "new"): 1.05}


def fetch_wheels(wheelhouse: Path) -> Path:
    """The real wheels, downloaded once (cached between runs), copied beside the toy ones."""
    cache = CACHE / f"wheels-py{sys.version_info[0]}{sys.version_info[1]}"
    marker = cache / ".complete"
    if not marker.exists():
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--dest", str(cache),
             "--disable-pip-version-check", *PACKAGES.values()],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"could not fetch the real wheels: {proc.stderr.strip()[-500:]}")
        marker.touch()
    for wheel in cache.glob("*.whl"):
        shutil.copy2(wheel, wheelhouse / wheel.name)
    return cache


def real_packages(bench: Bench) -> None:
    from run import BenchError, Row

    try:
        fetch_wheels(bench.wheelhouse)
    except RuntimeError as e:
        raise BenchError(f"budget 6: {e}") from e
    rounds = max(2, bench.rounds // 10) if bench.quick else max(9, bench.rounds * 3 // 10)
    packages = bench.packages
    for kind in bench.installers:
        for state in bench.states:
            for dont_write in (False, True):
                figures = [_cell(bench, kind, name, state, dont_write, rounds) for name in packages]
                limit = LIMITS[(kind, state)]
                worst, (low, high, covers) = max(figures)
                interval = f"{covers:.0%}: {_shown(kind, low)} to {_shown(kind, high)}"
                shown = f"{_shown(kind, worst)} (worst; {interval})"
                label = f"6 first import, {kind}, {state} target{', no .pyc writes' if dont_write else ''}"
                label += "" if set(packages) == set(PACKAGES) else f" ({', '.join(packages)} only)"
                rule = f"<= {limit:g} ms" if kind == "uv" else f"<= x{limit:g}"
                bench.rows.append(Row(label, "by hand", "hook", shown, rule, worst <= limit))


def _shown(kind: str, figure: float) -> str:
    return f"{figure:+.1f} ms" if kind == "uv" else f"x{figure:.3f}"


def median_interval(values: list[float], coverage: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free interval for the median (the sign test's): the
    (k+1)-th smallest and largest values, k the most that P(Binomial(n, 1/2)
    <= k) <= (1 - coverage) / 2 allows; and the coverage it has (fewer than
    6 values: their range, which covers less)."""
    xs = sorted(values)
    n, k = len(xs), 0
    tail = 1 / 2**n  # P(X <= k)
    while k + 1 < n / 2 and tail + math.comb(n, k + 1) / 2**n <= (1 - coverage) / 2:
        k += 1
        tail += math.comb(n, k) / 2**n
    return xs[k], xs[n - 1 - k], 1 - 2 * tail


def _cell(
    bench: Bench, kind: str, name: str, state: str, dont_write: bool, rounds: int
) -> tuple[float, tuple[float, float, float]]:
    """Paired samples of one package; the median difference (uv, ms) or ratio
    (pip), and an interval of that median (low, high, its coverage)."""
    taken: dict[bool, list[Sample]] = {False: [], True: []}

    def sample(hook: bool) -> float:
        taken[hook].append(_sample(bench, kind, name, state, dont_write, hook=hook))
        return taken[hook][-1].elapsed

    sa, sb = bench.alternate(lambda: sample(False), lambda: sample(True), rounds, warmup=1, abba=True)
    scale, unit = (1e3, "ms") if kind == "uv" else (1.0, "s")
    label = f"6 {name} {kind} {state}{' dont-write' if dont_write else ''} ({unit})"
    bench.spread(label, sa, sb, scale, unit)
    hand, hooked = taken[False][-rounds:], taken[True][-rounds:]
    _same_files(hand, hooked, label)
    as_measured = [_compared(kind, b.elapsed, a.elapsed) for a, b in zip(hand, hooked)]
    even = [_compared(kind, _at_equal_speed(a, b), a.elapsed) for a, b in zip(hand, hooked)]
    outside = [((b.elapsed - b.installer) - (a.elapsed - a.installer)) * 1e3 for a, b in zip(hand, hooked)]
    cpu = [b.cpu / a.cpu for a, b in zip(hand, hooked)]

    def said(values: list[float], kind: str = kind) -> str:
        return _median_and_interval(values, lambda v: _shown(kind, v))

    ratio = _median_and_interval(cpu, lambda v: f"x{v:.3f}")
    bench.details.append(
        f"{label.rsplit(' (', 1)[0]}: hook against by hand {said(as_measured)}; outside the installer's "
        f"own run, hook - by hand {said(outside, 'uv')}; at equal installer speed, hook against by hand "
        f"{said(even)}; the installer's CPU time, hook / by hand {ratio}"
    )
    return statistics.median(as_measured), median_interval(as_measured)


def _compared(kind: str, hooked: float, hand: float) -> float:
    return (hooked - hand) * 1e3 if kind == "uv" else hooked / hand


def _at_equal_speed(hand: Sample, hooked: Sample) -> float:
    """The hook sample's seconds with its installer run scaled to the speed
    its by-hand partner's ran at (by the two runs' CPU times). The machine's
    speed, which varies between seconds-long runs by far more than the
    limits, cancels: two identical by-hand sides differed by a "decided" 11
    ms on numpy as measured, and by -1.0 ms (-2.7 to +1.2) this way. What
    stays is the hook's time outside the run and its effect on the run's
    wall time per CPU second (the installer waiting for a core the hook's
    process holds). What goes with the speed is any CPU time the hook's side
    makes the installer spend more (its launch's setpriv and shell count as
    the installer's), and on pydantic that is most of the hook's cost: +9.8
    ms as measured, +1.6 ms this way, with 3.4% more installer CPU time. So
    this figure is too kind by about (CPU ratio - 1) x the run, and does not
    judge the budget."""
    return (hooked.elapsed - hooked.installer) + hooked.installer * hand.cpu / hooked.cpu


def _same_files(hand: list[Sample], hooked: list[Sample], label: str) -> None:
    """Both sides' installers did the same work: the same file names in the target."""
    for pair, (a, b) in enumerate(zip(hand, hooked)):
        if a.files != b.files:
            from run import BenchError

            cell = label.rsplit(" (", 1)[0]
            only = f"by hand only {sorted(a.files - b.files)[:5]}, hook only {sorted(b.files - a.files)[:5]}"
            raise BenchError(f"budget {cell}, pair {pair}: the sides installed different files: {only}")


def _median_and_interval(values: list[float], shown: Callable[[float], str]) -> str:
    low, high, covers = median_interval(values)
    return f"{shown(statistics.median(values))} (paired median; {covers:.0%}: {shown(low)} to {shown(high)})"


class Sample(NamedTuple):
    elapsed: float  # seconds from `import` to imported
    installer: float  # of those, the installer's run (by hand: the subprocess.run; the hook: its audit line)
    cpu: float  # CPU seconds of the child's children (the installer's processes)
    files: frozenset[str]  # what the target held after it, but for its top-level dot files


def _sample(bench: Bench, kind: str, name: str, state: str, dont_write: bool, *, hook: bool) -> Sample:
    target = bench.fresh_dir(f"real-{kind}-{name}-{'b' if hook else 'a'}")
    env = dict(bench.env)
    if dont_write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    code = _hooked(kind, name, target) if hook else _by_hand(bench, kind, name, target)
    if state == "used":
        _use(bench, kind, target, env, hook=hook)
    os.sync()  # the earlier samples' files are on disk, not written out during this one
    elapsed, cpu, installer = _reported(bench, code, env)
    if hook:
        installer = _audited_duration(target)
    names = (str(p.relative_to(target)) for p in target.rglob("*"))
    files = frozenset(n for n in names if not n.startswith("."))  # the hook's folder, locks, markers
    shutil.rmtree(target)
    return Sample(elapsed, installer, cpu, files)


def _audited_duration(target: Path) -> float:
    lines = (target / META / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    installs = [e for e in map(json.loads, lines) if e.get("event") != "provenance"]
    return float(installs[-1]["duration_s"])


def _use(bench: Bench, kind: str, target: Path, env: dict[str, str], *, hook: bool) -> None:
    """An earlier run of the application: another package in the target."""
    module, requirement = EARLIER
    code = (
        _hooked(kind, module, target, {module: requirement}) if hook
        else _by_hand(bench, kind, module, target, requirement)
    )  # fmt: skip
    _reported(bench, code, env)


# The CPU time of the children reaped so far: the installer's (and the hook's probes').
CHILDREN_CPU = "sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])"


def _hooked(kind: str, name: str, target: Path, allowlist: dict[str, str] | None = None) -> str:
    allowlist = {**dict([EARLIER]), name: PACKAGES.get(name, "")} if allowlist is None else allowlist
    allowlist = {k: v for k, v in allowlist.items() if v}
    return (
        "import resource, time, lazy_import_hook\n"
        f"lazy_import_hook.install({allowlist!r}, target={str(target)!r}, installer={kind!r})\n"
        f"t0 = time.perf_counter()\nimport {name}\nprint(time.perf_counter() - t0, {CHILDREN_CPU})\n"
    )


def _by_hand(bench: Bench, kind: str, name: str, target: Path, requirement: str | None = None) -> str:
    wheels = str(bench.wheelhouse)
    spec = requirement or PACKAGES[name]
    if kind == "uv":
        uv = str(Path(sys.executable).parent / "uv")
        cmd = [uv, "pip", "install", "--python", sys.executable, "--target", str(target),
               "--no-index", "--find-links", wheels, "--compile-bytecode", spec]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--target", str(target), "--no-index",
               "--find-links", wheels, "--disable-pip-version-check", spec]  # fmt: skip
    return (
        "import resource, subprocess, sys, time\nt0 = time.perf_counter()\n"
        f"subprocess.run({cmd!r}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,"
        " stderr=subprocess.STDOUT, check=True)\nran = time.perf_counter() - t0\n"
        f"sys.path.append({str(target)!r})\nimport {name}\n"
        f"print(time.perf_counter() - t0, {CHILDREN_CPU}, ran)\n"
    )


def _reported(bench: Bench, code: str, env: dict[str, str]) -> tuple[float, float, float]:
    """The child's last line: its elapsed seconds, its children's CPU seconds,
    then (by hand) the installer's run."""
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
    proc = run([sys.executable, "-c", code], env=env, cwd=bench.work, capture_output=True, text=True,
               timeout=600, check=False)  # fmt: skip
    if proc.returncode != 0:
        from run import BenchError

        raise BenchError(f"budget 6 child failed:\n{code}\n--- stderr\n{proc.stderr[-3000:]}")
    elapsed, cpu, *installer = proc.stdout.strip().splitlines()[-1].split()
    return float(elapsed), float(cpu), float(installer[0]) if installer else 0.0
