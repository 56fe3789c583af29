"""Verify: every file of every distribution in the target against its RECORD,
and every file no RECORD lists."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path

import pytest

import lazy_import_hook
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



# -- in-process: the cases installers do not make ---------------------------------


def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_dist(folder: Path, name: str, files: dict[str, bytes], extra_rows: str = "") -> None:
    """A distribution as an installer leaves it, RECORD with hashes and sizes."""
    info = f"{name}-1.0.dist-info"
    files = {**files, f"{info}/METADATA": f"Name: {name}\nVersion: 1.0\n".encode()}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    record = "".join(f"{rel},{digest(data)},{len(data)}\n" for rel, data in files.items())
    (folder / info / "RECORD").write_text(record + f"{info}/RECORD,,\n" + extra_rows)


def test_verify_needs_a_target_or_an_installed_hook(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"verify\(\) needs a target, or install\(\)"):
        lazy_import_hook.verify()
    with pytest.raises(FileNotFoundError):
        lazy_import_hook.verify(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # no audit line creates it
    assert "verify" in lazy_import_hook.__all__ and "Verification" in lazy_import_hook.__all__
    result = lazy_import_hook.verify(tmp_path)
    assert isinstance(result, lazy_import_hook.Verification) and result.ok and result.distributions == 0


def test_verify_uses_the_target_of_the_installed_hook(target: Path) -> None:
    write_dist(target, "d", {"d.py": b"X = 1\n"})
    lazy_import_hook.install({"d": "d==1.0"}, target=target)
    (target / "d.py").write_bytes(b"X = 2\n")
    result = lazy_import_hook.verify()
    assert result.target == str(target) and result.modified == (("d.py", "hash"),)
    assert not result.ok and result.modified[0].reason == "hash"
    assert str(result).splitlines() == [
        f"{target}: 1 distributions, 3 files: 1 modified, 0 missing, 0 unowned",
        "  modified  d.py (content differs, same size)",
    ]


def test_links_are_never_followed_and_never_pass(tmp_path: Path) -> None:
    target, outside = tmp_path / "t", tmp_path / "outside"
    write_dist(target, "d", {"pkg/__init__.py": b"", "pkg/a.py": b"A = 1\n", "b.py": b"B = 1\n"})
    outside.mkdir()
    (outside / "a.py").write_bytes(b"A = 1\n")
    os.mkfifo(outside / "__init__.py")  # reading it would block: it must never be opened
    os.rename(target / "pkg", tmp_path / "pkg-aside")
    (target / "pkg").symlink_to(outside)  # a linked folder: nothing below it is read
    (target / "b.py").unlink()
    (target / "b.py").symlink_to(outside / "a.py")
    (target / "link-to-etc").symlink_to("/etc")
    os.mkfifo(target / "fifo")
    result = lazy_import_hook.verify(target)
    assert result.modified == (
        ("b.py", "symlink"),
        (os.path.join("pkg", "__init__.py"), "symlink"),
        (os.path.join("pkg", "a.py"), "symlink"),
    )
    assert result.unowned == ("fifo", "link-to-etc") and result.missing == ()


def test_other_distributions_records_and_odd_entries(tmp_path: Path) -> None:
    write_dist(tmp_path, "a", {"shared/__init__.py": b"# a\n", "a.py": b""})
    write_dist(tmp_path, "b", {"shared/__init__.py": b"# b\n", "b.py": b""})  # both list it: either matches
    (tmp_path / "shared" / "__init__.py").write_bytes(b"# a\n")
    ours = ".python-abi,sha256=x,1\n.lazy-import-hook.lock,,\n"
    write_dist(tmp_path, "c", {"c.py": b"C\n"}, extra_rows=ours)
    (tmp_path / ".python-abi").write_text("whatever\n")  # a RECORD's word never makes it a finding
    write_dist(tmp_path, "norecord", {"n.py": b""})
    (tmp_path / "norecord-1.0.dist-info" / "RECORD").unlink()
    write_dist(tmp_path, "odd", {"o.py": b"O\n"}, extra_rows="o.py,md5=abc,2\n")
    (tmp_path / "empty-planted").mkdir()
    (tmp_path / "c.py").unlink()
    (tmp_path / "c.py").mkdir()
    result = lazy_import_hook.verify(tmp_path)
    assert result.distributions == 5
    assert result.modified == (("c.py", "not a file"), ("o.py", "bad RECORD row"))
    assert result.missing == (os.path.join("norecord-1.0.dist-info", "RECORD"),)
    assert result.unowned == (
        "empty-planted" + os.sep, "n.py", os.path.join("norecord-1.0.dist-info", "METADATA"),
    )  # fmt: skip


def test_compiled_files_of_listed_sources_are_expected_and_others_are_not(tmp_path: Path) -> None:
    write_dist(tmp_path, "d", {"pkg/__init__.py": b"", "top.py": b""})
    for rel in ("pkg/__pycache__/__init__.cpython-311.pyc", "pkg/__pycache__/__init__.cpython-311.opt-1.pyc",
                "__pycache__/top.cpython-39.pyc", "pkg/__pycache__/gone.cpython-311.pyc",
                "pkg/__pycache__/notes.txt"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert lazy_import_hook.verify(tmp_path).unowned == tuple(
        os.path.join("pkg", "__pycache__", n) for n in ("gone.cpython-311.pyc", "notes.txt")
    )


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads everything")
def test_what_cannot_be_read_is_a_finding(tmp_path: Path) -> None:
    write_dist(tmp_path, "d", {"pkg/a.py": b"A\n", "b.py": b"B\n"})
    (tmp_path / "b.py").chmod(0)
    (tmp_path / "pkg").chmod(0)
    try:
        result = lazy_import_hook.verify(tmp_path)
    finally:
        (tmp_path / "pkg").chmod(0o755)
        (tmp_path / "b.py").chmod(0o644)
    assert result.modified == (("b.py", "unreadable"), (os.path.join("pkg", "a.py"), "unreadable"))
    assert result.unowned == () and result.missing == ()
