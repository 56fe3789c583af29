"""Settings and their sources: arguments > environment > pyproject > defaults.

`gather()` is the cheap half, run at every start: it reads the environment and
the pyproject file's bytes (no TOML parsing) and builds the cache key.
`resolve()` is the expensive half, run only when the key changed: it parses
TOML and validates everything into a `Plan`, raising `ConfigError`.
"""

from __future__ import annotations

import os
import sys

from ._errors import ConfigError
from ._plan import Plan, environment_tag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_TARGET = "LAZY_IMPORT_HOOK_TARGET"
ENV_DISABLE = "LAZY_IMPORT_HOOK_DISABLE"
ENV_INSTALLER = "LAZY_IMPORT_HOOK_INSTALLER"
ENV_VERBOSE = "LAZY_IMPORT_HOOK_VERBOSE"
ENV_TIMEOUT = "LAZY_IMPORT_HOOK_TIMEOUT"
ENV_CACHE = "LAZY_IMPORT_HOOK_CACHE_DIR"
_ENV_KEYS = (ENV_TARGET, ENV_DISABLE, ENV_INSTALLER, ENV_VERBOSE, ENV_TIMEOUT)

SECTION = "tool.lazy-import-hook"
INSTALLERS = ("auto", "uv", "pip")
# pyproject key -> (Plan attribute, type)
_KEYS: dict[str, tuple[str, type]] = {
    "target": ("target", str),
    "installer": ("installer", str),
    "enabled": ("enabled", bool),
    "timeout": ("timeout", float),
    "allow-sdist": ("allow_sdist", bool),
    "pth-imports": ("pth_imports", bool),
    "verbose": ("verbose", bool),
    "confirm": ("confirm", bool),
    "retry-after": ("retry_after", float),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def default_target() -> str:
    """Per environment, outside site-packages: `<sys.prefix>/lazy-import-hook-packages`."""
    return os.path.join(sys.prefix, "lazy-import-hook-packages")


def cache_home() -> str:
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lazy-import-hook")


class Raw:
    """The inputs of one `install()` call, before validation."""

    __slots__ = (
        "allowlist", "arguments", "cache_path", "key", "pyproject", "pyproject_text", "target_hint",
    )  # fmt: skip

    def __init__(
        self,
        allowlist: object,
        arguments: dict[str, object],
        pyproject: str,
        pyproject_text: str,
    ) -> None:
        self.allowlist = allowlist
        self.arguments = arguments
        self.pyproject = pyproject
        self.pyproject_text = pyproject_text
        env = tuple(os.environ.get(k) for k in _ENV_KEYS)
        # repr() is deterministic for the str/list/dict/bool values configuration
        # holds; anything stranger only costs a cache miss, then a ConfigError.
        items = sorted(allowlist.items(), key=repr) if isinstance(allowlist, dict) else allowlist
        home = os.path.expanduser("~")  # a "~/..." target follows HOME
        self.key = repr(
            (items, sorted(arguments.items()), env, pyproject, pyproject_text, environment_tag(), home)
        )
        target = arguments.get("target") or os.environ.get(ENV_TARGET)
        self.target_hint = (
            target_path(os.fspath(target)) if isinstance(target, (str, os.PathLike)) else ""
        )
        if isinstance(target, (str, os.PathLike)) and not pyproject:
            self.cache_path = os.path.join(target_path(os.fspath(target)), ".lazy-import-hook", "plan")
        elif isinstance(target, (str, os.PathLike)):
            self.cache_path = os.path.join(
                target_path(os.fspath(target)), ".lazy-import-hook", "plan-pyproject"
            )
        else:
            # The target may come from the pyproject itself: keep the cache by its path.
            name = "".join(c if c.isalnum() else "_" for c in pyproject or "default")[-180:]
            self.cache_path = os.path.join(cache_home(), f"plan-{name}")


def target_path(value: str, base: str | None = None) -> str:
    path = os.path.expanduser(value)
    if base is not None and not os.path.isabs(path):
        path = os.path.join(base, path)
    return os.path.abspath(path)


def find_pyproject(start: str | None = None) -> str | None:
    """The nearest pyproject.toml, walking up, that mentions our table."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        try:
            with open(candidate, "rb") as f:
                if b"[tool.lazy-import-hook" in f.read():
                    return candidate
        except OSError:
            pass
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def gather(
    allowlist: Mapping[str, object] | None,
    pyproject: str | os.PathLike[str] | None,
    arguments: dict[str, object],
) -> Raw:
    arguments = {k: v for k, v in arguments.items() if v is not None}
    if allowlist is not None and not (hasattr(allowlist, "keys") and hasattr(allowlist, "items")):
        raise ConfigError(
            f"allowlist must be a mapping of import name to requirement(s), "
            f"got {type(allowlist).__name__}: {allowlist!r:.80}"
        )
    path = ""
    text = ""
    if pyproject is not None or allowlist is None:
        if pyproject is not None:
            path = os.path.abspath(os.fspath(pyproject))
        else:
            found = find_pyproject()
            if found is None:
                raise ConfigError(
                    "no allowlist given and no pyproject.toml with [tool.lazy-import-hook] "
                    f"found in {os.getcwd()} or above; pass install(allowlist={{...}}) "
                    "or install(pyproject='path/to/pyproject.toml')"
                )
            path = found
        if any(ord(c) < 32 for c in path):
            raise ConfigError(f"pyproject path {path!r}: control characters are not allowed")
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read pyproject file {path}: {e}") from e
    return Raw(
        dict(allowlist) if allowlist is not None else None,
        arguments,
        path,
        text,
    )


def _env_bool(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ConfigError(f"environment variable {name}={value!r}: use 1 or 0")


def _check_type(where: str, value: object, kind: type) -> object:
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value > 0 or value == float("inf"):  # also refuses NaN
            raise ConfigError(f"{where} = {value!r}: must be a positive number of seconds")
        return float(value)
    if kind is str and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, kind) or (kind is str and not value):
        expected = "non-empty string" if kind is str else kind.__name__
        raise ConfigError(f"{where} = {value!r}: expected a {expected}")
    if kind is str and any(ord(c) < 32 for c in str(value)):
        raise ConfigError(f"{where} = {value!r}: control characters are not allowed")
    return value


def _read_table(raw: Raw) -> dict[str, object]:
    if not raw.pyproject:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        data = tomllib.loads(raw.pyproject_text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{raw.pyproject}: not valid TOML: {e}") from e
    table = data.get("tool", {}).get("lazy-import-hook")
    if not isinstance(table, dict):
        raise ConfigError(f"{raw.pyproject}: no [{SECTION}] table")
    unknown = sorted(set(table) - set(_KEYS) - {"allowlist"})
    if unknown:
        raise ConfigError(
            f"{raw.pyproject}: unknown key(s) in [{SECTION}]: {', '.join(unknown)}; "
            f"known keys: allowlist, {', '.join(_KEYS)}"
        )
    return table


def resolve(raw: Raw) -> Plan:
    """Validate every source into a Plan (imports packaging and tomllib)."""
    from ._allowlist import parse_allowlist

    table = _read_table(raw)
    where = f"{raw.pyproject} [{SECTION}]" if raw.pyproject else "pyproject"
    values: dict[str, object] = {}
    for key, (attr, kind) in _KEYS.items():
        if key in table:
            values[attr] = _check_type(f"{where} {key}", table[key], kind)
    if "target" in values:
        values["target"] = target_path(str(values["target"]), os.path.dirname(raw.pyproject))
    # Environment
    if os.environ.get(ENV_TARGET):
        values["target"] = target_path(str(_check_type(ENV_TARGET, os.environ[ENV_TARGET], str)))
    if os.environ.get(ENV_INSTALLER):
        values["installer"] = os.environ[ENV_INSTALLER].strip().lower()
    verbose = _env_bool(ENV_VERBOSE)
    if verbose is not None:
        values["verbose"] = verbose
    if os.environ.get(ENV_TIMEOUT):
        try:
            values["timeout"] = _check_type(ENV_TIMEOUT, float(os.environ[ENV_TIMEOUT]), float)
        except ValueError as e:
            raise ConfigError(f"{ENV_TIMEOUT}={os.environ[ENV_TIMEOUT]!r}: not a number") from e
    # Arguments
    for attr, kind in _KEYS.values():
        if attr in raw.arguments:
            values[attr] = _check_type(f"install({attr}=...)", raw.arguments[attr], kind)
    if "target" in raw.arguments:
        values["target"] = target_path(str(values["target"]))
    # The kill switch: any source that disables installs wins.
    enabled = bool(values.get("enabled", True))
    if table.get("enabled") is False or _env_bool(ENV_DISABLE):
        enabled = False
    values["enabled"] = enabled
    if values.get("installer", "auto") not in INSTALLERS:
        raise ConfigError(
            f"installer {values['installer']!r}: use one of {', '.join(INSTALLERS)} "
            f"(argument, {ENV_INSTALLER} or pyproject 'installer')"
        )
    if "target" not in values:
        values["target"] = default_target()
    source = raw.allowlist if raw.allowlist is not None else table.get("allowlist")
    if source is None:
        raise ConfigError(f"{raw.pyproject}: [{SECTION}] has no 'allowlist' table")
    entries = parse_allowlist(
        source,
        where=f"{raw.pyproject} [{SECTION}.allowlist]" if raw.allowlist is None else "allowlist",
    )
    return Plan(entries=entries, pyproject=raw.pyproject, **values)  # type: ignore[arg-type]
