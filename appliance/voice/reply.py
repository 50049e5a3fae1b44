"""Where a spoken reply comes from: the agent when the node has one, else the LLM router.

Both are wrapped as a :data:`~appliance.voice.pipeline.Responder` and both learn
what the listener actually heard: a reply cut off by barge-in is remembered as
cut off, so the next answer does not assume the user heard the rest.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Any

from appliance.voice.errors import VoiceError
from appliance.voice.pipeline import Responder, Turn

log = logging.getLogger(__name__)

#: Voice conversations remembered for the LLM-only path; least recently used forgotten first.
MAX_CONVERSATIONS = 256
#: Messages of history sent along with each question on the LLM-only path.
HISTORY_MESSAGES = 12
#: Short spoken answers: a reply is heard, not read.
VOICE_MAX_TOKENS = 200


class ReplyError(VoiceError):
    """The responder failed; ``code`` names the category for the client."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class AgentResponder:
    """The agent component's ``token`` events as text deltas."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        # The turn (the task that reads the reply) whose answer ended its conversation. One
        # responder serves every session, and two may share a conversation id (two tabs);
        # a turn's task is its own, and its entry goes with it.
        self._ended: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = \
            weakref.WeakKeyDictionary()

    async def __call__(self, text: str, conversation_id: str) -> AsyncIterator[str]:
        task = asyncio.current_task()
        if task is not None:
            self._ended.pop(task, None)
        async for event in self.agent.run(text, conversation_id):
            if event.type == "token":
                yield str(event.data.get("text", ""))
            elif event.type == "final" and event.data.get("ends_conversation") and task:
                self._ended[task] = conversation_id
            elif event.type == "error":
                raise ReplyError(str(event.data.get("message", "agent failed")),
                                 str(event.data.get("code", "agent_error")))

    def ends(self, conversation_id: str) -> bool:
        """Whether the answer this turn just gave ended the conversation ("goodbye", "thank
        you"); asked from the task that read the reply."""
        task = asyncio.current_task()
        return task is not None and self._ended.get(task) == conversation_id

    async def complete(self, text: str) -> bool:
        """Whether ``text`` is already a whole request the agent answers at once (an
        everyday intent), so the turn need not wait out the whole trailing silence."""
        check = getattr(self.agent, "complete", None)
        return bool(check is not None and await check(text))

    async def choose(self, readings: list[str]) -> str:
        """Which reading of the utterance to answer (see Agent.choose)."""
        pick = getattr(self.agent, "choose", None)
        return str(await pick(readings)) if pick is not None else readings[0]

    def record(self, conversation_id: str, turn: Turn) -> None:
        """Make the agent's memory hold what was heard, not what was generated."""
        hook = getattr(self.agent, "record_cut_off", None)
        if hook is not None:
            hook(conversation_id, turn.spoken)
            return
        memory = getattr(self.agent, "memory", None)
        if memory is None or not turn.cut_off:
            return
        history = memory.history(conversation_id)
        if history and history[-1].get("role") == "assistant" \
                and history[-1].get("content") == turn.reply:
            history[-1]["content"] = turn.spoken  # the window holds this same dict
        else:  # cancelled before the agent stored the turn
            memory.append(conversation_id, [{"role": "user", "content": turn.user},
                                            {"role": "assistant", "content": turn.spoken}])


class LlmResponder:
    """Straight to the LLM router (no agent on this node), keeping a short history."""

    def __init__(self, router: Any, system_prompt: str) -> None:
        self.router = router
        self.system_prompt = system_prompt
        self._history: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._last: dict[str, tuple[Turn, dict[str, Any]]] = {}

    async def __call__(self, text: str, conversation_id: str) -> AsyncIterator[str]:
        from appliance.llm.chat import ChatRequest, LLMError

        messages = [{"role": "system", "content": self.system_prompt},
                    *self.history(conversation_id), {"role": "user", "content": text}]
        request = ChatRequest(messages=messages, max_tokens=VOICE_MAX_TOKENS,
                              conversation_id=conversation_id)
        try:
            async for chunk in self.router.stream(request):
                if chunk.content:
                    yield chunk.content
        except LLMError as exc:
            raise ReplyError(str(exc), exc.code) from exc

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        window = self._history.get(conversation_id)
        return list(window) if window else []

    def record(self, conversation_id: str, turn: Turn) -> None:
        last = self._last.get(conversation_id)
        if last is not None and last[0] is turn:  # recorded already; now cut off
            last[1]["content"] = turn.spoken
            return
        window = self._history.get(conversation_id)
        if window is None:
            window = deque(maxlen=HISTORY_MESSAGES)
            self._history[conversation_id] = window
            while len(self._history) > MAX_CONVERSATIONS:
                dropped, _ = self._history.popitem(last=False)
                self._last.pop(dropped, None)
        self._history.move_to_end(conversation_id)
        answer = {"role": "assistant", "content": turn.spoken}
        window.extend([{"role": "user", "content": turn.user}, answer])
        self._last[conversation_id] = (turn, answer)


def as_responder(source: AgentResponder | LlmResponder) -> Responder:
    return source.__call__


class ReplySource:
    """Where a voice turn's reply comes from: ``agent`` if the node has one, else ``router``
    (the LLM router, with ``system_prompt`` and a short history), else nothing."""

    def __init__(self, agent: Any = None, router: Any = None, system_prompt: str = "") -> None:
        self._agent = AgentResponder(agent) if agent is not None else None
        self._llm = LlmResponder(router, system_prompt) if router is not None else None

    @property
    def kind(self) -> str:
        """agent, llm or none (what /api/status shows)."""
        return "agent" if self._agent is not None else "llm" if self._llm is not None else "none"

    def responder(self) -> AgentResponder | LlmResponder | None:
        """The responder of the next turn (a session asks once per turn)."""
        return self._agent or self._llm
