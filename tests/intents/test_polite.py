"""Requests said as people talk to a speaker (the 'polite' list of bench/answers.py):
fillers and asides before the request, one or more ("um", "actually", "quick
question", "could you tell me"), "would you mind" with its verb, a hedge before a number
("for like five minutes"), "set me a timer", and "that timer" for the one just set. Each
of these went to the LLM, or named a timer "me a", before."""

from __future__ import annotations

import pytest

from appliance.intents.component import Intents
from appliance.tools.base import invoke
from appliance.tools.timers import Timers
from tests.intents.test_answers import say


@pytest.mark.parametrize(("said", "intent", "answer"), [
    ("um set a timer for like five minutes", "TimerStart", "Timer set for 5 minutes."),
    ("can you set me a timer for 20 minutes please", "TimerStart",
     "Timer set for 20 minutes."),
    ("set me a pasta timer for 10 minutes", "TimerStart", "Pasta timer set for 10 minutes."),
    ("remind me in about 20 minutes to check the oven", "ReminderIn",
     "OK, in 20 minutes: check the oven."),
    ("could you tell me how many cups are in a quart", "Convert", "A quart is 4 cups."),
    ("roughly how many kilometers is 10 miles", "Convert",
     "10 miles is about 16.1 kilometers."),
    ("quick question, what's 9 times 7", "Calculate", "9 times 7 is 63."),
    ("hey um actually what is 12 times 3", "Calculate", "12 times 3 is 36."),
    ("could you please tell me what 5 plus 5 is", "Calculate", "5 plus 5 is 10."),
    # Heard so by Whisper base in the spoken 'week' list ("timer for a minute and a half").
    ("Time for a minute and a half.", "TimerStart", "Timer set for 1 minute and 30 seconds."),
])
async def test_fillers_and_hedges(intents: Intents, said: str, intent: str,
                                  answer: str) -> None:
    assert await say(intents, said) == (intent, answer)


async def test_would_you_mind(intents: Intents) -> None:
    assert (await say(intents, "wake me up at 6 tomorrow"))[0] == "AlarmSet"
    assert await say(intents, "would you mind cancelling my 6 am alarm") == (
        "AlarmCancel", "Cancelled the alarm for tomorrow at 6 AM.")
    assert await say(intents, "do you mind adding eggs to the shopping list") == (
        "ListAdd", "Added eggs to the shopping list.")
    # Only after "mind": "just checking what time is it" is no "check" of a fact.
    assert (await say(intents, "just checking what time is it"))[0] != "MemoryRecall"
    # "oh and add butter": Whisper's "and" for "add" then "add" again is no item's word.
    assert await say(intents, "oh and add butter to the list") == (
        "ListAdd", "Added butter to the shopping list.")


async def test_that_timer_is_the_one_just_set(intents: Intents, timers: Timers) -> None:
    await say(intents, "set a timer for 5 minutes")
    await say(intents, "set a tea timer for 10 minutes")
    await say(intents, "set a timer for 3 minutes")
    assert await say(intents, "okay how much time is left on that timer") == (
        "TimerStatus", "3 minutes left on the 3 minute timer.")
    assert await say(intents, "actually cancel that timer") == (
        "TimerCancel", "Cancelled the 3 minute timer.")
    listed = await invoke(timers, {"action": "list"}, 5.0)
    assert sorted(t["label"] for t in listed["result"]["timers"]) == ["tea", "timer"]
    # A duration before "timer" is said as one: "the 5 minute timer".
    assert await say(intents, "cancel the 5 minute timer") == (
        "TimerCancel", "Cancelled the 5 minute timer.")
    assert await say(intents, "cancel the 7 minute timer") == (
        "TimerCancel", "There's no 7 minute timer.")
    # "and" is not passed over: a reading that starts with it stays as it was heard.
    assert await intents.complete("and subtract 15 from 40") is False
