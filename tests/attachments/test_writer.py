"""The `.sig` write protocol (hangar.attachments.writer) against an in-memory registry that can
put another writer between any two steps, drop, delay or fail a PUT, and answer 404s in any
dialect or falsely. End-to-end behaviour on the real registry is in tests/faults/."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from hangar.attachments import confirm as attachment_confirm
from hangar.attachments import merge as attachment_merge
from hangar.attachments import writer as attachment_writer
from hangar.attachments.journal import WriteJournal, Written
from hangar.attachments.signature import already_signed
from hangar.errors import HangarError
from hangar.reference import Reference
from hangar.registry.errors import RegistryError, ServerError
from hangar.sigstore.attachment import (
    SIGNATURE_ANNOTATION,
    parse_attachment,
    signature_tag,
)
from tests.support.memory_registry import MemoryRegistry, digest_of
from tests.support.write_protocol import (  # noqa: F401 - short_windows: autouse
    DIGEST,
    FRESH_MIN,
    IDENTITY,
    NO_WAIT,
    OURS,
    REGISTRY,
    REPOSITORY,
    SIG_REF,
    THEIRS,
    layer_keys,
    make_key,
    once,
    presign,
    rival_put,
    short_windows,
    signature,
    write,
    writer,
)

# -- the common cases ------------------------------------------------------------------------


def test_a_new_tag_costs_a_read_its_404_check_two_uploads_and_the_put() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)

    async def run() -> list[str]:
        assert await write(ours, signature(OURS)) == "signed"
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert layer_keys(registry) == ["ours"]
    counts = registry.counts()
    assert counts == {"GET tag": 1, "HEAD tag": 2, "PUSH blob": 2, "PUT tag": 1}
    config = json.loads(
        registry.blobs[
            (REPOSITORY, parse_attachment(registry.tag(SIG_REF) or b"").config["digest"])
        ]
    )
    assert config["rootfs"]["diff_ids"] == [signature(OURS).digest]


def test_another_keys_attachment_is_kept_and_extended_without_a_check_before_the_put() -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    before = parse_attachment(registry.tag(SIG_REF) or b"").layers[0].raw
    ours = writer(registry)

    async def run() -> list[str]:
        assert await write(ours, signature(OURS)) == "signed"
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert layer_keys(registry) == ["theirs", "ours"]
    assert parse_attachment(registry.tag(SIG_REF) or b"").layers[0].raw == before
    # the read is the check: one HEAD only, the final one
    assert registry.counts()["HEAD tag"] == 1
    assert registry.counts()["GET tag"] == 1


def test_already_signed_by_this_key_writes_nothing_and_force_signs_again() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS, timestamp=5)
    tag_before = registry.tag(SIG_REF)

    async def run(**options) -> str:
        return await write(writer(registry, **options), signature(OURS, timestamp=6))

    assert asyncio.run(run()) == "already-signed"
    assert registry.tag(SIG_REF) == tag_before
    assert "PUT tag" not in registry.counts()
    assert asyncio.run(run(force=True)) == "signed"
    assert layer_keys(registry) == ["ours", "ours"]


def test_the_same_key_with_another_identity_is_not_already_signed() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS, identity=f"{REGISTRY}/{REPOSITORY}@{DIGEST}")
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert layer_keys(registry) == ["ours", "ours"]


def test_layers_that_cannot_be_ours_are_not_fetched_and_unreadable_ones_are_skipped() -> None:
    registry = MemoryRegistry()
    theirs = presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)  # unreadable below: it cannot be shown to be ours
    attachment = parse_attachment(registry.tag(SIG_REF) or b"")
    document = json.loads(attachment.raw)
    document["layers"].append({"mediaType": "text/plain", "digest": theirs.digest, "size": 3})
    big = dict(document["layers"][0], size=5 * 1024 * 1024)
    document["layers"].append(big)
    registry.store(SIG_REF, json.dumps(document).encode())
    registry.faults.unreadable_blobs.add(attachment.layers[1].digest)

    async def run() -> bool:
        return await already_signed(
            registry,
            SIG_REF,
            parse_attachment(registry.tag(SIG_REF) or b""),
            digest=DIGEST,
            identity=IDENTITY,
            key=OURS.public_key(),
        )

    assert asyncio.run(run()) is False
    # each distinct candidate payload once: theirs and the unreadable one
    assert registry.counts()["GET blob"] == 2


# -- 404s ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["MANIFEST_UNKNOWN", "NOT_FOUND", "UNKNOWN", None])
def test_every_404_dialect_means_not_signed_yet(code: str | None) -> None:
    registry = MemoryRegistry()
    registry.faults.not_found_code = code
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert layer_keys(registry) == ["ours"]


def test_a_false_404_is_caught_by_the_check_beside_the_config_upload(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    registry.faults.false_404 = 1
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert layer_keys(registry) == ["theirs", "ours"]
    assert "changed before our write, merging again" in capsys.readouterr().err


def test_a_false_404_over_our_own_signature_adds_nothing() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS, timestamp=5)
    registry.faults.false_404 = 1
    assert asyncio.run(write(writer(registry), signature(OURS, timestamp=6))) == "already-signed"
    assert layer_keys(registry) == ["ours"]


def test_force_signs_again_where_a_false_404_hid_our_signature() -> None:
    """The check before the write finds the tag: on the fresh read our key's signature is
    there, which force does not count as done."""
    registry = MemoryRegistry()
    presign(registry, OURS, timestamp=5)
    registry.faults.false_404 = 1
    assert asyncio.run(write(writer(registry, force=True), signature(OURS, timestamp=6))) == (
        "signed"
    )
    assert layer_keys(registry) == ["ours", "ours"]


# -- layers the registry cannot serve ----------------------------------------------------------


def unreadable_theirs(registry: MemoryRegistry) -> str:
    """The tag holds THEIRS's signature, whose payload blob the registry answers 404 for."""
    theirs = presign(registry, THEIRS)
    registry.faults.unreadable_blobs.add(theirs.digest)
    return theirs.digest


def test_an_unreadable_layer_is_warned_about_and_ours_is_still_added(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = MemoryRegistry()
    layer = unreadable_theirs(registry)
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert layer_keys(registry) == ["theirs", "ours"]  # theirs kept as it was
    err = capsys.readouterr().err
    assert (
        f"[WARN] {SIG_REF.name}@{DIGEST}: .sig attachment layer 1/1 {layer} "
        "(application/vnd.dev.cosign.simplesigning.v1+json) cannot be read: blob unknown to "
        "registry. podman/CRI-O reject the image"
    ) in err
    assert "repair or remove that layer (hangar keeps every layer it did not write)" in err


def test_a_put_refused_for_a_missing_layer_blob_names_that_layer() -> None:
    """The registry refuses every manifest naming a blob it lacks: when the tag as read has
    such a layer, the blob race is no race, and the error says which layer to repair."""
    registry = MemoryRegistry()
    layer = unreadable_theirs(registry)
    before = registry.tag(SIG_REF)
    registry.faults.blob_race_puts = attachment_merge.MAX_MERGE_ATTEMPTS
    with pytest.raises(HangarError) as raised:
        asyncio.run(write(writer(registry), signature(OURS)))
    assert str(raised.value).startswith(
        f"cannot add a signature: the .sig attachment names layer 1/1 {layer} "
        "(application/vnd.dev.cosign.simplesigning.v1+json), whose blob is not in the registry"
    )
    assert raised.value.hint == "push that blob again, or remove that layer from the .sig tag"
    assert registry.tag(SIG_REF) == before


# -- another writer between any two steps ----------------------------------------------------


@pytest.mark.parametrize(
    ("when", "step"),
    [("after", "GET"), ("after", "HEAD"), ("before", "PUT"), ("after", "PUSH")],
)
@pytest.mark.parametrize("existing", [False, True], ids=["new-tag", "existing-tag"])
def test_a_second_hangar_writing_between_two_steps_loses_nothing(
    when: str, step: str, existing: bool
) -> None:
    """The rival is a whole AttachmentWriter with its own key and its own final check: at the
    end, each key's signature is there exactly once (the first write of one of the two may be
    lost, and is then restored by its writer's confirm)."""
    registry = MemoryRegistry()
    if existing:
        presign(registry, make_key())
    ours, rival = writer(registry), writer(registry, THEIRS)
    registry.on(when, step, once(lambda: write(rival, signature(THEIRS))))

    async def run() -> tuple[list[str], list[str]]:
        assert await write(ours, signature(OURS)) == "signed"
        return await ours.confirm(), await rival.confirm()

    assert asyncio.run(run()) == ([], [])
    assert sorted(layer_keys(registry)) == sorted(["ours", "theirs"] + (["?"] if existing else []))


def test_a_stale_writer_that_drops_ours_after_our_put_is_repaired_by_confirm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its check came before our PUT, its PUT after: our signature is gone until confirm."""
    registry = MemoryRegistry()
    seen: list[bytes | None] = []

    async def read_before(_ref: Reference) -> None:
        seen.append(registry.tag(SIG_REF))

    async def overwrite_after(_ref: Reference) -> None:
        if len(seen) == 1:
            seen.append(rival_put(registry, seen[0], signature(THEIRS)))

    registry.on("before", "PUT", read_before)
    registry.on("after", "PUT", overwrite_after)
    ours = writer(registry)

    async def run() -> list[str]:
        await write(ours, signature(OURS))
        assert layer_keys(registry) == ["theirs"]
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert layer_keys(registry) == ["theirs", "ours"]
    assert "confirm: our signature is missing, writing it again" in capsys.readouterr().err


def test_a_tag_that_moved_on_but_holds_ours_needs_no_rewrite() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)

    async def run() -> list[str]:
        await write(ours, signature(OURS))
        presign(registry, THEIRS)  # merged properly on top of ours
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert layer_keys(registry) == ["ours", "theirs"]
    assert registry.counts()["PUT tag"] == 1


def test_a_writer_that_drops_ours_after_every_check_fails_the_line() -> None:
    """After the final check there is nothing left to do but tell: the line fails."""
    registry = MemoryRegistry()
    ours = writer(registry)

    async def drop_ours(_ref: Reference) -> None:
        rival_put(registry, None, signature(THEIRS))

    async def run() -> list[str]:
        await write(ours, signature(OURS), line="the line")
        rival_put(registry, None, signature(THEIRS))
        registry.on("after", "PUT", drop_ours)  # every rewrite of ours, at once
        return await ours.confirm()

    assert asyncio.run(run()) == ["the line"]
    assert "ours" not in layer_keys(registry)


def test_a_tag_that_vanished_before_the_last_check_fails_the_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attachment_confirm, "CONFIRM_ROUNDS", 1)
    registry = MemoryRegistry()
    ours = writer(registry)

    async def delete(_ref: Reference) -> None:
        registry.manifests.clear()

    async def run() -> list[str]:
        await write(ours, signature(OURS), line="gone")
        rival_put(registry, None, signature(THEIRS))  # round 1 rewrites...
        registry.on("after", "PUT", delete)  # ...and the tag disappears after that write
        return await ours.confirm()

    assert asyncio.run(run()) == ["gone"]


def test_the_last_check_accepts_an_equivalent_signature_of_this_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another run with the same key replaced ours with its own: nothing is missing."""
    monkeypatch.setattr(attachment_confirm, "CONFIRM_ROUNDS", 1)
    registry = MemoryRegistry()
    ours = writer(registry)

    async def replace_with_twin(_ref: Reference) -> None:
        rival_put(registry, None, signature(OURS, timestamp=99))

    async def run() -> list[str]:
        await write(ours, signature(OURS))
        rival_put(registry, None, signature(THEIRS))
        registry.on("after", "PUT", once(lambda: replace_with_twin(SIG_REF)))
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert layer_keys(registry) == ["ours"]


def test_a_tag_that_keeps_changing_gives_up_after_max_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attachment_merge, "MAX_MERGE_ATTEMPTS", 3)
    registry = MemoryRegistry()

    async def churn(_ref: Reference) -> None:
        rival_put(registry, registry.tag(SIG_REF), signature(make_key()))

    registry.on("before", "HEAD", churn)
    with pytest.raises(HangarError, match="kept changing under 3 concurrent writes"):
        asyncio.run(write(writer(registry), signature(OURS)))
    assert "ours" not in layer_keys(registry)


# -- PUTs dropped, delayed, failed, refused ----------------------------------------------------


def test_a_dropped_put_is_written_again_by_confirm() -> None:
    registry = MemoryRegistry()
    registry.faults.drop_puts = 1
    ours = writer(registry)

    async def run() -> list[str]:
        await write(ours, signature(OURS))
        assert registry.tag(SIG_REF) is None
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert layer_keys(registry) == ["ours"]


def test_a_slow_put_lengthens_the_wait_before_the_final_check() -> None:
    registry = MemoryRegistry()
    registry.faults.put_delay = 0.1
    ours = writer(registry)

    async def run() -> list[str]:
        await write(ours, signature(OURS))
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert ours.slowest_put >= 0.1


def test_a_failing_put_is_retried_then_reported() -> None:
    registry = MemoryRegistry()
    registry.faults.fail_puts = 2  # within NO_WAIT's two retries
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    registry = MemoryRegistry()
    registry.faults.fail_puts = 3
    with pytest.raises(ServerError):
        asyncio.run(write(writer(registry), signature(OURS)))
    assert registry.tag(SIG_REF) is None


def test_a_blob_race_uploads_ours_again_if_missing_then_retries() -> None:
    registry = MemoryRegistry()
    registry.faults.blob_race_puts = 1
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert registry.counts()["HEAD blob"] == 2  # our payload and the config, checked
    registry = MemoryRegistry()
    registry.faults.blob_race_puts = attachment_merge.MAX_MERGE_ATTEMPTS
    with pytest.raises(RegistryError, match="blob unknown"):
        asyncio.run(write(writer(registry), signature(OURS)))


def test_another_refusal_of_the_put_is_raised_at_once() -> None:
    registry = MemoryRegistry()
    registry.faults.reject_puts = 1
    with pytest.raises(RegistryError, match="manifest invalid"):
        asyncio.run(write(writer(registry), signature(OURS)))
    assert registry.counts()["PUT tag"] == 1


def test_a_check_gone_stale_during_the_uploads_is_made_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)

    async def stall(_ref: Reference) -> None:
        await asyncio.sleep(FRESH_MIN + 0.05)  # longer than a first check's freshness

    registry.on("after", "PUSH", once(lambda: stall(SIG_REF)))
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert "the check before our write is stale, checking again" in capsys.readouterr().err
    assert registry.counts()["HEAD tag"] == 1
    assert layer_keys(registry) == ["theirs", "ours"]


def test_a_put_past_its_deadline_is_not_sent_and_the_merge_starts_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stall between the last check and the PUT itself (a frozen process)."""
    registry = MemoryRegistry()
    original = registry.put_manifest
    stalled: list[bool] = []

    async def late_put(ref, data, media_type, *, deadline=None):
        if not stalled and deadline is not None:
            stalled.append(True)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
        return await original(ref, data, media_type, deadline=deadline)

    registry.put_manifest = late_put  # type: ignore[method-assign]
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert "the check before our write is stale, merging again" in capsys.readouterr().err


def test_a_final_check_the_registry_refuses_fails_the_line() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)

    async def run() -> list[str]:
        await write(ours, signature(OURS), line="unconfirmed")
        registry.faults.refuse_heads = 1
        return await ours.confirm()

    assert asyncio.run(run()) == ["unconfirmed"]


def test_a_final_check_meeting_an_outage_waits_for_the_registry_then_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def run(registry: MemoryRegistry, failures: int) -> list[str]:
        ours = writer(registry)
        await write(ours, signature(OURS), line="checked")
        registry.faults.fail_heads = failures
        return await ours.confirm()

    registry = MemoryRegistry()
    assert asyncio.run(run(registry, 3)) == []  # 503s within the patience: checked in the end
    assert registry.faults.fail_heads == 0
    monkeypatch.setattr(attachment_confirm, "CONFIRM_PATIENCE", 0.0)
    assert asyncio.run(run(MemoryRegistry(), 1)) == ["checked"]


def test_a_token_expiring_during_the_final_check_does_not_fail_the_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Short-lived tokens on a busy registry: a 401 there says nothing about our signature.
    Credentials refused for longer than the patience still fail the line."""

    async def run(registry: MemoryRegistry, expired: int) -> list[str]:
        ours = writer(registry)
        await write(ours, signature(OURS), line="checked")
        registry.faults.expired_heads = expired
        return await ours.confirm()

    registry = MemoryRegistry()
    assert asyncio.run(run(registry, 2)) == []
    assert registry.faults.expired_heads == 0
    monkeypatch.setattr(attachment_confirm, "CONFIRM_PATIENCE", 0.0)
    assert asyncio.run(run(MemoryRegistry(), 1)) == ["checked"]


# -- the payload upload beside the read --------------------------------------------------------


def test_the_payload_is_uploaded_beside_the_read_until_most_tags_are_signed_already() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS, timestamp=5)
    ours = writer(registry)

    async def run() -> list[str]:
        return [await write(ours, signature(OURS, timestamp=6 + n)) for n in range(2)]

    assert asyncio.run(run()) == ["already-signed", "already-signed"]
    # the first attempt uploaded its payload and a new tag's config beside the read, the
    # second nothing
    assert registry.counts()["PUSH blob"] == 2


def test_a_new_tags_config_goes_beside_the_read_only_while_most_tags_are_new() -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    ours = writer(registry)

    async def run() -> list[int]:
        await write(ours, signature(OURS))  # an existing tag: the new-tag config is wasted
        pushes = [registry.counts()["PUSH blob"]]
        registry.requests.clear()
        assert await write(ours, signature(OURS, timestamp=10)) == "already-signed"
        return [*pushes, registry.counts()["PUSH blob"]]

    # payload, new-tag config, merged config; then the payload only (most tags existed)
    assert asyncio.run(run()) == [3, 1]


def test_a_failed_read_does_not_leave_the_payload_upload_behind() -> None:
    registry = MemoryRegistry()

    async def fail(_ref: Reference) -> None:
        raise ServerError("GET failed with HTTP 503", registry=REGISTRY, status=503)

    registry.on("before", "GET", fail)

    async def run() -> set[asyncio.Task]:
        with pytest.raises(ServerError):
            await write(writer(registry), signature(OURS))
        return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}

    assert asyncio.run(run()) == set()


def test_an_unneeded_payload_upload_that_fails_changes_nothing() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS, timestamp=5)

    async def fail(_ref: Reference) -> None:
        raise ServerError("upload failed", registry=REGISTRY, status=503)

    registry.on("before", "PUSH", fail)
    assert asyncio.run(write(writer(registry), signature(OURS, timestamp=6))) == "already-signed"


# -- the journal --------------------------------------------------------------------------------


def test_confirm_reads_the_journal_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachment_writer, "CONFIRM_BATCH", 2)
    registry = MemoryRegistry()
    ours = writer(registry)
    digests = ["sha256:" + f"{n:02x}" * 32 for n in range(5)]

    async def run() -> list[str]:
        for digest in digests:
            ref = Reference(REGISTRY, REPOSITORY, signature_tag(digest), None)
            await ours.write(ref, digest, IDENTITY, signature(OURS), line=digest)
        registry.manifests.pop((REPOSITORY, signature_tag(digests[3])))
        registry.faults.fail_heads = 0
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert ours.journal.count == 5
    # 404 checks, final checks, the check before the rewrite, and the rewrite's final check
    assert registry.counts()["HEAD tag"] == 5 + 5 + 1 + 1
    assert (REPOSITORY, signature_tag(digests[3])) in registry.manifests


def test_a_signature_annotation_identifies_our_layer_exactly() -> None:
    registry = MemoryRegistry()
    new = signature(OURS)
    rival_put(registry, None, new)
    document = json.loads(registry.tag(SIG_REF) or b"")
    document["layers"][0]["annotations"][SIGNATURE_ANNOTATION] = base64.b64encode(b"x").decode()
    registry.store(SIG_REF, json.dumps(document).encode())
    ours = writer(registry, force=True)
    assert asyncio.run(write(ours, new)) == "signed"
    assert len(parse_attachment(registry.tag(SIG_REF) or b"").layers) == 2
    assert digest_of(new.payload) == new.digest


def test_writes_to_one_tag_in_one_run_wait_for_each_other() -> None:
    """The same digest twice in a list: the second write sees the first."""
    registry = MemoryRegistry()
    ours = writer(registry)

    async def run() -> list[str]:
        return list(
            await asyncio.gather(
                write(ours, signature(OURS)), write(ours, signature(OURS, timestamp=2))
            )
        )

    assert asyncio.run(run()) == ["signed", "already-signed"]
    assert layer_keys(registry) == ["ours"]
    assert ours.locks._locks == {}


def test_without_speculation_the_payload_follows_the_read() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS, timestamp=5)
    ours = writer(registry)
    other = Reference(REGISTRY, REPOSITORY, signature_tag("sha256:" + "cd" * 32), None)

    async def run() -> str:
        await write(ours, signature(OURS, timestamp=6))
        await write(ours, signature(OURS, timestamp=7))  # speculation is off from here
        registry.requests.clear()
        return await ours.write(other, "sha256:" + "cd" * 32, IDENTITY, signature(OURS), "l")

    assert asyncio.run(run()) == "signed"
    assert registry.requests[:2] == ["GET tag", "PUSH blob"]


def test_a_failed_read_without_speculation_raises_as_is() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS, timestamp=5)
    ours = writer(registry)

    async def fail(_ref: Reference) -> None:
        raise ServerError("GET failed with HTTP 503", registry=REGISTRY, status=503)

    async def run() -> None:
        await write(ours, signature(OURS, timestamp=6))
        registry.on("before", "GET", fail)
        await write(ours, signature(OURS, timestamp=7))

    with pytest.raises(ServerError, match="GET failed"):
        asyncio.run(run())


@pytest.mark.parametrize("existing", [False, True], ids=["new-tag", "existing-tag"])
def test_a_failed_config_upload_fails_the_write_and_leaves_no_task(existing: bool) -> None:
    """Every upload after the payload fails: the config a new tag gets (uploaded beside the
    read), and the merged one of an existing tag."""
    registry = MemoryRegistry()
    if existing:
        presign(registry, THEIRS)
    pushes: list[str] = []

    async def configs_fail(_ref: Reference) -> None:
        pushes.append("push")
        if len(pushes) >= 2:
            raise ServerError("upload failed", registry=REGISTRY, status=503)

    registry.on("before", "PUSH", configs_fail)

    async def run() -> set[asyncio.Task]:
        with pytest.raises(ServerError, match="upload failed"):
            await write(writer(registry), signature(OURS))
        return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}

    assert asyncio.run(run()) == set()
    assert "ours" not in layer_keys(registry)


def test_only_the_checks_the_registry_could_not_answer_fail_when_patience_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attachment_confirm, "CONFIRM_PATIENCE", 0.0)
    registry = MemoryRegistry()
    ours = writer(registry)
    digests = ["sha256:" + f"{n:02x}" * 32 for n in range(2)]

    async def run() -> list[str]:
        for digest in digests:
            ref = Reference(REGISTRY, REPOSITORY, signature_tag(digest), None)
            await ours.write(ref, digest, IDENTITY, signature(OURS), line=digest)
        registry.faults.fail_heads = 1
        return await ours.confirm()

    assert asyncio.run(run()) == digests[:1]


def test_the_journal_gives_back_what_was_appended_in_order() -> None:
    journal = WriteJournal()
    assert list(journal.batches(2)) == []
    items = [
        Written(SIG_REF, DIGEST, IDENTITY, signature(OURS, timestamp=n), f"line {n}", "d", n)
        for n in range(3)
    ]
    for item in items:
        journal.append(item)
    assert [len(batch) for batch in journal.batches(2)] == [2, 1]
    journal.append(items[0])  # appends go on after a read
    assert [item for batch in journal.batches(10) for item in batch] == [*items, items[0]]
    journal.close()
    journal.close()


def test_a_journal_whose_records_fill_the_last_batch_gives_no_empty_batch() -> None:
    journal = WriteJournal()
    items = [
        Written(SIG_REF, DIGEST, IDENTITY, signature(OURS, timestamp=n), f"line {n}", "d", n)
        for n in range(4)
    ]
    for item in items[:2]:
        journal.append(item)
    assert [[item.line for item in batch] for batch in journal.batches(2)] == [["line 0", "line 1"]]
    for item in items[2:]:  # appends still go on at the end after a read that ended full
        journal.append(item)
    assert [[item.line for item in batch] for batch in journal.batches(2)] == [
        ["line 0", "line 1"],
        ["line 2", "line 3"],
    ]
    journal.close()


def test_a_stall_during_the_check_itself_does_not_stretch_its_freshness() -> None:
    """A process frozen while its 404 check was in flight: meanwhile another writer created
    the tag. The stalled round trip must not make that old check look fresh (it once did, as
    the median round trip grew with the stall) or the PUT would wipe the other signature."""
    registry = MemoryRegistry()

    async def frozen_meanwhile() -> None:
        rival_put(registry, None, signature(THEIRS))
        await asyncio.sleep(FRESH_MIN + 0.05)

    registry.on("after", "HEAD", once(frozen_meanwhile))
    assert asyncio.run(write(writer(registry), signature(OURS))) == "signed"
    assert layer_keys(registry) == ["theirs", "ours"]


# -- the final check's timing ------------------------------------------------------------------


def test_each_tag_is_checked_once_the_settle_time_has_passed_since_its_own_write() -> None:
    """A tag written early in the run is checked at once at the end; the last one written waits
    the whole settle time after its write (what another writer's stale PUT needs to land)."""
    registry = MemoryRegistry()
    ours = writer(registry)
    early_ref = SIG_REF.with_tag("sha256-" + "cd" * 32 + ".sig")
    heads: dict[str, float] = {}

    async def head_time(ref: Reference) -> None:
        heads.setdefault(str(ref.tag), time.monotonic())

    async def run() -> tuple[float, float, list[str]]:
        assert await ours.write(early_ref, DIGEST, IDENTITY, signature(OURS), "early") == "signed"
        await asyncio.sleep(FRESH_MIN * 2)
        assert await write(ours, signature(OURS), "late") == "signed"
        registry.on("before", "HEAD", head_time)
        confirm_started = time.monotonic()
        return confirm_started, ours.last_write, await ours.confirm()

    confirm_started, last_write, lost = asyncio.run(run())
    assert lost == []
    settle = FRESH_MIN  # fresh_for (at least FRESH_MIN) + 2 x the slowest PUT (~0 here)
    assert heads[str(early_ref.tag)] - confirm_started < settle / 2  # not held for the last
    assert heads[str(SIG_REF.tag)] >= last_write + settle
