"""Small talk: hello, thanks, goodbye, "how are you", "who are you", "what can you do",
"you're the best", "tell me a joke".

Answered by the box itself (``intents.small_talk``), so the answer is the same
whichever model is behind it, and "what can you do" says what this box can do
now: the everyday domains whose tools the agent has, and "other questions" only
while a language model is reachable.
"""

from __future__ import annotations

import secrets

from appliance.intents import calculate, clock, convert, lists, memory, timers
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn

#: The domains "what can you do" names, in order: (answer key, the intent whose tools the
#: domain needs: setting a timer, the time, a calculation, remembering a fact).
ABILITIES = (("ability_timers", timers.HANDLERS["TimerStart"][1]),
             ("ability_clock", clock.HANDLERS["ClockTime"][1]),
             ("ability_arithmetic", calculate.HANDLERS[calculate.INTENT][1]),
             ("ability_convert", convert.HANDLERS[convert.INTENT][1]),
             ("ability_lists", lists.HANDLERS["ListAdd"][1]),
             ("ability_memory", memory.HANDLERS["MemoryRemember"][1]))


async def greet(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("greet", greeting=str(match.slots.get("greeting") or "hello"))


async def thanks(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("thanks")


async def bye(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("good_night" if match.slots.get("farewell") == "good night"
                         else "goodbye")


async def how_are_you(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("how_are_you")


async def compliment(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("compliment")


#: The jokes not yet told since each was last told, per language (drawn at random from them).
_untold: dict[str, list[str]] = {}
_last: dict[str, str] = {}


async def joke(match: Match, turn: Turn) -> str | None:
    """A joke from the language's list, at random among those not told since the list was
    last told through: asked again, another."""
    jokes = [str(j) for j in turn.lang.words.get("jokes") or []]
    if not jokes:
        return None
    untold = _untold.get(turn.lang.code)
    if not untold:  # all told: all again, but not the last one twice in a row
        untold = [j for j in jokes if j != _last.get(turn.lang.code)] or list(jokes)
    told = untold.pop(secrets.randbelow(len(untold)))
    _untold[turn.lang.code], _last[turn.lang.code] = untold, told
    return told


async def identity(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("identity", node=turn.about.node)


async def abilities(match: Match, turn: Turn) -> str | None:
    # List items, read as memory's and the timers' are (not capitalised as an answer).
    keys = [key for key, tools in ABILITIES if turn.can(*tools)]
    if turn.about.llm():
        keys.append("ability_llm")
    if not keys:
        return turn.lang.say("abilities_none")
    return turn.lang.say("abilities",
                         abilities=turn.lang.join([turn.lang.answers[k] for k in keys]))


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "SmallTalkGreet": (greet, ()),
    "SmallTalkThanks": (thanks, ()),
    "SmallTalkBye": (bye, ()),
    "SmallTalkHowAreYou": (how_are_you, ()),
    "SmallTalkIdentity": (identity, ()),
    "SmallTalkCompliment": (compliment, ()),
    "SmallTalkJoke": (joke, ()),
    "SmallTalkAbilities": (abilities, ()),
}

#: Small talk never ends a voice turn at the speaker's first short pause, as other whole
#: requests do: its words often open a longer request ("Hello ...", "Thank you ... and what
#: time is it", "Can you help me ... with dinner", "How are you ... supposed to cook rice").
NOT_EARLY = frozenset(HANDLERS)

#: These answers end the conversation: by voice, no follow-up window opens after them
#: (the box would otherwise go on listening to the room after "goodbye").
ENDS_CONVERSATION = frozenset({"SmallTalkBye", "SmallTalkThanks", "SmallTalkCompliment"})
