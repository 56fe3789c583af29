"""Verify: every file of every distribution in the target against its RECORD,
and every file no RECORD lists."""

from __future__ import annotations

import io
import os
from pathlib import Path

from lazy_import_hook import _files, _target

# -- the one RECORD reader -------------------------------------------------------


def rows(text: str) -> list[tuple[str, str, str]]:
    return list(_files.record_rows(io.StringIO(text, newline="")))


def test_record_rows_give_path_hash_and_size_with_empty_fields_kept() -> None:
    assert rows(
        "pkg/__init__.py,sha256=abc,12\n"
        "pkg/__pycache__/__init__.cpython-311.pyc,,\n"
        "pkg-1.0.dist-info/RECORD,,\n"
        "short.py\n"
        "\n"
    ) == [
        ("pkg/__init__.py", "sha256=abc", "12"),
        (os.path.join("pkg", "__pycache__", "__init__.cpython-311.pyc"), "", ""),
        (os.path.join("pkg-1.0.dist-info", "RECORD"), "", ""),
        ("short.py", "", ""),
    ]


def test_record_rows_put_what_pip_writes_outside_its_lib_folder_where_it_lands() -> None:
    # pip --target installs into a temporary home (lib/python, bin, share,
    # include) and moves it all into the target; uv writes the same files as bin/x.
    assert [r[0] for r in rows(
        "../../bin/tool,sha256=a,1\n"
        "../../share/doc/x.txt,sha256=b,2\n"
        "../../include/site/python3.11/d/h.h,sha256=c,3\n"
        "../../lib/python/moved.py,sha256=d,4\n"
        "bin/uvtool,sha256=e,5\n"
    )] == [os.path.join(*p.split("/")) for p in (
        "bin/tool", "share/doc/x.txt", "include/site/python3.11/d/h.h", "moved.py", "bin/uvtool",
    )]  # fmt: skip


def test_record_rows_leave_out_what_is_not_in_the_target() -> None:
    assert rows(
        "/usr/bin/absolute,sha256=a,1\n"
        "../sibling.py,sha256=b,2\n"
        "../../../far.py,sha256=c,3\n"
        "../..,,\n"
        "..,,\n"
        ".,,\n"
        "./pkg/../kept.py,sha256=d,4\n"
    ) == [("kept.py", "sha256=d", "4")]


def test_record_rows_read_csv_quoting() -> None:
    assert rows('"odd, name.py",sha256=a,1\n"with ""quotes"".txt",,\n') == [
        ("odd, name.py", "sha256=a", "1"),
        ('with "quotes".txt', "", ""),
    ]


def test_record_paths_uses_the_same_reader(tmp_path: Path) -> None:
    info = tmp_path / "d-1.0.dist-info"
    info.mkdir()
    assert _files.record_paths(str(tmp_path), info.name) == []  # no RECORD
    (info / "RECORD").write_text("d.py,sha256=a,1\n../../bin/d,,\n/abs,,\n", encoding="utf-8")
    assert _files.record_paths(str(tmp_path), info.name) == ["d.py", os.path.join("bin", "d")]


def test_data_files_pip_wrote_belong_to_their_distribution(tmp_path: Path) -> None:
    """An ABI wipe takes them, as it takes scripts: nobody else owns them."""
    info = tmp_path / "d-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("d.py,,\n../../share/d/x.txt,,\n", encoding="utf-8")
    for rel in ("d.py", "share/d/x.txt", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert _target.foreign_entries(str(tmp_path)) == ["notes.txt"]

