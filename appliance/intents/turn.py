"""What one intent turn did: the tool calls its handler made and the answer it built.

A handler gets the :class:`Match` and a :class:`Turn`; it calls tools through
``turn.call`` (the node's real tools, local or remote, arguments validated as
for the LLM) and returns the answer text, or None to decline so the next match
or the LLM answers instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.intents.language import Language
from appliance.intents.recognizer import Match
from appliance.tools.registry import ToolRegistry


@dataclass(frozen=True)
class Call:
    """One tool call an intent made, as the agent's events report it."""

    id: str
    name: str
    arguments: dict[str, Any]
    where: str
    observation: dict[str, Any]


def _no_llm() -> bool:
    return False


@dataclass(frozen=True)
class About:
    """What small talk says about the box: its name on the LAN, and whether a language
    model answers now (local, or a core on the LAN); and how the box measures a pint
    ("us" or "imperial", :func:`appliance.intents.units.measures`)."""

    node: str = "this box"
    llm: Callable[[], bool] = _no_llm
    measures: str = "us"


#: "cancel it" this soon after the box's last answer set a timer or an alarm cancels it.
JUST_SET_S = 120
#: The intents that set one.
SETTING = frozenset({"TimerStart", "AlarmSet", "ReminderIn", "TimerRestart"})


@dataclass(frozen=True)
class Previous:
    """The turn this box answered last, for "cancel it" just after a timer was set (an
    intent of "" is an answer the LLM gave)."""

    intent: str
    calls: tuple[Call, ...]
    at: float
    """When it was answered (time.monotonic())."""


@dataclass
class Turn:
    """The tools an intent may use and the calls it made."""

    lang: Language
    tools: ToolRegistry
    allowed: tuple[str, ...] | None
    timeout_s: float
    about: About = field(default_factory=About)
    previous: Previous | None = None
    """The turn answered before this one (intent "" and no calls: the LLM's; None: none
    yet)."""
    calls: list[Call] = field(default_factory=list)

    def can(self, *names: str) -> bool:
        """Whether every tool in ``names`` exists here and the agent may use it."""
        return all(self.tools.get(n) is not None
                   and (self.allowed is None or n in self.allowed) for n in names)

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run a tool; its observation ``{"ok", "result" | "error"}``, never an exception."""
        tool = self.tools.get(name)
        where = str(tool.describe().get("where", "local")) if tool is not None else "local"
        observation = await self.tools.invoke(name, arguments, self.timeout_s)
        self.calls.append(Call(uuid.uuid4().hex[:12], name, dict(arguments), where,
                               observation))
        return observation

    def just_set(self) -> int | None:
        """The id of the timer or alarm the box's last answer set, if that was at most
        :data:`JUST_SET_S` ago ("cancel it", "cancel that reminder")."""
        previous = self.previous
        if previous is None or previous.intent not in SETTING or \
                time.monotonic() - previous.at > JUST_SET_S:
            return None
        for call in reversed(previous.calls):
            if call.name == "timers" and call.arguments.get("action") == "set" and \
                    call.observation.get("ok"):
                return int(call.observation["result"]["set"]["id"])
        return None

    async def peek(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """As :meth:`call`, for a read that only decides whether to act at all ("stop":
        is an alarm ringing?); not among the turn's calls shown, as nothing came of it."""
        return await self.tools.invoke(name, arguments, self.timeout_s)


Handler = Callable[[Match, Turn], Awaitable[str | None]]
"""``(match, turn) -> answer``; None declines."""
