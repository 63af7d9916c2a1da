"""Tag-list parsing: which tags are attachments, the `Link` next page, a page's body."""

from __future__ import annotations

import pytest
from yarl import URL

from hangar.registry.tags import is_attachment_tag, next_page, parse_tags

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("tag", "attachment"),
    [
        (f"sha256-{HEX}.sig", True),
        (f"sha256-{HEX}.att", True),
        (f"sha256-{HEX}.sbom", True),
        (f"sha256-{HEX}", True),  # the OCI referrers tag schema
        ("v1.att", True),
        ("v1", False),
        ("latest", False),
        ("sha256-short.sig", False),  # not a digest: a tag someone chose
        (f"sha256-{HEX}x", False),
    ],
)
def test_attachment_tags(tag: str, attachment: bool) -> None:
    assert is_attachment_tag(tag) is attachment


def test_next_page_relative_link_as_distribution_sends_it() -> None:
    current = URL("https://r.example:5000/v2/ns/app/tags/list?n=2")
    link = '</v2/ns/app/tags/list?last=v2&n=2>; rel="next"'
    assert (
        str(next_page([link], current)) == "https://r.example:5000/v2/ns/app/tags/list?last=v2&n=2"
    )


def test_next_page_absolute_link_and_other_relations() -> None:
    current = URL("https://r.example/v2/a/tags/list")
    links = [
        '<https://r.example/x>; rel="prev", <https://other.example/v2/a/tags/list?last=b>; rel=next'
    ]
    assert next_page(links, current) == URL("https://other.example/v2/a/tags/list?last=b")
    assert next_page([], current) is None
    assert next_page(['<https://r.example/x>; rel="prev"'], current) is None


def test_parse_tags() -> None:
    assert parse_tags(b'{"name":"a","tags":["v1","v2"]}') == ["v1", "v2"]
    assert parse_tags(b'{"name":"a","tags":null}') == []
    assert parse_tags(b"not json") is None
    assert parse_tags(b'{"tags":[1]}') is None
    assert parse_tags(b"[]") is None
