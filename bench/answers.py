"""How often the assistant answers everyday requests right: POST /api/chat of a real daemon.

Starts a daemon (world model local, tools.timezone UTC, the LLM as --llm says:
``off`` is an edge alone, ``local`` the default model in-process), sends every
request of the evaluation set in order (a few depend on the ones before: recall
after remember), checks each answer with its checker, and prints JSON: % correct
per domain and overall, answers that contain raw JSON, the worst answers, and
per request the latency. ``--set heldout`` runs the second, smaller list written
in other words (two of its misses, a which-day and a how-much-longer phrasing, were
fixed in the templates after its first run); ``--set fresh`` a third list written last and
run once, never tuned on; ``--set household`` a fourth, of 139 requests in a household's short
forms (its first run's misses were fixed); ``--set smalltalk`` a fifth, of greetings, thanks
and "what can you do"; ``--set convert`` a sixth, of unit conversions, and
``--set convert-heldout`` sixteen more never tuned on; ``--set lists`` a seventh, of the
shopping and to-do lists; ``--set calendar`` an eighth, of other places' times and days
until a holiday; ``--set alarms`` a ninth, of alarms and reminders at a clock time, and
``--set alarms-heldout`` seventeen more never tuned on; ``--set misc`` a coin, dice,
a number, spelling and how long until a clock time; ``--set repeat`` repeating alarms and
reminders; ``--set change`` an alarm moved to another time; ``--set week`` a household's
week across the domains, held out at its first run; ``--set polite`` requests said with
please, "hey" and "um"; ``--set family`` a family's day, ``--set british`` a British
household's day (with ``--measures imperial``, as a British box measures), and ``--set
kitchen`` a cook's evening and an older relative's day, each held out at its first run.
With an LLM it also measures tokens/s of one long answer and the daemon's RSS (to compare
models: ``--model F.gguf --domains open,small talk``). ``--voice`` speaks
each request (the piper voice of the models dir, else espeak-ng) into /api/voice and scores
the answer given to the transcript.

    .venv/bin/python bench/answers.py [--set eval|heldout|...|lists|all]
                                      [--llm off|local] [--voice]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.voice_turn import (
    DEFAULT_MODELS,
    _free_port,
    _wait_ready,
    add_voice_setting_option,
    daemon_config,
    turn,
)
from tests.support.sse import read_events

TURN_TIMEOUT_S = 180.0
WORST = 12
#: Domains answered by intents; the rest (open questions) by the LLM. Small talk has been
#: answered by intents too since 2026-12-06; it is kept out of this figure, so that the
#: figure stays comparable with the runs before.
INTENT_DOMAINS = ("timers", "clock", "arithmetic", "memory", "stop")

Check = Callable[[str, dict[str, Any]], bool]


@dataclass(frozen=True)
class Case:
    domain: str
    text: str
    check: Check
    expect: str
    """What a right answer has, in words (for the report)."""


def has(*patterns: str) -> Check:
    """Every regex (case-insensitive) occurs in the answer (thousands commas ignored:
    speech recognition writes "4,711")."""
    return lambda a, _c: all(re.search(p, _plain(a), re.I) for p in patterns)


def _plain(answer: str) -> str:
    """``answer`` without thousands commas (speech recognition writes "4,711")."""
    return re.sub(r"(?<=\d),(?=\d{3})", "", answer)


def timer_set(*patterns: str) -> Check:
    """A timer was set (the answer says so) for what ``patterns`` name."""
    return has(r"timer set|set for|^OK, in ", *patterns)


def remembered(*patterns: str) -> Check:
    return has(r"remember|noted|got it", *patterns)


def unknown(value: str) -> Check:
    """Asked about a forgotten fact: says it does not know, or was told to forget, and
    does not give the old value."""
    said = has(r"don't know|not|no |forget|forgot")
    return lambda a, c: said(a, c) and value not in _plain(a)


def number(value: float) -> Check:
    """The answer says ``value`` (within 1 %) as its last number ("minus 40" is -40)."""
    def check(a: str, _c: dict[str, Any]) -> bool:
        a = re.sub(r"\bminus\s+(?=\d)", "-", a, flags=re.I)
        nums = [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", a)]
        return bool(nums) and abs(nums[-1] - value) <= max(1e-9, 0.01 * abs(value))
    return check


def clock_time(a: str, ctx: dict[str, Any]) -> bool:
    now: dt.datetime = ctx["now"]
    for h, m in re.findall(r"\b(\d{1,2}):(\d{2})\b", a):
        told = int(h) * 60 + int(m)
        for hour in (now.hour, now.hour % 12 or 12):
            if abs(told - (hour * 60 + now.minute)) <= 2:
                return True
    return False


def weekday(a: str, ctx: dict[str, Any]) -> bool:
    return ctx["now"].strftime("%A").lower() in a.lower()


def date(a: str, ctx: dict[str, Any]) -> bool:
    now = ctx["now"]
    return now.strftime("%B").lower() in a.lower() and re.search(rf"\b{now.day}\b", a) \
        is not None


def quiet(a: str, _c: dict[str, Any]) -> bool:
    """Stop: nothing, or a short acknowledgement."""
    return len(a.split()) <= 3


def nonempty_prose(a: str, _c: dict[str, Any]) -> bool:
    return len(a.split()) >= 2 and not looks_like_json(a)


def looks_like_json(text: str) -> bool:
    body = text.strip().strip("`").strip()
    if body.startswith("json"):
        body = body[4:].strip()
    if body[:1] not in "{[":
        return False
    try:
        json.loads(body)
    except ValueError:
        return bool(re.search(r'"(name|arguments|tool)"\s*:', body))
    return True


def eval_set() -> list[Case]:
    """The evaluation set: several phrasings per domain, in order (memory builds up)."""
    t = "timers"
    c = "clock"
    m = "arithmetic"
    r = "memory"
    cases = [
        Case(t, "Set a timer for 5 minutes.", timer_set(r"5 minutes"), "5 minutes"),
        Case(t, "set a timer for ten minutes", timer_set(r"10 minutes"), "10 minutes"),
        Case(t, "Start a 3 minute timer please", timer_set(r"3 minutes"), "3 minutes"),
        Case(t, "timer for 90 seconds", timer_set(r"1 minute and 30 seconds|90 seconds"), "90 s"),
        Case(t, "Set a timer for an hour and a half.", timer_set(r"1 hour and 30 minutes"),
             "1.5 h"),
        Case(t, "set a timer for two and a half minutes", timer_set(r"2 minutes and 30 seconds"),
             "2.5 min"),
        Case(t, "Set a pasta timer for 12 minutes.", timer_set(r"pasta", r"12 minutes"), "pasta"),
        Case(t, "set a timer for 20 minutes called laundry", timer_set(r"laundry", r"20 minutes"),
             "laundry"),
        Case(t, "How long is left on the pasta timer?", has(r"left", r"pasta"),
             "~12 min"),
        Case(t, "what timers do I have", has(r"\d+ timers:|one timer:", r"pasta"), "the list"),
        Case(t, "cancel the laundry timer", has(r"cancel", r"laundry"), "cancelled"),
        Case(t, "Cancel all timers.", has(r"cancelled (\d+ timers|the timer)"), "all cancelled"),
        Case(t, "how much time is left on my timer", has(r"no timers"), "none"),
        Case(c, "What time is it?", clock_time, "the time"),
        Case(c, "what's the time", clock_time, "the time"),
        Case(c, "tell me the time please", clock_time, "the time"),
        Case(c, "do you know what time it is", clock_time, "the time"),
        Case(c, "What's the date today?", date, "the date"),
        Case(c, "what is today's date", date, "the date"),
        Case(c, "What day is it?", weekday, "the weekday"),
        Case(c, "what day of the week is it", weekday, "the weekday"),
        Case(m, "What is 12 times 7?", number(84), "84"),
        Case(m, "what's twelve times seven", number(84), "84"),
        Case(m, "What is 15 percent of 80?", number(12), "12"),
        Case(m, "what's 20% of 150", number(30), "30"),
        Case(m, "What is the square root of 144?", number(12), "12"),
        Case(m, "square root of 81", number(9), "9"),
        Case(m, "What is 2 to the power of 10?", number(1024), "1024"),
        Case(m, "what is 3 plus 4 times 5", number(23), "23"),
        Case(m, "What is 17 plus 25?", number(42), "42"),
        Case(m, "what is 100 minus 37", number(63), "63"),
        Case(m, "how much is 144 divided by 12", number(12), "12"),
        Case(m, "add 5 and 7", number(12), "12"),
        Case(m, "multiply 6 by 9", number(54), "54"),
        Case(m, "what's 7 squared", number(49), "49"),
        Case(m, "calculate 2.5 times 4", number(10), "10"),
        Case(r, "Remember that the garage code is 4711.", remembered(r"garage code", r"4711"),
             "remembered"),
        Case(r, "What is the garage code?", has(r"4711"), "4711"),
        Case(r, "what's the code for the garage", has(r"4711"), "4711"),
        Case(r, "remember my wifi password is sunflower", remembered(r"sunflower"), "remembered"),
        Case(r, "what is my wifi password", has(r"sunflower"), "sunflower"),
        Case(r, "remember that the plumber's number is 555 1234", remembered(r"555 ?1234"),
             "remembered"),
        Case(r, "what's the plumber's number?", has(r"555 ?1234"), "555 1234"),
        Case(r, "what do you remember", has(r"4711", r"sunflower"), "all facts"),
        Case(r, "Forget the garage code.", has(r"forg"), "forgotten"),
        Case(r, "do you remember the garage code?", unknown("4711"), "forgotten"),
        Case("stop", "Stop.", quiet, "nothing"),
        Case("stop", "never mind", quiet, "nothing"),
        Case("stop", "cancel", quiet, "nothing"),
        Case("stop", "be quiet", quiet, "nothing"),
        Case("stop", "that's all, thanks", quiet, "nothing"),
        Case("open", "What is the capital of France?", has(r"paris"), "Paris"),
        Case("open", "How many legs does a spider have?", has(r"\b(8|eight)\b"), "8"),
        Case("open", "What color is the sky on a clear day?", has(r"blue"), "blue"),
        Case("open", "Which planet is known as the red planet?", has(r"mars"), "Mars"),
        Case("open", "What is the boiling point of water in celsius?", has(r"\b100\b"), "100"),
        Case("open", "Who wrote Romeo and Juliet?", has(r"shakespeare"), "Shakespeare"),
        Case("open", "What is the largest ocean on Earth?", has(r"pacific"), "Pacific"),
        Case("open", "How many days are in a week?", has(r"\b(7|seven)\b"), "7"),
        Case("small talk", "Hello!", has(r"\b(hello|hi|hey|greetings|welcome)\b"),
             "a greeting"),
        Case("small talk", "Who are you?", has(r"assistant|\bAI\b|help"),
             "an assistant"),
        Case("small talk", "Thank you!", has(r"welcome|pleasure|glad|no problem|anytime"),
             "you're welcome"),
        Case("small talk", "How are you today?", has(r"fine|good|well|great|doing|thank"),
             "a reply"),
    ]
    return cases


def heldout_set() -> list[Case]:
    """Written after the templates, in other words, never tuned on."""
    t, c, m, r = "timers", "clock", "arithmetic", "memory"
    return [
        Case(t, "I need a countdown of 45 seconds", timer_set(r"45 seconds"), "45 s"),
        Case(t, "could you start a timer for twenty five minutes", timer_set(r"25 minutes"), "25"),
        Case(t, "put on a 2 hour timer", timer_set(r"2 hours"), "2 h"),
        Case(t, "give me a timer for a minute and a half",
             timer_set(r"1 minute and 30 seconds"), "90 s"),
        Case(t, "make an eggs timer for 6 minutes", timer_set(r"egg", r"6 minutes"), "eggs"),
        Case(t, "how much longer on the eggs timer", has(r"left", r"egg"), "eggs left"),
        Case(t, "are there any timers running", has(r"timers?"), "a list"),
        Case(t, "get rid of the eggs timer", has(r"cancel", r"egg"), "cancelled"),
        Case(t, "clear every timer", has(r"cancel"), "cancelled"),
        Case(c, "what's the current time", clock_time, "time"),
        Case(c, "have you got the time", clock_time, "time"),
        Case(c, "which day of the week is today", weekday, "weekday"),
        Case(c, "what's today's date", date, "date"),
        Case(m, "what do you get if you multiply 8 by 7", number(56), "56"),
        Case(m, "how much is nine plus ten", number(19), "19"),
        Case(m, "what's 50 divided by 4", number(12.5), "12.5"),
        Case(m, "what is 25 percent of 200", number(50), "50"),
        Case(m, "what's the square root of 225", number(15), "15"),
        Case(m, "what is 3 to the power of 4", number(81), "81"),
        Case(m, "what is 6 plus 2 times 3", number(12), "12"),
        Case(m, "subtract 15 from 40", number(25), "25"),
        Case(r, "please remember that my locker number is 316", remembered(r"316"), "remembered"),
        Case(r, "what was my locker number again", has(r"316"), "316"),
        # "flower pot" is the same answer spoken (Whisper writes it either way).
        Case(r, "note that the spare key is under the flowerpot", remembered(r"flower ?pot"),
             "noted"),
        Case(r, "where is the spare key", has(r"flower ?pot"), "flowerpot"),
        Case(r, "delete my locker number", has(r"forg"), "forgotten"),
        Case("stop", "shut up", quiet, "nothing"),
        Case("stop", "forget it", quiet, "nothing"),
        Case("stop", "nevermind", quiet, "nothing"),
    ]


def fresh_set() -> list[Case]:
    """A second held-out list, written last and run once: its score was never tuned on."""
    t, c, m, r = "timers", "clock", "arithmetic", "memory"
    return [
        Case(t, "can you time 15 minutes for me", timer_set(r"15 minutes"), "15 min"),
        Case(t, "set the oven timer to 40 minutes", timer_set(r"40 minutes"), "40 min"),
        Case(t, "I want a 30 second timer", timer_set(r"30 seconds"), "30 s"),
        Case(t, "start a timer named tea for 4 minutes", timer_set(r"tea", r"4 minutes"), "tea"),
        Case(t, "what's left on the tea timer", has(r"left", r"tea"), "tea left"),
        Case(t, "list my timers", has(r"timer"), "a list"),
        Case(t, "stop the tea timer", has(r"cancel", r"tea"), "cancelled"),
        Case(t, "turn off all the timers", has(r"cancel"), "cancelled"),
        Case(c, "what time is it right now", clock_time, "time"),
        Case(c, "could you tell me the time", clock_time, "time"),
        Case(c, "what is the date", date, "date"),
        Case(c, "tell me what day it is", weekday, "weekday"),
        Case(m, "what is seven times eight", number(56), "56"),
        Case(m, "how much is 250 plus 750", number(1000), "1000"),
        Case(m, "what's 81 divided by 9", number(9), "9"),
        Case(m, "what's ten percent of 350", number(35), "35"),
        Case(m, "square root of 49", number(7), "7"),
        Case(m, "what is 12 squared", number(144), "144"),
        Case(m, "what is 2 plus 3 times 4", number(14), "14"),
        Case(m, "what is 1000 minus 1", number(999), "999"),
        Case(r, "remember that my bike lock code is 2580", remembered(r"2580"), "remembered"),
        Case(r, "what is my bike lock code", has(r"2580"), "2580"),
        Case(r, "remember that the dentist appointment is on Tuesday", remembered(r"tuesday"),
             "remembered"),
        Case(r, "when is the dentist appointment", has(r"tuesday"), "Tuesday"),
        Case(r, "forget my bike lock code", has(r"forg"), "forgotten"),
        Case("stop", "stop talking", quiet, "nothing"),
        Case("stop", "ok that's enough", quiet, "nothing"),
        Case("stop", "no thanks", quiet, "nothing"),
    ]


def small_talk_set() -> list[Case]:
    """A fifth list (2026-12-06, 24 requests): small talk, answered by the box itself since
    the small-talk intents (intents.small_talk). Written after those templates, in other
    words than the templates' own; its first run is reported in docs/performance.md."""
    s = "small talk"
    greeting = has(r"\b(hello|hi|hey|greetings|good (morning|afternoon|evening|day))\b")
    welcome = has(r"welcome|pleasure|glad|no problem|anytime")
    well = has(r"fine|good|well|great|doing")
    who = has(r"assistant|\bAI\b")
    able = has(r"timer", r"arithmetic|calculat|math", r"remember")
    bye = has(r"bye|night|see you")
    return [
        Case(s, "Hey there!", greeting, "a greeting"),
        Case(s, "hiya", greeting, "a greeting"),
        Case(s, "Good afternoon!", greeting, "a greeting"),
        Case(s, "morning!", greeting, "a greeting"),
        Case(s, "hello assistant", greeting, "a greeting"),
        Case(s, "thanks so much", welcome, "you're welcome"),
        Case(s, "cheers", welcome, "you're welcome"),
        Case(s, "thank you very much for the help", welcome, "you're welcome"),
        Case(s, "awesome, thank you", welcome, "you're welcome"),
        Case(s, "I appreciate it", welcome, "you're welcome"),
        Case(s, "how are you doing?", well, "a reply"),
        Case(s, "how's your day going", well, "a reply"),
        Case(s, "are you OK?", well, "a reply"),
        Case(s, "what's your name?", who, "an assistant"),
        Case(s, "who am I talking to", who, "an assistant"),
        Case(s, "are you a real person?", who, "an assistant"),
        Case(s, "tell me about yourself", who, "an assistant"),
        Case(s, "what are you?", who, "an assistant"),
        Case(s, "what can you help me with?", able, "what it can do"),
        Case(s, "what sort of things can you do", able, "what it can do"),
        Case(s, "what can I ask you?", able, "what it can do"),
        Case(s, "what are your skills", able, "what it can do"),
        Case(s, "bye for now", bye, "goodbye"),
        Case(s, "good night!", bye, "good night"),
    ]


def convert_set() -> list[Case]:
    """A sixth list (2026-12-07, 35 requests), unit conversions as a kitchen and a household
    ask them: cooking measures (US cups and spoons), weights, lengths, temperatures, speeds
    and times. Written before the conversion intent, and its first run reported as it came
    (docs/performance.md)."""
    u = "conversion"
    return [
        Case(u, "how many grams in a pound", number(453.6), "453.6"),
        Case(u, "convert 350 fahrenheit to celsius", number(176.7), "176.7"),
        Case(u, "what's 180 degrees celsius in fahrenheit", number(356), "356"),
        Case(u, "how many ounces in a cup", number(8), "8"),
        Case(u, "how many teaspoons in a tablespoon", number(3), "3"),
        Case(u, "how many tablespoons in a cup", number(16), "16"),
        Case(u, "how many ml in a cup", number(236.6), "236.6"),
        Case(u, "convert 5 miles to kilometers", number(8.047), "8.05"),
        Case(u, "how many kilometers is 10 miles", number(16.09), "16.1"),
        Case(u, "how many feet in a meter", number(3.281), "3.28"),
        Case(u, "180 centimeters in feet", number(5.906), "5.91"),
        Case(u, "what is 2 cups in milliliters", number(473.2), "473"),
        Case(u, "500 grams in ounces", number(17.64), "17.6"),
        Case(u, "how many pounds is 3 kilos", number(6.614), "6.61"),
        Case(u, "convert 1 liter to cups", number(4.227), "4.23"),
        Case(u, "how many inches in a foot", number(12), "12"),
        Case(u, "how many centimeters in an inch", number(2.54), "2.54"),
        Case(u, "what's 70 degrees fahrenheit in celsius", number(21.11), "21.1"),
        Case(u, "how much is a stone in kilograms", number(6.35), "6.35"),
        Case(u, "how many quarts in a gallon", number(4), "4"),
        Case(u, "how many ounces in a pound", number(16), "16"),
        Case(u, "half a cup in tablespoons", number(8), "8"),
        Case(u, "two and a half pounds in kilograms", number(1.134), "1.13"),
        Case(u, "how many minutes in a day", number(1440), "1440"),
        Case(u, "how many hours in a week", number(168), "168"),
        Case(u, "60 miles per hour in kilometers per hour", number(96.56), "96.6"),
        Case(u, "what is 100 kilometers per hour in miles per hour", number(62.14), "62.1"),
        Case(u, "how many millimeters in an inch", number(25.4), "25.4"),
        Case(u, "1 gallon in liters", number(3.785), "3.79"),
        Case(u, "convert 250 ml to cups", number(1.057), "1.06"),
        Case(u, "what's minus 40 celsius in fahrenheit", number(-40), "-40"),
        Case(u, "how many yards in a mile", number(1760), "1760"),
        Case(u, "how many grams is an ounce", number(28.35), "28.35"),
        Case(u, "200 degrees c to f", number(392), "392"),
        Case(u, "how many pints in a gallon", number(8), "8"),
    ]


def convert_heldout_set() -> list[Case]:
    """Sixteen more conversions in other words, written with the list above and run once
    after the intent was tuned on that list: never tuned on."""
    u = "conversion"
    return [
        Case(u, "how many cups are in a quart", number(4), "4"),
        Case(u, "what's 400 f in c", number(204.4), "204.4"),
        Case(u, "how many tablespoons is 3 teaspoons", number(1), "1"),
        Case(u, "convert 10 kilograms to pounds", number(22.05), "22.05"),
        Case(u, "how many metres in a mile", number(1609.3), "1609"),
        Case(u, "what is 6 feet in centimeters", number(182.88), "182.9"),
        Case(u, "how many liters is 2 gallons", number(7.571), "7.57"),
        Case(u, "how many ounces is 100 grams", number(3.527), "3.53"),
        Case(u, "what's 30 degrees celsius in fahrenheit", number(86), "86"),
        Case(u, "how many seconds in an hour", number(3600), "3600"),
        Case(u, "how many fluid ounces in a pint", number(16), "16"),
        Case(u, "how much is three quarters of a cup in ml", number(177.4), "177"),
        Case(u, "convert 1.5 kg to pounds", number(3.307), "3.31"),
        Case(u, "how many inches is 30 centimeters", number(11.81), "11.8"),
        Case(u, "what is 5 kilometers in miles", number(3.107), "3.11"),
        Case(u, "how many days in 3 weeks", number(21), "21"),
    ]


def lists_set() -> list[Case]:
    """A seventh list (2026-12-07, 24 requests in order: later ones read what earlier ones
    left), the shopping and to-do lists as a household keeps them. Written after the
    first probes of the lists intent, before this list's first run (docs/performance.md)."""
    s = "lists"
    on = has(r"added|already on")
    return [
        Case(s, "clear the shopping list", has(r"clear|empty"), "cleared"),
        Case(s, "add milk to the shopping list", has(r"added milk"), "milk added"),
        Case(s, "put eggs and butter on the shopping list", has(r"eggs", r"butter"),
             "eggs and butter added"),
        Case(s, "we need to get bread", has(r"added bread"), "bread added"),
        Case(s, "add bananas to my list", has(r"added bananas"), "bananas added"),
        Case(s, "what's on the shopping list", has(r"milk", r"eggs", r"butter", r"bread",
                                                   r"bananas"), "the five items"),
        Case(s, "add milk to the shopping list", has(r"already"), "milk already on it"),
        Case(s, "take the eggs off the shopping list", has(r"removed eggs"), "eggs removed"),
        Case(s, "remove coffee from the shopping list", has(r"not on"), "coffee not on it"),
        Case(s, "add coffee, rice and two onions to the shopping list",
             has(r"coffee", r"rice", r"onions"), "three added"),
        Case(s, "what do we need to buy", lambda a, c: has(r"milk", r"coffee", r"onions")(a, c)
             and "eggs" not in a, "the list without eggs"),
        Case(s, "cross the bananas off my list", has(r"removed bananas"), "bananas removed"),
        Case(s, "I need to buy batteries", on, "batteries added"),
        Case(s, "how many things are on my shopping list", number(7), "7 items"),
        Case(s, "add call the plumber to my to do list", has(r"call the plumber", r"to-do"),
             "added to the to-do list"),
        Case(s, "put renew the car insurance on the to-do list",
             has(r"renew the car insurance"), "added"),
        Case(s, "what's on my to-do list", has(r"plumber", r"insurance"), "both to-dos"),
        Case(s, "take call the plumber off the to do list", has(r"removed call the plumber"),
             "removed"),
        Case(s, "read me my to-do list", lambda a, c: "insurance" in a and "plumber" not in a,
             "one to-do left"),
        Case(s, "what's on the shopping list", lambda a, c: "plumber" not in a
             and has(r"milk")(a, c), "the to-dos are not on it"),
        Case(s, "empty the to do list", has(r"clear|taken off"), "cleared"),
        Case(s, "clear my shopping list", has(r"clear|taken off"), "cleared"),
        Case(s, "what's on the shopping list", has(r"empty"), "empty"),
        Case(s, "what's on my to-do list", has(r"empty"), "empty"),
    ]


#: Easter Sundays, looked up (not worked out as the product does) for the checks.
EASTER = {2026: (4, 5), 2027: (3, 28), 2028: (4, 16), 2029: (4, 1), 2030: (4, 21),
          2031: (4, 13), 2032: (3, 28), 2033: (4, 17), 2034: (4, 9), 2035: (3, 25),
          2036: (4, 13)}


def _next(today: dt.date, month: int, day: int) -> dt.date:
    when = dt.date(today.year, month, day)
    return when if when >= today else dt.date(today.year + 1, month, day)


def days_until(month: int, day: int) -> Check:
    """The answer says how many days until ``month``/``day`` (today's, in UTC)."""
    def check(a: str, c: dict[str, Any]) -> bool:
        today = c["now"].date()
        days = (_next(today, month, day) - today).days
        return bool(re.search(rf"\b{days} days\b", a)) if days > 1 else \
            "tomorrow" in a.lower() if days == 1 else "today" in a.lower()
    return check


def on_day(when: Callable[[dt.date], dt.date], weekday: bool = True) -> Check:
    """The answer names the day ``when`` gives for today: its month and day (and weekday)."""
    def check(a: str, c: dict[str, Any]) -> bool:
        day = when(c["now"].date())
        return f"{day:%B} {day.day}" in a and (not weekday or f"{day:%A}" in a)
    return check


def time_in(zone: str) -> Check:
    def check(a: str, c: dict[str, Any]) -> bool:
        return clock_time(a, {"now": c["now"].astimezone(ZoneInfo(zone))})
    return check


def _thanksgiving(today: dt.date) -> dt.date:
    for year in (today.year, today.year + 1):
        first = dt.date(year, 11, 1)
        day = first + dt.timedelta(days=(3 - first.weekday()) % 7 + 21)
        if day >= today:
            return day
    raise AssertionError


def _easter(today: dt.date) -> dt.date:
    for year in (today.year, today.year + 1):
        day = dt.date(year, *EASTER[year])
        if day >= today:
            return day
    raise AssertionError


def calendar_set() -> list[Case]:
    """An eighth list (2026-12-07, 18 requests): the time in other places, tomorrow and
    yesterday, days until a holiday or a weekday and the day one falls on. Written after
    the first probes of those intents, before this list's first run. The checks work the
    days out from the date of the run (UTC, the bench's tools.timezone)."""
    c = "calendar"
    return [
        Case(c, "what time is it in Tokyo", time_in("Asia/Tokyo"), "Tokyo's time"),
        Case(c, "what's the time in London right now", time_in("Europe/London"), "London's"),
        Case(c, "time in New York", time_in("America/New_York"), "New York's"),
        Case(c, "what time is it in Sydney", time_in("Australia/Sydney"), "Sydney's"),
        Case(c, "what time is it in India", time_in("Asia/Kolkata"), "India's"),
        Case(c, "what's the date tomorrow", on_day(lambda t: t + dt.timedelta(days=1)),
             "tomorrow"),
        Case(c, "what day is it tomorrow", on_day(lambda t: t + dt.timedelta(days=1)),
             "tomorrow"),
        Case(c, "what day was it yesterday", on_day(lambda t: t - dt.timedelta(days=1)),
             "yesterday"),
        Case(c, "how many days until christmas", days_until(12, 25), "days to Dec 25"),
        Case(c, "how many sleeps till christmas", days_until(12, 25), "days to Dec 25"),
        Case(c, "how many days till new year's day", days_until(1, 1), "days to Jan 1"),
        Case(c, "how long until halloween", days_until(10, 31), "days to Oct 31"),
        Case(c, "what day is christmas this year", on_day(lambda t: dt.date(t.year, 12, 25)),
             "this year's Christmas, gone or not"),
        Case(c, "what day of the week is the 4th of july", on_day(lambda t: _next(t, 7, 4)),
             "July 4's weekday"),
        Case(c, "when is easter", on_day(_easter), "Easter's date"),
        Case(c, "when is thanksgiving", on_day(_thanksgiving), "Thanksgiving's date"),
        Case(c, "how many days until friday", on_day(
            lambda t: t + dt.timedelta(days=(4 - t.weekday() - 1) % 7 + 1), weekday=False),
            "the next Friday's date"),
        Case(c, "how many days until valentine's day", days_until(2, 14), "days to Feb 14"),
    ]


def alarm(hour: int, minute: int = 0, weekday: int | None = None, tomorrow: bool = False,
          cancelled: bool = False, *patterns: str, either: bool = False) -> Check:
    """The answer sets (or cancels) an alarm at ``hour``:``minute`` (24 h; ``either``: that
    hour or twelve after, whichever comes first) and names its day as the product's rule
    says: the next such time after now (UTC), on ``weekday`` or tomorrow when said;
    "today", "tomorrow", a weekday, or "next <weekday>" a week on."""
    def next_at(now: dt.datetime, hour: int) -> dt.datetime:
        first = now.date() + dt.timedelta(days=1 if tomorrow else 0)
        if weekday is not None:
            first = now.date() + dt.timedelta(days=(weekday - now.weekday()) % 7)
        when = dt.datetime.combine(first, dt.time(hour, minute))
        if when <= now:
            when += dt.timedelta(days=7 if weekday is not None else 1)
        return when

    def check(a: str, c: dict[str, Any]) -> bool:
        now = c["now"].replace(tzinfo=None)
        when = min(next_at(now, h) for h in ((hour, hour + 12) if either else (hour,)))
        days = (when.date() - now.date()).days
        day = ("today", "tomorrow")[days] if days < 2 else \
            f"{'next ' if days >= 7 else ''}{when:%A}"
        said = "noon" if (when.hour, minute) == (12, 0) else "midnight" if (
            when.hour, minute) == (0, 0) else f"{when:%-I:%M %p}".replace(":00 ", " ")
        verb = r"cancel" if cancelled else r"alarm set|^OK, "
        return has(verb, rf"\b{day} at {said}\b", *patterns)(a, c)
    return check


def alarms_set() -> list[Case]:
    """A ninth list (2026-12-07, 21 requests, in order): alarms and reminders at a clock
    time. Written after probing the first version with other phrasings, before this list's
    first run. The checks work the day out from the time of the run (UTC)."""
    a = "alarms"
    return [
        Case(a, "set an alarm for 6 am", alarm(6), "6 AM"),
        Case(a, "wake me up at 7:15", alarm(7, 15), "7:15 AM (waking)"),
        Case(a, "set my alarm for half past five in the morning", alarm(5, 30), "5:30 AM"),
        Case(a, "alarm at 9 pm", alarm(21), "9 PM"),
        Case(a, "set an alarm for 8 o'clock tomorrow morning", alarm(8, tomorrow=True),
             "tomorrow 8 AM"),
        Case(a, "remind me to take the bins out at 7 pm",
             alarm(19, 0, None, False, False, r"take the bins out"), "7 PM, bins"),
        Case(a, "remind me tomorrow at noon to water the plants",
             alarm(12, 0, None, True, False, r"water the plants"), "tomorrow noon, plants"),
        Case(a, "set a wake up alarm for a quarter to seven", alarm(6, 45), "6:45 AM"),
        Case(a, "what alarms have I got", has(r"^8 alarms", r"6 AM", r"9 PM", r"plants"),
             "all eight"),
        Case(a, "when's my next alarm", has(r"alarm", r"AM|PM"), "the alarms"),
        Case(a, "do I have any alarms tomorrow", has(r"tomorrow at 8 AM"),
             "tomorrow's, the 8 AM among them"),
        Case(a, "cancel the 9 pm alarm", alarm(21, cancelled=True), "9 PM cancelled"),
        Case(a, "delete the alarm for 7:15", alarm(7, 15, cancelled=True), "7:15 cancelled"),
        Case(a, "cancel the reminder about the plants", has(r"cancel", r"plants"),
             "plants cancelled"),
        Case(a, "how many alarms do I have", has(r"^5 alarms"), "five left"),
        Case(a, "turn off all my alarms", has(r"cancelled 5 alarms"), "five cancelled"),
        Case(a, "what alarms are set", has(r"no alarms"), "none"),
        Case(a, "set an alarm for 10 minutes", timer_set(r"10 minutes"), "a 10 minute timer"),
        Case(a, "set an alarm for 7 on saturday", alarm(7, weekday=5), "Saturday 7 AM"),
        Case(a, "wake me at 6:30 am on monday", alarm(6, 30, weekday=0), "Monday 6:30 AM"),
        Case(a, "cancel all alarms", has(r"cancelled (2 alarms|the alarm)"), "both cancelled"),
    ]


def alarms_heldout_set() -> list[Case]:
    """A tenth list (2026-12-07, 17 requests, in order), written after the alarms' review
    and fixes, before its first run, in phrasings not tried before; never tuned on."""
    a = "alarms"
    return [
        Case(a, "set an alarm for five thirty am", alarm(5, 30), "5:30 AM"),
        Case(a, "I need to get up at 6:45 tomorrow", alarm(6, 45, tomorrow=True),
             "tomorrow 6:45 AM"),
        Case(a, "alarm for 10 pm tonight", alarm(22), "10 PM"),
        Case(a, "remind me at 4 pm to pick up the dry cleaning",
             alarm(16, 0, None, False, False, r"pick up the dry cleaning"), "4 PM"),
        Case(a, "remind me on sunday at 10 am to call grandma",
             alarm(10, 0, 6, False, False, r"call grandma"), "Sunday 10 AM"),
        Case(a, "set an alarm for quarter past eight", alarm(8, 15, either=True),
             "the next 8:15"),
        Case(a, "what time is my alarm set for", has(r"alarm", r"AM|PM"), "the alarms"),
        Case(a, "how many reminders do I have", has(r"dry cleaning", r"grandma"),
             "both reminders"),
        Case(a, "cancel the alarm for quarter past eight",
             alarm(8, 15, cancelled=True, either=True), "8:15 cancelled"),
        Case(a, "delete my reminder to call grandma", has(r"cancel", r"grandma"),
             "grandma cancelled"),
        Case(a, "snooze", has(r"no alarm ringing"), "nothing to snooze"),
        Case(a, "wake me up at 5", alarm(5), "5 AM"),
        # Until 2026-12-07 (eleventh session) the answer said it could not repeat; since
        # the repeating alarms (twelfth session) it is set, and one more is cancelled below.
        Case(a, "set an alarm for 7 am every weekday", has(r"every weekday at 7 AM"),
             "weekdays at 7 AM"),
        Case(a, "remind me in an hour to check the oven", timer_set(r"1 hour"),
             "in an hour (a reminder since 2026-12-07)"),
        Case(a, "do I have an alarm set for tomorrow", has(r"5 AM", r"6:45 AM"),
             "tomorrow's two"),
        # Seven since 2026-12-07 (fourteenth session): "remind me in an hour to check the
        # oven" is a reminder at that time, no longer a countdown, and is cancelled too.
        Case(a, "clear all my alarms", has(r"cancelled 7 alarms"), "seven cancelled"),
        Case(a, "what alarms are set", has(r"no alarms"), "none"),
    ]


def repeat_set() -> list[Case]:
    """A twelfth list (2026-12-07, twelfth session, 16 requests, in order): repeating
    alarms and reminders, leaving out a day, cancelling. Written with their code, before
    its first run; the checks hold on any day of the week."""
    a = "alarms"
    return [
        Case(a, "wake me up every weekday at 6:30",
             has(r"every weekday at 6:30 AM, starting "), "weekdays 6:30 AM"),
        Case(a, "set an alarm for 8 on weekends",
             has(r"every Saturday and Sunday at 8 AM"), "weekends 8 AM"),
        Case(a, "remind me every day at 9 pm to take my medication",
             has(r"every day at 9 PM", r"take your medication"), "daily 9 PM reminder"),
        Case(a, "set an alarm for 7 every morning", has(r"every day at 7 AM"), "daily 7 AM"),
        Case(a, "remind me to put the recycling out every Wednesday at 7 pm",
             has(r"every Wednesday at 7 PM", r"put the recycling out"), "Wednesdays 7 PM"),
        Case(a, "what alarms do I have",
             has(r"^5 alarms", r"every weekday at 6:30 AM", r"every Wednesday at 7 PM"),
             "all five, as repeating"),
        Case(a, "when's my next alarm", has(r"^Your next alarm is ", r" AM\.$"),
             "the next wake-up alarm"),
        # Tomorrow has two wake-up alarms whatever the day: 7 AM and 6:30 or 8.
        Case(a, "skip tomorrow's alarm", has(r"^OK, no alarms tomorrow\.$"),
             "both left out tomorrow"),
        Case(a, "do I have any alarms tomorrow",
             lambda x, _c: "9 PM" in x and "AM" not in x, "only the reminders"),
        Case(a, "cancel the weekend alarm",
             has(r"cancelled the alarm every Saturday and Sunday at 8 AM"), "weekends gone"),
        Case(a, "don't remind me to take my medication", has(r"cancel", r"medication"),
             "the reminder gone"),
        Case(a, "set an alarm for every other day at 6", has(r"days of the week"),
             "says what can repeat"),
        Case(a, "wake me up at 6 am mondays and fridays",
             has(r"every Monday and Friday at 6 AM"), "Mondays and Fridays"),
        Case(a, "how many alarms do I have", has(r"^4 alarms"), "four"),
        Case(a, "cancel the 7 am alarm", has(r"cancelled the alarm every day at 7 AM"),
             "daily 7 AM gone"),
        Case(a, "turn off all my alarms", has(r"cancelled 3 alarms"), "three cancelled"),
    ]


def change_set() -> list[Case]:
    """A thirteenth list (2026-12-07, twelfth session, 9 requests, in order): an alarm or a
    reminder moved to another time. Written with the code, before its first run."""
    a = "alarms"
    return [
        Case(a, "wake me up every weekday at 7", has(r"every weekday at 7 AM"), "set"),
        Case(a, "change my alarm to 6:30", has(r"now every weekday at 6:30 AM"),
             "the only one moved, its days kept"),
        Case(a, "set an alarm for 9 on saturday", alarm(9, weekday=5), "Saturday 9 AM"),
        Case(a, "move the 9 am alarm to 10", has(r"now (Saturday|next Saturday|tomorrow|today)"
                                                  r" at 10 AM"), "Saturday's, on Saturday"),
        Case(a, "move my weekday alarm to 6:45", has(r"now every weekday at 6:45 AM"),
             "the weekday one"),
        Case(a, "remind me at 4 pm to call the plumber", has(r"4 PM", r"call the plumber"),
             "set"),
        Case(a, "change the reminder to 5", has(r"reminder is now", r" 5 PM: call the plumber"),
             "a daytime 5"),
        Case(a, "what alarms do I have", has(r"^3 alarms", r"6:45 AM", r"10 AM", r"5 PM"),
             "three, as moved"),
        Case(a, "cancel all alarms", has(r"cancelled 3 alarms"), "three cancelled"),
    ]


def _hour_said(when: dt.datetime) -> str:
    if (when.hour, when.minute) in ((12, 0), (0, 0)):
        return "noon" if when.hour else "midnight"
    return f"{when:%-I:%M %p}".replace(":00 ", " ")


def until_clock(hour: int) -> Check:
    """The answer says how long until the next ``hour``:00 (UTC), within a minute."""
    def check(a: str, c: dict[str, Any]) -> bool:
        now = c["now"].replace(tzinfo=None)
        when = dt.datetime.combine(now.date(), dt.time(hour))
        when += dt.timedelta(days=1) if when <= now else dt.timedelta()
        h = re.search(r"(\d+) hours?", a)
        m = re.search(r"(\d+) minutes?", a)
        if not (h or m) or _hour_said(when) not in a:
            return False
        told = int(h.group(1) if h else 0) * 60 + int(m.group(1) if m else 0)
        return abs(told - (when - now).total_seconds() / 60) <= 1.5
    return check


def time_shift(hours: float) -> Check:
    """The answer says the time ``hours`` from now (UTC; negative: ago), within a minute."""
    def check(a: str, c: dict[str, Any]) -> bool:
        when = c["now"] + dt.timedelta(hours=hours)
        return any(_hour_said(when + dt.timedelta(minutes=d)) in a for d in (-1, 0, 1))
    return check


def picked(low: int, high: int) -> Check:
    def check(a: str, _c: dict[str, Any]) -> bool:
        found = re.findall(r"-?\d+", a)
        return len(found) == 1 and low <= int(found[0]) <= high
    return check


def misc_set() -> list[Case]:
    """An eleventh list (2026-12-07, 12 requests): a coin, dice, a number, spelling, how
    long until a clock time, the time in some hours. Written with their code, before its
    first run."""
    d, c = "chance", "clock"
    return [
        Case(d, "flip a coin", has(r"^(Heads|Tails)\.$"), "heads or tails"),
        Case(d, "toss a coin", has(r"^(Heads|Tails)\.$"), "heads or tails"),
        Case(d, "roll a dice", has(r"^You rolled [1-6]\.$"), "1 to 6"),
        Case(d, "roll 3 dice", lambda a, _c: bool(m := re.fullmatch(
            r"You rolled ([1-6]), ([1-6]) and ([1-6]): (\d+) in all\.", a)) and
            sum(int(m.group(i)) for i in (1, 2, 3)) == int(m.group(4)), "three and a sum"),
        Case(d, "pick a number between 1 and 100", picked(1, 100), "1 to 100"),
        Case(d, "how do you spell beautiful", has(r"B, E, A, U, T, I, F, U, L\."), "spelled"),
        Case(d, "how do you spell separate", has(r"S, E, P, A, R, A, T, E\."), "spelled"),
        Case(d, "spell february", has(r"F, E, B, R, U, A, R, Y\."), "spelled"),
        Case(c, "how long until 6 pm", until_clock(18), "to 6 PM"),
        Case(c, "how many minutes until noon", until_clock(12), "to noon"),
        Case(c, "what time will it be in 2 hours", time_shift(2), "in 2 hours"),
        Case(c, "what time was it an hour ago", time_shift(-1), "an hour ago"),
    ]


def week_set() -> list[Case]:
    """A twelfth list (2026-12-07, 51 requests in order), a household's week across every
    domain the box answers alone, in words none of the other lists uses. Written before
    its first run and before reading the templates again; its first run (44 of 50, and a
    51st check added after it) is reported as held out, and its misses were then fixed
    (docs/performance.md)."""
    t, a, c, k, m, v = "timers", "alarms", "clock", "calendar", "arithmetic", "convert"
    r, s, d, g = "memory", "lists", "chance", "small talk"
    jan1 = on_day(lambda t: _next(t, 1, 1))
    return [
        Case(t, "set a timer for 7 minutes for the eggs", timer_set(r"egg", r"7 minutes"),
             "an egg timer, 7 min"),
        Case(t, "how long is left on my egg timer", has(r"left", r"egg"), "egg time left"),
        Case(t, "add 2 minutes to the egg timer", has(r"egg", r"\b[89] minutes"),
             "about 9 minutes left"),
        Case(t, "cancel the egg timer", has(r"cancel", r"egg"), "cancelled"),
        Case(t, "timer for a minute and a half", timer_set(r"1 minute and 30 seconds"),
             "90 s"),
        Case(t, "set a 45 minute timer for the roast", timer_set(r"roast", r"45 minutes"),
             "roast"),
        Case(t, "kill all my timers", has(r"cancel"), "cancelled"),
        Case(a, "wake me up at 6:45 tomorrow", has(r"6:45", r"tomorrow"), "6:45 tomorrow"),
        Case(a, "set an alarm for half past seven", has(r"7:30"), "7:30"),
        Case(a, "what alarms do I have", has(r"6:45", r"7:30"), "both alarms"),
        Case(a, "delete the 7:30 alarm", has(r"cancel", r"7:30"), "7:30 cancelled"),
        Case(a, "remind me at 8 pm to water the plants", has(r"8 PM", r"water the plants"),
             "a reminder"),
        Case(a, "remind me to call grandma tomorrow at noon",
             has(r"noon|12 PM", r"call grandma", r"tomorrow"), "a reminder"),
        Case(a, "turn off all my alarms", has(r"cancel"), "all cancelled"),
        Case(c, "what's the time", clock_time, "time"),
        Case(c, "what's today's date", date, "date"),
        Case(c, "what month is it", lambda x, ctx: f"{ctx['now']:%B}".lower() in x.lower(),
             "the month"),
        Case(c, "what year is it", lambda x, ctx: str(ctx["now"].year) in x, "the year"),
        Case(k, "what day is the 1st of january", jan1, "Jan 1's weekday"),
        Case(k, "how many days until new year's eve", days_until(12, 31), "days to Dec 31"),
        Case(k, "what time is it in Los Angeles", time_in("America/Los_Angeles"), "LA's"),
        Case(k, "what's the time in Berlin", time_in("Europe/Berlin"), "Berlin's"),
        Case(m, "what's 15 percent of 80", number(12), "12"),
        Case(m, "what is 17 times 23", number(391), "391"),
        Case(m, "divide 144 by 12", number(12), "12"),
        Case(m, "what's 3 to the power of 4", number(81), "81"),
        Case(m, "how much is 1200 divided by 3", number(400), "400"),
        Case(m, "what's a 20 percent tip on 45 dollars", number(9), "9"),
        Case(m, "split 90 dollars between 4 people", number(22.5), "22.50"),
        Case(v, "how many grams in a pound", number(453.6), "453.6"),
        Case(v, "convert 30 celsius to fahrenheit", number(86), "86"),
        Case(v, "how many ounces in a kilogram", number(35.27), "35.27"),
        Case(v, "what is 5 miles in kilometers", number(8.05), "8.05"),
        Case(v, "how many teaspoons in a tablespoon", number(3), "3"),
        Case(v, "350 fahrenheit in celsius", number(176.7), "176.7"),
        Case(r, "remember that the wifi password is sunflower42", remembered(r"sunflower42"),
             "remembered"),
        Case(r, "what's the wifi password", has(r"sunflower42"), "sunflower42"),
        Case(r, "remember that I parked on level 3", remembered(r"level 3"), "remembered"),
        Case(r, "where did I park", has(r"level 3"), "level 3"),
        Case(s, "add toothpaste and dish soap to the shopping list",
             has(r"toothpaste", r"dish soap"), "both added"),
        Case(s, "is toothpaste on my shopping list", has(r"\byes\b|\bis on\b"), "yes"),
        Case(s, "remove toothpaste from the list", has(r"removed toothpaste"), "removed"),
        Case(s, "add mac and cheese to the shopping list", has(r"added mac and cheese"),
             "added"),
        # Added after the first run: "Added mac and cheese" passed while two items were kept.
        Case(s, "how many things are on my shopping list", number(2),
             "2: dish soap, and mac and cheese as one"),
        Case(d, "heads or tails", has(r"^(Heads|Tails)\.$"), "heads or tails"),
        Case(d, "roll a die", has(r"^You rolled [1-6]\.$"), "1 to 6"),
        Case(d, "how do you spell necessary", has(r"N, E, C, E, S, S, A, R, Y\."), "spelled"),
        Case(g, "good morning", has(r"morning"), "a greeting"),
        Case(g, "thanks a lot", has(r"welcome|pleasure|anytime|glad"), "you're welcome"),
        Case("stop", "never mind", quiet, "nothing"),
        Case("stop", "shush", quiet, "nothing"),
    ]


def polite_set() -> list[Case]:
    """A thirteenth list (2026-12-07, 30 requests in order), said as people talk to a
    speaker: please and thanks, "hey", "um", "could you", "actually", "quick question".
    Written before its first run; that run is reported as held out (docs/performance.md)."""
    t, a, c, m, v = "timers", "alarms", "clock", "arithmetic", "convert"
    r, s, d, g = "memory", "lists", "chance", "small talk"
    return [
        Case(t, "hey could you please set a timer for ten minutes for me",
             timer_set(r"10 minutes"), "10 min"),
        Case(t, "um set a timer for like five minutes", timer_set(r"5 minutes"), "5 min"),
        # Tightened after the first run, which answered "You a timer set for 20 minutes.".
        Case(t, "can you set me a timer for 20 minutes please",
             has(r"^Timer set for 20 minutes\.$"), "20 min, no name"),
        Case(t, "okay how much time is left on that timer", has(r"left"), "time left"),
        Case(t, "actually cancel that timer", has(r"cancel"), "cancelled"),
        Case(a, "could you wake me up at 6 tomorrow morning please",
             has(r"\b6 AM\b", r"tomorrow"), "6 AM tomorrow"),
        Case(a, "please remind me at 4 pm to pick up the kids",
             has(r"4 PM", r"pick up the kids"), "a reminder"),
        Case(a, "hey, do I have any alarms set", has(r"alarm"), "the alarm"),
        Case(a, "would you mind cancelling my 6 am alarm", has(r"cancel", r"6 AM"),
             "cancelled"),
        Case(c, "hey what time is it", clock_time, "time"),
        Case(c, "sorry, what's the date today", date, "date"),
        Case(c, "do you know what day it is today", weekday, "weekday"),
        Case(m, "quick question, what's 9 times 7", number(63), "63"),
        Case(m, "can you tell me what 144 divided by 12 is", number(12), "12"),
        Case(m, "hmm what's 25 percent of 200", number(50), "50"),
        Case(m, "okay so what is 1500 minus 275", number(1225), "1225"),
        Case(v, "could you tell me how many cups are in a quart", number(4), "4"),
        Case(v, "roughly how many kilometers is 10 miles", number(16.1), "16.1"),
        Case(v, "please convert 5 pounds to kilograms", number(2.27), "2.27"),
        Case(r, "hey can you remember that the garage code is 1234", remembered(r"1234"),
             "remembered"),
        Case(r, "what was the garage code again", has(r"1234"), "1234"),
        Case(r, "could you forget the garage code please", has(r"forg"), "forgotten"),
        Case(s, "could you add eggs to the shopping list please", has(r"added eggs"),
             "added"),
        Case(s, "can you put bread on my shopping list", has(r"added bread"), "added"),
        Case(s, "hey what's on my shopping list", has(r"eggs", r"bread"), "both"),
        Case(s, "please take eggs off my list", has(r"removed eggs"), "removed"),
        Case(d, "could you flip a coin for me", has(r"^(Heads|Tails)\.$"), "heads or tails"),
        Case(d, "can you roll a die please", has(r"^You rolled [1-6]\.$"), "1 to 6"),
        Case(g, "thank you so much", has(r"welcome|pleasure|anytime|glad"), "you're welcome"),
        Case("stop", "okay that's all, thanks", quiet, "nothing"),
    ]


def answered(a: str, _c: dict[str, Any]) -> bool:
    """Some answer in words, not a refusal for want of a model."""
    return nonempty_prose(a, _c) and not re.search(
        r"can't|cannot|unable|not available|no (language )?model|offline|don't understand", a,
        re.I)


def either(*checks: Check) -> Check:
    return lambda a, c: any(check(a, c) for check in checks)


def both(*checks: Check) -> Check:
    return lambda a, c: all(check(a, c) for check in checks)


def tomorrows_weekday_alarm(a: str, c: dict[str, Any]) -> bool:
    """The 7 AM weekday alarm if tomorrow is a weekday, else none."""
    tomorrow = c["now"].date() + dt.timedelta(days=1)
    return has(r"\b7 AM\b")(a, c) if tomorrow.weekday() < 5 else \
        has(r"\bno\b|don't|nothing")(a, c)


def weeks_or_days_until(month: int, day: int) -> Check:
    def check(a: str, c: dict[str, Any]) -> bool:
        today = c["now"].date()
        days = (_next(today, month, day) - today).days
        return bool(re.search(rf"\b({days} days|{days // 7} weeks)\b", a))
    return check


def days_left_in_year(a: str, c: dict[str, Any]) -> bool:
    today = c["now"].date()
    left = (dt.date(today.year, 12, 31) - today).days
    return bool(re.search(rf"\b({left}|{left + 1}) days\b", a))


def family_set() -> list[Case]:
    """A fourteenth list (2026-12-07, fourteenth session; 56 requests in order): a family's
    day in words none of the other lists uses, with pausing timers, weekday alarms,
    reminders in an hour, a second list, birthdays and square roots. Written before its
    first run and before reading the templates again; that run is reported as held out
    (docs/performance.md)."""
    t, a, k, m, v = "timers", "alarms", "calendar", "arithmetic", "convert"
    r, s, d, g = "memory", "lists", "chance", "small talk"
    friday = on_day(lambda t: t + dt.timedelta(days=(4 - t.weekday()) % 7 or 7))
    return [
        Case(t, "start a timer for 12 minutes called pizza", timer_set(r"pizza", r"12 minutes"),
             "pizza, 12 min"),
        Case(t, "set a 3 minute timer for the tea", timer_set(r"tea", r"3 minutes"),
             "tea, 3 min"),
        Case(t, "what timers are running", has(r"pizza", r"tea"), "both timers"),
        Case(t, "pause the pizza timer", has(r"paus", r"pizza"), "paused"),
        Case(t, "resume the pizza timer", has(r"resum|continu|running|restart", r"pizza"),
             "running again"),
        Case(t, "how long until the tea is ready", has(r"tea", r"\d+ (minute|second)"),
             "tea time left"),
        Case(t, "stop the tea timer", has(r"cancel|stopp", r"tea"), "tea stopped"),
        Case(t, "get rid of the pizza timer", has(r"cancel|stopp|remov", r"pizza"),
             "pizza stopped"),
        Case(t, "set a timer for an hour and 15 minutes", timer_set(r"1 hour and 15 minutes"),
             "75 min"),
        Case(t, "cancel it", has(r"cancel|stopp"), "that timer cancelled"),
        Case(a, "set an alarm for 7 am every weekday",
             has(r"alarm set|^OK", r"\b7 AM\b", r"weekday|Monday (to|through) Friday"),
             "7 AM weekdays"),
        # After the first run: a duration is a timer's (as in the alarms list), so a timer
        # of 20 minutes is right too; the first run counted it as the check was written.
        Case(a, "set an alarm for 20 minutes from now",
             either(timer_set(r"\b20 minutes\b"), both(has(r"alarm|^OK"), either(
                 has(r"\b20 minutes\b"), time_shift(1 / 3)))), "in 20 min"),
        Case(a, "what time is my alarm tomorrow", tomorrows_weekday_alarm,
             "7 AM if a weekday"),
        Case(a, "turn off the weekday alarm", has(r"cancel|off|delet", r"\b7 AM\b"),
             "7 AM cancelled"),
        Case(a, "remind me in an hour to check the laundry",
             both(has(r"check the laundry"), either(has(r"\b(1|an|one) hour\b"), time_shift(1))),
             "in an hour"),
        Case(a, "remind me every sunday at 6 pm to put the bins out",
             has(r"put the bins out", r"Sunday", r"\b6 PM\b"), "Sundays 6 PM"),
        Case(a, "what reminders do I have", has(r"laundry", r"bins"), "both reminders"),
        # Tightened after the first run, which answered "Cancelled the reminder." and left
        # the laundry one (a countdown) set.
        Case(a, "delete all my reminders", has(r"cancel|delet|remov",
                                                r"\b([2-9]|\d\d) reminders"),
             "both cancelled (and those earlier lists left)"),
        Case(k, "what's the date on friday", friday, "next Friday's date"),
        Case(k, "what was yesterday's date", on_day(lambda t: t - dt.timedelta(days=1),
                                                    weekday=False), "yesterday"),
        Case(k, "how many weeks until christmas", weeks_or_days_until(12, 25),
             "weeks (or days) to Dec 25"),
        Case(k, "what day does christmas fall on", on_day(lambda t: _next(t, 12, 25)),
             "Dec 25's weekday"),
        Case(k, "what time is it in Paris", time_in("Europe/Paris"), "Paris's"),
        Case(k, "what's the time in Chicago", time_in("America/Chicago"), "Chicago's"),
        Case(k, "how many days are left in the year", days_left_in_year, "days to year end"),
        Case(m, "what's the square root of 144", number(12), "12"),
        Case(m, "what is 12 squared", number(144), "144"),
        Case(m, "what's half of 250", number(125), "125"),
        Case(m, "what's 10 percent off 60 dollars", number(54), "54"),
        Case(m, "add 17 and 26", number(43), "43"),
        Case(m, "what's 2.5 times 4", number(10), "10"),
        Case(v, "how many feet in a mile", number(5280), "5280"),
        Case(v, "how many milliliters in a cup", number(236.6), "236.6 (US cup)"),
        Case(v, "how many minutes in a day", number(1440), "1440"),
        Case(v, "what's 180 centimeters in feet", has(r"\b5\.9|\b5 feet 11"), "5.9 ft"),
        Case(v, "how many seconds in an hour", number(3600), "3600"),
        Case(v, "100 kilometers per hour in miles per hour", number(62.14), "62.14"),
        Case(r, "remember my locker number is 512", remembered(r"512"), "remembered"),
        Case(r, "what's my locker number", has(r"\b512\b"), "512"),
        # Tightened after the first run, which said "the mom's birthday".
        Case(r, "remember that mom's birthday is june 3rd",
             both(remembered(r"june 3"), lambda x, _c: "the mom" not in x.lower()),
             "remembered"),
        Case(r, "when is mom's birthday", has(r"june 3"), "June 3"),
        Case(s, "put apples, bananas and oranges on the grocery list",
             has(r"apples", r"bananas", r"oranges"), "three added"),
        Case(s, "take bananas off the grocery list", has(r"removed bananas"), "removed"),
        Case(s, "read me my grocery list",
             both(has(r"apples", r"oranges"), lambda x, _c: "banana" not in x.lower()),
             "apples and oranges"),
        Case(s, "add call the plumber to my to-do list", has(r"call the plumber"), "added"),
        Case(s, "what's on my to do list", has(r"call the plumber"), "the plumber"),
        Case(s, "clear the grocery list", has(r"clear|empt|removed"), "emptied"),
        Case(d, "roll two dice", lambda x, _c: bool(mm := re.fullmatch(
            r"You rolled ([1-6]) and ([1-6]): (\d+) in all\.", x)) and
            int(mm.group(1)) + int(mm.group(2)) == int(mm.group(3)), "two and a sum"),
        Case(d, "give me a random number from 1 to 10", picked(1, 10), "1 to 10"),
        Case(d, "how do you spell restaurant", has(r"R, E, S, T, A, U, R, A, N, T\."),
             "spelled"),
        Case(g, "how are you", answered, "an answer"),
        Case(g, "what's your name", has(r"\b(I'm|I am|my name|call me|called)\b"), "a name"),
        Case(g, "tell me a joke", answered, "a joke"),
        Case(g, "you're the best", answered, "thanks"),
        Case("stop", "that's enough", quiet, "nothing"),
        Case("stop", "be quiet", quiet, "nothing"),
    ]


def british_set() -> list[Case]:
    """A fifteenth list (2026-12-07, fifteenth session; 52 requests in order): a British
    household's day, in its own words: "half six", "quarter to seven", a fortnight,
    "ring mum", stone and gas marks, millilitres, "stick it on the shopping list",
    "cheers". Written before its first run and before reading the templates again; that
    run is reported as held out (docs/performance.md)."""
    t, a, k, m, v = "timers", "alarms", "calendar", "arithmetic", "convert"
    r, s, d, g = "memory", "lists", "chance", "small talk"
    return [
        Case(t, "set a timer for a quarter of an hour", timer_set(r"15 minutes"), "15 min"),
        Case(t, "put a timer on for the eggs for 4 minutes", timer_set(r"egg", r"4 minutes"),
             "eggs, 4 min"),
        Case(t, "set a timer for half an hour for the roast", timer_set(r"roast", r"30 minutes"),
             "roast, 30 min"),
        Case(t, "how long's left on the eggs", has(r"egg", r"\d+ (minute|second)"),
             "eggs time left"),
        Case(t, "cancel the egg timer", has(r"cancel|stopp", r"egg"), "eggs cancelled"),
        Case(t, "how long is left on my timers", has(r"roast", r"\d+ minute"),
             "roast (and the 15 min) left"),
        Case(a, "set an alarm for half six", has(r"\b6:30\b"), "6:30"),
        Case(a, "wake me up at quarter to seven tomorrow", has(r"\b6:45 AM\b"), "6:45 AM"),
        Case(a, "set an alarm for twenty past eight", has(r"\b8:20\b"), "8:20"),
        Case(a, "what alarms have I got", has(r"\b6:30\b", r"\b6:45\b", r"\b8:20\b"),
             "the three alarms"),
        Case(a, "cancel the half six alarm",
             both(has(r"cancel|delet|remov|off", r"\b6:30\b"),
                  lambda x, _c: "6:45" not in x and "8:20" not in x), "6:30 cancelled"),
        Case(a, "remind me to ring mum at 5 o'clock", has(r"ring mum", r"\b5( PM|:00 PM)\b"),
             "ring mum, 5 PM"),
        Case(a, "remind me on thursday at 7pm to put the bins out",
             has(r"put the bins out", r"Thursday", r"\b7 PM\b"), "Thursday 7 PM"),
        Case(a, "have I got any reminders", has(r"ring mum", r"bins"), "both reminders"),
        Case(k, "what's the time", clock_time, "the time"),
        Case(k, "what's the date today", on_day(lambda t: t, weekday=False), "today"),
        Case(k, "what's the date a fortnight today",
             on_day(lambda t: t + dt.timedelta(days=14), weekday=False), "in 14 days"),
        Case(k, "how many days till bonfire night", days_until(11, 5), "to Nov 5"),
        Case(k, "what day is boxing day on", on_day(lambda t: _next(t, 12, 26)),
             "Dec 26's weekday"),
        Case(k, "what day is christmas eve", on_day(lambda t: _next(t, 12, 24)),
             "Dec 24's weekday"),
        Case(k, "what time is it in London", time_in("Europe/London"), "London's"),
        Case(k, "what's the time in Sydney", time_in("Australia/Sydney"), "Sydney's"),
        Case(k, "how many weeks till new year's day", weeks_or_days_until(1, 1),
             "weeks (or days) to Jan 1"),
        Case(m, "what's 15 percent of 240", number(36), "36"),
        Case(m, "what's 7 times 8", number(56), "56"),
        Case(m, "what's 144 divided by 12", number(12), "12"),
        Case(m, "what's 20 percent off 45 pounds", number(36), "36"),
        Case(m, "what's a third of 90", number(30), "30"),
        Case(m, "split 84 pounds four ways", number(21), "21"),
        Case(v, "what's 12 stone in kilos", number(76.2), "76.2"),
        Case(v, "how many grams in an ounce", number(28.35), "28.35"),
        Case(v, "convert 180 degrees celsius to fahrenheit", number(356), "356"),
        Case(v, "what's gas mark 4 in celsius", has(r"\b180\b"), "180 C"),
        Case(v, "how many kilometres in 10 miles", number(16.09), "16.09"),
        Case(v, "what's 5 foot 10 in centimetres", number(177.8), "177.8"),
        Case(v, "how many millilitres in a pint", has(r"\b568\b"), "568 (imperial pint)"),
        Case(r, "remember that the wifi password is bluebell42", remembered(r"bluebell42"),
             "remembered"),
        Case(r, "what's the wifi password", has(r"bluebell42"), "bluebell42"),
        Case(r, "remember the spare key is under the plant pot", remembered(r"plant pot"),
             "remembered"),
        Case(r, "where's the spare key", has(r"under the plant pot"), "plant pot"),
        Case(s, "add semi-skimmed milk to the shopping list", has(r"semi-skimmed milk"),
             "added"),
        Case(s, "stick teabags and biscuits on the shopping list", has(r"teabags", r"biscuits"),
             "two added"),
        Case(s, "what's on the shopping list", has(r"milk", r"teabags", r"biscuits"),
             "three things"),
        Case(s, "take the biscuits off the shopping list", has(r"removed (the )?biscuits"),
             "removed"),
        Case(s, "add hoover the stairs to my to-do list", has(r"hoover the stairs"), "added"),
        Case(s, "empty the shopping list", has(r"clear|empt|removed"), "emptied"),
        Case(d, "flip a coin", has(r"^(Heads|Tails)\.$"), "heads or tails"),
        Case(d, "pick a number between 1 and 100", picked(1, 100), "1 to 100"),
        Case(g, "good morning", answered, "a greeting"),
        Case(g, "cheers, that's brilliant", answered, "you're welcome"),
        Case("stop", "that'll do", quiet, "nothing"),
        Case("stop", "shut up", quiet, "nothing"),
    ]


def days_to(when: Callable[[dt.date], dt.date]) -> Check:
    """The answer says how many days until the day ``when`` gives for today."""
    def check(a: str, c: dict[str, Any]) -> bool:
        today = c["now"].date()
        return bool(re.search(rf"\b{(when(today) - today).days} days\b", a))
    return check


def part_of_day(a: str, c: dict[str, Any]) -> bool:
    """Morning before noon, afternoon to 6 PM, evening to 10 PM, night after (UTC), said;
    before 5 AM night or (early) morning."""
    hour = c["now"].hour
    parts = ("night", "morning") if hour < 5 else ("night",) if hour >= 22 else \
        ("morning",) if hour < 12 else ("afternoon",) if hour < 18 else ("evening",)
    return any(part in a.lower() for part in parts)


def kitchen_set() -> list[Case]:
    """A sixteenth list (2026-12-08, sixteenth session; 52 requests in order): a cook's
    evening and an older relative's day: timers for each dish, a recipe scaled, US kitchen
    measures, a grocery list, pills taken and to take, "is it morning or afternoon".
    Written before its first run and before reading the templates again; that run is
    reported as held out (docs/performance.md)."""
    t, a, k, m, v = "timers", "alarms", "calendar", "arithmetic", "convert"
    r, s, d, g = "memory", "lists", "chance", "small talk"
    return [
        Case(t, "set a pasta timer for 11 minutes", timer_set(r"pasta", r"11 minutes"),
             "pasta, 11 min"),
        Case(t, "start a 45 minute timer for the chicken", timer_set(r"chicken", r"45 minutes"),
             "chicken, 45 min"),
        Case(t, "set another timer for 3 minutes for the garlic bread",
             timer_set(r"garlic bread", r"3 minutes"), "garlic bread, 3 min"),
        Case(t, "how much time is left on the pasta", has(r"pasta", r"\d+ (minute|second)"),
             "pasta's time left"),
        Case(t, "add 5 minutes to the chicken timer", has(r"chicken", r"\b(49|50) minutes"),
             "chicken now ~50 min"),
        Case(t, "pause the pasta timer", has(r"paus", r"pasta"), "pasta paused"),
        Case(t, "resume the pasta timer", has(r"resum|continu|running|going", r"pasta"),
             "pasta running"),
        Case(t, "what timers are running", has(r"pasta", r"chicken", r"garlic bread"),
             "the three timers"),
        Case(t, "cancel all the timers", has(r"cancel|stopp"), "all cancelled"),
        Case(t, "set a timer for 90 seconds",
             timer_set(r"90 seconds|1 minute(,| and) 30 seconds|a minute and a half"), "90 s"),
        Case(v, "how many tablespoons in a cup", number(16), "16"),
        Case(v, "how many teaspoons in a tablespoon", number(3), "3"),
        Case(v, "convert 350 fahrenheit to celsius", number(176.7), "176.7"),
        Case(v, "how many ounces in a pound", number(16), "16"),
        Case(v, "what's 250 grams in ounces", number(8.82), "8.82"),
        Case(v, "how many cups is 500 milliliters", number(2.11), "2.11"),
        Case(v, "how many grams is 2 pounds", number(907.2), "907.2"),
        Case(v, "what's one and a half cups in milliliters", number(354.9), "354.9"),
        Case(v, "how many quarts in a gallon", number(4), "4"),
        Case(m, "what's 3/4 times 2", number(1.5), "1.5"),
        Case(m, "what's double 2 and a half", number(5), "5"),
        Case(m, "what's half of three quarters", number(0.375), "0.375 (3/8)"),
        Case(m, "what's two thirds of 300", number(200), "200"),
        Case(m, "what is 1.5 times 4", number(6), "6"),
        Case(m, "what's 12 divided by 8", number(1.5), "1.5"),
        Case(s, "add flour, sugar and eggs to the grocery list",
             has(r"flour", r"sugar", r"eggs"), "three added"),
        Case(s, "put baking powder on my shopping list", has(r"baking powder"), "added"),
        Case(s, "do I have eggs on my shopping list", has(r"\byes\b|\bis on\b", r"eggs"),
             "yes, eggs"),
        Case(s, "remove sugar from the grocery list", has(r"removed (the )?sugar"), "removed"),
        Case(s, "read me my shopping list", both(
            has(r"flour", r"eggs", r"baking powder"), lambda x, _c: "sugar" not in x.lower()),
             "flour, eggs, baking powder"),
        Case(s, "how many things are on my shopping list", has(r"\b(3|three)\b"), "3"),
        Case(r, "remember that I took my blood pressure pill at 8",
             remembered(r"blood pressure pill"), "remembered"),
        Case(r, "did I take my blood pressure pill", has(r"\b8\b"), "at 8"),
        Case(r, "remember that my doctor's appointment is on tuesday at 10",
             remembered(r"doctor"), "remembered"),
        Case(r, "when is my doctor's appointment", has(r"tuesday", r"\b10\b"), "Tuesday at 10"),
        Case(a, "remind me to take my pills at 9 pm", has(r"take (my|your) pills", r"\b9 PM\b"),
             "pills, 9 PM"),
        Case(a, "remind me in 20 minutes to check the oven",
             has(r"check the oven", r"20 minutes|\d+:\d\d"), "oven, in 20 min"),
        Case(a, "set an alarm for 7 am tomorrow", alarm(7, tomorrow=True), "tomorrow 7 AM"),
        Case(a, "what reminders do I have", has(r"pills", r"oven"), "both reminders"),
        Case(a, "cancel the reminder to check the oven",
             both(has(r"cancel|delet|remov", r"oven"), lambda x, _c: "pills" not in x),
             "oven reminder cancelled"),
        Case(a, "wake me up at 6:15 on saturday", alarm(6, 15, weekday=5), "Saturday 6:15 AM"),
        Case(k, "what day is it today", weekday, "today's weekday"),
        Case(k, "what's today's date", date, "today's date"),
        Case(k, "what year is it", lambda x, c: str(c["now"].year) in x, "the year"),
        Case(k, "how many days until thanksgiving", days_to(_thanksgiving), "days to it"),
        Case(k, "what day of the week is the fourth of july next year",
             lambda x, c: f"{dt.date(c['now'].year + 1, 7, 4):%A}" in x, "its weekday"),
        Case(k, "is it morning or afternoon", part_of_day, "the part of the day"),
        Case(d, "roll a die", picked(1, 6), "1 to 6"),
        Case(d, "how do you spell cinnamon", has(r"C\W*I\W*N\W*N\W*A\W*M\W*O\W*N"),
             "the letters"),
        Case(g, "thank you", answered, "you're welcome"),
        Case("stop", "never mind", quiet, "nothing"),
        Case("stop", "stop", quiet, "nothing"),
    ]


def household_set() -> list[Case]:
    """A fourth list (2026-12-05, 139 requests), written as a household talks: short forms
    ("set timer 8 min", "sqrt 16"), names after the duration, everyday facts. Its first
    run found 14 misses in the intent domains; the templates were then fixed for them
    (docs/performance.md), so it is no longer a held-out list."""
    t, c, m, r = "timers", "clock", "arithmetic", "memory"
    return [
        Case(t, "wake me in 20 minutes", timer_set(r"20 minutes"), "20"),
        Case(t, "set timer 8 min", timer_set(r"8 minutes"), "8"),
        Case(t, "timer 10 minutes", timer_set(r"10 minutes"), "10"),
        Case(t, "remind me in 15 minutes", timer_set(r"15 minutes"), "15"),
        Case(t, "count down from 60 seconds", timer_set(r"1 minute|60 seconds"), "60s"),
        Case(t, "set a 1 minute timer", timer_set(r"1 minute"), "1"),
        Case(t, "start a quarter of an hour timer", timer_set(r"15 minutes"), "15"),
        Case(t, "set a timer for half an hour", timer_set(r"30 minutes"), "30"),
        Case(t, "set a timer for 1 hour 15 minutes", timer_set(r"1 hour and 15 minutes"), "75"),
        Case(t, "please set a rice timer for eighteen minutes", timer_set(r"rice", r"18 minutes"),
             "rice"),
        Case(t, "how much time is left on the rice timer", has(r"left", r"rice"), "rice"),
        Case(t, "how long until the rice is done", has(r"left", r"rice"), "rice"),
        Case(t, "how much time is left", has(r"left|timer"), "left"),
        Case(t, "show me my timers", has(r"timer"), "list"),
        Case(t, "how many timers are running", has(r"timer"), "list"),
        Case(t, "cancel the rice timer", has(r"cancel", r"rice"), "cancel"),
        Case(t, "delete all my timers", has(r"cancel"), "cancel"),
        Case(t, "cancel my timer", has(r"cancel|no timers"), "cancel"),
        Case(c, "what time is it now", clock_time, "time"),
        Case(c, "time please", clock_time, "time"),
        Case(c, "what's the time right now?", clock_time, "time"),
        Case(c, "what hour is it", clock_time, "time"),
        Case(c, "what's the date", date, "date"),
        Case(c, "what date is it today", date, "date"),
        Case(c, "what is the date today", date, "date"),
        Case(c, "which date is it", date, "date"),
        Case(c, "what day is today", weekday, "weekday"),
        Case(c, "is it monday today", weekday, "weekday"),
        Case(c, "what's today", weekday, "weekday"),
        Case(m, "what's 9 times 6", number(54), "54"),
        Case(m, "9 x 6", number(54), "54"),
        Case(m, "what is 45 + 55", number(100), "100"),
        Case(m, "what's 3 minus 10", number(-7), "-7"),
        Case(m, "how much is 7 times 13", number(91), "91"),
        Case(m, "what is eighty divided by four", number(20), "20"),
        Case(m, "what's half of 64", number(32), "32"),
        Case(m, "what's a third of 90", number(30), "30"),
        Case(m, "what is 12 percent of 50", number(6), "6"),
        Case(m, "what is 5 cubed", number(125), "125"),
        Case(m, "what's the square of 12", number(144), "144"),
        Case(m, "sqrt 16", number(4), "4"),
        Case(m, "what is two hundred and fifty times four", number(1000), "1000"),
        Case(m, "what is 1.5 plus 2.25", number(3.75), "3.75"),
        Case(m, "divide 100 by 8", number(12.5), "12.5"),
        Case(m, "what is 10 to the 3rd power", number(1000), "1000"),
        Case(m, "what is 15 + 27 - 8", number(34), "34"),
        Case(m, "what's 200 plus 15 percent", number(230), "230"),
        Case(m, "calculate 12 times 12", number(144), "144"),
        Case(m, "what is three point five times two", number(7), "7"),
        Case(m, "what is negative 5 plus 8", number(3), "3"),
        Case(r, "remember the alarm code is 9021", remembered(r"9021"), "remembered 9021"),
        Case(r, "what's the alarm code", has(r"9021"), "9021"),
        Case(r, "please remember that my sister's birthday is on March 3rd", remembered(r"march"),
             "remembered march"),
        Case(r, "when is my sister's birthday", has(r"march"), "march"),
        Case(r, "don't forget that the car is parked on level 3", remembered(r"level 3"),
             "remembered level 3"),
        Case(r, "where is the car parked", has(r"level 3"), "level 3"),
        Case(r, "remember that milk is in the blue fridge", remembered(r"blue fridge"),
             "remembered blue fridge"),
        Case(r, "where is the milk", has(r"blue fridge"), "blue"),
        Case(r, "what's my sister's birthday", has(r"march"), "march"),
        Case(r, "what do you know", has(r"9021"), "list"),
        Case(r, "forget where the car is parked", has(r"forg"), "forgot"),
        Case(r, "forget the alarm code", has(r"forg"), "forgot"),
        Case(r, "what is the alarm code", unknown("9021"), "none"),
        Case("stop", "stop it", quiet, "nothing"),
        Case("stop", "quiet", quiet, "nothing"),
        Case("stop", "enough", quiet, "nothing"),
        Case("stop", "okay stop", quiet, "nothing"),
        Case("stop", "cancel that", quiet, "nothing"),
        Case("stop", "never mind thanks", quiet, "nothing"),
        Case("stop", "hush", quiet, "nothing"),
        Case("stop", "stop please", quiet, "nothing"),
        Case("stop", "that's it", quiet, "nothing"),
        Case(t, "hey can you set a timer for 7 minutes", timer_set(r"7 minutes"), "7 minutes"),
        Case(t, "timer 3 mins", timer_set(r"3 minutes"), "3 minutes"),
        Case(t, "set a three minute timer for the eggs", timer_set(r"egg", r"3 minutes"), "egg"),
        Case(t, "set a 25 min pizza timer", timer_set(r"pizza", r"25 minutes"), "pizza"),
        Case(t, "start timer for 1 and a half hours", timer_set(r"1 hour and 30 minutes"),
             "1 hour and 30 minutes"),
        Case(t, "alert me in 10 seconds", timer_set(r"10 seconds"), "10 seconds"),
        Case(t, "set a timer for 5 minutes and call it bread", timer_set(r"bread", r"5 minutes"),
             "bread"),
        Case(t, "how long left on the pizza", has(r"left", r"pizza"), "left"),
        Case(t, "how's the pizza timer doing", has(r"left", r"pizza"), "left"),
        Case(t, "when will the bread timer go off", has(r"left", r"bread"), "left"),
        Case(t, "what timers are set", has(r"timer"), "timer"),
        Case(t, "do I have any timers", has(r"timer"), "timer"),
        Case(t, "stop the pizza timer", has(r"cancel", r"pizza"), "cancel"),
        Case(t, "remove the bread timer", has(r"cancel", r"bread"), "cancel"),
        Case(t, "cancel every timer", has(r"cancel"), "cancel"),
        Case(c, "what's the time please", clock_time, "the time"),
        Case(c, "could you please tell me what time it is", clock_time, "the time"),
        Case(c, "current time", clock_time, "the time"),
        Case(c, "what is the time", clock_time, "the time"),
        Case(c, "give me the date", date, "the date"),
        Case(c, "what's the date today please", date, "the date"),
        # Checked for the month and the year asked (until 2026-12-08 both for month and day,
        # which passed a date with no year for "what year is it").
        Case(c, "what month is it", lambda x, ctx: f"{ctx['now']:%B}".lower() in x.lower(),
             "the month"),
        Case(c, "what year is it", lambda x, ctx: str(ctx["now"].year) in x, "the year"),
        Case(c, "what day is it today", weekday, "the weekday"),
        Case(c, "what day of the week is it today", weekday, "the weekday"),
        Case(c, "is today friday", weekday, "the weekday"),
        Case(m, "what's eleven plus twenty two", number(33), "33"),
        Case(m, "how much is 6 times 7", number(42), "42"),
        Case(m, "what's 1000 divided by 25", number(40), "40"),
        Case(m, "what's 30 percent of 90", number(27), "27"),
        Case(m, "how much is 18 percent of 250", number(45), "45"),
        Case(m, "what is the square root of 2", has(r"1\.41"), r"1\.41"),
        Case(m, "what's four to the power of three", number(64), "64"),
        Case(m, "two plus two", number(4), "4"),
        Case(m, "what is 99 times 99", number(9801), "9801"),
        Case(m, "what's 13 minus 20", number(-7), "-7"),
        Case(m, "what does 8 times 8 equal", number(64), "64"),
        Case(m, "what is 3 times 4 plus 2", number(14), "14"),
        Case(m, "add 12 to 30", number(42), "42"),
        Case(m, "take 7 away from 20", number(13), "13"),
        Case(m, "divide 81 by 9", number(9), "9"),
        Case(m, "what is 1 million divided by 1000", number(1000), "1000"),
        Case(m, "what is 6 squared plus 8 squared", number(100), "100"),
        Case(m, "what's a quarter of 200", number(50), "50"),
        Case(m, "what is 100 minus 20 percent", number(80), "80"),
        Case(r, "remember that the door code is 1357", remembered(r"1357"), "1357"),
        Case(r, "what's the door code", has(r"1357"), "1357"),
        Case(r, "what was the door code", has(r"1357"), "1357"),
        Case(r, "remember my favorite color is green", remembered(r"green"), "green"),
        Case(r, "what is my favorite color", has(r"green"), "green"),
        Case(r, "what's my favourite colour", has(r"green"), "green"),
        Case(r, "remember that the passport is in the top drawer", remembered(r"top drawer"),
             "top drawer"),
        Case(r, "where's my passport", has(r"top drawer"), "top drawer"),
        Case(r, "where did I put my passport", has(r"top drawer"), "top drawer"),
        Case(r, "remember that mom's phone number is 555 0199", remembered(r"555 ?0199"),
             "555 ?0199"),
        Case(r, "what is mom's phone number", has(r"555 ?0199"), "555 ?0199"),
        Case(r, "what's my mom's number", has(r"555 ?0199"), "555 ?0199"),
        Case(r, "tell me everything you remember", has(r"1357"), "1357"),
        Case(r, "forget my favorite color", has(r"forg"), "forg"),
        Case(r, "forget about the door code", has(r"forg"), "forg"),
        Case("stop", "stop now", quiet, "nothing"),
        Case("stop", "please stop", quiet, "nothing"),
        Case("stop", "shush", quiet, "nothing"),
        Case("stop", "nothing", quiet, "nothing"),
        Case("stop", "no thank you", quiet, "nothing"),
        Case("stop", "that will be all", quiet, "nothing"),
        Case("stop", "cancel that please", quiet, "nothing"),
    ]


async def ask_text(session: aiohttp.ClientSession, url: str, text: str) -> dict[str, Any]:
    t0 = time.monotonic()
    async with session.post(f"{url}/api/chat", json={"text": text,
                                                     "conversation_id": "bench-answers"},
                            timeout=aiohttp.ClientTimeout(total=TURN_TIMEOUT_S)) as resp:
        events = await read_events(resp)
    final = next((d for k, d in events if k == "final"), None)
    error = next((d for k, d in events if k == "error"), None)
    return {"answer": final["text"] if final else f"[error] {error}",
            "intent": final.get("intent") if final else None,
            "tools": [d["name"] for k, d in events if k == "tool_call"],
            "seconds": round(time.monotonic() - t0, 3)}


async def ask_voice(url: str, pcm: bytes) -> dict[str, Any]:
    """Speak ``pcm`` into /api/voice in real time (bench/voice_turn.py's turn): the
    transcript, the reply and the seconds from the end of speech to the first reply audio."""
    try:
        got = await turn(url, pcm)
    except (RuntimeError, TimeoutError) as exc:
        return {"heard": "", "answer": f"[error] {exc!r}", "first_audio_s": None}
    latency = got["end_of_speech_to_first_audio_s"]
    return {"heard": got["heard"], "answer": got["reply"],
            "first_audio_s": None if latency != latency else latency}  # NaN: no audio


def speaker(models: Path, workdir: Path) -> Callable[[str], bytes]:
    """Text -> 16 kHz PCM: the piper voice when the models dir has it, else espeak-ng."""
    from appliance.voice.audio import float_to_pcm16, to_pipeline
    from bench.voice_turn import speak

    onnx = models / "piper" / "en_US-joe-medium.onnx"
    if onnx.is_file():
        from appliance.voice.audio import Audio
        from appliance.voice.tts import Synthesizer

        tts = Synthesizer(onnx)

        def piper(text: str) -> bytes:
            samples = tts.synthesize_all(text).astype(np.float32) / 32768  # int16 from piper
            return float_to_pcm16(to_pipeline(Audio(samples, tts.sample_rate)))
        return piper
    return lambda text: speak(text, workdir)


async def evaluate(cases: list[Case], url: str, voice: Callable[[str], bytes] | None
                   ) -> dict[str, Any]:
    rows = []
    async with aiohttp.ClientSession() as session:
        for case in cases:
            now = dt.datetime.now(dt.UTC)
            if voice is None:
                got = await ask_text(session, url, case.text)
            else:
                got = await ask_voice(url, voice(case.text))
            answer = str(got["answer"])
            right = not answer.startswith("[error]") and case.check(answer, {"now": now})
            rows.append({"domain": case.domain, "request": case.text, "expect": case.expect,
                         "right": bool(right), "raw_json": looks_like_json(answer), **got})
            print(f"{'ok ' if right else 'BAD'} {case.text!r} (heard {got.get('heard')!r}) -> "
                  f"{answer[:80]!r}",
                  file=sys.stderr, flush=True)
    return summarise(rows)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    domains: dict[str, list[bool]] = {}
    for row in rows:
        domains.setdefault(row["domain"], []).append(row["right"])
    intent_rows = [r["right"] for r in rows if r["domain"] in INTENT_DOMAINS]
    pct = {d: round(100 * sum(v) / len(v), 1) for d, v in domains.items()}
    latencies = sorted(r["first_audio_s"] for r in rows if r.get("first_audio_s") is not None)
    return {
        "requests": len(rows),
        "percent_correct": {"overall": round(100 * sum(r["right"] for r in rows) / len(rows), 1),
                            "intent_domains": round(100 * sum(intent_rows)
                                                    / max(1, len(intent_rows)), 1),
                            **pct},
        "raw_json_answers": sum(r["raw_json"] for r in rows),
        **({"first_audio_s_p50": latencies[len(latencies) // 2]} if latencies else {}),
        "worst": [{k: r[k] for k in ("domain", "request", "expect", "answer", *(
            ["heard"] if "heard" in r else []))} for r in rows if not r["right"]][:WORST],
        "rows": rows,
    }


SPEED_PROMPT = "Tell me a long story about a dragon who learns to bake bread."
SPEED_TOKENS = 128


async def generation_speed(url: str) -> dict[str, Any]:
    """Tokens per second of one answer from /v1/chat/completions (its own usage count)."""
    body = {"model": "default", "max_tokens": SPEED_TOKENS, "temperature": 0,
            "messages": [{"role": "user", "content": SPEED_PROMPT}]}
    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        async with session.post(f"{url}/v1/chat/completions", json=body,
                                timeout=aiohttp.ClientTimeout(total=TURN_TIMEOUT_S)) as resp:
            data = await resp.json()
        elapsed = time.monotonic() - t0
    tokens = int(data.get("usage", {}).get("completion_tokens", 0))
    return {"completion_tokens": tokens, "seconds": round(elapsed, 3),
            "tokens_per_s": round(tokens / elapsed, 1) if elapsed else None}


def memory_kib(pid: int) -> dict[str, int]:
    """The daemon's resident memory now and at its peak, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[{"VmRSS": "rss_kib", "VmHWM": "peak_rss_kib"}[key]] = int(value.split()[0])
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    models = Path(args.models)
    with tempfile.TemporaryDirectory(prefix="answers-bench-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        cfg = daemon_config(workdir, port, models, "answers",
                            llm={"mode": args.llm, **({"model": args.model} if args.model
                                                      else {})},
                            voice={"enabled": bool(args.voice), "language": "en",
                                   **args.voice_setting},
                            world={"mode": "local"}, tools={"timezone": "UTC"},
                            intents={"measures": args.measures})
        (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
        log = open(workdir / "daemon.log", "wb")
        proc = subprocess.Popen(  # noqa: ASYNC220 - before anything is timed
            [sys.executable, "-m", "appliance.cli", "run", "--config",
             str(workdir / "config.yaml")], stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        results: dict[str, Any] = {}
        try:
            await _wait_ready(url, proc)
            voice = speaker(models, workdir) if args.voice else None
            sets = {"eval": eval_set, "heldout": heldout_set, "fresh": fresh_set,
                    "household": household_set, "smalltalk": small_talk_set,
                    "convert": convert_set, "convert-heldout": convert_heldout_set,
                    "lists": lists_set, "calendar": calendar_set, "alarms": alarms_set,
                    "alarms-heldout": alarms_heldout_set, "misc": misc_set,
                    "repeat": repeat_set, "change": change_set, "week": week_set,
                    "polite": polite_set, "family": family_set,
                    "british": british_set, "kitchen": kitchen_set}
            wanted = set(args.domains.split(",")) if args.domains else None
            for name in (list(sets) if args.set == "all" else [args.set]):
                cases = [c for c in sets[name]() if wanted is None or c.domain in wanted]
                if not cases:
                    continue
                results[name] = await evaluate(cases, url, voice)
                if not args.rows:
                    results[name].pop("rows")
            if args.llm != "off":
                results["speed"] = await generation_speed(url)
            results["memory"] = memory_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            log.close()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", choices=("eval", "heldout", "fresh", "household", "smalltalk",
                                     "convert", "convert-heldout", "lists", "calendar", "alarms",
                                     "alarms-heldout", "misc", "repeat", "change", "week", "polite",
                                     "family", "british", "kitchen", "all"),
                   default="all")
    p.add_argument("--llm", choices=("off", "local"), default="local",
                   help="off: an edge alone (intents only); local: the model in-process")
    p.add_argument("--model", default="", help="a GGUF instead of the default model")
    p.add_argument("--voice", action="store_true", help="speak each request into /api/voice")
    add_voice_setting_option(p)
    p.add_argument("--measures", choices=("us", "imperial"), default="us",
                   help="intents.measures: what a bare pint is (a British household's box "
                        "measures in imperial units; the british list is run so)")
    p.add_argument("--rows", action="store_true", help="print every request's answer")
    p.add_argument("--domains", default="",
                   help="only these domains, comma-separated (e.g. 'open,small talk' to "
                        "compare models)")
    p.add_argument("--models", default=os.environ.get("HYBRID_AGENT_TEST_MODELS",
                                                      DEFAULT_MODELS))
    args = p.parse_args()
    args.voice_setting = dict(args.voice_setting)
    result = asyncio.run(main_async(args))
    print(json.dumps({"bench": "answers", "llm": args.llm, "model": args.model or "default",
                      "voice": args.voice, "cpus": os.cpu_count(),
                      "load_average": os.getloadavg()[0], **result}, indent=2))


if __name__ == "__main__":
    main()
