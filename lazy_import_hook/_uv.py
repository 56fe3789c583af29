"""uv as an installer: `uv pip install --python <this interpreter> --target ...`.

uv reads no pip configuration, so the operator's pip settings (the effective
values `_pipconf` reads) are translated into uv's, unless the operator gave
uv its own: one index configuration for both installers. Of uv's own
variables only those that say where packages come from, how to reach them,
and how uv works (cache, concurrency) are kept; any other (`UV_PYTHON`,
`UV_OVERRIDE`, `UV_LINK_MODE`, `UV_RESOLUTION`, ...) is dropped and named.
"""

from __future__ import annotations

import os
import sys

from ._installer import Installer, InstallerTooOld, InstallRequest, Launch, base_environment, run_resolver
from ._pipconf import redacted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ._lockfile import Locked
    from ._pipconf import PipConfig

# uv's own index settings: any one of them means the operator configured uv,
# and pip's index settings are not translated.
INDEX_VARIABLES = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")
# A restriction on either's sources, not a source: `uv pip install` ignores it
# (it has no variable for --no-index), yet images set it believing it seals
# the index, so it becomes the option. Any value but these seals: the safe reading.
NO_INDEX = "UV_NO_INDEX"
_FALSE = frozenset(("", "0", "false", "no", "off"))
KEPT = frozenset((
    *INDEX_VARIABLES, NO_INDEX, "UV_INDEX_STRATEGY", "UV_KEYRING_PROVIDER", "UV_INSECURE_HOST",
    "UV_NATIVE_TLS", "UV_SYSTEM_CERTS", "UV_CREDENTIALS_DIR", "UV_NO_HF_TOKEN", "UV_S3_ENDPOINT_URL",
    "UV_GCS_ENDPOINT_URL", "UV_AZURE_ENDPOINT_URL", "UV_HTTP_TIMEOUT", "UV_HTTP_CONNECT_TIMEOUT",
    "UV_REQUEST_TIMEOUT", "UV_HTTP_RETRIES", "UV_OFFLINE", "UV_CACHE_DIR", "UV_NO_CACHE", "UV_LOCK_TIMEOUT",
    "UV_COMPILE_BYTECODE_TIMEOUT", "UV_NO_WRAP", "UV_LOG_CONTEXT", "UV_STACK_SIZE", "UV_GITHUB_TOKEN",
    "UV_BUILD_CONSTRAINT", "UV_REQUIRE_BUILD_HASHES", "UV_NO_CONFIG", "UV_NO_SYSTEM_CONFIG",
))  # fmt: skip
# The uv a launch needs (Launch.needs): UV_FIND_LINKS is read since 0.4.19,
# and split at commas since 0.5.17 (0.4.20 to 0.5.16 took it as one link);
# a resolution's pylock.toml is written since 0.6.15 (0.6.14 has no --format),
# with hashes for a find-links folder's wheels since 0.12.11.
NEEDS_NOTHING = ("", "")
READS_LINKS = ("0.4.19", "is the first to read find-links from UV_FIND_LINKS")
READS_LIST = ("0.5.17", "is the first to split UV_FIND_LINKS into its links at commas")
WRITES_PYLOCK = ("0.6.15", "is the first whose `pip compile` writes pylock.toml (`lock`, `bundle`)")
HASHES_FOLDERS = ("0.12.11", "is the first to hash local wheels (find-links folders) in a pylock.toml")
PROVENANCE_WAIT = 60.0  # seconds uv's resolution of what was committed may take
_KEPT_PREFIXES = ("UV_INDEX_", "UV_CONCURRENT_")  # per-index credentials; parallelism


class Uv(Installer):
    name = "uv"
    remembers_version = True  # `uv --version` is a process; pip's version is read from a file
    exact_constraints_with_hashes = True

    @classmethod
    def find(cls) -> Uv | None:
        path = find_uv()
        return cls(path) if path else None

    def command(self, request: InstallRequest, launch: Launch | None = None) -> list[str]:
        # --python always: without it uv may pick another interpreter on PATH.
        # --no-config: uv would read uv.toml and [tool.uv] in every folder
        # above its working directory (inside the target), and the user's
        # and the system's uv.toml; its UV_* variables still apply.
        cmd = [self.executable, "pip", "install", "--python", sys.executable, "--no-config"]
        cmd += ["--target", request.target, "--no-progress", "--color", "never"]
        if request.compile_bytecode:
            cmd.append("--compile-bytecode")
        if others_cache(os.environ if launch is None else launch.env):
            cmd += ["--link-mode", "copy"]  # see others_cache
        return cmd + self.options(request, launch)

    def cutoff_options(self, cutoff: str) -> list[str]:
        return ["--exclude-newer", cutoff]

    def provenance_probe(self, request: InstallRequest, launch: Launch) -> Callable[[], object]:
        return list  # nothing beside the install: what it committed is asked for after it

    def provenance_after(
        self, request: InstallRequest, launch: Launch, committed: Sequence[str]
    ) -> Callable[[], object] | None:
        """uv reports no files: its own resolution of exactly what was
        committed names them. Asked after the import, not beside the install:
        on few cores a second resolution beside the install slowed it by about
        as long as it ran, and the import then waited for it as well."""
        from ._files import parse_dist_folder

        pins = [f"{nv[0]}=={nv[1]}" for nv in map(parse_dist_folder, committed) if nv]
        if not pins:
            return None
        cmd = [*self._pylock_command(), "--no-deps"]
        cmd += ["--only-binary", ":all:"] if request.only_binary else []
        cmd += self.cutoff_options(request.exclude_newer) if request.exclude_newer else []
        return lambda: _compiled([*cmd, *launch.options], launch.env, pins)

    def resolve(
        self, requirements: Sequence[str], constraints: str, launch: Launch, *, work: str, cutoff: str,
        python_version: str | None = None, platform: str | None = None,
    ) -> list[Locked]:  # fmt: skip
        from ._provenance import from_pylock, preferred

        source = os.path.join(work, "requirements.in")
        with open(source, "w", encoding="utf-8") as f:
            f.write("".join(f"{r}\n" for r in requirements))
        cmd = [*self._pylock_command(), "--only-binary", ":all:"]
        cmd += [self.constraint_option, constraints, *(self.cutoff_options(cutoff) if cutoff else [])]
        cmd += ["--python-version", python_version] if python_version else []
        cmd += ["--python-platform", platform] if platform else []
        launch = launch.needing(WRITES_PYLOCK)
        said = run_resolver([*cmd, *launch.options, source], launch, work, version_probe=self.version_probe)
        return self._hashed(preferred(from_pylock(said), here=not (python_version or platform)), launch)

    def _hashed(self, locked: list[Locked], launch: Launch) -> list[Locked]:
        """What uv resolved, unless it left local files (a find-links folder's,
        a file:// index's) unhashed because it is too old to hash them: the
        lock would say only "no sha256", which sends the operator to the files."""
        local = [f.filename for f in locked if not f.sha256 and f.url.startswith("file:")]
        if local:
            too_old = launch.needing(HASHES_FOLDERS).too_old(self.version_probe()())
            if too_old:
                raise InstallerTooOld(f"no sha256 for {', '.join(local)} (local files):{too_old}")
        return locked

    def _pylock_command(self) -> list[str]:
        """uv's resolution for this interpreter, as a pylock.toml on stdout."""
        return [
            self.executable, "pip", "compile", "--python", sys.executable, "--no-config", "--quiet",
            "--format", "pylock.toml", "--no-progress", "--color", "never",
        ]  # fmt: skip

    def launch(self, pip: PipConfig, env: Mapping[str, str] | None = None) -> Launch:
        result, dropped = base_environment(env)
        result = {k: v for k, v in result.items() if not k.startswith(("PIP_", "_PIP_"))}
        forwarded = result.pop("UV_CONSTRAINT", "").split()  # uv ignores it next to ours: pass it on
        unkept = [k for k in result if k.startswith("UV_") and not _kept(k)]
        if "UV_CONFIG_FILE" in (os.environ if env is None else env):  # gone already: named here
            unkept.append("UV_CONFIG_FILE")
        dropped += sorted(unkept)
        result = {k: v for k, v in result.items() if not k.startswith("UV_") or _kept(k)}
        if pip.sealed:  # the wheelhouse alone: uv's own index settings too are set aside
            dropped += [k for k in (*INDEX_VARIABLES, NO_INDEX) if result.pop(k, None) is not None]
        options, needs = ([], NEEDS_NOTHING) if _own_index(result) else _index_options(pip, result)
        if _seals(result) and "--no-index" not in options:
            options.insert(0, "--no-index")
        dropped += _translate_trust(pip, result)
        options += [f"--constraint={path}" for path in [*pip.items("constraint"), *forwarded]]
        dropped += [f"{key} ({value.source})" for key, value in sorted(pip.others.items())]
        return Launch(result, options, dropped, needs)

    def index(self, pip: PipConfig, env: Mapping[str, str] | None = None) -> str:
        env = os.environ if env is None else env
        own = [f"{k}={redacted(env[k])}" for k in INDEX_VARIABLES if env.get(k) and not pip.sealed]
        where = f"{', '.join(own)} (uv's own settings)" if own else pip.describe()
        said = not own and pip.flag("no-index")  # pip's no-index, translated, is in `where`
        sealed = _seals(env) and not pip.sealed and not said
        return f"{where}; uv: no index, find-links only ({NO_INDEX}={env[NO_INDEX]})" if sealed else where

    def manual_base(self, target: str) -> list[str]:
        return ["uv", "pip", "install", "--python", sys.executable, "--target", target]

    def version_probe(self) -> Callable[[], str]:
        """The version its wheel's record gives, if this very program came
        from a wheel in the core environment (`pip install uv`); or else `uv
        --version`, asked in parallel with the install itself: about 10 ms of
        CPU time on a new target's first install, which uv's own run wants."""
        from ._process import Probe

        recorded = recorded_version(self.executable)
        if recorded:
            return lambda: recorded
        try:
            probe = Probe([self.executable, "--version"])
        except OSError:  # gone since it was found (no setpriv: Popen itself says so)
            return lambda: self.name

        def version() -> str:
            code, out, _ = probe.result(timeout=10)
            return out.strip() if code == 0 and out.strip() else self.name

        return version


def _compiled(cmd: list[str], env: Mapping[str, str], pins: Sequence[str]) -> object:
    """Run uv's resolution of `pins` (at most PROVENANCE_WAIT seconds) and
    read its files. The pins go to it on its standard input: no file of
    theirs is left behind when the application is killed meanwhile, and the
    target's staging folder is emptied by the next install."""
    from ._process import Probe
    from ._provenance import from_pylock, preferred

    given = "".join(f"{pin}\n" for pin in pins)
    code, out, err = Probe([*cmd, "-"], env=env, cwd=os.path.abspath(os.sep), given=given).result(
        timeout=PROVENANCE_WAIT
    )
    if code is None:
        return f"uv's resolution did not answer within {PROVENANCE_WAIT:g} s"
    if code != 0:
        return f"uv pip compile failed: {redacted(err.strip())[-300:]}"
    try:
        return preferred(from_pylock(out))
    except Exception as e:  # a format this version does not know
        return f"uv's pylock output could not be read: {e}"


def others_cache(env: Mapping[str, str]) -> str | None:
    """Why uv's cache is not this user's alone, or None. uv hard-links what
    it installs from its cache: whoever can write a cached file (a cache
    shared through UV_CACHE_DIR, one made under a lax umask) would write the
    installed one, so such a cache is copied from instead."""
    from ._target import exposed_ancestor, untrusted

    if env.get("UV_NO_CACHE", "").strip().lower() not in _FALSE:
        return None  # a temporary cache of its own, in the install's private temporary folder
    home = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.abspath(env.get("UV_CACHE_DIR") or os.path.join(home, "uv"))
    try:
        why = untrusted(os.stat(folder), folder)
    except OSError:
        why = None  # not made yet: uv makes it, under the installer's umask
    return why or exposed_ancestor(folder)


def _kept(name: str) -> bool:
    return name in KEPT or name.startswith(_KEPT_PREFIXES)


def _own_index(env: Mapping[str, str]) -> bool:
    return any(env.get(k) for k in INDEX_VARIABLES)


def _seals(env: Mapping[str, str]) -> bool:
    return env.get(NO_INDEX, "").strip().lower() not in _FALSE


def _index_options(pip: PipConfig, env: dict[str, str]) -> tuple[list[str], tuple[str, str]]:
    """pip's index settings for uv: variables where uv has them (every
    version since 0.4), options where it has none (--no-index); and the uv
    version they need, if newer than that."""
    options = ["--no-index"] if pip.flag("no-index") else []
    if pip.get("index-url"):
        env["UV_INDEX_URL"] = str(pip.get("index-url"))
    if pip.items("extra-index-url"):
        env["UV_EXTRA_INDEX_URL"] = " ".join(pip.items("extra-index-url"))
        # pip takes the best version from all its indexes together; uv, by
        # default, only from the first that has the project (a pin found
        # only on an extra index would fail). Unless the operator chose.
        _default(env, "UV_INDEX_STRATEGY", "unsafe-best-match")
    # pip skips a folder that does not exist; uv would stop: skip it too.
    links = [link for link in pip.items("find-links") if "://" in link or os.path.isdir(link)]
    if any(redacted(link) != link for link in links):
        # A link with a password or token stays off the command line, which
        # every user can read (ps, /proc/PID/cmdline): all go in the variable
        # (given any --find-links, uv would not read it), comma-separated, a
        # URL's comma as %2C, a folder as its file:// URL.
        env["UV_FIND_LINKS"] = ",".join(_listable(link) for link in links)
        return options, (READS_LIST if len(links) > 1 else READS_LINKS)
    return options + [f"--find-links={link}" for link in links], NEEDS_NOTHING


def _listable(link: str) -> str:
    """`link` with no comma, for a comma-separated list."""
    if "://" in link:
        return link.replace(",", "%2C")
    from pathlib import Path

    return Path(os.path.abspath(link)).as_uri()  # percent-encoded: "," is "%2C"


def _translate_trust(pip: PipConfig, env: dict[str, str]) -> list[str]:
    """Certificates, trusted hosts, keyring, proxy and timeouts, unless uv has
    its own; returns what of pip's uv has no equivalent for, to be named."""
    untranslated = _untranslated_keyring(pip, env)
    cert = pip.get("cert")
    if cert and not (env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR")):
        env["SSL_CERT_DIR" if os.path.isdir(cert) else "SSL_CERT_FILE"] = cert
    _default(env, "SSL_CLIENT_CERT", pip.get("client-cert"))
    _default(env, "UV_INSECURE_HOST", " ".join(pip.items("trusted-host")) or None)
    _default(env, "UV_KEYRING_PROVIDER", _KEYRING.get(pip.get("keyring-provider") or ""))
    proxy = pip.get("proxy")
    if proxy and not any(k.lower() in ("http_proxy", "https_proxy", "all_proxy") for k in env):
        env["HTTP_PROXY"] = env["HTTPS_PROXY"] = proxy
    timeout = pip.get("timeout")
    if timeout and timeout.replace(".", "", 1).isdigit():
        _default(env, "UV_HTTP_TIMEOUT", str(max(1, round(float(timeout)))))
    retries = pip.get("retries")
    _default(env, "UV_HTTP_RETRIES", retries if retries and retries.isdigit() else None)
    return untranslated


# pip's keyring providers that uv has, spelt as pip takes them (exactly).
# pip's `auto` uses no keyring in the hook's runs (pip's --no-input), and
# `import` none that uv has: either as uv's `subprocess` would run whatever
# `keyring` PATH finds, which the operator did not choose.
_KEYRING = {"disabled": "disabled", "subprocess": "subprocess"}
_PIPS_PROVIDERS = ("auto", "disabled", "import", "subprocess")


def _untranslated_keyring(pip: PipConfig, env: Mapping[str, str]) -> list[str]:
    """pip's keyring provider, when uv gets none of its own and has no
    equivalent: a mirror that works with pip may then answer uv with 401, and
    the audit line says why."""
    provider = pip.get("keyring-provider")
    if provider in (None, "auto", *_KEYRING) or env.get("UV_KEYRING_PROVIDER"):
        return []  # translated; or pip's auto, which with --no-input is no keyring, as uv without one
    # Only pip's own words are shown: another value may be anything pasted there.
    shown = f"={provider}" if provider in _PIPS_PROVIDERS else " (a value pip refuses)"
    return [f"keyring-provider{shown} ({pip.source('keyring-provider')}): uv has no such provider"]


def _default(env: dict[str, str], name: str, value: str | None) -> None:
    if value and not env.get(name):
        env[name] = value


def find_uv() -> str | None:
    """uv of the core environment (where the `uv` package puts it), beside
    the interpreter, or on PATH. Never by importing a module named `uv`:
    one in the working directory would choose the installer."""
    from ._files import on_path, program_in

    beside = program_in(os.path.dirname(sys.executable), "uv")  # a stat: the usual venv case
    if beside:
        return beside  # without sysconfig
    in_scripts = (program_in(folder, "uv") for folder in _script_folders())
    return next(filter(None, in_scripts), None) or on_path("uv")


def recorded_version(executable: str) -> str | None:
    """`uv X.Y.Z`, if `executable` is the very file (of the size recorded)
    that the `uv` distribution's RECORD lists, in a folder pip installs this
    environment's packages into: read as cheaply as pip's own version. None
    for a uv from anywhere else (a standalone install, a copy), one replaced
    since, or a uv-*.dist-info anywhere else on sys.path (the working
    directory, PYTHONPATH, a target)."""
    from ._files import dist_folders

    try:
        program = os.stat(executable)
    except (OSError, ValueError):
        return None
    for folder in _site_folders():
        dist = dist_folders(folder).get("uv")
        if dist and dist.lists(program):
            return f"uv {dist.version}"
    return None


def _site_folders() -> list[str]:
    """Where pip installs packages for this interpreter: the environment's
    site folders (its prefixes'), and the user's when it is enabled."""
    import site

    folders = list(getattr(site, "getsitepackages", list)())  # an old virtualenv's site.py has none
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return folders


def _script_folders() -> list[str]:
    """Where this environment's installers put scripts (the uv package's
    binary among them), the user's scheme included."""
    import sysconfig

    folders = [sysconfig.get_path("scripts")]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        folders.append(sysconfig.get_path("scripts", user_scheme))
    return folders
