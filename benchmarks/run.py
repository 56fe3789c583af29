"""Speed budgets of lazy_import_hook, each measured side by side in one run.

    python benchmarks/run.py [--rounds N] [--quick] [--only N]
        [--installer uv|pip] [--package NAME] [--target-state used|new]

Every budget compares a baseline (A: what an application does without the
hook) with the same thing through the hook (B). The two sides alternate
A/B/A/B... over several rounds and the medians are compared. Unless noted,
one measurement is one fresh interpreter, timed around `subprocess.run`.
Everything (wheelhouse, targets, caches) is built in a temporary folder; the
children run the REAL installers offline from that wheelhouse, with none of
this machine's pip/uv configuration, and WITH bytecode writing enabled (as in
a real deployment). Exits 1 when a budget is missed, 2 when the benchmark
itself could not run.

Budgets (figure = median(B) against median(A); for 2 and 3, whose samples
vary far more than the budget, the median of the ratios or differences of
runs made next to each other):
  1   warm start, 50-entry explicit allowlist, + importing a package of the
      target: B - A <= 5 ms (A: a bare interpreter with the target on sys.path)
  1b  the same with the allowlist in pyproject.toml (A also reads its bytes)
  2   misses for names not on the allowlist: B / A <= 1.02; in one process,
      the finder off (A) and on (B) in alternating batches of 1000 distinct
      names, the ratio of neighbouring batches (a do-nothing meta-path finder
      alongside, for reference)
  3a  cold install with pip: B / A <= 1.05 (A: the same pip command by hand)
  3b  cold install with uv: B - A <= 30 ms (A: the same uv command by hand)
  3c  installer "auto" picks uv when it is available
  4   the first import after an install compiles nothing (pip and uv): every
      .py has its .pyc, none is written by the first import, and the first
      import takes about as long as a later one
  5   core-version constraints with 300 distributions: <= 20 ms (in-child)
  6   the first import of numpy, pydantic and requests (real wheels, fetched
      once) through the hook vs the same installer run by hand, on a used
      and a brand-new target, with and without PYTHONDONTWRITEBYTECODE: see
      benchmarks/real.py
The details below the table give the spread of every sample and, for the
cold installs, where the time goes.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TOY_MODULES = 40  # submodules of toymod: compiling them is visible (budget 4, and 3 compiles them)
DEP_MODULES = 8
MISSES = 1000
MISS_WARMUP = 200
MISS_BATCHES = 15
CONSTRAINT_CALLS = 20
FAKE_DISTS = 300
CHILD_TIMEOUT = 600.0


class BenchError(RuntimeError):
    """The benchmark itself could not run (a child failed, a setup step broke)."""


class Row(NamedTuple):
    budget: str
    baseline: str
    hook: str
    figure: str
    limit: str
    ok: bool


class Bench:
    def __init__(
        self, tmp: Path, rounds: int, quick: bool, installers: Sequence[str], packages: Sequence[str],
        states: Sequence[str],
    ) -> None:
        self.tmp = tmp
        self.rounds = rounds
        self.quick = quick
        self.wheelhouse = tmp / "wheelhouse"
        self.work = tmp / "work"  # cwd of every child: no pyproject.toml above it
        self.rows: list[Row] = []
        self.details: list[str] = []
        self.env = self._child_env()
        self.startup = 0.0
        # budget 6's cells, each once
        self.installers = tuple(dict.fromkeys(installers))
        self.packages = tuple(dict.fromkeys(packages))
        self.states = tuple(dict.fromkeys(states))
        self._counter = 0

    # ---- plumbing -------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        """tests/_offline.installer_env(), minus PYTHONDONTWRITEBYTECODE: deployments have .pyc files."""
        sys.path.insert(0, str(ROOT / "tests"))
        installer_env: Callable[..., dict[str, str]] = importlib.import_module("_offline").installer_env
        env = installer_env(self.wheelhouse, self.tmp)
        del env["PYTHONDONTWRITEBYTECODE"]
        return env

    def fresh_dir(self, stem: str) -> Path:
        self._counter += 1
        path = self.tmp / "t" / f"{stem}-{self._counter}"
        path.mkdir(parents=True)
        return path

    def run(self, cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run a child (untimed) and insist that it succeeds."""
        proc = subprocess.run(
            list(cmd),
            env=self.env,
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise BenchError(
                f"child failed ({proc.returncode}): {' '.join(cmd)[:300]}\n"
                f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
            )
        return proc

    def py(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run([PY, "-c", code])

    def timed(self, cmd: Sequence[str]) -> float:
        """Wall time of one child, seconds. Same capture on both sides."""
        argv = list(cmd)
        start = time.perf_counter()
        proc = subprocess.run(
            argv,
            env=self.env,
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(
                f"timed child failed ({proc.returncode}): {' '.join(argv)[:300]}\n"
                f"--- stderr\n{proc.stderr.decode(errors='replace')[-3000:]}"
            )
        return elapsed

    def reported(self, code: str) -> float:
        """A child that times something itself and prints the seconds as its last line."""
        return float(self.py(code).stdout.strip().splitlines()[-1])

    def alternate(
        self, a: Callable[[], float], b: Callable[[], float], rounds: int, warmup: int = 2, abba: bool = False
    ) -> tuple[list[float], list[float]]:
        """A, B, A, B, ... after `warmup` untimed pairs; returns both samples.
        abba: A, B, B, A, A, B, ..., so that a drift of the machine's speed
        during a long pair weighs on both sides alike."""
        for _ in range(warmup):
            a()
            b()
        sa: list[float] = []
        sb: list[float] = []
        for i in range(rounds):
            if abba and i % 2:
                sb.append(b())
                sa.append(a())
            else:
                sa.append(a())
                sb.append(b())
        return sa, sb

    def spread(self, name: str, sa: list[float], sb: list[float], scale: float, unit: str) -> None:
        def describe(s: list[float]) -> str:
            q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0], s[0], s[0]]
            return (
                f"median {statistics.median(s) * scale:.2f}, min {min(s) * scale:.2f}, "
                f"IQR {q[0] * scale:.2f}-{q[2] * scale:.2f} {unit}"
            )

        self.details.append(f"{name}: n={len(sa)}+{len(sb)}; A {describe(sa)}; B {describe(sb)}")

    # ---- setup ----------------------------------------------------------

    def setup(self) -> None:
        self.work.mkdir(parents=True)
        build_wheelhouse(self.wheelhouse)
        # The package and the stdlib run from bytecode on both sides.
        compileall.compile_dir(str(ROOT / "lazy_import_hook"), quiet=1)
        probe = self.py(
            "import sys, json, lazy_import_hook\n"
            "print(json.dumps([sys.flags.dont_write_bytecode, lazy_import_hook.__file__]))"
        )
        dont_write, where = json.loads(probe.stdout)
        if dont_write:
            raise BenchError("children still have sys.dont_write_bytecode set")
        if not str(where).startswith(str(ROOT)):
            raise BenchError(f"children import lazy_import_hook from {where}, not from {ROOT}")
        # What any `python -c ...` side pays before its first line (reference for budget 3).
        starts = [self.timed([PY, "-c", "pass"]) for _ in range(3 + max(5, self.rounds // 2))][3:]
        self.startup = statistics.median(starts)
        self.details.append(f"interpreter start (python -c pass): {self.startup * 1e3:.1f} ms")

    # ---- budget 1 / 1b: warm start --------------------------------------

    def warm_start(self) -> None:
        rounds = self.rounds
        allowlist = dummy_allowlist()
        target = self.fresh_dir("warm")
        t = str(target)
        code_a = f"import sys; sys.path.append({t!r}); import toymod"
        code_b = (
            f"import lazy_import_hook; lazy_import_hook.install({allowlist!r}, target={t!r}); import toymod"
        )
        first = self.py(code_b)  # installs toymod (and toy-dep) through the hook, with uv
        if "with uv" not in first.stderr:
            raise BenchError(f"budget 1: the first start did not install with uv:\n{first.stderr}")
        self.py(code_b)  # the startup cache is written by now
        self.check_warm("1", code_a, code_b)
        sa, sb = self.alternate(
            lambda: self.timed([PY, "-c", code_a]), lambda: self.timed([PY, "-c", code_b]), rounds
        )
        self.spread("1 warm start, explicit allowlist (ms)", sa, sb, 1e3, "ms")
        self.add_difference("1 warm start, explicit allowlist", sa, sb, 5.0)

        # 1b: the same allowlist from a pyproject.toml
        target2 = self.fresh_dir("warm-pyproject")
        project = self.fresh_dir("project")
        pyproject = project / "pyproject.toml"
        lines = ["[tool.lazy-import-hook]", f"target = {json.dumps(str(target2))}", ""]
        lines.append("[tool.lazy-import-hook.allowlist]")
        lines += [f"{name} = {json.dumps(req)}" for name, req in allowlist.items()]
        pyproject.write_text("\n".join(lines) + "\n", encoding="utf-8")
        p, t2 = str(pyproject), str(target2)
        code_a = f"import sys; open({p!r}, 'rb').read(); sys.path.append({t2!r}); import toymod"
        code_b = f"import lazy_import_hook; lazy_import_hook.install(pyproject={p!r}); import toymod"
        first = self.py(code_b)
        if "with uv" not in first.stderr:
            raise BenchError(f"budget 1b: the first start did not install with uv:\n{first.stderr}")
        self.py(code_b)
        self.check_warm("1b", code_a, code_b)
        sa, sb = self.alternate(
            lambda: self.timed([PY, "-c", code_a]), lambda: self.timed([PY, "-c", code_b]), rounds
        )
        self.spread("1b warm start, pyproject allowlist (ms)", sa, sb, 1e3, "ms")
        self.add_difference("1b warm start, pyproject allowlist", sa, sb, 5.0)

    def check_warm(self, budget: str, code_a: str, code_b: str) -> None:
        """The warm path must not validate again: no packaging, tomllib, subprocess."""
        dump = "; import sys as _s, json as _j; print(_j.dumps(sorted(_s.modules)))"
        mods_a = set(json.loads(self.py(code_a + dump).stdout))
        mods_b = set(json.loads(self.py(code_b + dump).stdout))
        extra = sorted(mods_b - mods_a - {"json", "json.decoder", "json.scanner", "json.encoder"})
        slow = [m for m in extra if m.split(".")[0] in ("packaging", "tomllib", "tomli", "subprocess")]
        self.details.append(
            f"{budget} modules the warm path imports beyond the baseline ({len(extra)}): " + ", ".join(extra)
        )
        if slow:
            raise BenchError(f"budget {budget}: the start was not warm, it imported {slow}")

    def add_difference(
        self, name: str, sa: list[float], sb: list[float], limit_ms: float, paired: bool = False
    ) -> None:
        """B - A: of the medians, or (paired) the median of the differences of
        the runs made next to each other, which cancels slow drift when one
        sample varies far more than the budget."""
        ma, mb = statistics.median(sa) * 1e3, statistics.median(sb) * 1e3
        diff = statistics.median(b - a for a, b in zip(sa, sb)) * 1e3 if paired else mb - ma
        self.rows.append(
            Row(
                name,
                f"{ma:.1f} ms",
                f"{mb:.1f} ms",
                f"{diff:+.1f} ms",
                f"<= {limit_ms:g} ms",
                diff <= limit_ms,
            )
        )

    # ---- budget 2: misses -----------------------------------------------

    def misses(self) -> None:
        rounds = max(5, self.rounds // 2)
        target = self.fresh_dir("misses")
        # One child per measurement. Each child runs install() once, then times
        # batches of MISSES distinct failing imports (no name is ever looked up
        # twice) with the hook off (A: its finder, all it puts on
        # sys.meta_path, removed), on (B),
        # and replaced by a do-nothing finder (N, a reference: what CPython
        # charges any meta-path finder), in a rotating order. Same process,
        # same imported modules, same sys.path (the target stays on it): the
        # sides differ in the finder alone. A child reports its best batch per
        # side; the figure compares the medians over children.
        code = textwrap.dedent(
            f"""
            import importlib, json, sys, time
            import lazy_import_hook
            finder = lazy_import_hook.install({dummy_allowlist()!r}, target={str(target)!r})
            assert sys.meta_path[-1] is finder and sys.path[-1] == {str(target)!r}

            class NullFinder:
                def find_spec(self, fullname, path=None, target=None):
                    return None

            states = {{"a": None, "b": finder, "n": NullFinder()}}

            def misses(prefix, n):
                for i in range(n):
                    try:
                        importlib.import_module(f"{{prefix}}_{{i}}")
                    except ModuleNotFoundError:
                        pass

            # Everything the hook puts on sys.meta_path is off for A: the finder alone.
            ours = [f for f in sys.meta_path if type(f).__module__.startswith("lazy_import_hook")]
            assert ours == [finder], ours
            misses("warm_no_such_mod", {MISS_WARMUP})
            times = {{side: [] for side in states}}
            order = list(states)
            for batch in range({MISS_BATCHES}):
                for side in order[batch % 3:] + order[:batch % 3]:
                    del sys.meta_path[-1]
                    if states[side] is not None:
                        sys.meta_path.append(states[side])
                    start = time.perf_counter()
                    misses(f"no_such_mod_{{batch}}_{{side}}", {MISSES})
                    times[side].append(time.perf_counter() - start)
                    if states[side] is None:
                        sys.meta_path.append(None)  # a placeholder, replaced before the next batch
                sys.meta_path[-1] = finder
            print(json.dumps(times))
            """
        )
        results: list[dict[str, list[float]]] = []
        self.py(code)  # warm-up child
        for _ in range(rounds):
            results.append(json.loads(self.py(code).stdout.strip().splitlines()[-1]))
        # A child's figure for a side is its median batch; a child's ratio is the
        # median of the ratios of batches run next to each other (drift cancels).
        sa, sb, sn = ([statistics.median(r[side]) for r in results] for side in ("a", "b", "n"))
        paired = sorted(
            statistics.median(b / a for a, b in zip(r["a"], r["b"])) for r in results
        )
        name = f"2 {MISSES} misses, median of {MISS_BATCHES} batches per side in a child (ms)"
        self.spread(name, sa, sb, 1e3, "ms")
        ma, mb, mn = (statistics.median(s) for s in (sa, sb, sn))
        ratio = statistics.median(paired)
        self.rows.append(
            Row(
                f"2 {MISSES} misses, not allow-listed",
                f"{ma * 1e3:.1f} ms",
                f"{mb * 1e3:.1f} ms",
                f"x{ratio:.3f}",
                "<= x1.02",
                ratio <= 1.02,
            )
        )
        self.details.append(
            f"2 extra cost per miss: {(mb - ma) / MISSES * 1e9:+.0f} ns ({ma / MISSES * 1e6:.1f} us per miss "
            f"without); B/A per child (median of paired batches): min x{paired[0]:.3f}, "
            f"max x{paired[-1]:.3f}; the figure is their median"
        )
        self.details.append(
            f"2 reference, a do-nothing meta-path finder instead of the hook: {mn * 1e3:.1f} ms, "
            f"x{mn / ma:.3f} ({(mn - ma) / MISSES * 1e9:+.0f} ns per miss)"
        )

    # ---- budget 3: cold installs ----------------------------------------

    def cold_installs(self) -> None:
        info = json.loads(
            self.py(
                textwrap.dedent(
                    """
                    import json, sys
                    from lazy_import_hook import _environment, _installers
                    from lazy_import_hook._installer import InstallRequest
                    auto = _installers.choose("auto")
                    request = InstallRequest(
                        "@TARGET@", ["toy-dist==1.0"], constraints="@CONSTRAINTS@",
                        compile_bytecode=not sys.dont_write_bytecode,
                    )
                    installers = {k: _installers.choose(k) for k in ("pip", "uv")}
                    cmds = {k: i.command(request) for k, i in installers.items()}
                    core = _environment.core_constraints([], ["toy-dist"])
                    print(json.dumps({"auto": auto.name, "uv": installers["uv"].executable,
                                      "cmds": cmds, "core": core}))
                    """
                )
            ).stdout
        )
        self.rows.append(
            Row(
                "3c installer auto picks uv",
                "-",
                str(info["auto"]),
                str(info["auto"]),
                "== uv",
                info["auto"] == "uv",
            )
        )
        constraints = self.tmp / "constraints.txt"
        constraints.write_text("\n".join(info["core"]) + "\n", encoding="utf-8")
        self.details.append(f"3 constraints ({len(info['core'])} core pins): {', '.join(info['core'])}")

        # What the user waits for, measured inside the application: A runs the
        # installer command by hand (subprocess.run from a Python process that
        # already imported subprocess), appends the folder to sys.path and
        # imports toymod; B is `import toymod` in an application that already
        # ran install() on its (warm) target. Both sides import the package
        # once it is there; interpreter start and install() are budget 1's.
        def installed(code: str, target: Path, who: str) -> float:
            """The seconds `code` reports, once it has installed toymod into `target`."""
            elapsed = self.reported(code)
            if not (target / "toymod" / "__init__.py").exists():
                raise BenchError(f"budget 3: {who} did not install toymod")
            shutil.rmtree(target)
            return elapsed

        def manual(kind: str) -> Callable[[], float]:
            def one() -> float:
                target = self.fresh_dir(f"cold-{kind}-a")
                cmd = [
                    str(constraints) if arg == "@CONSTRAINTS@" else str(target) if arg == "@TARGET@" else arg
                    for arg in info["cmds"][kind]
                ]
                code = (
                    "import json, subprocess, sys, time\n"
                    f"cmd = {cmd!r}\n"
                    "t0 = time.perf_counter()\n"
                    "subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,"
                    " stderr=subprocess.STDOUT, check=True)\n"
                    f"sys.path.append({str(target)!r})\n"
                    "import toymod\n"
                    "print(time.perf_counter() - t0)\n"
                )
                return installed(code, target, " ".join(cmd))

            return one

        def hooked(kind: str, prelude: str = "") -> Callable[[], float]:
            def one() -> float:
                target = self.fresh_dir(f"cold-{kind}-b")
                start = (
                    f"import sys, time, lazy_import_hook\n{prelude}"
                    "lazy_import_hook.install({'toymod': 'toy-dist==1.0', 'othermod': 'other-dist==1.0'},"
                    f" target={str(target)!r}, installer={kind!r})\n"
                )
                self.py(start + "import othermod\n")  # an earlier run of the application
                code = start + "t0 = time.perf_counter()\nimport toymod\nprint(time.perf_counter() - t0)\n"
                return installed(code, target, f"the hook with {kind}")

            return one

        self.details.append("3a A: " + " ".join(info["cmds"]["pip"]))
        self.details.append("3b A: " + " ".join(info["cmds"]["uv"]))
        # pip
        sa, sb = self.alternate(manual("pip"), hooked("pip"), max(5, self.rounds // 3), warmup=1)
        self.spread("3a cold install, pip (s)", sa, sb, 1.0, "s")
        ma, mb = statistics.median(sa), statistics.median(sb)
        ratio = statistics.median(b / a for a, b in zip(sa, sb))  # of neighbouring runs
        self.rows.append(
            Row(
                "3a cold install, pip",
                f"{ma:.3f} s",
                f"{mb:.3f} s",
                f"x{ratio:.3f} ({(mb - ma) * 1e3:+.0f} ms)",
                "<= x1.05",
                ratio <= 1.05,
            )
        )
        self.details.append(f"3a the budget allows {ma * 0.05 * 1e3:.1f} ms over the raw pip command")
        self.diagnose_cold("pip")
        # uv (the first pair also warms UV_CACHE_DIR for both sides)
        sa, sb = self.alternate(manual("uv"), hooked("uv"), max(5, self.rounds // 2), warmup=2)
        self.spread("3b cold install, uv (ms)", sa, sb, 1e3, "ms")
        self.add_difference("3b cold install, uv", sa, sb, 30.0, paired=True)
        self.subprocess_share(manual("uv"), hooked("uv", prelude="import subprocess\n"))
        self.diagnose_cold("uv")

    def subprocess_share(self, manual: Callable[[], float], hooked: Callable[[], float]) -> None:
        """3b again, the hooked application having imported subprocess before
        the clock as A has (informative: how much of 3b is that import)."""
        sa, sb = self.alternate(manual, hooked, max(5, self.rounds // 2), warmup=1)
        diff = statistics.median(b - a for a, b in zip(sa, sb)) * 1e3
        self.details.append(
            f"3b with subprocess already imported by the hooked application too (as A imports it "
            f"before its clock): B - A {diff:+.1f} ms, paired, n={len(sa)} (informative)"
        )

    def diagnose_cold(self, kind: str) -> None:
        """Where a cold install's time goes besides the installer (untimed, informative)."""
        runs = 3
        phases: list[dict[str, float]] = []
        for _ in range(runs):
            target = self.fresh_dir(f"diag-{kind}")
            code = textwrap.dedent(
                f"""
                import json, time
                t0 = time.perf_counter()
                import lazy_import_hook
                t1 = time.perf_counter()
                lazy_import_hook.install(
                    {{'toymod': 'toy-dist==1.0'}}, target={str(target)!r}, installer={kind!r}
                )
                t2 = time.perf_counter()
                from lazy_import_hook import _process
                spent = []
                real_run = _process.run
                def timed_run(*args, **kwargs):
                    start = time.perf_counter()
                    try:
                        return real_run(*args, **kwargs)
                    finally:
                        spent.append(time.perf_counter() - start)
                _process.run = timed_run
                t3 = time.perf_counter()
                import toymod
                t4 = time.perf_counter()
                print(json.dumps({{"import lazy_import_hook": t1 - t0, "install()": t2 - t1,
                    "import toymod, besides the installer": t4 - t3 - sum(spent),
                    "installer subprocess": sum(spent)}}))
                """
            )
            phases.append(json.loads(self.py(code).stdout.strip().splitlines()[-1]))
            shutil.rmtree(target)
        parts = ", ".join(f"{k} {statistics.median(p[k] for p in phases) * 1e3:.1f}" for k in phases[0])
        self.details.append(f"3 {kind} B in-child phases (ms, median of {runs}): {parts}")
        target = self.fresh_dir(f"diag-{kind}")
        code = (
            "import lazy_import_hook; lazy_import_hook.install({'toymod': 'toy-dist==1.0'}, "
            f"target={str(target)!r}, installer={kind!r}); import toymod"
        )
        tops: list[tuple[int, str]] = []
        seen_hook = False  # what the interpreter's own start imports comes first
        for line in self.run([PY, "-X", "importtime", "-c", code]).stderr.splitlines():
            fields = line.split("|")
            if line.startswith("import time:") and len(fields) == 3 and fields[1].strip().isdigit():
                name = fields[2]
                top = name.startswith(" ") and not name.startswith("  ")
                if top and seen_hook and name.strip() not in ("toymod", "toydep"):
                    tops.append((int(fields[1]), name.strip()))  # the installer runs inside toymod's
                seen_hook = seen_hook or name.strip() == "lazy_import_hook"
        shutil.rmtree(target)
        heavy = ", ".join(f"{n} {us / 1e3:.1f}" for us, n in sorted(tops, reverse=True)[:6])
        self.details.append(f"3 {kind} B heaviest top-level imports (-X importtime, ms, inflated): {heavy}")

    # ---- budget 4: no compilation at the first import --------------------

    def first_import(self) -> None:
        rounds = max(3, self.rounds // 6)
        control: list[float] = []
        for kind in ("pip", "uv"):
            firsts: list[float] = []
            laters: list[float] = []
            missing_total: list[str] = []
            written_total = 0
            py_files = 0
            for _ in range(rounds):
                target = self.fresh_dir(f"first-{kind}")
                t = str(target)
                setup = (
                    "import importlib.util, lazy_import_hook\n"
                    "finder = lazy_import_hook.install({'toymod': 'toy-dist==1.0'}, "
                    f"target={t!r}, installer={kind!r})\n"
                )
                # Install without importing: executes (and so compiles) nothing.
                proc = self.py(
                    setup + "from lazy_import_hook import _transaction\n"
                    "assert _transaction.install_entry(finder.plan, finder.plan.entries['toymod'])\n"
                )
                if f"with {kind}" not in proc.stderr:
                    raise BenchError(f"budget 4: no install with {kind}:\n{proc.stderr}")
                sources = python_sources(target)
                py_files = len(sources)
                missing = [
                    str(s.relative_to(target))
                    for s in sources
                    if not Path(importlib.util.cache_from_source(str(s))).is_file()
                ]
                missing_total += missing
                # Let the writeback of the fresh install finish first: it is not import time.
                if hasattr(os, "sync"):
                    os.sync()
                before = pyc_snapshot(target)
                names = [f"toymod.m{i:02d}" for i in range(TOY_MODULES)]
                names += [f"toydep.d{i}" for i in range(DEP_MODULES)]
                timing = (
                    "import importlib, time\nstart = time.perf_counter()\nimport toymod\n"
                    f"for name in {names!r}:\n    importlib.import_module(name)\n"
                    "print(time.perf_counter() - start)\n"
                )
                firsts.append(self.reported(setup + timing))
                written_total += len(set(pyc_snapshot(target).items()) - set(before.items()))
                laters.append(statistics.median([self.reported(setup + timing) for _ in range(2)]))
                # Control: the same import when it has to compile (what the budget prevents).
                for folder in target.rglob("__pycache__"):
                    shutil.rmtree(folder)
                control.append(self.reported(setup + timing))
                shutil.rmtree(target)
            mf, ml = statistics.median(firsts), statistics.median(laters)
            ratio = mf / ml
            ok = not missing_total and written_total == 0 and ratio <= 1.5
            self.details.append(
                f"4 {kind}: {rounds} installs, {py_files} .py files each; missing .pyc: "
                f"{len(missing_total)} {missing_total[:5]}; .pyc written by the first import: "
                f"{written_total}; first imports {[round(x * 1e3, 1) for x in firsts]} ms, "
                f"later {[round(x * 1e3, 1) for x in laters]} ms"
            )
            self.rows.append(
                Row(
                    f"4 first import after install, {kind}",
                    f"{ml * 1e3:.1f} ms",
                    f"{mf * 1e3:.1f} ms",
                    f"x{ratio:.2f}, pyc {py_files * rounds - len(missing_total)}/{py_files * rounds}"
                    f", {written_total} rewritten",
                    "all .pyc, x<=1.5",
                    ok,
                )
            )
        self.details.append(
            f"4 control: the same first import without .pyc files (compiling): "
            f"{statistics.median(control) * 1e3:.1f} ms"
        )

    # ---- budget 6: real packages (benchmarks/real.py) --------------------

    def real_packages(self) -> None:
        real_module().real_packages(self)

    # ---- budget 5: core constraints --------------------------------------

    def constraints_scale(self) -> None:
        children = max(3, self.rounds // 4)
        folder = self.fresh_dir("core-dists")
        for i in range(FAKE_DISTS):
            info = folder / f"name_{i}-1.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: name-{i}\nVersion: 1.0\n", encoding="utf-8"
            )

        def code(prepend: str | None) -> str:
            insert = f"sys.path.insert(0, {prepend!r})\n" if prepend else ""
            return (
                "import json, statistics, sys, time\n"
                + insert
                # The state the hook is in when it calls it: _transaction loaded, packaging
                # not (the first call imports it, as an install with a cold cache does).
                + "import lazy_import_hook._transaction\nfrom lazy_import_hook import _environment\n"
                "start = time.perf_counter()\nlines = _environment.core_constraints([], [])\n"
                "first = time.perf_counter() - start\ntimes = []\n"
                f"for _ in range({CONSTRAINT_CALLS}):\n"
                "    start = time.perf_counter()\n    _environment.core_constraints([], [])\n"
                "    times.append(time.perf_counter() - start)\n"
                "print(json.dumps([first, statistics.median(times), len(lines)]))\n"
            )

        results: dict[str, list[list[float]]] = {"a": [], "b": []}
        for _ in range(children):
            for side, prepend in (("a", None), ("b", str(folder))):
                results[side].append(json.loads(self.py(code(prepend)).stdout))
        count_a, count_b = int(results["a"][0][2]), int(results["b"][0][2])
        if count_b - count_a != FAKE_DISTS:
            raise BenchError(f"budget 5: {count_b} constraints with the folder, {count_a} without")
        for index, label in ((0, "first call"), (1, f"median of {CONSTRAINT_CALLS} calls")):
            ma = statistics.median(r[index] for r in results["a"]) * 1e3
            mb = statistics.median(r[index] for r in results["b"]) * 1e3
            self.rows.append(
                Row(
                    f"5 core constraints, +{FAKE_DISTS} dists, {label}",
                    f"{ma:.2f} ms",
                    f"{mb:.2f} ms",
                    f"{mb:.2f} ms",
                    "<= 20 ms",
                    mb <= 20.0,
                )
            )
        self.details.append(
            f"5 {children} children per side; constraints: {count_a} without the folder, {count_b} with it"
        )


# ---- inputs ----------------------------------------------------------------


def dummy_allowlist() -> dict[str, str]:
    allowlist = {f"pkg{i}": f"dummy-dist-{i}==1.0" for i in range(49)}
    allowlist["toymod"] = "toy-dist==1.0"
    return allowlist


def module_source(name: str, functions: int) -> str:
    """A module whose compilation costs something: functions, a class, literals."""
    parts = [f'"""Module {name}."""\n\nfrom __future__ import annotations\n\nTABLE = {{']
    parts += [f"    {i!r}: ({i} * 3, 'v{i}', [{i}, {i + 1}])," for i in range(30)]
    parts.append("}\n")
    for i in range(functions):
        parts.append(
            textwrap.dedent(
                f"""
                def f{i}(x: int, y: int = {i}) -> int:
                    total = 0
                    for k in range(x):
                        if k % 3 == {i % 3}:
                            total += k * y
                        elif k % 5 == 1:
                            total -= TABLE.get(k % 30, (0,))[0]
                        else:
                            total ^= k
                    return total + len([j for j in range(y) if j & 1])
                """
            )
        )
    parts.append(
        textwrap.dedent(
            """
            class Thing:
                def __init__(self, a: int, b: str) -> None:
                    self.a = a
                    self.b = b

                def render(self) -> str:
                    return f"{self.b}={self.a}"
            """
        )
    )
    return "\n".join(parts)


def build_wheelhouse(wheelhouse: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        build_wheel: Callable[..., Path] = importlib.import_module("_wheelhouse").build_wheel
    finally:
        sys.path.remove(str(ROOT / "tests"))
    dep: dict[str, str | bytes] = {"toydep/__init__.py": "VERSION = '1.0'\n"}
    dep.update({f"toydep/d{i}.py": module_source(f"toydep.d{i}", 12) for i in range(DEP_MODULES)})
    build_wheel(wheelhouse, "toy-dep", "1.0", dep)
    files: dict[str, str | bytes] = {
        "toymod/__init__.py": "import toydep\nVERSION = '1.0'\nDEP = toydep.VERSION\n",
    }
    files.update({f"toymod/m{i:02d}.py": module_source(f"toymod.m{i:02d}", 15) for i in range(TOY_MODULES)})
    build_wheel(wheelhouse, "toy-dist", "1.0", files, requires=["toy-dep>=1.0"])
    build_wheel(wheelhouse, "other-dist", "1.0", {"othermod/__init__.py": "VERSION = '1.0'\n"})


def python_sources(target: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(target):
        dirs[:] = [
            d for d in dirs if not d.startswith(".") and not d.endswith(".dist-info") and d != "__pycache__"
        ]
        found += [Path(folder, f) for f in files if f.endswith(".py")]
    return sorted(found)


def pyc_snapshot(target: Path) -> dict[str, tuple[int, int]]:
    snap: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(target):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if os.path.basename(folder) == "__pycache__":
            for f in files:
                st = os.stat(os.path.join(folder, f))
                snap[os.path.join(folder, f)] = (st.st_mtime_ns, st.st_size)
    return snap


# ---- report ----------------------------------------------------------------


def machine() -> list[str]:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    lines = [
        f"machine: {model}; {os.cpu_count()} cores ({usable} usable); load average {load}",
        f"python:  {sys.version.split()[0]} ({platform.python_implementation()}) {PY}; {platform.platform()}",
    ]
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
        lines.append(f"package: {ROOT} at {head or '?'}")
    except (OSError, subprocess.SubprocessError):
        pass
    return lines


def table(rows: Sequence[Row]) -> str:
    header = ("budget", "baseline", "with hook", "figure", "limit", "pass/fail")
    cells = [header] + [(*r[:5], "pass" if r.ok else "FAIL") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(cells[0], widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells[1:]]
    return "\n".join(line.rstrip() for line in lines)


def real_module() -> ModuleType:
    """benchmarks/real.py (budget 6), beside this file."""
    folder = str(Path(__file__).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # real.py's `from run import BenchError` must get this module's class, which
    # main() catches, not a second copy of run.py's when it runs as __main__.
    sys.modules.setdefault("run", sys.modules[__name__])
    return importlib.import_module("real")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the fast budgets (default 30)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (well under a minute)")
    parser.add_argument(
        "--only",
        action="append",
        choices=["1", "2", "3", "4", "5", "6"],
        help="measure only this budget (repeatable); the default is all of them",
    )
    cells = {  # budget 6's cell options: option -> (its choices, what one of them keeps)
        "installer": (("uv", "pip"), "this installer's cells"),
        "package": (tuple(real_module().PACKAGES), "this package's cells"),
        "target-state": (("used", "new"), "the cells on a used (or on a brand-new) target"),
    }
    for option, (choices, kept) in cells.items():
        parser.add_argument(
            f"--{option}", action="append", choices=choices,
            help=f"budget 6: only {kept} (repeatable); the default is all of them",
        )  # fmt: skip
    args = parser.parse_args(argv)
    rounds: int = args.rounds if args.rounds is not None else (10 if args.quick else 30)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    given = {option: getattr(args, option.replace("-", "_")) for option in cells}
    chosen = [f"--{option}" for option, values in given.items() if values]
    if chosen and args.only and "6" not in args.only:
        verb, them = ("chooses", "it") if len(chosen) == 1 else ("choose", "them")
        parser.error(f"{' and '.join(chosen)} {verb} budget 6's cells: add --only 6, or leave {them} out")
    started = time.perf_counter()
    for line in machine():
        print(line)
    print(f"rounds:  {rounds}{' (quick)' if args.quick else ''}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="lazy-import-hook-bench-"))
    bench = Bench(tmp, rounds, args.quick, *(given[option] or cells[option][0] for option in cells))
    budgets: Mapping[str, tuple[str, Callable[[], None]]] = {
        "1": ("1/1b warm start", bench.warm_start),
        "2": ("2 misses", bench.misses),
        "3": ("3 cold installs", bench.cold_installs),
        "4": ("4 first import after install", bench.first_import),
        "5": ("5 core constraints", bench.constraints_scale),
        "6": ("6 real packages, first import", bench.real_packages),
    }
    steps: dict[str, Callable[[], None]] = {"setup (wheelhouse, bytecode)": bench.setup}
    steps.update(budgets[b] for b in budgets if not args.only or b in args.only)
    try:
        for name, step in steps.items():
            t0 = time.perf_counter()
            print(f"... {name}", end="", flush=True)
            step()
            print(f" ({time.perf_counter() - t0:.1f} s)", flush=True)
    except BenchError as e:
        print(f"\nbenchmark error: {e}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(table(bench.rows))
    print()
    for line in bench.details:
        print(f"  {line}")
    failed = [r.budget for r in bench.rows if not r.ok]
    print()
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all budgets met"
    print(f"total {time.perf_counter() - started:.1f} s; {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
