"""The watcher's pure parts: reconcile planning, move detection by hash, event coalescing, scan
rules, placeholders and the watch budget."""

from __future__ import annotations

import hashlib
import os
import types
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from backend.osdeps.placeholders import is_placeholder, is_temporary
from backend.osdeps.watch_limits import UNLIMITED, default_watch_budget
from backend.watch.coalesce import Pending, collapse_dirs
from backend.watch.reconcile import Indexed, match_moves, plan
from backend.watch.scan import FileInfo, Rules, count_dirs, stat_candidate, walk

paths = st.sampled_from([f"/r/{c}" for c in "abcdefghij"])
infos = st.builds(FileInfo, size=st.integers(0, 3), mtime_ns=st.integers(0, 3))
contents = st.sampled_from(["x", "y", "z"])


@given(
    indexed=st.dictionaries(paths, st.tuples(infos, contents)),
    scanned=st.dictionaries(paths, st.tuples(infos, contents)),
)
def test_plan_and_moves_cover_every_difference_exactly_once(
    indexed: dict[str, tuple[FileInfo, str]], scanned: dict[str, tuple[FileInfo, str]]
) -> None:
    rows = {p: Indexed(f"doc:{p}", i.size, i.mtime_ns, c) for p, (i, c) in indexed.items()}
    disk = {p: i for p, (i, _) in scanned.items()}
    hashed: list[str] = []

    def sha(path: str) -> str:
        hashed.append(path)
        return scanned[path][1]

    result = match_moves(plan(rows, disk), rows, {p: i.size for p, i in disk.items()}, sha)
    new_paths = set(disk) - set(rows)
    gone = {rows[p].doc_id for p in set(rows) - set(disk)}
    moved_to = {dest for _, dest in result.moves}
    moved_ids = {doc for doc, _ in result.moves}
    assert set(result.add) | moved_to == new_paths and not set(result.add) & moved_to
    assert set(result.removed) | moved_ids == gone and not set(result.removed) & moved_ids
    assert len(moved_ids) == len(result.moves) == len(moved_to)
    for doc_id, dest in result.moves:  # a move keeps identical bytes
        src = doc_id.removeprefix("doc:")
        assert indexed[src][1] == scanned[dest][1] and indexed[src][0].size == disk[dest].size
    changed = {
        rows[p].doc_id
        for p in set(rows) & set(disk)
        if (rows[p].size, rows[p].mtime_ns) != (disk[p].size, disk[p].mtime_ns)
    }
    assert set(result.changed) == changed
    assert set(hashed) <= new_paths, "only new files are hashed, never the whole folder"


def test_a_renamed_file_is_a_move_not_a_delete_and_add() -> None:
    rows = {"/r/old.txt": Indexed("d1", 5, 100, hashlib.sha256(b"hello").hexdigest())}
    result = plan(rows, {"/r/new.txt": FileInfo(5, 100)})
    assert result.add == ["/r/new.txt"] and result.removed == ["d1"]
    moved = match_moves(result, rows, {"/r/new.txt": 5}, lambda p: hashlib.sha256(b"hello").hexdigest())
    assert moved.moves == [("d1", "/r/new.txt")] and not moved.add and not moved.removed
    assert moved.summary() == {"added": 0, "changed": 0, "removed": 0, "moved": 1}


def test_pending_releases_after_quiet_or_max_wait() -> None:
    p = Pending()
    assert not p.ready(100.0, 1.0, 10.0) and p.due_in(100.0, 1.0, 10.0) is None
    p.add("/r/a", is_dir=False, at=100.0)
    assert not p.ready(100.5, 1.0, 10.0) and p.ready(101.0, 1.0, 10.0)
    for t in range(20):  # a folder that never goes quiet still releases after max_wait
        p.add("/r/b", is_dir=False, at=100.0 + t * 0.5)
    assert p.ready(110.0, 1.0, 10.0) and p.due_in(109.0, 1.0, 10.0) == 1.0
    files, dirs = p.take()
    assert files == {"/r/a", "/r/b"} and dirs == set() and not p


@given(st.sets(st.lists(st.sampled_from("abc"), min_size=1, max_size=4).map(lambda parts: "/r/" + "/".join(parts))))
def test_collapse_dirs_keeps_only_outermost(dirs: set[str]) -> None:
    out = collapse_dirs(dirs)
    assert out <= dirs
    for d in dirs:
        assert any(d == o or d.startswith(o + "/") for o in out)
    for a in out:
        assert not any(a != b and a.startswith(b + "/") for b in out)


def test_rules_include_exclude_hidden_and_temporary(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    for rel in ["a.md", "b.PDF", "c.exe", "sub/d.txt", "sub/drafts/e.md", ".git/f.txt", "node_modules/g.md",
                ".h.md", "~$i.docx", "j.docx.tmp", "k.md.swp", ".l.pdf.icloud", "deep/x/y/z.html"]:  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    rules = Rules(root, exclude=("sub/drafts/*",))
    found = sorted(Path(p).relative_to(root).as_posix() for p, _ in walk(rules))
    assert found == ["a.md", "b.PDF", "deep/x/y/z.html", "sub/d.txt"]
    flat = Rules(root, recursive=False)
    assert sorted(Path(p).name for p, _ in walk(flat)) == ["a.md", "b.PDF"]
    assert stat_candidate(rules, root / ".l.pdf.icloud") is None
    assert stat_candidate(rules, root / "a.md") == FileInfo(1, (root / "a.md").stat().st_mtime_ns)
    # a native watch costs every directory, hidden and skipped ones too
    assert count_dirs(rules) == 1 + len({"sub", "sub/drafts", ".git", "node_modules", "deep", "deep/x", "deep/x/y"})
    assert count_dirs(rules, stop_after=3) == 4 and count_dirs(flat) == 1


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "real").mkdir()
    (root / "real" / "a.txt").write_text("x")
    os.symlink(root, root / "real" / "loop")
    assert [Path(p).name for p, _ in walk(Rules(root))] == ["a.txt"]


def _stat(**attrs: int) -> os.stat_result:
    return types.SimpleNamespace(st_mode=0o100644, **attrs)  # type: ignore[return-value]


def test_cloud_placeholders_are_recognised() -> None:
    assert is_placeholder(".Report.pdf.icloud", _stat())  # iCloud Drive evicted file
    assert is_placeholder("Report.pdf", _stat(st_flags=0x40000000))  # macOS SF_DATALESS (File Provider)
    for attr in (0x00001000, 0x00040000, 0x00400000):  # Windows OFFLINE / RECALL_ON_OPEN / RECALL_ON_DATA_ACCESS
        assert is_placeholder("Report.pdf", _stat(st_file_attributes=attr))
    assert not is_placeholder("Report.pdf", _stat(st_flags=0, st_file_attributes=0x20))  # ARCHIVE: a local file
    assert all(is_temporary(n) for n in ("~$doc.docx", ".~lock.a.odt#", "a.part", "b.crdownload", "c~"))
    assert not is_temporary("notes.md")


def test_watch_budget_defaults(tmp_path: Path) -> None:
    limit = tmp_path / "max_user_watches"
    limit.write_text("65536\n")
    assert default_watch_budget("linux", limit) == 32768
    assert default_watch_budget("linux", tmp_path / "absent") == 4096
    assert default_watch_budget("darwin") == default_watch_budget("win32") == UNLIMITED
