"""Where a run stands: the counts of its lines (Summary) and the progress bar or lines."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hangar import output
from hangar.results import Status


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
        return self.counts.get(Status.FAILED, 0)

    @property
    def not_started(self) -> int:
        return self.counts.get(Status.NOT_STARTED, 0)

    def add(self, status: Status, signatures: int) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        self.signatures += signatures

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def only_skipped_for_platform(self) -> bool:
        """Every image line was skipped for its platform: nothing was done at all."""
        skipped = self.counts.get(Status.SKIPPED, 0)
        return skipped > 0 and skipped == self.total - self.counts.get(Status.MIRROR_FORMAT, 0)


class Progress:
    """Where the run stands. On a terminal: a bar with done/total, rate, elapsed time and an
    ETA labelled as such; log lines print above it, [ERRO]/[WARN] coloured. Elsewhere (a CI
    log): a `Progress:` line every `interval` seconds. Nothing with -q."""

    def __init__(
        self, verb: str, enabled: bool, *, interval: float = 0.0, total: int | None = None
    ) -> None:
        self._bar: Any = None
        self._task: Any = None
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
