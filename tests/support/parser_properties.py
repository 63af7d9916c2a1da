"""The properties every parser of outside input must have, for hypothesis: on any input it
returns a value or raises its documented error type (never a bare ValueError, KeyError,
TypeError, RecursionError... that would reach the user as an "unexpected error"), and where
hangar has a writer for the format, what the writer writes parses back to what was written.

One `ParserCase` per parser: a strategy of inputs (arbitrary bytes or text, mixed with
inputs built near the grammar so the deep branches are reached) and a check that runs the
parser on one input. tests/test_parsers_fuzz.py runs each with a few examples in CI;
bench/fuzz_parsers.py runs the same cases much longer and counts inputs and failures.
"""

from __future__ import annotations

import base64
import json
import string
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import strategies as st

from hangar.errors import HangarError, InvalidReferenceError, KeyFileError, PayloadError
from hangar.imagelist import iter_image_list
from hangar.keys.passphrase import containers_image_line, file_candidates
from hangar.manifest import config_descriptor, config_platform, detect_media_type, index_entries
from hangar.policy.config import PolicyError, parse_policy
from hangar.policy.consumer import checked_scope, consumer_config
from hangar.policy.registries import load_registries_d
from hangar.policy.requirements import SigstoreSigned
from hangar.reference import parse_reference
from hangar.registry.auth import (
    Challenge,
    TokenResponseError,
    parse_token_response,
    parse_www_authenticate,
)
from hangar.registry.authfiles import AuthFile
from hangar.registry.credentials import _find_in_file
from hangar.registry.logins import store_credentials
from hangar.registry.registries_conf import RegistriesConfError, parse_registries_conf
from hangar.sigstore.attachment import NewSignature, append_signatures, parse_attachment
from hangar.sigstore.encrypted_key import (
    encrypt_private_key,
    load_private_key_bytes,
    parse_envelope,
)
from hangar.sigstore.keys import PublicKey, load_public_key_bytes
from hangar.sigstore.payload import build_payload, parse_payload


@dataclass(frozen=True)
class ParserCase:
    name: str
    inputs: st.SearchStrategy[Any]
    check: Callable[[Any], None]  # raises AssertionError (or anything else) on a failure
    slow: bool = False  # each example costs a scrypt derivation: fewer examples


# How often the parsers accepted and refused an input (bench/fuzz_parsers.py prints it: a
# strategy that never reaches one of the two tests little).
OUTCOMES: Counter[str] = Counter()


def expect(errors: tuple[type[BaseException], ...], parse: Callable[[], Any]) -> Any:
    """Run `parse`; the documented errors are an answer (None), anything else fails."""
    try:
        value = parse()
    except errors:
        OUTCOMES["refused"] += 1
        return None
    OUTCOMES["accepted"] += 1
    return value


# --- building blocks ----------------------------------------------------------------------

LOWER = string.ascii_lowercase + string.digits
component = st.text(LOWER + "._-", min_size=1, max_size=8)
host = st.one_of(
    st.sampled_from(["docker.io", "localhost", "127.0.0.1", "quay.io", "example.com", "[::1]"]),
    st.builds(lambda a, b: f"{a}.{b}", component, component),
)
port = st.one_of(st.just(""), st.integers(0, 70000).map(lambda n: f":{n}"))
hexes = st.text("0123456789abcdef", min_size=0, max_size=70)
tag = st.text(string.ascii_letters + string.digits + "._-", min_size=0, max_size=12)


@st.composite
def reference_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(component, min_size=1, max_size=3))
    text = "/".join(parts)
    if draw(st.booleans()):
        text = f"{draw(host)}{draw(port)}/{text}"
    if draw(st.booleans()):
        text += ":" + draw(tag)
    if draw(st.booleans()):
        text += "@" + draw(st.sampled_from(["sha256:", "sha512:", "md5:", ""])) + draw(hexes)
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from(["docker://", " ", "UPPER/", "a//", "-"])) + text
    return text


any_text = st.text(max_size=120)
any_bytes = st.binary(max_size=400)

# JSON values of any shape: what a registry or a file may hold where an object is expected.
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def json_bytes(document: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return document.map(lambda value: json.dumps(value).encode())


def with_fields(base: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]):
    """`base` with some of its fields replaced by drawn values (of any JSON shape too)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        document = json.loads(json.dumps(base))
        for name, strategy in fields.items():
            choice = draw(st.integers(0, 3))
            if choice == 1:
                document[name] = draw(strategy)
            elif choice == 2:
                document[name] = draw(json_value)
            elif choice == 3:
                document.pop(name, None)
        return json.dumps(document).encode()

    return build()


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Deeper than Python's recursion limit: parsers recurse, and must still answer with their error.
deeply_nested = st.sampled_from([2_000, 50_000]).map(deep)
deeply_nested_text = deeply_nested.map(bytes.decode)


# --- image references and list lines -------------------------------------------------------


def check_reference(text: str) -> None:
    ref = expect((InvalidReferenceError,), lambda: parse_reference(text))
    if ref is not None:
        again = parse_reference(str(ref))
        assert again == ref, (text, str(ref), again)


@st.composite
def list_files(draw: st.DrawFn) -> bytes:
    lines = draw(
        st.lists(
            st.one_of(reference_texts(), any_text, st.sampled_from(["", "# c", "// c", "a b c"])),
            max_size=8,
        )
    )
    data = "\n".join(lines).encode()
    if draw(st.integers(0, 5)) == 0:
        data = draw(any_bytes)
    return data


def check_list(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "list"
        path.write_bytes(data)
        entries = expect((HangarError,), lambda: list(iter_image_list(str(path))))
        if entries is None:
            return
        for entry in entries:
            kinds = [entry.reference, entry.error, entry.unsupported]
            assert sum(kind is not None for kind in kinds) == 1, entry
        # the lines hangar keeps (the failed file writes them as they were) read back the same;
        # not a line that was not UTF-8: its text is the lossy decoding, another line
        entries = [e for e in entries if e.text and e.error != "line is not valid UTF-8 text"]
        kept = [entry.text for entry in entries]
        if not kept:
            return
        path.write_text("\n".join(kept) + "\n")
        again = list(iter_image_list(str(path)))
        assert [(e.text, e.reference, e.error) for e in again] == [
            (e.text, e.reference, e.error) for e in entries
        ]


# --- manifests and indexes ------------------------------------------------------------------

INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "a" * 64,
            "size": 1,
            "platform": {"os": "linux", "architecture": "amd64"},
        }
    ],
}
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "x", "digest": "sha256:" + "b" * 64, "size": 2},
    "layers": [],
}


@st.composite
def index_documents(draw: st.DrawFn) -> bytes:
    entry = dict(INDEX["manifests"][0])  # type: ignore[index]
    for name in ("mediaType", "digest", "size", "platform", "annotations"):
        if draw(st.booleans()):
            entry[name] = draw(json_value)
    document = dict(INDEX, manifests=[entry, draw(json_value)])
    return json.dumps(document).encode()


manifest_inputs = st.one_of(
    any_bytes,
    json_bytes(json_value),
    index_documents(),
    with_fields(INDEX, {"manifests": st.lists(json_value)}),
    with_fields(MANIFEST, {"config": st.dictionaries(st.text(max_size=8), json_value)}),
    deeply_nested,
)


def check_manifest(data: bytes) -> None:
    detect_media_type(data, "application/json")
    expect((HangarError,), lambda: index_entries(data))
    expect((HangarError,), lambda: config_descriptor(data))
    expect((HangarError,), lambda: config_platform(data))


# --- simple-signing payloads -----------------------------------------------------------------

PAYLOAD = {
    "critical": {
        "identity": {"docker-reference": "example.com/ns/app:v1"},
        "image": {"docker-manifest-digest": "sha256:" + "c" * 64},
        "type": "cosign container image signature",
    },
    "optional": {"creator": "x", "timestamp": 1},
}


@st.composite
def near_payloads(draw: st.DrawFn) -> bytes:
    """Payloads of the right shape with drawn values: most parse, some break one rule."""
    document = json.loads(json.dumps(PAYLOAD))
    critical = document["critical"]
    critical["identity"]["docker-reference"] = draw(st.one_of(reference_texts(), json_leaf))
    valid_digest = st.text("0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__)
    critical["image"]["docker-manifest-digest"] = draw(
        st.one_of(valid_digest, valid_digest, st.text(max_size=80), json_leaf)
    )
    if draw(st.booleans()):
        critical["type"] = draw(st.sampled_from(["atomic container signature", "x", 1]))
    document["optional"] = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {}, optional={"creator": json_leaf, "timestamp": json_leaf, "x": json_value}
            ),
        )
    )
    return json.dumps(document).encode()


payload_inputs = st.one_of(
    any_bytes,
    near_payloads(),
    json_bytes(json_value),
    with_fields(PAYLOAD, {"critical": json_value, "optional": json_value, "extra": json_value}),
    deeply_nested,
)


def check_payload(data: bytes) -> None:
    expect((PayloadError,), lambda: parse_payload(data))


@st.composite
def payload_fields(draw: st.DrawFn) -> tuple[str, str, str | None, int | None]:
    identity = draw(st.one_of(reference_texts(), st.text(max_size=40)))
    digest = "sha256:" + draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    creator = draw(st.one_of(st.none(), st.text(max_size=20)))
    timestamp = draw(st.one_of(st.none(), st.integers(0, 2**53)))
    return identity, digest, creator, timestamp


def check_payload_round_trip(fields: tuple[str, str, str | None, int | None]) -> None:
    identity, digest, creator, timestamp = fields
    data = expect(
        (PayloadError,),
        lambda: build_payload(identity, digest, creator=creator, timestamp=timestamp),
    )
    if data is None:
        return
    parsed = parse_payload(data)
    assert (parsed.identity, parsed.digest) == (identity, digest), (fields, parsed)
    assert (parsed.creator, parsed.timestamp) == (creator, timestamp), (fields, parsed)


# --- .sig attachments ------------------------------------------------------------------------

SIG_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "x", "size": 1},
    "layers": [
        {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": "sha256:" + "d" * 64,
            "size": 10,
            "annotations": {"dev.cosignproject.cosign/signature": "AAAA"},
        }
    ],
}


@st.composite
def near_attachments(draw: st.DrawFn) -> bytes:
    document = json.loads(json.dumps(SIG_MANIFEST))
    layer = document["layers"][0]
    layer["mediaType"] = draw(st.one_of(st.just(layer["mediaType"]), json_leaf))
    layer["size"] = draw(st.one_of(st.integers(-5, 2**64), json_leaf))
    layer["annotations"] = draw(
        st.one_of(st.dictionaries(st.text(max_size=40), json_leaf, max_size=3), json_leaf)
    )
    document["layers"] = [layer] * draw(st.integers(0, 3)) + draw(st.lists(json_value, max_size=2))
    return json.dumps(document).encode()


attachment_inputs = st.one_of(
    any_bytes,
    near_attachments(),
    json_bytes(json_value),
    with_fields(
        SIG_MANIFEST,
        {"layers": st.lists(json_value), "config": json_value, "mediaType": json_value},
    ),
    deeply_nested,
)


def check_attachment(data: bytes) -> None:
    expect((HangarError,), lambda: parse_attachment(data))


signatures = st.lists(
    st.builds(NewSignature, payload=st.binary(min_size=1, max_size=40), signature=any_bytes),
    min_size=1,
    max_size=4,
)


def check_attachment_round_trip(new: list[NewSignature]) -> None:
    manifest, config = append_signatures(None, None, new)
    parsed = parse_attachment(manifest)
    unique = list(dict.fromkeys((s.digest, s.signature) for s in new))
    assert [(layer.digest, layer.signature) for layer in parsed.layers] == unique
    # appending again adds nothing: the same signatures are already there
    again, _ = append_signatures(parsed, config, new)
    assert len(parse_attachment(again).layers) == len(unique)


# --- policy.json and registries.d ------------------------------------------------------------

POLICY = {
    "default": [{"type": "reject"}],
    "transports": {
        "docker": {
            "example.com": [
                {
                    "type": "sigstoreSigned",
                    "keyPath": "/k.pub",
                    "signedIdentity": {"type": "matchRepository"},
                }
            ]
        }
    },
}
policy_inputs = st.one_of(
    any_bytes,
    json_bytes(json_value),
    with_fields(POLICY, {"default": json_value, "transports": json_value}),
    json_bytes(
        st.fixed_dictionaries(
            {
                "default": st.lists(
                    st.fixed_dictionaries(
                        {"type": st.sampled_from(["reject", "insecureAcceptAnything"])},
                        optional={"extra": json_value},
                    ),
                    max_size=2,
                ),
                "transports": st.dictionaries(
                    st.sampled_from(["docker", "dir", "atomic", "x"]),
                    st.dictionaries(st.text(max_size=20), st.lists(json_value, max_size=2)),
                ),
            }
        )
    ),
    deeply_nested,
)


def check_policy(data: bytes) -> None:
    expect((PolicyError,), lambda: parse_policy(data))


_KEY = PublicKey(ec.generate_private_key(ec.SECP256R1()).public_key())
scopes = st.builds(
    lambda h, p, parts: "/".join([f"{h}{p}", *parts]),
    st.sampled_from(["example.com", "localhost", "127.0.0.1", "a.b.c"]),
    port,
    st.lists(component.filter(lambda c: c[0].isalnum() and c[-1].isalnum()), max_size=2),
)


def check_consumer_round_trip(args: tuple[str, str]) -> None:
    """`hangar sign policy` writes a policy.json and a registries.d file: both read back with
    the scope, the key and the identity rule asked for."""
    written, mode = args
    scope = expect((HangarError,), lambda: checked_scope(written))  # as `sign policy` does
    if scope is None:
        return
    config = consumer_config(scope, _KEY, "k.pub", mode)
    policy = parse_policy(config.policy_json.encode())
    assert policy.docker is not None
    [requirement] = policy.docker[scope]
    assert isinstance(requirement, SigstoreSigned)
    assert requirement.key_datas == (_KEY.pem(),)
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, config.registries_d_name).write_text(config.registries_d_yaml)
        registries = load_registries_d(directory)
        assert registries.use_sigstore_attachments(f"{scope}/app:v1")


registries_d_inputs = st.one_of(
    any_text,
    st.builds(
        lambda key, value: f"docker:\n  {key}:\n    use-sigstore-attachments: {value}\n",
        st.one_of(st.text(max_size=20), scopes),
        st.one_of(st.sampled_from(["true", "false", "yes", "1", "[]", "{}", "~"]), any_text),
    ),
    st.builds(lambda v: f"default-docker:\n  {v}\n", any_text),
    json_value.map(json.dumps),  # JSON is YAML too
    deeply_nested_text,
)


def check_registries_d(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "a.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        config = expect((PolicyError,), lambda: load_registries_d(directory))
        if config is not None:
            expect((PolicyError,), lambda: config.use_sigstore_attachments("example.com/a:v1"))


# --- registries.conf, auth.json, WWW-Authenticate, token answers --------------------------------

toml_value = st.one_of(
    st.sampled_from(['"x"', "true", "false", "1", "[]", '["a", 1]', "{}", '"http://x"', '""']),
    any_text.map(json.dumps),
)
registries_conf_inputs = st.one_of(
    any_text,
    st.lists(
        st.builds(
            lambda location, insecure, blocked: (
                f"[[registry]]\nlocation = {json.dumps(location)}\n"
                f"insecure = {insecure}\nblocked = {blocked}\n"
            ),
            st.one_of(reference_texts(), st.text(max_size=20)),
            st.sampled_from(["true", "false"]),
            st.sampled_from(["true", "false", '"no"']),
        ),
        max_size=3,
    ).map("".join),
    st.lists(
        st.builds(
            lambda key, value: f"[[registry]]\n{key} = {value}\n",
            st.sampled_from(["location", "prefix", "insecure", "blocked", "mirror", "x"]),
            toml_value,
        ),
        max_size=4,
    ).map("".join),
    st.builds(
        lambda table, value: f"[registries.{table}]\nregistries = {value}\n",
        st.sampled_from(["insecure", "block", "search"]),
        toml_value,
    ),
    st.builds(lambda v: f"credential-helpers = {v}\n", toml_value),
    deeply_nested_text.map(lambda text: f"x = {text}\n"),
)


def check_registries_conf(text: str) -> None:
    conf = expect((RegistriesConfError,), lambda: parse_registries_conf(text, "fuzz.conf"))
    if conf is not None:
        for entry in conf.registries:
            assert entry.prefix and isinstance(entry.insecure, bool)


auth_inputs = st.one_of(
    any_bytes,
    deeply_nested,
    json_bytes(json_value),
    json_bytes(
        st.fixed_dictionaries(
            {
                "auths": st.dictionaries(
                    st.sampled_from(["example.com", "example.com/ns", "https://example.com"]),
                    st.one_of(
                        json_value,
                        st.fixed_dictionaries(
                            {
                                "auth": st.one_of(
                                    any_text, any_bytes.map(base64.b64encode).map(bytes.decode)
                                )
                            }
                        ),
                    ),
                ),
            },
            optional={"credHelpers": json_value},
        )
    ),
)


def check_auth_json(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "auth.json"
        path.write_bytes(data)
        for legacy in (False, True):
            found = expect(
                (HangarError,),
                lambda legacy=legacy: _find_in_file(
                    AuthFile(path, legacy), "example.com", "example.com/ns/app"
                ),
            )
            if found is not None:
                assert isinstance(found.username, str) and isinstance(found.password, str)


credentials = st.tuples(
    st.sampled_from(["example.com", "example.com:5000", "example.com/ns", "docker.io"]),
    st.text(min_size=1, max_size=20).filter(lambda u: ":" not in u and "\x00" not in u),
    st.text(max_size=30).filter(lambda p: not p.startswith("\x00") and not p.endswith("\x00")),
)


def check_auth_json_round_trip(args: tuple[str, str, str]) -> None:
    """`hangar login` writes auth.json; the lookup reads back exactly what it wrote."""
    registry, username, password = args
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "auth.json"
        store_credentials(registry, username, password, authfile=str(path))
        host, _, namespace = registry.partition("/")
        key = f"{host}/{namespace}/app" if namespace else f"{host}/app"
        found = _find_in_file(AuthFile(path), host, key)
        assert found is not None
        assert (found.username, found.password) == (username, password)


header_text = st.one_of(
    any_text,
    st.lists(
        st.builds(
            lambda scheme, params: scheme + " " + ", ".join(f"{k}={v}" for k, v in params),
            st.sampled_from(["Bearer", "Basic", "bearer", "Negotiate", ""]),
            st.lists(st.tuples(st.text(LOWER, max_size=6), any_text.map(json.dumps)), max_size=3),
        ),
        max_size=3,
    ).map(", ".join),
)


def check_www_authenticate(header: str) -> None:
    challenges = parse_www_authenticate(header)  # documented: never raises
    for challenge in challenges:
        assert challenge.scheme == challenge.scheme.lower()


challenge_values = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), max_size=20
)  # header values hold no control characters
challenges = st.lists(
    st.builds(
        Challenge,
        scheme=st.sampled_from(["bearer", "basic"]),
        params=st.dictionaries(
            st.text(string.ascii_lowercase, min_size=1, max_size=8), challenge_values, max_size=3
        ),
    ),
    min_size=1,
    max_size=3,
)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_www_authenticate_round_trip(written: list[Challenge]) -> None:
    """A header written as RFC 7235 says (quoted-string values) parses back the same."""
    header = ", ".join(
        challenge.scheme.capitalize()
        + (" " if challenge.params else "")
        + ", ".join(f"{k}={quoted(v)}" for k, v in challenge.params.items())
        for challenge in written
    )
    assert parse_www_authenticate(header) == written, header


def check_token_response(data: bytes) -> None:
    token = expect((TokenResponseError,), lambda: parse_token_response(data, now=0.0))
    if token is not None:
        assert token.authorization.startswith("Bearer ") and token.lifetime > 0


token_inputs = st.one_of(
    any_bytes,
    deeply_nested,
    json_bytes(json_value),
    json_bytes(
        st.fixed_dictionaries(
            {},
            optional={
                "token": st.one_of(st.text(max_size=20), json_value),
                "access_token": st.one_of(st.text(max_size=20), json_value),
                "expires_in": st.one_of(st.integers(-10, 10**6), json_value),
            },
        )
    ),
)


# --- key files (PEM and DER) and passphrase files -------------------------------------------


def pem(label: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()


_SAMPLE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_DER = _SAMPLE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.integers(0, 2))
        if action == 0:
            data[position] = draw(st.integers(0, 255))
        elif action == 1:
            del data[position : position + draw(st.integers(1, 8))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


key_labels = st.sampled_from(
    [
        "PUBLIC KEY",
        "RSA PUBLIC KEY",
        "ENCRYPTED COSIGN PRIVATE KEY",
        "ENCRYPTED SIGSTORE PRIVATE KEY",
        "EC PRIVATE KEY",
        "CERTIFICATE",
        "X",
    ]
)
ENVELOPE = {
    "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": "AAAA"},
    "cipher": {"name": "nacl/secretbox", "nonce": "AAAA"},
    "ciphertext": "AAAA",
}
VALID_ENVELOPE = encrypt_private_key(
    _SAMPLE.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ),
    b"fuzz",
    n=32768,
)
key_inputs = st.one_of(
    any_bytes,
    st.just(pem("PUBLIC KEY", PUBLIC_DER)),
    st.just(VALID_ENVELOPE),
    mutated(VALID_ENVELOPE),
    mutated(pem("PUBLIC KEY", PUBLIC_DER)),
    mutated(PUBLIC_DER),
    st.builds(pem, key_labels, st.one_of(any_bytes, mutated(PUBLIC_DER))),
    st.builds(pem, key_labels, json_bytes(json_value)),
    st.builds(pem, key_labels, deeply_nested),
    st.builds(
        pem,
        st.just("ENCRYPTED COSIGN PRIVATE KEY"),
        with_fields(ENVELOPE, {"kdf": json_value, "cipher": json_value, "ciphertext": json_value}),
    ),
    st.builds(pem, st.just("PUBLIC KEY"), st.just(PUBLIC_DER)).flatmap(mutated),
)


def check_key_file(data: bytes) -> None:
    expect((KeyFileError,), lambda: load_public_key_bytes(data, source="fuzz"))
    expect((KeyFileError,), lambda: parse_envelope(data, "fuzz"))


def check_public_key_round_trip(_: int) -> None:
    """A public key hangar writes (generate-sigstore-key's .pub) reads back as the same key."""
    key = PublicKey(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert load_public_key_bytes(key.pem(), source="written").fingerprint == key.fingerprint


def check_private_key_round_trip(passphrase: bytes) -> None:
    """A private key hangar writes opens with its passphrase, as the same key."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    written = encrypt_private_key(der, passphrase, n=32768)
    opened = load_private_key_bytes(written, passphrase, source="written")
    assert opened.public_key().fingerprint == PublicKey(private.public_key()).fingerprint


def check_passphrase_file(data: bytes) -> None:
    candidates = file_candidates(data)  # documented: any bytes give candidates, never an error
    assert 1 <= len(candidates) <= 2 and candidates[0] == data.strip()
    assert containers_image_line(data) in candidates
    assert b"\n" not in containers_image_line(data)


def check_passphrase_file_round_trip(passphrase: bytes) -> None:
    """A passphrase written as `generate-sigstore-key --passphrase-file` users write it (the
    passphrase and a newline) reads back as itself, first."""
    written = passphrase + b"\n"
    assert passphrase in file_candidates(written)
    if passphrase == passphrase.strip():
        assert file_candidates(written)[0] == passphrase


passphrases = st.binary(max_size=40).filter(lambda p: b"\n" not in p)

CASES = [
    ParserCase("image reference", st.one_of(reference_texts(), any_text), check_reference),
    ParserCase("image list file", list_files(), check_list),
    ParserCase("manifest and index", manifest_inputs, check_manifest),
    ParserCase("simple-signing payload", payload_inputs, check_payload),
    ParserCase("simple-signing payload (round trip)", payload_fields(), check_payload_round_trip),
    ParserCase(".sig attachment", attachment_inputs, check_attachment),
    ParserCase(".sig attachment (round trip)", signatures, check_attachment_round_trip),
    ParserCase("policy.json", policy_inputs, check_policy),
    ParserCase(
        "policy.json + registries.d (round trip)",
        st.tuples(scopes, st.sampled_from(["tag", "digest", "repository"])),
        check_consumer_round_trip,
    ),
    ParserCase("registries.d", registries_d_inputs, check_registries_d),
    ParserCase("registries.conf", registries_conf_inputs, check_registries_conf),
    ParserCase("auth.json", auth_inputs, check_auth_json),
    ParserCase("auth.json (round trip)", credentials, check_auth_json_round_trip),
    ParserCase("WWW-Authenticate", header_text, check_www_authenticate),
    ParserCase("WWW-Authenticate (round trip)", challenges, check_www_authenticate_round_trip),
    ParserCase("token answer", token_inputs, check_token_response),
    ParserCase("key file (PEM/DER)", key_inputs, check_key_file),
    ParserCase("public key (round trip)", st.integers(), check_public_key_round_trip),
    ParserCase("private key (round trip)", passphrases, check_private_key_round_trip, slow=True),
    ParserCase("passphrase file", any_bytes, check_passphrase_file),
    ParserCase("passphrase file (round trip)", passphrases, check_passphrase_file_round_trip),
]
