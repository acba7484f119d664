"""What a regular install contains: every package of the tree, and the migrations as searchsvc.migrations."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {name: REPO / folder for name, folder in config["package-dir"].items()}
    in_tree = {
        ".".join(init.parent.relative_to(REPO).parts)
        for root in ("searchsvc", "ingest")
        for init in (REPO / root).rglob("__init__.py")
    }
    for name, folder in mapped.items():
        in_tree |= {
            name + "".join("." + p for p in i.parent.relative_to(folder).parts) for i in folder.rglob("__init__.py")
        }
    assert listed == in_tree


def test_the_migrations_are_found_through_the_installed_package() -> None:
    from searchsvc.storage.database import head_revision, migrations_dir

    assert (migrations_dir() / "env.py").is_file() and head_revision() is not None
