"""Sigstore bundles beside the `.sig` tag: find the bundles attached to a digest as cosign v3
finds them, and attach a new one as cosign v3 `sign` does (bundles.md sections 5-7).

A bundle is an OCI artifact whose `subject` is the signed manifest, PUT by digest. Where the
registry has the referrers API it keeps the list itself. Elsewhere (distribution 2.8: every
registry these tests run) the list is the referrers tag schema's index at tag `sha256-<hex>`,
a read-modify-write target shared with every other tool (cosign, oras, notation): it is
written through the `.sig` tag's own protocol (AttachmentWriter.apply: serialized per tag,
merged into each fresh read, never dropping another writer's entry, checked at the end by the
final check), as AddReferrer below.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from hangar import output
from hangar.attachments import merge
from hangar.attachments.merge import (
    BLOB_RACE_CODES,
    MAX_MERGE_ATTEMPTS,
    Edit,
    SignatureStore,
    TagFormat,
    TagRead,
)
from hangar.attachments.writer import AttachmentWriter
from hangar.errors import HangarError
from hangar.manifest import OCI_INDEX, OCI_MANIFEST, sha256_digest
from hangar.reference import Reference
from hangar.registry.client import Manifest
from hangar.registry.errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TooLargeError,
)
from hangar.sigstore.bundle import MAX_BUNDLE_SIZE, Bundle, parse_bundle
from hangar.sigstore.protojson import ProtoJsonError
from hangar.sigstore.referrers import (
    EMPTY_CONFIG,
    Referrer,
    ReferrersError,
    ReferrersIndex,
    add_referrer,
    drop_referrers,
    index_entry,
    lists,
    parse_artifact,
    parse_index,
    referrers_tag,
)

INDEX_TAG = TagFormat(OCI_INDEX, parse_index)
Source = Literal["referrers-api", "referrers-tag"]
# Referrer manifests (and their bundles) read at once for one digest.
BUNDLE_FETCHES = 8


class BundleStore(SignatureStore, Protocol):
    """The registry operations bundles need: the `.sig` protocol's, and the referrers API."""

    async def get_referrers(self, ref: Reference, digest: str) -> Manifest | None:
        """The referrers index the registry keeps; None where it has no referrers API."""
        ...


@dataclass(frozen=True)
class FoundBundle:
    """One referrer of a digest, read as cosign reads it for a bundle."""

    referrer: str  # the referrer manifest's digest
    bundle: Bundle | None  # None: not a (parsable) bundle
    reason: str  # why not, when bundle is None
    artifact_type: str  # the index descriptor's (Kyverno selects bundles by it)

    @property
    def parsable(self) -> bool:
        return self.bundle is not None


@dataclass(frozen=True)
class Discovery:
    """What cosign v3 finds for a digest: where it looked, and each referrer read."""

    source: Source
    index: ReferrersIndex | None  # the list read (None: no referrers)
    index_digest: str | None  # the fallback tag's manifest digest, when read there
    found: tuple[FoundBundle, ...]

    @property
    def bundles(self) -> list[FoundBundle]:
        return [item for item in self.found if item.parsable]


@dataclass
class ReferrersApi:
    """Whether each registry serves the referrers API, learned from its first answer."""

    known: dict[str, bool] = field(default_factory=dict)


async def discover(store: BundleStore, ref: Reference, digest: str, api: ReferrersApi) -> Discovery:
    """The referrers of `digest` in `ref`'s repository as cosign v3 reads them (ggcr
    remote.Referrers, then cosign's Bundle for each): the referrers API where the registry has
    it, else the `sha256-<hex>` tag (404 there: none). Every listed referrer is read (cosign
    applies no artifactType filter); one that is not a bundle is kept with the reason."""
    index: ReferrersIndex | None = None
    index_digest = None
    source: Source = "referrers-tag"
    if api.known.get(ref.registry, True):
        answer = await store.get_referrers(ref, digest)
        api.known[ref.registry] = answer is not None
        if answer is not None:
            source = "referrers-api"
            index = parse_index(answer.data, f"the referrers API's answer for {ref.name}@{digest}")
    if source == "referrers-tag":
        tag_ref = ref.with_tag(referrers_tag(digest))
        try:
            manifest = await store.get_manifest(tag_ref)
        except NotFoundError:
            manifest = None
        if manifest is not None:
            index = parse_index(manifest.data, f"the referrers index {tag_ref}")
            index_digest = manifest.digest
    if index is None:
        return Discovery(source, None, None, ())
    gate = asyncio.Semaphore(BUNDLE_FETCHES)

    async def read(referrer: Referrer) -> FoundBundle:
        async with gate:
            return await read_referrer(store, ref, referrer)

    found = await asyncio.gather(*(read(r) for r in index.referrers if r.digest))
    return Discovery(source, index, index_digest, tuple(found))


async def read_referrer(store: SignatureStore, ref: Reference, referrer: Referrer) -> FoundBundle:
    """One referrer as cosign's Bundle reads it: the manifest, its one bundle layer (size and
    digest checked), the bundle parsed as sigstore-go parses it."""

    def not_bundle(reason: str) -> FoundBundle:
        return FoundBundle(referrer.digest, None, reason, referrer.artifact_type)

    if not referrer.may_be_bundle:
        return not_bundle(f"a {referrer.media_type or 'descriptor without a media type'}")
    try:
        manifest = await store.get_manifest(ref.with_digest(referrer.digest))
        artifact = parse_artifact(manifest.data)
        if artifact.layer_size > MAX_BUNDLE_SIZE:
            return not_bundle(f"its bundle layer is over {MAX_BUNDLE_SIZE} bytes")
        data = await store.get_blob(
            ref.registry, ref.repository, artifact.layer_digest, max_size=MAX_BUNDLE_SIZE
        )
        if len(data) != artifact.layer_size:
            return not_bundle("its bundle layer's size does not match the descriptor")
        return FoundBundle(referrer.digest, parse_bundle(data), "", referrer.artifact_type)
    except (ReferrersError, ProtoJsonError) as exc:
        return not_bundle(exc.message)
    except (NotFoundError, DigestMismatchError, TooLargeError) as exc:
        return not_bundle(f"cannot be read: {exc.message}")


class Equivalence:
    """Is a bundle of this key for this digest listed that discovery did not see (another run
    with the same key, at the same time)? Each new entry is read once."""

    def __init__(
        self,
        store: SignatureStore,
        ref: Reference,
        seen: frozenset[str],
        is_ours: Callable[[FoundBundle], bool],
    ) -> None:
        self.store = store
        self.ref = ref
        self.checked = set(seen)  # referrers read already (at discovery, or here)
        self.is_ours = is_ours

    async def found(self, index: ReferrersIndex) -> bool:
        fresh = [r for r in index.referrers if r.digest and r.digest not in self.checked]
        for referrer in fresh:
            self.checked.add(referrer.digest)
            if self.is_ours(await read_referrer(self.store, self.ref, referrer)):
                return True
        return False


class AddReferrer:
    """The change that lists our artifact in the referrers tag schema's index (a Change; see
    AttachmentWriter.apply): added to whatever the tag holds at each fresh read."""

    tag_format = INDEX_TAG

    def __init__(
        self,
        index_ref: Reference,
        entry: dict[str, Any],
        line: str,
        ours: Equivalence | None = None,
    ) -> None:
        self.index_ref = index_ref
        self.entry = entry  # the descriptor of our artifact
        self._line = line
        self.ours = ours  # finds a bundle of this key that another writer listed meanwhile
        self.equivalent = False  # one was found: ours is not listed (a second one is noise)
        self.what = "bundle"
        self.manifest_digest = ""
        self.writes = 0
        self.written_at = 0.0

    @property
    def sig_ref(self) -> Reference:
        return self.index_ref

    @property
    def line(self) -> str:
        return self._line

    @property
    def lock_key(self) -> str:
        return f"{self.index_ref.name}:{self.index_ref.tag}"

    # `attachment`: what INDEX_TAG read, a ReferrersIndex (the protocol names the `.sig` type).
    async def in_place(self, read: TagRead, attachment: Any, *, first: bool) -> bool:
        if read.manifest and lists(attachment, self.entry["digest"]):
            self.manifest_digest = read.manifest.digest
            return True
        if self.ours is not None and attachment is not None and await self.ours.found(attachment):
            # Another run with this key listed its bundle since we looked (as the .sig
            # protocol's equivalence): cosign needs one, a second is noise.
            self.equivalent = True
            self.manifest_digest = read.manifest.digest if read.manifest else ""
            return True
        return False

    async def edit(self, read: TagRead, attachment: Any, *, first: bool, blob_race: bool) -> Edit:
        return Edit(add_referrer(attachment, self.entry))

    async def after_blob_race(self) -> None:
        # distribution refuses an index naming a manifest it lacks: ours was PUT before, so a
        # missing one is another writer's entry, which is never dropped; retrying is all.
        return None

    def gave_up(self, attempts: int) -> HangarError:
        return HangarError(
            f"could not list the bundle of {self.index_ref.name} in tag {self.index_ref.tag}: "
            f"it kept changing under {attempts} concurrent writes, or the registry refuses the "
            "index (it names a manifest the registry no longer has)",
            hint="run the command again; bundles already listed are kept",
        )

    def undone(self, rounds: int) -> HangarError:
        return HangarError(
            f"another writer dropped our bundle from tag {self.index_ref.tag} {rounds} times",
            hint="run the same command again; it adds only what is missing",
        )


class DropReferrers(AddReferrer):
    """The change `sign remove` makes to the fallback index: drop the entries of `digests`
    from whatever the tag holds at each fresh read, every other entry kept as it is. (An
    index left empty stays: the tag is shared, and an empty list means "no referrers".)"""

    def __init__(self, index_ref: Reference, digests: set[str], line: str) -> None:
        super().__init__(index_ref, {}, line)
        self.digests = digests
        self.what = "bundle removal"

    async def in_place(self, read: TagRead, attachment: Any, *, first: bool) -> bool:
        if attachment is None or not any(lists(attachment, d) for d in self.digests):
            self.manifest_digest = read.manifest.digest if read.manifest else ""
            return True
        return False

    async def edit(self, read: TagRead, attachment: Any, *, first: bool, blob_race: bool) -> Edit:
        return Edit(drop_referrers(attachment, self.digests))

    def gave_up(self, attempts: int) -> HangarError:
        return HangarError(
            f"could not remove bundles from tag {self.index_ref.tag} of {self.index_ref.name}: "
            f"it kept changing under {attempts} concurrent writes",
            hint="run the command again; it removes only what is still there",
        )

    def undone(self, rounds: int) -> HangarError:
        return HangarError(
            f"other writers kept listing the removed bundles again in tag {self.index_ref.tag}",
            hint="stop the other signers using that key, then run the same command again",
        )


@dataclass(frozen=True)
class Attached:
    """Where a bundle was attached: its artifact, and how it is listed."""

    artifact: str
    source: Source


class BundleWriter:
    """Attaches bundles: the artifact by digest, then its listing (the registry's own where
    it has the referrers API, else the fallback index through `writer`'s protocol)."""

    def __init__(self, store: BundleStore, writer: AttachmentWriter, api: ReferrersApi) -> None:
        self.store = store
        self.writer = writer
        self.api = api
        # Per repository, the one upload of `{}` every artifact there shares: the targets of
        # an image are attached at once, and two uploads of the same bytes make distribution
        # rewrite the blob's link while the other's artifact PUT checks it (a 400).
        self._empty_config: set[tuple[str, str]] = set()  # repositories holding `{}`
        self._empty_config_uploads: dict[tuple[str, str], asyncio.Future[str]] = {}

    async def attach(
        self,
        ref: Reference,
        subject_digest: str,
        bundle: bytes,
        artifact: bytes,
        line: str,
        ours: Equivalence | None = None,
    ) -> Attached | None:
        """Upload the bundle and the empty config, PUT the artifact by digest, and list it.
        None when, in the fallback index, `ours` found a bundle of this key listed meanwhile
        (our artifact is then deleted again). HangarError when it cannot be written (the line
        fails; nothing else is touched)."""
        store = self.store
        await asyncio.gather(
            store.push_blob(ref.registry, ref.repository, bundle, check_exists=False),
            self._upload_empty_config(ref),
        )
        artifact_ref = ref.with_digest(sha256_digest(artifact))
        await self._put_artifact(artifact_ref, artifact, bundle)
        if self.api.known.get(ref.registry) is None:
            self.api.known[ref.registry] = (
                await store.get_referrers(ref, subject_digest) is not None
            )
        if self.api.known[ref.registry]:
            output.debug(f"{artifact_ref}: listed by the registry's referrers API")
            return Attached(artifact_ref.digest or "", "referrers-api")
        change = AddReferrer(
            ref.with_tag(referrers_tag(subject_digest)), index_entry(artifact), line, ours
        )
        await self.writer.apply(change)
        if change.equivalent:
            output.debug(f"{artifact_ref}: a bundle of this key was listed meanwhile; ours goes")
            with contextlib.suppress(HangarError):  # unlisted, it is invisible anyway
                await store.delete_manifest(artifact_ref, sha256_digest(artifact))
            return None
        return Attached(artifact_ref.digest or "", "referrers-tag")

    async def _upload_empty_config(self, ref: Reference) -> None:
        """The repository's one upload of `{}` (again only after one failed); shielded: one
        artifact given up does not cancel it for the others."""
        repository = (ref.registry, ref.repository)
        if repository in self._empty_config:
            return
        upload = self._empty_config_uploads.get(repository)
        if upload is None:
            upload = asyncio.ensure_future(
                self.store.push_blob(ref.registry, ref.repository, EMPTY_CONFIG)
            )
            self._empty_config_uploads[repository] = upload
            upload.add_done_callback(lambda done: self._uploaded(repository, done))
        await asyncio.shield(upload)

    def _uploaded(self, repository: tuple[str, str], upload: asyncio.Future[str]) -> None:
        del self._empty_config_uploads[repository]
        if not upload.cancelled() and upload.exception() is None:
            self._empty_config.add(repository)

    async def _put_artifact(self, artifact_ref: Reference, artifact: bytes, bundle: bytes) -> None:
        """PUT the artifact by digest. Another writer uploading `{}` (or the same bundle) again
        can make distribution refuse it for a moment (merge.BLOB_RACE_CODES): make sure both
        blobs exist, without uploading what is there, and PUT again."""
        for attempt in range(1, MAX_MERGE_ATTEMPTS + 1):
            try:
                await self.store.put_manifest(artifact_ref, artifact, OCI_MANIFEST)
                return
            except RegistryError as exc:
                if exc.status != 400 or exc.code not in BLOB_RACE_CODES:
                    raise
                if attempt == MAX_MERGE_ATTEMPTS:
                    raise
            output.debug(f"{artifact_ref}: a blob changed under our PUT, again ({attempt})")
            await asyncio.sleep(random.uniform(0, min(merge.MERGE_JITTER * 2**attempt, 1.0)))
            registry, repository = artifact_ref.registry, artifact_ref.repository
            await asyncio.gather(
                self.store.push_blob(registry, repository, bundle),
                self.store.push_blob(registry, repository, EMPTY_CONFIG),
            )
