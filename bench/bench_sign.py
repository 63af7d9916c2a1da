"""Benchmark `hangar sign` against the floor (bench/floor_signer.py) on a local docker-registry
(run by hand, not in CI).

    .venv/bin/python bench/bench_sign.py --images 200 --jobs 1,8,20 --latency-ms 0,20
    .venv/bin/python bench/bench_sign.py --images 0 --memory 10000,100000
    .venv/bin/python bench/bench_sign.py --images 100 --jobs 8 --latency-ms 0 --formats legacy,both

Per latency (0: loopback; N: a proxy that delays each request by N ms) and per -j, for each
round: fresh two-platform images for each signer, then `hangar sign` and the floor signer run
one after the other (the order alternates by round), whole processes timed, start-up
included. Prints signatures per second of both, their ratio (sums over the rounds), the time
from process start to the first request, the requests hangar sent per signature (counted by
its client, per kind), `hangar sign validate` on hangar's images (digests verified per
second) and peak memory (VmHWM). `--formats legacy,both` adds rows for
`sign --signature-format both` (a .sig signature and a Sigstore bundle per digest, each
counted as a signature; the floor writes the .sig only, so its ratio is the price of the
second format). `--memory` signs N single-manifest images at -j 8 and prints hangar's peak
memory.

`--hsm` adds, per latency, `hangar sign` with a P-256 key in a SoftHSM2 token (a pkcs11: URI)
against `hangar sign` with a key file, at --hsm-jobs, alternating on fresh images in the same
run and on the same registry:

    .venv/bin/python bench/bench_sign.py --images 200 --jobs 8 --latency-ms 0,20 --hsm
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hangar.manifest import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, sha256_digest  # noqa: E402
from hangar.reference import parse_reference  # noqa: E402
from hangar.registry.client import RegistryClient  # noqa: E402
from tests.support.hsm import SoftHsm  # noqa: E402
from tests.support.registry import RegistryServer, start_registry  # noqa: E402

PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))
SIGNATURES_PER_IMAGE = len(PLATFORMS) + 1  # and the index
HANGAR = str(ROOT / ".venv/bin/hangar")
TABLE_HEADER = (
    "\n| format | latency | -j | hangar sig/s | floor sig/s | hangar/floor"
    " | start-up ms (hangar / floor) | requests/sig | validate digests/s | peak MB |"
)
PYTHON = str(ROOT / ".venv/bin/python")


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


# -- images ----------------------------------------------------------------------------------


async def _push_multiarch(
    client: RegistryClient, host: str, repo: str, tag: str, layer: bytes
) -> None:
    entries = []
    for os_name, arch in PLATFORMS:
        config = _json(
            {
                "architecture": arch,
                "os": os_name,
                "created": tag,
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
            }
        )
        await client.push_blob(host, repo, config)
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _descriptor(OCI_CONFIG, config),
                "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
            }
        )
        ref = parse_reference(f"{host}/{repo}@{sha256_digest(manifest)}")
        await client.put_manifest(ref, manifest, OCI_MANIFEST)
        entry = _descriptor(OCI_MANIFEST, manifest)
        entry["platform"] = {"os": os_name, "architecture": arch}
        entries.append(entry)
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    await client.put_manifest(parse_reference(f"{host}/{repo}:{tag}"), index, OCI_INDEX)


async def push_images(host: str, prefix: str, count: int, concurrency: int = 16) -> list[str]:
    """`count` two-platform images in 50 repositories; returns `repo:tag` names."""
    layer = os.urandom(512)
    refs = [(f"bench/{prefix}-{i % 50}", f"v{i}") for i in range(count)]
    async with RegistryClient(tls_verify=False, max_connections=concurrency) as client:
        for repo in sorted({repo for repo, _ in refs}):
            await client.push_blob(host, repo, layer)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(repo: str, tag: str) -> None:
            async with semaphore:
                await _push_multiarch(client, host, repo, tag, layer)

        await asyncio.gather(*(one(repo, tag) for repo, tag in refs))
    return [f"{repo}:{tag}" for repo, tag in refs]


async def push_single_images(
    host: str, prefix: str, count: int, concurrency: int = 32
) -> list[str]:
    """`count` single-manifest images (linux/amd64) sharing one config and layer, each made
    distinct by an annotation: one PUT per image, so 100,000 push in minutes."""
    layer = os.urandom(512)
    config = _json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    repos = [f"bench/{prefix}-{n}" for n in range(100)]
    refs = [(repos[i % len(repos)], f"v{i}") for i in range(count)]
    async with RegistryClient(tls_verify=False, max_connections=concurrency) as client:
        for repo in repos:
            await client.push_blob(host, repo, layer)
            await client.push_blob(host, repo, config)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(repo: str, tag: str) -> None:
            manifest = _json(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": _descriptor(OCI_CONFIG, config),
                    "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
                    "annotations": {"bench": tag},
                }
            )
            async with semaphore:
                ref = parse_reference(f"{host}/{repo}:{tag}")
                await client.put_manifest(ref, manifest, OCI_MANIFEST)

        await asyncio.gather(*(one(repo, tag) for repo, tag in refs))
    return [f"{repo}:{tag}" for repo, tag in refs]


# -- processes -------------------------------------------------------------------------------


@dataclass
class Run:
    elapsed: float
    status: int
    peak_mb: float
    startup: float | None = None  # seconds from process start to its first request
    signatures: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    log: str = ""


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM of the process: its own peak, unlike ru_maxrss, which Linux carries over from the
    parent across fork and exec (this script's memory would count as hangar's)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def timed(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> Run:
    """Run `command` to its end: wall clock from start, peak memory sampled every 50 ms."""
    peak = 0.0
    with open(log_path, "w") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        while process.poll() is None:
            peak = max(peak, _peak_rss_mb(process.pid) or 0.0)
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    run = Run(elapsed, process.returncode, peak, log=log_path.read_text())
    run.startup = started  # made relative by the caller, which knows the first request
    return run


@dataclass
class Bed:
    server: RegistryServer
    work: Path
    key: Path
    public: Path
    passphrase: Path

    def hangar_sign(
        self,
        host: str,
        names: list[str],
        jobs: int,
        label: str,
        key_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        fmt: str = "legacy",
        extra: list[str] | None = None,
    ) -> Run:
        """`hangar sign` with the bed's key file, or with `key_args` (a token's URI) instead;
        `extra`: more flags (`--sign-index=false`)."""
        list_file = self._list(host, names, label)
        counts_file = self.work / f"counts-{label}.json"
        key = key_args or ["-k", str(self.key), "--sigstore-passphrase-file", str(self.passphrase)]
        run = timed(
            [
                HANGAR, "sign", "-f", str(list_file), *key, "--tls-verify=false",
                "--skip-login", "-j", str(jobs), "-o", str(self.work / f"failed-{label}.txt"),
                "--signature-format", fmt, *(extra or []),
            ],
            self.work / f"sign-{label}.log",
            {"HANGAR_REQUEST_COUNTS": str(counts_file), **(env or {})},
        )  # fmt: skip
        report = json.loads(counts_file.read_text()) if counts_file.exists() else {}
        run.counts = Counter(report.get("counts", {}))
        run.startup = _since(run.startup, report.get("first_request"))
        run.signatures = _signatures_written(run.log)
        return run

    def floor_sign(
        self, host: str, names: list[str], jobs: int, label: str, index: bool = True
    ) -> Run:
        list_file = self._list(host, names, label)
        run = timed(
            [PYTHON, str(ROOT / "bench/floor_signer.py"), str(list_file), str(self.key),
             str(self.passphrase), str(jobs), *([] if index else ["--no-index"])],
            self.work / f"floor-{label}.log",
        )  # fmt: skip
        return _floor_result(run, "signatures")

    def hangar_validate(self, host: str, names: list[str], jobs: int, label: str) -> Run:
        list_file = self._list(host, names, label)
        run = timed(
            [
                HANGAR, "sign", "validate", "-f", str(list_file), "-p", str(self.public),
                "--tls-verify=false", "-j", str(jobs),
                "-o", str(self.work / f"vfailed-{label}.txt"),
            ],
            self.work / f"validate-{label}.log",
        )  # fmt: skip
        found = re.search(r"(\d+) digests verified", run.log)
        run.signatures = int(found.group(1)) if found else 0
        return run

    def floor_validate(self, host: str, names: list[str], jobs: int, label: str) -> Run:
        list_file = self._list(host, names, label)
        run = timed(
            [PYTHON, str(ROOT / "bench/floor_validator.py"), str(list_file), str(self.public),
             str(jobs)],
            self.work / f"vfloor-{label}.log",
        )  # fmt: skip
        return _floor_result(run, "verified")

    def _list(self, host: str, names: list[str], label: str) -> Path:
        path = self.work / f"list-{label}.txt"
        path.write_text("".join(f"{host}/{name}\n" for name in names))
        return path


def _floor_result(run: Run, count: str) -> Run:
    """A floor prints one JSON line last: `count` (signatures, digests) and its first request."""
    try:
        result = json.loads(run.log.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {}
    run.signatures = result.get(count, 0)
    run.startup = _since(run.startup, result.get("first_request"))
    return run


def _since(started: float | None, first_request: float | None) -> float | None:
    if started is None or first_request is None:
        return None
    return first_request - started


def _signatures_written(log: str) -> int:
    found = re.search(r"(\d+) signatures written", log)
    return int(found.group(1)) if found else 0


class LatencyProxy:
    def __init__(self, upstream: str, delay_ms: float) -> None:
        self.process = subprocess.Popen(
            [PYTHON, str(ROOT / "bench/latency_proxy.py"), "--upstream", upstream,
             "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.host = self.process.stdout.readline().split()[1]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# -- the report ------------------------------------------------------------------------------


def _rate(runs: list[Run]) -> float:
    elapsed = sum(run.elapsed for run in runs)
    return sum(run.signatures for run in runs) / elapsed if elapsed else 0.0


def _ms(value: float | None) -> str:
    return f"{value * 1000:.0f}" if value is not None else "?"


def per_signature(runs: list[Run]) -> str:
    counts: Counter[str] = Counter()
    for run in runs:
        counts.update(run.counts)
    signatures = sum(run.signatures for run in runs) or 1
    kinds = ", ".join(f"{kind} {n / signatures:.2f}" for kind, n in sorted(counts.items()))
    return f"{sum(counts.values()) / signatures:.2f} ({kinds})"


def check(run: Run, what: str) -> None:
    if run.status != 0:
        print(f"{what} exited {run.status}:\n{run.log[-3000:]}")


def compare(
    bed: Bed, host: str, latency: float, jobs: int, images: int, rounds: int, fmt: str
) -> str:
    """Alternate hangar (`--signature-format fmt`) and the floor on fresh images; returns the
    table row."""
    hangar_runs: list[Run] = []
    floor_runs: list[Run] = []
    registry = bed.server.host
    for number in range(rounds):
        label = f"{fmt}-l{latency:g}-j{jobs}-r{number}"
        ours = asyncio.run(push_images(registry, f"h{label}", images))
        theirs = asyncio.run(push_images(registry, f"f{label}", images))
        order = ["hangar", "floor"] if number % 2 == 0 else ["floor", "hangar"]
        for who in order:
            if who == "hangar":
                hangar_runs.append(bed.hangar_sign(host, ours, jobs, f"h{label}", fmt=fmt))
                check(hangar_runs[-1], "hangar sign")
            else:
                floor_runs.append(bed.floor_sign(host, theirs, jobs, f"f{label}"))
                check(floor_runs[-1], "floor")
    validate = bed.hangar_validate(host, ours, jobs, f"v-{fmt}-l{latency:g}-j{jobs}")
    check(validate, "hangar sign validate")
    hangar, floor = _rate(hangar_runs), _rate(floor_runs)
    startup = [run.startup for run in hangar_runs if run.startup is not None]
    floor_startup = [run.startup for run in floor_runs if run.startup is not None]
    print(
        f"  {fmt} -j {jobs}: hangar {hangar:.1f}/s, floor {floor:.1f}/s, "
        f"ratio {hangar / floor:.2f}; "
        f"requests per signature: {per_signature(hangar_runs)}",
        flush=True,
    )
    return (
        f"| {fmt} | {latency:g} ms | {jobs} | {hangar:.1f} | {floor:.1f} | "
        f"**{hangar / floor:.2f}** | "
        f"{_ms(min(startup) if startup else None)} / "
        f"{_ms(min(floor_startup) if floor_startup else None)} | "
        f"{per_signature(hangar_runs).split(' ')[0]} | {_rate([validate]):.1f} | "
        f"{max(run.peak_mb for run in hangar_runs):.0f} |"
    )


SHORT_TABLE_HEADER = (
    "\n| latency | images | index | hangar s | floor s | hangar/floor per round | median |"
    "\n|---|---|---|---|---|---|---|"
)
VALIDATE_TABLE_HEADER = (
    "\n| latency | images | hangar s | floor s | hangar/floor per round | median |"
    "\n|---|---|---|---|---|---|"
)


@dataclass
class ShortCell:
    sign_row: str
    validate_row: str | None  # measured in the cell without the index


def _pairs(ours: list[Run], theirs: list[Run]) -> list[float]:
    """hangar/floor of each round (signatures or digests per second): the two of a round ran
    back to back, so their ratio shrugs off what else the machine did in another round."""
    return [_rate([h]) / _rate([f]) for h, f in zip(ours, theirs, strict=True)]


def _row(latency: float, images: int, ours: list[Run], theirs: list[Run]) -> str:
    pairs = _pairs(ours, theirs)
    return (
        f"| {latency:g} ms | {images} | "
        f"{statistics.median(r.elapsed for r in ours):.2f} | "
        f"{statistics.median(r.elapsed for r in theirs):.2f} | "
        f"{', '.join(f'{p:.2f}' for p in pairs)} | **{statistics.median(pairs):.2f}** |"
    )


def compare_short(
    bed: Bed, host: str, latency: float, jobs: int, images: int, rounds: int, index: bool
) -> ShortCell:
    """The lists users run most: `images` two-platform images, with the index signed or
    not (`--sign-index=false`; the floor likewise), whole processes, alternating order by
    round. Without the index, `sign validate` against its floor on hangar's images too."""
    hangar_runs: list[Run] = []
    floor_runs: list[Run] = []
    registry = bed.server.host
    extra = [] if index else ["--sign-index=false"]
    for number in range(rounds):
        label = f"s-l{latency:g}-n{images}-i{int(index)}-r{number}"
        ours = asyncio.run(push_images(registry, f"h{label}", images))
        theirs = asyncio.run(push_images(registry, f"f{label}", images))
        for who in ["hangar", "floor"] if number % 2 == 0 else ["floor", "hangar"]:
            if who == "hangar":
                hangar_runs.append(bed.hangar_sign(host, ours, jobs, f"h{label}", extra=extra))
                check(hangar_runs[-1], "hangar sign")
            else:
                floor_runs.append(bed.floor_sign(host, theirs, jobs, f"f{label}", index))
                check(floor_runs[-1], "floor")
    where = f"{latency:g} ms | {images} | {'yes' if index else 'no'}"
    row = _row(latency, images, hangar_runs, floor_runs).replace(
        f"| {latency:g} ms | {images} |", f"| {where} |", 1
    )
    print(f"  short list: {row}", flush=True)
    validate_row = None
    if not index:
        checks: list[Run] = []
        floor_checks: list[Run] = []
        for number in range(rounds):
            label = f"sv-l{latency:g}-n{images}-r{number}"
            for who in ["hangar", "floor"] if number % 2 == 0 else ["floor", "hangar"]:
                if who == "hangar":
                    checks.append(bed.hangar_validate(host, ours, jobs, f"h{label}"))
                    check(checks[-1], "hangar sign validate")
                else:
                    floor_checks.append(bed.floor_validate(host, ours, jobs, f"f{label}"))
                    check(floor_checks[-1], "validate floor")
        validate_row = _row(latency, images, checks, floor_checks)
        print(f"  validate: {validate_row}", flush=True)
    return ShortCell(row, validate_row)


@dataclass
class TokenKey:
    hsm: SoftHsm
    uri: str


def make_token_key(work: Path) -> TokenKey:
    """A SoftHSM2 of the bench's own with a P-256 key made by pkcs11-tool."""
    hsm = SoftHsm.create(work / "softhsm")
    hsm.init_token("bench")
    hsm.keygen("bench", "bench-key", "01")
    return TokenKey(hsm, hsm.uri("bench", "bench-key", pin_file=hsm.pin_file()))


HSM_TABLE_HEADER = (
    "\n| latency | -j | key file sig/s | SoftHSM2 token sig/s | token/file | median per round |"
    "\n|---|---|---|---|---|---|"
)


def compare_hsm(
    bed: Bed, token: TokenKey, host: str, latency: float, jobs: int, images: int, rounds: int
) -> str:
    """hangar with a key file and hangar with the token's key, alternating on fresh images."""
    file_runs: list[Run] = []
    token_runs: list[Run] = []
    registry = bed.server.host
    for number in range(rounds):
        label = f"hsm-l{latency:g}-j{jobs}-r{number}"
        for who in ["file", "token"] if number % 2 == 0 else ["token", "file"]:
            names = asyncio.run(push_images(registry, f"{who}{label}", images))
            if who == "file":
                file_runs.append(bed.hangar_sign(host, names, jobs, f"file-{label}"))
                check(file_runs[-1], "hangar sign (key file)")
            else:
                token_runs.append(
                    bed.hangar_sign(
                        host, names, jobs, f"token-{label}", ["-k", token.uri],
                        token.hsm.env_for_hangar(),
                    )
                )  # fmt: skip
                check(token_runs[-1], "hangar sign (token)")
    file_rate, token_rate = _rate(file_runs), _rate(token_runs)
    # Each round's pair ran back to back: the median of their ratios shrugs off one run that
    # another process on the machine slowed down.
    pairs = sorted(_rate([t]) / _rate([f]) for f, t in zip(file_runs, token_runs, strict=True))
    median = statistics.median(pairs)
    print(
        f"  HSM -j {jobs}: key file {file_rate:.1f}/s, token {token_rate:.1f}/s, "
        f"ratio {token_rate / file_rate:.2f} (per round: "
        f"{', '.join(f'{p:.2f}' for p in pairs)}; median {median:.2f}); start-up to the first "
        f"request, ms: file {', '.join(_ms(r.startup) for r in file_runs)}, token "
        f"{', '.join(_ms(r.startup) for r in token_runs)}",
        flush=True,
    )
    return (
        f"| {latency:g} ms | {jobs} | {file_rate:.1f} | {token_rate:.1f} | "
        f"**{token_rate / file_rate:.2f}** | {median:.2f} |"
    )


def sign_calls(bed: Bed, token: TokenKey, threads: int = 8, calls: int = 4000) -> str:
    """sign() calls per second of each key in this process, from `threads` threads: what the
    key itself costs, without the registry (a run signs at most about a hundred a second)."""
    from concurrent.futures import ThreadPoolExecutor

    from hangar.keys import backends

    os.environ["SOFTHSM2_CONF"] = str(token.hsm.conf)
    rates = {}
    for name, spec, passphrase in (
        ("key file", str(bed.key), str(bed.passphrase)),
        ("token", token.uri, None),
    ):
        key = backends.open_signing_key(spec, passphrase)
        payload = os.urandom(300)
        with ThreadPoolExecutor(threads) as pool:
            started = time.monotonic()
            list(pool.map(key.sign, [payload] * calls))
            rates[name] = calls / (time.monotonic() - started)
        backends.close(key)
    line = ", ".join(f"{name} {rate:.0f}/s" for name, rate in rates.items())
    print(f"  sign() calls from {threads} threads, no registry: {line}", flush=True)
    return line


def memory(bed: Bed, count: int) -> str:
    registry = bed.server.host
    started = time.monotonic()
    names = asyncio.run(push_single_images(registry, f"m{count}", count))
    pushed = time.monotonic() - started
    run = bed.hangar_sign(registry, names, 8, f"m{count}")
    check(run, "hangar sign")
    print(
        f"  {count} lines: {run.signatures} signatures in {run.elapsed:.0f}s "
        f"({run.signatures / run.elapsed:.1f}/s), peak {run.peak_mb:.0f} MB (pushed in "
        f"{pushed:.0f}s)",
        flush=True,
    )
    return f"| {count} | {run.signatures} | {run.elapsed:.0f} s | {run.peak_mb:.0f} MB |"


def make_bed(work: Path, server: RegistryServer) -> Bed:
    passphrase = work / "passphrase"
    passphrase.write_text("bench-passphrase\n")
    passphrase.chmod(0o600)
    subprocess.run(
        [HANGAR, "generate-sigstore-key", "-p", str(work / "bench"), "--passphrase-file",
         str(passphrase), "-y"],
        check=True, capture_output=True,
    )  # fmt: skip
    return Bed(server, work, work / "bench.key", work / "bench.pub", passphrase)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images per run (2 platforms)")
    parser.add_argument("--jobs", default="1,8,20", help="comma-separated -j values")
    parser.add_argument("--latency-ms", default="0,20", help="comma-separated; 0 = loopback")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each signer per cell")
    parser.add_argument(
        "--formats", default="legacy", help="comma-separated --signature-format values"
    )
    parser.add_argument("--memory", default="", help="comma-separated line counts, e.g. 10000")
    parser.add_argument("--hsm", action="store_true", help="also a SoftHSM2 token vs key file")
    parser.add_argument("--hsm-jobs", default="8", help="comma-separated -j for --hsm")
    parser.add_argument("--skip-floor", action="store_true", help="only the --hsm rows")
    parser.add_argument(
        "--short", default="", help="image counts of the short-list cells, e.g. 60,120"
    )
    parser.add_argument("--short-jobs", type=int, default=8, help="-j of the short-list cells")
    parser.add_argument("--short-rounds", type=int, default=3, help="rounds per short-list cell")
    args = parser.parse_args()
    # As scripts/setup.sh does: hangar's modules compiled once, not at each start (an editable
    # install under PYTHONDONTWRITEBYTECODE writes no .pyc; the floor's libraries have theirs).
    compileall.compile_dir(ROOT / "src/hangar", quiet=1)
    with tempfile.TemporaryDirectory(prefix="hangar-bench-") as tmp:
        server = start_registry("http", Path(tmp) / "registry")
        token: TokenKey | None = None
        try:
            bed = make_bed(Path(tmp), server)
            if args.hsm:
                token = make_token_key(Path(tmp))
            print(f"registry {server.host}; cores: {os.cpu_count()}; {args.images} images x "
                  f"{len(PLATFORMS)} platforms + the index per run", flush=True)  # fmt: skip
            rows, hsm_rows, short = [], [], []
            for latency in [float(v) for v in args.latency_ms.split(",") if args.short]:
                proxy = LatencyProxy(server.host, latency) if latency else None
                print(f"short lists, latency {latency:g} ms", flush=True)
                try:
                    for images in [int(v) for v in args.short.split(",")]:
                        for index in (False, True):
                            short.append(
                                compare_short(
                                    bed, proxy.host if proxy else server.host, latency,
                                    args.short_jobs, images, args.short_rounds, index,
                                )
                            )  # fmt: skip
                finally:
                    if proxy:
                        proxy.stop()
            if short:
                print(f"\nsign -j {args.short_jobs}, {args.short_rounds} rounds per cell:")
                print(SHORT_TABLE_HEADER)
                print("\n".join(cell.sign_row for cell in short))
                print(f"\nsign validate -j {args.short_jobs}:")
                print(VALIDATE_TABLE_HEADER)
                print("\n".join(cell.validate_row for cell in short if cell.validate_row))
            for latency in [float(v) for v in args.latency_ms.split(",") if args.images]:
                proxy = LatencyProxy(server.host, latency) if latency else None
                print(f"latency {latency:g} ms", flush=True)
                host = proxy.host if proxy else server.host
                try:
                    for fmt in args.formats.split(","):
                        for jobs in [int(v) for v in args.jobs.split(",")] * (not args.skip_floor):
                            rows.append(
                                compare(bed, host, latency, jobs, args.images, args.rounds, fmt)
                            )
                    for jobs in [int(v) for v in args.hsm_jobs.split(",")] * bool(token):
                        assert token is not None
                        hsm_rows.append(
                            compare_hsm(bed, token, host, latency, jobs, args.images, args.rounds)
                        )
                finally:
                    if proxy:
                        proxy.stop()
            if rows:
                print(TABLE_HEADER)
                print("|---|---|---|---|---|---|---|---|---|---|")
                print("\n".join(rows))
            if token is not None:
                calls = sign_calls(bed, token)
            if hsm_rows:
                print(HSM_TABLE_HEADER)
                print("\n".join(hsm_rows))
                print(f"\nsign() calls per second, 8 threads, no registry: {calls}")
            memory_rows = [memory(bed, int(n)) for n in args.memory.split(",") if n]
            if memory_rows:
                print("\n| lines | signatures | time | peak RSS |\n|---|---|---|---|")
                print("\n".join(memory_rows))
        finally:
            server.stop()
            if token is not None:
                token.hsm.remove()


if __name__ == "__main__":
    main()
