"""The hostile actions of the soak (bench/soak.py), each one of issue 15's findings, sent
from a LAN host over raw TLS sockets (the LAN is served HTTPS), as a paired device
(:data:`TOKEN`, so the routes' own limits are what answers) except where an action is a
stranger's. Every action is bounded in bytes and in time."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable

SOAK_RATE = 4.0
"""New actions a second, at most."""
SOAK_CONCURRENCY = 24
ACTION_TIMEOUT_S = 90.0
MIB = 1024 * 1024
#: A paired device's bearer token (lanclient sets it from its argument); '' for a stranger.
TOKEN = ""
# The box's certificate is self-signed; the soak tests the box, not its certificate.
_TLS = ssl.create_default_context()
_TLS.check_hostname = False
_TLS.verify_mode = ssl.CERT_NONE
LONG_TEXT = "The quick brown fox jumps over the lazy dog near the river bank. " * 60


class Conn:
    """One raw connection; what the server answered, in words."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Conn:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=_TLS), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def send(self, data: bytes) -> bool:
        """False when the server stopped reading (it answered early)."""
        assert self.writer is not None
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), 10)
            return True
        except (ConnectionError, TimeoutError):
            return False

    async def answer(self, timeout: float = 30.0) -> str:
        """The status code, or "closed" / "timeout"."""
        assert self.reader is not None
        try:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
        except TimeoutError:
            return "timeout"
        except ConnectionError:
            return "reset"
        parts = line.split(b" ")
        return parts[1].decode() if line.startswith(b"HTTP/1.1 ") and len(parts) > 1 else "closed"


def _head(method: str, path: str, host: str, extra: str = "", *, device: bool = True) -> bytes:
    auth = f"Authorization: Bearer {TOKEN}\r\n" if device and TOKEN else ""
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}{extra}\r\n".encode()


async def flood_announced(host: str, port: int) -> str:
    """16 MiB of [{},...] announced to /api/chat: a 413 before it is read."""
    async with Conn(host, port) as c:
        await c.send(_head("POST", "/api/chat", host, "Content-Type: application/json\r\n"
                                                      f"Content-Length: {16 * MIB}\r\n"))
        await c.send(b"[" + b"{}," * 80_000)
        return await c.answer()


async def flood_chunked(host: str, port: int, path: str = "/api/chat") -> str:
    """A chunked [{},...] flood (the challenge parsed 430 MB of one): 413 after the limit."""
    async with Conn(host, port) as c:
        await c.send(_head("POST", path, host, "Content-Type: application/json\r\n"
                                               "Transfer-Encoding: chunked\r\n"))
        piece = b"{}," * 20_000
        for _ in range(40):  # 2.4 MB at most
            if not await c.send(b"%x\r\n%s\r\n" % (len(piece), piece)):
                break
        return await c.answer()


async def challenge_chunked(host: str, port: int) -> str:
    return await flood_chunked(host, port, "/api/peers/challenge")


async def unsigned_upload(host: str, port: int) -> str:
    """17 MiB announced by a stranger (no device token): a 401 from the headers alone."""
    async with Conn(host, port) as c:
        await c.send(_head("PUT", "/api/world/soak", host, "Content-Type: application/json\r\n"
                                                           f"Content-Length: {17 * MIB}\r\n",
                           device=False))
        return await c.answer()


async def deep_json(host: str, port: int) -> str:
    """A 40,000-deep body where the LAN may post: 400 json_too_deep."""
    body = b"[" * 40_000 + b"]" * 40_000
    async with Conn(host, port) as c:
        await c.send(_head("POST", "/api/chat", host, "Content-Type: application/json\r\n"
                                                      f"Content-Length: {len(body)}\r\n") + body)
        return await c.answer()


async def deep_json_protected(host: str, port: int) -> str:
    body = b"[" * 100_000 + b"]" * 100_000
    async with Conn(host, port) as c:
        await c.send(_head("POST", "/v1/chat/completions", host,
                           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
                     + body)
        return await c.answer()


async def small_inputs(host: str, port: int) -> str:
    """A superscript limit, a key and a conversation id with a trailing newline."""
    got = []
    for req in (_head("GET", "/api/world?limit=%C2%B2", host),
                _head("PUT", "/api/world/k%0A", host, "Content-Length: 1\r\n") + b"1"):
        async with Conn(host, port) as c:
            await c.send(req)
            got.append(await c.answer())
    body = json.dumps({"text": "hi", "conversation_id": "c\n"}).encode()
    async with Conn(host, port) as c:
        await c.send(_head("POST", "/api/chat", host, "Content-Type: application/json\r\n"
                                                      f"Content-Length: {len(body)}\r\n") + body)
        got.append(await c.answer())
    return "/".join(got)


async def slowloris(host: str, port: int) -> str:
    """Headers a line every second that never end: closed at http.idle_timeout_s."""
    async with Conn(host, port) as c:
        await c.send(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 40:
            await asyncio.sleep(1.0)
            if not await c.send(b"X-Slow: 1\r\n"):
                return "closed"
            assert c.reader is not None
            if c.reader.at_eof():
                return "closed"
        return "still-open"


async def idle_burst(host: str, port: int) -> str:
    """80 silent sockets at once (over the 64 one address may hold): the rest get 503."""
    conns = [Conn(host, port) for _ in range(80)]
    opened = await asyncio.gather(*(c.__aenter__() for c in conns), return_exceptions=True)
    refused = 0
    for c in conns:
        if c.reader is not None:
            try:
                line = await asyncio.wait_for(c.reader.readline(), 0.2)
                refused += line.startswith(b"HTTP/1.1 503")
            except (TimeoutError, ConnectionError):
                pass
    await asyncio.sleep(5.0)
    for c in conns:
        await c.__aexit__()
    failed = sum(isinstance(o, BaseException) for o in opened)
    return f"refused={refused // 8 * 8}+" if not failed else f"connect-failed={failed}"


async def trickled_body(host: str, port: int) -> str:
    """A body a byte at a time: 408 at http.body_timeout_s."""
    async with Conn(host, port) as c:
        await c.send(_head("POST", "/api/chat", host, "Content-Type: application/json\r\n"
                                                      "Content-Length: 1000\r\n"))
        assert c.reader is not None
        waiter = asyncio.ensure_future(c.answer(ACTION_TIMEOUT_S))
        while not waiter.done():
            await c.send(b" ")
            await asyncio.wait({waiter}, timeout=2.0)
        return waiter.result()


async def long_speech(host: str, port: int) -> str:
    """A 3900-character /api/tts: spoken, or 429/503 with Retry-After when the queue is full."""
    body = json.dumps({"text": LONG_TEXT}).encode()
    async with Conn(host, port) as c:
        await c.send(_head("POST", "/api/tts", host, "Content-Type: application/json\r\n"
                                                     f"Content-Length: {len(body)}\r\n") + body)
        return await c.answer(ACTION_TIMEOUT_S)


async def garbage(host: str, port: int) -> str:
    async with Conn(host, port) as c:
        await c.send(bytes(random.randrange(256) for _ in range(2000)) + b"\r\n\r\n")
        return await c.answer(10)


async def huge_header(host: str, port: int) -> str:
    async with Conn(host, port) as c:
        await c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        return await c.answer(10)


Action = Callable[[str, int], Awaitable[str]]
#: (action, weight): the cheap ones often, the ones that hold time or CPU rarely.
ACTIONS: list[tuple[Action, int]] = [
    (flood_announced, 6), (flood_chunked, 4), (challenge_chunked, 3), (unsigned_upload, 6),
    (deep_json, 4), (deep_json_protected, 3), (small_inputs, 6), (slowloris, 2),
    (idle_burst, 1), (trickled_body, 1), (long_speech, 1), (garbage, 4), (huge_header, 3),
]


def soak(host: str, port: int, seconds: float, seed: int) -> dict[str, dict[str, int]]:
    """Run random actions for ``seconds``; {action: {answer: count}}."""
    return asyncio.run(_soak(host, port, seconds, seed))


async def _soak(host: str, port: int, seconds: float, seed: int) -> dict[str, dict[str, int]]:
    rng = random.Random(seed)
    random.seed(seed)
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    slots = asyncio.Semaphore(SOAK_CONCURRENCY)
    tasks: set[asyncio.Task[None]] = set()
    actions, weights = zip(*ACTIONS, strict=True)

    async def one(action: Action) -> None:
        try:
            result = await asyncio.wait_for(action(host, port), ACTION_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            result = type(exc).__name__
        finally:
            slots.release()
        outcomes[action.__name__][result] += 1

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await slots.acquire()
        action = rng.choices(actions, weights)[0]
        task = asyncio.ensure_future(one(action))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(1.0 / SOAK_RATE)
    if tasks:
        await asyncio.wait(tasks, timeout=ACTION_TIMEOUT_S + 10)
    return {name: dict(counts) for name, counts in sorted(outcomes.items())}
