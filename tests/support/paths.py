"""Where the shared test data lives: `../shared` beside the checkout (as CI lays it out)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
if not SHARED.is_dir():
    SHARED = Path("/work/shared")
VECTORS = SHARED / "vectors"
CIMAGE_SOURCE = Path("/usr/share/gocode/src/github.com/containers/image")
CIMAGE_FIXTURES = CIMAGE_SOURCE / "signature" / "fixtures"
# Test data kept in the repository itself (tests/data/README files say which tool made it).
DATA = REPO / "tests" / "data"
