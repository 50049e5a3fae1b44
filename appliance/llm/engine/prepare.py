"""A ChatRequest -> a Prepared one: validated, constrained, templated and tokenized.

Runs in a worker thread (templating and tokenizing long prompts take time).
"""

from __future__ import annotations

import json
import random
from typing import Any

from appliance.llm import grammar
from appliance.llm.chat import ChatRequest, InvalidRequest, PromptTooLong
from appliance.llm.engine.model import Model
from appliance.llm.engine.sequence import Prepared
from appliance.llm.engine.settings import EngineSettings

MAX_STOP_STRINGS = 4
MAX_STOP_BYTES = 256
MAX_TOP_LOGPROBS = 20


def prepare(model: Model, settings: EngineSettings, request: ChatRequest) -> Prepared:
    """Validate, constrain, template and tokenize ``request`` (blocking)."""
    constraint: grammar.Constraint | None = None
    if request.prompt is not None:
        text = request.prompt
        size = len(text.encode())
    else:
        messages = plain_messages(request.messages)
        if request.tools:
            constraint = grammar.for_tools(request.tools, request.tool_choice,
                                           parallel=request.parallel_tool_calls)
            if constraint is not None:
                messages = with_system(messages, grammar.tools_prompt(
                    request.tools, constraint.mode == "tools", constraint.parallel))
        elif request.tool_choice not in (None, "none", "auto"):
            raise InvalidRequest("tool_choice needs tools: the request lists none",
                                 param="tool_choice")
        size = sum(len(str(m.get("content") or "").encode()) for m in messages)
        text = ""
    if constraint is None:
        constraint = grammar.for_response_format(request.response_format)
    if size > settings.max_prompt_bytes:
        raise PromptTooLong(f"the prompt is {size} bytes; at most "
                            f"{settings.max_prompt_bytes} are accepted")
    stops = check_stops(request.stop)
    if request.prompt is None:
        try:
            text = model.formatter(messages=messages).prompt
        except Exception as exc:  # jinja raises many types for malformed messages
            raise InvalidRequest(f"messages cannot be rendered by the model's chat "
                                 f"template: {exc}", param="messages") from None
    tokens = model.tokenize(text)
    if not tokens:
        raise InvalidRequest("the prompt is empty", param="prompt")
    if len(tokens) >= model.n_ctx:
        raise PromptTooLong(f"the prompt is {len(tokens)} tokens; the context holds "
                            f"{model.n_ctx} (llm.context), including the answer")
    if request.max_tokens is not None and request.max_tokens < 1:
        raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")
    max_tokens = request.max_tokens or settings.max_tokens
    logprobs = -1
    if request.logprobs:
        top = request.top_logprobs or 0
        if not 0 <= top <= MAX_TOP_LOGPROBS:
            raise InvalidRequest(f"top_logprobs must be 0-{MAX_TOP_LOGPROBS}",
                                 param="top_logprobs")
        logprobs = top
    elif request.top_logprobs:
        raise InvalidRequest("top_logprobs needs logprobs: true", param="top_logprobs")
    seed = request.seed if request.seed is not None else random.getrandbits(32)
    return Prepared(tokens=tokens, max_tokens=max_tokens, stops=stops,
                    temperature=request.temperature, top_p=request.top_p, seed=seed,
                    constraint=constraint, logprobs=logprobs)


def check_stops(stop: tuple[str, ...]) -> tuple[str, ...]:
    if len(stop) > MAX_STOP_STRINGS:
        raise InvalidRequest(f"stop has {len(stop)} strings; at most {MAX_STOP_STRINGS}",
                             param="stop")
    for s in stop:
        if not s or len(s.encode()) > MAX_STOP_BYTES:
            raise InvalidRequest(f"each stop string must be 1-{MAX_STOP_BYTES} bytes",
                                 param="stop")
    return stop


def plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages the GGUF template can render: text content, tool calls written as JSON.

    A content part that is not text (an image, audio) is refused: the model takes text
    only, and dropping the part silently would answer a question nobody asked.
    """
    out = []
    for i, m in enumerate(messages):
        content = m.get("content")
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                kind = part.get("type", "text") if isinstance(part, dict) else None
                if kind != "text" or not isinstance(part.get("text", ""), str):
                    what = f"a {kind!r} part" if isinstance(kind, str) else "a part"
                    raise InvalidRequest(
                        f"messages[{i}].content[{j}] is {what}; this model takes text only "
                        "(no images or audio)", param=f"messages[{i}].content[{j}]")
                texts.append(part.get("text", ""))
            content = "".join(texts)
        if m.get("tool_calls"):
            calls = [{"name": c.get("function", {}).get("name"),
                      "arguments": _json_or_text(c.get("function", {}).get("arguments"))}
                     for c in m["tool_calls"] if isinstance(c, dict)]
            content = (content or "") + json.dumps(calls[0] if len(calls) == 1 else calls)
        out.append({"role": m.get("role", "user"), "content": content or ""})
    return out


def with_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{text}"
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
