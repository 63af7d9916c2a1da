"""The job runner on its own: failed file, report, timeouts, a crashing worker, late failures,
and the ways a run ends early (an error of the runner itself, a closed output)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hangar import output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.jobs import Runner, RunOptions
from hangar.reference import parse_reference
from hangar.results import ImageResult, Status
from hangar.run_files import FailedList, Report

HEADER = "# failed lines of hangar sign; retry them with: hangar sign -f {} ..."


def entry(number: int, text: str) -> ListEntry:
    return ListEntry(number, text, parse_reference(text), None, None)


def options(tmp_path: Path, report: Path | None = None, **extra) -> RunOptions:
    return RunOptions(
        failed=FailedList.at(tmp_path / "failed.txt"),
        report=Report.at(report),
        **{"jobs": 3, "timeout": 5.0, "progress": False, **extra},
    )


def failed_lines(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER.format(path)
    return lines[1:]


async def worker(item: ListEntry, number: int) -> ImageResult:
    if "slow" in item.text:
        await asyncio.sleep(10)
    if "crash" in item.text:
        raise RuntimeError("a bug")
    if "bad" in item.text:
        return ImageResult(Status.FAILED, "refused")
    return ImageResult(Status.SIGNED, "", 2)


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
    runner = Runner(worker, options(tmp_path, report, timeout=0.3))
    summary = asyncio.run(runner.run(entries))
    assert summary.counts == {"signed": 2, "failed": 4, "mirror-format": 1}
    assert summary.signatures == 4
    assert sorted(failed_lines(tmp_path / "failed.txt")) == [
        "a/bad:v1",
        "a/crash:v1",
        "a/slow:v1",
        "x y",
    ]
    records = {r["image"]: r for r in json.loads(report.read_text())["results"]}
    assert records["a/slow:v1"]["message"].startswith("timed out after 0.3s")
    assert "RuntimeError: a bug" in records["a/crash:v1"]["message"]
    assert records["a b c"]["status"] == "mirror-format"


def test_own_failed_file_is_removed_when_nothing_fails(tmp_path: Path) -> None:
    stale = tmp_path / "failed.txt"
    stale.write_text(HEADER.format(stale) + "\nold line\n")
    summary = asyncio.run(Runner(worker, options(tmp_path)).run([entry(1, "a/ok:v1")]))
    assert summary.failed == 0
    assert not stale.exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left either


def test_the_input_list_may_be_the_failed_file(tmp_path: Path) -> None:
    failed = tmp_path / "failed.txt"
    failed.write_text(HEADER.format(failed) + "\na/ok:v1\na/bad:v1\n")
    opts = options(tmp_path)  # opened before the list is read, as the CLI does
    lines = failed.read_text().splitlines()[1:]
    entries = (entry(n, line) for n, line in enumerate(lines, 1))
    asyncio.run(Runner(worker, opts).run(entries))
    assert failed_lines(failed) == ["a/bad:v1"]


def test_late_failures_join_the_failed_file_once(tmp_path: Path) -> None:
    async def finalize() -> list[str]:
        return ["a/ok:v2", "a/ok:v2"]

    runner = Runner(worker, options(tmp_path))
    summary = asyncio.run(runner.run([entry(1, "a/ok:v1"), entry(2, "a/ok:v2")], finalize=finalize))
    assert summary.counts == {"signed": 1, "failed": 1}
    assert failed_lines(tmp_path / "failed.txt") == ["a/ok:v2"]


def test_a_list_that_breaks_mid_run_stops_the_run_without_a_hang(tmp_path: Path) -> None:
    def broken_list() -> Iterator[ListEntry]:
        yield entry(1, "a/ok:v1")
        yield entry(2, "a/slow:v1")
        raise HangarError("cannot read image list file x: I/O error")

    report = tmp_path / "report.json"
    summary = asyncio.run(
        asyncio.wait_for(Runner(worker, options(tmp_path, report)).run(broken_list()), 5)
    )
    assert summary.fatal == "cannot read image list file x: I/O error"
    assert summary.counts == {"signed": 1, "failed": 1}  # the slow one was abandoned
    assert failed_lines(tmp_path / "failed.txt") == ["a/slow:v1"]
    document = json.loads(report.read_text())
    assert [r["status"] for r in document["results"]] == ["signed", "failed"]
    assert document["summary"]["stoppedBy"] is not None


def test_a_failed_file_that_cannot_be_written_stops_every_worker(tmp_path: Path) -> None:
    opts = options(tmp_path, jobs=2)
    opts.failed.output.handle.close()  # every write now raises, as on a full disk
    entries = [entry(1, "a/bad:v1"), *(entry(n, f"a/slow:v{n}") for n in range(2, 50))]
    summary = asyncio.run(asyncio.wait_for(Runner(worker, opts).run(entries), 5))
    assert summary.fatal is not None and "ValueError" in summary.fatal
    assert not (tmp_path / "failed.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # the temp file went too


def test_a_closed_stderr_abandons_the_run_and_keeps_the_failed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def closed_sink(line: str) -> None:
        raise BrokenPipeError

    monkeypatch.setattr(output, "_sink", closed_sink)
    monkeypatch.setattr(output, "silence", lambda stream: None)
    monkeypatch.setattr(output, "_closed", False)
    entries = [entry(1, "a/bad:v1"), *(entry(n, f"a/slow:v{n}") for n in range(2, 10))]
    summary = asyncio.run(asyncio.wait_for(Runner(worker, options(tmp_path)).run(entries), 5))
    assert summary.output_closed
    assert summary.counts == {"failed": 1, "not-started": 8}  # stopped at the first log line
    assert sorted(failed_lines(tmp_path / "failed.txt")) == sorted(e.text for e in entries)
