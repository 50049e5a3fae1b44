"""The web UI: serves ``/`` and ``/static/`` from the package, and tells the page what exists.

No build step and no CDN: the files under ``appliance/web/static`` are what the
browser gets, so a box without internet shows the same page. ``/api/ui`` lists
which APIs this node mounted (chat, world, voice, peers, agents), so the page
never calls an endpoint that is not there.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.errors import ApplianceError
from appliance.web.access import caller_of
from appliance.web.app import NODE
from appliance.web.signin import renew_cookie

STATIC_DIR = Path(str(resources.files("appliance.web") / "static"))

# The page loads only its own files and talks only to its own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# The page is tiny and changes with each release; revalidate instead of going stale.
CACHE_CONTROL = "no-cache"

# Feature -> (method, path, component): the page enables a feature when the route is
# mounted and, if named, the component behind it runs on this node.
FEATURES: dict[str, tuple[str, str, str | None]] = {
    "chat": ("POST", "/api/chat", "agent"),
    "agents": ("GET", "/api/agents", None),
    "world": ("GET", "/api/world", "world"),
    "world_events": ("GET", "/api/world/events", "world"),
    "voice": ("GET", "/api/voice", "voice"),
    "peers": ("GET", "/api/peers", None),
}


class UiError(ApplianceError):
    """The UI's files are missing from the installed package."""


def setup(app: web.Application) -> None:
    """Mount ``/``, ``/static/`` and ``/api/ui``; ``/api/agents`` too unless the agent serves it.

    Call last: ``/api/ui`` reports the routes mounted when it is asked.
    """
    if not (STATIC_DIR / "index.html").is_file():
        raise UiError(f"the web UI's files are missing from {STATIC_DIR}")
    app.router.add_get("/", index)
    app.router.add_get("/api/ui", features)
    if not _has_route(app, "GET", "/api/agents"):
        app.router.add_get("/api/agents", agents)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False, append_version=False)
    app.on_response_prepare.append(_security_headers)


async def index(request: web.Request) -> web.FileResponse:
    """The single page."""
    return web.FileResponse(STATIC_DIR / "index.html")


async def features(request: web.Request) -> web.Response:
    """Which APIs this node serves, and who it is: the page's first request."""
    node = request.app[NODE]
    present = {name: _has_route(request.app, method, path)
               and (component is None or node.get(component) is not None)
               for name, (method, path, component) in FEATURES.items()}
    # Only the box itself and signed-in devices get this far (appliance.web.access).
    caller = caller_of(request)
    resp = web.json_response({"name": node.name, "tier": node.tier, "version": node.version,
                              "features": present, "blocked": {},
                              "caller": {"kind": caller.kind, "name": caller.name}})
    renew_cookie(request, resp)
    return resp


async def agents(request: web.Request) -> web.Response:
    """The default agent and the configured experts, from ``agent.experts``."""
    cfg = request.app[NODE].config.agent
    listed: list[dict[str, Any]] = [{"name": "default", "description": cfg.system_prompt}]
    for name, expert in sorted(cfg.experts.items()):
        listed.append({"name": name, "description": expert.system_prompt,
                       "tools": list(expert.tools), "model": expert.model})
    return web.json_response({"agents": listed})


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/" or request.path.startswith("/static/"):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", CACHE_CONTROL)


def _has_route(app: web.Application, method: str, path: str) -> bool:
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if info.get("path") == path and route.method in (method, "*"):
            return True
    return False
