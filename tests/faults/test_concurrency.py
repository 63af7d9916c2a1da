"""Several `hangar sign` processes on the same images at once, each with its own key.

distribution 2.8 has no conditional PUT, so a `.sig` tag is a read-modify-write target that two
writers can each read and then overwrite with their own merge, dropping the other's signature.
hangar narrows that window (a HEAD just before the PUT, a read-back just after it, a final
`confirm` pass over every tag it wrote, merging again wherever its signature went missing).
These tests put that to work under real contention: -j 20 per process, about 30 multi-arch
images, every digest written by every process at nearly the same moment. At the end every
digest (each default platform and the index) must carry each key's signature exactly once,
and a second round of the same four runs must change nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from hangar.attachments import merge as attachment_merge
from tests.faults import layer_keys, sign_targets
from tests.support.bundles import check_bundle, read_referrers
from tests.support.cli import (
    HANGAR,
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    KEY2,
    KEY2_PASS,
    KEY2_PUB,
    check_payload,
    hangar_env,
    read_attachment,
    run_hangar,
    sign_args,
    verify_with,
)
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import PushedImage, push_image
from tests.support.paths import VECTORS
from tests.support.registry import RegistryServer

IMAGE_COUNT = 30
JOBS = "20"
RUN_TIMEOUT = 300


@dataclass(frozen=True)
class Key:
    name: str
    private: Path
    passphrase: Path
    public: Path


@dataclass
class Finished:
    key: Key
    code: int
    stderr: str
    elapsed: float

    def problems(self) -> str:
        """The error lines (the debug log is too long for an assertion message)."""
        lines = self.stderr.splitlines()
        return "\n".join(line for line in lines if line.startswith(("[ERRO]", "[WARN]")))


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def keys(home: Path, tmp_path: Path) -> list[Key]:
    """key1..key3 from the vectors (key3's passphrase has surrounding spaces), and a fourth
    made by `hangar generate-sigstore-key`."""
    cimage = VECTORS / "cimage-keys"
    passphrase = tmp_path / "key4.passphrase"
    passphrase.write_text("fourth key passphrase\n")
    prefix = tmp_path / "key4"
    made = run_hangar(
        ["generate-sigstore-key", "--prefix", str(prefix), "--passphrase-file", str(passphrase)],
        home,
    )
    assert made.returncode == 0, made.stderr
    return [
        Key("key1", KEY1, KEY1_PASS, KEY1_PUB),
        Key("key2", KEY2, KEY2_PASS, KEY2_PUB),
        Key("key3", cimage / "key3.private", cimage / "key3.passphrase", cimage / "key3.pub"),
        Key("key4", prefix.with_suffix(".key"), passphrase, prefix.with_suffix(".pub")),
    ]


@pytest.fixture
def registry(make_registry) -> RegistryServer:
    return make_registry("http")


@pytest.fixture
def images(registry: RegistryServer) -> list[PushedImage]:
    prefix = f"race/{uuid.uuid4().hex[:6]}"
    return [
        push_image(
            registry,
            f"{prefix}/app-{number}",
            "v1",
            kind="docker-list" if number % 2 else "oci-index",
        )
        for number in range(IMAGE_COUNT)
    ]


def line(registry: RegistryServer, image: PushedImage) -> str:
    return f"{registry.host}/{image.repository}:{image.tag}"


def write_list(path: Path, registry: RegistryServer, chosen: list[PushedImage]) -> Path:
    path.write_text("".join(line(registry, image) + "\n" for image in chosen))
    return path


@dataclass
class Started:
    key: Key
    process: subprocess.Popen[str]
    log: Path
    began: float


def start_together(
    registry: RegistryServer,
    home: Path,
    work: Path,
    plans: list[tuple[Key, Path]],
    extra: tuple[str, ...] = (),
) -> list[Started]:
    """Start one `hangar sign -j 20 --debug` per (key, list), all at once.

    stderr goes to files: a pipe nobody reads while waiting for another process fills up,
    and the process then freezes mid-run on its next log line.
    """
    started = []
    for key, list_file in plans:
        failed = work / f"failed-{key.name}.txt"
        args = sign_args(
            list_file,
            registry,
            "-j",
            JOBS,
            "-o",
            str(failed),
            "--debug",
            *extra,
            key=key.private,
            passphrase=key.passphrase,
        )
        log = work / f"stderr-{key.name}-{time.monotonic_ns()}.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [HANGAR, *args],
                cwd=work,
                env=hangar_env(home),
                text=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        started.append(Started(key, process, log, time.monotonic()))
    return started


def wait_all(started: list[Started]) -> list[Finished]:
    """Wait for every process (killing any still running after RUN_TIMEOUT)."""
    ended: dict[int, float] = {}
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while len(ended) < len(started) and time.monotonic() < deadline:
            for number, run in enumerate(started):
                if number not in ended and run.process.poll() is not None:
                    ended[number] = time.monotonic()
            time.sleep(0.05)
    finally:
        for run in started:
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()
    return [
        Finished(
            run.key,
            run.process.returncode,
            run.log.read_text(),
            ended.get(number, time.monotonic()) - run.began,
        )
        for number, run in enumerate(started)
    ]


def run_together(
    registry: RegistryServer,
    home: Path,
    work: Path,
    plans: list[tuple[Key, Path]],
    extra: tuple[str, ...] = (),
) -> list[Finished]:
    return wait_all(start_together(registry, home, work, plans, extra))


def keys_on(
    registry: RegistryServer, image: PushedImage, digest: str, keys: list[Key]
) -> list[str]:
    """The key of every layer on `digest`'s attachment, sorted; each payload checked too."""
    _, config, layers = read_attachment(registry, image.repository, digest)
    assert config["rootfs"]["diff_ids"] == [layer.descriptor["digest"] for layer in layers]
    names = []
    for layer in layers:
        matching = [k.name for k in keys if verify_with(k.public, layer.signature, layer.payload)]
        assert len(matching) == 1, (image.repository, digest, matching)
        check_payload(layer.payload, line(registry, image), digest)
        names.append(matching[0])
    return sorted(names)


def check_every_digest(
    registry: RegistryServer,
    images: list[PushedImage],
    expected: dict[int, list[str]],
    keys: list[Key],
) -> None:
    """`expected[n]`: the key names image n must carry, each exactly once, on every target."""
    problems = []
    for number, image in enumerate(images):
        for digest in sign_targets(image):
            found = keys_on(registry, image, digest, keys)
            if found != sorted(expected[number]):
                problems.append(f"{image.repository}@{digest}: {found}")
    assert not problems, "signatures lost or doubled:\n" + "\n".join(problems)


def report(name: str, runs: list[Finished]) -> None:
    parts = [
        f"{run.key.name}: exit={run.code} {run.elapsed:.1f}s "
        f"merges={run.stderr.count('merging again')} "
        f"stale_checks={run.stderr.count('check before our write is stale')} "
        f"blob_races={run.stderr.count('a blob changed under our write')} "
        f"confirm_restored={run.stderr.count('confirm: our signature is missing')}"
        for run in runs
    ]
    print(f"RACE {name}: " + "; ".join(parts))


def test_two_processes_on_overlapping_lists(
    registry: RegistryServer,
    images: list[PushedImage],
    keys: list[Key],
    home: Path,
    tmp_path: Path,
) -> None:
    key1, key2 = keys[:2]
    first = write_list(tmp_path / "first", registry, images[:20])
    second = write_list(tmp_path / "second", registry, images[10:])
    runs = run_together(registry, home, tmp_path, [(key1, first), (key2, second)])
    report("2 processes", runs)
    for run in runs:
        assert run.code == 0, run.problems()
        assert "Summary: 20 images: 20 signed" in run.stderr
    expected = {
        n: (["key1"] if n < 10 else ["key1", "key2"] if n < 20 else ["key2"])
        for n in range(IMAGE_COUNT)
    }
    check_every_digest(registry, images, expected, keys)


def test_four_processes_four_keys_then_again(
    registry: RegistryServer,
    images: list[PushedImage],
    keys: list[Key],
    home: Path,
    tmp_path: Path,
) -> None:
    # The same 30 images in four orders; key1 and key4 share one, to collide head-on.
    orders = [images, images[::-1], images[10:] + images[:10], images]
    plans = [
        (key, write_list(tmp_path / f"list-{key.name}", registry, order))
        for key, order in zip(keys, orders, strict=True)
    ]
    runs = run_together(registry, home, tmp_path, plans)
    report("4 processes", runs)
    for run in runs:
        assert run.code == 0, run.problems()
        assert f"Summary: {IMAGE_COUNT} images: {IMAGE_COUNT} signed" in run.stderr
    everyone = {n: [key.name for key in keys] for n in range(IMAGE_COUNT)}
    check_every_digest(registry, images, everyone, keys)
    # Idempotent: the same four runs again write nothing.
    again = run_together(registry, home, tmp_path, plans)
    report("4 processes again", again)
    for run in again:
        assert run.code == 0, run.problems()
        assert f"{IMAGE_COUNT} already signed" in run.stderr
        assert "0 signatures written" in run.stderr
        assert run.stderr.count("Already signed [") == 3 * IMAGE_COUNT
    check_every_digest(registry, images, everyone, keys)


def _freeze_repeatedly(process: subprocess.Popen[str], stop: float, run: float) -> int:
    """SIGSTOP `process` for `stop` seconds every `stop + run` seconds until it exits;
    returns how many times it was frozen."""
    frozen = 0
    while process.poll() is None:
        time.sleep(run)
        try:
            os.kill(process.pid, signal.SIGSTOP)
        except ProcessLookupError:
            break
        frozen += 1
        time.sleep(stop)
        try:
            os.kill(process.pid, signal.SIGCONT)
        except ProcessLookupError:
            break
    return frozen


def test_a_writer_frozen_again_and_again_drops_nobody(
    registry: RegistryServer,
    images: list[PushedImage],
    keys: list[Key],
    home: Path,
    tmp_path: Path,
) -> None:
    """One of three processes is frozen for 1 s every 1.3 s (as a swapped-out process, one
    stopped in a debugger, or one blocked on a full stderr pipe): whenever a freeze falls
    between its check of a tag and its write, that write would be based on a stale read and
    wipe what the others wrote meanwhile. (This happened: a run whose stderr pipe filled up
    lost three keys' signatures on one tag.) The stale check is refused instead."""
    plans = [(key, write_list(tmp_path / f"list-{key.name}", registry, images)) for key in keys[:3]]
    started = start_together(registry, home, tmp_path, plans)
    frozen: list[int] = []
    freezer = threading.Thread(
        target=lambda: frozen.append(_freeze_repeatedly(started[1].process, 1.0, 0.3)),
        name="freezer",
        daemon=True,
    )
    freezer.start()
    try:
        runs = wait_all(started)
    finally:
        if started[1].process.poll() is None:
            os.kill(started[1].process.pid, signal.SIGCONT)
        freezer.join(10)
    report(f"frozen {frozen[0] if frozen else '?'} times", runs)
    for run in runs:
        assert run.code == 0, run.problems()
    trio = {n: ["key1", "key2", "key3"] for n in range(IMAGE_COUNT)}
    check_every_digest(registry, images, trio, keys)


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _stopped(process: subprocess.Popen[str]) -> bool:
    """Has SIGSTOP taken effect (state T in /proc)? Until then the process may still run."""
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "T"


def _stale_by(proxy: FaultProxy, held_at: float) -> float:
    """A time (time.monotonic(): one clock for every process) by which key2's check of the tag,
    held by the proxy since before `held_at`, is past the freshness hangar gives it.

    A check is fresh for max(CHECK_FRESH_MIN, CHECK_FRESH_RTTS x a typical tag read) from when
    it was sent. key2's tag reads before it were sent after its first request reached the proxy
    and answered before the check was sent: each lasted less than `held_at` minus that first
    arrival. A bound from what the proxy saw, however loaded the machine."""
    first = min(request.ts for request in proxy.requests)
    rtt = held_at - first
    return held_at + max(attachment_merge.CHECK_FRESH_MIN, attachment_merge.CHECK_FRESH_RTTS * rtt)


def test_a_write_whose_check_went_stale_is_not_made(
    registry: RegistryServer, keys: list[Key], home: Path, tmp_path: Path
) -> None:
    """key2 checks the tag (its HEAD before the PUT) and is frozen before it can act on
    the answer; meanwhile key1 and key3 sign the same image, confirm and exit. A PUT made on
    that answer would wipe both for good, nobody being left to restore them. hangar refuses to
    send a write whose check is older than a few round trips (CHECK_FRESH_RTTS), reads
    the tag again and merges.
    (A run whose stderr pipe filled up froze like this and lost three keys' signatures.)

    Each step waits for an event (the proxy holding the check, the freeze taking effect, the
    check's freshness running out), not a fixed time: the same steps on a loaded machine."""
    image = push_image(registry, f"race/{uuid.uuid4().hex[:6]}/stale", "v1")
    key1, key2, key3 = keys[:3]
    sig_head = r"/manifests/sha256-[0-9a-f]{64}\.sig$"
    with FaultProxy.in_front_of(registry) as proxy:
        # Holds key2's first check until key2 is frozen.
        hold = proxy.add_rule(Rule(method="HEAD", path_regex=sig_head, action="hold", times=1))
        via_proxy = proxy.proxied(registry)
        slow = start_together(
            via_proxy, home, tmp_path, [(key2, write_list(tmp_path / "slow", via_proxy, [image]))]
        )
        process = slow[0].process
        try:
            # The rule holds one check (hits); the checks of the image's other targets, sent at
            # the same moment, pass it spent (seen counts those too).
            _wait_for(lambda: proxy.hits(hold) == 1, "key2's check of the tag")
            stale_by = _stale_by(proxy, time.monotonic())
            os.kill(process.pid, signal.SIGSTOP)
            _wait_for(lambda: _stopped(process), "key2 to stop")
            proxy.release(hold)
            # The registry answered (the tag as it was then); key2 has not read the answer.
            _wait_for(lambda: proxy.answered(hold) == 1, "the answer to key2's check")
            direct = write_list(tmp_path / "direct", registry, [image])
            fast = run_together(registry, home, tmp_path, [(key1, direct), (key3, direct)])
            # Both are done (confirmed, exited); key2's check must be past its freshness too.
            time.sleep(max(0.0, stale_by + 0.1 - time.monotonic()))
        finally:
            os.kill(process.pid, signal.SIGCONT)
        held = wait_all(slow)
    report("stale check", [*fast, *held])
    for run in [*fast, *held]:
        assert run.code == 0, run.problems()
    public = {key.name: key.public for key in keys}
    for digest in sign_targets(image):
        found = sorted(layer_keys(registry, image.repository, digest, public))
        assert found == ["key1", "key2", "key3"], digest
    assert "check before our write is stale" in held[0].stderr


def bundle_keys(
    registry: RegistryServer, image: PushedImage, digest: str, keys: list[Key]
) -> list[str]:
    """The key of every bundle the referrers index of `digest` lists, sorted; each bundle read
    back and checked field by field (tests/support/bundles.py)."""
    names = []
    for entry in read_referrers(registry, image.repository, digest):
        matching = [
            key.name
            for key in keys
            if check_bundle(
                registry, image.repository, digest, entry, key.public, must_verify=False
            )
        ]
        assert len(matching) == 1, (image.repository, digest, entry["digest"], matching)
        names.append(matching[0])
    return sorted(names)


def test_four_processes_adding_bundles_to_the_same_digests_lose_none(
    registry: RegistryServer,
    images: list[PushedImage],
    keys: list[Key],
    home: Path,
    tmp_path: Path,
) -> None:
    """The referrers tag schema's index is a read-modify-write target like the `.sig` tag
    (distribution 2.8 has no referrers API and ignores If-Match): four keys add their bundles
    to the same 30 images' digests at once, through the same protocol; none is lost, none
    doubled, and a second round adds nothing."""
    chosen = images[:15]
    orders = [chosen, chosen[::-1], chosen[5:] + chosen[:5], chosen]
    plans = [
        (key, write_list(tmp_path / f"list-{key.name}", registry, order))
        for key, order in zip(keys, orders, strict=True)
    ]
    bundle = ("--signature-format", "bundle")
    runs = run_together(registry, home, tmp_path, plans, bundle)
    report("4 processes, bundles", runs)
    for run in runs:
        assert run.code == 0, run.problems()
        assert f"Summary: {len(chosen)} images: {len(chosen)} signed" in run.stderr
    everyone = sorted(key.name for key in keys)
    problems = [
        f"{image.repository}@{digest}: {found}"
        for image in chosen
        for digest in sign_targets(image)
        if (found := bundle_keys(registry, image, digest, keys)) != everyone
    ]
    assert not problems, "bundles lost or doubled:\n" + "\n".join(problems)
    again = run_together(registry, home, tmp_path, plans, bundle)
    for run in again:
        assert run.code == 0, run.problems()
        assert "0 signatures written" in run.stderr
    for image in chosen:
        for digest in sign_targets(image):
            assert bundle_keys(registry, image, digest, keys) == everyone


def test_two_processes_with_the_same_key_attach_one_bundle_per_digest(
    registry: RegistryServer,
    images: list[PushedImage],
    keys: list[Key],
    home: Path,
    tmp_path: Path,
) -> None:
    """Idempotent across processes too: two runs with the same key on the same images at once
    both find no bundle; where one lists its bundle first, the other sees it (a bundle of its
    own key among the new entries) and lists none, as the .sig protocol does for a signature."""
    key1 = keys[0]
    chosen = images[15:25]
    listing = write_list(tmp_path / "same", registry, chosen)  # one order: head-on
    runs = run_together(
        registry,
        home,
        tmp_path,
        [(key1, listing), (key1, listing)],
        ("--signature-format", "bundle"),
    )
    report("same key twice, bundles", runs)
    meanwhile = sum(run.stderr.count("a bundle of this key was listed meanwhile") for run in runs)
    print(f"RACE same key: {meanwhile} bundle(s) found listed meanwhile by the other run")
    for run in runs:
        assert run.code == 0, run.problems()
    problems = [
        f"{image.repository}@{digest}: {found}"
        for image in chosen
        for digest in sign_targets(image)
        if (found := bundle_keys(registry, image, digest, keys)) != ["key1"]
    ]
    assert not problems, "bundles doubled or lost:\n" + "\n".join(problems)
