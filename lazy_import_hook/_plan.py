"""The validated configuration (a `Plan` of `Entry`s) and its startup cache.

`install()` runs at every start of the application. Validating the allowlist
needs `packaging` and reading pyproject needs `tomllib` (together ~60 ms), so
the validated result is cached in a small text file of named fields, keyed
by the raw inputs (allowlist, settings, pyproject text, interpreter,
platform), by the target's modification time, and by this package's version.
A cache with a field missing, an extra field, a value that does not parse,
or another version is ignored: the slow path validates everything again.
"""

from __future__ import annotations

import _thread
import os

from ._settings import Settings, default_lock
from ._target import Problem, meta, mtime, read_stamp, read_trusted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

# The package version, written once: pyproject.toml reads it here, and so does
# every start, whose cache it keys (here, so that no module loads for a string).
VERSION = "0.2.0"
HEADER = f"lazy-import-hook plan {VERSION}"


class Entry:
    """One allow-listed import name and what installs it."""

    __slots__ = ("active", "allow_sdist", "dists", "hashes", "import_name", "locked", "pins", "requirements")

    def __init__(
        self,
        import_name: str,
        requirements: Sequence[str],
        *,
        dists: Sequence[str],
        hashes: Sequence[str] = (),
        allow_sdist: bool = False,
        active: bool = True,
        pins: Sequence[tuple[str, str]] = (),
        locked: Sequence[str] = (),
    ) -> None:
        self.import_name = import_name
        self.requirements = tuple(requirements)  # re-serialised by packaging, markers included
        self.dists = tuple(dists)  # canonical distribution names, same order
        self.hashes = tuple(hashes)
        self.allow_sdist = allow_sdist
        self.active = active  # False: every marker is false here; never installs
        # (canonical name, specifier) of the active requirements that have a
        # specifier: other installs honour them as constraints. Parsed once,
        # at validation, so an install needs no `packaging` before it starts.
        self.pins = tuple(pins)
        # The entry's closure from the lock file, one `name==version sha256:HEX
        # wheel-file-name` per file: installed exactly so, hashes required.
        self.locked = tuple(locked)

    def __repr__(self) -> str:
        return f"Entry({self.import_name!r}, {self.requirements!r}, active={self.active})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and _fields(self) == _fields(other)

    def __hash__(self) -> int:
        return hash(tuple(_fields(self).values()))

    @property
    def what(self) -> str:
        """The requirements, as a person reads them."""
        return ", ".join(self.requirements)

    def wanted(self) -> list[tuple[str, str]]:
        """(requirement, distribution) of what the target must hold: the
        requirements, or, for a locked entry, its distributions at exactly
        their locked versions (a new lock moves a range that still matches)."""
        exact = dict(line.split(" ", 1)[0].split("==", 1) for line in self.locked)
        return [(f"{d}=={exact[d]}" if d in exact else r, d) for r, d in zip(self.requirements, self.dists)]


class Layer:
    """A read-only layer in use, and what it held when checked (see
    _allowlist.scan_layers): as a Plan's facts about the target."""

    __slots__ = ("folder", "hidden", "pth_paths", "verified")

    def __init__(
        self,
        folder: str,
        hidden: Iterable[str] = (),
        verified: dict[str, tuple[str, ...]] | None = None,
        pth_paths: Iterable[str] = (),
    ) -> None:
        self.folder = folder
        self.hidden = tuple(hidden)  # import names it holds at a version the pins do not allow
        self.verified = verified or {}  # import name -> the dist-info folders that match its pins
        self.pth_paths = tuple(pth_paths)  # path lines of its .pth files, checked as the target's

    def __repr__(self) -> str:
        return f"Layer({self.folder!r}, hidden={self.hidden!r}, serves={sorted(self.verified)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layer) and _layer_fields(self) == _layer_fields(other)

    def __hash__(self) -> int:
        return hash(self.folder)


def _layer_fields(layer: Layer) -> tuple[object, ...]:
    return layer.folder, layer.hidden, layer.verified, layer.pth_paths


_PARSING = _thread.allocate_lock()


class Plan:
    """Validated settings plus the allowlist, and what the target held when checked."""

    __slots__ = (
        "_active", "_entries", "_entry_lines", "foreign_abi", "hidden", "layer_problems", "layer_stamps",
        "layers", "lock_stamp", "origin", "problem", "pth_paths", "pyproject", "record_id", "settings",
        "sources", "verified",
    )  # fmt: skip

    def __init__(self, settings: Settings, entries: Iterable[Entry] = (), pyproject: str = "") -> None:
        self.settings = settings
        self._entries: dict[str, Entry] | None = {e.import_name: e for e in entries}
        # A cached plan's entry lines, each checked for its shape: their values
        # are parsed on first use of `entries` (a warm start needs only names).
        self._entry_lines: tuple[str, ...] = ()
        self._active: list[str] = []  # their active import names, read at load
        self.pyproject = pyproject  # where the configuration came from, if from a file
        # Derived from the target's contents (see _allowlist.scan):
        self.hidden: tuple[str, ...] = ()  # import names whose installed version is stale
        # import name -> the dist-info folders found to match its pins
        self.verified: dict[str, tuple[str, ...]] = {}
        self.pth_paths: tuple[str, ...] = ()  # path lines of the target's .pth files
        self.problem: Problem | None = None  # why installs into the target are refused
        # Another Python's store that could not be wiped (installs disabled):
        # only what needs no compiled code is served from it.
        self.foreign_abi = False
        # The plan as recorded in the target (see hold() and _records).
        self.record_id = ""
        self.origin = ""  # which application this is, for people reading status
        self.sources: dict[str, str] = {}  # setting -> where its value came from ("LAZY_IMPORT_HOOK_...=1")
        # The lock file the closures came from (see lock_stamp), checked at a warm start.
        self.lock_stamp = ""
        # The read-only layers in use, in order, and why any other was left out
        # (a warning's words); their stat and stamps when checked (see layer_stamps).
        self.layers: tuple[Layer, ...] = ()
        self.layer_problems: tuple[str, ...] = ()
        self.layer_stamps = ""

    @property
    def target(self) -> str:
        return self.settings.target

    @property
    def entries(self) -> dict[str, Entry]:
        """The allowlist's entries by import name."""
        entries = self._entries
        if entries is None:
            with _PARSING:  # threads importing at once share one set of entries
                if self._entries is None:
                    self._entries = {e.import_name: e for e in map(_entry, self._entry_lines)}
                entries = self._entries
        return entries

    def active_names(self) -> list[str]:
        """The import names of the entries that may install here (cheap for a cached plan)."""
        if self._entries is not None:
            return [name for name, entry in self._entries.items() if entry.active]
        return list(self._active)

    def warnings(self) -> list[str]:
        """What a start says of this plan: the layers left out, a target refused."""
        lines = list(self.layer_problems)
        found = self.problem
        if found is not None and found.unsafe:
            lines.append(f"{found.message}; the target is NOT added to sys.path and nothing installs into it")
        elif found is not None and self.settings.enabled:
            still = "packages already there still import, nothing new can be installed"
            lines.append(f"{found.message}; {still}")
        return lines

    def layer_paths(self) -> list[str]:
        """What the layers put on sys.path, in order: each layer, then its .pth paths."""
        return [path for layer in self.layers for path in (layer.folder, *layer.pth_paths)]

    def paths(self) -> list[str]:
        """Every folder the hook puts on sys.path: the layers', then the target's."""
        return [*self.layer_paths(), self.target, *self.pth_paths]

    @property
    def unsafe(self) -> bool:
        return self.problem is not None and self.problem.unsafe


# -- the cache file -------------------------------------------------------------
# One `name<TAB>value` line per field, then an `entries` line naming the
# entry fields and one line per entry with the values in that order: the
# names are checked, so a field added, removed or renamed is never misread.

_ESCAPES = (("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x1f", "\\u"))
_LIST = "\x1f"  # between the items of a list value


def _esc(text: str) -> str:
    """One value on one line: backslash, tab, line ends and the list separator
    escaped (plain str.replace: no codec to import at every start)."""
    text = text.replace("\\", "\\\\")
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


def _unesc(text: str) -> str:
    if "\\" not in text:
        return text
    parts = text.split("\\\\")  # escaped backslashes first: what is left are escapes
    for raw, escaped in _ESCAPES:
        parts = [part.replace(escaped, raw) for part in parts]
    return "\\".join(parts)


def _strs(values: Iterable[str]) -> str:
    return _LIST.join(map(_esc, values))


def _unstrs(text: str) -> tuple[str, ...]:
    if "\\" not in text:  # nothing escaped: the common case, at every warm start
        return tuple(text.split(_LIST)) if text else ()
    return tuple(map(_unesc, text.split(_LIST)))


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def _dump_str(value: object) -> str:
    return _esc(str(value))


def _dump_strs(value: object) -> str:
    assert isinstance(value, tuple)
    return _strs(map(str, value))


def _dump_flag(value: object) -> str:
    return "1" if value else "0"


def _dump_pins(value: object) -> str:
    assert isinstance(value, tuple)
    return _strs(f"{name} {specifier}" for name, specifier in value)  # neither holds a space


def _load_pins(text: str) -> tuple[tuple[str, str], ...]:
    pins = []
    for item in _unstrs(text):
        name, space, specifier = item.partition(" ")
        if not space or " " in specifier:
            raise ValueError(text)
        pins.append((name, specifier))
    return tuple(pins)


_ENTRY_CODECS: dict[str, tuple[Callable[[object], str], Callable[[str], object]]] = {
    "import_name": (_dump_str, _unesc),
    "requirements": (_dump_strs, _unstrs),
    "dists": (_dump_strs, _unstrs),
    "hashes": (_dump_strs, _unstrs),
    "allow_sdist": (_dump_flag, _flag),
    "active": (_dump_flag, _flag),
    "pins": (_dump_pins, _load_pins),
    "locked": (_dump_strs, _unstrs),
}
_ENTRIES_LINE = "entries\t" + "\t".join(_ENTRY_CODECS)
_ENTRY_LOADS = tuple(load for _, load in _ENTRY_CODECS.values())
_NAME, _ACTIVE = (list(_ENTRY_CODECS).index(name) for name in ("import_name", "active"))
# The fields whose loaders can refuse a value (the others take any text), by place.
_REFUSING = tuple(
    (list(_ENTRY_CODECS).index(name), _ENTRY_CODECS[name][1]) for name in ("allow_sdist", "active", "pins")
)


def _fields(entry: Entry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in _ENTRY_CODECS}


def dumps(plan: Plan, key: str, target_mtime: int) -> str:
    problem = plan.problem or Problem("", "")
    fields = {
        "key": _esc(key),
        "target_mtime": str(target_mtime),
        "pyproject": _esc(plan.pyproject),
        "fact.hidden": _strs(plan.hidden),
        "fact.verified": _strs(_verified_items(plan.verified)),
        "fact.pth_paths": _strs(plan.pth_paths),
        "fact.problem_kind": _esc(problem.kind),
        "fact.problem_message": _esc(problem.message),
        "fact.foreign_abi": _dump_flag(plan.foreign_abi),
        "fact.record_id": _esc(plan.record_id),
        "fact.origin": _esc(plan.origin),
        "fact.sources": _strs(f"{name}={why}" for name, why in plan.sources.items()),
        "fact.lock_stamp": _esc(plan.lock_stamp),
        **_dump_layers(plan),
    }
    for row in Settings.rows():
        fields[f"setting.{row.name}"] = _esc(row.kind.dump(getattr(plan.settings, row.name)))
    lines = [HEADER, *(f"{k}\t{v}" for k, v in fields.items()), _ENTRIES_LINE]
    for entry in plan.entries.values():
        values = (dump(getattr(entry, name)) for name, (dump, _) in _ENTRY_CODECS.items())
        lines.append("entry\t" + "\t".join(values))
    return "\n".join(lines) + "\n"


CHILD_KEY = "child"  # the key of a plan handed to a child process


def child_text(plan: Plan) -> str:
    """The plan as a child process receives it (`child_env()`, multiprocessing's workers)."""
    return dumps(plan, CHILD_KEY, mtime(plan.target))


def loads(text: str, key: str) -> tuple[Plan, int] | None:
    """The cached plan and the target mtime it was checked at, if `key` matches
    and every field is there, known and well-formed."""
    head, sep, entry_lines = text.partition("\n" + _ENTRIES_LINE + "\n")
    lines = head.split("\n")
    if not sep or lines[0] != HEADER or (entry_lines and not entry_lines.endswith("\n")):
        return None
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, tab, value = line.partition("\t")
        if not tab or name in fields:
            return None
        fields[name] = value
    try:
        return _from_fields(fields, entry_lines.split("\n")[:-1], key)
    except (ValueError, KeyError, IndexError, UnicodeError):
        return None


def _from_fields(fields: dict[str, str], entry_lines: list[str], key: str) -> tuple[Plan, int] | None:
    rows = Settings.rows()
    expected = {"key", "target_mtime", "pyproject", "fact.hidden", "fact.verified", "fact.pth_paths",
                "fact.problem_kind", "fact.problem_message", "fact.foreign_abi",
                "fact.record_id", "fact.origin", "fact.sources", "fact.lock_stamp", *_LAYER_FIELDS,
                *(f"setting.{row.name}" for row in rows)}  # fmt: skip
    if fields.keys() != expected or _unesc(fields["key"]) != key:
        return None
    values = {row.name: row.kind.load(_unesc(fields[f"setting.{row.name}"])) for row in rows}
    plan = Plan(Settings(**values), (), _unesc(fields["pyproject"]))
    plan._entries, plan._active = None, _checked_entry_lines(entry_lines)
    plan._entry_lines = tuple(entry_lines)
    plan.hidden = _unstrs(fields["fact.hidden"])
    plan.verified = _load_verified(_unstrs(fields["fact.verified"]))
    plan.pth_paths = _unstrs(fields["fact.pth_paths"])
    kind = _unesc(fields["fact.problem_kind"])
    if kind not in ("", Problem.UNSAFE, Problem.READONLY):
        return None
    plan.problem = Problem(kind, _unesc(fields["fact.problem_message"])) if kind else None
    plan.foreign_abi = _flag(fields["fact.foreign_abi"])
    plan.record_id = _unesc(fields["fact.record_id"])
    plan.origin = _unesc(fields["fact.origin"])
    plan.sources = dict(item.partition("=")[::2] for item in _unstrs(fields["fact.sources"]))
    plan.lock_stamp = _unesc(fields["fact.lock_stamp"])
    _load_layers(plan, fields)
    return plan, int(fields["target_mtime"])


# The layers' facts: the folders in use, then "<index> <item>" for what each holds.
_LAYER_FIELDS = (
    "fact.layers", "fact.layer_hidden", "fact.layer_verified", "fact.layer_pth_paths",
    "fact.layer_problems", "fact.layer_stamps",
)  # fmt: skip


def _dump_layers(plan: Plan) -> dict[str, str]:
    def each(items: Callable[[Layer], Iterable[str]]) -> str:
        return _strs(f"{i} {item}" for i, layer in enumerate(plan.layers) for item in items(layer))

    return {
        "fact.layers": _strs(layer.folder for layer in plan.layers),
        "fact.layer_hidden": each(lambda layer: layer.hidden),
        "fact.layer_verified": each(lambda layer: _verified_items(layer.verified)),
        "fact.layer_pth_paths": each(lambda layer: layer.pth_paths),
        "fact.layer_problems": _strs(plan.layer_problems),
        "fact.layer_stamps": _esc(plan.layer_stamps),
    }


def _load_layers(plan: Plan, fields: dict[str, str]) -> None:
    folders = _unstrs(fields["fact.layers"])
    hidden, verified, paths = (
        _by_layer(len(folders), fields[f"fact.layer_{name}"]) for name in ("hidden", "verified", "pth_paths")
    )
    plan.layers = tuple(map(Layer, folders, hidden, map(_load_verified, verified), paths))
    plan.layer_problems = _unstrs(fields["fact.layer_problems"])
    plan.layer_stamps = _unesc(fields["fact.layer_stamps"])


def _by_layer(count: int, text: str) -> list[list[str]]:
    """The "<index> <item>" items of a field, grouped by layer."""
    groups: list[list[str]] = [[] for _ in range(count)]
    for item in _unstrs(text):
        index, space, rest = item.partition(" ")
        if not space or not index.isdigit():
            raise ValueError(item)
        groups[int(index)].append(rest)  # IndexError: no such layer
    return groups


def _verified_items(verified: dict[str, tuple[str, ...]]) -> Iterator[str]:
    return (f"{name}/{info}" for name, infos in verified.items() for info in infos)


def _load_verified(items: Iterable[str]) -> dict[str, tuple[str, ...]]:
    verified: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, slash, info = item.partition("/")  # an import name holds no "/"
        if not slash:
            raise ValueError(item)
        verified[name] = (*verified.get(name, ()), info)
    return verified


def _entry_fields(line: str) -> list[str]:
    """An entry line's fields after its tag; ValueError if it is not one."""
    tag, *raw = line.split("\t")
    if tag != "entry" or len(raw) != len(_ENTRY_LOADS):
        raise ValueError("not an entry line")
    return raw


def _checked_entry_lines(lines: list[str]) -> list[str]:
    """The import names of the active entries, if every entry line has its
    fields and every value reads (ValueError if not); the Entry objects
    are made when first used."""
    active = []
    for fields in map(_entry_fields, lines):
        for place, load in _REFUSING:
            load(fields[place])
        if fields[_ACTIVE] == "1":
            active.append(_unesc(fields[_NAME]))
    return active


def _entry(line: str) -> Entry:
    # Each field's value as its loader returns it (no keyword call, no normalising again).
    entry = Entry.__new__(Entry)
    for name, load, text in zip(_ENTRY_CODECS, _ENTRY_LOADS, _entry_fields(line)):
        setattr(entry, name, load(text))
    return entry


def read_cache(path: str, key: str) -> tuple[Plan, int] | None:
    """The cached plan, if `key` matches and nobody but us (or root) could have
    written the file: its contents decide what goes on sys.path."""
    text = read_trusted(path)
    return None if text is None else loads(text, key)


def write_cache(path: str, plan: Plan, key: str, target_mtime: int) -> None:
    """Best effort: a cache that cannot be written only costs the next start time."""
    from ._files import atomic_write, make_folders

    try:
        make_folders(os.path.dirname(path))
        atomic_write(path, dumps(plan, key, target_mtime))
    except (OSError, ValueError):  # ValueError: a path this file system cannot encode
        pass


def layer_stamps(folders: Iterable[str]) -> str:
    """What the startup cache keeps to see that the read-only layers are
    unchanged: who looks (the safety checks depend on it), then each
    layer's mtime (a package added or removed), mode and owner (a chmod or
    chown keeps the mtime) and ABI stamp. A stat and a small read each."""
    parts = [f"{os.geteuid()}:{os.getegid()}" if hasattr(os, "geteuid") else ""]
    for folder in folders:
        try:
            st = os.stat(folder)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_mtime_ns} {st.st_mode:o} {st.st_uid} {st.st_gid} {read_stamp(folder)}")
    return "|".join(parts)


def lock_stamp(path: str) -> str:
    """What the startup cache keeps of the lock file a plan was made from:
    its path, mtime and size (OSError if it is gone)."""
    st = os.stat(path)
    return f"{path}\t{st.st_mtime_ns}\t{st.st_size}"


def same_lock(stamp: str) -> bool:
    """The lock file `stamp` names is as it was (a stat)."""
    try:
        return lock_stamp(stamp.rsplit("\t", 2)[0]) == stamp
    except OSError:
        return False


def lock_unchanged(plan: Plan) -> bool:
    """The lock file the plan was made from is unchanged, and none appeared
    beside the pyproject since (a stat or two)."""
    if not plan.lock_stamp:
        return not (plan.pyproject and os.path.exists(default_lock(plan.pyproject)))
    return same_lock(plan.lock_stamp)


# -- the plan recorded in the target ------------------------------------------
# <target>/.lazy-import-hook/plans/<id>.plan holds the plan (this file's
# format); every process using it holds a lock on one byte of <id>.live, at
# its pid's offset, for as long as it lives (POSIX record locks: processes of
# one application share the file; the kernel drops a dead process's lock,
# SIGKILL included). See _records for who reads them.

RECORD_KEY = "record"
_HELD: dict[str, tuple[str, int]] = {}  # record id -> (target, its .live file held by this process)


def record_paths(target: str, record_id: str) -> tuple[str, str]:
    folder = meta(target, "plans")
    return os.path.join(folder, f"{record_id}.plan"), os.path.join(folder, f"{record_id}.live")


def held_ids() -> frozenset[str]:
    return frozenset(_HELD)


def hold(plan: Plan) -> None:
    """Mark this process as using `plan`; write the record if it is missing.
    Best effort: a target this process cannot write holds no record."""
    if not plan.record_id or plan.record_id in _HELD or plan.unsafe or not hasattr(os, "lockf"):
        return
    _release(plan.target)  # this process's earlier plan for the target no longer applies
    record, live = record_paths(plan.target, plan.record_id)
    try:
        if not os.path.exists(record):
            write_record(plan)
        fd = os.open(live, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError:
        return
    try:
        _lock_own_byte(fd)
    except OSError:
        os.close(fd)
        return
    _HELD[plan.record_id] = (plan.target, fd)


def _release(target: str) -> None:
    for rid, (held_target, fd) in list(_HELD.items()):
        if held_target == target:
            del _HELD[rid]
            os.close(fd)  # drops this process's lock on it


def write_record(plan: Plan) -> None:
    from ._files import atomic_write, make_folders

    record, _ = record_paths(plan.target, plan.record_id)
    make_folders(os.path.dirname(record))
    atomic_write(record, dumps(plan, RECORD_KEY, 0))


def _lock_own_byte(fd: int) -> None:
    os.lseek(fd, os.getpid(), os.SEEK_SET)
    os.lockf(fd, os.F_TLOCK, 1)


def _relock_in_child() -> None:
    """A forked child uses the plan too (POSIX locks are not inherited)."""
    for _, fd in _HELD.values():
        try:
            _lock_own_byte(fd)
        except OSError:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_relock_in_child)
