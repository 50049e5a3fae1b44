"""The agent over Wyoming: a ``transcript`` from the peer -> ``handled`` (the answer) or
``not-handled`` (why not).

This is how Home Assistant uses the box as a conversation agent. The answer
comes from the same reply source as the box's own voice turns (the agent when
the node has one, else the LLM router), and the conversation continues under
the ``conversation_id`` Home Assistant passes in the event's ``context``.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Attribution, HandleModel, HandleProgram

from appliance import __version__
from appliance.voice.errors import VoiceError
from appliance.voice.pipeline import Turn
from appliance.voice.reply import ReplySource
from appliance.wyoming.access import Level
from appliance.wyoming.server import Send

log = logging.getLogger(__name__)

MAX_CONVERSATION_ID_CHARS = 100
_CONVERSATION_ID = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{MAX_CONVERSATION_ID_CHARS}}}$")
AGENT = Attribution(name="hybrid-agent", url="")  # no public home to point at


class HandleService:
    """The agent as a Wyoming ``handle`` program, for peers trusted with it."""

    kind = "handle"
    level = Level.AGENT

    def __init__(self, reply: ReplySource, languages: list[str], max_text_chars: int,
                 ) -> None:
        self.reply = reply
        self.languages = languages
        self.max_text_chars = max_text_chars

    def program(self) -> HandleProgram | None:
        source = self.reply.kind
        if source == "none":
            return None
        model = HandleModel(name=f"hybrid-agent-{source}", attribution=AGENT, installed=True,
                            description="the box's agent" if source == "agent" else
                            "the box's language model", version=None,
                            languages=self.languages)
        return HandleProgram(name="hybrid-agent", attribution=AGENT, installed=True,
                             description="hybrid-agent conversation agent",
                             version=__version__, models=[model])

    def open(self, send: Send) -> HandleSession:
        return HandleSession(self, send)


class HandleSession:
    """Answers transcripts on one connection."""

    types = frozenset({"transcript"})
    opens: frozenset[str] = frozenset()

    def __init__(self, service: HandleService, send: Send) -> None:
        self.service = service
        self.send = send
        self.default_id = f"wyoming-{uuid.uuid4().hex}"

    async def on_event(self, event: Event) -> None:
        text = event.data.get("text")
        cid = _conversation_id(event.data.get("context")) or self.default_id
        context = {"conversation_id": cid}
        limit = self.service.max_text_chars
        if not isinstance(text, str) or not text.strip():
            await self.send(NotHandled(text="there is nothing to answer: the transcript is "
                                            "empty", context=context).event())
            return
        if len(text) > limit:
            await self.send(NotHandled(text=f"the transcript is longer than {limit} "
                                            "characters (agent.max_text_chars)",
                                       context=context).event())
            return
        responder = self.service.reply.responder()
        if responder is None:
            await self.send(NotHandled(text="this box has no agent and no language model",
                                       context=context).event())
            return
        parts: list[str] = []
        try:
            async for delta in responder(text.strip(), cid):
                parts.append(delta)
        except VoiceError as exc:
            log.info("wyoming: not handled: %s", exc)
            await self.send(NotHandled(text=str(exc), context=context).event())
            return
        answer = "".join(parts).strip()
        record = getattr(responder, "record", None)
        if record is not None:
            record(cid, Turn(user=text.strip(), reply=answer, spoken=answer))
        await self.send(Handled(text=answer, context=context).event())

    async def close(self) -> None:
        """Nothing runs between events."""


def _conversation_id(context: Any) -> str | None:
    if not isinstance(context, dict):
        return None
    cid = context.get("conversation_id")
    return cid if isinstance(cid, str) and _CONVERSATION_ID.match(cid) else None
