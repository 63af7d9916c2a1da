"""Run one job per image line, `jobs` at a time, on one asyncio loop.

Workers take the next line straight from the (streamed) list, so memory stays flat however
long it is and nothing can block on a full queue. Each image gets its own timeout.

How a run ends, whatever happens (never a hang):
- the first Ctrl-C or SIGTERM stops new images from starting and lets in-flight ones finish;
  a second one abandons them at once;
- a closed stdout/stderr (`hangar sign ... 2>&1 | head`) abandons the run as a second signal
  does;
- an unexpected error in the runner itself (the failed file cannot be written, say) stops the
  run and is reported once.
In every case the failed file gets every line that did not end well (lines never started
included, so `-f sign-failed.txt` retries exactly those), the report is valid JSON, and the
caller prints the summary and picks the exit code from `Summary`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hangar import output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.results import (
    FAILED_STATUSES,
    WRITTEN_STATUSES,
    ImageResult,
    LineProgress,
    Status,
    start_line,
)
from hangar.runner.files import FailedList, Report
from hangar.runner.interrupts import Interrupts
from hangar.runner.progress import Progress, Summary

Worker = Callable[[ListEntry, int], Awaitable[ImageResult]]
Finalizer = Callable[[], Awaitable[list[str]]]


@dataclass
class RunOptions:
    jobs: int
    timeout: float
    failed: FailedList
    report: Report = field(default_factory=lambda: Report(None))
    verb: str = "Signing"
    progress: bool | None = None  # None: on when stderr is a terminal (and not -q)
    progress_interval: float = 0.0  # not a terminal: a progress line every N seconds (0: none)
    total: int | None = None  # lines expected, for the ETA
    interrupts: Interrupts | None = None  # None: the runner installs its own
    # What a registry is doing when an image of it times out: `registry X has not answered
    # since ...` while it is silent (RegistryClient.silence), added to the timeout's message.
    silence: Callable[[str], str | None] | None = None


class InListOrder:
    """Failed lines reach the failed file in the list's order, though jobs finish in any
    order: a line waits until every line before it has finished. What waits is at most the
    failures that finished behind the slowest line in flight."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._next = 0  # the position of the first line not finished yet
        self._waiting: dict[int, str | None] = {}  # finished early: the text, None if it passed

    def finished(self, position: int, failed_text: str | None) -> None:
        self._waiting[position] = failed_text
        while self._next in self._waiting:
            text = self._waiting.pop(self._next)
            self._next += 1
            if text is not None:
                self._write(text)

    def flush(self) -> None:
        """The end of the run: whatever still waits (a line never finished), in order."""
        for position in sorted(self._waiting):
            text = self._waiting.pop(position)
            if text is not None:
                self._write(text)


class Runner:
    def __init__(self, worker: Worker, options: RunOptions) -> None:
        self.worker = worker
        self.options = options
        self.summary = Summary()
        self.failed = options.failed
        self.report = options.report
        self._stopping = False  # no new images start
        self._abandoned = False  # in-flight images are cancelled too
        self._tasks: list[asyncio.Task[Any]] = []  # what an abandon cancels
        self._started = 0.0
        self._progress: Progress | None = None
        self._in_order = InListOrder(self.failed.add)

    async def run(
        self, entries: Iterable[ListEntry], *, finalize: Finalizer | None = None
    ) -> Summary:
        """Run every line. `finalize`, awaited once all lines are done, returns lines that
        failed after the fact (a signature another writer dropped): they join the failed file.
        """
        if self.options.interrupts is None:
            async with Interrupts() as interrupts:
                return await self._run(entries, finalize, interrupts)
        return await self._run(entries, finalize, self.options.interrupts)

    async def _run(
        self, entries: Iterable[ListEntry], finalize: Finalizer | None, interrupts: Interrupts
    ) -> Summary:
        show = self.options.progress
        if show is None:
            show = sys.stderr.isatty() and not output.quiet()
        interval = 0.0 if output.quiet() else self.options.progress_interval
        self._started = time.monotonic()
        # Positions in the list (what the failed file's order follows); the log numbers an
        # image by its line in the file ([IMG:n], the report's "line"): one numbering.
        numbered = enumerate(entries)
        if interrupts.first is not None:  # a signal came before the run: nothing starts
            self._on_signal(interrupts.first, 1)
        interrupts.listen(self._on_signal)
        output.on_closed(self._on_output_closed)
        try:
            total = self.options.total
            with Progress(self.options.verb, show, interval=interval, total=total) as progress:
                self._progress = progress
                await self._run_workers(numbered)
            if finalize is not None and not self._abandoned and self.summary.fatal is None:
                await self._finalize(finalize)
        finally:
            await self._cancel_tasks()
            interrupts.listen(None)
            output.on_closed(None)
            self._record_rest(numbered)
            self._flush_in_order()
            self.summary.elapsed = time.monotonic() - self._started
            self._finish_files()
        return self.summary

    async def _cancel_tasks(self) -> None:
        """Nothing of the run may outlive it (this run itself being cancelled included): a
        task left behind would write to files already closed."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_workers(self, numbered: Iterator[tuple[int, ListEntry]]) -> None:
        self._tasks = [asyncio.create_task(self._work(numbered)) for _ in range(self.options.jobs)]
        pending: set[asyncio.Task[Any]] = set(self._tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    self._fail_run(task.exception())
        self._tasks = []

    async def _finalize(self, finalize: Finalizer) -> None:
        task: asyncio.Task[list[str]] = asyncio.ensure_future(finalize())
        self._tasks = [task]
        try:
            late = await task
        except asyncio.CancelledError:
            if not self._abandoned:
                raise
            return
        except Exception as exc:  # reported as the run's error, never a hang
            self._fail_run(exc)
            return
        finally:
            self._tasks = []
        self._fail_after(late)

    def _fail_run(self, exc: BaseException | None) -> None:
        """An error outside any one image: stop everything and say what happened once."""
        if self.summary.fatal is None:
            if isinstance(exc, HangarError):
                self.summary.fatal = str(exc)
            else:
                self.summary.fatal = f"{exc.__class__.__name__}: {exc}"
                output.debug(f"runner error: {exc!r}")
        self._abandon()

    def _fail_after(self, texts: list[str]) -> None:
        for text in dict.fromkeys(texts):  # once per line, in order
            self.failed.add(text)
            self.report.fail_late(text)
            counts = self.summary.counts
            written = next((s for s in WRITTEN_STATUSES if counts.get(s, 0) > 0), None)
            if written is not None:
                counts[written] -= 1
            counts[Status.FAILED] = counts.get(Status.FAILED, 0) + 1

    def _on_signal(self, signum: int, count: int) -> None:
        if count > 1 or self._stopping:
            output.warn("interrupted again: abandoning the images in flight")
            self.summary.interrupted_by = self.summary.interrupted_by or signum
            self._abandon()
            return
        self._stopping = True
        self.summary.interrupted_by = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        output.warn(
            f"interrupted ({name}): no new images start; waiting for the ones in flight "
            "(Ctrl-C again to abandon them)"
        )

    def _on_output_closed(self) -> None:
        self.summary.output_closed = True
        self._abandon()

    def _abandon(self) -> None:
        self._stopping = True
        self._abandoned = True
        for task in self._tasks:
            task.cancel()

    def _record_rest(self, numbered: Iterator[tuple[int, ListEntry]]) -> None:
        """Lines never taken by a worker: every one goes to the failed file, so a retry with
        it does exactly what is left. Only a run that stopped leaves any."""
        if not self._stopping:
            return
        try:
            for position, entry in numbered:
                self._record_unstarted(position, entry)
        except Exception as exc:  # the list or the failed file broke: the run already stopped
            self.summary.fatal = self.summary.fatal or f"{exc.__class__.__name__}: {exc}"

    def _flush_in_order(self) -> None:
        """The failed lines still waiting for a slower one before them, written at the end."""
        try:
            self._in_order.flush()
        except Exception as exc:  # the failed file broke: the run stops with that reason
            self.summary.fatal = self.summary.fatal or f"{exc.__class__.__name__}: {exc}"

    def _record_unstarted(self, position: int, entry: ListEntry) -> None:
        if entry.unsupported is not None:
            self._in_order.finished(position, None)
            return
        result = ImageResult(Status.NOT_STARTED, "not started: interrupted")
        self._finish(position, entry, result, log=False)

    async def _work(self, numbered: Iterator[tuple[int, ListEntry]]) -> None:
        # The workers share one iterator: next() runs without an await, so each line is
        # taken by exactly one of them.
        for position, entry in numbered:
            if self._stopping:
                self._record_unstarted(position, entry)
                return
            progress = start_line()
            try:
                result = await self._one(entry.line_number, entry, progress)
            except asyncio.CancelledError:
                self._finish(position, entry, _cut_short("abandoned: interrupted", progress))
                raise
            self._finish(position, entry, result)

    async def _one(self, number: int, entry: ListEntry, progress: LineProgress) -> ImageResult:
        if entry.unsupported is not None:
            output.warn(f"line {entry.line_number}: {entry.unsupported}, skipped: {entry.text}")
            return ImageResult(Status.MIRROR_FORMAT, entry.unsupported)
        if entry.error is not None:
            return ImageResult(Status.FAILED, f"line {entry.line_number}: {entry.error}")
        try:
            async with asyncio.timeout(self.options.timeout):
                return await self.worker(entry, number)
        except TimeoutError:
            message = f"timed out after {self.options.timeout:g}s (--timeout)"
            if (note := self._silence(entry)) is not None:
                message = f"{message}: {note}"
            return _cut_short(message, progress)
        except HangarError as exc:
            result = _cut_short(str(exc), progress)
            result.said_once = exc.said_once
            return result
        except Exception as exc:  # a bug must not stop the other images
            output.debug(f"unexpected error for {entry.text}: {exc!r}")
            message = f"unexpected error: {exc.__class__.__name__}: {exc}"
            return _cut_short(message, progress)

    def _silence(self, entry: ListEntry) -> str | None:
        silence = self.options.silence
        if silence is None or entry.reference is None:
            return None
        return silence(entry.reference.registry)

    def _finish(
        self, position: int, entry: ListEntry, result: ImageResult, log: bool = True
    ) -> None:
        self.summary.add(result.status, result.signatures)
        self.summary.platforms_seen.update(result.platforms)
        failed_text = None
        if result.status in FAILED_STATUSES:
            # A line too long to keep has no text: a comment says so, and a retry skips it.
            failed_text = entry.text or f"# {result.message} (not copied)"
            if log:
                label = f"{entry.text}: " if entry.text else ""
                say = output.debug if result.said_once else output.error
                say(f"{label}{result.message}", image=entry.line_number)
        self._in_order.finished(position, failed_text)
        self.report.add(
            {
                "line": entry.line_number,
                "image": entry.text,
                "reference": str(entry.reference) if entry.reference else None,
                "status": result.status,
                "message": result.message,
                "digests": result.details,
            }
        )
        if self._progress is not None:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            self._progress.update(
                self.summary.total, self.summary.signatures, self.summary.signatures / elapsed
            )

    def _finish_files(self) -> None:
        finishes = (self.failed.finish, lambda: self.report.finish(self.summary))
        for finish in finishes:
            try:
                finish()
            except OSError as exc:
                self.summary.fatal = self.summary.fatal or f"cannot write output: {exc}"


def _cut_short(message: str, progress: LineProgress) -> ImageResult:
    """A line that ended without its worker's result: failed, with what it had written."""
    if progress.signatures:
        message += (
            f" ({progress.signatures} signature(s) of it were written before: they are in the "
            "registry and the report)"
        )
    return ImageResult(Status.FAILED, message, progress.signatures, list(progress.details))
