""""stop the timer" just after one was done is about that one: the other timers run on
(it used to cancel the next running one). Once a timer is set after it, "stop the timer"
is about the new one again."""

from __future__ import annotations

import asyncio
from typing import Any

from appliance.intents.component import Intents
from appliance.tools.base import invoke
from appliance.tools.timers import Timers
from tests.intents.test_answers import say


async def running(timers: Timers) -> list[str]:
    listed = await invoke(timers, {"action": "list"}, 5.0)
    return sorted(t["label"] for t in listed["result"]["timers"])


async def test_stop_after_one_was_done(intents: Intents, timers: Timers) -> None:
    done = asyncio.Event()

    def hear(event: dict[str, Any]) -> None:
        if event.get("label") == "tea":
            done.set()

    timers.listen(hear)

    async def pasta_on_tea_done() -> None:
        """A pasta timer running, and a tea timer just done."""
        await say(intents, "set a pasta timer for 10 minutes")
        done.clear()
        assert (await invoke(timers, {"action": "set", "seconds": 0.2, "label": "tea"},
                             5.0))["ok"]
        await asyncio.wait_for(done.wait(), 5.0)

    await pasta_on_tea_done()
    assert await say(intents, "stop the timer") == ("TimerCancel", "OK.")
    assert await running(timers) == ["pasta"]
    # Said again, it is about the running one.
    assert (await say(intents, "stop the timer"))[1] == "Cancelled the pasta timer."
    await pasta_on_tea_done()
    assert await say(intents, "turn off the tea timer") == ("TimerCancel", "OK.")
    assert await running(timers) == ["pasta"]
    # Named, a running one is cancelled all the same.
    assert (await say(intents, "stop the pasta timer"))[1] == "Cancelled the pasta timer."
    # A timer set after it: "stop the timer" means the new one.
    await say(intents, "set an egg timer for 5 minutes")
    assert (await say(intents, "stop the timer"))[1] == "Cancelled the egg timer."
    assert await running(timers) == []
    # "stop all timers" cancels them all, as before.
    await say(intents, "set a timer for 3 minutes")
    assert (await say(intents, "stop all timers"))[1] == "Cancelled the timer."
