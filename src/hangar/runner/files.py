"""The files a run writes as lines finish: the failed list (`-o`) and the report
(`--report`, docs/report.schema.json)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from hangar.runner.outfiles import OutputFile, failed_header, resolve_destination
from hangar.runner.progress import Summary


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
LATE_FAILURE = "the end-of-run check could not confirm its change (see the log): it is failed"
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
        self._late: list[str] = []

    @classmethod
    def at(cls, path: Path | None) -> Report:
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

    def fail_late(self, text: str) -> None:
        """A line reported done whose change the end-of-run check could not confirm: its
        result stays as it was (what it wrote, it wrote), and `lateFailures` names it."""
        if self.output is not None:
            self._late.append(text)

    def finish(self, summary: Summary | None = None) -> None:
        if self.output is None:
            return
        self._begin()
        closing: dict[str, Any] = {"endTime": _now()}
        if self._late:
            closing["lateFailures"] = [
                {"image": text, "message": LATE_FAILURE} for text in self._late
            ]
        closing["summary"] = _summary_document(summary or Summary())
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
