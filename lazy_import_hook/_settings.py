"""The one table of settings, and the raw inputs of `install()` it reads.

Each row of `Settings` names a setting once: its kind (how a value is checked
in each source and written to the startup cache), its default, its
environment variable and its documentation. From the rows come `install()`'s
keyword arguments, the environment variables read, the keys allowed in
`[tool.lazy-import-hook]`, the plan's values and the startup cache. The
attribute name is the `install()` argument; the pyproject key is the same
with dashes (`retry_after` -> `retry-after`).

`gather()` is the cheap half of configuration, run at every start: the
arguments, the environment and the pyproject bytes, and the startup cache's
key made from them. `_config.resolve()` is the expensive half.
"""

from __future__ import annotations

import os
import sys

from ._target import environment_tag, untrusted_input

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Generic, TypeVar, overload

    from ._errors import ConfigError

    _T = TypeVar("_T")

    class _Generic(Generic[_T]):
        pass

else:

    class _Generic:
        def __class_getitem__(cls, item):  # Setting[float] in annotations, at run time
            return cls


def config_error(message: str) -> ConfigError:
    """A ConfigError. Its module loads only when something is wrong, which a
    warm start never finds (its eleven exception classes cost ~0.4 ms)."""
    from ._errors import ConfigError

    return ConfigError(message)


ENV_PREFIX = "LAZY_IMPORT_HOOK_"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class Kind:
    """How the values of one kind of setting are checked, parsed and cached."""

    expected = "value"

    def check(self, value: object, where: str) -> object:
        """A value given as an argument or in TOML, checked; ConfigError if bad."""
        raise NotImplementedError

    def parse_env(self, text: str, where: str) -> object:
        return self.check(text, where)

    def finish(self, value: object, base: str | None) -> object:
        """Complete a checked value; `base` is the pyproject's folder, if it came from there."""
        return value

    def dump(self, value: object) -> str:
        return str(value)

    def load(self, text: str) -> object:
        raise NotImplementedError


class Flag(Kind):
    expected = "bool"

    def check(self, value: object, where: str) -> object:
        if not isinstance(value, bool):
            raise config_error(f"{where} = {value!r}: expected a bool")
        return value

    def parse_env(self, text: str, where: str) -> object:
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise config_error(f"environment variable {where}={text!r}: use 1 or 0")

    def dump(self, value: object) -> str:
        return "1" if value else "0"

    def load(self, text: str) -> object:
        if text not in ("0", "1"):
            raise ValueError(text)
        return text == "1"


class Seconds(Kind):
    expected = "float"

    def check(self, value: object, where: str) -> object:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise config_error(f"{where} = {value!r}: expected a float")
        if not value > 0 or value == float("inf"):  # also refuses NaN
            raise config_error(f"{where} = {value!r}: must be a positive number of seconds")
        return float(value)

    def parse_env(self, text: str, where: str) -> object:
        try:
            number = float(text)
        except ValueError as e:
            raise config_error(f"{where}={text!r}: not a number") from e
        return self.check(number, where)

    def dump(self, value: object) -> str:
        return repr(value)

    def load(self, text: str) -> object:
        return float(text)


class Text(Kind):
    expected = "non-empty string"

    def check(self, value: object, where: str) -> object:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise config_error(f"{where} = {value!r}: expected a {self.expected}")
        if any(ord(c) < 32 for c in value):
            raise config_error(f"{where} = {value!r}: control characters are not allowed")
        return value

    def load(self, text: str) -> object:
        return text


class Folder(Text):
    """A folder: `~` expanded; relative to the pyproject's folder when read from
    there, else to the current directory."""

    def finish(self, value: object, base: str | None) -> object:
        return folder_path(str(value), base)


class Folders(Kind):
    """Folders, in order: a list in TOML and as an argument, one string of
    `os.pathsep`-separated folders in the environment (empty items skipped).
    Each is `~` expanded, relative to the pyproject's folder when read from there."""

    expected = "list of folders"

    def check(self, value: object, where: str) -> object:
        if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, (list, tuple)):
            raise config_error(f'{where} = {value!r}: expected a list of folders, e.g. ["/opt/layer"]')
        return tuple(_FOLDER.check(item, f"{where} item") for item in value)

    def parse_env(self, text: str, where: str) -> object:
        return self.check([item for item in text.split(os.pathsep) if item], where)

    def finish(self, value: object, base: str | None) -> object:
        assert isinstance(value, tuple)
        return tuple(folder_path(str(item), base) for item in value)

    def dump(self, value: object) -> str:
        assert isinstance(value, tuple)
        return "\n".join(value)  # no folder holds a control character (checked)

    def load(self, text: str) -> object:
        return tuple(text.split("\n")) if text else ()


class Duration(Kind):
    """A length of time written for people: "7 days", "36 hours", "2 weeks"
    (also "P7D"); 0 or "0" turns the setting off. Cached as seconds."""

    expected = 'duration such as "7 days"'
    _UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400), ("week", 604800))

    def check(self, value: object, where: str) -> object:
        if value in (0, "0"):
            return 0.0
        if isinstance(value, str):
            seconds = self._parse(value.strip().lower())
            if seconds is not None:
                return seconds
        example = '"7 days", "36 hours", "2 weeks"'
        raise config_error(f"{where} = {value!r}: expected a duration such as {example}")

    def _parse(self, text: str) -> float | None:
        if text.startswith("p") and text.endswith("d") and text[1:-1].isdigit():
            return float(text[1:-1]) * 86400
        number, _, unit = text.partition(" ")
        factor = dict(self._UNITS).get(unit.strip().rstrip("s"))
        try:
            amount = float(number)
        except ValueError:
            return None
        if not factor or not 0 <= amount * factor <= 100 * 365 * 86400:  # also rejects inf and nan
            return None
        return amount * factor

    def dump(self, value: object) -> str:
        return repr(value)

    def load(self, text: str) -> object:
        return float(text)


class File(Kind):
    """A file: `~` expanded, relative to the pyproject's folder when read from
    there; "" for none."""

    expected = "path"

    def check(self, value: object, where: str) -> object:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or any(ord(c) < 32 for c in value):
            raise config_error(f"{where} = {value!r}: expected a path")
        return value

    def finish(self, value: object, base: str | None) -> object:
        return folder_path(str(value), base) if value else ""

    def load(self, text: str) -> object:
        return text


class Choice(Text):
    def __init__(self, choices: Callable[[], tuple[str, ...]], sources: str) -> None:
        self.choices = choices  # asked only when a value is checked (the slow path)
        self.sources = sources  # where the user can set it, for the error message

    def check(self, value: object, where: str) -> object:
        text = super().check(value, where)
        if text not in self.choices():
            raise config_error(f"{where} {text!r}: use one of {', '.join(self.choices())} ({self.sources})")
        return text

    def parse_env(self, text: str, where: str) -> object:
        return self.check(text.strip().lower(), where)


_FOLDER = Folder()


def installer_choices() -> tuple[str, ...]:
    from ._installers import CHOICES

    return CHOICES


def folder_path(value: str, base: str | None = None) -> str:
    path = os.path.expanduser(value)
    if base is not None and not os.path.isabs(path):
        path = os.path.join(base, path)
    return os.path.abspath(path)


LOCK_NAME = "pylock.lazy-import-hook.toml"


def default_lock(pyproject: str) -> str:
    """Where a lock file is looked for when the `lock` setting names none."""
    return os.path.join(os.path.dirname(pyproject), LOCK_NAME)


def default_target() -> str:
    """Per environment, outside site-packages: `<sys.prefix>/lazy-import-hook-packages`."""
    return os.path.join(sys.prefix, "lazy-import-hook-packages")


class Setting(_Generic["_T"]):
    """One row of the table (see `Settings`)."""

    name = ""  # set by __set_name__: the attribute and install() argument

    def __init__(
        self,
        kind: Kind,
        default: _T | Callable[[], _T],
        doc: str,
        *,
        env: str | None = None,
        kill_switch: bool = False,
        shown_default: str | None = None,
    ) -> None:
        self.kind = kind
        self._default = default
        self.doc = doc
        # How documentation shows a default computed at run time.
        self.shown_default = shown_default
        self.env = ENV_PREFIX + env if env else None
        # A kill switch: any source that turns it off wins (its variable says
        # the opposite: LAZY_IMPORT_HOOK_DISABLE=1 means enabled = false).
        self.kill_switch = kill_switch

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def key(self) -> str:
        """The key in [tool.lazy-import-hook]."""
        return self.name.replace("_", "-")

    def default(self) -> object:
        return self._default() if callable(self._default) else self._default

    def env_value(self) -> object | None:
        """The value the environment gives, or None. An empty variable counts
        only for a flag (it reads as false)."""
        text = os.environ.get(self.env) if self.env else None
        if text is None or self.env is None or (not text and not isinstance(self.kind, Flag)):
            return None
        value = self.kind.parse_env(text, self.env)
        return (not value) if self.kill_switch else value

    if TYPE_CHECKING:

        @overload
        def __get__(self, obj: None, owner: type | None = None) -> Setting[_T]: ...
        @overload
        def __get__(self, obj: object, owner: type | None = None) -> _T: ...
        def __get__(self, obj: object, owner: type | None = None) -> Setting[_T] | _T: ...

    else:

        def __get__(self, obj, owner=None):
            return self if obj is None else obj.__dict__[self.name]


class Settings:
    """The settings table, and one set of resolved values (an instance)."""

    target: Setting[str] = Setting(
        Folder(),
        default_target,
        "the durable folder installs go to",
        env="TARGET",
        shown_default="<sys.prefix>/lazy-import-hook-packages",
    )
    read_only_targets: Setting[tuple[str, ...]] = Setting(
        Folders(),
        (),
        "read-only folders prefetched at build time, served after the core environment and "
        "before the target, never written",
        env="READ_ONLY_TARGETS",
        shown_default="none",
    )
    installer = Setting(
        Choice(installer_choices, "argument, LAZY_IMPORT_HOOK_INSTALLER or pyproject 'installer'"),
        "auto",
        "which installer runs: auto (uv if available, else pip), uv or pip",
        env="INSTALLER",
    )
    enabled = Setting(
        Flag(), True, "whether anything may be installed (a kill switch)", env="DISABLE", kill_switch=True
    )
    timeout = Setting(Seconds(), 900.0, "seconds an installer may run", env="TIMEOUT")
    allow_sdist = Setting(Flag(), False, "allow source archives, whose build code runs at install")
    pth_imports = Setting(Flag(), False, "run the import lines of .pth files in the target")
    verbose = Setting(Flag(), False, "stream the installer's own output to stderr", env="VERBOSE")
    confirm = Setting(Flag(), False, "ask [Y/n] before an install, on a terminal")
    retry_after = Setting(Seconds(), 60.0, "seconds before a failed install is tried again")
    stall_after = Setting(
        Seconds(), 10.0, "seconds of installer silence before a line says what it is doing", env="STALL_AFTER"
    )
    compile_bytecode = Setting(
        Flag(), True, "byte-compile at install, so the first import compiles nothing (as pip does)"
    )
    lock = Setting(
        File(), "", "the lock file (default: pylock.lazy-import-hook.toml beside the pyproject)", env="LOCK"
    )
    wheelhouse = Setting(
        File(), "", "install only from this folder, made by `lazy-import-hook bundle`: no index, the "
        "bundle's lock, hashes required", env="WHEELHOUSE",
    )  # fmt: skip
    min_release_age = Setting(
        Duration(), 0.0, "install nothing published more recently than this (a cooldown)",
        env="MIN_RELEASE_AGE", shown_default='0 (off)',
    )

    def __init__(self, **values: object) -> None:
        for row in self.rows():
            self.__dict__[row.name] = values.pop(row.name) if row.name in values else row.default()
        if values:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(values))}")

    @classmethod
    def rows(cls) -> list[Setting[object]]:
        return [v for v in vars(cls).values() if isinstance(v, Setting)]

    @classmethod
    def row(cls, name: str) -> Setting[object] | None:
        found = vars(cls).get(name)
        return found if isinstance(found, Setting) else None

    def replace(self, **changes: object) -> Settings:
        """A copy with `changes` (checked as install() arguments are)."""
        values = self.values()
        for name, value in changes.items():
            row = self.row(name)
            if row is None:
                raise TypeError(f"unknown setting {name}")
            values[name] = row.kind.finish(row.kind.check(value, f"{name}"), None)
        return Settings(**values)

    def values(self) -> dict[str, object]:
        return {row.name: self.__dict__[row.name] for row in self.rows()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.values() == other.values()

    def __hash__(self) -> int:
        return hash(tuple(self.values().items()))

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self.values().items())})"


def env_names() -> tuple[str, ...]:
    """Every environment variable a setting reads (they are part of the cache key)."""
    return tuple(row.env for row in Settings.rows() if row.env)


# -- the raw inputs of install() -----------------------------------------------
# Read at every start: the arguments, the environment, and the pyproject
# file's bytes (found, read and trusted, not parsed), with the startup cache's
# key and path made from them. The expensive half, `_config.resolve()` (TOML,
# `packaging`), runs only when the key changed.

ENV_CACHE = "LAZY_IMPORT_HOOK_CACHE_DIR"
SECTION = "tool.lazy-import-hook"


def cache_home() -> str:
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lazy-import-hook")


class Raw:
    """The inputs of one `install()` call, before validation."""

    __slots__ = ("allowlist", "arguments", "cache_path", "key", "pyproject", "pyproject_text", "target_hint")

    def __init__(
        self, allowlist: object, arguments: dict[str, object], pyproject: str, pyproject_text: str
    ) -> None:
        self.allowlist = allowlist
        self.arguments = arguments
        self.pyproject = pyproject
        self.pyproject_text = pyproject_text
        env = tuple(os.environ.get(k) for k in env_names())
        # repr() is deterministic for the str/list/dict/bool values configuration
        # holds; anything stranger only costs a cache miss, then a ConfigError.
        items = _sorted_items(allowlist) if isinstance(allowlist, dict) else allowlist
        home = os.path.expanduser("~")  # a "~/..." target follows HOME
        self.key = repr(
            (items, sorted(arguments.items()), env, pyproject, pyproject_text, environment_tag(), home)
        )
        self.target_hint = _target_hint(arguments)
        self.cache_path = _cache_path(self.target_hint, pyproject)


def _sorted_items(allowlist: dict[object, object]) -> list[tuple[object, object]]:
    """By import name; by repr if the names are not all strings (a ConfigError later)."""
    try:
        return sorted(allowlist.items())  # names are unique: values are never compared
    except TypeError:
        return sorted(allowlist.items(), key=repr)


def _target_hint(arguments: Mapping[str, object]) -> str:
    """The target named by an argument or the environment (the pyproject may name another)."""
    target = arguments.get("target") or os.environ.get(str(Settings.target.env))
    return folder_path(os.fspath(target)) if isinstance(target, (str, os.PathLike)) else ""


def _cache_path(target_hint: str, pyproject: str) -> str:
    if target_hint:
        name = "plan-pyproject" if pyproject else "plan"
        return os.path.join(target_hint, ".lazy-import-hook", name)
    # The target may come from the pyproject itself: keep the cache by its path.
    name = "".join(c if c.isalnum() else "_" for c in pyproject or "default")[-180:]
    return os.path.join(cache_home(), f"plan-{name}")


def find_pyproject(start: str | None = None) -> tuple[str, bytes] | None:
    """(path, bytes) of the nearest pyproject.toml above `start` that declares
    a [tool.lazy-import-hook] table and that nobody but us (or root) could
    have written; an untrusted one is skipped with a warning."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        found = _read_declaring(candidate)
        if found is not None:
            why = untrusted_input(candidate, found[1])
            if why is None:
                return candidate, found[0]
            from ._errors import warn  # deferred: a warm start warns of nothing

            warn(f"ignoring {candidate}: {why}")
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _read_declaring(path: str) -> tuple[bytes, os.stat_result] | None:
    """The bytes and stat of `path` if it declares our table (a real table
    header, not a mention in a comment or a string)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
            st = os.fstat(f.fileno())
    except OSError:
        return None
    return (data, st) if declares_table(data) else None


def declares_table(data: bytes) -> bool:
    """Whether the TOML text has a `[tool.lazy-import-hook]` (or sub-) table header."""
    if b"lazy-import-hook" not in data:
        return False
    for line in data.splitlines():
        head = line.strip()
        if head.startswith(b"[") and b"lazy-import-hook" in head:
            compact = head.translate(None, b" \t\"'")
            if compact.startswith(_HEADERS):
                return True
    return False


_HEADERS = (b"[tool.lazy-import-hook]", b"[tool.lazy-import-hook.", b"[[tool.lazy-import-hook.")


def gather(
    allowlist: Mapping[str, object] | None,
    pyproject: str | os.PathLike[str] | None,
    arguments: Mapping[str, object],
) -> Raw:
    """The raw inputs of `install()`: cheap, no validation beyond their shape."""
    given = {k: v for k, v in arguments.items() if v is not None}
    if allowlist is not None and not (hasattr(allowlist, "keys") and hasattr(allowlist, "items")):
        raise config_error(
            f"allowlist must be a mapping of import name to requirement(s), "
            f"got {type(allowlist).__name__}: {allowlist!r:.80}"
        )
    path = text = ""
    if pyproject is not None:
        path = _checked_path(os.path.abspath(os.fspath(pyproject)))
        text = read_pyproject(path)
    elif allowlist is None:
        path, text = _find_or_explain()
    return Raw(dict(allowlist) if allowlist is not None else None, given, path, text)


def read_pyproject(path: str) -> str:
    """An explicitly named pyproject: read, and refused if others could write it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
            st = os.fstat(f.fileno())
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise config_error(f"cannot read pyproject file {path}: {e}") from e
    why = untrusted_input(path, st)
    if why:
        raise config_error(
            f"pyproject file {path}: {why}; it could choose what installs and where. "
            "Make it yours (chown), writable only by you (chmod go-w), in a folder only you can write"
        )
    return text


def _find_or_explain() -> tuple[str, str]:
    found = find_pyproject()
    if found is None:
        raise config_error(
            "no allowlist given and no pyproject.toml with a [tool.lazy-import-hook] table "
            f"(that only you or root can write) found in {os.getcwd()} or above; pass "
            "install(allowlist={...}) or install(pyproject='path/to/pyproject.toml')"
        )
    path, data = found
    try:
        return _checked_path(path), data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise config_error(f"cannot read pyproject file {path}: {e}") from e


def _checked_path(path: str) -> str:
    if any(ord(c) < 32 for c in path):
        raise config_error(f"pyproject path {path!r}: control characters are not allowed")
    return path
