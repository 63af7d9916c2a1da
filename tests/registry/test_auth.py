"""Pure parts of registry auth: challenges, token requests and answers, the token cache."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from hangar.registry.auth import (
    BearerToken,
    Challenge,
    TokenCache,
    TokenResponseError,
    basic_authorization,
    parse_token_response,
    parse_www_authenticate,
    pick_challenge,
    token_request,
)

# -- WWW-Authenticate --------------------------------------------------------------------


def test_bearer_challenge_as_distribution_sends_it() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:ns/app:pull,push",error="insufficient_scope"'
    )
    [challenge] = parse_www_authenticate(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.params["service"] == "registry.example.com"
    assert challenge.params["scope"] == "repository:ns/app:pull,push"
    assert challenge.params["error"] == "insufficient_scope"


def test_basic_challenge_any_case_and_spacing() -> None:
    [challenge] = parse_www_authenticate('  BASIC   Realm = "Registry Realm" ')
    assert challenge == Challenge("basic", {"realm": "Registry Realm"})


def test_quoted_values_keep_commas_spaces_and_escapes() -> None:
    header = r'Bearer realm="https://a.example/t?x=1,2", service="my \"svc\", v2",scope=plain'
    [challenge] = parse_www_authenticate(header)
    assert challenge.realm == "https://a.example/t?x=1,2"
    assert challenge.params["service"] == 'my "svc", v2'
    assert challenge.params["scope"] == "plain"


def test_several_challenges_in_one_header_and_in_several() -> None:
    challenges = parse_www_authenticate(
        ['Basic realm="one", Bearer realm="https://t.example/token",service="s"', "Negotiate"]
    )
    assert [c.scheme for c in challenges] == ["basic", "bearer", "negotiate"]
    assert challenges[0].realm == "one"
    assert challenges[1].params == {"realm": "https://t.example/token", "service": "s"}
    assert pick_challenge(challenges) is challenges[1]


def test_malformed_headers_do_not_raise() -> None:
    for header in ("", ",,,", 'Bearer realm="unterminated', "Bearer =x", '"quoted" junk'):
        parse_www_authenticate(header)
    [challenge] = parse_www_authenticate('Bearer realm="unterminated')
    assert challenge.realm == "unterminated"


def test_pick_prefers_bearer_then_basic_and_ignores_others() -> None:
    assert pick_challenge(parse_www_authenticate("Negotiate abc")) is None
    basic = parse_www_authenticate('Basic realm="r"')
    assert pick_challenge(basic) is basic[0]


# -- token requests ----------------------------------------------------------------------


def _challenge(realm: str = "https://auth.example.com/token") -> Challenge:
    return Challenge("bearer", {"realm": realm, "service": "registry.example.com"})


def test_token_request_with_password_is_a_get_with_basic_auth() -> None:
    request = token_request(
        _challenge(), ["repository:ns/app:pull,push"], username="user", password="p@ss:word"
    )
    assert request.method == "GET"
    assert request.data is None
    parts = urlsplit(request.url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "auth.example.com", "/token")
    assert parse_qs(parts.query) == {
        "account": ["user"],
        "service": ["registry.example.com"],
        "scope": ["repository:ns/app:pull,push"],
    }
    assert "p@ss" not in request.url
    encoded = request.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(encoded) == b"user:p@ss:word"


def test_token_request_anonymous_has_no_authorization() -> None:
    request = token_request(_challenge("https://a.example/token?x=1"), [])
    assert request.headers == {}
    assert request.url == "https://a.example/token?x=1&service=registry.example.com"


def test_token_request_with_identity_token_is_an_oauth2_post() -> None:
    request = token_request(
        _challenge(), ["repository:ns/app:pull"], username="<token>", identity_token="refresh-me"
    )
    assert request.method == "POST"
    assert request.url == "https://auth.example.com/token"  # the secret is in the body only
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    form = parse_qs(request.data or "")
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == ["refresh-me"]
    assert form["scope"] == ["repository:ns/app:pull"]
    assert form["service"] == ["registry.example.com"]


def test_token_request_needs_a_realm() -> None:
    with pytest.raises(ValueError):
        token_request(Challenge("bearer", {"service": "s"}), [])


def test_basic_authorization() -> None:
    assert basic_authorization("a", "b") == "Basic YTpi"


# -- token answers -----------------------------------------------------------------------


def test_token_answer_token_or_access_token() -> None:
    token = parse_token_response(b'{"token": "T1", "expires_in": 300}', now=100.0)
    assert token == BearerToken("Bearer T1", 400.0, 300.0)
    token = parse_token_response(b'{"access_token": "T2"}', now=100.0)
    assert token.authorization == "Bearer T2"
    assert token.expires_at == 160.0  # distribution's default lifetime: 60 s


def test_token_answer_bad_expiry_falls_back_to_default() -> None:
    for value in ("0", "-5", '"300"', "true", "null"):
        token = parse_token_response(f'{{"token":"T","expires_in":{value}}}'.encode(), now=0.0)
        assert token.expires_at == 60.0


@pytest.mark.parametrize("body", [b"not json", b"[]", b"{}", b'{"token": ""}', b'{"token": 5}'])
def test_token_answer_without_token_is_refused(body: bytes) -> None:
    with pytest.raises(TokenResponseError):
        parse_token_response(body)


def test_token_is_refreshed_a_little_before_expiry() -> None:
    token = BearerToken("Bearer T", expires_at=300.0, lifetime=300.0)
    assert token.fresh(289.0)
    assert not token.fresh(291.0)  # 10 s margin
    short = BearerToken("Bearer T", expires_at=2.0, lifetime=2.0)
    assert short.fresh(1.7)
    assert not short.fresh(1.9)  # a tenth of a short lifetime


# -- the cache ---------------------------------------------------------------------------


def test_concurrent_requests_share_one_fetch() -> None:
    fetches = 0

    async def fetch() -> BearerToken:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.01)
        return BearerToken(f"Bearer {fetches}", 1e12, 1e12)

    async def main() -> list[BearerToken]:
        cache = TokenCache()
        tokens = await asyncio.gather(*(cache.get("k", fetch) for _ in range(50)))
        tokens.append(await cache.get("k", fetch))
        return tokens

    tokens = asyncio.run(main())
    assert fetches == 1
    assert {t.authorization for t in tokens} == {"Bearer 1"}


def test_expired_token_is_fetched_again_and_invalidate_drops_only_the_refused_one() -> None:
    now = [0.0]
    fetches: list[str] = []

    async def fetch() -> BearerToken:
        fetches.append("x")
        return BearerToken(f"Bearer {len(fetches)}", now[0] + 60, 60)

    async def main() -> None:
        cache = TokenCache(clock=lambda: now[0])
        assert (await cache.get("k", fetch)).authorization == "Bearer 1"
        now[0] = 55.0  # within the refresh margin
        assert (await cache.get("k", fetch)).authorization == "Bearer 2"
        cache.invalidate("k", "Bearer 1")  # stale value: the newer token stays
        assert cache.peek("k") is not None
        cache.invalidate("k", "Bearer 2")
        assert cache.peek("k") is None
        assert (await cache.get("k", fetch)).authorization == "Bearer 3"

    asyncio.run(main())


def test_a_failed_fetch_reaches_every_waiter_and_the_next_call_retries() -> None:
    calls = 0

    async def fetch() -> BearerToken:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RuntimeError("token endpoint down")
        return BearerToken("Bearer ok", 1e12, 1e12)

    async def main() -> None:
        cache = TokenCache()
        results = await asyncio.gather(
            *(cache.get("k", fetch) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        assert (await cache.get("k", fetch)).authorization == "Bearer ok"

    asyncio.run(main())
    assert calls == 2
