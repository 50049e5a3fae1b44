"""The "intents" component: text -> an everyday answer from a tool, or None for the LLM.

At start it loads the language's templates and builds hassil's number tables
in its worker thread; :meth:`Intents.answer` matches there (a few ms of CPU
work, off the event loop), then tries the ranked matches' handlers in order
until one answers. A handler whose tools this node or this agent lacks is
skipped, so a node without a world model simply has no memory intents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from appliance.config import IntentsConfig
from appliance.intents import (
    alarms,
    calculate,
    chance,
    clock,
    convert,
    lists,
    memory,
    memory_done,
    reminder_in,
    smalltalk,
    stop,
    timer_pause,
    timer_restart,
    timers,
)
from appliance.intents.language import Language, load
from appliance.intents.recognizer import Recognizer
from appliance.intents.turn import About, Call, Handler, Previous, Turn
from appliance.node import Component
from appliance.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

#: Conversations whose last answer is kept for "cancel it" (the oldest is forgotten).
MAX_CONVERSATIONS = 256

HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    **timers.HANDLERS, **alarms.HANDLERS, **clock.HANDLERS, **calculate.HANDLERS,
    **convert.HANDLERS, **memory.HANDLERS, **lists.HANDLERS, **stop.HANDLERS,
    **chance.HANDLERS, **smalltalk.HANDLERS, **timer_pause.HANDLERS, **reminder_in.HANDLERS,
    **timer_restart.HANDLERS, **memory_done.HANDLERS}
#: Intents whose free words must read as what they stand for before the request is whole:
#: the catch-all calculation, and a conversion's amount.
COMPLETE = {calculate.INTENT: calculate.complete, convert.INTENT: convert.complete}


@dataclass(frozen=True)
class IntentAnswer:
    """An intent's answer and the tool calls behind it."""

    intent: str
    text: str
    calls: list[Call]
    match_s: float
    """Seconds spent matching (hassil), for /api/status and the benchmarks."""


class Intents(Component):
    """Everyday requests answered by hassil templates and tool-calling handlers."""

    name = "intents"

    def __init__(self, cfg: IntentsConfig, tools: ToolRegistry, tool_timeout_s: float,
                 about: About | None = None) -> None:
        self.cfg = cfg
        self.tools = tools
        self.tool_timeout_s = tool_timeout_s
        self.about = about or About()
        self.handlers = {name: entry for name, entry in HANDLERS.items()
                         if cfg.small_talk or name not in smalltalk.HANDLERS}
        self.lang: Language | None = None
        self._recognizer: Recognizer | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="intents")
        self.answered: dict[str, int] = {}
        self.passed = 0
        # The last answer in each conversation (intent "": the LLM's), and the box's last, for
        # "cancel it": a conversation's own once it has one, else the box's (a client that
        # keeps no conversation id, or a new one's first words).
        self._previous: OrderedDict[str, Previous] = OrderedDict()
        self._last: Previous | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._recognizer = await loop.run_in_executor(self._executor, self._load)
        self.lang = self._recognizer.lang
        missing = sorted(set(self._recognizer.names()) - set(HANDLERS))
        if missing:
            log.warning("intents without a handler (never answered): %s", ", ".join(missing))

    def _load(self) -> Recognizer:
        recognizer = Recognizer(load(self.cfg.language))
        recognizer.warm_up()
        return recognizer

    async def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        return {"language": self.cfg.language,
                "intents": self._recognizer.names() if self._recognizer else [],
                "answered": dict(sorted(self.answered.items())), "passed_to_llm": self.passed}

    async def understood(self, texts: list[str], allowed: tuple[str, ...] | None = None
                         ) -> int | None:
        """The index of the reading of one utterance (``texts``, best first) to answer: the
        first that is a whole everyday request (as :meth:`complete` judges), else the first
        that some other intent matches ("where's the spare key" with a subject), or None
        when no reading is an everyday request. Nothing is run."""
        recognizer = self._recognizer
        if recognizer is None:
            return None

        def first() -> int | None:
            partial = None
            for i, text in enumerate(texts):
                kind = self._kind(recognizer, text, allowed)
                if kind == "whole":
                    return i
                if kind == "partial" and partial is None:
                    partial = i
            return partial
        return await asyncio.get_running_loop().run_in_executor(self._executor, first)

    async def complete(self, text: str, allowed: tuple[str, ...] | None = None) -> bool:
        """Whether ``text`` is already a whole everyday request, so a voice turn may end at
        the speaker's first short pause: a match without open-ended (wildcard) words, or
        arithmetic that reads as a whole calculation. Nothing is run."""
        recognizer = self._recognizer
        if recognizer is None:
            return False
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._kind, recognizer, text, allowed) == "whole"

    def _kind(self, recognizer: Recognizer, text: str, allowed: tuple[str, ...] | None
              ) -> str:
        """"whole" (see :meth:`complete`), "partial" (an intent with open-ended words, such as
        a fact's subject, or small talk the request may follow), or "" (nothing, or only the
        catch-all that takes any sentence for a calculation and is not one). Runs in the
        worker thread."""
        for candidate in recognizer.candidates(text):
            kind = self._kind_of(recognizer, candidate, allowed)
            if kind:
                return kind
        return ""

    def _kind_of(self, recognizer: Recognizer, text: str, allowed: tuple[str, ...] | None
                 ) -> str:
        partial = False
        for match in recognizer.recognize(text):
            entry = self.handlers.get(match.intent)
            if entry is None or not self._turn(recognizer, allowed).can(*entry[1]):
                continue
            whole = COMPLETE.get(match.intent)
            if whole is not None:
                if whole(match, recognizer.lang):
                    return "whole"
                continue
            if not match.wildcards and match.intent not in smalltalk.NOT_EARLY:
                return "whole"
            partial = True
        return "partial" if partial else ""

    def _turn(self, recognizer: Recognizer, allowed: tuple[str, ...] | None,
              conversation: str | None = None) -> Turn:
        previous = self._previous[conversation] \
            if conversation is not None and conversation in self._previous else self._last
        return Turn(recognizer.lang, self.tools, allowed, self.tool_timeout_s, self.about,
                    previous)

    def _remember(self, conversation: str | None, previous: Previous) -> None:
        self._last = previous
        if conversation is not None:
            self._previous[conversation] = previous
            self._previous.move_to_end(conversation)
            while len(self._previous) > MAX_CONVERSATIONS:
                self._previous.popitem(last=False)

    async def answer(self, text: str, allowed: tuple[str, ...] | None = None,
                     conversation: str | None = None) -> IntentAnswer | None:
        """The first ranked match whose handler answers, or None (the LLM's turn).
        ``conversation`` (its id) keeps "cancel it" to what was set in it.

        A greeting that opens the text is passed over (:meth:`Recognizer.candidates`):
        "Hello, what time is it?" is the clock, and "Hello" cannot become part of a
        timer's name or a fact; "hello kitty timer for 5 minutes" is the hello kitty
        timer."""
        recognizer = self._recognizer
        if recognizer is None:
            return None
        t0 = time.monotonic()
        candidates = await asyncio.get_running_loop().run_in_executor(
            self._executor, recognizer.candidates, text)
        for candidate in candidates:
            answer = await self._first(recognizer, candidate, allowed, t0, conversation)
            if answer is not None:
                self.answered[answer.intent] = self.answered.get(answer.intent, 0) + 1
                self._remember(conversation, Previous(answer.intent, tuple(answer.calls),
                                                      time.monotonic()))
                return answer
        self.passed += 1
        self._remember(conversation, Previous("", (), time.monotonic()))  # the LLM's
        return None

    async def _first(self, recognizer: Recognizer, text: str,
                     allowed: tuple[str, ...] | None, t0: float,
                     conversation: str | None = None) -> IntentAnswer | None:
        matches = await asyncio.get_running_loop().run_in_executor(
            self._executor, recognizer.recognize, text)
        match_s = time.monotonic() - t0
        for match in matches:
            entry = self.handlers.get(match.intent)
            if entry is None:
                continue
            handler, needs = entry
            turn = self._turn(recognizer, allowed, conversation)
            if not turn.can(*needs):
                continue
            said = await handler(match, turn)
            if said is not None:
                return IntentAnswer(match.intent, said, turn.calls, match_s)
        return None
