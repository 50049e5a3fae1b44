"""Small talk through the real hassil matcher and the English templates: what is said back,
what "what can you do" claims from the tools and the LLM this node has, and what small talk
must not take from the other intents or from the LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from appliance.config import IntentsConfig
from appliance.intents.component import Intents
from appliance.intents.turn import About
from appliance.tools.calculator import Calculator
from appliance.tools.clock import Clock
from appliance.tools.registry import ToolRegistry
from appliance.tools.timers import Timers
from tests.intents.conftest import TIMEZONE
from tests.intents.test_answers import say

EVERYTHING = ("I can set timers, alarms and reminders, tell you the time and the date, "
              "do arithmetic, convert measures, keep your shopping and to-do lists and remember "
              "things for you.")


@pytest.mark.parametrize(("text", "intent", "answer"), [
    ("Hello!", "SmallTalkGreet", "Hello! What can I do for you?"),
    ("hi there", "SmallTalkGreet", "Hello! What can I do for you?"),
    ("Good morning.", "SmallTalkGreet", "Good morning! What can I do for you?"),
    ("good evening nabu", "SmallTalkGreet", "Good evening! What can I do for you?"),
    ("Thank you!", "SmallTalkThanks", "You're welcome."),
    ("thanks a lot", "SmallTalkThanks", "You're welcome."),
    ("great, thanks for your help", "SmallTalkThanks", "You're welcome."),
    ("that's perfect", "SmallTalkThanks", "You're welcome."),
    ("Goodbye.", "SmallTalkBye", "Goodbye!"),
    ("good night", "SmallTalkBye", "Good night!"),
    ("How are you today?", "SmallTalkHowAreYou",
     "I'm doing well, thanks for asking. What can I do for you?"),
    ("hi, how's it going", "SmallTalkHowAreYou",
     "I'm doing well, thanks for asking. What can I do for you?"),
    ("Who are you?", "SmallTalkIdentity",
     "I'm your home assistant, a program running here on kitchen."),
    ("what's your name", "SmallTalkIdentity",
     "I'm your home assistant, a program running here on kitchen."),
    ("are you a robot?", "SmallTalkIdentity",
     "I'm your home assistant, a program running here on kitchen."),
    ("What can you do?", "SmallTalkAbilities", EVERYTHING),
    ("how can you help me", "SmallTalkAbilities", EVERYTHING),
    ("help", "SmallTalkAbilities", EVERYTHING),
    ("hey", "SmallTalkGreet", "Hello! What can I do for you?"),
    ("Hey there!", "SmallTalkGreet", "Hello! What can I do for you?"),
    ("bye for now", "SmallTalkBye", "Goodbye!"),
])
async def test_small_talk_is_answered_by_the_box(intents: Intents, text: str, intent: str,
                                                 answer: str) -> None:
    intents.about = About(node="kitchen")
    assert await say(intents, text) == (intent, answer)


@pytest.mark.parametrize(("text", "intent"), [
    # Small talk takes nothing from the other intents ...
    ("no thanks", "Stop"),
    ("that's all, thanks", "Stop"),
    ("thanks, never mind", "Stop"),
    ("what do you know", "MemoryList"),
    ("what time is it", "ClockTime"),
    # ... and a greeting (with a name, after a space, with a dash) before a request is
    # passed over.
    ("morning, what time is it", "ClockTime"),
    ("hi jarvis, what time is it", "ClockTime"),
    ("  Hello, what time is it?", "ClockTime"),
    ("Hello - what time is it?", "ClockTime"),
    ("hello what time is it", "ClockTime"),
    ("okay nabu, what's 2 plus 2", "Calculate"),
])
async def test_other_intents_keep_their_requests_greeted_or_not(intents: Intents, text: str,
                                                                intent: str) -> None:
    assert (await say(intents, text))[0] == intent


@pytest.mark.parametrize("text", [
    "who is the president of France", "what is love", "tell me about Paris",
    "how are you made", "help me write a poem", "hello world in python",
    "thanks to whom was the war won",
    # Said about something on the screen or just named; answered with the conversation.
    # ("you're great" is the box's own since the 'family' list: a compliment, thanked for.)
    "who is this", "who is that", "what can I do", "that's nice", "you're great at chess"])
async def test_questions_that_only_sound_like_small_talk_go_to_the_llm(intents: Intents,
                                                                       text: str) -> None:
    assert await intents.answer(text) is None, text


async def test_what_it_can_do_follows_the_tools_the_agent_has_and_the_llm(
        intents: Intents) -> None:
    intents.about = About(node="kitchen", llm=lambda: True)
    assert (await say(intents, "what can you do"))[1] == (
        "I can set timers, alarms and reminders, tell you the time and the date, "
        "do arithmetic, convert measures, keep your shopping and to-do lists, remember things "
        "for you and answer other questions.")
    # An agent profile limited to the calculator and the clock.
    answer = await intents.answer("what can you do", ("calculator", "clock"))
    assert answer is not None
    assert answer.text == "I can tell you the time and the date, do arithmetic, convert " \
        "measures and answer other questions."
    answer = await intents.answer("what can you do", ())
    assert answer is not None and answer.text == "I can answer other questions."
    # Memory and the lists need what remembering and adding need (world_list, world_set),
    # not world_get.
    intents.about = About(node="kitchen")
    answer = await intents.answer("what can you do", ("world_set", "world_list"))
    assert answer is not None and answer.text == \
        "I can keep your shopping and to-do lists and remember things for you."
    answer = await intents.answer("what can you do", ())
    assert answer is not None and answer.text == \
        "On this box I can't do much yet: it has no tools for me and no language model."


@pytest.fixture
async def without_small_talk() -> AsyncIterator[Intents]:
    tools = ToolRegistry([Calculator(), Clock(TIMEZONE)])
    component = Intents(IntentsConfig(small_talk=False), tools, tool_timeout_s=5.0)
    await component.start()
    yield component
    await component.stop()


async def test_small_talk_off_leaves_it_to_the_llm(without_small_talk: Intents) -> None:
    for text in ("hello", "thank you", "who are you", "what can you do"):
        assert await without_small_talk.answer(text) is None, text
        assert not await without_small_talk.complete(text)
    assert (await say(without_small_talk, "what is 2 plus 2"))[1] == "2 plus 2 is 4."


async def test_small_talk_does_not_end_a_voice_turn_at_the_first_pause(
        intents: Intents) -> None:
    # Its words often open a longer request: "Hello ... set a timer", "Thank you ... and
    # what time is it", "Can you help me ... with dinner".
    for text in ("hello", "good morning", "thank you", "who are you", "can you help me",
                 "how are you", "what can you do", "goodbye", "see you"):
        assert not await intents.complete(text), text
    # Of two readings of one utterance, small talk is not preferred over a whole request.
    assert await intents.understood(["hello", "what time is it"]) == 1


async def test_a_request_after_a_greeting_is_answered_as_the_request(
        intents: Intents, timers: Timers) -> None:
    assert (await say(intents, "Hello, what time is it?"))[0] == "ClockTime"
    intent, said = await say(intents, "Hi there! Set a timer for 5 minutes.")
    assert (intent, said) == ("TimerStart", "Timer set for 5 minutes.")
    assert [t["seconds"] for t in (await timers.call({"action": "list"}))["timers"]] == [300]
    assert await intents.complete("good morning, what's the date")
    # Only a greeting is passed over; what follows it still has to be a request.
    passed = intents.describe()["passed_to_llm"]
    assert await intents.answer("hello, who wrote Hamlet?") is None
    assert await intents.answer("history of the hello kitty brand") is None
    assert intents.describe()["passed_to_llm"] == passed + 2


async def test_a_greeting_word_that_is_part_of_a_name_stays_in_it(
        intents: Intents, timers: Timers) -> None:
    # No punctuation after "hello": the whole text is tried first, so the name keeps it.
    assert (await say(intents, "hello kitty timer for 5 minutes"))[1] == \
        "Hello kitty timer set for 5 minutes."
    assert (await say(intents, "how long is left on the hello kitty timer"))[0] == \
        "TimerStatus"
    assert (await say(intents, "Morning, set a timer for 5 minutes"))[1] == \
        "Timer set for 5 minutes."
    assert (await say(intents, "Hello Fresh delivery is on Thursday, remember that"))[1] == \
        "OK, I'll remember that Hello Fresh delivery is on Thursday."
    assert (await say(intents, "hello, when is the hello fresh delivery"))[1] == \
        "Hello Fresh delivery is on Thursday."
