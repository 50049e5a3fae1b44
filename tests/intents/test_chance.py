"""Chance and letters through the real matcher: a coin, dice, a number between two; how a
word is spelled; and what is none of these."""

from __future__ import annotations

import re

import pytest

from appliance.intents.component import Intents
from tests.intents.test_answers import say

#: Draws per check that every outcome comes up: a fair coin misses one side in 200 flips
#: with probability 2**-199.
DRAWS = 200


async def test_a_coin_lands_either_way(intents: Intents) -> None:
    seen = {(await say(intents, "flip a coin"))[1] for _ in range(DRAWS)}
    assert seen == {"Heads.", "Tails."}
    assert (await say(intents, "heads or tails"))[0] == "ChanceCoin"


async def test_dice(intents: Intents) -> None:
    faces = set()
    for _ in range(DRAWS):
        intent, answer = await say(intents, "roll a die")
        found = re.fullmatch(r"You rolled (\d+)\.", answer)
        assert intent == "ChanceDice" and found, answer
        faces.add(int(found.group(1)))
    assert faces == {1, 2, 3, 4, 5, 6}
    intent, answer = await say(intents, "roll two dice")
    found = re.fullmatch(r"You rolled (\d) and (\d): (\d+) in all\.", answer)
    assert found and int(found.group(1)) + int(found.group(2)) == int(found.group(3))
    for text, sides in (("roll a d20", 20), ("roll a 20 sided die", 20), ("roll a d4", 4)):
        values = {int(re.findall(r"\d+", (await say(intents, text))[1])[0])
                  for _ in range(DRAWS)}
        assert values <= set(range(1, sides + 1)) and max(values) > 3, (text, values)
    assert (await say(intents, "roll a d7"))[0] is None  # no such die


@pytest.mark.parametrize(("text", "low", "high"), [
    ("pick a number between 1 and 10", 1, 10),
    ("pick a random number from one to a hundred", 1, 100),
    ("give me a number between 10 and 5", 5, 10),
    ("choose a number between minus 3 and 3", -3, 3),
])
async def test_a_number_between_two(intents: Intents, text: str, low: int, high: int) -> None:
    drawn = set()
    for _ in range(DRAWS):
        intent, answer = await say(intents, text)
        found = re.fullmatch(r"I pick (-?\d+)\.", answer)
        assert intent == "ChanceNumber" and found, answer
        drawn.add(int(found.group(1)))
    assert drawn <= set(range(low, high + 1))
    if high - low < 10:  # each of ten comes up in 200 draws but with probability 10 * 0.9**200
        assert drawn == set(range(low, high + 1))
    else:
        assert len(drawn) > 20


@pytest.mark.parametrize(("text", "answer"), [
    ("how do you spell necessary", "Necessary is spelled N, E, C, E, S, S, A, R, Y."),
    ("How do you spell rhythm?", "Rhythm is spelled R, H, Y, T, H, M."),
    ("what's the spelling of accommodate",
     "Accommodate is spelled A, C, C, O, M, M, O, D, A, T, E."),
    ('How do you spell "don\'t"?', "Don't is spelled D, O, N, apostrophe, T."),
    ("how is ice-cream spelled", "Ice-cream is spelled I, C, E, hyphen, C, R, E, A, M."),
    ("spell café", "Café is spelled C, A, F, É."),
])
async def test_spelling(intents: Intents, text: str, answer: str) -> None:
    assert await say(intents, text) == ("Spell", answer)


@pytest.mark.parametrize("text", [
    "spell the capital of france", "spell 42", "how do you spell my name", "spell it",
    "spell out five", "how is it spelled", "pick a number between one and banana",
    "pick a number between 1 and 1", "pick a number between 1 and 10 to the 20"])
async def test_what_is_not_chance_or_spelling(intents: Intents, text: str) -> None:
    assert (await say(intents, text))[0] not in ("Spell", "ChanceNumber"), text
