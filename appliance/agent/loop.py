"""The agent loop: Thought -> Tool -> Observation -> ... -> answer, as a stream of AgentEvents.

Each step asks the LLM router with the tools the profile allows; tool calls
come back complete on the final chunk, run (each under ``agent.tool_timeout_s``,
arguments validated first) and their observations go back to the model. After
``agent.max_steps`` tool calls the model is asked once more without tools, so
every turn ends in an answer or an error event; calls past the budget in one
answer are not run (their observation says so). The profile's ``tool_choice``:
``auto`` lets the model choose, ``required`` forces a call on the first step,
``always`` on every step until the budget is spent. Answer tokens are passed on
as they arrive, so speech can start before the answer is complete.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from appliance.agent import grounding, textcalls
from appliance.agent.events import AgentEvent, failure, token
from appliance.agent.memory import ConversationMemory
from appliance.config import AgentConfig
from appliance.errors import ApplianceError
from appliance.intents import observations
from appliance.intents.component import IntentAnswer, Intents
from appliance.intents.language import Language
from appliance.intents.language import load as load_language
from appliance.intents.smalltalk import ENDS_CONVERSATION
from appliance.llm.chat import ChatRequest, LLMClient, LLMError
from appliance.node import Component
from appliance.tools.base import error, parse_arguments
from appliance.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

DEFAULT_AGENT = "default"
#: tool_choice of a profile that forces a tool call on every step while steps remain.
ALWAYS = "always"
#: Longest tool observation given back to the model, in characters.
MAX_OBSERVATION_CHARS = 4000
TEMPERATURE = 0.0
#: Language of the answers made from tool results when the node has no intents.
DEFAULT_LANGUAGE = "en"


class AgentError(ApplianceError):
    """Base of the agent's errors; ``status`` is what the API answers."""

    status = 400
    code = "agent_error"


class UnknownAgent(AgentError):
    status = 404
    code = "unknown_agent"


@dataclass(frozen=True)
class Profile:
    """What one agent (the default, or an expert) may do."""

    name: str
    system_prompt: str
    tools: tuple[str, ...] | None
    """Allowed tool names; None means every tool of the node."""
    model: str
    tool_choice: str


class Agent(Component):
    """The "agent" component: ``run(text, conversation_id, agent)`` yields AgentEvents."""

    name = "agent"

    def __init__(self, cfg: AgentConfig, tools: ToolRegistry,
                 llm: Callable[[], LLMClient | None], intents: Intents | None = None) -> None:
        self.cfg = cfg
        self.tools = tools
        self._llm = llm
        self.intents = intents
        self._fallback_language: Language | None = None
        self.memory = ConversationMemory(cfg.memory_messages)
        self.turns = 0

    def describe(self) -> dict[str, Any]:
        return {"agents": self.agent_names(), "tools": self.tools.names(),
                "conversations": len(self.memory), "turns": self.turns}

    def agent_names(self) -> list[str]:
        return [DEFAULT_AGENT, *sorted(self.cfg.experts)]

    def profile(self, agent: str | None) -> Profile:
        """The profile called ``agent`` (None: the default); UnknownAgent otherwise."""
        if agent is None or agent == DEFAULT_AGENT:
            return Profile(DEFAULT_AGENT, self.cfg.system_prompt, None, "default",
                           self.cfg.tool_choice)
        expert = self.cfg.experts.get(agent)
        if expert is None:
            raise UnknownAgent(f"no agent {agent[:64]!r}; configured: "
                               f"{', '.join(self.agent_names())}")
        return Profile(agent, expert.system_prompt or self.cfg.system_prompt,
                       tuple(expert.tools), expert.model, expert.tool_choice)

    async def complete(self, text: str) -> bool:
        """Whether ``text`` is a whole everyday request already (see Intents.complete)."""
        return self.intents is not None and await self.intents.complete(text)

    async def choose(self, readings: list[str]) -> str:
        """Of several readings of one utterance (best first), the first an everyday intent
        understands; the best one when none is (the LLM copes with a misheard word, an
        intent needs its sentence)."""
        if self.intents is None or len(readings) < 2:
            return readings[0]
        index = await self.intents.understood(readings)
        return readings[index or 0]

    async def run(self, text: str, conversation_id: str | None = None,
                  agent: str | None = None) -> AsyncIterator[AgentEvent]:
        """One turn; the last event is ``final`` or ``error``."""
        try:
            profile = self.profile(agent)
        except UnknownAgent as exc:
            yield failure(str(exc), exc.code)
            return
        if self.intents is not None:
            answer = await self.intents.answer(text, profile.tools, conversation_id)
            if answer is not None:
                self.turns += 1
                cid = conversation_id or uuid.uuid4().hex
                for event in intent_events(answer, cid, profile.name):
                    yield event
                self.memory.append(cid, [{"role": "user", "content": text},
                                         {"role": "assistant", "content": answer.text}])
                return
        llm = self._llm()
        if llm is None:
            yield failure("no language model is available on this node (llm.mode)",
                          "no_llm_available")
            return
        self.turns += 1
        cid = conversation_id or uuid.uuid4().hex
        user = {"role": "user", "content": text}
        messages: list[dict[str, Any]] = [{"role": "system", "content": profile.system_prompt},
                                          *self.memory.history(cid), user]
        specs = self.tools.specs(list(profile.tools) if profile.tools is not None else None)
        names = [spec["function"]["name"] for spec in specs]
        steps = 0
        first = True
        ran: dict[str, tuple[str, dict[str, Any]]] = {}  # call key -> (tool, observation)
        facts: list[tuple[str, dict[str, Any]]] = []  # checked tools' (name, observation)
        last: tuple[str, dict[str, Any]] | None = None  # the latest observation
        no_tools = False
        while True:
            offer = bool(specs) and steps < self.cfg.max_steps and not no_tools
            choice = _step_choice(profile.tool_choice, first) if offer else None
            request = ChatRequest(messages=list(messages), model=profile.model,
                                  max_tokens=self.cfg.max_tokens, temperature=TEMPERATURE,
                                  tools=specs if offer else None, tool_choice=choice,
                                  conversation_id=cid)
            first = False
            parts: list[str] = []
            calls: list[dict[str, Any]] | None = None
            finish: str | None = None
            served_by = ""
            # An answer checked against a tool's value, or one that may be a tool call
            # written as text, is held back until it is complete.
            check = bool(facts)
            held = False
            decided = False  # known not to be a tool call written as text
            try:
                stream = llm.stream(request)
                try:
                    async for chunk in stream:
                        if chunk.content:
                            parts.append(chunk.content)
                            if check or held:
                                pass
                            elif decided:
                                yield token(chunk.content)
                            elif "".join(parts).strip():
                                so_far = "".join(parts)
                                held = textcalls.may_be_call(so_far)
                                decided = not held
                                if decided:
                                    yield token(so_far)
                        if chunk.tool_calls:
                            calls = chunk.tool_calls
                        if chunk.finish_reason:
                            finish = chunk.finish_reason
                        served_by = chunk.served_by or served_by
                finally:
                    # A listener that went away cancels the model's sequence now, not at GC.
                    close = getattr(stream, "aclose", None)
                    if close is not None:
                        await close()
            except LLMError as exc:
                yield failure(f"the language model failed: {exc}", exc.code)
                return
            said = "".join(parts)
            if not calls and (held or check) and textcalls.may_be_call(said):
                written = textcalls.parse(said, names)
                if written is not None:
                    calls, said = written, ""
            if calls and offer:
                repeated = next((ran[_call_key(c)] for c in calls if _call_key(c) in ran), None)
                if repeated is not None:
                    # The model asks again for what it already has: answer from the result.
                    from_tool = self._from_observation(repeated)
                    if from_tool is None:
                        no_tools = True
                        continue
                    said, finish = from_tool, "repeated_tool_call"
                else:
                    if said.strip():
                        yield AgentEvent("thought", {"text": said})
                    messages.append({"role": "assistant", "content": said or None,
                                     "tool_calls": calls})
                    for call in calls:
                        over = steps >= self.cfg.max_steps
                        steps += 0 if over else 1
                        async for event in self._run_call(call, profile, messages, over):
                            if event.type == "tool_result" and not over:
                                observation = {k: v for k, v in event.data.items()
                                               if k in ("ok", "result", "error")}
                                last = (event.data["name"], observation)
                                ran[_call_key(call)] = last
                                if event.data["name"] in grounding.CHECKED_TOOLS \
                                        and observation.get("ok"):
                                    facts.append((event.data["name"], observation))
                            yield event
                    continue
            elif calls or textcalls.looks_like_json(said):
                # A call when none may be made, or JSON as the answer: never shown.
                said = (self._from_observation(last) if last is not None else None) \
                    or self._language().say("no_answer")
                finish = "tool_call_as_text"
            elif facts and not grounded(said, *facts[-1], self._language()):
                said = self._from_observation(facts[-1]) or said
                finish = "answer_from_tool"
            if held or check or finish in ("repeated_tool_call", "tool_call_as_text"):
                if said:
                    yield token(said)
            self.memory.append(cid, [user, {"role": "assistant", "content": said}])
            yield AgentEvent("final", {"text": said, "conversation_id": cid, "steps": steps,
                                       "finish_reason": finish, "served_by": served_by,
                                       "agent": profile.name})
            return

    def _language(self) -> Language:
        if self.intents is not None and self.intents.lang is not None:
            return self.intents.lang
        if self._fallback_language is None:
            self._fallback_language = load_language(DEFAULT_LANGUAGE)
        return self._fallback_language

    def _from_observation(self, found: tuple[str, dict[str, Any]]) -> str | None:
        return observations.describe(self._language(), *found)

    async def _run_call(self, call: dict[str, Any], profile: Profile,
                        messages: list[dict[str, Any]],
                        over_budget: bool) -> AsyncIterator[AgentEvent]:
        fn = call.get("function") or {}
        name = str(fn.get("name", ""))
        call_id = str(call.get("id") or uuid.uuid4().hex[:12])
        args = parse_arguments(fn.get("arguments", "{}"))
        tool = self.tools.get(name)
        where = tool.describe().get("where", "local") if tool is not None else None
        yield AgentEvent("tool_call", {"id": call_id, "name": name, "arguments": args,
                                       "where": where})
        if profile.tools is not None and name not in profile.tools:
            observation = error(f"tool {name!r} is not allowed for agent {profile.name!r}")
        elif over_budget:
            observation = error(f"not run: this turn's {self.cfg.max_steps} tool calls "
                                "(agent.max_steps) are used up")
        else:
            observation = await self.tools.invoke(name, args, self.cfg.tool_timeout_s)
        yield AgentEvent("tool_result", {"id": call_id, "name": name, **observation})
        content = json.dumps(observation, ensure_ascii=False, default=str)
        messages.append({"role": "tool", "tool_call_id": call_id, "name": name,
                         "content": content[:MAX_OBSERVATION_CHARS]})


def grounded(text: str, name: str, observation: dict[str, Any], lang: Language) -> bool:
    return grounding.grounded(text, name, observation, list(lang.words["weekdays"]))


def _call_key(call: dict[str, Any]) -> str:
    """The same tool with the same arguments has the same key."""
    fn = call.get("function") or {}
    args = parse_arguments(fn.get("arguments", "{}"))
    return f"{fn.get('name', '')}:{json.dumps(args, sort_keys=True, default=str)}"


def intent_events(answer: IntentAnswer, cid: str, agent: str) -> list[AgentEvent]:
    """An intent's turn as the events an LLM turn makes: its tool calls, the answer, final."""
    events: list[AgentEvent] = []
    for call in answer.calls:
        events.append(AgentEvent("tool_call", {"id": call.id, "name": call.name,
                                               "arguments": call.arguments,
                                               "where": call.where}))
        events.append(AgentEvent("tool_result", {"id": call.id, "name": call.name,
                                                 **call.observation}))
    if answer.text:
        events.append(token(answer.text))
    events.append(AgentEvent("final", {"text": answer.text, "conversation_id": cid,
                                       "steps": len(answer.calls), "finish_reason": "stop",
                                       "served_by": "intent", "agent": agent,
                                       "intent": answer.intent,
                                       "ends_conversation": answer.intent in ENDS_CONVERSATION}))
    return events


def _step_choice(tool_choice: str, first: bool) -> str:
    """The OpenAI tool_choice of one step, from the profile's auto/required/always."""
    if tool_choice == ALWAYS:
        return "required"
    return tool_choice if first else "auto"
