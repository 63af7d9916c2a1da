"""A small bearer-token issuer for the `token` test registry (docker token auth, JWT).

What distribution 2.8.2 checks in a token (registry/auth/token/token.go, read from the source):
- `iss` equals the registry's `auth.token.issuer`, `aud` (a *string*, not a list) equals its
  `service`;
- `exp` + 60 s leeway is in the future and `nbf` - 60 s is in the past;
- the signing key is found from the JOSE header: `x5c` (a chain whose leaf must verify against
  `rootcertbundle`) first, else `jwk`, else `kid` (a libtrust key ID of a bundle certificate).
  This issuer sends `x5c` with a leaf certificate issued by the test CA, the bundle is the CA;
- `access` lists `{type, name, actions}`; a request passes when every needed action is there.

Because of the 60 s leeway, `exp` is set to `issued + lifetime - 60`, rounded *up* to a whole
second: the registry then refuses the token `lifetime` to `lifetime + 1` seconds after it was
issued, never sooner than the `expires_in` (`lifetime`) the answer promises, as a real token
server's tokens. (Rounded down, a 2 s token died as little as 1 s after issue while the client
was told 2 s: on a loaded machine a client then sent tokens it rightly believed fresh and had
them refused, twice in a row, which is how
test_faults.py::test_a_short_token_lifetime_expires_during_the_run failed under load.)
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.support.pki import IssuedCertificate

# distribution's token.Leeway: it accepts a token until exp + 60 s.
DISTRIBUTION_LEEWAY_SECONDS = 60
TOKEN_PATH = "/token"


@dataclass(frozen=True)
class TokenRequest:
    """One request the issuer received, as tests want to inspect it."""

    method: str
    path: str
    service: str | None
    scopes: list[str]
    account: str | None
    username: str | None  # from a Basic Authorization header, None when there was none
    password: str | None  # likewise: lets tests assert that no password reached the issuer
    authorization: str | None  # the raw header (Basic or anything else the client sent)
    status: int  # what the issuer answered


@dataclass(frozen=True)
class IssuedToken:
    subject: str  # "" for an anonymous token
    access: list[dict[str, object]]
    issued_at: float  # time.time()
    lifetime: int
    token: str
    refused_from: int  # time.time() from which the registry refuses it (exp + leeway)


@dataclass
class TokenServer:
    """Issues JWTs for one registry. Settings may be changed while it runs."""

    service: str
    issuer: str
    username: str
    password: str
    signer: IssuedCertificate
    tls: IssuedCertificate | None = None  # serve HTTPS with this certificate when set
    lifetime: int = 300
    allow_anonymous: bool = False  # anonymous callers get pull-only tokens
    push_allowed: bool = True  # the user's push/delete requests are granted
    requests: list[TokenRequest] = field(default_factory=list)
    issued: list[IssuedToken] = field(default_factory=list)
    _port: int = field(default=0, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def host(self) -> str:
        if not self._port:
            raise RuntimeError("token server was never started")
        return f"127.0.0.1:{self._port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def realm(self) -> str:
        return f"{self.scheme}://{self.host}{TOKEN_PATH}"

    @property
    def issued_count(self) -> int:
        with self._lock:
            return len(self.issued)

    def reset(self) -> None:
        """Forget recorded requests and tokens (the settings stay)."""
        with self._lock:
            self.requests.clear()
            self.issued.clear()

    def start(self) -> None:
        """Serve; after a stop() it comes back on the same port (the registry's realm names it)."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _make_handler(self))
        self._port = server.server_address[1]
        server.daemon_threads = True
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert_path, self.tls.key_path)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # A short poll interval: stop() waits for it, and tests stop servers often.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="token-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # -- issuing -------------------------------------------------------------------------

    def grant(self, scopes: list[str], subject: str) -> list[dict[str, object]]:
        """The access claim for the scopes asked: all of them for the user, pull for anonymous."""
        access: list[dict[str, object]] = []
        for scope in scopes:
            parsed = _parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            if not subject or not self.push_allowed:
                actions = [a for a in actions if a == "pull"]
            if actions:
                access.append({"type": kind, "name": name, "actions": actions})
        return access

    def make_token(self, subject: str, access: list[dict[str, object]]) -> str:
        issued = time.time()
        now = int(issued)
        lifetime = self.lifetime
        refused_from = math.ceil(issued + lifetime)
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": refused_from - DISTRIBUTION_LEEWAY_SECONDS,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        headers = {"x5c": [base64.b64encode(self.signer.der).decode("ascii")]}
        token = jwt.encode(claims, self.signer.private_key, algorithm="ES256", headers=headers)
        with self._lock:
            self.issued.append(IssuedToken(subject, access, issued, lifetime, token, refused_from))
        return token

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    # "repository:ns/app:pull,push"; a name may hold a port ("host:5000/x") so split at the ends.
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


def _decode_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _make_handler(issuer: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the recorded requests are what tests look at."""

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            # OAuth2 POST (docker's refresh-token flow) is not offered: clients must use GET.
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._answer(method_allowed=False)

        def _answer(self, method_allowed: bool = True) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            authorization = self.headers.get("Authorization")
            credentials = _decode_basic(authorization)
            status, body = self._decide(url.path, method_allowed, credentials, query)
            issuer._record(
                TokenRequest(
                    method=self.command,
                    path=url.path,
                    service=(query.get("service") or [None])[0],
                    scopes=_split_scopes(query.get("scope", [])),
                    account=(query.get("account") or [None])[0],
                    username=credentials[0] if credentials else None,
                    password=credentials[1] if credentials else None,
                    authorization=authorization,
                    status=status,
                )
            )
            self._send(status, body)

        def _decide(
            self,
            path: str,
            method_allowed: bool,
            credentials: tuple[str, str] | None,
            query: dict[str, list[str]],
        ) -> tuple[int, dict[str, object]]:
            if path != TOKEN_PATH:
                return HTTPStatus.NOT_FOUND, {"error": "not found"}
            if not method_allowed:
                return HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET"}
            if query.get("service", [None])[0] != issuer.service:
                return HTTPStatus.BAD_REQUEST, {"error": "unknown service"}
            if credentials is not None:
                if credentials != (issuer.username, issuer.password):
                    return HTTPStatus.UNAUTHORIZED, {"error": "invalid credentials"}
                subject = credentials[0]
            elif self.headers.get("Authorization") or not issuer.allow_anonymous:
                return HTTPStatus.UNAUTHORIZED, {"error": "authentication required"}
            else:
                subject = ""
            access = issuer.grant(_split_scopes(query.get("scope", [])), subject)
            token = issuer.make_token(subject, access)
            issued_at = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
            return HTTPStatus.OK, {
                "token": token,
                "access_token": token,
                "expires_in": issuer.lifetime,
                "issued_at": issued_at,
            }

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", 'Basic realm="hangar test token issuer"')
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _split_scopes(values: list[str]) -> list[str]:
    # Clients send one scope per parameter, or several joined by spaces in one.
    return [scope for value in values for scope in value.split(" ") if scope]


def make_token_server(
    *,
    service: str,
    username: str,
    password: str,
    signer: IssuedCertificate,
    tls: IssuedCertificate | None,
) -> TokenServer:
    """A started token server on a free loopback port."""
    server = TokenServer(
        service=service,
        issuer="hangar-test-issuer",
        username=username,
        password=password,
        signer=signer,
        tls=tls,
    )
    server.start()
    return server
