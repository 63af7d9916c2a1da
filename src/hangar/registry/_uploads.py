"""Blob uploads (POST a session, PUT the bytes), and the anonymous upload probe that tells
whether a push needs credentials."""

from __future__ import annotations

import asyncio

from hangar import output
from hangar.registry._endpoints import upload_url
from hangar.registry._requests import Requester
from hangar.registry._transport import Call
from hangar.registry.auth import PULL_PUSH
from hangar.registry.errors import (
    AuthenticationError,
    AuthorizationError,
    RegistryError,
    RegistryTimeoutError,
    ServerError,
    UnreachableError,
)
from hangar.registry.retry import RetryBudget


class _UploadLost(Exception):
    """The upload session disappeared (404 on PUT): the upload starts again."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(str(error))
        self.error = error


async def upload(
    requester: Requester, registry: str, repository: str, digest: str, data: bytes
) -> None:
    """Upload `data` (whose digest is `digest`), starting over when the session is lost."""
    # POST and PUT, and any restart of them, share one budget of twice a request's attempts:
    # a registry that keeps failing costs at most 2 * (retries + 1) requests of this upload,
    # never a product of nested loops (it was up to 36 POSTs), and a burst that one request
    # would ride out does not fail an upload because it hit the POST and then the PUT.
    budget = requester.budget(requests=2)
    while True:
        try:
            await _upload_once(requester, registry, repository, digest, data, budget)
            return
        except (UnreachableError, RegistryTimeoutError, ServerError, _UploadLost) as exc:
            # The upload session may be gone with the failed request: start a new one.
            delay = budget.take()
            if delay is None:
                if isinstance(exc, _UploadLost):
                    raise exc.error from None
                raise
            output.debug(f"blob upload to {registry}/{repository} restarts: {exc}")
            await asyncio.sleep(delay)


async def _upload_once(
    requester: Requester,
    registry: str,
    repository: str,
    digest: str,
    data: bytes,
    budget: RetryBudget,
) -> None:
    what = f"blob {digest} in {registry}/{repository}"
    start = Call(
        registry, repository, PULL_PUSH, "POST", f"/v2/{repository}/blobs/uploads/", what,
    )  # fmt: skip
    opened = await requester.request(start, budget)
    location = opened.headers.get("Location")
    if opened.status != 202 or not location:
        raise requester.error(opened, start, push=True)
    endpoint = await requester.endpoint(registry)
    finish = Call(
        registry,
        repository,
        PULL_PUSH,
        "PUT",
        upload_url(endpoint.base, location, digest),
        what,
        headers={"Content-Type": "application/octet-stream"},
        data=data,
        retry=False,  # a failed PUT may have lost the session: upload() starts over
    )
    done = await requester.request(finish, budget)
    if done.status == 404:  # the session expired or was lost: a new one will do
        raise _UploadLost(requester.error(done, finish, push=True))
    if done.status not in (201, 204):
        raise requester.error(done, finish, push=True)


async def push_refused_anonymously(requester: Requester, registry: str, repository: str) -> bool:
    """Would the registry refuse to open an upload without credentials? Opens one (and
    cancels it) to find out."""
    call = Call(
        registry, repository, PULL_PUSH, "POST", f"/v2/{repository}/blobs/uploads/",
        f"repository {registry}/{repository}",
    )  # fmt: skip
    try:
        response = await requester.request(call)
    except (AuthenticationError, AuthorizationError):
        return True
    if response.status in (401, 403):
        return True
    location = response.headers.get("Location")
    if response.status == 202 and location:
        await _cancel_upload(requester, call, location)
    return False


async def _cancel_upload(requester: Requester, call: Call, location: str) -> None:
    endpoint = await requester.endpoint(call.registry)
    cancel = Call(
        call.registry, call.repository, PULL_PUSH, "DELETE",
        upload_url(endpoint.base, location, None), call.what, retry=False,
    )  # fmt: skip
    try:
        await requester.request(cancel)
    except RegistryError as exc:  # an orphaned session is harmless: the registry purges it
        output.debug(f"cancelling a probe upload on {call.registry} failed: {exc}")
