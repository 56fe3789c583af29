"""Read-only layers, unit tier: which folder serves an entry, what is
refused and why, the startup cache, status. Real installers and a
read-only mount: test_layers_real.py."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from _fakes import PIP, installs, write_dist

import lazy_import_hook
from lazy_import_hook import ConfigError, LazyInstallError, _config, _settings, _target
from lazy_import_hook._plan import Layer, Plan, dumps, loads
from lazy_import_hook._settings import Settings

TOY_1 = {"toymod/__init__.py": "VERSION = '1.0'\n", "toymod/extra.py": "WHERE = 'layer'\n"}
TOY_2 = {"toymod/__init__.py": "VERSION = '2.0'\n", "toymod/extra.py": "WHERE = 'target'\n"}
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a folder to another user needs root"
)


@pytest.fixture(autouse=True)
def no_bytecode_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real layer is a read-only mount; these are writable folders (and root
    # ignores modes), where the interpreter, not the hook, would write
    # __pycache__ and make "the layer is untouched" fail.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


def make_layer(folder: Path, *dists: tuple[str, str, dict[str, str]]) -> Path:
    """A layer as `prefetch` leaves it: the distributions, stamped for this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    for dist, version, files in dists or [("toy-dist", "1.0", TOY_1)]:
        write_dist(str(folder), dist, version, files)
    _target.write_stamp(str(folder))
    os.chmod(folder, 0o755)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under `folder`: mode, size, mtime."""
    found = {}
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        found[str(path.relative_to(folder))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def install_quietly(allowlist: Mapping[str, object], **settings: Any) -> list[str]:
    """install(), returning the lazy-import-hook warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lazy_import_hook.install(allowlist, **settings)
    return [str(w.message) for w in caught if "lazy-import-hook" in str(w.message)]


def forget(name: str) -> None:
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


# -- serving ------------------------------------------------------------------


def test_a_layer_serves_after_the_core_environment_and_before_the_target(fp: Any, tmp_path: Path) -> None:
    layer, target = make_layer(tmp_path / "layer"), tmp_path / "target"
    before = snapshot(layer)
    assert install_quietly({"toymod": "toy-dist==1.0"}, target=target, read_only_targets=[layer]) == []
    import toymod
    import toymod.extra

    assert Path(toymod.__file__).parent == layer / "toymod" and toymod.extra.WHERE == "layer"
    assert sys.path[-2:] == [str(layer), str(target)]
    assert fp.call_count([*PIP, fp.any()]) == 0  # never installed again
    assert snapshot(layer) == before


def test_a_stale_copy_in_a_layer_is_hidden_and_the_target_serves_the_pin(fp: Any, tmp_path: Path) -> None:
    layer, target = make_layer(tmp_path / "layer"), tmp_path / "target"
    before = snapshot(layer)
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "2.0", TOY_2))
    finder = lazy_import_hook.install(
        {"toymod": "toy-dist==2.0"}, target=target, read_only_targets=[layer], installer="pip"
    )
    assert finder.guards[0].hidden == {"toymod"}
    import toymod
    import toymod.extra

    assert (toymod.VERSION, toymod.extra.WHERE) == ("2.0", "target")
    assert Path(toymod.__file__).parent == target / "toymod"
    sys.path_importer_cache.clear()  # the layer's copy stays hidden, however the finders are made again
    spec = importlib.util.find_spec("toymod")
    assert spec is not None and spec.origin == str(target / "toymod" / "__init__.py")
    assert fp.call_count([*PIP, fp.any()]) == 1
    assert snapshot(layer) == before


def test_the_first_layer_that_holds_the_pin_serves_it(fp: Any, tmp_path: Path) -> None:
    stale = make_layer(tmp_path / "stale")
    fresh = make_layer(tmp_path / "fresh", ("toy-dist", "2.0", TOY_2))
    lazy_import_hook.install({"toymod": "toy-dist==2.0"}, target=tmp_path / "t",
                             read_only_targets=[stale, fresh])  # fmt: skip
    import toymod

    assert Path(toymod.__file__).parent == fresh / "toymod"
    assert fp.call_count([*PIP, fp.any()]) == 0


def test_with_installs_disabled_the_error_names_the_stale_copy_in_the_layer(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "layer")
    lazy_import_hook.install(
        {"toymod": "toy-dist==2.0"}, target=tmp_path / "t", read_only_targets=[layer], enabled=False
    )
    with pytest.raises(LazyInstallError) as caught:
        import toymod  # noqa: F401
    assert caught.value.reason == "disabled"
    assert f"the read-only layer {layer} holds toy-dist 1.0, which does not match" in str(caught.value)


def test_a_layer_that_is_the_target_is_the_target(tmp_path: Path) -> None:
    target = tmp_path / "layer-being-built"
    finder = lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=target, read_only_targets=[target])
    assert finder.plan.layers == () and len(finder.guards) == 1


def test_a_layers_pth_files_are_checked_as_the_targets(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    pth = {
        "inside/insidemod.py": "X = 1\n",
        "layer.pth": f"inside\n{outside}\nimport builtins; builtins.LAYER_PTH_RAN = True\n",
    }
    layer = make_layer(tmp_path / "layer", ("pth-dist", "1.0", pth))
    import builtins

    seen = install_quietly({"insidemod": "pth-dist==1.0"}, target=tmp_path / "t", read_only_targets=[layer])
    assert sys.path[-3:] == [str(layer), str(layer / "inside"), str(tmp_path / "t")]
    assert str(outside) not in sys.path and not hasattr(builtins, "LAYER_PTH_RAN")
    assert any(f"{outside} is outside {layer}" in w and f"read-only layer {layer}" in w for w in seen)
    try:
        install_quietly({"insidemod": "pth-dist==1.0"}, target=tmp_path / "t2", read_only_targets=[layer],
                        pth_imports=True)  # fmt: skip
        assert str(outside) in sys.path and builtins.LAYER_PTH_RAN  # type: ignore[attr-defined]
    finally:
        vars(builtins).pop("LAYER_PTH_RAN", None)


# -- refused layers -------------------------------------------------------------


def _world_writable(layer: Path) -> str:
    os.chmod(layer, 0o777)
    return "writable by every user"


def _group_writable(layer: Path) -> str:
    os.chown(layer, -1, os.getegid() + 4242)
    os.chmod(layer, 0o775)
    return f"writable by group {os.getegid() + 4242}"


def _foreign_owner(layer: Path) -> str:
    os.chown(layer, 4242, -1)
    return "owned by another user (uid 4242)"


@pytest.mark.parametrize(
    "make_unsafe",
    [_world_writable, *(pytest.param(make, marks=as_root) for make in (_group_writable, _foreign_owner))],
)
def test_an_unsafe_layer_is_refused_with_a_warning_and_kept_off_sys_path(
    make_unsafe: Any, fp: Any, tmp_path: Path
) -> None:
    layer = make_layer(tmp_path / "layer")
    why = make_unsafe(layer)
    before = snapshot(layer)
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY_2))
    seen = install_quietly({"toymod": "toy-dist==1.0"}, target=tmp_path / "t", read_only_targets=[layer],
                           installer="pip")  # fmt: skip
    (warning,) = seen
    assert f"the read-only layer {layer} is not used: {layer} is {why}" in warning
    assert f"chown -R root: {layer}; chmod -R go-w {layer}" in warning
    assert str(layer) not in sys.path
    import toymod

    assert Path(toymod.__file__).parent == tmp_path / "t" / "toymod"  # installed, as without the layer
    assert snapshot(layer) == before


@pytest.mark.parametrize(
    ("stamp", "why"),
    [
        ("cpython-27-linux-x86_64-64bit\n", "built for another Python (cpython-27-linux-x86_64-64bit)"),
        (None, "it has no ABI stamp (.python-abi)"),
        ("cpyth", "its ABI stamp is damaged ('cpyth')"),
    ],
)
def test_a_layer_not_stamped_for_this_python_is_ignored_and_never_wiped(
    stamp: str | None, why: str, tmp_path: Path
) -> None:
    layer = make_layer(tmp_path / "layer")
    if stamp is None:
        (layer / ".python-abi").unlink()
    else:
        (layer / ".python-abi").write_text(stamp)
    before = snapshot(layer)
    (warning,) = install_quietly(
        {"toymod": "toy-dist==1.0"}, target=tmp_path / "t", read_only_targets=[layer], enabled=False
    )
    assert f"the read-only layer {layer} is not used: " in warning and why in warning
    assert f"LAZY_IMPORT_HOOK_TARGET={layer} lazy-import-hook prefetch" in warning
    assert str(layer) not in sys.path
    with pytest.raises(LazyInstallError, match=f"the read-only layer {layer} is not used"):
        import toymod  # noqa: F401
    assert snapshot(layer) == before


def test_a_layer_this_user_cannot_read_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = make_layer(tmp_path / "layer")
    real = os.access  # as for a user other than root, who may read anything
    monkeypatch.setattr(os, "access", lambda path, mode: real(path, mode) and Path(path) != layer)
    (warning,) = install_quietly({"toymod": "toy-dist==1.0"}, target=tmp_path / "t",
                                 read_only_targets=[layer])  # fmt: skip
    assert f"the read-only layer {layer} is not used: this user cannot read it" in warning
    assert f"chmod -R a+rX {layer}" in warning


def test_a_missing_layer_is_a_warning_and_installs_go_to_the_target(fp: Any, tmp_path: Path) -> None:
    missing = tmp_path / "not-built"
    fp.register([*PIP, fp.any()], callback=installs("toy-dist", "1.0", TOY_1))
    (warning,) = install_quietly({"toymod": "toy-dist==1.0"}, target=tmp_path / "t",
                                 read_only_targets=[missing], installer="pip")  # fmt: skip
    assert f"the read-only layer {missing} is not used: it does not exist; build it at image build" in warning
    import toymod

    assert Path(toymod.__file__).parent == tmp_path / "t" / "toymod"
    assert not missing.exists()


def test_a_layer_already_on_sys_path_is_refused(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "layer")
    sys.path.insert(0, str(layer))
    (warning,) = install_quietly({"toymod": "toy-dist==1.0"}, target=tmp_path / "t",
                                 read_only_targets=[layer])  # fmt: skip
    assert "is already on sys.path" in warning and "would not stay behind the core environment" in warning


def test_a_refused_layer_is_named_again_at_a_warm_start(tmp_path: Path) -> None:
    missing = tmp_path / "not-built"
    for _ in range(2):
        seen = install_quietly({"toymod": "toy-dist==1.0"}, target=tmp_path / "t",
                               read_only_targets=[missing])  # fmt: skip
        assert ["is not used: it does not exist" in w for w in seen] == [True]


# -- configuration --------------------------------------------------------------


def test_layers_come_from_the_environment_and_the_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_layer(tmp_path / "a"), make_layer(tmp_path / "b")
    monkeypatch.setenv("LAZY_IMPORT_HOOK_READ_ONLY_TARGETS", f"{a}{os.pathsep}{os.pathsep}{b}")
    finder = lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=tmp_path / "t")
    assert finder.plan.settings.read_only_targets == (str(a), str(b))
    assert [layer.folder for layer in finder.plan.layers] == [str(a), str(b)]
    monkeypatch.delenv("LAZY_IMPORT_HOOK_READ_ONLY_TARGETS")
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text(
        '[tool.lazy-import-hook]\ntarget = "t"\nread-only-targets = ["../a", "~/b"]\n'
        '[tool.lazy-import-hook.allowlist]\ntoymod = "toy-dist==1.0"\n'
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    plan = lazy_import_hook.install(pyproject=app / "pyproject.toml").plan
    assert plan.settings.read_only_targets == (str(a), str(b))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/opt/layer", r"= '/opt/layer': expected a list of folders, e.g. \[\"/opt/layer\"\]"),
        ([""], r"item = '': expected a non-empty string"),
        (["/opt/a\n"], "control characters are not allowed"),
        (["/opt/a", "/opt/a/"], "the read-only layer /opt/a is named twice"),
        (["/opt/a", "/opt/a/b"], "the read-only layer /opt/a/b lies inside the read-only layer /opt/a"),
        (["/srv"], "the target /srv/t lies inside the read-only layer /srv"),
        (["/srv/t/sub"], "the read-only layer /srv/t/sub lies inside the target /srv/t"),
    ],
)
def test_bad_read_only_targets_are_a_config_error(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target="/srv/t", read_only_targets=value)


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZY_IMPORT_HOOK_READ_ONLY_TARGETS", "/opt/a:/opt/a/b")
    with pytest.raises(ConfigError, match=r"read-only-targets \(LAZY_IMPORT_HOOK_READ_ONLY_TARGETS=/opt/a:"):
        lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target="/srv/t")


# -- the startup cache ----------------------------------------------------------


def test_the_plan_cache_keeps_the_layers() -> None:
    plan = Plan(Settings(read_only_targets=("/a", "/b c")))
    infos = ("x-1.dist-info", "y-2.dist-info")
    plan.layers = (Layer("/a", ["x"], {}, ["/a/p"]), Layer("/b c", [], {"x": infos}))
    plan.layer_problems, plan.layer_stamps = ("the read-only layer /z is not used: why",), "0:0|1 755 0 0 tag"
    loaded = loads(dumps(plan, "k", 5), "k")
    assert loaded is not None
    again = loaded[0]
    assert (again.layers, again.layer_problems, again.layer_stamps) == (
        plan.layers, plan.layer_problems, plan.layer_stamps,
    )  # fmt: skip
    assert again.settings.read_only_targets == ("/a", "/b c")
    broken = dumps(plan, "k", 5).replace("fact.layer_hidden\t0 x", "fact.layer_hidden\t7 x")
    assert loads(broken, "k") is None  # a layer that is not there: ignored, never misread


def test_a_changed_layer_invalidates_the_warm_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = _config.resolve
    def counting(raw: _settings.Raw, **kw: bool) -> Plan:
        calls.append(raw)
        return real(raw, **kw)

    monkeypatch.setattr(_config, "resolve", counting)
    layer, missing = make_layer(tmp_path / "layer"), tmp_path / "later"

    def start() -> Plan:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folders = [layer, missing]
            return lazy_import_hook.install({"toymod": "toy-dist==1.0"}, target=tmp_path / "t",
                                            read_only_targets=folders).plan  # fmt: skip

    start()
    assert [p.folder for p in start().layers] == [str(layer)] and len(calls) == 1  # warm
    changes: list[Callable[[], object]] = [
        lambda: os.chmod(layer, 0o777),  # a chmod keeps the mtime
        lambda: os.chmod(layer, 0o755),
        lambda: write_dist(str(layer), "other-dist", "1.0", {"othermod.py": ""}),  # a package added
        lambda: (layer / ".python-abi").write_text("cpython-27-linux-x86_64-64bit\n"),  # in place
        lambda: _target.write_stamp(str(layer)),
        lambda: make_layer(missing),  # a missing layer appeared
    ]
    for n, change in enumerate(changes, start=2):
        change()
        plan = start()
        assert len(calls) == n, f"change {n - 1} was not noticed"
        start()
        assert len(calls) == n  # and warm again
    assert [p.folder for p in plan.layers] == [str(layer), str(missing)]


# -- status, constraints, errors ------------------------------------------------


def test_status_names_what_serves_each_entry(fp: Any, tmp_path: Path) -> None:
    from lazy_import_hook._cli import main

    other = ("other-dist", "1.0", {"othermod.py": ""})
    layer = make_layer(tmp_path / "layer", ("toy-dist", "1.0", TOY_1), other)
    target, missing = tmp_path / "t", tmp_path / "missing"
    fp.register([*PIP, fp.any()], callback=installs("other-dist", "2.0", {"othermod.py": ""}))
    allowlist = {"toymod": "toy-dist==1.0", "othermod": "other-dist==2.0", "nowhere": "nowhere-dist==1.0"}
    install_quietly(allowlist, target=target, read_only_targets=[layer, missing], installer="pip")
    import othermod  # noqa: F401  (installed into the target: the layer's 1.0 is stale)

    report = json.loads(_output(main, ["--target", str(target), "status", "--json"]))
    served = {e["import_name"]: (e["state"], e["served_by"]) for e in report["entries"]}
    assert served == {
        "toymod": ("installed", str(layer)),
        "othermod": ("installed", str(target)),
        "nowhere": ("missing", None),
    }
    layers = {item["folder"]: item for item in report["read_only_layers"]}
    assert layers[str(layer)]["serves"] == ["toymod"] and layers[str(layer)]["hides"] == ["othermod"]
    assert "it does not exist" in layers[str(missing)]["problem"]
    text = _output(main, ["--target", str(target), "status"])
    assert f"read-only:  {layer} (serves toymod; hides the stale othermod)" in text
    assert f"read-only:  {missing} (NOT USED: it does not exist" in text
    assert f"toy-dist 1.0) [served by the read-only layer {layer}]" in text
    assert f"other-dist 1.0 in the read-only layer {layer} (hidden)) [served by the target]" in text


def _output(main: Any, args: list[str]) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


def test_an_install_keeps_what_a_layer_holds_but_not_the_entries_own(tmp_path: Path) -> None:
    from lazy_import_hook import _environment

    layer = make_layer(tmp_path / "layer", ("toy-dist", "1.0", TOY_1), ("toy-dep", "1.0", {"toydep.py": ""}))
    allowlist = {"toymod": "toy-dist==2.0", "othermod": "other-dist==1.0"}
    finder = lazy_import_hook.install(allowlist, target=tmp_path / "t", read_only_targets=[layer])
    path = tmp_path / "constraints.txt"
    kept = _environment.write_constraints(finder.plan, [finder.plan.entries["toymod"]], str(path))
    lines = path.read_text().split()
    assert "toy-dep==1.0" in kept and "toy-dep==1.0" in lines  # the layer's copy is what imports
    assert not [line for line in lines if line.startswith("toy-dist")]  # the pin decides, the copy is hidden
    assert "other-dist==1.0" in lines


def test_a_conflict_with_a_layer_names_the_layer_and_what_to_do() -> None:
    from lazy_import_hook._installer import Failure, failure_error

    output = "The user requested (constraint) toy-dep==1.0 and toy-dist 3.0 depends on toy-dep>=2.0"
    failure = Failure(
        "toymod", "installing toy-dist==3.0", ["toy-dist"], code=1, output=output, command="c",
        only_binary=True, core=["toy-dep==1.0"], layers={"toy-dep==1.0": "/opt/l"},
    )  # fmt: skip
    message = str(failure_error(failure, 60))
    assert "toy-dep 1.0 is in the read-only layer /opt/l, which every install keeps" in message
    assert "rebuild the layer with the new pins" in message and "application's environment" not in message
