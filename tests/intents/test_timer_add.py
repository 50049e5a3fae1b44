""""add 2 minutes to the egg timer" puts more time on that timer (it used to set a new
two-minute timer called "to the egg"); "take a minute off the timer" less. The timer
stays the same one, and its length grows with it ("the 8 minute timer")."""

from __future__ import annotations

import asyncio
import re

from appliance.intents.component import Intents
from appliance.tools.base import invoke
from appliance.tools.timers import Timers
from tests.intents.test_answers import say


async def left(timers: Timers) -> dict[str, float]:
    listed = await invoke(timers, {"action": "list"}, 5.0)
    return {t["label"]: t["remaining_s"] for t in listed["result"]["timers"]}


async def test_more_time_on_the_timer_named(intents: Intents, timers: Timers) -> None:
    await say(intents, "set a timer for 7 minutes for the eggs")
    await say(intents, "set a pasta timer for 10 minutes")
    intent, answer = await say(intents, "add 2 minutes to the egg timer")
    assert intent == "TimerAdd"
    assert re.fullmatch(r"Added 2 minutes: (9 minutes|8 minutes and \d+ seconds) left on the "
                        r"eggs timer\.", answer), answer
    now = await left(timers)
    assert sorted(now) == ["eggs", "pasta"]  # one egg timer, no new timer
    assert 8 * 60 < now["eggs"] <= 9 * 60
    assert 9 * 60 < now["pasta"] <= 10 * 60  # the other one untouched
    intent, answer = await say(intents, "take 5 minutes off the pasta timer")
    assert intent == "TimerAdd" and answer.startswith("Took 5 minutes off:"), answer
    assert 4 * 60 < (await left(timers))["pasta"] <= 5 * 60
    # More than is left: refused (what is left said to the second below), nothing lost.
    _, answer = await say(intents, "take 20 minutes off the pasta timer")
    assert re.fullmatch(r"That timer has only (5 minutes|4 minutes and \d+ seconds) left\.",
                        answer), answer
    assert sorted(await left(timers)) == ["eggs", "pasta"]


async def test_the_only_timer_and_the_short_forms(intents: Intents, timers: Timers) -> None:
    await say(intents, "set a timer for 3 minutes")
    for said in ("add another minute", "put 30 seconds more on the timer",
                 "give the timer an extra minute", "extend the timer by 2 minutes"):
        intent, answer = await say(intents, said)
        assert intent == "TimerAdd" and answer.startswith("Added"), (said, answer)
    [(label, remaining)] = (await left(timers)).items()
    assert label == "timer"
    assert 7 * 60 < remaining <= 7.5 * 60
    # The same timer, 3 minutes and 4 and a half more: "the 7 minute and 30 second timer".
    _, answer = await say(intents, "cancel the 7 minute and 30 second timer")
    assert answer == "Cancelled the 7 minute and 30 second timer.", answer
    await say(intents, "set a timer for 3 minutes")
    # Two timers and none named: which one?
    await say(intents, "set a tea timer for 4 minutes")
    _, answer = await say(intents, "add 2 minutes to the timer")
    assert answer.startswith("You have 2 timers"), answer
    # None running: more time is a new timer ("put 10 minutes on the oven timer"), less
    # is said to be nothing.
    await say(intents, "cancel all timers")
    _, answer = await say(intents, "take a minute off the timer")
    assert answer == "There are no timers running.", answer
    assert await left(timers) == {}
    assert await say(intents, "put 10 minutes on the oven timer") == (
        "TimerAdd", "Oven timer set for 10 minutes.")
    # The one named is not running: said so, with another one running ...
    assert await say(intents, "add 2 minutes to the egg timer") == (
        "TimerAdd", "There's no egg timer.")
    # ... but just done, it is a new one of that name.
    done = asyncio.Event()
    timers.listen(lambda event: done.set() if event.get("label") == "egg" else None)
    assert (await invoke(timers, {"action": "set", "seconds": 0.2, "label": "egg"}, 5.0))["ok"]
    await asyncio.wait_for(done.wait(), 5.0)
    assert await say(intents, "add 2 more minutes to the egg timer") == (
        "TimerAdd", "Egg timer set for 2 minutes.")
    assert sorted(await left(timers)) == ["egg", "oven"]
