"""Signing leaves the event loop: a key's `sign` runs in a worker thread, so several
signatures are in flight at once and the loop keeps serving the other jobs meanwhile (a
token call, or an RSA-4096 key, must not stall every image of the run)."""

from __future__ import annotations

import asyncio
import threading

from cryptography.hazmat.primitives.asymmetric import ec

from hangar.operations.signing import Signer, SignOptions
from hangar.sigstore.keys import PrivateKey, PublicKey
from tests.support.memory_registry import MemoryRegistry

IN_FLIGHT = 4  # below the default executor's size on any machine (min(32, cores + 4))


class BarrierKey:
    """A SigningKey whose sign() returns only once IN_FLIGHT calls are waiting together: a
    run that signs one at a time (or on the loop's thread) breaks the barrier."""

    def __init__(self) -> None:
        self.key = PrivateKey(ec.generate_private_key(ec.SECP256R1()))
        self.barrier = threading.Barrier(IN_FLIGHT, timeout=30)
        self.threads: set[str] = set()

    def sign(self, data: bytes) -> bytes:
        self.threads.add(threading.current_thread().name)
        self.barrier.wait()
        return self.key.sign(data)

    def public_key(self) -> PublicKey:
        return self.key.public_key()


def test_signatures_are_made_in_worker_threads_several_at_once() -> None:
    key = BarrierKey()
    signer = Signer(MemoryRegistry(), key, SignOptions(oses=["linux"], arches=["amd64"]))  # type: ignore[arg-type]
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    async def main() -> list:
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        digests = [f"sha256:{n:064x}" for n in range(IN_FLIGHT)]
        made = await asyncio.gather(
            *(signer._new_signature(f"r.example/app@{d}", d) for d in digests)
        )
        stop.set()
        await tick
        return made

    made = asyncio.run(main())
    assert len(made) == IN_FLIGHT
    assert all(key.public_key().verify(new.signature, new.payload) for new in made)
    assert threading.main_thread().name not in key.threads
    assert ticks > 0  # the loop ran while every signature waited in its thread
