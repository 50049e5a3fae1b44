"""A hand-written misbehaving OpenAI-compatible peer on loopback, for the router's timeouts.

No real core can be told to hang on cue, so this one does, in three ways:
``silent`` accepts the request and never answers, ``mute`` sends 200 and SSE
headers and then nothing, ``stall`` sends one content chunk and then nothing.
``got_request`` is set when a request arrived (tests await it, never sleep);
``close()`` releases every held request and stops the server.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

MODES = ("silent", "mute", "stall")
FIRST_PIECE = "Hel"


class StallingPeer:
    """One misbehaving endpoint; ``await start()``, then ``url``."""

    def __init__(self, mode: str, name: str = "") -> None:
        assert mode in MODES
        self.mode = mode
        self.name = name or f"core-{mode}"
        self.url = ""
        import asyncio

        self.got_request = asyncio.Event()
        self.requests = 0
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, shutdown_timeout=0)

    async def start(self) -> StallingPeer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        self._release.set()
        await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body: Any = await request.json()
        self.requests += 1
        self.got_request.set()
        if self.mode == "silent":
            await self._release.wait()
            return web.Response(status=503)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if self.mode == "stall":
            chunk = {"id": "chatcmpl-stall", "object": "chat.completion.chunk", "created": 0,
                     "model": body.get("model", "default"),
                     "choices": [{"index": 0, "delta": {"content": FIRST_PIECE},
                                  "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await self._release.wait()
        return resp
