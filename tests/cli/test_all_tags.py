"""`--all-tags` end to end: a line without a tag means every tag of the repository, read from
a real registry's paginated tag list (`n` small, so several `Link` pages really happen), less
the tags that hold signatures and attestations. `sign --dry-run` lists and writes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import http
from tests.support.cli import KEY1_PUB, failed_lines, run_hangar, sig_tag, sign_args, signed_tags
from tests.support.errors_doc import documented, log_line
from tests.support.faultproxy import FaultProxy
from tests.support.images import push_image, push_raw_manifest
from tests.support.registry import RegistryServer

TAGS = ("v1", "v2", "v3", "v4", "v5")
PAGE = {"HANGAR_TAGS_PAGE_SIZE": "2"}


def repo_name(prefix: str) -> str:
    return f"{prefix}/app-{uuid.uuid4().hex[:8]}"


def write_list(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def tag_proxy(registry_http: RegistryServer) -> Iterator[FaultProxy]:
    """The real registry behind a proxy that pages tag lists as distribution 3 does."""
    with FaultProxy.in_front_of(registry_http, page_tag_lists=True) as proxy:
        yield proxy


@pytest.fixture
def server(tag_proxy: FaultProxy, registry_http: RegistryServer) -> RegistryServer:
    return tag_proxy.proxied(registry_http)


def push_tags(server: RegistryServer, repo: str, tags=TAGS) -> dict[str, str]:
    """One single-platform image per tag: tag -> digest."""
    return {tag: push_image(server, repo, tag, kind="oci-manifest").digest for tag in tags}


def push_attachment_tags(server: RegistryServer, repo: str, digest: str) -> set[str]:
    """Tags other tools write beside an image: a referrers-schema tag and an attestation."""
    body, media_type, _ = http.get_manifest(server, repo, digest)
    hex_part = digest.split(":", 1)[1]
    tags = {f"sha256-{hex_part}", f"sha256-{hex_part}.att"}
    for tag in tags:
        push_raw_manifest(server, repo, tag, body, media_type)
    return tags


def validate_args(list_file: Path, server: RegistryServer, *extra: str) -> list[str]:
    args = ["sign", "validate", "-f", str(list_file), "-p", str(KEY1_PUB)]
    if server.scheme == "http":
        args.append("--tls-verify=false")
    return [*args, *extra]


def test_the_test_bed_pages_tag_lists_with_link_headers(server: RegistryServer) -> None:
    # The premise of the tests below: with n=2, five tags come in three linked pages.
    repo = repo_name("pages")
    push_tags(server, repo)
    first = http.request(server, "GET", f"/v2/{repo}/tags/list?n=2")
    assert json.loads(first.body)["tags"] == ["v1", "v2"]
    assert 'rel="next"' in (first.header("Link") or "")


def test_sign_all_tags_signs_every_page_and_skips_attachment_tags(
    server: RegistryServer, tag_proxy: FaultProxy, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("alltags")
    digests = push_tags(server, repo)
    # v1 signed before: its .sig tag, and the other tools' tags, are in the tag list now.
    first = write_list(tmp_path / "first", f"{server.host}/{repo}:v1")
    assert run_hangar(sign_args(first, server), home, cwd=tmp_path).returncode == 0
    push_attachment_tags(server, repo, digests["v2"])
    before = set(http.list_tags(server, repo))
    assert len(before) == len(TAGS) + 3  # 8 tags: four pages of n=2

    other = repo_name("alltags")
    other_digests = push_tags(server, other, ("keep", "leave"))
    listing = write_list(tmp_path / "list", f"{server.host}/{repo}", f"{server.host}/{other}:keep")
    args = sign_args(listing, server, "--all-tags", "--report", str(tmp_path / "r.json"))
    tag_proxy.clear_requests()
    result = run_hangar(args, home, cwd=tmp_path, **PAGE)
    assert result.returncode == 0, result.stderr
    pages = [r for r in tag_proxy.requests if r.path == f"/v2/{repo}/tags/list"]
    assert len(pages) == 4  # 8 tags, n=2: every Link was followed, and no further
    assert f"{repo}: 5 tag(s), 3 signature/attestation tag(s) skipped" in result.stderr
    # Every image tag of every page is signed, and nothing that is a signature is.
    assert signed_tags(server, repo) == {sig_tag(d) for d in digests.values()}
    # A line with a tag stays that one tag.
    assert signed_tags(server, other) == {sig_tag(other_digests["keep"])}
    report = json.loads((tmp_path / "r.json").read_text())
    images = sorted(record["image"] for record in report["results"])
    assert images == sorted(
        [f"{server.host}/{repo}:{tag}" for tag in TAGS] + [f"{server.host}/{other}:keep"]
    )
    assert report["summary"]["total"] == 6


def test_validate_all_tags_checks_every_tag(
    server: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("valtags")
    push_tags(server, repo)
    signed = write_list(tmp_path / "signed", *(f"{server.host}/{repo}:{t}" for t in TAGS))
    assert run_hangar(sign_args(signed, server), home, cwd=tmp_path).returncode == 0
    listing = write_list(tmp_path / "list", f"{server.host}/{repo}")
    result = run_hangar(validate_args(listing, server, "--all-tags"), home, **PAGE)
    assert result.returncode == 0, result.stderr
    assert "Summary: 5 images: 5 passed" in result.stderr
    # A tag added later and not signed fails validation, by name.
    push_tags(server, repo, ("v6",))
    failed_file = tmp_path / "failed"
    result = run_hangar(
        validate_args(listing, server, "--all-tags", "-o", str(failed_file)), home, **PAGE
    )
    assert result.returncode == 1
    assert failed_lines(failed_file) == [f"{server.host}/{repo}:v6"]
    assert "--all-tags" in result.stderr  # the re-sign hint keeps the flag


def test_all_tags_with_registry_and_project_override(
    server: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("override")
    project, name = repo.split("/", 1)
    digests = push_tags(server, repo, ("a", "b", "c"))
    listing = write_list(tmp_path / "list", f"quay.io/elsewhere/{name}")
    args = sign_args(
        listing, server, "--all-tags", "--registry", server.host,
        "--project", project,
    )  # fmt: skip
    result = run_hangar(args, home, cwd=tmp_path, **PAGE)
    assert result.returncode == 0, result.stderr
    assert signed_tags(server, repo) == {sig_tag(d) for d in digests.values()}


def test_dry_run_lists_every_tag_and_writes_nothing(
    server: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("dry")
    digests = push_tags(server, repo, ("x1", "x2", "x3"))
    push_attachment_tags(server, repo, digests["x1"])
    listing = write_list(
        tmp_path / "list",
        f"{server.host}/{repo}",
        f"{server.host}/{repo}@" + digests["x2"],
    )
    report = tmp_path / "report.json"
    args = [
        "sign", "-f", str(listing), "--all-tags", "--dry-run", "--tls-verify=false",
        "--report", str(report),
    ]  # fmt: skip
    result = run_hangar(args, home, cwd=tmp_path, **PAGE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{server.host}/{repo}:x1",
        f"{server.host}/{repo}:x2",
        f"{server.host}/{repo}:x3",
        f"{server.host}/{repo}@{digests['x2']}",
    ]
    assert "Dry run: 4 image(s) would be signed" in result.stderr
    assert signed_tags(server, repo) == set()
    assert not report.exists() and not (tmp_path / "sign-failed.txt").exists()


def test_all_tags_of_an_unknown_repository_is_one_failed_line(
    server: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("missing")
    missing = f"{server.host}/{repo}"
    names = {missing: "REGISTRY/missing/app", repo: "missing/app"}
    listing = write_list(tmp_path / "list", missing)
    dry = run_hangar(
        ["sign", "-f", str(listing), "--all-tags", "--dry-run", "--tls-verify=false"], home
    )
    assert dry.returncode == 1 and dry.stdout == ""
    assert "Traceback" not in dry.stderr
    failed_file = tmp_path / "failed"
    result = run_hangar(
        sign_args(listing, server, "--all-tags", "-o", str(failed_file)), home, **PAGE
    )
    assert result.returncode == 1
    line = log_line(result.stderr, f"--all-tags: cannot list the tags of {missing}")
    documented("all-tags-unknown-repository", 1, line, names)
    assert failed_lines(failed_file) == [missing]  # as written: a retry lists the tags again
    dry_line = log_line(dry.stderr, "--all-tags")
    documented("all-tags-unknown-repository-dry-run", 1, dry_line, names)


def test_all_tags_of_a_repository_holding_only_signatures_fails_the_line(
    server: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("onlysigs")
    push_image(server, repo, "sha256-" + "a" * 64, kind="oci-manifest")
    push_image(server, repo, "sha256-" + "b" * 64 + ".sig", kind="oci-manifest")
    before = http.list_tags(server, repo)
    listing = write_list(tmp_path / "list", f"{server.host}/{repo}")
    result = run_hangar(sign_args(listing, server, "--all-tags"), home, cwd=tmp_path, **PAGE)
    assert result.returncode == 1
    assert http.list_tags(server, repo) == before  # no signature of a signature
    line = log_line(result.stderr, "has no image tags")
    documented(
        "all-tags-only-attachment-tags", 1, line, {f"{server.host}/{repo}": "REGISTRY/onlysigs/app"}
    )
