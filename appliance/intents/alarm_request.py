"""A request to set an alarm or a reminder, as meant: the time's words, what to be
reminded of, and the days it repeats on (:mod:`appliance.intents.repeats`).

hassil's wildcards may split the words at the wrong place; :func:`read` mends that."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from appliance.intents import clocktimes, repeats
from appliance.intents.recognizer import Match
from appliance.intents.turn import Turn


@dataclass(frozen=True)
class Reading:
    when: str
    """The time's words."""
    name: str
    """What to be reminded of; '' for a wake-up alarm."""
    repeat: repeats.Repeat | None


def read(turn: Turn, match: Match) -> Reading | str | None:
    """The time, what to be reminded of and the days it repeats on, as meant; an answer
    when the request asks for what cannot be done; None when it is not a request for an
    alarm.

    hassil may split the words at the wrong "to" or leave a day in the reminder: "remind
    me at ten to one to call" (when "ten", name "one to call"), "remind me to water the
    plants tomorrow at 2" (name "water the plants tomorrow")."""
    table = turn.lang.words["clock_times"]
    rule, weekdays = table["repeating"], turn.lang.words["weekdays"]
    # A time or a reminder ends with its sentence: Whisper may repeat the request's start
    # after it ("Set an alarm for quarter past eight. Set in alarm for").
    start = repeats.words(match.text)[:1]
    when, name = (_sentence(match.said.get(k, ""), start, table) for k in ("when", "name"))
    words = name.split()
    plain = [w.lower().strip(".,!?") for w in words]
    if "to" in plain[1:-1]:  # "remind me at ten to eight every weekday to leave"
        cut = plain.index("to")
        longer = f"{when} to {' '.join(words[:cut])}"
        if _reads(turn, longer):
            when, words, plain = longer, words[cut + 1:], plain[cut + 1:]
    repeat, said = repeats.find(repeats.words(when), table, weekdays)
    if match.said.get("repeat"):  # "a weekday alarm for 6:30"
        adjective = repeats.adjective(repeats.words(match.said["repeat"]), table)
        if adjective is None:
            return None  # "set a loud alarm for 7": no days said where they go
        repeat = repeat or adjective
    if repeat is None:  # "remind me at 8 to take my pills every day"
        for size in range(min(6, len(words)), 0, -1):
            found, left = repeats.find(repeats.words(" ".join(words[-size:])), table,
                                       weekdays)
            if found is not None and found.days and not left:
                repeat, words, plain = found, words[:-size], plain[:-size]
                break
    elif repeat.days and not clocktimes.reads(" ".join(said), turn.lang.words,
                                              turn.lang.numbers):
        # "remind me every Monday to put the bins out at 7 pm": the time ends the words.
        for i in range(len(plain) - 2, 0, -1):
            if plain[i] == "at" and clocktimes.reads(" ".join(plain[i + 1:]),
                                                     turn.lang.words, turn.lang.numbers):
                said, words, plain = [*said, *plain[i + 1:]], words[:i], plain[:i]
                break
    if (repeat is not None and not repeat.days) or any(
            w in rule["every"] and i + 1 < len(plain) and plain[i + 1] in rule["units"]
            for i, w in enumerate(plain)):
        rest = [w for w in said if w not in rule["never"] and w not in rule["every"]
                and w not in rule["units"] and w not in rule["phrases"]]
        if not clocktimes.reads(" ".join(rest), turn.lang.words, turn.lang.numbers):
            return None  # hassil's split took more than the time: another split is right
        return turn.lang.say("alarm_repeating")  # "every other day": said what can be set
    when = " ".join(said)
    if plain and plain[-1] in table["statement_ends"]:
        return None  # "remind me that the party is at 7": the party's time, not a reminder
    for size in range(min(3, len(words) - 1), 0, -1):  # "... tomorrow", "... on friday"
        tail = " ".join(words[-size:])
        if words[-size].lower() in table["for_day"]:
            break  # "buy a present for friday": the reminder's words
        if clocktimes.day(tail, dt.datetime(2000, 1, 1), turn.lang.words) is not None:
            when, words = f"{tail} {when}", words[:-size]
            break
    return Reading(when, " ".join(words), repeat)


def _reads(turn: Turn, text: str) -> bool:
    """Whether ``text`` is a clock time once the days it repeats on are left out."""
    table = turn.lang.words["clock_times"]
    _, left = repeats.find(repeats.words(text), table, turn.lang.words["weekdays"])
    return clocktimes.reads(" ".join(left), turn.lang.words, turn.lang.numbers)


#: Most words of a request's start said again after its time ("Set in alarm for").
ECHO_WORDS = 5


def _sentence(text: str, start: list[str], table: dict[str, Any]) -> str:
    """``text`` up to the end of its first sentence ("7.30" and "7 a.m. every day" are
    one). After a number a sentence ends only before the request's start said again and
    cut off (its first word, ``start``, and a last word of ``echo_ends``: "20 past 8. Set
    in alarm for", as Whisper base repeats a request's start; "7. Set it for 8 instead." is
    no echo) or before words that only close it ("7. Good night.", ``closing_words``);
    else the time may go on ("6:30. Every weekday.", "7. P.M.") or it is no alarm's."""
    text = re.sub(r"\b([ap])\.m\b\.?", r"\1m", text, flags=re.I)
    for end in re.finditer(r"[.!?]\s+", text):
        before, after = text[:end.start()], repeats.words(text[end.end():])
        echo = after[:1] == start and len(after) <= ECHO_WORDS and \
            after[-1].strip(".") in table["echo_ends"]
        if not before[-1:].isdigit() or echo or (
                after and all(w.strip(".") in table["closing_words"] for w in after)):
            return before
    return text
