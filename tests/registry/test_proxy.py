"""Which URL goes through which proxy: Go's httpproxy rules, which podman and skopeo use."""

from __future__ import annotations

import pytest
from yarl import URL

from hangar.errors import HangarError
from hangar.registry.proxy import ProxySettings

ENV = {"HTTPS_PROXY": "http://proxy.corp:3128", "HTTP_PROXY": "proxy.corp:8080"}


def proxied(url: str, **env: str) -> str | None:
    proxy = ProxySettings.from_environ({**ENV, **env}).for_url(URL(url))
    return proxy.address if proxy else None


def test_scheme_picks_the_variable_and_a_bare_host_means_http() -> None:
    assert proxied("https://r.example/v2/") == "proxy.corp:3128"
    assert proxied("http://r.example/v2/") == "proxy.corp:8080"
    only_http = ProxySettings.from_environ({"HTTP_PROXY": "http://p:1"})
    assert only_http.for_url(URL("https://r.example/v2/")) is None  # no fallback


def test_upper_case_wins_and_lower_case_works() -> None:
    both = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}
    assert ProxySettings.from_environ(both).for_url(URL("https://r/")).address == "upper:1"
    lower = ProxySettings.from_environ({"https_proxy": "http://lower:2"})
    assert lower.for_url(URL("https://r/")).address == "lower:2"


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost:5000/v2/",
        "https://127.0.0.1:5000/v2/",
        "https://[::1]/v2/",
        "https://127.9.9.9/",
    ],
)
def test_loopback_is_never_proxied(url: str) -> None:
    assert proxied(url) is None


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("*", "https://r.example/", True),
        ("example.com", "https://example.com/", True),
        ("example.com", "https://r.example.com/", True),
        (".example.com", "https://example.com/", False),
        (".example.com", "https://r.example.com/", True),
        ("*.example.com", "https://r.example.com/", True),
        ("example.com", "https://badexample.com/", False),
        ("r.example.com:5000", "https://r.example.com:5000/", True),
        ("r.example.com:5000", "https://r.example.com/", False),
        ("r.example.com:443", "https://r.example.com/", True),  # the default port counts
        ("10.0.0.0/8", "https://10.1.2.3:5000/", True),
        ("10.1.2.3", "https://10.1.2.4/", False),
        ("10.1.2.3:5000", "https://10.1.2.3:5000/", True),
        (" other.org , EXAMPLE.com ", "https://r.example.com/", True),
    ],
)
def test_no_proxy(no_proxy: str, url: str, direct: bool) -> None:
    assert (proxied(url, NO_PROXY=no_proxy) is None) is direct


def test_credentials_go_to_the_proxy_header_not_the_url() -> None:
    settings = ProxySettings.from_environ({"HTTPS_PROXY": "http://u:p%40ss@proxy:3128"})
    proxy = settings.for_url(URL("https://r/"))
    assert proxy is not None and proxy.url.user is None and "p@ss" not in str(proxy.url)
    assert proxy.headers["Proxy-Authorization"] == "Basic dTpwQHNz"  # u:p@ss


@pytest.mark.parametrize("value", ["socks5://u:pw-x@p:1080", "http://u:pw-x@", "ftp://u:pw-x@p:21"])
def test_unusable_values_are_refused_without_repeating_them(value: str) -> None:
    with pytest.raises(HangarError) as caught:
        ProxySettings.from_environ({"HTTPS_PROXY": value})
    assert "pw-x" not in str(caught.value) and "HTTPS_PROXY" in str(caught.value)
