"""What a folder says not to ingest: its ``.gitignore`` and ``.searchignore`` files (gitignore syntax).

Each file applies to the folder it lies in and everything below, as git reads them; ``.searchignore``
is read after ``.gitignore``, so it can take back (``!pattern``) what git ignores, or ignore more.
"""

from __future__ import annotations

from pathlib import Path

import pathspec

IGNORE_FILES = (".gitignore", ".searchignore")


class IgnoreRules:
    """The ignore files found so far below one root; ``add_folder`` reads a folder's as the walk enters it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: list[tuple[str, pathspec.PathSpec]] = []  # (folder relative to root, its patterns)

    def add_folder(self, folder: Path) -> None:
        lines: list[str] = []
        for name in IGNORE_FILES:
            try:
                lines += (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
        if lines:
            relative = folder.relative_to(self.root).as_posix()
            self._specs.append(("" if relative == "." else relative, pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, relative: str, is_dir: bool = False) -> bool:
        """Is ``relative`` (a path below the root, with ``/``) ignored by the files of its folders?"""
        verdict = False
        for folder, spec in self._specs:
            if folder and not relative.startswith(folder + "/"):
                continue
            inner = relative[len(folder) + 1 :] if folder else relative
            result = spec.check_file(inner + "/" if is_dir else inner)
            if result.include is not None:  # matched: the deepest (latest) file's verdict wins
                verdict = result.include
        return verdict

    @classmethod
    def for_tree(cls, root: Path) -> IgnoreRules:
        """Every ignore file below ``root`` (for a watcher asking about any path at any time)."""
        rules = cls(root)
        for found in sorted({p.parent for name in IGNORE_FILES for p in root.rglob(name)}):
            rules.add_folder(found)
        return rules
