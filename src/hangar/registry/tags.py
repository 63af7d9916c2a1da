"""The tag list of a repository (`GET /v2/<name>/tags/list`), as distribution pages it.

distribution answers at most `n` tags per page and, when more follow, a `Link` header
`</v2/<name>/tags/list?last=<tag>&n=<n>>; rel="next"` (RFC 5988); the last page has none.
"""

from __future__ import annotations

import json
import os
import re

from yarl import URL

from hangar import output

PAGE_SIZE_ENV = "HANGAR_TAGS_PAGE_SIZE"
MAX_PAGES = 10_000  # a registry that links pages in a circle must not keep hangar forever
MAX_PAGE_BYTES = 4 * 1024 * 1024
_LINK_PART = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
# Tags tools write beside an image: cosign's `sha256-<hex>.sig/.att/.sbom` and the OCI
# referrers tag schema `sha256-<hex>`. Signing them would sign signatures.
_ATTACHMENT_TAG = re.compile(r"sha256-[0-9a-f]{64}(\.[A-Za-z0-9_-]+)?")


def is_attachment_tag(tag: str) -> bool:
    return bool(_ATTACHMENT_TAG.fullmatch(tag)) or tag.endswith(".att")


def page_size() -> int | None:
    """`n` for each page: $HANGAR_TAGS_PAGE_SIZE, else the registry's default (None)."""
    text = os.environ.get(PAGE_SIZE_ENV, "")
    if not text:
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    output.warn(f"{PAGE_SIZE_ENV}={text} is not a positive number: using the registry's default")
    return None


def parse_tags(body: bytes) -> list[str] | None:
    """The `tags` of one page ([] for `null`), or None when the body is not a tag list."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    tags = document.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return None
    return tags


def next_page(link_headers: list[str], current: URL) -> URL | None:
    """The `rel="next"` target of the Link headers, made absolute against `current`."""
    for header in link_headers:
        for match in _LINK_PART.finditer(header):
            params = match.group(2).lower().replace(" ", "")
            if 'rel="next"' in params or "rel=next" in params:
                return current.join(URL(match.group(1), encoded=True))
    return None
