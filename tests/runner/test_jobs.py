"""The job runner on its own: failed file, report, timeouts, a crashing worker, late failures,
and the ways a run ends early (an error of the runner itself, a closed output)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from hangar import output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.reference import parse_reference
from hangar.results import ImageResult, Status, line_progress
from hangar.runner.files import FailedList, Report
from hangar.runner.interrupts import Interrupts
from hangar.runner.jobs import Runner, RunOptions
from hangar.runner.progress import Summary

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
    # in the list's order, though a/slow finished last
    assert failed_lines(tmp_path / "failed.txt") == [
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


# -- each path of the runner on its own ---------------------------------------------------


def report_of(path: Path) -> dict:
    document = json.loads(path.read_text())
    assert document["schemaVersion"] == 1
    return document


def test_a_line_over_its_timeout_fails_alone_and_is_retried_by_the_failed_file(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    entries = [entry(1, "a/slow:v1"), entry(2, "a/ok:v1")]
    summary = asyncio.run(Runner(worker, options(tmp_path, report, timeout=0.2)).run(entries))
    assert summary.counts == {"signed": 1, "failed": 1}
    assert failed_lines(tmp_path / "failed.txt") == ["a/slow:v1"]
    slow = next(r for r in report_of(report)["results"] if r["image"] == "a/slow:v1")
    assert slow["status"] == "failed"
    assert slow["message"] == "timed out after 0.2s (--timeout)"


def test_the_failed_file_holds_each_failed_line_as_written(tmp_path: Path) -> None:
    entries = [
        entry(1, "a/bad:v1"),
        entry(2, "a/ok:v1"),
        ListEntry(3, "not a reference!", None, "invalid reference format", None),
        ListEntry(4, "", None, "line longer than 4096 characters", None),  # too long to keep
        ListEntry(5, "src dst tag", None, None, "mirror format"),  # skipped, not failed
    ]
    summary = asyncio.run(Runner(worker, options(tmp_path, jobs=1)).run(entries))
    assert summary.counts == {"failed": 3, "signed": 1, "mirror-format": 1}
    assert failed_lines(tmp_path / "failed.txt") == [
        "a/bad:v1",
        "not a reference!",
        "# line 4: line longer than 4096 characters (not copied)",
    ]


def test_an_unexpected_error_of_a_worker_fails_its_line_only(tmp_path: Path) -> None:
    async def raising(item: ListEntry, number: int) -> ImageResult:
        if "crash" in item.text:
            raise KeyError("digest")
        if "refused" in item.text:
            raise HangarError("the registry refused it")
        return ImageResult(Status.SIGNED, "", 1)

    report = tmp_path / "report.json"
    entries = [entry(1, "a/crash:v1"), entry(2, "a/refused:v1"), entry(3, "a/ok:v1")]
    summary = asyncio.run(Runner(raising, options(tmp_path, report)).run(entries))
    assert summary.fatal is None
    assert summary.counts == {"failed": 2, "signed": 1}
    messages = {r["image"]: r["message"] for r in report_of(report)["results"]}
    assert messages["a/crash:v1"] == "unexpected error: KeyError: 'digest'"
    assert messages["a/refused:v1"] == "the registry refused it"
    assert sorted(failed_lines(tmp_path / "failed.txt")) == ["a/crash:v1", "a/refused:v1"]


def signalling_worker(signals: list[int]):
    """A worker whose line `a/signal:v1` sends the process `signals` (a real signal, through
    the runner's own handlers), then finishes after a short while; other lines are quick."""

    async def work(item: ListEntry, number: int) -> ImageResult:
        if "signal" in item.text:
            for signum in signals:
                signal.raise_signal(signum)
                await asyncio.sleep(0.05)  # the loop runs the handler
            await asyncio.sleep(0.2 if len(signals) == 1 else 10)
        return ImageResult(Status.SIGNED, "", 1)

    return work


def test_a_first_interrupt_lets_the_line_in_flight_finish_and_starts_no_other(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    entries = [entry(1, "a/signal:v1"), *(entry(n, f"a/ok:v{n}") for n in range(2, 6))]
    runner = Runner(signalling_worker([signal.SIGINT]), options(tmp_path, report, jobs=1))
    summary = asyncio.run(asyncio.wait_for(runner.run(entries), 5))
    assert summary.interrupted_by == signal.SIGINT
    assert summary.counts == {"signed": 1, "not-started": 4}  # the one in flight finished
    assert failed_lines(tmp_path / "failed.txt") == [f"a/ok:v{n}" for n in range(2, 6)]
    document = report_of(report)
    assert document["summary"]["interrupted"] is True
    assert document["summary"]["not-started"] == 4
    assert "interrupted (Ctrl-C): no new images start" in capfd.readouterr().err


def test_a_second_interrupt_abandons_the_line_in_flight(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    entries = [entry(1, "a/signal:v1"), entry(2, "a/ok:v2"), entry(3, "a/ok:v3")]
    work = signalling_worker([signal.SIGTERM, signal.SIGINT])
    report = tmp_path / "report.json"
    summary = asyncio.run(
        asyncio.wait_for(Runner(work, options(tmp_path, report, jobs=1)).run(entries), 5)
    )
    assert summary.interrupted_by == signal.SIGTERM  # the first signal is the one reported
    assert summary.counts == {"failed": 1, "not-started": 2}
    assert failed_lines(tmp_path / "failed.txt") == ["a/signal:v1", "a/ok:v2", "a/ok:v3"]
    first = report_of(report)["results"][0]
    assert (first["status"], first["message"]) == ("failed", "abandoned: interrupted")
    err = capfd.readouterr().err
    assert "interrupted (SIGTERM)" in err
    assert "interrupted again: abandoning the images in flight" in err


def test_a_signal_before_the_run_starts_nothing(tmp_path: Path) -> None:
    async def run() -> Summary:
        async with Interrupts() as interrupts:
            signal.raise_signal(signal.SIGINT)
            await asyncio.sleep(0.05)
            opts = options(tmp_path, interrupts=interrupts)
            return await Runner(worker, opts).run([entry(1, "a/ok:v1"), entry(2, "a/ok:v2")])

    summary = asyncio.run(run())
    assert summary.interrupted_by == signal.SIGINT
    assert summary.counts == {"not-started": 2}
    assert failed_lines(tmp_path / "failed.txt") == ["a/ok:v1", "a/ok:v2"]


def test_late_failures_of_the_finalizer_move_lines_from_written_to_failed(
    tmp_path: Path,
) -> None:
    async def removing(item: ListEntry, number: int) -> ImageResult:
        return ImageResult(Status.REMOVED, "", 1)

    async def finalize() -> list[str]:
        return ["a/ok:v1", "a/ok:v3"]

    report = tmp_path / "report.json"
    entries = [entry(n, f"a/ok:v{n}") for n in range(1, 4)]
    runner = Runner(removing, options(tmp_path, report))
    summary = asyncio.run(runner.run(entries, finalize=finalize))
    assert summary.counts == {"removed": 1, "failed": 2}
    assert summary.failed == 2 and summary.total == 3
    assert failed_lines(tmp_path / "failed.txt") == ["a/ok:v1", "a/ok:v3"]
    assert report_of(report)["summary"]["failed"] == 2


def test_a_finalizer_that_raises_stops_the_run_with_its_error(tmp_path: Path) -> None:
    async def finalize() -> list[str]:
        raise RuntimeError("journal lost")

    report = tmp_path / "report.json"
    runner = Runner(worker, options(tmp_path, report))
    summary = asyncio.run(
        runner.run([entry(1, "a/ok:v1"), entry(2, "a/bad:v1")], finalize=finalize)
    )
    assert summary.fatal == "RuntimeError: journal lost"
    assert summary.counts == {"signed": 1, "failed": 1}
    assert failed_lines(tmp_path / "failed.txt") == ["a/bad:v1"]
    assert report_of(report)["summary"]["stoppedBy"] == "RuntimeError: journal lost"


def test_no_finalizer_after_an_abandoned_run(tmp_path: Path) -> None:
    called: list[bool] = []

    async def finalize() -> list[str]:
        called.append(True)
        return []

    work = signalling_worker([signal.SIGINT, signal.SIGINT])
    runner = Runner(work, options(tmp_path, jobs=1))
    summary = asyncio.run(
        asyncio.wait_for(runner.run([entry(1, "a/signal:v1")], finalize=finalize), 5)
    )
    assert summary.counts == {"failed": 1}
    assert called == []  # nothing it could confirm: the run was abandoned


def test_a_runner_error_is_reported_once_and_every_file_is_finished(tmp_path: Path) -> None:
    def list_with_a_bug() -> Iterator[ListEntry]:
        yield entry(1, "a/bad:v1")
        yield entry(2, "a/ok:v2")
        raise ValueError("a bug in the list reader")

    report = tmp_path / "report.json"
    summary = asyncio.run(
        asyncio.wait_for(
            Runner(worker, options(tmp_path, report, jobs=1)).run(list_with_a_bug()), 5
        )
    )
    assert summary.fatal == "ValueError: a bug in the list reader"
    assert summary.counts == {"failed": 1, "signed": 1}
    assert failed_lines(tmp_path / "failed.txt") == ["a/bad:v1"]
    document = report_of(report)
    assert document["summary"]["stoppedBy"] == "ValueError: a bug in the list reader"
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["failed.txt", "report.json"]


# -- what a line wrote is reported however it ends -------------------------------------------


async def writes_then_hangs(item: ListEntry, number: int) -> ImageResult:
    """Writes one signature (recorded as it lands, as Signer does), then hangs."""
    progress = line_progress()
    progress.details.append({"digest": "sha256:" + "a" * 64, "platform": "linux/amd64",
                             "identity": item.text, "action": "signed"})  # fmt: skip
    progress.signatures += 1
    if "signal" in item.text:
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(0.05)
        signal.raise_signal(signal.SIGINT)
    await asyncio.sleep(10)
    return ImageResult(Status.SIGNED, "", 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [("a/hang:v1", "timed out after 0.3s (--timeout)"), ("a/signal:v1", "abandoned: interrupted")],
)
def test_a_line_cut_short_keeps_what_it_wrote_in_the_report_and_the_count(
    tmp_path: Path, text: str, message: str
) -> None:
    report = tmp_path / "report.json"
    runner = Runner(writes_then_hangs, options(tmp_path, report, jobs=1, timeout=0.3))
    summary = asyncio.run(asyncio.wait_for(runner.run([entry(1, text)]), 5))
    assert summary.counts == {"failed": 1}
    assert summary.signatures == 1
    document = report_of(report)
    (result,) = document["results"]
    assert result["status"] == "failed"
    assert result["message"].startswith(message)
    assert "1 signature(s) of it were written before" in result["message"]
    assert [d["action"] for d in result["digests"]] == ["signed"]
    assert document["summary"]["signatures"] == 1


def test_late_failures_are_named_in_the_report_and_their_records_kept(tmp_path: Path) -> None:
    async def finalize() -> list[str]:
        return ["a/ok:v2"]

    report = tmp_path / "report.json"
    runner = Runner(worker, options(tmp_path, report))
    summary = asyncio.run(runner.run([entry(1, "a/ok:v1"), entry(2, "a/ok:v2")], finalize=finalize))
    assert summary.counts == {"signed": 1, "failed": 1}
    assert summary.signatures == 4  # what was written stays counted
    document = report_of(report)
    assert [r["status"] for r in document["results"]] == ["signed", "signed"]
    assert [late["image"] for late in document["lateFailures"]] == ["a/ok:v2"]
    assert document["summary"]["failed"] == 1
    assert document["summary"]["signatures"] == 4


def test_a_report_without_late_failures_has_no_such_key(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    asyncio.run(Runner(worker, options(tmp_path, report)).run([entry(1, "a/ok:v1")]))
    assert "lateFailures" not in report_of(report)


def test_failed_lines_keep_the_list_order_whatever_order_the_jobs_finish_in(
    tmp_path: Path,
) -> None:
    # Line n fails after (20 - n) * 10 ms: with 4 jobs they finish roughly in reverse.
    async def backwards(item: ListEntry, number: int) -> ImageResult:
        await asyncio.sleep((20 - number) / 100)
        if number % 3 == 0:
            return ImageResult(Status.SIGNED, "", 1)
        return ImageResult(Status.FAILED, "refused")

    entries = [entry(n, f"a/app:v{n}") for n in range(1, 20)]
    finished: list[str] = []

    async def recording(item: ListEntry, number: int) -> ImageResult:
        result = await backwards(item, number)
        finished.append(item.text)
        return result

    asyncio.run(Runner(recording, options(tmp_path, jobs=4)).run(entries))
    expected = [f"a/app:v{n}" for n in range(1, 20) if n % 3]
    assert [text for text in finished if text in expected] != expected  # out of order
    assert failed_lines(tmp_path / "failed.txt") == expected


def test_images_are_numbered_by_their_line_in_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Blank and comment lines are not entries: [IMG:n] is still the file's line n, the
    number the line's own errors ("line n: ...") and the report use."""
    numbers: list[int] = []

    async def bad(item: ListEntry, number: int) -> ImageResult:
        numbers.append(number)
        return ImageResult(Status.FAILED, "refused")

    entries = [entry(3, "a/x:v1"), ListEntry(5, "nginx:", None, "the tag is empty", None)]
    entries.append(entry(8, "a/y:v1"))
    asyncio.run(Runner(bad, options(tmp_path, jobs=1)).run(entries))
    assert numbers == [3, 8]
    errors = [line for line in capsys.readouterr().err.splitlines() if "[ERRO]" in line]
    assert errors == [
        "[ERRO] [IMG:3] a/x:v1: refused",
        "[ERRO] [IMG:5] nginx:: line 5: the tag is empty",
        "[ERRO] [IMG:8] a/y:v1: refused",
    ]


def test_a_failed_file_that_refuses_writes_stops_the_run_with_one_reason() -> None:
    """/dev/full refuses every write. Lines that finished behind a slower one wait for it (the
    list's order) and are written at the end: that write failing too must end the run with
    its reason, never escape as an unexpected error."""

    async def slow_first(item: ListEntry, number: int) -> ImageResult:
        if number == 1:
            await asyncio.sleep(0.3)
        return ImageResult(Status.FAILED, "refused")

    entries = [entry(n, f"a/bad:v{n}") for n in range(1, 6)]
    failed = FailedList.at(Path("/dev/full"))
    runner = Runner(
        slow_first, RunOptions(failed=failed, report=Report.at(None), jobs=3, timeout=5.0)
    )
    summary = asyncio.run(asyncio.wait_for(runner.run(entries), 10))
    assert summary.fatal is not None and "No space left on device" in summary.fatal
