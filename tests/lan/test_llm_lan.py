"""A chat request on the edge is answered by a core's LLM, and by the other core after kill -9."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from tests.lan.waiting import wait_for

pytestmark = [pytest.mark.lan, pytest.mark.model]

CHAT_TIMEOUT_S = 120.0

# Runs inside the edge's namespace: a local user of the edge, with the real openai client.
CLIENT = """
import json, sys
from openai import OpenAI
client = OpenAI(base_url=f"http://127.0.0.1:{sys.argv[1]}/v1", api_key="unused", max_retries=0)
r = client.chat.completions.create(model="default", max_tokens=8,
                                   messages=[{"role": "user", "content": "Say hi."}])
print(json.dumps({"served_by": r.system_fingerprint, "content": r.choices[0].message.content}))
"""


async def _chat(lan, edge) -> dict:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", lan.ns("b"), sys.executable, "-c", CLIENT, str(edge.proc.port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), CHAT_TIMEOUT_S)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


async def test_edge_chat_is_served_by_a_core_llm_and_fails_over_after_kill_9(
        lan, lan_node, cluster_key, models_dir):
    llm_core = {"node": {"models_dir": str(models_dir)},
                "llm": {"mode": "local", "serve": True, "slots": 1, "context": 512}}
    cores = {"core-a": await lan_node("a", "core", cluster_key, **llm_core),
             "core-c": await lan_node("c", "core", cluster_key, **llm_core)}
    edge = await lan_node("b", "edge", cluster_key, llm={"mode": "remote"})

    async def both_llms():
        return len(await edge.peers(role="llm")) == 2

    await wait_for(both_llms, what="both cores selectable for 'llm' on the edge")
    answer = await _chat(lan, edge)
    served = answer["served_by"]
    assert served in cores
    assert isinstance(answer["content"], str)

    await cores[served].stop(9)
    other = next(name for name in cores if name != served)
    answer = await _chat(lan, edge)
    assert answer["served_by"] == other
