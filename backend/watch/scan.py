"""Walking a watched folder: which files are candidate documents, with their size and mtime."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from backend.osdeps.placeholders import is_placeholder, is_regular, is_temporary

DEFAULT_INCLUDE = ("*.txt", "*.text", "*.md", "*.markdown", "*.html", "*.htm", "*.pdf", "*.docx")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".Trash", "$RECYCLE.BIN"})


@dataclass(frozen=True, slots=True)
class Rules:
    root: Path
    recursive: bool = True
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    skip: tuple[Path, ...] = ()  # e.g. the data dir when it lies inside a watched folder

    def wants_name(self, rel: str) -> bool:
        """Glob rules on the path relative to the root (forward slashes; case-insensitive)."""
        rel_l = rel.lower()
        name = PurePosixPath(rel_l).name
        if name.startswith(".") or is_temporary(name):
            return False
        if self.include and not any(_match(rel_l, name, p) for p in self.include):
            return False
        return not any(_match(rel_l, name, p) for p in self.exclude)

    def relative(self, path: Path) -> str | None:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return None
        if not self.recursive and len(rel.parts) > 1:
            return None
        if any(part.startswith(".") or part in SKIP_DIRS for part in rel.parts[:-1]):
            return None
        if any(path == s or s in path.parents for s in self.skip):
            return None
        return rel.as_posix()


def _match(rel: str, name: str, pattern: str) -> bool:
    p = pattern.lower()
    return fnmatch.fnmatchcase(name, p) if "/" not in p else fnmatch.fnmatchcase(rel, p)


@dataclass(frozen=True, slots=True)
class FileInfo:
    size: int
    mtime_ns: int


def stat_candidate(rules: Rules, path: Path) -> FileInfo | None:
    """Size and mtime if ``path`` is a wanted, local, regular file; else None."""
    rel = rules.relative(path)
    if rel is None or not rules.wants_name(rel):
        return None
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    if not is_regular(st) or is_placeholder(path.name, st):
        return None
    return FileInfo(st.st_size, st.st_mtime_ns)


def walk(rules: Rules, start: Path | None = None) -> Iterator[tuple[str, FileInfo]]:
    """Every wanted file under ``start`` (default: the root), as (absolute path, info).

    Iterative (no recursion limit on deep trees), never follows symlinked directories (no
    loops), and skips unreadable directories instead of failing the whole scan.
    """
    stack = [start or rules.root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    descend = rules.recursive and not entry.name.startswith(".") and entry.name not in SKIP_DIRS
                    if descend and not any(path == s or s in path.parents for s in rules.skip):
                        stack.append(path)
                    continue
            except OSError:
                continue
            info = stat_candidate(rules, path)
            if info is not None:
                yield str(path), info


def count_dirs(rules: Rules, stop_after: int | None = None) -> int:
    """Directories a native recursive watch of ``rules.root`` would cost (the root included).

    Counts every directory, hidden and skipped ones too, because the OS watcher does not know
    our rules; symlinked directories are not followed (neither does the watcher). Stops early
    once ``stop_after`` is exceeded.
    """
    if not rules.recursive:
        return 1
    count, stack = 0, [rules.root]
    while stack:
        directory = stack.pop()
        count += 1
        if stop_after is not None and count > stop_after:
            return count
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                    except OSError:
                        continue
        except OSError:
            continue
    return count
