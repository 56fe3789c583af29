"""pip's effective configuration, read as pip reads it, without importing pip.

One index configuration serves both installers: what the operator set for
pip (`PIP_*` variables and every pip.conf pip itself reads) also reaches uv,
which reads none of it. Only the keys that say where packages come from and
how to reach them are read; everything else pip could be told by its files
or variables (a `--target`, `--user`, `--root`, a platform...) is named so
that it can be reported, and never reaches the installer.

Files, lowest priority first (pip's `configuration.py`): `<d>/pip/pip.conf`
for each `<d>` in XDG_CONFIG_DIRS (default /etc/xdg; later entries win),
/etc/pip.conf, ~/.pip/pip.conf and ~/.config/pip/pip.conf (skipped when
PIP_CONFIG_FILE names an existing file), <sys.prefix>/pip.conf, then
PIP_CONFIG_FILE; PIP_CONFIG_FILE=os.devnull reads none. Sections: [global],
then [install] (the command's section beats [global] whatever the file),
then PIP_* variables. Empty values are skipped.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# The keys that say where packages come from and how to reach them, and the
# harmless ones that only tune how pip talks: carried to both installers.
INDEX_KEYS = ("index-url", "extra-index-url", "find-links", "no-index")
TRUST_KEYS = ("cert", "client-cert", "trusted-host", "keyring-provider", "proxy")
NETWORK_KEYS = ("timeout", "retries", "cache-dir", "no-cache-dir")
CONSTRAINT_KEYS = ("constraint",)
CARRIED = (*INDEX_KEYS, *TRUST_KEYS, *NETWORK_KEYS, *CONSTRAINT_KEYS)
LISTS = ("extra-index-url", "find-links", "trusted-host", "constraint")
PATHS = ("find-links", "cert", "client-cert", "constraint", "cache-dir")
ALIASES = {"pypi-url": "index-url", "default-timeout": "timeout"}
# Keys of no consequence for where or what gets installed: not worth a report.
QUIET = ("disable-pip-version-check", "no-input", "no-color", "progress-bar", "quiet", "verbose",
         "no-warn-script-location", "root-user-action", "log", "log-file", "version", "help",
         "python-version-warning", "no-python-version-warning")  # fmt: skip
FLAGS = ("no-index",)  # the yes/no settings read here
_TRUE = ("y", "yes", "t", "true", "on", "1")
_FALSE = ("n", "no", "f", "false", "off", "0")


class Value:
    """One effective setting and where it came from."""

    __slots__ = ("raw", "source")

    def __init__(self, raw: str, source: str) -> None:
        self.raw = raw
        self.source = source  # "PIP_INDEX_URL", "/etc/pip.conf [global]", ...


class PipConfig:
    """The effective `pip install` settings: `values` (CARRIED keys) and
    `others` (every other key set, which the hook does not pass on).
    `sealed`: the wheelhouse setting decided the source; no other index
    setting, pip's or an installer's own, may add to it."""

    def __init__(self, values: dict[str, Value], others: dict[str, Value], *, sealed: bool = False) -> None:
        self.values = values
        self.others = others
        self.sealed = sealed

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        return value.raw if value is not None else None

    def items(self, key: str) -> list[str]:
        """A list setting's entries (pip splits on any whitespace)."""
        raw = self.get(key)
        return raw.split() if raw else []

    def flag(self, key: str) -> bool:
        raw = (self.get(key) or "").strip().lower()
        if raw and raw not in _TRUE + _FALSE:
            raise ValueError(f"pip would refuse {key}={raw!r}")
        return raw in _TRUE

    def source(self, key: str) -> str:
        value = self.values.get(key)
        return value.source if value is not None else ""

    def describe(self) -> str:
        """The effective index, as people read it: which, and who said so
        (credentials hidden)."""
        if self.flag("no-index"):
            where = f"no index ({self.source('no-index')})"
        elif self.get("index-url"):
            where = f"{self.get('index-url')} ({self.source('index-url')})"
        else:
            where = "https://pypi.org/simple (the default)"
        extra = self.items("extra-index-url")
        if extra and not self.flag("no-index"):
            where += f", also {' '.join(extra)} ({self.source('extra-index-url')})"
        links = self.items("find-links")
        if links:
            where += f", find-links {' '.join(links)} ({self.source('find-links')})"
        return redacted(where)


def redacted(text: str) -> str:
    """`text` with the credentials of every URL in it hidden, as pip shows an
    index: `user:****@host` for a user and a password, `****@host` for a lone
    token; and the values of a query (`?token=****`), which pip would show.
    For what is shown or written (the audit log is readable by all): the
    installers get the real URLs."""
    pieces = _url_pieces(text)
    for i, piece in enumerate(pieces[1:], 1):
        end = next((k for k, c in enumerate(piece) if c.isspace()), len(piece))
        pieces[i] = _hidden(piece[:end], _scheme(pieces[i - 1])) + piece[end:]
    return "://".join(pieces)


def _hidden(url: str, scheme: str) -> str:
    """`url` (what follows its scheme) with its credentials and query values
    hidden. The credentials end at the last @, since a password or token may
    hold a raw @, / or ? (pip would misread such a URL; what is shown must
    still hide it); an @ in a path hides what comes before it too, and one
    after a ? or # (an e-mail address in a query) all that follows it as well:
    the safe side. A file URL's path (file:///srv/wheels@2024) has none."""
    at = -1 if scheme in ("file", "git+file") and url.startswith("/") else url.rfind("@")
    shown = ""
    if at >= 0:
        user, colon, _ = url[:at].partition(":")
        named = colon and not any(c in user for c in "@/?#")  # else no user: all of it is hidden
        shown = f"{user}:****@" if named else "****@"
        if any(c in url[:at] for c in "?#"):
            return shown + "****"
        url = url[at + 1 :]
    address, mark, query = url.partition("?")
    query, hash_mark, fragment = query.partition("#")
    pairs = [pair.partition("=") for pair in query.split("&")]
    query = "&".join(f"{name}=****" if eq else "****" if name else "" for name, eq, _ in pairs)
    fragment = "****" if mark and fragment else fragment  # a raw # in a query's value
    return shown + address + mark + query + hash_mark + fragment


def _url_pieces(text: str) -> list[str]:
    """`text` split at each "://" that starts a URL: one whose scheme follows
    something that is no URL's (the start, a space, `,`, `;`, `=`, a quote).
    A scheme-like word right after another "://" (`https://alice://00@h`, a
    password `//00`) is part of that URL, and so is hidden with it."""
    pieces = text.split("://")
    merged = pieces[:2]
    for piece in pieces[2:]:
        if _scheme_start(merged[-1]) > 0:
            merged.append(piece)
        else:
            merged[-1] += "://" + piece
    return merged


def _scheme_start(before: str) -> int:
    """Where the scheme-like word at the end of `before` starts."""
    k = len(before)
    while k > 0 and (before[k - 1].isalnum() or before[k - 1] in "+-."):
        k -= 1
    return k


def _scheme(before: str) -> str:
    return before[_scheme_start(before) :].lower()


def find_links(pip: PipConfig, env: Mapping[str, str] | None = None) -> list[str]:
    """Every find-links location an install would see: pip's, and uv's own
    (unless the wheelhouse sealed the source)."""
    env = os.environ if env is None else env
    own = [] if pip.sealed else env.get("UV_FIND_LINKS", "").replace(",", " ").split()
    return list(dict.fromkeys(pip.items("find-links") + own))


def sealed(wheelhouse: str, operator: PipConfig) -> PipConfig:
    """Only the wheelhouse folder, no index: the operator's index settings
    are set aside (and reported), how pip talks (timeouts, cache) is kept."""
    source = f"wheelhouse setting {wheelhouse}"
    values = {"no-index": Value("yes", source), "find-links": Value(wheelhouse, source)}
    values.update({k: v for k, v in operator.values.items() if k in NETWORK_KEYS})
    aside = {k: v for k, v in operator.values.items() if k in INDEX_KEYS}
    return PipConfig(values, {**operator.others, **aside}, sealed=True)


def config_files(env: Mapping[str, str], prefix: str = sys.prefix) -> list[str]:
    """The files pip would read, lowest priority first (POSIX)."""
    named = env.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    dirs = [d for d in env.get("XDG_CONFIG_DIRS", "").split(os.pathsep) if os.path.isabs(d)]
    files = [os.path.join(d, "pip", "pip.conf") for d in dirs or ["/etc/xdg"]]
    files.append("/etc/pip.conf")
    if not (named and os.path.exists(named)):
        home = os.path.expanduser("~")
        xdg_home = env.get("XDG_CONFIG_HOME", "")
        user_dir = xdg_home if os.path.isabs(xdg_home) else os.path.join(home, ".config")
        files += [os.path.join(home, ".pip", "pip.conf"), os.path.join(user_dir, "pip", "pip.conf")]
    files.append(os.path.join(prefix, "pip.conf"))
    if named:
        files.append(named)
    return files


def read(env: Mapping[str, str] | None = None, cwd: str | None = None, command: str = "install") -> PipConfig:
    """pip's effective configuration for `command`; relative paths made
    absolute against `cwd` (where the application runs: the installer runs
    elsewhere), `~` expanded. Raises ValueError for a file pip would refuse."""
    env = os.environ if env is None else env
    layers = _file_layers(config_files(env), command)
    layers.append({_key(name[4:]): Value(raw, name) for name, raw in env.items() if _pip_variable(name)})
    values: dict[str, Value] = {}
    for layer in layers:  # [global] < [command] < PIP_*, a later non-empty value wins
        for key, value in layer.items():
            if value.raw.strip():
                values[ALIASES.get(key, key)] = value
    _check_flags(values)
    carried = {k: _absolute(k, v, cwd or os.getcwd()) for k, v in values.items() if k in CARRIED}
    others = {k: v for k, v in values.items() if k not in CARRIED and k not in QUIET}
    return PipConfig(carried, others)


def _check_flags(values: dict[str, Value]) -> None:
    """A yes/no setting pip itself would refuse to read, named where it is set
    (read here, not where it is used: that would be an internal error)."""
    for key in FLAGS:
        value = values.get(key)
        if value is not None and value.raw.strip().lower() not in _TRUE + _FALSE:
            raise ValueError(
                f"{value.source} sets {key} to {value.raw!r}, which pip refuses: "
                "use 1 or 0 (true/false, yes/no, on/off)"
            )


def _file_layers(files: list[str], command: str) -> list[dict[str, Value]]:
    """[global] then [command] values, each merged over the files (later wins)."""
    sections: dict[str, dict[str, Value]] = {"global": {}, command: {}}
    for path in files:
        if not os.path.isfile(path):
            continue
        _check_trusted(path)
        import configparser  # only for a file that is there: an install waits for it

        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as e:
            raise ValueError(redacted(f"pip configuration file {path} cannot be read: {e}")) from e
        for section, found in sections.items():
            if parser.has_section(section):
                for key, raw in parser.items(section):
                    found[_key(key)] = Value(raw, f"{path} [{section}]")
    return [sections["global"], sections[command]]


def _check_trusted(path: str) -> None:
    """pip takes orders from the file whoever could write it; the hook takes
    none (see _target.untrusted_input): ValueError instead, which names it.
    (Reached, say, by sudo -E with another user's HOME or XDG_CONFIG_DIRS.)"""
    from ._target import untrusted_input

    why = untrusted_input(path)
    if not why:
        return
    owner = os.stat(path).st_uid
    if owner not in (os.geteuid(), 0):  # whose file it is stays theirs
        fix = ("is this another user's HOME or XDG_CONFIG_* (sudo -E)? Use sudo -H, or set "
               "PIP_CONFIG_FILE to a file of yours")  # fmt: skip
    else:
        fix = "make it writable only by you (chmod go-w), in a folder only you can write, or remove it"
    raise ValueError(f"pip configuration file {path}: {why}; pip would take its index from it: {fix}")


def _pip_variable(name: str) -> bool:
    return name.startswith("PIP_") and name not in ("PIP_CONFIG_FILE", "PIP_VERSION", "PIP_HELP")


def _key(name: str) -> str:
    name = name.lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


def _absolute(key: str, value: Value, cwd: str) -> Value:
    """Paths as pip would resolve them from the application's directory."""
    if key not in PATHS:
        return value
    raw = value.raw.split() if key in LISTS else [value.raw.strip()]
    items = [i if "://" in i else os.path.abspath(os.path.join(cwd, os.path.expanduser(i))) for i in raw]
    return Value(" ".join(items), value.source)
