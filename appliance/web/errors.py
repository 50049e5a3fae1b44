"""JSON errors in one shape, OpenAI's: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.errors import ApplianceError

MAX_BODY = web.AppKey("max_body_bytes", int)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
          412: "precondition_failed", 413: "invalid_request_error",
          415: "invalid_request_error", 429: "rate_limit_error", 503: "service_unavailable"}


def json_error(status: int, message: str, *, code: str | None = None,
               param: str | None = None, headers: dict[str, str] | None = None,
               type_: str | None = None) -> web.Response:
    """A JSON error response; ``message`` says in words what was wrong."""
    body: dict[str, Any] = {"error": {
        "message": message,
        "type": type_ or _TYPES.get(status, "server_error" if status >= 500 else "error"),
        "param": param,
        "code": code,
    }}
    return web.json_response(body, status=status, headers=headers)


class ApiError(ApplianceError):
    """Raised by handlers; the error middleware turns it into :func:`json_error`."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers

    def response(self) -> web.Response:
        return json_error(self.status, self.message, code=self.code, param=self.param,
                          headers=self.headers)

