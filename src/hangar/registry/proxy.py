"""HTTP(S) proxies from the environment, decided per URL as podman and skopeo decide.

containers/image sends registry traffic through Go's `http.ProxyFromEnvironment`, and hangar
follows the same rules:
- `HTTPS_PROXY` for https URLs and `HTTP_PROXY` for http URLs (the upper-case name first, then
  the lower-case one); an https URL never falls back to `HTTP_PROXY`;
- a value without a scheme means `http://`; hangar speaks to http:// and https:// proxies;
- `localhost` and loopback addresses are never proxied;
- `NO_PROXY`: comma-separated; `*` turns proxies off; an IP or CIDR matches addresses;
  `example.com` matches it and its subdomains, `.example.com` and `*.example.com` subdomains
  only; an entry with `:port` matches that port only (the URL's default port counts).
HTTPS goes through a CONNECT tunnel: the proxy sees the host and port, never a request header;
Authorization is added by the client per request, never to the CONNECT. Credentials in the
proxy URL become a Proxy-Authorization for the proxy alone and never appear in messages.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from yarl import URL

from hangar.errors import HangarError
from hangar.registry.auth import basic_authorization

_SUPPORTED = ("http", "https")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


@dataclass(frozen=True)
class Proxy:
    url: URL  # without credentials
    variable: str  # HTTPS_PROXY, http_proxy, ...: what messages name
    headers: Mapping[str, str] = field(default_factory=dict)  # Proxy-Authorization, if any

    @property
    def address(self) -> str:
        return f"{self.url.host}:{self.url.port}"


@dataclass(frozen=True)
class _NoProxy:
    everything: bool = False
    networks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = ()
    domains: tuple[tuple[str, bool, str], ...] = ()  # (".suffix", also the bare name, port)

    def excludes(self, host: str, port: str) -> bool:
        if self.everything:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            return any(
                address in network and (not want or want == port) for network, want in self.networks
            )
        return any(
            (host.endswith(suffix) or (bare and host == suffix[1:])) and (not want or want == port)
            for suffix, bare, want in self.domains
        )


@dataclass(frozen=True)
class ProxySettings:
    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: _NoProxy = _NoProxy()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ProxySettings:
        env = os.environ if environ is None else environ
        return cls(
            http=_proxy_from(env, "HTTP_PROXY"),
            https=_proxy_from(env, "HTTPS_PROXY"),
            no_proxy=_parse_no_proxy(_getenv(env, "NO_PROXY")[1]),
        )

    def for_url(self, url: URL) -> Proxy | None:
        """The proxy for a request to `url`, or None for a direct connection."""
        proxy = self.https if url.scheme == "https" else self.http
        if proxy is None:
            return None
        host = (url.host or "").lower().rstrip(".")
        port = str(url.explicit_port) if url.explicit_port else _DEFAULT_PORTS.get(url.scheme, "")
        if host == "localhost" or _is_loopback(host):
            return None
        return None if self.no_proxy.excludes(host, port) else proxy


def _getenv(env: Mapping[str, str], name: str) -> tuple[str, str]:
    for variable in (name, name.lower()):
        value = env.get(variable, "")
        if value:
            return variable, value
    return name, ""


def _proxy_from(env: Mapping[str, str], name: str) -> Proxy | None:
    variable, value = _getenv(env, name)
    if not value:
        return None
    text = value if "://" in value else f"http://{value}"
    try:
        url = URL(text)
        port = url.port
    except ValueError:
        url, port = None, None
    if url is None or url.scheme not in _SUPPORTED or not url.host or port is None:
        # The value may carry a password: it is not repeated.
        raise HangarError(
            f"${variable} is not a proxy URL hangar can use",
            hint="write http://HOST:PORT or https://HOST:PORT; socks proxies are not supported",
        )
    headers = {}
    if url.user is not None:
        headers["Proxy-Authorization"] = basic_authorization(url.user, url.password or "")
    return Proxy(url.with_user(None).with_path("").with_query(None), variable, headers)


def _parse_no_proxy(value: str) -> _NoProxy:
    if value.strip() == "*":
        return _NoProxy(everything=True)
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    domains: list[tuple[str, bool, str]] = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return _NoProxy(everything=True)
        host, port = _split_port(entry)
        try:
            networks.append((ipaddress.ip_network(host, strict=False), port))
            continue
        except ValueError:
            pass
        if host.startswith("*."):
            host = host[1:]
        bare = not host.startswith(".")
        domains.append(("." + host if bare else host, bare, port))
    return _NoProxy(False, tuple(networks), tuple(domains))


def _split_port(entry: str) -> tuple[str, str]:
    """`host:port`, `[v6]:port`, `v4:port` -> (host, port); anything else has no port."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if entry.count(":") == 1:
        host, port = entry.split(":")
        if port.isdigit():
            return host, port
    return entry, ""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
