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
import contextlib
import datetime
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hangar import output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.outfiles import OutputFile, failed_header

Status = Literal[
    "signed",
    "already-signed",
    "skipped",
    "mirror-format",
    "failed",
    "not-started",
    "passed",
    "removed",
    "nothing-to-remove",
]
OK_STATUSES = (
    "signed",
    "already-signed",
    "skipped",
    "mirror-format",
    "passed",
    "removed",
    "nothing-to-remove",
)
FAILED_STATUSES = ("failed", "not-started")
# A line the final check fails was counted as one of these (sign, sign remove).
WRITTEN_STATUSES = ("signed", "removed")
SIGNAL_EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class ImageResult:
    status: Status
    message: str = ""
    signatures: int = 0  # signatures written (sign) or removed, or verified digests (validate)
    details: list[dict[str, Any]] = field(default_factory=list)
    platforms: tuple[str, ...] = ()  # for "skipped": the platforms the image does have


Worker = Callable[[ListEntry, int], Awaitable[ImageResult]]
Finalizer = Callable[[], Awaitable[list[str]]]


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    signatures: int = 0
    elapsed: float = 0.0
    interrupted_by: int | None = None  # the signal number that stopped the run
    output_closed: bool = False
    fatal: str | None = None  # the runner itself failed: what happened
    platforms_seen: set[str] = field(default_factory=set)  # of images skipped for platform

    @property
    def interrupted(self) -> bool:
        return self.interrupted_by is not None

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def not_started(self) -> int:
        return self.counts.get("not-started", 0)

    def add(self, status: Status, signatures: int) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        self.signatures += signatures

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def only_skipped_for_platform(self) -> bool:
        """Every image line was skipped for its platform: nothing was done at all."""
        skipped = self.counts.get("skipped", 0)
        return skipped > 0 and skipped == self.total - self.counts.get("mirror-format", 0)


class FailedList:
    """The failed lines, in a temp file beside the target until the end (a regular target),
    or written through as they come (a device, FIFO or open descriptor)."""

    def __init__(self, output_file: OutputFile | None, command: str = "hangar sign") -> None:
        self.output = output_file
        self.count = 0
        if output_file is not None and not output_file.destination.stream:
            # Says who wrote it: no other command overwrites it, and a retry may read it.
            name = output_file.destination.given
            output_file.write(failed_header(command, str(name)) + "\n")

    @classmethod
    def at(cls, path: Path, command: str = "hangar sign") -> FailedList:
        from hangar.outfiles import resolve_destination

        return cls(OutputFile(resolve_destination(path, "-o"), "-o"), command)

    def add(self, text: str) -> None:
        self.count += 1
        if self.output is not None:
            self.output.write(text + "\n")

    def finish(self) -> None:
        out = self.output
        if out is None:
            return
        if self.count or out.destination.stream or out.destination.given.is_symlink():
            out.commit()  # a symlink's target gets the (empty) list rather than going away
        else:
            out.remove_target()

    def discard(self) -> None:
        if self.output is not None:
            self.output.discard()


REPORT_SCHEMA_VERSION = 1
SUMMARY_KEYS = (
    "signed",
    "already-signed",
    "passed",
    "skipped",
    "mirror-format",
    "failed",
    "not-started",
)


class Report:
    """The --report document (docs/report.schema.json): the run's header, then one result per
    line as results arrive (a long run never holds them in memory), then the summary. A
    regular file is replaced only at the end, so it is always either the old or a whole one."""

    def __init__(self, output_file: OutputFile | None) -> None:
        self.output = output_file
        self._first = True
        self._begun = False
        self._header: dict[str, Any] = {}

    @classmethod
    def at(cls, path: Path | None) -> Report:
        from hangar.outfiles import resolve_destination

        if path is None:
            return cls(None)
        return cls(OutputFile(resolve_destination(path, "--report"), "--report"))

    def describe(self, **fields: Any) -> None:
        """Header fields (command, keys...), known before the first result."""
        self._header.update(fields)

    def _begin(self) -> None:
        if self._begun or self.output is None:
            return
        self._begun = True
        from hangar import __version__

        header = {
            "schemaVersion": REPORT_SCHEMA_VERSION,
            "hangarVersion": __version__,
            **self._header,
            "startTime": _now(),
        }
        # An object left open on "results": the results follow, the summary closes it.
        self.output.write(json.dumps(header, indent=2)[:-2] + ',\n  "results": [\n')

    def add(self, record: dict[str, Any]) -> None:
        if self.output is None:
            return
        self._begin()
        separator = "" if self._first else ",\n"
        self._first = False
        self.output.write(separator + "    " + json.dumps(record, sort_keys=False))

    def finish(self, summary: Summary | None = None) -> None:
        if self.output is None:
            return
        self._begin()
        closing = {"endTime": _now(), "summary": _summary_document(summary or Summary())}
        body = json.dumps(closing, indent=2)[1:]  # `"endTime": ...}` without its opening brace
        self.output.write("\n  ],\n" + body.lstrip("\n") + "\n")
        self.output.commit()

    def discard(self) -> None:
        if self.output is not None:
            self.output.discard()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _summary_document(summary: Summary) -> dict[str, Any]:
    counts: dict[str, Any] = {"total": summary.total}
    counts.update({key: summary.counts.get(key, 0) for key in SUMMARY_KEYS})
    counts["signatures"] = summary.signatures
    counts["elapsedSeconds"] = round(summary.elapsed, 3)
    counts["interrupted"] = summary.interrupted
    counts["stoppedBy"] = summary.fatal
    return counts


class Progress:
    """Where the run stands. On a terminal: a bar with done/total, rate, elapsed time and an
    ETA labelled as such; log lines print above it, [ERRO]/[WARN] coloured. Elsewhere (a CI
    log): a `Progress:` line every `interval` seconds. Nothing with -q."""

    def __init__(
        self, verb: str, enabled: bool, *, interval: float = 0.0, total: int | None = None
    ) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._verb = verb
        self._interval = interval if not enabled else 0.0
        self._total = total or None
        self._started = time.monotonic()
        self._last_line = self._started
        if enabled:
            self._bar = _rich_bar(verb)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
            # The total is known from the first frame: never a `0/?` bar.
            self._task = self._bar.add_task("", total=self._total, signatures=0, rate="")
            console = self._bar.console
            # soft_wrap: a long log line must stay one line (copy-paste, grep), not be re-flowed.
            output.set_sink(lambda line: console.print(_styled(line), soft_wrap=True))
        return self

    def update(self, done: int, signatures: int, rate: float) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task, completed=done, signatures=signatures, rate=f"{rate:.1f}/s"
            )
            return
        now = time.monotonic()
        if self._interval > 0 and now - self._last_line >= self._interval:
            self._last_line = now
            output.info(self.line(done, now - self._started))

    def line(self, done: int, elapsed: float) -> str:
        """`Progress: 120/500 images (24%), 3.1 images/s, elapsed 38s, ETA 2m02s`."""
        rate = done / elapsed if elapsed > 0 else 0.0
        if not self._total:
            return f"Progress: {done} images, {rate:.1f} images/s, elapsed {_clock(elapsed)}"
        left = max(self._total - done, 0)
        eta = _clock(left / rate) if rate > 0 else "unknown"
        share = 100 * done // self._total
        return (
            f"Progress: {done}/{self._total} images ({share}%), {rate:.1f} images/s, "
            f"elapsed {_clock(elapsed)}, ETA {eta}"
        )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            output.set_sink(None)
            self._bar.stop()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _rich_bar(verb: str) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    return RichProgress(
        TextColumn(f"[bold]{verb}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images  {task.fields[signatures]} signatures  {task.fields[rate]}"),
        # Both times are labelled: an unlabelled clock reads as elapsed time.
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _styled(line: str) -> Any:
    from rich.text import Text

    text = Text(line)
    style = {"[ERRO]": "bold red", "[WARN]": "yellow"}.get(line[:6])
    if style is not None:
        text.stylize(style, 0, 6)
    return text


class Interrupts:
    """SIGINT and SIGTERM for a whole command, installed before its first request so that no
    signal ever meets Python's default handlers mid-run (a KeyboardInterrupt inside asyncio
    would tear the run down with tasks still writing). Listeners get (signal, how many so far).
    Work started with `guard()` before the run (the login check) is cancelled by a signal."""

    def __init__(self) -> None:
        self.first: int | None = None  # the signal that stopped the command
        self.count = 0
        self._listener: Callable[[int, int], None] | None = None
        self._guarded: set[asyncio.Task[Any]] = set()
        self._restore: Callable[[], None] = lambda: None

    async def __aenter__(self) -> Interrupts:
        self._install()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._restore()

    def _install(self) -> None:
        loop = asyncio.get_running_loop()
        installed: list[tuple[int, Any]] = []
        for signum in SIGNAL_EXIT_CODES:
            try:
                previous = signal.getsignal(signum)
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            installed.append((signum, previous))

        def restore() -> None:
            for signum, previous in installed:
                loop.remove_signal_handler(signum)
                # asyncio leaves SIG_DFL behind; the previous handler must come back so that
                # a late SIGTERM still unwinds (no temp file left) instead of killing outright.
                signal.signal(signum, previous)
            self._restore = lambda: None

        self._restore = restore

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Python's own handlers for a blocking prompt: a Ctrl-C there must interrupt the
        read (KeyboardInterrupt), which the loop's handler cannot do."""
        self._restore()
        try:
            yield
        finally:
            self._install()

    def listen(self, listener: Callable[[int, int], None] | None) -> None:
        self._listener = listener

    async def guard(self, work: Awaitable[Any]) -> None:
        """Run `work` unless a signal came or comes: then it is cancelled, quietly."""
        if self.first is not None:
            if asyncio.iscoroutine(work):
                work.close()
            return
        task = asyncio.ensure_future(work)
        self._guarded.add(task)
        try:
            await task
        except asyncio.CancelledError:
            if self.first is None:
                raise
        except KeyboardInterrupt:  # Ctrl-C at a prompt (see paused)
            self._on_signal(signal.SIGINT)
        finally:
            self._guarded.discard(task)

    def _on_signal(self, signum: int) -> None:
        self.count += 1
        if self.first is None:
            self.first = signum
        for task in self._guarded:
            task.cancel()
        if self._listener is not None:
            self._listener(signum, self.count)


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
        numbered = enumerate(entries, start=1)
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
            counts = self.summary.counts
            written = next((s for s in WRITTEN_STATUSES if counts.get(s, 0) > 0), None)
            if written is not None:
                counts[written] -= 1
            counts["failed"] = counts.get("failed", 0) + 1

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
            for _, entry in numbered:
                self._record_unstarted(entry)
        except Exception as exc:  # the list or the failed file broke: the run already stopped
            self.summary.fatal = self.summary.fatal or f"{exc.__class__.__name__}: {exc}"

    def _record_unstarted(self, entry: ListEntry) -> None:
        if entry.unsupported is not None:
            return
        self._finish(entry, 0, ImageResult("not-started", "not started: interrupted"), log=False)

    async def _work(self, numbered: Iterator[tuple[int, ListEntry]]) -> None:
        # The workers share one iterator: next() runs without an await, so each line is
        # taken by exactly one of them.
        for number, entry in numbered:
            if self._stopping:
                self._record_unstarted(entry)
                return
            try:
                result = await self._one(number, entry)
            except asyncio.CancelledError:
                self._finish(entry, number, ImageResult("failed", "abandoned: interrupted"))
                raise
            self._finish(entry, number, result)

    async def _one(self, number: int, entry: ListEntry) -> ImageResult:
        if entry.unsupported is not None:
            output.warn(f"line {entry.line_number}: {entry.unsupported}, skipped: {entry.text}")
            return ImageResult("mirror-format", entry.unsupported)
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
        self.summary.platforms_seen.update(result.platforms)
        if result.status in FAILED_STATUSES:
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

    def _finish_files(self) -> None:
        finishes = (self.failed.finish, lambda: self.report.finish(self.summary))
        for finish in finishes:
            try:
                finish()
            except OSError as exc:
                self.summary.fatal = self.summary.fatal or f"cannot write output: {exc}"
