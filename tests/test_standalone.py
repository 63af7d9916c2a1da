"""The repository stands alone: tests, sources, scripts and benchmarks read data only from the
repository (tests/data), never from the team's shared folder beside a checkout or from files
another package installs (containers/image's fixtures under Debian's gocode tree)."""

from __future__ import annotations

from pathlib import Path

from tests.support.paths import CIMAGE_FIXTURES, CIMAGE_SOURCE, REPO, VECTORS

# Spelled in pieces so that this file does not match itself.
FORBIDDEN = ["../" + "shared", "/work/" + "shared", "/usr/share/" + "gocode", "SHARED" + " ="]
CHECKED = ["src", "tests", "scripts", "bench", ".ci"]


def checked_files() -> list[Path]:
    files = []
    for top in CHECKED:
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and "data" not in path.parts:
                files.append(path)
    return files


def test_nothing_reads_outside_the_repository() -> None:
    files = checked_files()
    assert len(files) > 50  # the walk did find the sources
    hits = [
        f"{path.relative_to(REPO)}: {needle}"
        for path in files
        for needle in FORBIDDEN
        if needle in path.read_text(errors="replace")
    ]
    assert hits == []


def test_the_data_folders_are_in_the_repository_with_their_readmes() -> None:
    for folder in (VECTORS, CIMAGE_SOURCE):
        assert folder.is_relative_to(REPO / "tests" / "data")
        assert (folder / "README.md").is_file()
    assert (CIMAGE_FIXTURES / "cosign.pub").is_file()
    # Copied as files, not as links that could point out of the repository.
    links = [path for path in (REPO / "tests" / "data").rglob("*") if path.is_symlink()]
    assert links == []
