"""Tools over HTTP: the tool server's routes.

- ``GET /api/tools`` -> ``{"tools": [...the agent's tools...], "served": [...]}``,
  each with name, description, JSON-schema parameters and where it runs
- ``POST /api/tools/{name}`` body ``{"arguments": {...}}`` -> ``{"ok": true, "result"}``
  or ``{"ok": false, "error"}`` (a tool failure is a 200 with ok false, like an
  observation); 400 for arguments that do not match the schema, 401 unsigned
  (even from loopback), 404 for a tool this node does not serve.
"""

from __future__ import annotations

from aiohttp import web

from appliance import jsonbounds
from appliance.tools.base import validate
from appliance.tools.server import ToolServer, Unauthorized
from appliance.web.app import NODE
from appliance.web.bodies import read_body, set_body_limit
from appliance.web.errors import ApiError

MAX_CALL_BYTES = 1024 * 1024
AUTH_SCHEME = 'HA-HMAC realm="hybrid-agent"'


def setup(app: web.Application) -> None:
    app.router.add_get("/api/tools", list_tools)
    app.router.add_post("/api/tools/{name}", call_tool)
    set_body_limit(app, "POST", "/api/tools/{name}", MAX_CALL_BYTES)


async def list_tools(request: web.Request) -> web.Response:
    server = _server(request)
    return web.json_response({"tools": server.agent_tools.describe(),
                              "served": server.served.describe()})


async def call_tool(request: web.Request) -> web.Response:
    server = _server(request)
    body = await read_body(request)  # at most MAX_CALL_BYTES (or what the LAN guard read)
    try:
        server.verify(request.method, request.raw_path, body, request.headers)
    except Unauthorized as exc:
        raise ApiError(401, f"the tool server accepts signed requests only: {exc}",
                       code="unauthorized", headers={"WWW-Authenticate": AUTH_SCHEME}) from None
    name = request.match_info["name"]
    tool = server.served.get(name)
    if tool is None:
        raise ApiError(404, f"this node serves no tool {name[:64]!r}; it serves: "
                            f"{', '.join(server.served.names()) or 'none'}", code="unknown_tool")
    try:
        payload = jsonbounds.loads(body) if body else {}
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("arguments", {}), dict):
        raise ApiError(400, 'body must be {"arguments": {...}}', code="invalid_request",
                       param="arguments")
    args = payload.get("arguments", {})
    problem = validate(tool, args)
    if problem is not None:
        raise ApiError(400, f"invalid arguments for {name}: {problem}", code="invalid_arguments",
                       param="arguments")
    return web.json_response(await server.serve(name, args))


def _server(request: web.Request) -> ToolServer:
    server = request.app[NODE].get("tools")
    if server is None:
        raise ApiError(503, "tools are off on this node", code="tools_off")
    return server

