"""Shared fixtures: real docker-registry servers on 127.0.0.1 and an isolated HOME.

Session-scoped registries start once per run (about 50 ms each); `make_registry` gives a
fresh one to a test that stops, restarts or otherwise disturbs its registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.hsm import SoftHsm, session_token
from tests.support.registry import RegistryServer, start_registry


def _session_registry(
    tmp_path_factory: pytest.TempPathFactory, kind: str
) -> Iterator[RegistryServer]:
    server = start_registry(kind, tmp_path_factory.mktemp(f"registry-{kind}"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def registry_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_registry(tmp_path_factory, "http")


@pytest.fixture(scope="session")
def registry_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_registry(tmp_path_factory, "https")


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_registry(tmp_path_factory, "basic")


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    yield from _session_registry(tmp_path_factory, "token")


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., RegistryServer]]:
    """`make_registry(kind, tls=None, deletes=True)`: a fresh registry, stopped when the test
    ends."""
    started: list[RegistryServer] = []

    def make(kind: str, *, tls: bool | None = None, deletes: bool = True) -> RegistryServer:
        workdir = tmp_path / f"registry-{len(started)}-{kind}"
        server = start_registry(kind, workdir, tls=tls, deletes=deletes)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.close()


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME with no credentials or certificates from the machine leaking in."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # XDG_CONFIG_HOME too: newer containers/image reads auth.json under it.
    for name in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_CONFIG_HOME", "COSIGN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    # Set, not unset: unset, c/image's chain falls back to /run/containers/<uid>/auth.json,
    # where a root `podman login` on this machine would leak into the tests.
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return home


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A SoftHSM2 of this test session (its own SOFTHSM2_CONF and token directory) with the
    token `hangar` holding pkcs11-tool's P-256 key `tool-p256`; removed at the end."""
    hsm = SoftHsm.create(tmp_path_factory.mktemp("softhsm"))
    try:
        session_token(hsm)
        yield hsm
    finally:
        hsm.remove()


@pytest.fixture
def fresh_softhsm(tmp_path: Path) -> Iterator[SoftHsm]:
    """A SoftHSM2 of this test alone, for tests that delete, lock or fill its tokens."""
    hsm = SoftHsm.create(tmp_path / "softhsm")
    try:
        yield hsm
    finally:
        hsm.remove()


# Fixtures that start (or share) a real docker-registry: a test using one, directly or through
# another fixture, is marked `registry`, so `scripts/test.sh -m "not registry"` is the fast loop.
REGISTRY_FIXTURES = frozenset(
    {
        "registry_http",
        "registry_https",
        "registry_basic",
        "registry_token",
        "make_registry",
        "vector",  # tests/cli/test_validate.py: a registry of its own for the c/image vector
    }
)
SLOW_DIRS = ("faults",)  # fault and concurrency campaigns: minutes, not seconds


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & REGISTRY_FIXTURES:
            item.add_marker(pytest.mark.registry)
        if any(part in SLOW_DIRS for part in Path(str(item.fspath)).parts):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """hangar once deleted /dev/null when given `-o /dev/null` as root: fail the run if any
    test (or hangar under test) left it anything but a character device."""
    import stat

    try:
        mode = Path("/dev/null").lstat().st_mode
    except FileNotFoundError:
        mode = 0
    if not stat.S_ISCHR(mode):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nFAILED: /dev/null is no longer a character device after this test run")
