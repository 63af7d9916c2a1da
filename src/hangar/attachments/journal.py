"""The signatures a run wrote, kept on disk until the end-of-run check reads them back.

A run over 100,000 lines writes 300,000 signatures; keeping what the final check needs for
each in memory grew a run by about 1 KB per signature. Records are appended to an unlinked
temporary file instead and streamed back in batches, so memory stays flat whatever the list's
length.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from hangar.reference import Reference
from hangar.sigstore.attachment import NewSignature


@dataclass(slots=True)
class Written:
    """One signature written in this run, as the final check needs it."""

    sig_ref: Reference  # the `.sig` tag
    digest: str  # the manifest signed
    identity: str
    new: NewSignature
    line: str  # the list line, as written (for the failed file)
    manifest_digest: str = ""  # the tag's digest when it last held our signature, as we know
    writes: int = 0  # PUTs made for this signature
    written_at: float = 0.0  # time.monotonic() when our last write of it was answered

    @property
    def lock_key(self) -> str:
        return f"{self.sig_ref.name}:{self.sig_ref.tag}"


class WriteJournal:
    """Append-only records on an unlinked temporary file (gone when the process ends)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self.count = 0

    def append(self, item: Written) -> None:
        if self._file is None:
            # Lives as long as the run: close() (or process exit) removes it.
            self._file = tempfile.TemporaryFile(prefix="hangar-written-")  # noqa: SIM115
        fields = (
            item.sig_ref,
            item.digest,
            item.identity,
            item.new.payload,
            item.new.signature,
            item.line,
            item.manifest_digest,
            item.writes,
            item.written_at,
        )
        pickle.dump(fields, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def batches(self, size: int) -> Iterator[list[Written]]:
        """Every record, in the order written, `size` at a time."""
        if self._file is None:
            return
        self._file.flush()
        self._file.seek(0)
        batch: list[Written] = []
        while True:
            try:
                fields = pickle.load(self._file)
            except EOFError:
                break
            sig_ref, digest, identity, payload, signature, line, manifest_digest, writes, at = (
                fields
            )
            new = NewSignature(payload=payload, signature=signature)
            batch.append(Written(sig_ref, digest, identity, new, line, manifest_digest, writes, at))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
        self._file.seek(0, 2)  # appends go on at the end

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
