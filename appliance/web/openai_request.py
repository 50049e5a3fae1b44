"""The OpenAI request bodies -> validated requests, or a 400 that names the field.

Chat completions, legacy completions and embeddings. Where OpenAI's API has a
field this server cannot honour (image parts, ``suffix``, ``best_of``), the answer
is a clear 400, never a silent drop. Unknown fields are ignored, as OpenAI does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from appliance.llm.chat import ChatRequest
from appliance.web.errors import ApiError

ROLES = ("system", "user", "assistant", "tool", "developer")
MAX_MESSAGES = 1000
MAX_STOP = 4
MAX_CONVERSATION_ID = 128
MAX_N = 8
MAX_TOP_LOGPROBS = 20
MAX_PROMPTS = 16
MAX_EMBED_INPUTS = 256
# OpenAI's legacy completions default; chat uses the node's llm.max_tokens.
COMPLETIONS_MAX_TOKENS = 16


@dataclass(frozen=True)
class Generation:
    """A validated generation request: the ChatRequest of each choice, and how to answer."""

    requests: list[ChatRequest]
    """One per choice (n per prompt), in choice-index order."""
    stream: bool
    include_usage: bool
    n: int = 1
    """Choices per prompt."""
    echo: list[str] | None = None
    """Completions with echo: the prompt of each choice, sent before its text."""


def parse_chat(body: Any, headers: Any = None) -> Generation:
    """POST /v1/chat/completions."""
    _object(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"messages has {len(messages)} entries; at most {MAX_MESSAGES}", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise _bad(f"messages[{i}] must be an object with role one of {ROLES}",
                       f"messages[{i}]")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _bad(f"messages[{i}].content must be a string or a list of parts",
                       f"messages[{i}].content")
        if isinstance(content, list):
            _check_parts(content, i)
    tools = _typed(body, "tools", list, None)
    tool_choice = body.get("tool_choice")
    _check_tool_choice(tools, tool_choice)
    logprobs = bool(_typed(body, "logprobs", bool, False))
    top = _typed(body, "top_logprobs", int, 0)
    if not 0 <= top <= MAX_TOP_LOGPROBS:
        raise _bad(f"top_logprobs must be 0-{MAX_TOP_LOGPROBS}", "top_logprobs")
    if top and not logprobs:
        raise _bad("top_logprobs needs logprobs: true", "top_logprobs")
    conversation = _typed(body, "conversation_id", str, None) or (
        headers.get("X-Conversation-Id") if headers is not None else None)
    if conversation is not None and len(conversation) > MAX_CONVERSATION_ID:
        raise _bad(f"conversation_id is longer than {MAX_CONVERSATION_ID} characters",
                   "conversation_id")
    base = ChatRequest(
        messages=messages, **_sampling(body, None), tools=tools or None,
        tool_choice=tool_choice, response_format=_typed(body, "response_format", dict, None),
        conversation_id=conversation,
        parallel_tool_calls=bool(_typed(body, "parallel_tool_calls", bool, True)),
        logprobs=logprobs, top_logprobs=top)
    stream, include_usage = _streaming(body)
    n = _n(body)
    return Generation(_choices(base, n), stream, include_usage, n)


def parse_completion(body: Any) -> Generation:
    """POST /v1/completions (legacy): a prompt string, or a list of them."""
    _object(body)
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or \
            not all(isinstance(p, str) for p in prompts):
        raise _bad("prompt must be a string or a non-empty list of strings (token-id "
                   "prompts are not supported)", "prompt")
    if len(prompts) > MAX_PROMPTS:
        raise _bad(f"prompt has {len(prompts)} entries; at most {MAX_PROMPTS}", "prompt")
    if body.get("suffix"):
        raise _bad("suffix (fill-in-the-middle) is not supported", "suffix")
    n = _n(body)
    best_of = _typed(body, "best_of", int, n)
    if best_of != n:
        raise _bad("best_of other than n is not supported", "best_of")
    top = _typed(body, "logprobs", int, None)
    if top is not None and not 0 <= top <= MAX_TOP_LOGPROBS:
        raise _bad(f"logprobs must be 0-{MAX_TOP_LOGPROBS}", "logprobs")
    echo = bool(_typed(body, "echo", bool, False))
    stream, include_usage = _streaming(body)
    requests = []
    for p in prompts:
        base = ChatRequest(messages=[], prompt=p, **_sampling(body, COMPLETIONS_MAX_TOKENS),
                           logprobs=top is not None, top_logprobs=top or 0)
        requests += _choices(base, n)
    return Generation(requests, stream, include_usage, n,
                      [r.prompt or "" for r in requests] if echo else None)


def parse_embeddings(body: Any) -> tuple[list[str], str, str]:
    """POST /v1/embeddings -> (texts, model, encoding_format)."""
    _object(body)
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise _bad("input must be a string or a non-empty list of strings (token-id inputs "
                   "are not supported)", "input")
    if len(texts) > MAX_EMBED_INPUTS:
        raise _bad(f"input has {len(texts)} entries; at most {MAX_EMBED_INPUTS}", "input")
    if any(not t for t in texts):
        raise _bad("input must not contain empty strings", "input")
    fmt = _typed(body, "encoding_format", str, "float")
    if fmt not in ("float", "base64"):
        raise _bad("encoding_format must be float or base64", "encoding_format")
    if body.get("dimensions") is not None:
        raise _bad("dimensions is not supported: the model's vectors have a fixed size",
                   "dimensions")
    return texts, _typed(body, "model", str, "default") or "default", fmt


# ---------------------------------------------------------------- helpers


def _sampling(body: dict[str, Any], default_max: int | None) -> dict[str, Any]:
    """model, max_tokens, temperature, top_p, seed, stop: the fields both APIs share."""
    # max_completion_tokens is the newer name; when both come, it wins (as at OpenAI).
    max_tokens = _typed(body, "max_tokens", int, default_max)
    max_tokens = _typed(body, "max_completion_tokens", int, max_tokens)
    if max_tokens is not None and max_tokens < 1:
        which = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        raise _bad(f"{which} must be at least 1", which)
    temperature = float(_typed(body, "temperature", (int, float), 1.0))
    if not 0.0 <= temperature <= 2.0:
        raise _bad("temperature must be between 0 and 2", "temperature")
    top_p = float(_typed(body, "top_p", (int, float), 1.0))
    if not 0.0 < top_p <= 1.0:
        raise _bad("top_p must be in (0, 1]", "top_p")
    stop = body.get("stop")
    stops: tuple[str, ...]
    if stop is None:
        stops = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) \
            and len(stop) <= MAX_STOP:
        stops = tuple(stop)
    else:
        raise _bad(f"stop must be a string or a list of at most {MAX_STOP} strings", "stop")
    return {"model": _typed(body, "model", str, "default") or "default",
            "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
            "seed": _typed(body, "seed", int, None), "stop": stops}


def _choices(base: ChatRequest, n: int) -> list[ChatRequest]:
    """n requests; with a seed, choice i samples with seed + i so the choices differ."""
    if n == 1:
        return [base]
    return [replace(base, seed=None if base.seed is None else base.seed + i) for i in range(n)]


def _n(body: dict[str, Any]) -> int:
    n = _typed(body, "n", int, 1)
    if not 1 <= n <= MAX_N:
        raise _bad(f"n must be 1-{MAX_N}", "n")
    return int(n)


def _streaming(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = bool(_typed(body, "stream", bool, False))
    options = _typed(body, "stream_options", dict, None) or {}
    return stream, bool(options.get("include_usage"))


def _check_parts(parts: list[Any], i: int) -> None:
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        what = f"a {kind!r} part" if isinstance(kind, str) else "not a text part"
        raise _bad(f"messages[{i}].content[{j}] is {what}; this model takes text only "
                   "(no images, audio or files)", f"messages[{i}].content[{j}]")


def _check_tool_choice(tools: list[Any] | None, choice: Any) -> None:
    if choice is None:
        return
    if not isinstance(choice, str | dict):
        raise _bad("tool_choice must be a string or an object", "tool_choice")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise _bad("tool_choice must be none, auto, required or a function",
                       "tool_choice")
        if choice == "required" and not tools:
            raise _bad("tool_choice is required but the request lists no tools",
                       "tool_choice")
        return
    fn = choice.get("function") if choice.get("type") == "function" else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise _bad("tool_choice must be {'type': 'function', 'function': {'name': ...}}",
                   "tool_choice")
    names = [t.get("function", {}).get("name") for t in tools or [] if isinstance(t, dict)]
    if name not in names:
        raise _bad(f"tool_choice names the function {name[:64]!r}, which is not in tools",
                   "tool_choice.function.name")


def _object(body: Any) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_request")


def _bad(message: str, param: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_request")


def _typed(body: dict[str, Any], key: str, kind: Any, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise _bad(f"{key} has the wrong type", key)
    return value
