"""Supply chain, with the real pip and uv against a loopback simple index
that publishes sha256, size and upload times (tests/_simple_index.py):
`lazy-import-hook lock` then an install from the lock, a tampered wheel
refused, a range never downgraded, a release-age cooldown, provenance in
the audit log. Every scenario runs in fresh interpreters.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from _offline import installer_env
from _simple_index import same_size_tamper, serve_index
from _wheelhouse import build_wheel
from test_real_installers import INSTALLERS, audit_lines, last_provenance

from lazy_import_hook._lockfile import read as read_lock
from lazy_import_hook._pip import pip_version

APP_11, APP_20 = "idx_app-1.1-py3-none-any.whl", "idx_app-2.0-py3-none-any.whl"
DEP_10, DEP_11 = "idx_dep-1.0-py3-none-any.whl", "idx_dep-1.1-py3-none-any.whl"
LOCK = "pylock.lazy-import-hook.toml"
PIP_HAS_COOLDOWN = tuple(int(p) for p in pip_version().split()[-1].split(".")[:2]) >= (26, 0)


@dataclass(frozen=True)
class Releases:
    """idx-app 1.0 (2020), 1.1 (10 days ago), 2.0 (1 day ago), each needing
    idx-dep>=1.0; idx-dep 1.0 (2020), 1.1 (2 days ago)."""

    wheelhouse: Path
    upload_times: dict[str, datetime]

    def sha256(self, filename: str) -> str:
        return hashlib.sha256((self.wheelhouse / filename).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    wheelhouse = tmp_path_factory.mktemp("supply") / "wheelhouse"
    doc = '"""A module served by the test index, long enough to tamper with."""\n'
    for version in ("1.0", "1.1", "2.0"):
        files = {"idxapp/__init__.py": f"{doc}import idxdep\nVERSION = {version!r}\n"}
        build_wheel(wheelhouse, "idx-app", version, files, requires=["idx-dep>=1.0"])
    for version in ("1.0", "1.1"):
        build_wheel(wheelhouse, "idx-dep", version, {"idxdep/__init__.py": f"{doc}VERSION = {version!r}\n"})
    now = datetime.now(timezone.utc)
    days = {APP_11: 10, DEP_11: 2, APP_20: 1}
    times = {name: now - timedelta(days=n) for name, n in days.items()}
    return Releases(wheelhouse, times)


@pytest.fixture
def index(releases: Releases) -> Iterator[str]:
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times) as url:
        yield url


def index_env(index: str, tmp_path: Path) -> dict[str, str]:
    """The operator's pip points at the index (uv follows pip's settings);
    no find-links, whose files carry no upload time."""
    env = installer_env(tmp_path / "no-wheelhouse", tmp_path, offline=False, PIP_INDEX_URL=index)
    for name in ("PIP_NO_INDEX", "PIP_FIND_LINKS", "UV_NO_INDEX", "UV_FIND_LINKS"):
        env.pop(name)
    return env


def project(tmp_path: Path, installer: str, allowlist: dict[str, str], **settings: str) -> Path:
    lines = ['target = "target"', f'installer = "{installer}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines += ["[tool.lazy-import-hook.allowlist]"]
    lines += [f"{name} = {json.dumps(req)}" for name, req in allowlist.items()]
    (tmp_path / "pyproject.toml").write_text("[tool.lazy-import-hook]\n" + "\n".join(lines) + "\n")
    return tmp_path / "target"


def cli(
    tmp_path: Path, env: dict[str, str], *args: str, check: bool = True, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [python, "-m", "lazy_import_hook", *args], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


IMPORT = """
import json, lazy_import_hook
lazy_import_hook.install()
try:
    import idxapp, idxdep
    print(json.dumps(["ok", idxapp.VERSION, idxdep.VERSION]))
except ImportError as e:
    print(json.dumps([getattr(e, "reason", "ImportError"), str(e)]))
"""


def import_app(tmp_path: Path, env: dict[str, str], python: str = sys.executable) -> list[str]:
    proc = subprocess.run(
        [python, "-c", IMPORT], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout.splitlines()[-1]))


def installed(target: Path) -> set[str]:
    return {p.name for p in target.glob("*.dist-info")} if target.exists() else set()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_lock_then_install_exactly_the_locked_closure(
    installer: str, releases: Releases, index: str, tmp_path: Path
) -> None:
    env = index_env(index, tmp_path)
    target = project(tmp_path, installer, {"idxapp": "idx-app>=1.0,<3"})
    out = cli(tmp_path, env, "lock").stdout
    assert "idxapp: idx-app 2.0, idx-dep 1.1" in out
    lock = read_lock(str(tmp_path / LOCK))
    packages = {p.filename: p for p in lock.entries["idxapp"].packages}
    assert sorted(packages) == [APP_20, DEP_11]
    assert all(p.sha256 == releases.sha256(name) for name, p in packages.items())

    # A newer release after the lock changes nothing: the lock decides.
    build_wheel(releases.wheelhouse, "idx-app", "2.5", {"idxapp/__init__.py": "VERSION = '2.5'\n"})
    try:
        assert import_app(tmp_path, env) == ["ok", "2.0", "1.1"]
    finally:
        (releases.wheelhouse / "idx_app-2.5-py3-none-any.whl").unlink()
    assert installed(target) == {"idx_app-2.0.dist-info", "idx_dep-1.1.dist-info"}
    files = {f["file"]: f for f in last_provenance(target, installer)}
    assert sorted(files) == [APP_20, DEP_11]
    assert files[APP_20]["sha256"] == releases.sha256(APP_20)
    assert str(files[APP_20]["url"]).endswith(f"/files/{APP_20}")


def test_status_shows_the_target_when_the_lock_no_longer_fits(index: str, tmp_path: Path) -> None:
    """At 3 a.m. a pin changed since the lock: status still shows what the
    target holds, says the lock is not applied and why, and exits 2."""
    env = index_env(index, tmp_path)
    project(tmp_path, "pip", {"idxapp": "idx-app>=1.0,<3"})
    cli(tmp_path, env, "lock")
    assert import_app(tmp_path, env) == ["ok", "2.0", "1.1"]
    project(tmp_path, "pip", {"idxapp": "idx-app==1.1"})
    proc = cli(tmp_path, env, "status", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "lock:       NOT APPLIED: " in proc.stdout
    assert "the allowlist changed since the lock" in proc.stdout
    assert "idxapp" in proc.stdout and "idx-app 2.0" in proc.stdout  # what the target holds, stale now
    as_json = json.loads(cli(tmp_path, env, "status", "--json", check=False).stdout)
    assert "the allowlist changed since the lock" in as_json["lock_problem"]


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_tampered_wheel_is_refused_and_nothing_is_committed(
    installer: str, releases: Releases, tmp_path: Path
) -> None:
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times) as url:
        env = index_env(url, tmp_path)
        target = project(tmp_path, installer, {"idxapp": "idx-app==2.0"})
        cli(tmp_path, env, "lock")
    tampered = {DEP_11: same_size_tamper(releases.wheelhouse / DEP_11)}
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times, tamper=tampered) as url:
        reason, message = import_app(tmp_path, index_env(url, tmp_path))
    assert reason == "hash-mismatch"
    assert DEP_11 in message
    assert installed(target) == set()
    assert not (target / "idxapp").exists() and not (target / "idxdep").exists()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_range_the_target_satisfies_is_never_downgraded_or_reinstalled(
    installer: str, index: str, tmp_path: Path
) -> None:
    env = index_env(index, tmp_path)
    target = project(tmp_path, installer, {"idxapp": "idx-app==1.1"})
    assert import_app(tmp_path, env)[:2] == ["ok", "1.1"]
    # The entry becomes a range: the lock keeps what the target holds...
    project(tmp_path, installer, {"idxapp": "idx-app>=1.0"})
    assert "idxapp: idx-app 1.1, idx-dep 1.1" in cli(tmp_path, env, "lock").stdout
    runs = len(audit_lines(target))
    assert import_app(tmp_path, env)[:2] == ["ok", "1.1"]
    assert len(audit_lines(target)) == runs  # ...and nothing is installed again
    # --upgrade moves it forward; a new lock never goes below what is held.
    assert "idxapp: idx-app 2.0, idx-dep 1.1" in cli(tmp_path, env, "lock", "--upgrade").stdout
    assert import_app(tmp_path, env)[:2] == ["ok", "2.0"]
    # A cooldown that excludes what the target holds is refused, not obeyed
    # by a downgrade; the previous lock stays as it was.
    before = (tmp_path / LOCK).read_bytes()
    project(tmp_path, installer, {"idxapp": "idx-app>=1.0"}, **{"min-release-age": "7 days"})
    refused = cli(tmp_path, env, "lock", "--upgrade", check=False)
    assert refused.returncode == 1
    if installer == "pip" and not PIP_HAS_COOLDOWN:
        assert "min-release-age needs pip 26.0 or later" in refused.stderr
    else:
        assert "would downgrade what the target holds (idx-app 2.0 -> 1.1)" in refused.stderr
    assert (tmp_path / LOCK).read_bytes() == before


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_cooldown_excludes_a_too_new_release_from_lock_and_install(
    installer: str, index: str, tmp_path: Path
) -> None:
    if installer == "pip" and not PIP_HAS_COOLDOWN:
        pytest.skip("pip < 26.0 has no --uploaded-prior-to; the refusal is tested below")
    env = index_env(index, tmp_path)
    project(tmp_path, installer, {"idxapp": "idx-app>=1.0"}, **{"min-release-age": "7 days"})
    assert "idxapp: idx-app 1.1, idx-dep 1.0" in cli(tmp_path, env, "lock").stdout
    os.remove(tmp_path / LOCK)
    assert import_app(tmp_path, env) == ["ok", "1.1", "1.0"]


NETWORK = os.environ.get("LAZY_IMPORT_HOOK_NETWORK_TESTS") == "1"


@pytest.mark.skipif(not NETWORK, reason="network test: set LAZY_IMPORT_HOOK_NETWORK_TESTS=1")
def test_the_cooldown_with_the_newest_pip_from_the_package_index(
    index: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """pip >= 26.0 has --uploaded-prior-to: lock and install obey it."""
    venv = tmp_path_factory.mktemp("newest-pip") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    needs = ["pip>=26", "packaging", "filelock", *(["tomli"] if sys.version_info < (3, 11) else [])]
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", *needs], check=True, timeout=600)
    env = index_env(index, tmp_path)
    project(tmp_path, "pip", {"idxapp": "idx-app>=1.0"}, **{"min-release-age": "7 days"})
    assert "idxapp: idx-app 1.1, idx-dep 1.0" in cli(tmp_path, env, "lock", python=python).stdout
    os.remove(tmp_path / LOCK)
    assert import_app(tmp_path, env, python=python) == ["ok", "1.1", "1.0"]


@pytest.mark.skipif(PIP_HAS_COOLDOWN, reason="this pip has --uploaded-prior-to")
def test_a_cooldown_with_an_old_pip_is_a_clear_error_not_ignored(index: str, tmp_path: Path) -> None:
    env = index_env(index, tmp_path)
    target = project(tmp_path, "pip", {"idxapp": "idx-app>=1.0"}, **{"min-release-age": "7 days"})
    reason, message = import_app(tmp_path, env)
    assert reason == "installer-failed"
    assert "min-release-age needs pip 26.0" in message
    assert installed(target) == set()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_lock_for_another_python_is_refused_here_with_what_to_do(
    installer: str, index: str, tmp_path: Path
) -> None:
    env = index_env(index, tmp_path)
    target = project(tmp_path, installer, {"idxapp": "idx-app>=1.0"})
    other = "3.9" if sys.version_info[:2] != (3, 9) else "3.10"
    platform = "linux" if installer == "uv" else "manylinux2014_x86_64"
    out = cli(tmp_path, env, "lock", "--python-version", other, "--platform", platform).stdout
    assert "idxapp: idx-app 2.0, idx-dep 1.1" in out
    environment = read_lock(str(tmp_path / LOCK)).environment
    assert environment == (
        f"python_version == '{other}' and sys_platform == 'linux' and platform_machine == 'x86_64' and "
        "implementation_name == 'cpython'"
    )
    startup = subprocess.run(
        [sys.executable, "-c", "import lazy_import_hook; lazy_import_hook.install()"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "lazy_import_hook._errors.ConfigError: lock file" in startup.stderr
    assert f"was made for {environment}" in startup.stderr
    assert "run `lazy-import-hook lock` with this Python" in startup.stderr
    assert installed(target) == set()


# -- offline bundles ------------------------------------------------------------------


def dead_index_env(tmp_path: Path) -> dict[str, str]:
    """Every index the operator configured is unreachable, uv's own included."""
    dead = "http://127.0.0.1:9/simple/"
    return {**index_env(dead, tmp_path), "UV_INDEX_URL": dead, "UV_OFFLINE": "1"}


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_bundle_installs_with_every_index_unreachable(
    installer: str, releases: Releases, tmp_path: Path
) -> None:
    built, host = tmp_path / "build", tmp_path / "host"
    built.mkdir()
    host.mkdir()
    project(built, installer, {"idxapp": "idx-app>=1.0,<3"})
    with serve_index(releases.wheelhouse, upload_times=releases.upload_times) as url:
        out = cli(built, index_env(url, tmp_path), "bundle", str(tmp_path / "bundle")).stdout
    assert "idxapp: idx-app 2.0, idx-dep 1.1" in out and "2 wheels in" in out
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [APP_20, DEP_11, LOCK]

    env = dead_index_env(tmp_path)
    target = project(host, installer, {"idxapp": "idx-app>=1.0,<3"}, wheelhouse=str(tmp_path / "bundle"))
    assert import_app(host, env) == ["ok", "2.0", "1.1"]
    line = audit_lines(target)[-1]
    assert str(line["index"]).startswith(f"no index (wheelhouse setting {tmp_path / 'bundle'})")
    # The same bundle through the command line, into another target.
    project(host, installer, {"idxapp": "idx-app>=1.0,<3"})  # no wheelhouse setting now
    other = host / "target2"
    out = cli(host, env, "--target", str(other), "prefetch", "--from", str(tmp_path / "bundle")).stdout
    assert "idxapp: installed" in out
    assert installed(other) == {"idx_app-2.0.dist-info", "idx_dep-1.1.dist-info"}


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_tampered_bundle_or_a_changed_entry_is_refused(
    installer: str, releases: Releases, index: str, tmp_path: Path
) -> None:
    project(tmp_path, installer, {"idxapp": "idx-app==1.1"})
    cli(tmp_path, index_env(index, tmp_path), "bundle", "bundle")
    (tmp_path / LOCK).unlink(missing_ok=True)
    (tmp_path / "bundle" / DEP_11).write_bytes(same_size_tamper(releases.wheelhouse / DEP_11))
    env = dead_index_env(tmp_path)
    target = project(tmp_path, installer, {"idxapp": "idx-app==1.1"}, wheelhouse="bundle")
    reason, message = import_app(tmp_path, env)
    assert reason == "hash-mismatch" and DEP_11 in message
    assert installed(target) == set()

    project(tmp_path, installer, {"idxapp": "idx-app==2.0"}, wheelhouse="bundle")
    startup = cli(tmp_path, env, "prefetch", check=False)
    assert startup.returncode == 2
    assert f"run `lazy-import-hook bundle {tmp_path / 'bundle'}`" in startup.stderr


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_bundle_for_another_platform_and_python(installer: str, tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    native = "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64"
    build_wheel(wheelhouse, "idx-native", "1.0", {"idxnative/__init__.py": ""}, tag=native)
    build_wheel(wheelhouse, "idx-pure", "1.0", {"idxpure/__init__.py": ""}, requires=["idx-native"])
    project(tmp_path, installer, {"idxpure": "idx-pure==1.0"})
    platform = "aarch64-manylinux_2_28" if installer == "uv" else "manylinux2014_aarch64"
    with serve_index(wheelhouse) as url:
        out = cli(tmp_path, index_env(url, tmp_path), "bundle", "bundle", "--python-version", "3.12",
                  "--platform", platform).stdout  # fmt: skip
    assert "idxpure: idx-native 1.0, idx-pure 1.0" in out
    files = sorted(p.name for p in (tmp_path / "bundle").iterdir())
    assert files == [f"idx_native-1.0-{native}.whl", "idx_pure-1.0-py3-none-any.whl", LOCK]
    environment = read_lock(str(tmp_path / "bundle" / LOCK)).environment
    assert environment.startswith("python_version == '3.12' and sys_platform == 'linux'")
    assert "platform_machine == 'aarch64'" in environment
    # Here (not aarch64, maybe not 3.12) that bundle is refused before anything installs.
    project(tmp_path, installer, {"idxpure": "idx-pure==1.0"}, wheelhouse="bundle")
    refused = cli(tmp_path, dead_index_env(tmp_path), "prefetch", check=False)
    assert refused.returncode == 2 and f"was made for {environment}, not for" in refused.stderr


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("here", [True, False], ids=["this-python", "another-platform"])
def test_a_version_with_several_usable_wheels_is_locked_and_bundled_as_the_one_installed(
    installer: str, here: bool, tmp_path: Path
) -> None:
    """uv's resolution lists every wheel of a version the target can use (as
    charset-normalizer's cp311 and py3-none-any ones); the lock keeps the one
    the installer picks, and the bundle then holds exactly that file."""
    from packaging.tags import sys_tags

    wheelhouse = tmp_path / "wheelhouse"
    best = str(next(iter(sys_tags()))) if here else "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64"
    for tag in (best, "py3-none-any" if here else "cp37-abi3-manylinux_2_17_aarch64", "py3-none-any"):
        build_wheel(wheelhouse, "idx-multi", "1.0", {"idxmulti/__init__.py": f"TAG = {tag!r}\n"}, tag=tag)
    project(tmp_path, installer, {"idxmulti": "idx-multi==1.0"})
    where = [] if here else ["--python-version", "3.12", "--platform"]
    where += [] if here else ["aarch64-manylinux_2_28" if installer == "uv" else "manylinux2014_aarch64"]
    with serve_index(wheelhouse) as url:
        out = cli(tmp_path, index_env(url, tmp_path), "bundle", "bundle", *where).stdout
    assert "idxmulti: idx-multi 1.0" in out
    entries = read_lock(str(tmp_path / "bundle" / LOCK)).entries.values()
    assert [p.filename for entry in entries for p in entry.packages] == [f"idx_multi-1.0-{best}.whl"]
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [f"idx_multi-1.0-{best}.whl", LOCK]


def test_an_allowlist_in_code_names_its_lock_file(index: str, tmp_path: Path) -> None:
    """install(lock=...): locked through the plan the application recorded in its target."""
    env = index_env(index, tmp_path)
    target, lock = tmp_path / "target", tmp_path / "app.lock.toml"
    start = (
        "import json, lazy_import_hook\n"
        f"lazy_import_hook.install({{'idxapp': 'idx-app>=1.0'}}, target={str(target)!r}, "
        "installer='uv'LOCK)\n"
        "import idxapp\nprint(json.dumps([idxapp.VERSION]))\n"
    )
    missing = subprocess.run(
        [sys.executable, "-c", start.replace("LOCK", f", lock={str(lock)!r}")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert f"lock file {lock} (install(lock={str(lock)!r})) does not exist" in missing.stderr
    assert f"lazy-import-hook --target {target} lock --output {lock}" in missing.stderr
    assert not target.exists()
    # As the message says: one start without the lock records the plan; lock it; start with it.
    first = subprocess.run([sys.executable, "-c", start.replace("LOCK", "")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert json.loads(first.stdout) == ["2.0"]
    out = cli(tmp_path, env, "--target", str(target), "lock", "--output", str(lock)).stdout
    assert "idxapp: idx-app 2.0, idx-dep 1.1" in out
    with_lock = start.replace("LOCK", f", lock={str(lock)!r}")
    again = subprocess.run([sys.executable, "-c", with_lock], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert json.loads(again.stdout) == ["2.0"]


# -- what is refused, and how it is said ------------------------------------------------


def test_a_hand_edited_lock_loses_what_the_closure_does_not_need(
    releases: Releases, index: str, tmp_path: Path
) -> None:
    """A package added to an entry's group by hand (a lockfile-injection
    change) is not kept by the next lock: every closure is resolved again."""
    env = index_env(index, tmp_path)
    project(tmp_path, "uv", {"idxapp": "idx-app==1.1"})
    cli(tmp_path, env, "lock")
    text = (tmp_path / LOCK).read_text()
    dep = text[text.index("[[packages]]") : text.index("[[packages]]", text.index("[[packages]]") + 1)]
    (tmp_path / LOCK).write_text(text + "\n" + dep.replace('name = "idx-app"', 'name = "evil"'))
    assert "evil" in {p.name for p in read_lock(str(tmp_path / LOCK)).entries["idxapp"].packages}
    assert "idxapp: idx-app 1.1, idx-dep 1.1\n" in cli(tmp_path, env, "lock").stdout
    assert "evil" not in (tmp_path / LOCK).read_text()


def test_lock_under_a_cooldown_refuses_find_links(wheelhouse: Path, tmp_path: Path) -> None:
    env = installer_env(wheelhouse, tmp_path)
    project(tmp_path, "uv", {"toymod": "toy-dist>=1.0"}, **{"min-release-age": "7 days"})
    refused = cli(tmp_path, env, "lock", check=False)
    assert refused.returncode == 1
    says = f"min-release-age cannot be checked for files found through find-links ({wheelhouse}): they carry"
    assert says in refused.stderr
    assert not (tmp_path / LOCK).exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["lock", "--upgrade", "idx-app"], "--upgrade takes import names; not on the allowlist: idx-app "
                                           "(allow-listed: idxapp)"),
        (["lock", "--python-version", "banana"], "--python-version 'banana': write it as 3.12 (or 3.12.4)"),
        (["lock", "--platform", "amiga"], "--platform 'amiga': cannot tell its operating system and machine"),
        (["lock", "--output", "no/such/folder/x.toml"], "name a file in a folder that exists"),
        (["lock", "--output", "."], "name a file in a folder that exists"),
        (["bundle", "pyproject.toml"], "name a folder (it is made if it does not exist)"),
        (["prefetch", "--from", "nowhere"], "prefetch --from nowhere: no such folder"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(args: list[str], says: str, tmp_path: Path) -> None:
    project(tmp_path, "uv", {"idxapp": "idx-app>=1.0"})
    result = cli(tmp_path, installer_env(tmp_path, tmp_path), *args, check=False)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("age", ["inf days", "1e12 days", "nan hours", "-1 days", "7 dayz"])
def test_an_impossible_cooldown_is_a_config_error(age: str, tmp_path: Path) -> None:
    project(tmp_path, "uv", {"idxapp": "idx-app>=1.0"}, **{"min-release-age": age})
    result = cli(tmp_path, installer_env(tmp_path, tmp_path), "lock", check=False)
    assert result.returncode == 2 and "expected a duration such as" in result.stderr


def test_a_garbage_lock_is_replaced_by_lock_with_a_warning(index: str, tmp_path: Path) -> None:
    project(tmp_path, "uv", {"idxapp": "idx-app==1.1"})
    (tmp_path / LOCK).write_text("this is not toml [")
    result = cli(tmp_path, index_env(index, tmp_path), "lock")
    assert "replacing it: lock file" in result.stderr
    assert read_lock(str(tmp_path / LOCK)).entries["idxapp"].packages[0].version == "1.1"


def test_locks_and_bundles_others_could_write_are_refused(index: str, tmp_path: Path) -> None:
    env = index_env(index, tmp_path)
    project(tmp_path, "uv", {"idxapp": "idx-app==1.1"})
    cli(tmp_path, env, "bundle", "bundle")
    # Another user's lock beside the pyproject: neither install() nor bundle takes orders from it.
    os.chown(tmp_path / "bundle" / LOCK, 65534, 65534)
    os.rename(tmp_path / "bundle" / LOCK, tmp_path / LOCK)
    for args in (["prefetch"], ["bundle", "bundle"]):
        result = cli(tmp_path, env, *args, check=False)
        assert result.returncode == 2, result.stderr
        assert f"lock file {tmp_path / LOCK}: the file is owned by another user (uid 65534)" in result.stderr
    os.remove(tmp_path / LOCK)
    # A bundle folder others can write: not made, not installed from.
    (tmp_path / "bundle").chmod(0o777)
    result = cli(tmp_path, env, "bundle", "bundle", check=False)
    assert result.returncode == 2 and "the folder is writable by every user" in result.stderr
    project(tmp_path, "uv", {"idxapp": "idx-app==1.1"}, wheelhouse="bundle")
    result = cli(tmp_path, env, "prefetch", check=False)
    assert result.returncode == 2 and "is writable by every user (mode drwxrwxrwx" in result.stderr


def test_a_bundle_whose_download_times_out_says_so_in_one_line(
    target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a traceback: which timeout, from where, and what to change."""
    from lazy_import_hook import _bundle, _config, _settings
    from lazy_import_hook._installer import LockError
    from lazy_import_hook._locker import Target
    from lazy_import_hook._lockfile import Locked

    raw = _settings.gather({"toymod": "toy-dist==1.0"}, None, {"target": str(target), "timeout": 5})
    plan = _config.resolve(raw)

    def never_done(cmd: list[str], **options: float) -> None:
        raise subprocess.TimeoutExpired(cmd, options["timeout"])

    monkeypatch.setattr(subprocess, "run", never_done)
    wheel = Locked("toy-dist", "1.0", filename="toy_dist-1.0-py3-none-any.whl", sha256="ab" * 32)
    with pytest.raises(LockError) as raised:
        _bundle._download(plan, [wheel], str(tmp_path), Target(), str(tmp_path))
    assert str(raised.value) == (
        "pip download of 1 wheels did not finish in 5 s (install(timeout=5)); a slow index? "
        "raise the timeout setting"
    )
