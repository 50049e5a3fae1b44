"""Requests made on a member's own loopback (inside its namespace), as a local user would."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tests.lan.netlab import Lan

CHAT_TIMEOUT_S = 120.0

# A local user of the node, with the real openai client.
CHAT = """
import json, sys
from openai import OpenAI
client = OpenAI(base_url=f"http://127.0.0.1:{sys.argv[1]}/v1", api_key="unused", max_retries=0)
extra = {"conversation_id": sys.argv[2]} if len(sys.argv) > 2 else None
r = client.chat.completions.create(model="default", max_tokens=8, extra_body=extra,
                                   messages=[{"role": "user", "content": "Say hi."}])
print(json.dumps({"served_by": r.system_fingerprint, "content": r.choices[0].message.content}))
"""

PUT_WORLD = """
import sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/world/{sys.argv[2]}",
                             data=sys.argv[3].encode(), method="PUT",
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=60).read().decode())
"""


async def run_in(lan: Lan, member: str, script: str, *args: str) -> Any:
    """Run ``script`` with python in ``member``'s namespace; its stdout as JSON."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", lan.ns(member), sys.executable, "-c", script, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), CHAT_TIMEOUT_S)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


async def chat(lan: Lan, member: str, port: int, conversation: str | None = None,
               ) -> dict[str, Any]:
    """One chat completion on ``member``'s loopback: ``{"served_by", "content"}``; with
    ``conversation``, as part of that conversation (which sticks to the core that served
    it while that core is a candidate)."""
    return await run_in(lan, member, CHAT, str(port), *([conversation] if conversation else []))


async def put_world(lan: Lan, member: str, port: int, key: str, value: Any) -> dict[str, Any]:
    """PUT a world entry on ``member``'s loopback; the stored entry."""
    return await run_in(lan, member, PUT_WORLD, str(port), key, json.dumps(value))
