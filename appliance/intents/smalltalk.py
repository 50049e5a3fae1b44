"""Small talk: hello, thanks, goodbye, "how are you", "who are you", "what can you do".

Answered by the box itself (``intents.small_talk``), so the answer is the same
whichever model is behind it, and "what can you do" says what this box can do
now: the everyday domains whose tools the agent has, and "other questions" only
while a language model is reachable.
"""

from __future__ import annotations

from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn

#: The domains "what can you do" names, in order: (answer key, the tools the domain needs).
ABILITIES = (("ability_timers", ("timers",)), ("ability_clock", ("clock",)),
             ("ability_arithmetic", ("calculator",)),
             ("ability_memory", ("world_set", "world_get", "world_list", "world_delete")))

#: Intents a speaker often says before the request itself ("Hello, ... set a timer"): a
#: voice turn does not end at the first short pause after one of them.
OPENERS = frozenset({"SmallTalkGreet"})


async def greet(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("greet", greeting=str(match.slots.get("greeting") or "hello"))


async def thanks(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("thanks")


async def bye(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("good_night" if match.slots.get("farewell") == "good night"
                         else "goodbye")


async def how_are_you(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("how_are_you")


async def identity(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("identity", node=turn.about.node)


async def abilities(match: Match, turn: Turn) -> str | None:
    can = [turn.lang.say(key) for key, tools in ABILITIES if turn.can(*tools)]
    if turn.about.llm():
        can.append(turn.lang.say("ability_llm"))
    if not can:
        return turn.lang.say("abilities_none")
    return turn.lang.say("abilities", abilities=turn.lang.join([c[:1].lower() + c[1:]
                                                                  for c in can]))


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "SmallTalkGreet": (greet, ()),
    "SmallTalkThanks": (thanks, ()),
    "SmallTalkBye": (bye, ()),
    "SmallTalkHowAreYou": (how_are_you, ()),
    "SmallTalkIdentity": (identity, ()),
    "SmallTalkAbilities": (abilities, ()),
}
