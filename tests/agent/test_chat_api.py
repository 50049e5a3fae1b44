"""POST /api/chat and `hybrid-agent chat` against a real daemon with the real tiny model."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.sse import read_events

pytestmark = pytest.mark.model

AGENT = {
    "max_steps": 1, "max_tokens": 48, "max_text_chars": 200,
    "experts": {"calc": {"system_prompt": "Use the calculator tool for arithmetic.",
                         "tools": ["calculator"], "tool_choice": "required"},
                "home": {"system_prompt": "You control the home by setting keys of the world "
                                          "model with world_set.",
                         "tools": ["world_set"], "tool_choice": "required"}},
}
CLI_TIMEOUT_S = 120.0
CANCEL_TIMEOUT_S = 120.0
#: Long enough that the answer is still being generated when its first text is printed.
STREAMED_TOKENS = 160
POLL_S = 0.05


async def start(daemon_factory: Callable[..., Any], models_dir: Path) -> Any:
    return await daemon_factory(
        node={"models_dir": str(models_dir)},
        llm={"mode": "local", "threads": 2, "slots": 2, "context": 2048},
        world={"mode": "local"}, agent=AGENT)


async def sse(session: aiohttp.ClientSession, url: str, body: Any) -> list[tuple[str, Any]]:
    async with session.post(url, json=body) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/event-stream")
        return await read_events(r)


async def test_chat_streams_the_agents_events_and_the_world_changes(
        daemon_factory: Callable[..., Any], models_dir: Path) -> None:
    d = await start(daemon_factory, models_dir)
    async with aiohttp.ClientSession() as s:
        events = await sse(s, f"{d.url}/api/chat",
                           {"text": "Turn the kitchen light on.", "agent": "home",
                            "conversation_id": "kitchen-1"})
        kinds = [k for k, _ in events]
        assert kinds[-1] == "final" and kinds.count("tool_call") == 1
        assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("final")
        call = next(data for k, data in events if k == "tool_call")
        result = next(data for k, data in events if k == "tool_result")
        assert call["name"] == "world_set" and call["where"] == "local"
        assert result["ok"] is True, result
        final = events[-1][1]
        assert final["conversation_id"] == "kitchen-1" and final["steps"] == 1
        assert "".join(d["text"] for k, d in events if k == "token") == final["text"]
        # The tool really wrote the node's world model.
        async with s.get(f"{d.url}/api/world/{call['arguments']['key']}") as r:
            assert (await r.json())["value"] == call["arguments"]["value"]


async def test_chat_rejects_bad_requests_with_4xx(daemon_factory: Callable[..., Any]) -> None:
    # Checked before the model is asked: no model needed.
    d = await daemon_factory(agent=AGENT)
    url = f"{d.url}/api/chat"
    cases = [({"text": ""}, 400, "text"), ({"text": "x" * 201}, 400, "text"),
             ({"text": "hi", "agent": "nobody"}, 404, "agent"),
             ({"text": "hi", "conversation_id": "has space"}, 400, "conversation_id"),
             ({"text": "hi", "colour": "red"}, 400, "colour"), (["hi"], 400, None)]
    async with aiohttp.ClientSession() as s:
        for body, status, param in cases:
            async with s.post(url, json=body) as r:
                assert r.status == status, body
                err = (await r.json())["error"]
                assert err["param"] == param, body
        async with s.post(url, data=b"{nope", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400


async def test_chat_cli_prints_the_answer_and_tool_calls_on_stderr(
        daemon_factory: Callable[..., Any], models_dir: Path) -> None:
    d = await start(daemon_factory, models_dir)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "chat", "--url", d.url, "--agent", "calc",
        "What", "is", "12", "times", "7?", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    assert proc.returncode == 0, err.decode()
    assert "[tool] calculator(" in err.decode() and "[tool] calculator -> " in err.decode()
    assert "[tool]" not in out.decode() and out.decode().strip()
    # An unknown agent: a clear message and exit status 1.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "chat", "--url", d.url, "--agent", "nobody", "hi",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    assert proc.returncode == 1 and "no agent 'nobody'" in err.decode()


async def test_chat_cli_prints_the_answer_while_it_is_still_being_generated(
        daemon_factory: Callable[..., Any], models_dir: Path) -> None:
    d = await daemon_factory(
        node={"models_dir": str(models_dir)},
        llm={"mode": "local", "threads": 2, "slots": 1, "context": 2048},
        tools={"enabled": []}, agent={"max_tokens": STREAMED_TOKENS})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "chat", "--url", d.url,
        "Tell me a very long story about a dragon.", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.read(1), CLI_TIMEOUT_S)
    assert first, "the CLI printed nothing"
    # The first text is out while the daemon is still generating the answer.
    _, info = await d.get_json("/api/status")
    llm = info["components"]["llm"]
    assert llm["completed"] == 0 and llm["active"] == 1, llm
    assert proc.returncode is None
    rest, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    assert proc.returncode == 0, err.decode()
    assert len((first + rest).decode().strip()) > 1
    _, info = await d.get_json("/api/status")
    assert info["components"]["llm"]["completed"] == 1


async def test_without_a_model_the_turn_ends_in_an_error_event(
        daemon_factory: Callable[..., Any]) -> None:
    d = await daemon_factory(agent=AGENT)  # llm.mode off
    async with aiohttp.ClientSession() as s:
        events = await sse(s, f"{d.url}/api/chat", {"text": "tell me a story"})
    assert [k for k, _ in events] == ["error"]
    assert events[0][1]["code"] == "no_llm_available"


async def test_an_edge_expert_runs_code_on_the_cores_tool_server(
        daemon_factory: Callable[..., Any], models_dir: Path, tmp_path: Path) -> None:
    from appliance.security.keys import create_key_file

    key_file = tmp_path / "cluster.key"
    create_key_file(key_file)
    core = await daemon_factory(node={"tier": "core"}, tools={"serve": True, "enabled": []},
                                security={"cluster_key_file": str(key_file)})
    edge = await daemon_factory(
        node={"tier": "edge", "models_dir": str(models_dir)},
        llm={"mode": "local", "threads": 2, "slots": 1, "context": 2048},
        tools={"enabled": ["python"], "endpoints": [core.url]},
        agent={"max_steps": 1, "max_tokens": 48,
               "experts": {"coder": {"system_prompt": "You write Python and run it with the "
                                                      "python tool.",
                                     "tools": ["python"], "tool_choice": "required"}}},
        security={"cluster_key_file": str(key_file)})
    async with aiohttp.ClientSession() as s:
        events = await sse(s, f"{edge.url}/api/chat",
                           {"text": "Print the word hello.", "agent": "coder"})
        # Small talk says what this node can do: its model answers other questions.
        able = await sse(s, f"{edge.url}/api/chat", {"text": "What can you do?",
                                                     "agent": "coder"})
    assert able[-1] == ("final", {**able[-1][1], "text": "I can answer other questions.",
                                  "intent": "SmallTalkAbilities"}), able
    kinds = [k for k, _ in events]
    assert "tool_call" in kinds and "tool_result" in kinds, events
    call = next(data for k, data in events if k == "tool_call")
    result = next(data for k, data in events if k == "tool_result")
    assert call["name"] == "python" and call["where"] == core.url
    assert events[-1][0] == "final"
    # Whatever the model wrote ran in the core's sandbox: a result, or the sandbox's words.
    if result["ok"]:
        assert result["result"]["exit_code"] == 0
    else:
        assert any(w in result["error"] for w in ("exit status", "killed", "Error")), result


async def test_a_client_that_leaves_cancels_the_models_sequence(
        daemon_factory: Callable[..., Any], models_dir: Path) -> None:
    d = await daemon_factory(
        node={"models_dir": str(models_dir)},
        llm={"mode": "local", "threads": 2, "slots": 1, "context": 2048},
        tools={"enabled": []}, agent={"max_tokens": 400})
    async with aiohttp.ClientSession() as s, s.post(
            f"{d.url}/api/chat", json={"text": "Tell me a very long story about a dragon."}) as r:
        async for raw in r.content:
            if raw.startswith(b"event: token"):
                break  # one token arrived: leave mid-answer
    # Only the daemon's status can tell: poll it, with a generous deadline.
    llm: dict[str, Any] = {}

    async def cancelled() -> None:
        nonlocal llm
        while True:
            _, info = await d.get_json("/api/status")
            llm = info["components"]["llm"]
            if llm["cancelled"] == 1 and llm["active"] == 0:
                return
            await asyncio.sleep(POLL_S)

    try:
        await asyncio.wait_for(cancelled(), CANCEL_TIMEOUT_S)
    except TimeoutError:
        raise AssertionError(f"the sequence was not cancelled: {llm}") from None
    assert llm["completed"] == 0
