"""`--all-tags`: a list line without a tag (and without a digest) means every tag of that
repository, as the registry lists them, less the tags that hold signatures and attestations.

The expansion happens before the run (a tag list is small next to the work of signing), so the
progress total and the failed file speak of concrete `repo:tag` references. A line whose tags
cannot be listed stays one failed line, written as it was, so a retry with the failed file
expands it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from hangar import output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.reference import Reference, names_tag_or_digest
from hangar.registry.tags import is_attachment_tag, page_size

if TYPE_CHECKING:
    from hangar.registry.client import RegistryClient


def means_all_tags(entry: ListEntry) -> bool:
    return entry.reference is not None and not names_tag_or_digest(entry.text)


async def expand_all_tags(entries: Iterable[ListEntry], client: RegistryClient) -> list[ListEntry]:
    """The entries with each tagless line replaced by one entry per tag of its repository."""
    size = page_size()
    listed: dict[str, list[str] | HangarError] = {}  # a repository named twice is listed once
    expanded: list[ListEntry] = []
    for entry in entries:
        if not means_all_tags(entry):
            expanded.append(entry)
            continue
        assert entry.reference is not None
        ref = entry.reference
        if ref.name not in listed:
            listed[ref.name] = await _tags_of(client, ref, size)
        expanded.extend(_entries_for(entry, ref, listed[ref.name]))
    return expanded


async def _tags_of(client: RegistryClient, ref: Reference, size: int | None):
    try:
        return await client.list_tags(ref.registry, ref.repository, page_size=size)
    except HangarError as exc:
        return exc


def _entries_for(
    entry: ListEntry, ref: Reference, tags: list[str] | HangarError
) -> list[ListEntry]:
    if isinstance(tags, HangarError):
        reason = f"--all-tags: cannot list the tags of {ref.name}: {tags}"
        if tags.hint is None:
            reason += " (check the repository name, and --registry/--project if given)"
        return [_failed(entry, reason)]
    wanted = list(dict.fromkeys(tag for tag in tags if not is_attachment_tag(tag)))
    skipped = len(set(tags)) - len(wanted)
    if not wanted:
        reason = f"--all-tags: repository {ref.name} has no image tags"
        if skipped:
            reason += f" (only {skipped} signature/attestation tag(s))"
        reason += "; push the image, or write the line with a tag"
        return [_failed(entry, reason)]
    output.info(
        f"line {entry.line_number}: {ref.name}: {len(wanted)} tag(s)"
        + (f", {skipped} signature/attestation tag(s) skipped" if skipped else "")
    )
    result = []
    for tag in wanted:
        try:
            tagged = ref.with_tag(tag)
        except HangarError as exc:
            result.append(_failed(entry, f"--all-tags: the registry lists tag {tag!r}: {exc}"))
            continue
        result.append(ListEntry(entry.line_number, str(tagged), tagged, None, None))
    return result


def _failed(entry: ListEntry, reason: str) -> ListEntry:
    return replace(entry, reference=None, error=reason)
