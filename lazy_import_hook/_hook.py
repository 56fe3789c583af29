"""`install()`, `uninstall()` and `child_env()`: the startup path.

Warm start (nothing changed since the last start): read the environment and,
if configured so, the pyproject bytes; read one small cache file; stat the
target; read the ABI stamp; append to sys.path and sys.meta_path. No
`packaging`, `tomllib`, `importlib.metadata`, `subprocess` or `logging` is
imported. Anything else (first start, changed configuration, changed
target) takes the slow path, which validates everything and rewrites the cache.
"""

from __future__ import annotations

import os
import sys

from . import _plan, _settings, _target
from ._finder import LazyFinder, active_finder, after_import, forget
from ._settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

    from ._verify import Verification


# _child.INSIDE_INSTALLER, written again here: a warm start would pay ~0.2 ms
# to import _child for one string (tests/test_architecture.py keeps them equal).
INSIDE_INSTALLER = "LAZY_IMPORT_HOOK_INSIDE_INSTALLER"


def install(
    allowlist: Mapping[str, object] | None = None,
    *,
    pyproject: str | os.PathLike[str] | None = None,
    **settings: object,
) -> LazyFinder:
    """Activate the target and append the lazy-install finder to sys.meta_path.

    `allowlist` maps import names to a requirement, a list of requirements, or
    a table `{"requirement": ..., "hashes": [...], "allow-sdist": bool}`. With
    `allowlist=None` the `[tool.lazy-import-hook]` table of pyproject.toml is
    used (`pyproject=`, else the nearest one above the current directory).
    The other keyword arguments are the settings (see the README's table:
    target, installer, enabled, timeout, ...); None means "not given".
    Settings: arguments > environment > pyproject > defaults; any source that
    disables installs wins. Raises `ConfigError` for bad configuration.
    Calling it again replaces the previous finder. Returns the finder.
    """
    if os.environ.get(INSIDE_INSTALLER):
        return _inert()
    unknown = sorted(name for name in settings if Settings.row(name) is None)
    if unknown:
        raise _unknown_settings(unknown)
    raw = _settings.gather(allowlist, pyproject, settings)
    plan = _warm_plan(raw)
    if plan is None:
        from ._settle import slow_plan

        plan = slow_plan(raw)
    else:
        _say(plan.warnings())
    return _activate(plan, raw.key, raw.cache_path)


def _unknown_settings(unknown: list[str]) -> TypeError:
    """A TypeError, as Python's own for an unknown keyword argument, that
    says which setting was probably meant."""
    from difflib import get_close_matches

    known = [row.name for row in Settings.rows()]
    meant = {name: get_close_matches(name, known, n=1) for name in unknown}
    said = ", ".join(f"{n} (did you mean {m[0]}?)" if m else n for n, m in meant.items())
    return TypeError(f"install() got unknown setting(s) {said}; known: {', '.join(known)}")


def _say(lines: list[str]) -> None:
    if lines:
        from ._errors import warn  # deferred: a start with nothing to say loads no exceptions

        for line in lines:
            warn(line)


def _settings_doc() -> str:
    """The settings table, as install()'s docstring lists it."""
    lines = ["", "    Settings (keyword arguments; environment variable; default):", ""]
    for row in Settings.rows():
        default = row.shown_default or repr(row.default())
        env = f"; {row.env}" if row.env else ""
        lines.append(f"    {row.name}: {row.doc}{env}; default {default}")
    return "\n".join(lines) + "\n"


install.__doc__ = (install.__doc__ or "") + _settings_doc()


def _inert() -> LazyFinder:
    """Inside an installer: a finder that answers for nothing and is not put
    on sys.meta_path, and no target on sys.path."""
    return LazyFinder(_plan.Plan(Settings(enabled=False)), "", "")


def activate(plan: _plan.Plan) -> LazyFinder:
    """Install the hook for a plan validated elsewhere (one recorded in the target)."""
    from ._settle import settle

    settle(plan)
    return _activate(plan, "", "")


def _activate(plan: _plan.Plan, key: str, cache_path: str) -> LazyFinder:
    """The read-only layers, then the target (unless unsafe), each with its
    .pth paths, to the END of sys.path; the finder to the END of
    sys.meta_path, replacing an earlier one."""
    _target.activate(plan.layer_paths())  # after the core environment, before the target
    if not plan.unsafe:
        _target.activate([plan.target, *plan.pth_paths])
        _plan.hold(plan)
    if plan.settings.pth_imports:
        _run_pth_imports(plan)
    finder = LazyFinder(plan, key, cache_path)
    _remove_finders()
    sys.meta_path.append(finder)
    finder.attach()
    _register_abc()
    after_import(SPAWN, _patch_spawn)  # multiprocessing's children get it too
    return finder


SPAWN = "multiprocessing.spawn"


def _patch_spawn(spawn: ModuleType) -> None:
    """Once multiprocessing.spawn is loaded: its future children get the
    hook (`_workers`, which a warm start does not import)."""
    from ._workers import patch

    patch(spawn)


def _run_pth_imports(plan: _plan.Plan) -> None:
    from . import _pth

    folders = [layer.folder for layer in plan.layers] + ([] if plan.unsafe else [plan.target])
    for folder in folders:
        _pth.run_pth_imports(_pth.read_pth(folder, outside=True)[1])


def uninstall() -> None:
    """Remove every lazy-import-hook finder from sys.meta_path. Tolerates absence.

    The target stays on sys.path: modules already imported from it keep working.
    Processes multiprocessing starts from now on get no hook.
    """
    _remove_finders()
    forget(SPAWN)  # a patch already made stays: it adds nothing without a hook


def _remove_finders() -> None:
    for finder in [f for f in sys.meta_path if isinstance(f, LazyFinder)]:
        sys.meta_path.remove(finder)
        finder.detach()


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for subprocesses that gives them the same behaviour:
    the target appended to sys.path (never prepended) and the hook active
    with this process's validated configuration.

        subprocess.run([sys.executable, "worker.py"], env=lazy_import_hook.child_env())

    Works for children running this same environment's Python (they must be
    able to import lazy_import_hook). Raises RuntimeError before install().
    """
    from ._child import with_child_hook

    finder = active_finder()
    if finder is None:
        raise RuntimeError("lazy_import_hook.child_env() needs install() to have run first")
    return with_child_hook(os.environ if env is None else env, _plan.child_text(finder.plan))


def verify(target: str | os.PathLike[str] | None = None) -> Verification:
    """Check every file of every distribution in the target against its
    RECORD (sha256 and size) and list what is modified, missing or unowned:

        result = lazy_import_hook.verify()
        if not result.ok:
            print(result)  # one line per finding

    `target`: the folder to check; None: the target of the installed hook
    (RuntimeError before install()). The result also goes to the target's
    audit log. Raises FileNotFoundError when the folder does not exist.
    See `Verification` for the fields, and the README for what is ignored.
    """
    from ._verify import verify as check

    if target is None:
        finder = active_finder()
        if finder is None or not finder.target:
            raise RuntimeError("lazy_import_hook.verify() needs a target, or install() to have run first")
        target = finder.target
    return check(os.path.abspath(os.fspath(target)))


def install_plan(text: str, *, disabled_by: str = "") -> LazyFinder:
    """The child side of `child_env()` and of multiprocessing's workers (see
    _workers): install the hook from a parent's plan, on the parent's host.
    `disabled_by`: the parent's kill switch, when it was on."""
    plan = _child_plan(text, disabled_by)
    if plan is None:
        return _inert()
    if _target.needs_wipe(plan.target) and not plan.foreign_abi:
        raise ValueError(f"the target {plan.target} was built for another Python")
    return _activate(plan, _plan.CHILD_KEY, "")  # "": a child keeps no cache of its own


def install_on_worker(text: str, *, target: str | None = None) -> LazyFinder:
    """A cluster worker's side (see _dask): install the hook from the client's
    plan on a host that may be another one, into `target` if given. The
    target is checked, created and stamped here, as install() does."""
    plan = _child_plan(text, "")
    if plan is None:
        return _inert()
    if target is not None:
        from ._records import record_id

        plan.settings = plan.settings.replace(target=target)
        plan.record_id = record_id(plan)
    return activate(plan)


def _child_plan(text: str, disabled_by: str) -> _plan.Plan | None:
    """A parent's plan, with this process's kill switch (and the parent's);
    None inside an installer."""
    from ._child import inside_installer

    if inside_installer():
        return None
    loaded = _plan.loads(text, _plan.CHILD_KEY)
    if loaded is None:  # child_env()'s variable, a worker's item, the Dask plugin
        version = _plan.VERSION
        raise ValueError(f"the plan handed over is not one of this lazy-import-hook version ({version})")
    plan = loaded[0]
    row = Settings.enabled
    if row.env_value() is False:  # the kill switch holds in children too
        disabled_by = f"{row.env}={os.environ.get(str(row.env))}"
    if disabled_by:
        plan.settings = plan.settings.replace(enabled=False)
        plan.sources["enabled"] = disabled_by
    return plan


def _warm_plan(raw: _settings.Raw) -> _plan.Plan | None:
    cached = _plan.read_cache(raw.cache_path, raw.key)
    if cached is None:
        return None
    plan, checked_at = cached
    try:
        st = os.stat(plan.target)
    except OSError:
        return None
    unchanged = st.st_mtime_ns == checked_at and _target.stamp_state(plan.target) == _target.OWN
    # The cache names the target asked for; one that was unsafe, or is now
    # (chmod keeps the mtime), or that someone else put on sys.path, is
    # checked afresh.
    same_target = not raw.target_hint or plan.target == raw.target_hint
    safe = not plan.unsafe and not _target.untrusted(st, plan.target)
    ours = all(p not in sys.path or p in _target.ACTIVATED for p in (plan.target, *plan.layer_paths()))
    fresh = _plan.lock_unchanged(plan) and _same_layers(plan)
    return plan if unchanged and same_target and safe and ours and fresh else None


def _same_layers(plan: _plan.Plan) -> bool:
    """The read-only layers are as they were checked: a stat and a small read
    each (nothing to do without layers)."""
    folders = plan.settings.read_only_targets
    return not folders or _plan.layer_stamps(folders) == plan.layer_stamps


def _register_abc() -> None:
    """Make the finder an importlib.abc.MetaPathFinder for isinstance(), when
    importlib.abc is loaded anyway (importing it costs ~30 ms at startup)."""
    abc = sys.modules.get("importlib.abc")
    if abc is not None:
        abc.MetaPathFinder.register(LazyFinder)

