"""`lazy-import-hook bundle DIR`: every entry's locked closure as wheels in
one folder, with the lock that names them, for hosts that reach no index.

The closures are the project's lock when it has one for the same
interpreter (a bundle installs exactly what was tested), else resolved as
`lock` does. The wheels are fetched by `pip download`, hashes required, so
the operator's index, proxy and certificates apply; every file is checked
against its sha256 again once in the folder. Installing from it (the
`wheelhouse` setting, `prefetch --from DIR`) uses no index at all.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile

from ._errors import ConfigError
from ._files import atomic_write
from ._installer import LockError
from ._locker import Target, lock
from ._lockfile import dumps
from ._settings import LOCK_NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._lockfile import Locked, LockFile
    from ._plan import Plan


def bundle(plan: Plan, folder: str, target: Target) -> list[str]:
    """Fill `folder` with the lock and its wheels; one line per entry, then
    one for the folder. LockError when a closure or a file cannot be had."""
    folder = _folder(folder)
    path = os.path.join(folder, LOCK_NAME)
    with tempfile.TemporaryDirectory(prefix="lazy-import-hook-bundle-") as work:
        # The lock reaches the folder only once its wheels are there.
        draft = os.path.join(work, LOCK_NAME)
        _seed(plan, path, draft)
        result, report = lock(plan, draft, target=target)
        packages = _unique(result)
        _download(plan, packages, folder, target, work)
        _check_files(packages, folder)
        try:
            atomic_write(path, dumps(result))
        except OSError as e:
            raise LockError(f"cannot write {path}: {e}") from e
    names = {p.filename for p in packages}
    extra = sorted(f for f in os.listdir(folder) if f.endswith(".whl") and f not in names)
    others = f" ({len(extra)} others left alone)" if extra else ""
    report.append(f"{len(packages)} wheels in {folder}{others}")
    return report


def _folder(folder: str) -> str:
    """The bundle's folder, made if need be: a folder only we (or root) can
    write, since what is in it is installed on other hosts."""
    from ._target import untrusted

    folder = os.path.abspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        why = untrusted(os.stat(folder), folder)
    except OSError as e:
        raise ConfigError(f"bundle {folder}: {e}; name a folder (it is made if it does not exist)") from e
    if why:
        raise ConfigError(f"bundle {folder}: the folder is {why}: a bundle must be writable by you alone")
    return folder


def _seed(plan: Plan, path: str, draft: str) -> None:
    """Start from the project's lock, so that unchanged entries keep exactly
    the closures the project locked and tested; else from the bundle's own.
    Read as any lock is (trusted only if nobody else could write it)."""
    from ._config import lock_path
    from ._lockfile import UnreadableLock, read, write

    for seed in (lock_path(plan), path):
        if seed and os.path.exists(seed):
            try:
                write(draft, read(seed))
            except UnreadableLock:
                continue
            return


def _unique(result: LockFile) -> list[Locked]:
    seen: dict[str, Locked] = {}
    for entry in result.entries.values():
        for package in entry.packages:
            seen.setdefault(package.filename, package)
    return sorted(seen.values(), key=lambda p: p.filename)


def _download(plan: Plan, packages: list[Locked], folder: str, target: Target, work: str) -> None:
    """`pip download` of exactly these files, hashes required; the missing only."""
    import importlib.util

    from ._config import pip_config
    from ._pip import Pip
    from ._pipconf import redacted

    wanted = [p for p in packages if not _holds(folder, p)]
    if not wanted:
        return
    if importlib.util.find_spec("pip") is None:
        raise LockError(f"bundle fetches wheels with pip, which {sys.executable} lacks: install pip into it")
    requirements = os.path.join(work, "bundle.txt")
    with open(requirements, "w", encoding="utf-8") as f:
        f.writelines(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in wanted)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes"]
    cmd += ["--no-input", "--disable-pip-version-check", "--progress-bar", "off", "--dest", folder]
    cmd += ["--python-version", target.python_version] if target.python_version else []
    for platform in _platforms(wanted) if target.platform else ():
        cmd += ["--platform", platform]
    launch = Pip(sys.executable).launch(pip_config(plan))
    try:
        proc = subprocess.run(
            [*cmd, "-r", requirements], env=launch.env, cwd=work, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=plan.settings.timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise LockError(
            f"pip download of {len(wanted)} wheels did not finish in {e.timeout:g} s "
            f"({plan.sources.get('timeout', 'the timeout setting')}); a slow index? raise the timeout setting"
        ) from e
    if proc.returncode != 0:
        raise LockError(f"pip download failed:\n{redacted((proc.stderr or proc.stdout).strip())[-1500:]}")


def _platforms(packages: list[Locked]) -> list[str]:
    """The platform tags of the files themselves: pip then takes exactly
    them, whatever words the installer that locked them used."""
    from packaging.utils import parse_wheel_filename

    tags = {tag.platform for p in packages for tag in parse_wheel_filename(p.filename)[3]}
    return sorted(tags - {"any"})


def _holds(folder: str, package: Locked) -> bool:
    path = os.path.join(folder, package.filename)
    return os.path.isfile(path) and _sha256(path) == package.sha256


def _check_files(packages: list[Locked], folder: str) -> None:
    wrong = [p.filename for p in packages if not _holds(folder, p)]
    if wrong:
        raise LockError(f"after the download, these files in {folder} are missing or differ from the lock: "
                        f"{', '.join(wrong)}")  # fmt: skip


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
