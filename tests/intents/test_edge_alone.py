"""An edge alone (llm.mode off, no core anywhere) answers everyday requests over POST /api/chat
of a real daemon; what intents do not cover still gets the clear no-LLM error."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.sse import read_events


async def chat(session: aiohttp.ClientSession, url: str, text: str,
               cid: str = "edge-alone") -> list[tuple[str, Any]]:
    async with session.post(f"{url}/api/chat",
                            json={"text": text, "conversation_id": cid}) as resp:
        assert resp.status == 200
        return await read_events(resp)


def final(events: list[tuple[str, Any]]) -> dict[str, Any]:
    assert events[-1][0] == "final", events
    return dict(events[-1][1])


async def test_an_edge_with_no_llm_answers_timers_time_math_and_memory(
        daemon_factory: Callable[..., Any]) -> None:
    daemon = await daemon_factory(world={"mode": "local"}, tools={"timezone": "UTC"})
    async with aiohttp.ClientSession() as s:
        events = await chat(s, daemon.url, "Set a timer for 5 minutes.")
        kinds = [k for k, _ in events]
        assert kinds == ["tool_call", "tool_result", "token", "final"]
        assert events[0][1]["name"] == "timers" and events[0][1]["arguments"] == {
            "action": "set", "seconds": 300.0}
        done = final(events)
        assert done["text"] == "Timer set for 5 minutes."
        assert done["intent"] == "TimerStart" and done["served_by"] == "intent"

        assert re.fullmatch(r"It's \d{1,2}:\d\d [AP]M\.",
                            final(await chat(s, daemon.url, "what time is it?"))["text"])
        assert final(await chat(s, daemon.url, "What is 12 times 7?"))["text"] == \
            "12 times 7 is 84."
        assert final(await chat(s, daemon.url, "remember that the garage code is 4711")
                     )["intent"] == "MemoryRemember"
        assert final(await chat(s, daemon.url, "what is the garage code?"))["text"] == \
            "The garage code is 4711."
        assert final(await chat(s, daemon.url, "forget the garage code"))["text"] == \
            "OK, I forgot the garage code."
        # Asked again, the answer says so; no LLM was needed (nor an error given).
        assert final(await chat(s, daemon.url, "what is the garage code?"))["text"] == (
            "You asked me to forget the garage code. Tell me again with: remember that the "
            "garage code is ...")
        stop = await chat(s, daemon.url, "never mind")
        assert [k for k, _ in stop] == ["final"] and final(stop)["intent"] == "Stop"

        # What it can do, said from what this node has: no LLM, so not "other questions".
        assert final(await chat(s, daemon.url, "What can you do?"))["text"] == (
            "I can set timers, alarms and reminders, tell you the time and the date, "
            "do arithmetic, convert measures, keep your shopping and to-do lists and remember "
            "things for you.")
        status, body = await daemon.get_json("/api/status")
        assert final(await chat(s, daemon.url, "who are you"))["text"] == \
            f"I'm your home assistant, a program running here on {body['name']}."

        # Not an everyday request: no LLM here, and the error says so.
        events = await chat(s, daemon.url, "What is the capital of France?")
        assert events[-1][0] == "error" and events[-1][1]["code"] == "no_llm_available"

        status, body = await daemon.get_json("/api/status")
        assert status == 200
        described = body["components"]["intents"]
        assert described["answered"]["TimerStart"] == 1 and described["passed_to_llm"] == 1


async def test_intents_can_be_turned_off(daemon_factory: Callable[..., Any]) -> None:
    daemon = await daemon_factory(world={"mode": "local"}, intents={"enabled": False})
    async with aiohttp.ClientSession() as s:
        events = await chat(s, daemon.url, "What is 12 times 7?")
    assert events[-1][0] == "error" and events[-1][1]["code"] == "no_llm_available"


async def test_small_talk_can_be_left_to_the_llm(daemon_factory: Callable[..., Any]) -> None:
    daemon = await daemon_factory(world={"mode": "local"}, intents={"small_talk": False})
    async with aiohttp.ClientSession() as s:
        events = await chat(s, daemon.url, "Hello!")
        assert events[-1][0] == "error" and events[-1][1]["code"] == "no_llm_available"
        assert final(await chat(s, daemon.url, "What is 12 times 7?"))["text"] == \
            "12 times 7 is 84."


async def test_an_alarm_survives_a_restart_of_the_daemon(daemon_factory: Callable[..., Any],
                                                       tmp_path: Path) -> None:
    state = tmp_path / "kept-state"
    sections = {"node": {"state_dir": str(state)}, "world": {"mode": "local"},
                "tools": {"timezone": "UTC"}}
    first = await daemon_factory(**sections)
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    when += dt.timedelta(minutes=1 if when.minute == 0 else 0)  # not said "noon"/"midnight"
    async with aiohttp.ClientSession() as s:
        done = final(await chat(s, first.url, f"set an alarm for {when:%H:%M}"))
    assert done["intent"] == "AlarmSet", done
    said = f"{when:%-I:%M %p}".replace(":00 ", " ")
    assert done["text"].endswith(f" at {said}."), done
    assert await first.stop() == 0
    kept = json.loads((state / "timers.json").read_text())
    assert [t["label"] for t in kept["timers"]] == ["alarm"]

    second = await daemon_factory(**sections)
    async with aiohttp.ClientSession() as s:
        listed = final(await chat(s, second.url, "what alarms do I have"))
    assert listed["intent"] == "AlarmList" and listed["text"].startswith("One alarm: ")
    assert listed["text"].endswith(f" at {said}."), listed
