"""HTTP API of discovery and trust: ``GET /api/peers`` and ``POST /api/peers/challenge``.

``GET /api/peers`` lists the registry; ``?role=R[&model=M]`` lists instead
what ``registry.select(R, M)`` would pick, best first.
``POST /api/peers/challenge`` with ``{"nonce": "<hex>"}`` answers this
node's TXT fields plus ``proof`` (appliance.security.challenge), ``ready`` and
``revoked`` (the digest of its revocation list).
``GET /api/cluster/revocations`` is that list (a CRL signed with the cluster key).
Both are for other nodes only (appliance.web.access).
"""

from __future__ import annotations

from aiohttp import web

from appliance.discovery.component import Discovery
from appliance.discovery.txt import local_txt
from appliance.security.challenge import CHALLENGE_PATH, NONCE_RE, prove
from appliance.security.cluster import Security
from appliance.web.bodies import read_json, set_body_limit
from appliance.web.errors import ApiError

MAX_CHALLENGE_BYTES = 1024
REVOCATIONS_PATH = "/api/cluster/revocations"
MAX_QUERY_CHARS = 64

DISCOVERY = web.AppKey("discovery", Discovery)
SECURITY = web.AppKey("security", Security)


def setup(app: web.Application, discovery: Discovery, security: Security) -> None:
    """Add the routes to ``app``."""
    app[DISCOVERY] = discovery
    app[SECURITY] = security
    app.router.add_get("/api/peers", peers)
    app.router.add_post(CHALLENGE_PATH, challenge)
    app.router.add_get(REVOCATIONS_PATH, revocations)
    set_body_limit(app, "POST", CHALLENGE_PATH, MAX_CHALLENGE_BYTES)


async def peers(request: web.Request) -> web.Response:
    """The registry, or the selection for ``?role=`` (and ``&model=``)."""
    discovery = request.app[DISCOVERY]
    role = request.query.get("role")
    model = request.query.get("model")
    for name, value in (("role", role), ("model", model)):
        if value is not None and (not value or len(value) > MAX_QUERY_CHARS):
            raise ApiError(400, f"query parameter {name!r} must be 1-{MAX_QUERY_CHARS} "
                                "characters", code="invalid_query", param=name)
    if role is None:
        if model is not None:
            raise ApiError(400, "'model' needs a 'role' too", code="invalid_query", param="model")
        return web.json_response({"peers": discovery.peer_summaries()})
    chosen = discovery.registry.select(role, model)
    return web.json_response({"role": role, "model": model,
                              "peers": [p.summary() for p in chosen]})


async def challenge(request: web.Request) -> web.Response:
    """Prove this node holds the cluster key for the caller's nonce."""
    security = request.app[SECURITY]
    body = await read_json(request)
    nonce = body.get("nonce") if isinstance(body, dict) else None
    if not isinstance(nonce, str) or not NONCE_RE.fullmatch(nonce):
        raise ApiError(400, "'nonce' must be 32-128 lowercase hex characters",
                       code="invalid_nonce", param="nonce")
    if security.key is None:
        raise ApiError(503, "this node has no cluster key", code="no_cluster_key")
    node = request.app[DISCOVERY].node
    answer: dict[str, object] = {**local_txt(node, security.fingerprint, exclude=1),
                                 "name": node.name,
                                 "ready": node.ready and not node.stopping,
                                 "proof": prove(security.key, nonce, node.node_id)}
    if security.node_tls is not None:
        answer["revoked"] = security.node_tls.revocations.digest
    return web.json_response(answer)


async def revocations(request: web.Request) -> web.Response:
    """This node's revocation list, for a peer whose list differs."""
    tls = request.app[SECURITY].node_tls
    if tls is None:
        raise ApiError(503, "this node has no cluster key", code="no_cluster_key")
    return web.Response(body=tls.revocations.pem, content_type="application/x-pem-file")
