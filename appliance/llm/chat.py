"""The seam between the LLM and its users: request and chunk types, the LLMClient interface.

The in-process engine and a remote OpenAI-compatible core both implement
:class:`LLMClient`; the router picks one per request. Messages, tools and
tool calls use OpenAI's JSON shapes so they pass through the HTTP API as-is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from appliance.errors import ApplianceError


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request (OpenAI's fields, already validated)."""

    messages: list[dict[str, Any]]
    model: str = "default"
    max_tokens: int | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    conversation_id: str | None = None
    """Keeps a conversation on one core while it stays healthy (warm prompt cache)."""
    parallel_tool_calls: bool = False
    """The model may answer with several tool calls at once (a JSON array). Off for
    in-process callers (the agent runs calls one step at a time, which keeps small
    models from repeating a call); the API's default is OpenAI's, on."""
    logprobs: bool = False
    """Report each generated token's log probability."""
    top_logprobs: int = 0
    """And this many most likely alternatives per token (0-20)."""
    prompt: str | None = None
    """A raw prompt (POST /v1/completions): no chat template, ``messages`` unused."""


@dataclass(frozen=True)
class ChatChunk:
    """One streamed piece of an answer."""

    content: str = ""
    """Text delta."""
    tool_calls: list[dict[str, Any]] | None = None
    """Complete tool calls in OpenAI's format, on the final chunk of a tool-call answer."""
    finish_reason: str | None = None
    """stop, length or tool_calls on the last chunk; None before."""
    usage: dict[str, Any] | None = None
    """prompt_tokens, completion_tokens, total_tokens and prompt_tokens_details
    (cached_tokens) on the last chunk."""
    logprobs: list[dict[str, Any]] | None = None
    """With ChatRequest.logprobs: one entry per token of this chunk, OpenAI's shape
    (token, logprob, bytes, top_logprobs)."""
    served_by: str = ""
    """"local" or the name of the peer that generated this chunk."""
    extra: dict[str, Any] = field(default_factory=dict)


class LLMClient(Protocol):
    """Something that answers chat requests: the local engine or a remote core."""

    name: str

    def model_ids(self) -> list[str]:
        """The model ids this client serves."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Stream the answer; raises an :class:`LLMError` subclass on failure."""
        ...


class EmbeddingClient(Protocol):
    """Something that turns texts into vectors: the local model or a remote core."""

    name: str

    async def embed(self, texts: list[str], model: str) -> tuple[list[list[float]], int]:
        """One unit-length vector per text, and the prompt tokens used."""
        ...


class LLMError(ApplianceError):
    """Base of every LLM failure; ``status`` is the HTTP status the API answers with.

    ``param`` names the request field at fault, when one is (OpenAI's error ``param``).
    """

    status = 500
    code = "llm_error"

    def __init__(self, message: str = "", *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class NoLLMAvailable(LLMError):
    """No local model and no healthy trusted core."""

    status = 503
    code = "no_llm_available"


class LLMBusy(LLMError):
    """All slots and the wait queue are full; retry after ``retry_after_s``."""

    status = 503
    code = "busy"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s



class PromptTooLong(LLMError):
    """The prompt does not fit the context."""

    status = 400
    code = "context_length_exceeded"


class UnknownModel(LLMError):
    """The request names a model nobody serves."""

    status = 404
    code = "model_not_found"


class InvalidRequest(LLMError):
    """A request field is wrong; the message names it."""

    status = 400
    code = "invalid_request"


class StreamInterrupted(LLMError):
    """A remote stream failed after its first token; the answer is incomplete."""

    status = 502
    code = "stream_interrupted"
    reported = False
    """True when the peer's own error event already went to the client (a relayed stream)."""
