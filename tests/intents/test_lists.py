"""The shopping and to-do lists: kept in the real (journaled) world model, one key per
item, shared by every box that shares the world model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.config import IntentsConfig
from appliance.intents import lists
from appliance.intents.component import Intents
from appliance.tools.registry import ToolRegistry
from appliance.tools.world_tools import WorldDelete, WorldGet, WorldList, WorldSet
from appliance.world.store import LocalWorld
from tests.intents.test_answers import say


async def items(world: LocalWorld, name: str = "shopping") -> list[str]:
    entries = [e.value for e in await world.items() if e.key.startswith(f"lists.{name}.")]
    return [v["item"] for v in sorted(entries, key=lambda v: v["at"])]


async def test_add_show_remove_and_clear(intents: Intents, world: LocalWorld) -> None:
    assert await say(intents, "what's on my shopping list") == (
        "ListShow", "The shopping list is empty.")
    assert await say(intents, "add milk to the shopping list") == (
        "ListAdd", "Added milk to the shopping list.")
    assert await say(intents, "put eggs, butter and some bread on my shopping list") == (
        "ListAdd", "Added eggs, butter and bread to the shopping list.")
    assert await items(world) == ["milk", "eggs", "butter", "bread"]
    # Said again, or in the singular: not added twice.
    assert await say(intents, "add egg and milk to the shopping list") == (
        "ListAdd", "Egg and milk are already on the shopping list.")
    assert await say(intents, "add cheese and the milk to the list") == (
        "ListAdd", "Added cheese to the shopping list; milk is already on it.")
    assert await say(intents, "what do we need to buy") == (
        "ListShow", "The shopping list has 5 items: milk, eggs, butter, bread and cheese.")
    assert await say(intents, "take the eggs off the shopping list") == (
        "ListRemove", "Removed eggs from the shopping list.")
    assert await say(intents, "cross bananas off my list") == (
        "ListRemove", "Bananas are not on the shopping list.")
    assert await say(intents, "remove butter and jam from the shopping list") == (
        "ListRemove", "Removed butter from the shopping list; jam is not on it.")
    assert await items(world) == ["milk", "bread", "cheese"]
    assert await say(intents, "clear the shopping list") == (
        "ListClear", "Cleared the shopping list: 3 items taken off.")
    assert await items(world) == []
    assert await say(intents, "empty my shopping list") == (
        "ListClear", "The shopping list was already empty.")


async def test_the_to_do_list_is_its_own_and_and_does_not_split_it(
        intents: Intents, world: LocalWorld) -> None:
    await say(intents, "add milk to the shopping list")
    assert await say(intents, "add call mum and dad to my to do list") == (
        "ListAdd", "Added call mum and dad to the to-do list.")
    assert await say(intents, "what's on my to-do list") == (
        "ListShow", "The to-do list has one item: call mum and dad.")
    assert await items(world, "todo") == ["call mum and dad"]
    assert await items(world) == ["milk"]
    # A mark before the item (speech recognition's comma): the item's own words, not a
    # span one character off ("all the plumber").
    assert await say(intents, "Add, call the plumber to my to-do list.") == (
        "ListAdd", "Added call the plumber to the to-do list.")
    assert await say(intents, "delete the to do list") == (
        "ListClear", "Cleared the to-do list: 2 items taken off.")
    assert await items(world) == ["milk"]


async def test_the_list_outlives_a_restart(tmp_path: Path) -> None:
    for said, answer in (("add flour and sugar to the shopping list",
                          ("ListAdd", "Added flour and sugar to the shopping list.")),
                         ("what's on the shopping list",
                          ("ListShow", "The shopping list has 2 items: flour and sugar."))):
        world = LocalWorld(tmp_path / "world")
        await world.start()
        component = Intents(IntentsConfig(), ToolRegistry(
            [WorldGet(world), WorldSet(world), WorldList(world), WorldDelete(world)]), 5.0)
        await component.start()
        try:
            assert await say(component, said) == answer
        finally:
            await component.stop()
            await world.stop()


async def test_two_boxes_adding_at_once_lose_nothing(world: LocalWorld) -> None:
    """Two intents components (two boxes) over one world model, adding at the same moment:
    one key per item, so neither rewrites the other's list."""
    tools = ToolRegistry([WorldGet(world), WorldSet(world), WorldList(world),
                          WorldDelete(world)])
    kitchen, hall = Intents(IntentsConfig(), tools, 5.0), Intents(IntentsConfig(), tools, 5.0)
    await asyncio.gather(kitchen.start(), hall.start())
    try:
        answers = await asyncio.gather(*(
            box.answer(f"add {item} to the shopping list")
            for box, item in zip([kitchen, hall] * 4, ["apples", "pears", "plums", "figs",
                                                       "limes", "kiwis", "dates", "grapes"],
                                 strict=True)))
        assert all(a is not None and a.intent == "ListAdd" for a in answers)
        assert sorted(await items(world)) == ["apples", "dates", "figs", "grapes", "kiwis",
                                              "limes", "pears", "plums"]
    finally:
        await asyncio.gather(kitchen.stop(), hall.stop())


async def test_bounds(intents: Intents, world: LocalWorld) -> None:
    # Too many items at once, or one too long: not a list request (the LLM's turn).
    many = ", ".join(f"item{i}" for i in range(lists.MAX_SAID_ITEMS + 1))
    assert await say(intents, f"add {many} to the shopping list") == (None, "")
    assert await say(intents, f"add {'x' * (lists.MAX_ITEM_CHARS + 1)} to the shopping list") \
        == (None, "")
    assert await items(world) == []
    # A full list says so, and keeps what it has; a request that would overfill it adds
    # nothing of it (not the first items and then a word about the rest).
    for start in range(0, lists.MAX_ITEMS - 2, lists.MAX_SAID_ITEMS):
        batch = ", ".join(f"thing{i}" for i in range(start, min(lists.MAX_ITEMS - 2,
                                                                 start + lists.MAX_SAID_ITEMS)))
        assert (await say(intents, f"add {batch} to the shopping list"))[0] == "ListAdd"
    assert await say(intents, "add salt, pepper and thyme to the shopping list") == (
        "ListAdd", "The shopping list is full: it holds 100 items. Take something off first.")
    assert len(await items(world)) == lists.MAX_ITEMS - 2
    assert (await say(intents, "add salt and pepper to the shopping list"))[0] == "ListAdd"
    assert await say(intents, "add thyme to the shopping list") == (
        "ListAdd", "The shopping list is full: it holds 100 items. Take something off first.")
    assert len(await items(world)) == lists.MAX_ITEMS


@pytest.mark.parametrize("text", [
    "take the pasta off", "take 5 minutes off", "i need to get up at 7",
    "we need to get going", "i need to pick up the kids", "add it to the shopping list",
    "put them on the list", "add and to the shopping list", "and what's on the list",
    "put a timer on for 5 minutes", "clear my list"])
async def test_what_is_not_a_list_request_is_not_taken(intents: Intents, world: LocalWorld,
                                                        text: str) -> None:
    assert (await say(intents, text))[0] not in {"ListAdd", "ListRemove", "ListClear"}
    assert await items(world) == []


async def test_other_domains_are_not_taken(intents: Intents) -> None:
    assert (await say(intents, "add 5 and 7"))[0] == "Calculate"
    assert (await say(intents, "remember that the milk is in the fridge"))[0] == \
        "MemoryRemember"


async def test_an_item_is_its_words_in_order(intents: Intents, world: LocalWorld) -> None:
    await say(intents, "add peas, ice, coconut oil, chocolate milk and 2 pints of milk to "
                       "the shopping list")
    # An alike item is not the item: nothing is taken off by a near miss.
    for near in ("pears", "rice", "coconut milk"):
        assert await say(intents, f"remove {near} from the shopping list") == (
            "ListRemove", f"{near.capitalize()} {'are' if near == 'pears' else 'is'} not on "
                          "the shopping list.")
    # Order tells items apart; accents and an Oxford comma do not.
    assert await say(intents, "add milk chocolate, jalapeños, and crème fraîche to the "
                              "shopping list") == (
        "ListAdd", "Added milk chocolate, jalapeños and crème fraîche to the shopping list.")
    assert await say(intents, "add jalapenos and creme fraiche to the shopping list") == (
        "ListAdd", "Jalapenos and creme fraiche are already on the shopping list.")
    # "milk" is in three items: none is taken; "coconut" is in one: it is.
    assert (await say(intents, "remove milk from the shopping list"))[1] == \
        "Milk is not on the shopping list."
    assert (await say(intents, "remove coconut from the shopping list"))[1] == \
        "Removed coconut oil from the shopping list."
    assert await items(world) == ["peas", "ice", "chocolate milk", "2 pints of milk",
                                  "milk chocolate", "jalapeños", "crème fraîche"]
