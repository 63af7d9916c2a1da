"""`hangar sign` under registry faults: nothing lost, nothing signed twice, and the failed file,
the exit code and a rerun tell the truth.

Each test gets a fresh registry with a FaultProxy in front (tests/support/faultproxy.py); hangar
talks to the proxy (or, where said, to the registry itself), the checks read the registry
directly with the test bed's own client. The first images of every bed are pre-signed with
KEY2 before the faulty KEY1 run, and their KEY2 layers must come out byte-for-byte the same.
After every faulty run (`check_outcome`):
- the report has one record per line, and the failed file holds exactly its failed lines;
- a line not in the failed file is signed by KEY1 on each default platform and on the index;
  no digest ever carries KEY1 twice;
- the exit code is 1 when a line failed, else 0;
and a rerun with `-f sign-failed.txt`, faults removed, finishes the job with exit 0.

The client's backoff is shortened with HANGAR_RETRY_BASE_DELAY (its default base is 0.5 s).
Each test prints one `FAULTS` line (retries seen, timings): run pytest with -s to read them.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest

from tests.faults import layer_keys, layer_snapshot, sign_targets
from tests.support.cli import (
    HANGAR,
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    KEY2,
    KEY2_PASS,
    KEY2_PUB,
    failed_lines,
    hangar_env,
    run_hangar,
    sig_tag,
    sign_args,
)
from tests.support.errors_doc import documented
from tests.support.faultproxy import (
    PLAIN_NOT_FOUND_BODY,
    UNKNOWN_NOT_FOUND_BODY,
    FaultProxy,
    Rule,
)
from tests.support.http import RegistryHTTPError
from tests.support.images import PushedImage, push_image
from tests.support.paths import REPO
from tests.support.registry import RegistryServer, write_auth_json
from tests.support.silent import SilentListener

MakeRegistry = Callable[..., RegistryServer]
REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())

FAST_RETRIES = {"HANGAR_RETRY_BASE_DELAY": "0.05"}
# Backoff whose five retries span at least 0.7 * (1+2+4+8+16) / 2 = 10.85 s: longer than the
# 10 s outage, so requests caught in it are retried past its end.
PATIENT_RETRIES = {"HANGAR_RETRY_BASE_DELAY": "0.7"}
KEYS = {"key1": KEY1_PUB, "key2": KEY2_PUB}
IMAGE_COUNT = 8
PRESIGNED = 3
OUTAGE_SECONDS = 10.0
SIG_MANIFEST = r"/manifests/sha256-[0-9a-f]{64}\.sig$"
UPLOAD_START = r"/blobs/uploads/$"
UPLOAD_FINISH = r"/blobs/uploads/[^/]+$"


@dataclass
class Run:
    code: int
    stderr: str
    elapsed: float

    def count(self, text: str) -> int:
        return self.stderr.count(text)

    def tail(self) -> str:
        return "\n".join(line for line in self.stderr.splitlines() if "[DEBU]" not in line)[-4000:]


@dataclass
class Bed:
    """A registry, a proxy in front of it, pushed images and where hangar runs."""

    server: RegistryServer
    proxy: FaultProxy
    images: list[PushedImage]
    home: Path
    work: Path
    direct: bool = False  # lines name the registry itself instead of the proxy
    key2_layers: dict[tuple[str, str], list[tuple[dict, bytes]]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.server.host if self.direct else self.proxy.host

    def line(self, image: PushedImage) -> str:
        return f"{self.host}/{image.repository}:{image.tag}"

    @property
    def lines(self) -> list[str]:
        return [self.line(image) for image in self.images]

    @property
    def failed_path(self) -> Path:
        return self.work / "sign-failed.txt"

    @property
    def report_path(self) -> Path:
        return self.work / "report.json"

    def write_list(self, images: list[PushedImage] | None = None, name: str = "list") -> Path:
        path = self.work / name
        chosen = self.images if images is None else images
        path.write_text("".join(self.line(image) + "\n" for image in chosen))
        return path

    def sign_command(
        self,
        list_file: Path | None = None,
        *extra: str,
        key: Path = KEY1,
        passphrase: Path = KEY1_PASS,
        jobs: int = 4,
    ) -> list[str]:
        list_file = list_file or self.write_list()
        target = self.server if self.direct else self.proxy.proxied(self.server)
        options = ["-j", str(jobs), "--report", str(self.report_path), "--debug", *extra]
        return sign_args(list_file, target, *options, key=key, passphrase=passphrase)

    def sign(
        self,
        list_file: Path | None = None,
        *extra: str,
        key: Path = KEY1,
        passphrase: Path = KEY1_PASS,
        jobs: int = 4,
        env: dict[str, str] = FAST_RETRIES,
    ) -> Run:
        args = self.sign_command(list_file, *extra, key=key, passphrase=passphrase, jobs=jobs)
        started = time.monotonic()
        result = run_hangar(args, self.home, cwd=self.work, timeout=150, **env)
        return Run(result.returncode, result.stderr, time.monotonic() - started)

    def start(self, list_file: Path | None = None, *extra: str, jobs: int = 4, **env: str):
        """hangar sign in the background: (process, its stderr lines as they come, start)."""
        args = self.sign_command(list_file, *extra, jobs=jobs)
        process = subprocess.Popen(
            [HANGAR, *args],
            cwd=self.work,
            env=hangar_env(self.home, **env),
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return process, time.monotonic()


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def make_bed(
    make_registry: MakeRegistry, home: Path, tmp_path: Path
) -> Iterator[Callable[..., Bed]]:
    """`make_bed("http", count=8, presigned=3, one_repository=False, direct=False,
    image_kind=None)` (`image_kind`: every image of that kind, else indexes and lists)."""
    proxies: list[FaultProxy] = []

    def make(
        kind: str = "http",
        count: int = IMAGE_COUNT,
        presigned: int = PRESIGNED,
        one_repository: bool = False,
        direct: bool = False,
        image_kind: str | None = None,
    ) -> Bed:
        server = make_registry(kind)
        proxy = FaultProxy.in_front_of(server).start()
        proxies.append(proxy)
        prefix = f"faults/{uuid.uuid4().hex[:6]}"
        images = [
            push_image(
                server,
                f"{prefix}/app" if one_repository else f"{prefix}/app-{number}",
                f"v{number}" if one_repository else "v1",
                kind=image_kind or ("docker-list" if number % 3 == 2 else "oci-index"),
            )
            for number in range(count)
        ]
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        bed = Bed(server, proxy, images, home, work, direct=direct)
        if server.username is not None:
            auth = home / ".config/containers/auth.json"
            for host in (server.host, proxy.host):
                write_auth_json(auth, host, server.username, server.password or "")
        _presign(bed, presigned)
        return bed

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.stop()


def _presign(bed: Bed, count: int) -> None:
    """Sign the first `count` images with KEY2 (no faults) and remember their KEY2 layers."""
    if not count:
        return
    chosen = bed.images[:count]
    run = bed.sign(bed.write_list(chosen, "presign"), key=KEY2, passphrase=KEY2_PASS)
    assert run.code == 0, run.tail()
    for image in chosen:
        for digest in sign_targets(image):
            layers = layer_snapshot(bed.server, image.repository, digest, KEY2_PUB)
            assert len(layers) == 1
            bed.key2_layers[(image.repository, digest)] = layers


# -- checks --------------------------------------------------------------------------------


def key1_counts(bed: Bed, image: PushedImage) -> list[int]:
    """KEY1 signatures on each target of `image` (every layer must verify with a known key)."""
    counts = []
    for digest in sign_targets(image):
        keys = layer_keys(bed.server, image.repository, digest, KEYS)
        assert "?" not in keys, (image.repository, digest, keys)
        counts.append(keys.count("key1"))
    return counts


def check_key2_survived(bed: Bed) -> None:
    for (repository, digest), before in bed.key2_layers.items():
        after = layer_snapshot(bed.server, repository, digest, KEY2_PUB)
        assert after == before, f"KEY2 layers of {repository}@{digest} changed"


def check_outcome(bed: Bed, run: Run, *, strict: bool = True) -> list[str]:
    """The invariants of a run over the whole list; returns the failed lines.

    `strict`: a failed line is also not fully signed. Off where a request's answer can be
    lost after the registry acted on it (an outage): hangar then lists the line as failed
    although its signature landed, and the rerun reports it "already signed".
    """
    failed = failed_lines(bed.failed_path) if bed.failed_path.exists() else []
    assert len(failed) == len(set(failed)), failed
    records = json.loads(bed.report_path.read_text())["results"]
    statuses = {record["image"]: record["status"] for record in records}
    assert len(records) == len(bed.lines) and set(statuses) == set(bed.lines)
    assert set(failed) == {line for line, status in statuses.items() if status == "failed"}, (
        run.tail()
    )
    assert run.code == (1 if failed else 0), run.tail()
    for image in bed.images:
        counts = key1_counts(bed, image)
        assert max(counts) <= 1, f"{bed.line(image)} signed twice: {counts}"
        if bed.line(image) not in failed:
            assert counts == [1, 1, 1], f"{bed.line(image)} not in the failed file: {counts}"
        elif strict:
            assert min(counts) == 0, f"{bed.line(image)} failed but fully signed"
    check_key2_survived(bed)
    return failed


def check_all_signed_once(bed: Bed) -> None:
    for image in bed.images:
        assert key1_counts(bed, image) == [1, 1, 1], bed.line(image)
    check_key2_survived(bed)


def rerun_failed(bed: Bed, failed: list[str]) -> Run:
    """Faults gone: `hangar sign -f sign-failed.txt` must finish the job."""
    bed.proxy.clear_rules()
    bed.proxy.set_upstream_down(False)
    if not failed:
        assert not bed.failed_path.exists()
        check_all_signed_once(bed)
        return Run(0, "", 0.0)
    run = bed.sign(bed.failed_path)
    assert run.code == 0, run.tail()
    assert not bed.failed_path.exists()
    images = f"{len(failed)} image" if len(failed) == 1 else f"{len(failed)} images"
    assert f"Summary: {images}:" in run.stderr
    check_all_signed_once(bed)
    return run


def expect_clean(bed: Bed, run: Run) -> None:
    """Nothing failed: no failed file, exit 0, every line signed once, KEY2 intact."""
    assert check_outcome(bed, run) == [], run.tail()
    rerun_failed(bed, [])


def stats(name: str, run: Run, **extra: object) -> None:
    fields = {
        "exit": run.code,
        "elapsed": f"{run.elapsed:.1f}s",
        "retries": run.count("; retry in "),
        "upload_restarts": run.count("restarts:"),
        "merges": run.count("merging again"),
        "failed": run.count("[ERRO]"),
        **extra,
    }
    print(f"FAULTS {name}: " + " ".join(f"{k}={v}" for k, v in fields.items()))


# -- 5xx and 429 -------------------------------------------------------------------------------


def test_5xx_bursts_within_the_retry_budget_are_absorbed(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed()
    # At most 5 hits per rule: no request (nor blob upload) can fail its 5 retries.
    rules = [
        Rule(method="GET", path_regex=r"/manifests/", status=500, times=5, after=3),
        Rule(method="HEAD", path_regex=r"/manifests/", status=502, times=5, after=2),
        Rule(method="POST", path_regex=UPLOAD_START, status=503, times=5, after=2),
        Rule(method="PUT", path_regex=UPLOAD_FINISH, status=502, times=5, after=1),
        Rule(method="PUT", path_regex=SIG_MANIFEST, status=503, times=5, after=4),
    ]
    for rule in rules:
        bed.proxy.add_rule(rule)
    run = bed.sign()
    assert [bed.proxy.hits(rule) for rule in rules] == [5] * len(rules)
    expect_clean(bed, run)
    # Each of the 25 injected failures is retried, by the client or, for a .sig PUT whose
    # freshness deadline passed, by the merge loop; the blob PUTs restart their upload instead.
    retried = run.count("; retry in ") + run.count("our write failed, checking again")
    assert retried >= 20
    assert run.count("restarts:") >= 5
    stats("5xx-absorbed", run)


def test_5xx_beyond_the_retry_budget_fails_just_those_images(
    make_bed: Callable[..., Bed],
) -> None:
    bed = make_bed()
    victim, guarded = bed.images[-1], bed.images[0]  # guarded carries KEY2 already
    rules = [
        # every write of the victim's index signature fails, for the whole run
        Rule(method="PUT", path_regex=re.escape(sig_tag(victim.digest)) + "$", status=500),
        # an existing attachment that cannot be read must never be taken for "none yet"
        Rule(
            method="GET",
            path_regex=re.escape(sig_tag(guarded.platforms["linux/amd64"])) + "$",
            status=503,
        ),
        Rule(method="PUT", path_regex=UPLOAD_FINISH, status=503, times=5, after=3),
    ]
    for rule in rules:
        bed.proxy.add_rule(rule)
    run = bed.sign()
    failed = check_outcome(bed, run)
    assert sorted(failed) == sorted([bed.line(victim), bed.line(guarded)])
    assert "with HTTP 500" in run.stderr  # retried while its check was fresh, then re-merged
    assert "with HTTP 503 after 6 attempts" in run.stderr
    # what could be signed was: the victim's platforms, the guarded image's other digests
    assert key1_counts(bed, victim) == [1, 1, 0]
    assert key1_counts(bed, guarded) == [0, 1, 1]
    rerun = rerun_failed(bed, failed)
    signed = (rerun.count("Already signed ["), rerun.count("] (") - rerun.count("Already signed ["))
    assert signed == (4, 2), rerun.stderr
    stats("5xx-persistent", run, rerun=f"{rerun.elapsed:.1f}s")


def test_429_with_and_without_retry_after(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed()
    told = Rule(
        method="GET",
        path_regex=r"/manifests/v1$",
        status=429,
        headers={"Retry-After": "1"},
        times=3,
        after=PRESIGNED,
    )
    untold = Rule(method="POST", path_regex=UPLOAD_START, status=429, times=4, after=2)
    bed.proxy.add_rule(told)
    bed.proxy.add_rule(untold)
    run = bed.sign()
    assert (bed.proxy.hits(told), bed.proxy.hits(untold)) == (3, 4)
    expect_clean(bed, run)
    # Retry-After is honoured as given (1 s), whatever HANGAR_RETRY_BASE_DELAY says...
    assert run.count(": 429; retry in 1.00s") == 3
    log = bed.proxy.requests
    for number, refused in enumerate(log):
        if refused.status == 429 and refused.method == "GET":
            again = next(r for r in log[number + 1 :] if r.path == refused.path)
            assert again.ts - refused.ts >= 1.0, (refused, again)
    # ...and without it, the (shortened) backoff applies.
    assert len(re.findall(r": 429; retry in 0\.[0-4]\ds", run.stderr)) == 4
    stats("429", run)


# -- connections reset ---------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reset", "reset_after_upstream"])
def test_connections_reset_mid_upload_and_mid_manifest_put(
    make_bed: Callable[..., Bed], action: str
) -> None:
    bed = make_bed()
    blob = Rule(method="PUT", path_regex=UPLOAD_FINISH, action=action, times=4, after=1)
    manifest = Rule(method="PUT", path_regex=SIG_MANIFEST, action=action, times=4, after=1)
    bed.proxy.add_rule(blob)
    bed.proxy.add_rule(manifest)
    run = bed.sign()
    assert (bed.proxy.hits(blob), bed.proxy.hits(manifest)) == (4, 4)
    # reset_after_upstream: the registry took the PUT and the answer was lost; the retry
    # writes the same bytes, so nothing is duplicated. (aiohttp itself resends an idempotent
    # request once when a kept-alive connection drops, so not every reset reaches hangar's
    # own retry log.)
    expect_clean(bed, run)
    stats(f"reset[{action}]", run)


# -- slow responses and --timeout ------------------------------------------------------------


def test_a_response_slower_than_timeout_fails_that_image_only(
    make_bed: Callable[..., Bed],
) -> None:
    bed = make_bed()
    slow = bed.images[4]
    path = rf"^/v2/{re.escape(slow.repository)}/manifests/v1$"
    rule = bed.proxy.add_rule(Rule(method="GET", path_regex=path, action="delay", delay=60.0))
    run = bed.sign(None, "--timeout", "2s")
    assert bed.proxy.hits(rule) == 1
    failed = check_outcome(bed, run)
    assert failed == [bed.line(slow)]
    assert "timed out after 2s (--timeout)" in run.stderr
    # The run did not wait for the 60 s answer. The margin is wide on purpose: this checks
    # behaviour, not speed, and must hold on a loaded machine.
    assert run.elapsed < 40, run.elapsed
    rerun_failed(bed, failed)
    stats("timeout", run)


# -- authentication --------------------------------------------------------------------------


def test_a_token_refused_mid_run_is_renewed_once(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("token")
    token_server = bed.server.token_server
    assert token_server is not None
    rules = [
        Rule(method="PUT", path_regex=SIG_MANIFEST, status=401, times=1, after=2),
        Rule(method="POST", path_regex=UPLOAD_START, status=401, times=1, after=3),
        Rule(method="GET", path_regex=r"/manifests/", status=401, times=1, after=5),
        Rule(method="HEAD", path_regex=r"/manifests/", status=401, times=1, after=2),
    ]
    for rule in rules:
        bed.proxy.add_rule(rule)
    bed.proxy.clear_requests()
    issued = token_server.issued_count
    run = bed.sign()
    assert [bed.proxy.hits(rule) for rule in rules] == [1] * len(rules)
    expect_clean(bed, run)
    log = bed.proxy.requests
    refused = [(n, r) for n, r in enumerate(log) if r.status == 401 and r.path != "/v2/"]
    assert len(refused) == len(rules)
    for number, request in refused:
        # the same request again, with a new token, and it worked
        assert any(
            (later.method, later.path) == (request.method, request.path)
            and later.status not in (None, 401)
            for later in log[number + 1 :]
        ), request
    renewed = token_server.issued_count - issued
    stats("token-refused", run, tokens=renewed)


def test_a_short_token_lifetime_expires_during_the_run(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("token", count=10, one_repository=True)
    token_server = bed.server.token_server
    assert token_server is not None
    token_server.lifetime = 2  # the registry refuses a token 2-3 s after it is issued
    # Slow image reads stretch the run to several token lifetimes.
    bed.proxy.add_rule(
        Rule(method="GET", path_regex=r"/manifests/v\d+$", action="delay", delay=0.8)
    )
    bed.proxy.clear_requests()
    issued = token_server.issued_count
    run = bed.sign(jobs=2)
    expect_clean(bed, run)
    assert run.elapsed > 4
    tokens = token_server.issued[issued:]
    push_tokens = [t for t in tokens if any("push" in a["actions"] for a in t.access)]
    # one repository: without expiry a run needs one push token; it needed a new one at least
    # every lifetime
    assert len(push_tokens) >= 2, len(push_tokens)
    refused = [r for r in bed.proxy.requests if r.status == 401 and r.path != "/v2/"]
    stats("token-lifetime", run, tokens=len(tokens), registry_401=len(refused))


# -- "not signed yet": 404 dialects --------------------------------------------------------------


def _sig_tags_of(image: PushedImage) -> str:
    return "|".join(re.escape(sig_tag(digest)) for digest in sign_targets(image))


def test_not_found_dialects_on_the_sig_tag_mean_unsigned(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed()
    dialects = [
        {"action": "harbor404"},  # {"errors":[{"code":"NOT_FOUND","message":"artifact .."}]}
        {"status": 404, "body": UNKNOWN_NOT_FOUND_BODY},
        {"status": 404, "body": PLAIN_NOT_FOUND_BODY},  # not JSON at all
    ]
    unsigned = bed.images[PRESIGNED:]
    rules = []
    for number, dialect in enumerate(dialects):
        chosen = unsigned[number :: len(dialects)]
        pattern = "|".join(_sig_tags_of(image) for image in chosen)
        rules.append(bed.proxy.add_rule(Rule(method="GET", path_regex=f"({pattern})$", **dialect)))
    run = bed.sign()
    # each unsigned digest's tag was read once, in its dialect
    assert sum(bed.proxy.hits(rule) for rule in rules) == 3 * len(unsigned)
    assert all(bed.proxy.hits(rule) > 0 for rule in rules)
    expect_clean(bed, run)
    stats("404-dialects", run)


def test_a_false_not_found_on_an_existing_attachment_loses_nothing(
    make_bed: Callable[..., Bed],
) -> None:
    """A 404 on the `.sig` GET while the tag exists (a lagging replica, a confused proxy):
    writing a fresh attachment would drop every signature in it. hangar checks the tag with a
    HEAD before it writes, sees it is there, and merges into the real content instead."""
    bed = make_bed()
    presigned = bed.images[:PRESIGNED]

    def lie_once_per_tag(images: list[PushedImage]) -> list[Rule]:
        return [
            bed.proxy.add_rule(
                Rule(
                    method="GET",
                    path_regex=re.escape(sig_tag(digest)) + "$",
                    action="harbor404",
                    times=1,
                )
            )
            for image in images
            for digest in sign_targets(image)
        ]

    rules = lie_once_per_tag(presigned)
    run = bed.sign()
    assert all(bed.proxy.hits(rule) == 1 for rule in rules)
    assert check_outcome(bed, run) == []
    assert run.count("changed before our write, merging again") == len(rules)
    # The rerun meets the same lie on every tag, now signed by KEY1 too: still no duplicate.
    bed.proxy.clear_rules()
    rules = lie_once_per_tag(bed.images)
    again = bed.sign()
    assert all(bed.proxy.hits(rule) == 1 for rule in rules)
    assert again.code == 0, again.tail()
    assert f"{len(bed.images)} already signed" in again.stderr
    assert "0 signatures written" in again.stderr
    check_all_signed_once(bed)
    stats("false-404", run, rerun_merges=again.count("merging again"))


def test_an_unreadable_layer_of_another_key_neither_blocks_nor_gets_dropped(
    make_bed: Callable[..., Bed],
) -> None:
    """The payload blob of KEY2's layer answers 404 (a registry that lost it, a broken mirror):
    hangar cannot check that layer, so it is not ours; it signs, and keeps the layer as is."""
    bed = make_bed()
    image = bed.images[0]
    digest = image.platforms["linux/amd64"]
    ((descriptor, _),) = bed.key2_layers[(image.repository, digest)]
    blob_unknown = b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}'
    rule = bed.proxy.add_rule(
        Rule(
            method="GET",
            path_regex=re.escape(descriptor["digest"]) + "$",
            status=404,
            body=blob_unknown,
        )
    )
    # Another identity than KEY2's: within the same second both keys would sign the very same
    # payload bytes, one blob shared by both layers, and that blob is the one made unreadable.
    identity = ("--signed-identity", "digest")
    run = bed.sign(None, *identity)
    assert bed.proxy.hits(rule) == 1
    assert check_outcome(bed, run) == []
    # and a rerun meeting the same 404 still finds KEY1's own signature: nothing added
    again = bed.sign(None, *identity)
    assert bed.proxy.hits(rule) == 2
    assert again.code == 0, again.tail()
    assert f"{len(bed.images)} already signed" in again.stderr
    check_all_signed_once(bed)
    stats("unreadable-layer", run)


# -- the registry goes away --------------------------------------------------------------------


def _watch_stderr(process: subprocess.Popen[str], first_signed: threading.Event) -> list[str]:
    """Collect the process's stderr in a thread; set `first_signed` at the first signature."""
    lines: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "Signed [" in line:
                first_signed.set()

    threading.Thread(target=read, name="hangar-stderr", daemon=True).start()
    return lines


def _run_with_outage(
    bed: Bed, go_down: Callable[[], None], come_back: Callable[[], None], **env: str
) -> tuple[Run, float]:
    """Run hangar sign; at its first signature, `go_down()` in a background thread and
    `come_back()` OUTAGE_SECONDS later. Returns the run and when the outage began."""
    first_signed = threading.Event()
    process, started = bed.start(None, jobs=2, **env)
    lines = _watch_stderr(process, first_signed)
    outage: dict[str, float] = {}

    def outage_thread() -> None:
        if not first_signed.wait(60):
            return
        go_down()
        outage["began"] = time.monotonic() - started
        time.sleep(OUTAGE_SECONDS)
        come_back()

    thread = threading.Thread(target=outage_thread, name="outage", daemon=True)
    thread.start()
    try:
        code = process.wait(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
        thread.join(OUTAGE_SECONDS + 30)
    elapsed = time.monotonic() - started
    time.sleep(0.1)  # let the reader drain the pipe
    assert "began" in outage, "the run ended before its first signature"
    return Run(code, "".join(lines), elapsed), outage["began"]


def test_registry_stopped_for_ten_seconds_mid_run(make_bed: Callable[..., Bed]) -> None:
    """Connections refused for 10 s; with a short backoff, the images caught in it fail."""
    bed = make_bed(count=14, direct=True)
    run, began = _run_with_outage(bed, bed.server.stop, bed.server.start, **FAST_RETRIES)
    assert bed.server.running
    failed = check_outcome(bed, run, strict=False)
    assert failed, "images in flight during the outage must fail with a 1.5 s retry budget"
    assert "connection refused" in run.stderr
    rerun = rerun_failed(bed, failed)
    signed_anyway = rerun.count("Already signed [")
    stats(
        "registry-stopped",
        run,
        outage_at=f"{began:.1f}s",
        failed_lines=len(failed),
        already_signed_on_rerun=signed_anyway,
    )


def test_upstream_down_for_ten_seconds_is_ridden_out_with_patient_backoff(
    make_bed: Callable[..., Bed],
) -> None:
    """Every connection reset for 10 s; a backoff longer than the outage rides it out."""
    bed = make_bed()
    bed.proxy.clear_requests()
    run, began = _run_with_outage(
        bed,
        lambda: bed.proxy.set_upstream_down(True),
        lambda: bed.proxy.set_upstream_down(False),
        **PATIENT_RETRIES,
    )
    dropped = [r for r in bed.proxy.requests if r.status is None]
    assert dropped
    expect_clean(bed, run)
    assert run.elapsed > began + OUTAGE_SECONDS
    stats("upstream-down", run, outage_at=f"{began:.1f}s", dropped=len(dropped))


# -- a registry that dies, or never answers -------------------------------------------------

DEAD_IMAGES = 150
# The bound: a run whose registry is killed for good ends within this long of the kill
# (it went on for minutes: a retry budget per image, then minutes of end-of-run checks).
DEAD_RUN_BOUND = 90.0
# The one line hangar says when a registry has answered nothing for a while.
DOWN_LINE = "has not answered any request since"
DEFAULT_RETRIES = {"HANGAR_RETRY_BASE_DELAY": "0.5"}  # the default, whatever the caller's env


def _run_specific(line: str) -> dict[str, str]:
    """The clock time and the seconds of a `has not answered since` line, made stable."""
    subs = {}
    if clock := re.search(r"since (\d\d:\d\d:\d\d) UTC", line):
        subs[clock.group(1)] = "HH:MM:SS"
    if seconds := re.search(r"\((\d+s);", line):
        subs[f"({seconds.group(1)};"] = "(Ns;"
    return subs


def _key1_on(bed: Bed, image: PushedImage) -> int:
    keys = layer_keys(bed.server, image.repository, image.digest, KEYS)
    assert "?" not in keys, (bed.line(image), keys)
    return keys.count("key1")


def test_a_registry_killed_for_good_ends_the_run_in_seconds(make_bed: Callable[..., Bed]) -> None:
    """SIGKILL at the first signature, never back during the run; the default backoff. The run
    ends within the bound with exit 1, says once which registry went silent and since when,
    lists every line not signed (and every signature it could not confirm) in the failed
    file, and counts in its summary the signatures the registry holds."""
    bed = make_bed(
        count=DEAD_IMAGES, presigned=0, one_repository=True, direct=True, image_kind="oci-manifest"
    )
    first_signed = threading.Event()
    process, started = bed.start(None, jobs=2, **DEFAULT_RETRIES)
    lines = _watch_stderr(process, first_signed)
    try:
        assert first_signed.wait(60), "no signature within 60 s"
        bed.server.kill()
        killed = time.monotonic()
        code = process.wait(timeout=DEAD_RUN_BOUND + 30)
        after_kill = time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.1)  # let the reader drain the pipe
    run = Run(code, "".join(lines), time.monotonic() - started)
    assert after_kill < DEAD_RUN_BOUND, f"{after_kill:.1f}s after the kill\n{run.tail()}"
    assert run.code == 1, run.tail()
    said = [line for line in run.stderr.splitlines() if not line.startswith("[DEBU]")]
    down = [line for line in said if DOWN_LINE in line]
    assert len(down) == 1, down
    assert down[0].startswith("[ERRO]") and f"registry {bed.server.host} " in down[0], down
    assert re.search(r"since \d\d:\d\d:\d\d UTC", down[0]), down
    documented("registry-down", 1, down[0], _run_specific(down[0]))
    # The lines signed before the kill: the end-of-run check cannot confirm them, at once
    # (in one line, or two when it began before the registry was found down).
    unconfirmed = [line for line in said if "the end-of-run check cannot confirm" in line]
    counts = [re.search(r"confirm (\d+) signature", line) for line in unconfirmed]
    assert 1 <= len(unconfirmed) <= 2 and all(counts), unconfirmed
    not_confirmed = sum(int(count.group(1)) for count in counts if count)
    first = counts[0]
    assert first is not None
    subs = {f"confirm {first.group(1)} signature": "confirm N signature"}
    documented("final-check-registry-down", 1, unconfirmed[0], subs)
    # Images after the registry went down fail with no line of their own (said once).
    errors = [line for line in said if line.startswith("[ERRO]")]
    assert len(errors) < DEAD_IMAGES // 2, len(errors)

    bed.server.start()
    failed = failed_lines(bed.failed_path)
    assert len(failed) == len(set(failed))
    report = json.loads(bed.report_path.read_text())
    records = report["results"]
    assert {record["image"] for record in records} == set(bed.lines)
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(report)
    late = {entry["image"] for entry in report["lateFailures"]}
    assert len(late) == not_confirmed
    failed_in_report = {r["image"] for r in records if r["status"] == "failed"} | late
    assert set(failed) == failed_in_report
    assert report["summary"]["failed"] == len(failed)
    held = 0
    damaged: set[str] = set()
    for image in bed.images:
        try:
            count = _key1_on(bed, image)
        except RegistryHTTPError as exc:
            # SIGKILL in the middle of distribution's write of a tag leaves its link file
            # half written: the registry answers 500 for that tag from then on (its damage,
            # not hangar's; at most the PUTs in flight, one per job).
            assert exc.status == 500 and bed.line(image) in failed, exc
            damaged.add(bed.line(image))
            continue
        assert count <= 1, bed.line(image)
        held += count
        if bed.line(image) not in failed:
            assert count == 1, f"{bed.line(image)} is not in the failed file but not signed"
    assert len(damaged) <= 2, damaged
    # What the summary counts is what the registry holds: a PUT cut by the kill may have
    # landed unseen (at most one per job), but nothing written is left uncounted.
    counted = report["summary"]["signatures"]
    assert 0 < counted <= held + len(damaged) and held <= counted + 2, (counted, held, damaged)
    assert f"; {counted} signatures written in " in run.stderr
    reported = sum(1 for r in records for d in r["digests"] if d.get("action") == "signed")
    assert reported == counted

    # The failed file finishes the job (a generous timeout: 150 images on a loaded machine),
    # but for tags the kill damaged: those fail again, naming the registry's HTTP 500.
    rerun_args = bed.sign_command(bed.failed_path, jobs=8)
    rerun = run_hangar(rerun_args, bed.home, cwd=bed.work, timeout=600, **FAST_RETRIES)
    assert rerun.returncode == (1 if damaged else 0), rerun.stderr[-3000:]
    if damaged:
        assert set(failed_lines(bed.failed_path)) == damaged
    intact = [image for image in bed.images if bed.line(image) not in damaged]
    assert all(_key1_on(bed, image) == 1 for image in intact)
    stats("registry-killed", run, after_kill=f"{after_kill:.1f}s", failed_lines=len(failed))


NEVER_ANSWERS_IMAGES = 20
# The bound for a listener that never answers, with --timeout 5s.
SILENT_RUN_BOUND = 45.0


@pytest.mark.parametrize("skip_login", [False, True], ids=["login-check", "skip-login"])
def test_a_registry_that_never_answers_ends_the_run_in_seconds(
    isolated_home: Path, tmp_path: Path, skip_login: bool
) -> None:
    """A listener that accepts connections and never answers: the login check and first
    contact are bounded by --timeout, and once the registry has been silent for a while the
    images left fail at once; the messages name the registry."""
    with SilentListener() as silent:
        list_file = tmp_path / "list"
        list_file.write_text(
            "".join(f"{silent.host}/hung/app-{n}:v1\n" for n in range(NEVER_ANSWERS_IMAGES))
        )
        failed_path = tmp_path / "sign-failed.txt"
        args = [
            "sign", "-f", str(list_file), "-k", str(KEY1), "--sigstore-passphrase-file",
            str(KEY1_PASS), "--tls-verify=false", "--timeout", "5s", "-j", "2",
            "-o", str(failed_path),
        ]  # fmt: skip
        if skip_login:
            args.append("--skip-login")
        started = time.monotonic()
        result = run_hangar(args, isolated_home, cwd=tmp_path, timeout=120, **DEFAULT_RETRIES)
        elapsed = time.monotonic() - started
        assert silent.accepted > 0
    stderr = result.stderr
    assert elapsed < SILENT_RUN_BOUND, f"{elapsed:.1f}s\n{stderr[-3000:]}"
    assert result.returncode == 1, stderr[-3000:]
    assert sorted(failed_lines(failed_path)) == sorted(list_file.read_text().splitlines())
    assert f"Summary: {NEVER_ANSWERS_IMAGES} images: 0 signed" in stderr
    down = [line for line in stderr.splitlines() if DOWN_LINE in line]
    assert len(down) == 1 and f"registry {silent.host} " in down[0], stderr[-3000:]
    if not skip_login:
        login = [line for line in stderr.splitlines() if "login check" in line]
        assert login and f"registry {silent.host} did not answer" in login[0], login
        assert login[0].startswith("[WARN]")
        documented("registry-silent-login-check", 1, login[0], {})
        documented("registry-silent-down", 1, down[0], _run_specific(down[0]))
    timed_out = [line for line in stderr.splitlines() if "timed out after 5s" in line]
    assert timed_out
    assert all(f"registry {silent.host} has not answered since" in line for line in timed_out)
    first = re.sub(r"\[IMG:\d+\] ", "[IMG:n] ", timed_out[0])
    first = re.sub(r"/hung/app-\d+:", "/hung/app-N:", first)
    documented("registry-silent-timeout", 1, first, _run_specific(first))
    print(f"FAULTS never-answers: elapsed={elapsed:.1f}s timed_out={len(timed_out)}")


# -- the report and the summary count every signature written --------------------------------


def _key1_signatures(bed: Bed) -> int:
    return sum(sum(key1_counts(bed, image)) for image in bed.images)


def _signed_in_report(bed: Bed) -> int:
    records = json.loads(bed.report_path.read_text())["results"]
    return sum(1 for r in records for d in r["digests"] if d.get("action") == "signed")


@pytest.mark.parametrize("cut", ["second-ctrl-c", "timeout"])
def test_lines_cut_short_keep_their_signatures_in_the_report_and_the_count(
    make_bed: Callable[..., Bed], cut: str
) -> None:
    """Every image's platform signatures land, then the PUT of its index's is held (never sent
    on): a second Ctrl-C abandons them, or --timeout ends them. Each line fails, and the report
    and the summary count exactly the signatures the registry holds (they said 0)."""
    bed = make_bed(count=4, presigned=0)
    index_tags = "|".join(re.escape(sig_tag(image.digest)) for image in bed.images)
    hold = bed.proxy.add_rule(Rule(method="PUT", path_regex=f"({index_tags})$", action="hold"))
    extra = ("--timeout", "8s") if cut == "timeout" else ()
    first_signed = threading.Event()
    process, _ = bed.start(None, *extra, jobs=len(bed.images), **FAST_RETRIES)
    lines = _watch_stderr(process, first_signed)
    try:
        if cut == "second-ctrl-c":
            deadline = time.monotonic() + 60
            while bed.proxy.hits(hold) < len(bed.images):  # every image waits on a PUT
                assert time.monotonic() < deadline, "the images never reached the held PUT"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 30
            while not any("no new images start" in line for line in lines):
                assert time.monotonic() < deadline, "the first Ctrl-C was not seen"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.1)  # let the reader drain the pipe
    stderr = "".join(lines)
    assert code == (130 if cut == "second-ctrl-c" else 1), stderr[-3000:]
    records = json.loads(bed.report_path.read_text())["results"]
    assert [r["status"] for r in records] == ["failed"] * len(bed.images)
    reason = "abandoned: interrupted" if cut == "second-ctrl-c" else "timed out after 8s"
    assert all(r["message"].startswith(reason) for r in records), records
    held = _key1_signatures(bed)
    if cut == "second-ctrl-c":
        assert held == 2 * len(bed.images)  # the platforms' PUTs passed, the held ones never
    assert held > 0
    assert _signed_in_report(bed) == held
    summary = json.loads(bed.report_path.read_text())["summary"]
    assert summary["signatures"] == held
    assert f"; {held} signatures written in " in stderr
    with_note = [r for r in records if "signature(s) of it were written before" in r["message"]]
    assert len(with_note) == sum(1 for r in records if r["digests"])


# -- sign validate under faults --------------------------------------------------------------


def test_validate_under_a_5xx_burst_gives_correct_verdicts(
    make_bed: Callable[..., Bed],
) -> None:
    bed = make_bed()
    images = bed.images
    signed = [images[0], images[1], images[3], images[4]]  # images[2]: KEY2 only
    assert bed.sign(bed.write_list(signed, "to-sign")).code == 0
    unreadable = images[1]
    rules = [
        Rule(method="GET", path_regex=r"/manifests/", status=503, times=5, after=2),
        Rule(method="GET", path_regex=r"/blobs/", status=502, times=5, after=1),
        Rule(method="GET", path_regex=r"/manifests/", status=429, times=3, after=9),
        # persistent: an error for that image, never a verdict of "no signature"
        Rule(
            method="GET",
            path_regex=re.escape(sig_tag(unreadable.platforms["linux/amd64"])) + "$",
            status=500,
        ),
    ]
    for rule in rules:
        bed.proxy.add_rule(rule)
    failed_path = bed.work / "validate-failed.txt"
    args = [
        "sign",
        "validate",
        "-f",
        str(bed.write_list()),
        "-p",
        str(KEY1_PUB),
        "--tls-verify=false",
        "-j",
        "4",
        "-o",
        str(failed_path),
        "--debug",
    ]
    result = run_hangar(args, bed.home, cwd=bed.work, **FAST_RETRIES)
    assert all(bed.proxy.hits(rule) > 0 for rule in rules)
    assert result.returncode == 1
    rejected = {bed.line(image) for image in images if image not in signed}
    failed = failed_lines(failed_path)
    assert sorted(failed) == sorted(rejected | {bed.line(unreadable)})
    for image in signed:
        passed = f"PASS: [{bed.line(image)}]" in result.stderr
        assert passed == (image is not unreadable), bed.line(image)
    errors = [line for line in result.stderr.splitlines() if bed.line(unreadable) in line]
    assert any("HTTP 500" in line for line in errors), errors
    assert not any("no signature" in line for line in errors), errors
    for image in images[5:]:
        assert f"FAIL: [{bed.line(image)}] linux/amd64" in result.stderr
    # Faults gone: the verdicts on the failed lines stand, and the unreadable image passes.
    bed.proxy.clear_rules()
    again = run_hangar(
        [*args[:3], str(failed_path), *args[4:]], bed.home, cwd=bed.work, **FAST_RETRIES
    )
    assert again.returncode == 1
    assert sorted(failed_lines(failed_path)) == sorted(rejected)
    assert f"PASS: [{bed.line(unreadable)}]" in again.stderr
    print(f"FAULTS validate: retries={result.stderr.count('; retry in ')} exit=1 as expected")
