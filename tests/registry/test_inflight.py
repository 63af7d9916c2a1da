"""The limit on requests in flight (hangar.registry._inflight): never exceeded, no place lost to
a cancelled waiter, and it follows the registry: it shrinks where round trips grow with the
requests in flight (a registry working flat out queues them) and grows where they do not (a
distant registry, whose round trips are the distance)."""

from __future__ import annotations

import asyncio

import pytest

from hangar.registry._inflight import InFlightLimit


async def _requests(limit: InFlightLimit, count: int, service: object, peak: list[int]) -> None:
    """`count` requests, as many at once as the limit lets through; `service(n)` is the time
    one takes with n in flight."""

    async def one() -> None:
        async with limit.slot("GET manifest"):
            peak[0] = max(peak[0], limit.active)
            await asyncio.sleep(service(limit.active))  # type: ignore[operator]

    await asyncio.gather(*(one() for _ in range(count)))


def test_it_shrinks_to_its_floor_where_round_trips_grow_with_the_queue() -> None:
    limit = InFlightLimit(4, 16)
    peak = [0]
    asyncio.run(_requests(limit, 200, lambda n: 0.01 * n, peak))
    assert limit.limit == 4
    assert peak[0] <= 16


def test_it_grows_to_its_ceiling_where_round_trips_are_the_distance() -> None:
    limit = InFlightLimit(4, 16)
    peak = [0]
    asyncio.run(_requests(limit, 300, lambda n: 0.05, peak))
    assert limit.limit == 16
    assert peak[0] == 16  # and it was used


def test_never_more_in_flight_than_the_limit_and_no_place_lost_to_a_cancelled_waiter() -> None:
    limit = InFlightLimit(2, 2)

    async def run() -> None:
        release = asyncio.Event()

        async def holder() -> None:
            async with limit.slot("PUT upload"):
                await release.wait()

        holders = [asyncio.create_task(holder()) for _ in range(2)]
        await asyncio.sleep(0)
        assert limit.active == 2
        waiter = asyncio.create_task(holder())
        await asyncio.sleep(0)
        assert limit.active == 2  # the third waits
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        await asyncio.gather(*holders)
        assert limit.active == 0
        async with limit.slot("PUT upload"), limit.slot("PUT upload"):
            assert limit.active == 2  # both places are free again

    asyncio.run(run())


def test_a_waiter_cancelled_as_it_is_given_a_place_passes_it_on() -> None:
    limit = InFlightLimit(1, 1)

    async def run() -> None:
        await limit._acquire()  # the only place
        waiter = asyncio.create_task(limit._acquire())
        await asyncio.sleep(0)
        assert limit.active == 1
        limit._release()  # handed to the waiter...
        assert limit.active == 1
        waiter.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert limit.active == 0  # passed on, not lost

    asyncio.run(run())
