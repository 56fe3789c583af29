"""The suite's own import-state isolation (conftest.import_state_restored):
a test's toy modules never reach the next test, and the modules that stay
loaded keep working, lazy imports (PEP 810, Python 3.15) included."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

from conftest import import_state_restored


def write(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


def test_modules_from_an_owned_folder_are_forgotten_and_others_kept(tmp_path: Path) -> None:
    owned = write(
        tmp_path / "owned",
        {
            "iso_toy/__init__.py": "X = 1\n",
            "iso_toy/sub.py": "Y = 2\n",
            "iso_ns/part.py": "Z = 3\n",  # namespace packages, one inside the other
            "iso_ns/inner/part.py": "Z = 4\n",
            "iso_lib_ext/ext.py": "EXT = True\n",
        },
    )
    lib = write(tmp_path / "lib", {"iso_lib/__init__.py": "LIB = True\n"})
    sys.path.append(str(lib))
    import iso_lib  # type: ignore[import-not-found]

    path_before = list(sys.path)
    with import_state_restored([owned]):
        sys.path.append(str(owned))
        # A submodule from an owned folder under a package that stays loaded.
        iso_lib.__path__.append(str(owned / "iso_lib_ext"))
        for name in ("iso_toy.sub", "iso_ns.part", "iso_ns.inner.part", "iso_lib.ext"):
            importlib.import_module(name)
        assert iso_lib.ext.EXT
    forgotten = ["iso_toy", "iso_toy.sub", "iso_ns", "iso_ns.part", "iso_ns.inner", "iso_ns.inner.part"]
    for name in [*forgotten, "iso_lib.ext"]:
        assert name not in sys.modules, name
    assert sys.modules["iso_lib"] is iso_lib and not hasattr(iso_lib, "ext")
    assert sys.path == path_before


def test_a_lazily_imported_module_stays_loaded_for_the_code_that_refers_to_it(
    tmp_path: Path,
) -> None:
    # packaging 26 on 3.15 in miniature: requirements.py lazily imports both
    # the parser and the tokenizer's error class; the tokenizer raises its own
    # class. If the isolation forgets the tokenizer after a test that parsed
    # successfully, the next failing parse raises the first copy's class and
    # the lazy name resolves to a second copy: the except clause misses.
    lib = write(
        tmp_path / "lib",
        {
            "iso_lazy/__init__.py": "",
            "iso_lazy/api.py": """
                __lazy_modules__ = {"iso_lazy._impl", "iso_lazy._errors"}
                from iso_lazy._impl import parse
                from iso_lazy._errors import Boom

                def check(text):
                    try:
                        return parse(text)
                    except Boom:
                        return "caught"
            """,
            "iso_lazy/_impl.py": """
                __lazy_modules__ = {"iso_lazy._errors"}
                from iso_lazy._errors import Reader

                def parse(text):
                    Reader(text)
                    return "parsed"
            """,
            "iso_lazy/_errors.py": """
                class Boom(Exception):
                    pass

                class Reader:
                    def __init__(self, text):
                        if text == "bad":
                            raise Boom(text)
            """,
        },
    )
    sys.path.append(str(lib))
    from iso_lazy import api  # type: ignore[import-not-found]

    if sys.version_info >= (3, 15):
        assert "iso_lazy._errors" not in sys.modules  # lazy indeed: nothing loaded yet
    owned = [tmp_path / "owned"]
    with import_state_restored(owned):
        assert api.check("good") == "parsed"  # loads _impl and _errors, lazily on 3.15
    with import_state_restored(owned):
        assert api.check("bad") == "caught"


def test_a_toy_module_imported_by_one_test(tmp_path: Path) -> None:
    write(tmp_path, {"iso_probe/__init__.py": "SEEN = True\n"})
    sys.path.append(str(tmp_path))
    import iso_probe  # type: ignore[import-not-found]

    assert iso_probe.SEEN


def test_is_gone_for_the_next(tmp_path: Path) -> None:
    # Runs after the test above (pytest keeps the file's order).
    assert "iso_probe" not in sys.modules
    assert not any(p.startswith(str(tmp_path.parent)) for p in sys.path)
