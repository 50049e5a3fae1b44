"""Home Assistant's view of the box on a LAN of namespaces: _wyoming._tcp found over mDNS,
speech for the LAN, the agent only for wyoming.clients."""

from __future__ import annotations

import pytest

from tests.lan.clients import run_in

pytestmark = [pytest.mark.lan, pytest.mark.model]

WYOMING_PORT = 10700

BROWSE = """
import json, sys, threading
from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf
kind = "_wyoming._tcp.local."
found, seen = [], threading.Event()
def on_change(zeroconf, service_type, name, state_change):
    if state_change is ServiceStateChange.Added:
        found.append(name)
        seen.set()
zc = Zeroconf()
ServiceBrowser(zc, kind, handlers=[on_change])
assert seen.wait(30), "no _wyoming._tcp service seen"
info = zc.get_service_info(kind, found[0], 5000)
print(json.dumps({"name": found[0], "port": info.port, "addresses": info.parsed_addresses()}))
zc.close()
"""

# Describe, then ask the agent, as Home Assistant's conversation agent does.
ASK = """
import asyncio, json, sys
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
async def main():
    async with AsyncTcpClient(sys.argv[1], int(sys.argv[2])) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await asyncio.wait_for(client.read_event(), 10))
        await client.write_event(Event("transcript", {"text": "tell me a story"}))
        reply = await asyncio.wait_for(client.read_event(), 120)
    print(json.dumps({"asr": len(info.asr), "tts": len(info.tts), "handle": len(info.handle),
                      "reply": reply.type, "data": reply.data}))
asyncio.run(main())
"""


async def test_home_assistant_finds_the_box_and_gets_what_its_address_allows(
        lan, lan_node, models_dir):
    box = await lan_node("a", "edge", None, node={"models_dir": str(models_dir)},
                         voice={"enabled": True, "language": "en"},
                         wyoming={"enabled": True, "port": WYOMING_PORT,
                                  "clients": [lan.addr("c")]})
    seen = await run_in(lan, "b", BROWSE)
    assert seen["name"] == "edge-a._wyoming._tcp.local."
    assert seen["port"] == WYOMING_PORT and lan.addr("a") in seen["addresses"]

    # b is on the box's private LAN: speech, but not the agent
    b = await run_in(lan, "b", ASK, lan.addr("a"), str(WYOMING_PORT))
    assert (b["asr"], b["tts"], b["handle"]) == (1, 1, 0)
    assert b["reply"] == "error" and b["data"]["code"] == "unsupported-event"
    assert "wyoming.clients" in b["data"]["text"]
    # c is listed in wyoming.clients: the agent too (it answers: no LLM on this box)
    c = await run_in(lan, "c", ASK, lan.addr("a"), str(WYOMING_PORT))
    assert (c["asr"], c["tts"], c["handle"]) == (1, 1, 1)
    assert c["reply"] == "not-handled" and "language model" in c["data"]["text"]
    _, status = await box.get_json("/api/status")
    assert status["components"]["wyoming"]["connections"] == 2
