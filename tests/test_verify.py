"""Verify: every file of every distribution in the target against its RECORD,
and every file no RECORD lists."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _offline import installer_env
from test_real_installers import INSTALLERS, audit_lines, hook

import lazy_import_hook
from conftest import Runner
from lazy_import_hook import _distributions, _files

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
    (info / "RECORD").write_text(f"d.py,,\n{'x' * 200_000},,\ne.py,,\n", encoding="utf-8")  # over csv's limit
    assert _files.record_paths(str(tmp_path), info.name) == ["d.py"]


def test_data_files_pip_wrote_belong_to_their_distribution(tmp_path: Path) -> None:
    """An ABI wipe takes them, as it takes scripts: nobody else owns them."""
    info = tmp_path / "d-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("d.py,,\n../../share/d/x.txt,,\n", encoding="utf-8")
    for rel in ("d.py", "share/d/x.txt", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert _distributions.foreign_entries(str(tmp_path)) == ["notes.txt"]



# -- real pip and uv installs -----------------------------------------------------

ALLOWLIST = {"toymod": "toy-dist==1.0", "toolmod": "tool-dist==1.0"}
# The child installs, then verifies the target of the hook it installed.
VERIFY = "import toymod, toolmod\nprint(json.dumps(lazy_import_hook.verify()._asdict()))\n"


def cli(target: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lazy_import_hook", "--target", str(target), "status", "--verify", *args],
        env=env, cwd=target.parent, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip


def verified(target: Path, env: dict[str, str], run_python: Runner) -> dict[str, object]:
    code = f"import json, lazy_import_hook as h\nprint(json.dumps(h.verify({str(target)!r})._asdict()))"
    return dict(json.loads(run_python(code, env).stdout))


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_target_as_the_installer_left_it_verifies_ok(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    found = json.loads(run_python(hook(target, installer, ALLOWLIST) + VERIFY, env).stdout)
    # What the check covered: compiled bytecode (on by default), a console
    # script in bin/, the hook's own files beside them.
    assert list((target / "toymod" / "__pycache__").glob("*.pyc")) and (target / "bin" / "toolcmd").is_file()
    assert (target / ".python-abi").exists() and (target / ".lazy-import-hook").is_dir()
    assert found["target"] == str(target) and found["distributions"] == 3  # toy-dist, toy-dep, tool-dist
    assert (found["modified"], found["missing"], found["unowned"]) == ([], [], [])
    proc = cli(target, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"verify:     3 distributions, {found['files']} files: ok" in proc.stdout
    report = json.loads(cli(target, env, "--json").stdout)
    assert report["verify"]["ok"] is True and report["verify"]["distributions"] == 3
    lines = [e for e in audit_lines(target) if e.get("event") == "verify"]
    assert len(lines) == 3 and all(e["status"] == 0 and e["distributions"] == 3 for e in lines)
    assert "recent installs and verifications:" in proc.stdout


def tamper(target: Path, outside: Path) -> None:
    """Each kind of finding, once or twice."""
    init = target / "toymod" / "__init__.py"
    init.write_text(init.read_text().replace("'1.0'", "'6.6'"))  # same size, other content
    with open(target / "toymod" / "extra.py", "a") as f:
        f.write("import os\n")  # size changed
    (target / "toydep" / "__init__.py").unlink()
    (target / "evil.py").write_text("print('planted')\n")
    (target / "sitecustomize.py").write_text("print('planted')\n")
    (target / "__pycache__").mkdir(exist_ok=True)
    (target / "__pycache__" / "evil.cpython-311.pyc").write_bytes(b"planted")
    (target / "toymod" / "planted.py").write_text("X = 1\n")
    (target / "evilpkg" / "sub").mkdir(parents=True)
    (target / "evilpkg" / "__init__.py").write_text("")
    (target / "evilpkg" / "sub" / "x.py").write_text("")
    # The same bytes, through a link: still a change (what it points to is
    # not the target's, and can change at any time).
    tool = target / "bin" / "toolcmd"
    outside.write_bytes(tool.read_bytes())
    tool.unlink()
    tool.symlink_to(outside)
    # The hook's own files, uv's lock, an empty folder no import can name
    # (uv makes a wheel's empty PyYAML.libs/, which no RECORD lists): never findings.
    (target / ".lock").write_text("")
    (target / "Toy.libs").mkdir()
    (target / ".lazy-import-hook" / "anything.txt").write_text("")


EXPECTED = {
    "modified": [
        {"path": "bin/toolcmd", "reason": "symlink"},
        {"path": "toymod/__init__.py", "reason": "hash"},
        {"path": "toymod/extra.py", "reason": "size"},
    ],
    "missing": ["toydep/__init__.py"],
    "unowned": [
        "__pycache__/evil.cpython-311.pyc", "evil.py", "evilpkg/", "sitecustomize.py", "toymod/planted.py",
    ],
}


@pytest.mark.parametrize("installer", INSTALLERS)
def test_modified_missing_and_unowned_files_are_reported(
    installer: str, wheelhouse: Path, target: Path, tmp_path: Path, run_python: Runner
) -> None:
    env = installer_env(wheelhouse, tmp_path)
    run_python(hook(target, installer, ALLOWLIST) + "import toymod, toolmod\n", env)
    tamper(target, tmp_path / "outside-toolcmd")
    found = verified(target, env, run_python)
    assert [{"path": p, "reason": r} for p, r in found["modified"]] == EXPECTED["modified"]  # type: ignore[attr-defined]
    assert (found["missing"], found["unowned"]) == (EXPECTED["missing"], EXPECTED["unowned"])

    proc = cli(target, env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verify:     3 distributions" in proc.stdout
    assert ": 3 modified, 1 missing, 5 unowned" in proc.stdout
    for line in ("modified  toymod/__init__.py (content differs, same size)", "modified  toymod/extra.py "
                 "(size differs)", "modified  bin/toolcmd (a symbolic link)", "missing   toydep/__init__.py",
                 "unowned   evilpkg/", "unowned   sitecustomize.py"):  # fmt: skip
        assert f"\n  {line}\n" in proc.stdout
    as_json = cli(target, env, "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)["verify"]
    assert {k: report[k] for k in EXPECTED} == EXPECTED and report["ok"] is False
    assert report["counts"] == {"modified": 3, "missing": 1, "unowned": 5}

    last = audit_lines(target)[-1]
    assert last["event"] == "verify" and last["status"] == "findings" and last["distributions"] == 3
    assert {k: last[k] for k in EXPECTED} == EXPECTED
    assert "verify: 3 distributions" in cli(target, env).stdout  # status shows the audit line


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
    (tmp_path / "emptyplanted").mkdir()  # imports as a namespace package
    (tmp_path / "Empty.libs").mkdir()  # no import can name it: nothing to report
    (tmp_path / "c.py").unlink()
    (tmp_path / "c.py").mkdir()
    result = lazy_import_hook.verify(tmp_path)
    assert result.distributions == 5
    assert result.modified == (("c.py", "not a file"), ("o.py", "bad RECORD row"))
    assert result.missing == (os.path.join("norecord-1.0.dist-info", "RECORD"),)
    assert result.unowned == (
        "emptyplanted" + os.sep, "n.py", os.path.join("norecord-1.0.dist-info", "METADATA"),
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


def test_a_compiled_file_a_wheel_ships_may_be_rewritten(tmp_path: Path) -> None:
    """numpy 2.2 ships numpy/distutils/__pycache__/conv_template.cpython-311.pyc
    with its hash; pip's and uv's compile step rewrite it, and pip lists it a
    second time, with no hash. Its place is checked, not its bytes; a
    compiled file without a listed source is checked as any file."""
    pyc, lone = "m/__pycache__/t.cpython-311.pyc", "m/__pycache__/lone.cpython-311.pyc"
    files = {"m/__init__.py": b"", "m/t.py": b"T = 1\n", pyc: b"as built", lone: b"as built"}
    write_dist(tmp_path, "d", files, extra_rows=f"{pyc},,\n")
    (tmp_path / pyc).write_bytes(b"as compiled at install")
    (tmp_path / lone).write_bytes(b"as planted")
    result = lazy_import_hook.verify(tmp_path)
    assert result.modified == ((os.path.join(*lone.split("/")), "size"),)
    (tmp_path / pyc).unlink()
    assert lazy_import_hook.verify(tmp_path).missing == (os.path.join(*pyc.split("/")),)


def test_a_row_without_hash_asks_only_for_the_file_to_be_there(tmp_path: Path) -> None:
    write_dist(tmp_path, "a", {"shared.txt": b"a"})
    write_dist(tmp_path, "b", {}, extra_rows="shared.txt,,\n")
    (tmp_path / "shared.txt").write_bytes(b"rewritten")
    assert lazy_import_hook.verify(tmp_path).ok


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
