"""Allowlist validation: unit cases, and property tests on the loader and the
command builder (hypothesis)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

import lazy_import_hook
from lazy_import_hook import ConfigError
from lazy_import_hook._allowlist import parse_allowlist
from lazy_import_hook._installer import InstallRequest
from lazy_import_hook._pip import Pip
from lazy_import_hook._uv import Uv

GOOD = {
    "isodate": "isodate==0.7.2",
    "yaml": "PyYAML==6.0.2",
    "telegram": ["python-telegram-bot[webhooks]==22.8"],
    "google.cloud.storage": "google-cloud-storage>=3,<4",
    "uvloop": "uvloop==0.21.0; sys_platform != 'win32'",
}


def test_good_entries_are_re_serialised_by_packaging() -> None:
    entries = {e.import_name: e for e in parse_allowlist(GOOD)}
    assert entries["yaml"].requirements == ("PyYAML==6.0.2",)
    assert entries["yaml"].dists == ("pyyaml",)
    assert entries["google.cloud.storage"].requirements == ("google-cloud-storage<4,>=3",)
    assert entries["uvloop"].requirements == ('uvloop==0.21.0; sys_platform != "win32"',)
    assert all(e.active for e in entries.values()) == (sys.platform != "win32")


@pytest.mark.parametrize(
    ("allowlist", "fragment"),
    [
        ({"isodate": "isodate @ https://example.org/isodate.whl"}, "direct URL"),
        ({"isodate": "./isodate"}, "not a valid requirement"),
        ({"isodate": "/abs/path/isodate.whl"}, "not a valid requirement"),
        ({"isodate": "--index-url=https://evil.example"}, "installer option"),
        ({"isodate": "-e git+https://x/y"}, "installer option"),
        ({"isodate": "isodate==0.7.2 && rm -rf /"}, "forbidden character"),
        ({"isodate": "isodate==0.7.2\n--extra-index-url x"}, "forbidden character"),
        ({"isodate": "isodate$(id)"}, "forbidden character"),
        ({"isodate": "git+https://github.com/x/y"}, "not a valid requirement"),
        ({"isodate": ""}, "empty requirement"),
        ({"isodate": "evil-1.0-py3-none-any.whl"}, "archive file name"),
        ({"isodate": "x.tar.gz"}, "archive file name"),
        ({"isodate": "foo===1.zip"}, "archive file name"),
        ({"isodate": 3}, "must be a string"),
        ({"isodate": []}, "no requirement given"),
        ({"iso-date": "isodate==0.7.2"}, "not an importable module name"),
        ({"class": "isodate==0.7.2"}, "not an importable module name"),
        ({"a..b": "isodate==0.7.2"}, "not an importable module name"),
        ({"": "isodate==0.7.2"}, "non-empty string"),
        ({"x": ["isodate==0.7.2", "isodate==0.7.1"]}, "named twice"),
        ({"a": "isodate==0.7.2", "b": "isodate==0.7.1"}, "different versions"),
        ({"x": {"requirement": "isodate>=0.7", "hashes": ["sha256:" + "a" * 64]}}, "pinned"),
        ({"x": {"requirement": "isodate==0.7.2", "hashes": ["md5:abc"]}}, "is not 'sha256:'"),
        ({"x": {"requirement": "isodate==0.7.2", "hash": []}}, "unknown key"),
        ({"x": "isodate==0.7.2; nonsense_marker == '1'"}, "not a valid requirement"),
    ],
)
def test_bad_entries_are_a_config_error_naming_the_entry(
    allowlist: dict[str, object], fragment: str, target: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        lazy_import_hook.install(allowlist, target=target)
    assert fragment in str(info.value)
    assert repr(next(iter(allowlist))) in str(info.value) or "entries" in str(info.value)


def test_the_same_requirement_for_two_import_names_is_fine() -> None:
    entries = parse_allowlist({"yaml": "PyYAML==6.0.2", "_yaml": "PyYAML==6.0.2"})
    assert [e.dists for e in entries] == [("pyyaml",), ("pyyaml",)]


def test_a_bad_allowlist_touches_nothing_already_installed(target: Path) -> None:
    (target / "isodate").mkdir(parents=True)
    (target / "isodate" / "__init__.py").write_text("")
    with pytest.raises(ConfigError):
        lazy_import_hook.install({"isodate": "isodate @ file:///x"}, target=target)
    assert (target / "isodate" / "__init__.py").exists()


# -- property tests -------------------------------------------------------------

NASTY = st.sampled_from(
    ["-", "--", "--index-url", "@", ";", "\n", "\x00", "/", "\\", "$", "`", "|", "&",
     "file://", "https://", "git+", "é", "💥", " ", "==", "[", "]", ">", "'", '"', ".", "*"]
)  # fmt: skip
TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(NASTY, st.from_regex(r"[A-Za-z0-9._-]{1,8}", fullmatch=True)), max_size=6).map(
        "".join
    ),
    st.sampled_from(["isodate==0.7.2", "PyYAML==6.0.2", "a[b]>=1; python_version>'3'"]),
)
VALUE: st.SearchStrategy[Any] = st.recursive(
    st.one_of(TEXT, st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["requirement", "requirements", "hashes", "allow-sdist", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=6,
)
ALLOWLIST = st.dictionaries(st.one_of(TEXT, st.integers()), VALUE, max_size=4)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(allowlist=ALLOWLIST)
def test_any_allowlist_is_either_a_config_error_or_safe_commands(allowlist: dict[Any, Any]) -> None:
    try:
        entries = parse_allowlist(allowlist)
    except ConfigError:
        return
    for entry in entries:
        for installer in (Pip(sys.executable), Uv("/bin/uv")):
            cmd = installer.command(
                InstallRequest("/t", entry.requirements, constraints="/c.txt")
            )
            assert cmd.count("--") == 1
            derived = cmd[cmd.index("--") + 1 :]  # everything taken from configuration
            assert derived == list(entry.requirements)
            for arg in derived:
                req = Requirement(arg)  # a valid requirement...
                assert str(req) == arg  # ...exactly as packaging writes it
                assert req.url is None
                assert not arg.startswith("-")
                assert not any(c in arg for c in "\n\r\x00`$|&\\")


@settings(max_examples=300)
@given(allowlist=ALLOWLIST)
def test_install_raises_nothing_but_config_error(allowlist: dict[Any, Any]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            lazy_import_hook.install(allowlist, target=tmp)
        except ConfigError:
            pass
        finally:
            lazy_import_hook.uninstall()
