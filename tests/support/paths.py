"""Where the test data lives: in the repository, under tests/data (each folder's README says
which tool made each file). Tests read nothing outside the repository."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
VECTORS = DATA / "vectors"
# containers/image's own fixtures, in upstream's layout below the module root.
CIMAGE_SOURCE = DATA / "cimage-fixtures"
CIMAGE_FIXTURES = CIMAGE_SOURCE / "signature" / "fixtures"
