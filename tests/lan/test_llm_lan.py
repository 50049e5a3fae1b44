"""A chat request on the edge is answered by a core's LLM, and by the other core after kill -9."""

from __future__ import annotations

import json

import aiohttp
import pytest

from appliance.security.keys import read_key
from appliance.security.signing import Signer
from tests.lan.waiting import wait_for

pytestmark = [pytest.mark.lan, pytest.mark.model]

CHAT_PATH = "/v1/chat/completions"


async def _chat(edge, signer: Signer) -> tuple[int, dict]:
    body = json.dumps({"model": "default", "max_tokens": 8,
                       "messages": [{"role": "user", "content": "Say hi."}]}).encode()
    # The test process is not loopback to the edge, so it signs like a peer would.
    headers = {"Content-Type": "application/json",
               **signer.sign_headers("POST", CHAT_PATH, body)}
    async with aiohttp.ClientSession() as s, s.post(edge.url + CHAT_PATH, data=body,
                                                    headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def test_edge_chat_is_served_by_a_core_llm_and_fails_over_after_kill_9(
        lan, lan_node, cluster_key, models_dir):
    llm_core = {"node": {"models_dir": str(models_dir)},
                "llm": {"mode": "local", "serve": True, "slots": 1, "context": 512}}
    cores = {"core-a": await lan_node("a", "core", cluster_key, **llm_core),
             "core-c": await lan_node("c", "core", cluster_key, **llm_core)}
    edge = await lan_node("b", "edge", cluster_key, llm={"mode": "remote"})
    signer = Signer(read_key(cluster_key))

    async def both_llms():
        return len(await edge.peers(role="llm")) == 2

    await wait_for(both_llms, what="both cores selectable for 'llm' on the edge")
    status, answer = await _chat(edge, signer)
    assert status == 200, answer
    served = answer["system_fingerprint"]
    assert served in cores
    assert isinstance(answer["choices"][0]["message"]["content"], str)

    await cores[served].proc.stop(9)
    other = next(name for name in cores if name != served)
    status, answer = await _chat(edge, signer)
    assert status == 200, answer
    assert answer["system_fingerprint"] == other
