"""What the held-out 'week' list (bench/answers.py --set week) found missing at its first
run, answered with no LLM: a tip and a split bill, where something was put or the car was
parked, whether an item is on the list, a thing whose name has "and" in it, and "stop"
typed while a wake-up alarm rings."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from appliance.intents.component import Intents
from appliance.tools.base import invoke
from appliance.tools.timers import Timers
from appliance.world.store import LocalWorld
from tests.intents.test_answers import say
from tests.intents.test_lists import items


async def test_a_tip_and_a_split_bill(intents: Intents) -> None:
    for said, answer in [
        ("what's a 20 percent tip on 45 dollars", "A 20 percent tip on 45 dollars is 9 dollars."),
        ("what is a 15% tip on $62.40", "A 15 percent tip on 62.40 dollars is 9.36 dollars."),
        ("tip 18 percent on 120", "An 18 percent tip on 120 is 21.60."),
        ("how much should I tip on 80 euros at 20 percent",
         "A 20 percent tip on 80 euros is 16 euros."),
        ("split 90 dollars between 4 people", "90 dollars split 4 ways is 22.50 dollars each."),
        ("split the bill of 250 euros between 3 of us",
         "250 euros split 3 ways is 83.33 euros each."),
        ("split 90 between 4", "90 split 4 ways is 22.50 each."),
    ]:
        assert await say(intents, said) == ("Calculate", answer), said
    # Not money: left to what answered before.
    assert await say(intents, "what's 20 percent of 45") == ("Calculate", "20 percent of 45 is 9.")
    # One of a unit is singular; "a hundred" is a number; a split is 2 or more whole ways
    # and money is not below zero (else not ours: the LLM's, as before).
    for said, answer in [
        ("what's a 20 percent tip on 5 dollars", "A 20 percent tip on 5 dollars is 1 dollar."),
        ("split 4 pounds between 4 people", "4 pounds split 4 ways is 1 pound each."),
        ("split a hundred dollars between three people",
         "100 dollars split 3 ways is 33.33 dollars each."),
    ]:
        assert await say(intents, said) == ("Calculate", answer), said
    for said in ("split 90 dollars between zero people", "split 90 dollars between 1 person",
                 "split 90 between 2.5 people", "what's a 20 percent tip on minus 45"):
        assert await say(intents, said) == (None, ""), said


async def test_where_it_was_put_and_where_the_car_is(intents: Intents,
                                                     world: LocalWorld) -> None:
    assert await say(intents, "where did I park") == (
        "MemoryRecall", "I don't know the car yet. Tell me with: remember that the car is ...")
    assert await say(intents, "remember that I parked on level 3") == (
        "MemoryRemember", "OK, I'll remember that the car is on level 3.")
    for question in ("where did I park", "where did we park the car", "where is my car"):
        assert await say(intents, question) == ("MemoryRecall", "The car is on level 3."), \
            question
    assert await say(intents, "remember that I put my keys in the drawer by the door") == (
        "MemoryRemember", "OK, I'll remember that your keys are in the drawer by the door.")
    for question in ("where are my keys", "where did I put my keys", "where did I leave the keys"):
        assert await say(intents, question) == (
            "MemoryRecall", "Your keys are in the drawer by the door."), question
    # Parked again: the one fact changes, nothing is added.
    await say(intents, "fyi we parked behind the church")
    assert await say(intents, "where did I park") == ("MemoryRecall",
                                                      "The car is behind the church.")
    facts = [e.value for e in await world.items() if e.key.startswith("memory.")]
    assert sorted(f["subject"] for f in facts) == ["my keys", "the car"]


async def test_is_it_on_the_list_and_one_item_with_and(intents: Intents,
                                                      world: LocalWorld) -> None:
    await say(intents, "add toothpaste and dish soap to the shopping list")
    assert await say(intents, "is toothpaste on my shopping list") == (
        "ListCheck", "Yes, toothpaste is on the shopping list.")
    assert await say(intents, "are eggs on the list") == (
        "ListCheck", "No, eggs are not on the shopping list.")
    assert await say(intents, "do we have dish soap and eggs on the shopping list") == (
        "ListCheck", "Dish soap is on the shopping list; eggs are not.")
    assert await say(intents, "is milk or toothpaste on the list") == (
        "ListCheck", "Toothpaste is on the shopping list; milk is not.")
    # "mac and cheese" is one thing; "salt and pepper" two, as before.
    assert await say(intents, "add mac and cheese and milk to the shopping list") == (
        "ListAdd", "Added mac and cheese and milk to the shopping list.")
    assert await say(intents, "add Mac & Cheese to the list") == (
        "ListAdd", "Mac and cheese is already on the shopping list.")
    await say(intents, "add salt and pepper to the shopping list")
    assert await items(world) == ["toothpaste", "dish soap", "mac and cheese", "milk", "salt",
                                  "pepper"]
    # Checking changed nothing.
    assert await say(intents, "how many things are on my shopping list") == (
        "ListShow", "The shopping list has 6 items: toothpaste, dish soap, mac and cheese, "
        "milk, salt and pepper.")


async def test_stop_typed_while_an_alarm_rings(intents: Intents, timers: Timers) -> None:
    events: list[dict[str, Any]] = []
    rang = asyncio.Event()

    def hear(event: dict[str, Any]) -> None:
        events.append(event)
        rang.set()

    timers.listen(hear)
    # Nothing rings: "stop" says nothing, as it always did.
    assert await say(intents, "stop") == ("Stop", "")
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat(timespec="seconds")
    assert (await invoke(timers, {"action": "set", "at": at}, 5.0))["ok"]
    await asyncio.wait_for(rang.wait(), 10.0)
    assert events[-1]["label"] == "alarm"
    assert await say(intents, "stop") == ("Stop", "OK.")
    assert events[-1] == {"dismiss": True}  # the ring (appliance/voice/announce.py) stops
    listed = await invoke(timers, {"action": "list"}, 5.0)
    assert listed["result"]["rang"] == []
    assert await say(intents, "stop") == ("Stop", "")
