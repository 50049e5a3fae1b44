"""RemoteWorld: a core's world model through the same WorldModel interface, over the node link."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from appliance import jsonbounds
from appliance.net import sse
from appliance.net.http1 import ProtocolError
from appliance.net.peer import PeerClient, PeerError, error_message
from appliance.node import Component
from appliance.world.model import (
    Change,
    Entry,
    InvalidKey,
    InvalidValue,
    NotFound,
    ValueTooLarge,
    VersionConflict,
    WorldError,
    WorldUnavailable,
    check_key,
)

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0
#: Longest line of the change feed accepted from a peer.
MAX_EVENT_BYTES = 1024 * 1024
SUBSCRIBER_QUEUE = 1000

_ERRORS: dict[int, type[WorldError]] = {400: InvalidKey, 404: NotFound, 413: ValueTooLarge}


class RemoteSubscription:
    """The peer's SSE change feed, read by a task into a bounded queue."""

    def __init__(self, client: PeerClient) -> None:
        self._client = client
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._task = asyncio.get_running_loop().create_task(self._read(), name="world-feed")

    async def __aiter__(self) -> AsyncIterator[Change]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    def close(self) -> None:
        self._task.cancel()

    async def _read(self) -> None:
        path = "/api/world/events"
        resp = None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                resp = await self._client.open("GET", path, None, {"Accept": "text/event-stream"})
            if resp.status != 200:
                log.warning("world feed from %s: HTTP %d", self._client.base_url(), resp.status)
                return
            events = sse.Reader(resp.read_some, MAX_EVENT_BYTES)
            event = ""
            while (field := await events.field()) is not None:
                name, value = field
                if name == "event":
                    event = value.strip()
                elif name == "data" and event == "change":
                    d = jsonbounds.loads(value)
                    change = Change(d["op"], d["key"], d.get("value"), int(d["version"]))
                    try:
                        self._queue.put_nowait(change)
                    except asyncio.QueueFull:
                        return
        except (PeerError, OSError, ProtocolError, ValueError, KeyError, TimeoutError) as exc:
            log.warning("world feed ended: %s", exc)
        finally:
            if resp is not None:
                resp.release()
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)


class RemoteWorld(Component):
    """The world model of a trusted core, reached through ``client``."""

    name = "world"

    def __init__(self, client: PeerClient) -> None:
        self._client = client

    async def stop(self) -> None:
        await self._client.close()

    def describe(self) -> dict[str, Any]:
        try:
            peer = self._client.base_url()
        except PeerError:
            peer = None
        return {"mode": "remote", "peer": peer}

    async def get(self, key: str) -> Entry | None:
        status, body = await self._call("GET", f"/api/world/{check_key(key)}")
        if status == 404:
            return None
        self._raise_for(status, body)
        return Entry(body["key"], body["value"], int(body["version"]))

    async def items(self) -> list[Entry]:
        status, body = await self._call("GET", "/api/world")
        self._raise_for(status, body)
        return [Entry(e["key"], e["value"], int(e["version"])) for e in body["entries"]]

    async def set(self, key: str, value: Any, expected_version: int | None = None) -> Entry:
        headers = {} if expected_version is None else {"If-Match": str(expected_version)}
        status, body = await self._call("PUT", f"/api/world/{check_key(key)}", value,
                                        headers=headers)
        self._raise_for(status, body, key, expected_version)
        return Entry(body["key"], body["value"], int(body["version"]))

    async def delete(self, key: str, expected_version: int | None = None) -> int:
        headers = {} if expected_version is None else {"If-Match": str(expected_version)}
        status, body = await self._call("DELETE", f"/api/world/{check_key(key)}",
                                        headers=headers)
        self._raise_for(status, body, key, expected_version)
        return int(body["version"]) if isinstance(body, dict) else -1

    def subscribe(self) -> RemoteSubscription:
        return RemoteSubscription(self._client)

    async def _call(self, method: str, path: str, body: Any = None,
                    headers: dict[str, str] | None = None) -> tuple[int, Any]:
        try:
            status, decoded, _ = await self._client.request(
                method, path, body, headers=headers, timeout_s=REQUEST_TIMEOUT_S)
        except PeerError as exc:
            raise WorldUnavailable(str(exc)) from None
        return status, decoded

    @staticmethod
    def _raise_for(status: int, body: Any, key: str = "", expected: int | None = None) -> None:
        if status == 200:
            return
        message = error_message(body, status)
        if status == 412:
            actual = str(body.get("error", {}).get("param")) if isinstance(body, dict) else ""
            raise VersionConflict(key, expected if expected is not None else -1,
                                  int(actual) if actual.isascii() and actual.isdigit() else -1)
        if status == 400 and isinstance(body, dict) and \
                body.get("error", {}).get("code") == "invalid_value":
            raise InvalidValue(message)
        raise _ERRORS.get(status, WorldUnavailable)(f"remote world: {message}")
