"""Run one job per image line, `jobs` at a time, on one asyncio loop.

The list is streamed (a bounded queue between the reader and the workers), so memory stays
flat however long it is. Each image gets its own timeout. The first Ctrl-C stops new images from
starting and lets in-flight ones finish; a second one cancels them. Every line that did not end
well goes, as written, to the failed file, which is replaced atomically at the end (the input
list may be the previous failed file) or removed when nothing failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hangar import output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry

Status = Literal[
    "signed", "already-signed", "skipped", "failed", "passed", "removed", "nothing-to-remove"
]
OK_STATUSES = ("signed", "already-signed", "skipped", "passed", "removed", "nothing-to-remove")
# A line the final check fails was counted as one of these (sign, sign remove).
WRITTEN_STATUSES = ("signed", "removed")


@dataclass
class ImageResult:
    status: Status
    message: str = ""
    signatures: int = 0  # signatures written (sign) or removed, or verified digests (validate)
    details: list[dict[str, Any]] = field(default_factory=list)


Worker = Callable[[ListEntry, int], Awaitable[ImageResult]]
Finalizer = Callable[[], Awaitable[list[str]]]


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    signatures: int = 0
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    def add(self, status: Status, signatures: int) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        self.signatures += signatures

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class FailedFile:
    """Collects failed lines in a temp file; replaces the target only at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp: Any = None
        self.count = 0

    def add(self, text: str) -> None:
        if self._tmp is None:
            directory = self.path.parent if str(self.path.parent) else Path(".")
            self._tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finish()
                "w", dir=directory, prefix=f".{self.path.name}.", suffix=".tmp", delete=False
            )
        self._tmp.write(text + "\n")
        self._tmp.flush()
        self.count += 1

    def finish(self) -> None:
        if self._tmp is not None:
            self._tmp.close()
            os.replace(self._tmp.name, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class Report:
    """A JSON array written as results arrive, so a long run never holds it in memory."""

    def __init__(self, path: Path | None) -> None:
        self._file = open(path, "w", encoding="utf-8") if path else None  # noqa: SIM115
        self._first = True
        if self._file:
            self._file.write("[\n")

    def add(self, record: dict[str, Any]) -> None:
        if not self._file:
            return
        if not self._first:
            self._file.write(",\n")
        self._first = False
        self._file.write(json.dumps(record, sort_keys=False))

    def close(self) -> None:
        if self._file:
            self._file.write("\n]\n")
            self._file.close()


class Progress:
    """A rich progress bar on a terminal; nothing otherwise (log lines are enough there)."""

    def __init__(self, verb: str, enabled: bool) -> None:
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True)
        self._bar = RichProgress(
            TextColumn(f"[bold]{verb}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images  {task.fields[signatures]} signatures  {task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task("", total=None, signatures=0, rate="")
            console = self._bar.console
            # soft_wrap: a long log line must stay one line (copy-paste, grep), not be re-flowed.
            output.set_sink(
                lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True)
            )
        return self

    def set_total(self, total: int | None) -> None:
        if self._bar is not None and total:
            self._bar.update(self._task, total=total)

    def update(self, done: int, signatures: int, rate: float) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task, completed=done, signatures=signatures, rate=f"{rate:.1f}/s"
            )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            output.set_sink(None)
            self._bar.stop()


@dataclass
class RunOptions:
    jobs: int
    timeout: float
    failed_path: Path
    report_path: Path | None = None
    verb: str = "Signing"
    progress: bool | None = None  # None: on when stderr is a terminal
    total: int | None = None  # lines expected, for the ETA


class Runner:
    def __init__(self, worker: Worker, options: RunOptions) -> None:
        self.worker = worker
        self.options = options
        self.summary = Summary()
        self.failed = FailedFile(options.failed_path)
        self.report = Report(options.report_path)
        self._stopping = False
        self._started = 0.0
        self._progress: Progress | None = None

    async def run(
        self, entries: Iterable[ListEntry], *, finalize: Finalizer | None = None
    ) -> Summary:
        """Run every line. `finalize`, awaited once all lines are done, returns lines that
        failed after the fact (a signature another writer dropped): they join the failed file.
        """
        show = self.options.progress
        if show is None:
            show = sys.stderr.isatty()
        self._started = time.monotonic()
        try:
            with Progress(self.options.verb, show) as progress:
                self._progress = progress
                progress.set_total(self.options.total)
                await self._run_workers(enumerate(entries, start=1))
            if finalize is not None:
                self._fail_after(await finalize())
        finally:
            self.summary.elapsed = time.monotonic() - self._started
            self.failed.finish()
            self.report.close()
        return self.summary

    def _fail_after(self, texts: list[str]) -> None:
        for text in dict.fromkeys(texts):  # once per line, in order
            self.failed.add(text)
            counts = self.summary.counts
            written = next((s for s in WRITTEN_STATUSES if counts.get(s, 0) > 0), None)
            if written is not None:
                counts[written] -= 1
            counts["failed"] = counts.get("failed", 0) + 1

    async def _run_workers(self, numbered: Iterator[tuple[int, ListEntry]]) -> None:
        queue: asyncio.Queue[tuple[int, ListEntry] | None] = asyncio.Queue(self.options.jobs * 2)
        workers = [asyncio.create_task(self._work(queue)) for _ in range(self.options.jobs)]
        loop = asyncio.get_running_loop()
        restore = self._install_interrupt(loop, workers)
        try:
            for item in numbered:
                if self._stopping:
                    self._record_unstarted(item[1])
                    continue
                await queue.put(item)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            restore()
        # Lines still queued when Ctrl-C came never started.
        while not queue.empty():
            item = queue.get_nowait()
            if item is not None:
                self._record_unstarted(item[1])

    def _install_interrupt(self, loop: asyncio.AbstractEventLoop, workers: list) -> Callable:
        def on_interrupt() -> None:
            if not self._stopping:
                self._stopping = True
                self.summary.interrupted = True
                output.warn(
                    "interrupted: no new images start; waiting for the ones in flight "
                    "(Ctrl-C again to abandon them)"
                )
                return
            for task in workers:
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        except (NotImplementedError, RuntimeError):  # not the main thread
            return lambda: None
        return lambda: loop.remove_signal_handler(signal.SIGINT)

    def _record_unstarted(self, entry: ListEntry) -> None:
        if entry.error is None and entry.unsupported is None:
            self._finish(entry, 0, ImageResult("failed", "not started: interrupted"), log=False)

    async def _work(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            number, entry = item
            if self._stopping:
                self._record_unstarted(entry)
                continue
            try:
                result = await self._one(number, entry)
            except asyncio.CancelledError:
                result = ImageResult("failed", "abandoned: interrupted")
                self._finish(entry, number, result)
                raise
            self._finish(entry, number, result)

    async def _one(self, number: int, entry: ListEntry) -> ImageResult:
        if entry.unsupported is not None:
            output.warn(f"line {entry.line_number}: {entry.unsupported}, skipped: {entry.text}")
            return ImageResult("skipped", entry.unsupported)
        if entry.error is not None:
            return ImageResult("failed", f"line {entry.line_number}: {entry.error}")
        try:
            async with asyncio.timeout(self.options.timeout):
                return await self.worker(entry, number)
        except TimeoutError:
            return ImageResult("failed", f"timed out after {self.options.timeout:g}s (--timeout)")
        except HangarError as exc:
            return ImageResult("failed", str(exc))
        except Exception as exc:  # a bug must not stop the other images
            output.debug(f"unexpected error for {entry.text}: {exc!r}")
            return ImageResult("failed", f"unexpected error: {exc.__class__.__name__}: {exc}")

    def _finish(self, entry: ListEntry, number: int, result: ImageResult, log: bool = True) -> None:
        self.summary.add(result.status, result.signatures)
        if result.status == "failed":
            # A line too long to keep has no text: a comment says so, and a retry skips it.
            self.failed.add(entry.text or f"# {result.message} (not copied)")
            if log:
                label = f"{entry.text}: " if entry.text else ""
                output.error(f"{label}{result.message}", image=number or None)
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
