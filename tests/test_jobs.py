"""The job runner on its own: failed file, report, timeouts, a crashing worker, late failures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hangar.imagelist import ListEntry
from hangar.jobs import ImageResult, Runner, RunOptions
from hangar.reference import parse_reference


def entry(number: int, text: str) -> ListEntry:
    return ListEntry(number, text, parse_reference(text), None, None)


def options(tmp_path: Path, **extra) -> RunOptions:
    values = {"jobs": 3, "timeout": 5.0, "failed_path": tmp_path / "failed.txt", "progress": False}
    values.update(extra)
    return RunOptions(**values)


async def worker(item: ListEntry, number: int) -> ImageResult:
    if "slow" in item.text:
        await asyncio.sleep(10)
    if "crash" in item.text:
        raise RuntimeError("a bug")
    if "bad" in item.text:
        return ImageResult("failed", "refused")
    return ImageResult("signed", "", 2)


def test_failed_lines_as_written_and_others_go_on(tmp_path: Path) -> None:
    entries = [
        entry(1, "a/ok:v1"),
        entry(2, "a/bad:v1"),
        entry(3, "a/crash:v1"),
        entry(4, "a/slow:v1"),
        ListEntry(5, "x y", None, "two fields", None),
        ListEntry(6, "a b c", None, None, "mirror format"),
        entry(7, "a/ok:v2"),
    ]
    report = tmp_path / "report.json"
    runner = Runner(worker, options(tmp_path, timeout=0.3, report_path=report))
    summary = asyncio.run(runner.run(entries))
    assert summary.counts == {"signed": 2, "failed": 4, "skipped": 1}
    assert summary.signatures == 4
    failed = (tmp_path / "failed.txt").read_text().splitlines()
    assert sorted(failed) == ["a/bad:v1", "a/crash:v1", "a/slow:v1", "x y"]
    records = {r["image"]: r for r in json.loads(report.read_text())}
    assert records["a/slow:v1"]["message"].startswith("timed out after 0.3s")
    assert "RuntimeError: a bug" in records["a/crash:v1"]["message"]
    assert records["a b c"]["status"] == "skipped"


def test_stale_failed_file_is_removed_when_nothing_fails(tmp_path: Path) -> None:
    stale = tmp_path / "failed.txt"
    stale.write_text("old line\n")
    summary = asyncio.run(Runner(worker, options(tmp_path)).run([entry(1, "a/ok:v1")]))
    assert summary.failed == 0
    assert not stale.exists()


def test_the_input_list_may_be_the_failed_file(tmp_path: Path) -> None:
    failed = tmp_path / "failed.txt"
    failed.write_text("a/ok:v1\na/bad:v1\n")
    entries = (entry(n, line) for n, line in enumerate(failed.read_text().splitlines(), 1))
    asyncio.run(Runner(worker, options(tmp_path)).run(entries))
    assert failed.read_text() == "a/bad:v1\n"


def test_late_failures_join_the_failed_file_once(tmp_path: Path) -> None:
    async def finalize() -> list[str]:
        return ["a/ok:v2", "a/ok:v2"]

    runner = Runner(worker, options(tmp_path))
    summary = asyncio.run(runner.run([entry(1, "a/ok:v1"), entry(2, "a/ok:v2")], finalize=finalize))
    assert summary.counts == {"signed": 1, "failed": 1}
    assert (tmp_path / "failed.txt").read_text() == "a/ok:v2\n"
