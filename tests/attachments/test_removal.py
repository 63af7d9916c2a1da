"""Removal (hangar.operations.removal.DropLayers) through the `.sig` write protocol, against
the in-memory registry that puts another writer between any two steps. End to end:
tests/cli/test_remove.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from hangar.attachments import confirm as attachment_confirm
from hangar.attachments import merge as attachment_merge
from hangar.attachments.writer import AttachmentWriter
from hangar.errors import HangarError
from hangar.operations.removal import DropLayers, RemovalRule
from hangar.reference import Reference
from hangar.registry.errors import ServerError
from hangar.sigstore.attachment import parse_attachment
from tests.support.memory_registry import MemoryRegistry
from tests.support.write_protocol import (  # noqa: F401 - short_windows: autouse here too
    FRESH_MIN,
    OURS,
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
    writer,
)

OTHER = make_key()  # a third signer, writing while we remove
REMOVE_OURS = RemovalRule(remove_keys=(OURS.public_key(),))


async def remove(
    target: AttachmentWriter, registry: MemoryRegistry, rule: RemovalRule = REMOVE_OURS
) -> tuple[DropLayers, bool, list[str]]:
    change = DropLayers(registry, SIG_REF, rule, "line")
    wrote = await target.apply(change)
    change.release()  # as `sign remove` does: confirm reads again what it needs
    return change, wrote, await target.confirm()


def run_remove(
    registry: MemoryRegistry, rule: RemovalRule = REMOVE_OURS
) -> tuple[DropLayers, bool, list[str]]:
    return asyncio.run(remove(writer(registry), registry, rule))


def config_of(registry: MemoryRegistry) -> dict:
    attachment = parse_attachment(registry.tag(SIG_REF) or b"")
    return json.loads(registry.blobs[(REPOSITORY, attachment.config["digest"])])


def test_the_keys_layers_go_and_every_other_layer_stays_byte_for_byte() -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)
    presign(registry, THEIRS, timestamp=3)
    before = json.loads(registry.tag(SIG_REF) or b"")
    change, wrote, lost = run_remove(registry)
    assert (wrote, lost, change.deleted) == (True, [], False)
    assert [match.index for match in change.last_edit] == [1]
    assert layer_keys(registry) == ["theirs", "theirs"]
    after = json.loads(registry.tag(SIG_REF) or b"")
    assert after["layers"] == [before["layers"][0], before["layers"][2]]
    assert config_of(registry)["rootfs"]["diff_ids"] == [
        layer["digest"] for layer in after["layers"]
    ]


def test_a_second_run_has_nothing_to_remove_and_writes_nothing() -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)
    run_remove(registry)
    registry.requests.clear()
    _change, wrote, lost = run_remove(registry)
    assert (wrote, lost) == (False, [])
    assert "PUT tag" not in registry.counts() and "DELETE tag" not in registry.counts()


def test_a_signature_added_between_our_read_and_our_write_is_kept() -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)

    async def third_signer() -> None:
        rival_put(registry, registry.tag(SIG_REF), signature(OTHER))

    registry.on("after", "GET", once(third_signer))
    _change, wrote, lost = run_remove(registry)
    assert (wrote, lost) == (True, [])
    assert layer_keys(registry) == ["theirs", "?"]  # ours gone, the third key's kept


def test_our_key_signing_again_between_read_and_write_is_removed_too() -> None:
    """The rule is judged on every fresh read, not on the first one only."""
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)

    async def old_key_again() -> None:
        rival_put(registry, registry.tag(SIG_REF), signature(OURS, timestamp=9))

    registry.on("after", "GET", once(old_key_again))
    _change, _wrote, lost = run_remove(registry)
    assert lost == []
    assert layer_keys(registry) == ["theirs"]


def test_nothing_remaining_deletes_the_tag() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS)
    change, wrote, lost = run_remove(registry)
    assert (wrote, lost, change.deleted) == (True, [], True)
    assert registry.tag(SIG_REF) is None
    assert registry.counts()["DELETE tag"] == 1


def test_a_signature_added_before_our_delete_survives_it() -> None:
    """The DELETE names the digest we read: a tag another writer moved on is not deleted,
    and the merge loop then drops only our layer from what is there now."""
    registry = MemoryRegistry()
    presign(registry, OURS)

    async def third_signer(_ref: Reference) -> None:
        if registry.counts()["DELETE tag"] == 0:
            rival_put(registry, registry.tag(SIG_REF), signature(OTHER))

    registry.on("before", "DELETE", third_signer)
    change, wrote, lost = run_remove(registry)
    assert (wrote, lost, change.deleted) == (True, [], False)
    assert layer_keys(registry) == ["?"]


def test_a_stale_writer_putting_our_old_layers_back_is_undone_by_confirm() -> None:
    """Its check came before our PUT and its PUT after: the removed layer is back until
    confirm reads the tag again, judges it again and removes it."""
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)
    seen = registry.tag(SIG_REF)

    async def stale_merge() -> None:
        rival_put(registry, seen, signature(OTHER))

    registry.on("after", "PUT", once(stale_merge))
    _change, _wrote, lost = run_remove(registry)
    assert lost == []
    assert layer_keys(registry) == ["theirs", "?"]


def test_a_tag_that_does_not_exist_has_nothing_to_remove() -> None:
    registry = MemoryRegistry()
    change, wrote, lost = run_remove(registry)
    assert (wrote, lost, change.deleted, change.last_edit) == (False, [], False, [])
    assert registry.counts() == {"GET tag": 1}


def test_a_tag_deleted_by_another_writer_before_our_delete_is_left_gone() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS)

    async def other_remover() -> None:
        registry.manifests.clear()

    registry.on("before", "DELETE", once(other_remover))
    _change, wrote, lost = run_remove(registry)
    assert (wrote, lost) == (False, [])  # the DELETE met a 404; the read again: no tag
    assert registry.tag(SIG_REF) is None


def test_a_delete_whose_check_went_stale_is_not_sent_and_the_merge_starts_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = MemoryRegistry()
    presign(registry, OURS)

    async def stall() -> None:
        await asyncio.sleep(FRESH_MIN + 0.05)  # longer than the check's freshness

    registry.on("after", "HEAD", once(stall))
    change, wrote, lost = run_remove(registry)
    assert (wrote, lost, change.deleted) == (True, [], True)
    assert registry.tag(SIG_REF) is None
    assert registry.counts()["DELETE tag"] == 1  # the stale one was never sent
    assert "the check before our write is stale, merging again" in capsys.readouterr().err


def test_a_failing_delete_is_retried_then_reported(capsys: pytest.CaptureFixture[str]) -> None:
    registry = MemoryRegistry()
    presign(registry, OURS)
    registry.faults.fail_deletes = 2  # within NO_WAIT's two retries
    change, _wrote, lost = run_remove(registry)
    assert (lost, change.deleted, registry.tag(SIG_REF)) == ([], True, None)
    assert "our write failed, checking again" in capsys.readouterr().err
    registry = MemoryRegistry()
    presign(registry, OURS)
    registry.faults.fail_deletes = 3
    with pytest.raises(ServerError, match="DELETE failed with HTTP 503"):
        run_remove(registry)
    assert layer_keys(registry) == ["ours"]


def test_a_blob_race_on_our_put_is_written_again() -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)
    registry.faults.blob_race_puts = 1
    _change, wrote, lost = run_remove(registry)
    assert (wrote, lost) == (True, [])
    assert layer_keys(registry) == ["theirs"]
    assert registry.counts()["PUT tag"] == 2


def test_a_tag_that_keeps_changing_gives_up_and_says_to_run_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attachment_merge, "MAX_MERGE_ATTEMPTS", 3)
    registry = MemoryRegistry()
    presign(registry, OURS)

    async def churn(_ref: Reference) -> None:
        rival_put(registry, registry.tag(SIG_REF), signature(make_key()))

    registry.on("before", "HEAD", churn)
    with pytest.raises(HangarError) as raised:
        run_remove(registry)
    assert str(raised.value) == (
        f"could not remove signatures from {SIG_REF.name} tag {SIG_REF.tag}: it kept changing "
        "under 3 concurrent writes (run the command again; it removes only what is still there)"
    )
    assert layer_keys(registry) == ["ours", "?", "?", "?"]


def test_writers_putting_our_layer_back_after_every_round_fail_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Confirm removes it again once; a final check that still finds it fails the line."""
    monkeypatch.setattr(attachment_confirm, "CONFIRM_ROUNDS", 1)
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)
    ours = writer(registry)

    async def put_ours_back(_ref: Reference) -> None:
        rival_put(registry, registry.tag(SIG_REF), signature(OURS, timestamp=9))

    async def run() -> tuple[bool, list[str]]:
        wrote = await ours.apply(DropLayers(registry, SIG_REF, REMOVE_OURS, "the line"))
        await put_ours_back(SIG_REF)
        registry.on("after", "PUT", put_ours_back)  # after every removal of ours
        return wrote, await ours.confirm()

    assert asyncio.run(run()) == (True, ["the line"])
    assert layer_keys(registry) == ["theirs", "ours"]
    assert (
        f"[ERRO] {SIG_REF}: other writers kept putting back the signatures removed from tag "
        f"{SIG_REF.tag} of {SIG_REF.name} (stop the other signers using that key"
    ) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rule", "removed"),
    [
        (RemovalRule(keep_keys=(THEIRS.public_key(),), unverified=True), True),
        (REMOVE_OURS, False),
    ],
    ids=["unverified", "remove-key"],
)
def test_a_layer_whose_payload_cannot_be_read_verifies_with_no_key(
    rule: RemovalRule, removed: bool
) -> None:
    """It goes where unverified layers go, and stays where one key's layers go (it cannot be
    shown to be that key's)."""
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    unreadable = presign(registry, THEIRS, timestamp=2)
    registry.faults.unreadable_blobs.add(unreadable.digest)
    change, wrote, lost = run_remove(registry, rule)
    assert (wrote, lost) == (removed, [])
    assert layer_keys(registry) == (["theirs"] if removed else ["theirs", "theirs"])
    if removed:
        assert [(m.index, m.reason) for m in change.last_edit] == [
            (1, "verifies with none of the kept keys")
        ]


def test_a_registry_refusing_deletes_fails_with_what_to_enable() -> None:
    registry = MemoryRegistry()
    presign(registry, OURS)
    registry.faults.refuse_deletes = True
    with pytest.raises(HangarError, match="deletes refused"):
        run_remove(registry)
    assert layer_keys(registry) == ["ours"]


def test_all_removes_signatures_only_and_unverified_keeps_the_kept_keys() -> None:
    registry = MemoryRegistry()
    presign(registry, THEIRS)
    presign(registry, OURS, timestamp=2)
    document = json.loads(registry.tag(SIG_REF) or b"")
    attestation = {"mediaType": "application/vnd.in-toto+json", "digest": "sha256:" + "1" * 64}
    document["layers"].append(attestation)
    config = config_of(registry)
    config["rootfs"]["diff_ids"].append(attestation["digest"])
    config_digest = registry.add_blob(REPOSITORY, json.dumps(config).encode())
    document["config"]["digest"] = config_digest
    registry.store(SIG_REF, json.dumps(document).encode())

    unverified = RemovalRule(keep_keys=(THEIRS.public_key(),), unverified=True)
    run_remove(registry, unverified)
    assert [layer["mediaType"] for layer in json.loads(registry.tag(SIG_REF) or b"")["layers"]][
        -1
    ] == attestation["mediaType"]
    assert layer_keys_signed(registry) == ["theirs"]
    change, _wrote, _lost = run_remove(registry, RemovalRule(everything=True))
    assert change.deleted is False
    remaining = json.loads(registry.tag(SIG_REF) or b"")["layers"]
    assert remaining == [attestation]
    assert config_of(registry)["rootfs"]["diff_ids"] == [attestation["digest"]]


def layer_keys_signed(registry: MemoryRegistry) -> list[str]:
    """layer_keys for the signature layers only."""
    document = json.loads(registry.tag(SIG_REF) or b"")
    signed = [
        layer
        for layer in document["layers"]
        if layer["mediaType"] != "application/vnd.in-toto+json"
    ]
    kept = dict(document, layers=signed)
    probe = MemoryRegistry()
    probe.blobs = registry.blobs
    probe.store(SIG_REF, json.dumps(kept).encode())
    return layer_keys(probe)
