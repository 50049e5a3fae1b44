"""Signing in from the LAN: a pairing code for a device token, and the box's own device list.

- ``POST /api/signin`` ``{"code": "ABCD-EFGH", "bearer"?: true}`` (open to
  anyone over HTTPS): exchanges a one-time code from ``hybrid-agent devices
  add`` for a device token, set as an ``HttpOnly; Secure; SameSite=Strict``
  cookie and, when ``bearer`` is asked for (scripts), returned in the answer.
  Wrong codes are limited to :data:`MAX_FAILURES_PER_MINUTE` (429 beyond).
- ``POST /api/signout``: forgets this device (its token stops working) and the cookie.
- ``GET /api/devices``, ``POST /api/devices`` ``{"name"}``, ``DELETE /api/devices/{id or
  name}``: the box's own user (loopback) lists, pairs and revokes devices; the
  answer to a pairing holds the code and the HTTPS certificate's fingerprint.
"""

from __future__ import annotations

import time
from collections import deque

from aiohttp import web

from appliance.security.devices import CODE_TTL_S, DeviceError, DeviceStore
from appliance.security.webcert import WebCert
from appliance.web.access import COOKIE, caller_of
from appliance.web.bodies import read_json
from appliance.web.errors import ApiError

MAX_FAILURES_PER_MINUTE = 10
#: Browsers keep a cookie at most 400 days; it is renewed on every page load.
COOKIE_MAX_AGE_S = 400 * 24 * 3600
MAX_SIGNIN_BYTES = 1024

DEVICES = web.AppKey("devices", DeviceStore)
WEB_CERT = web.AppKey("web_cert", WebCert)
FAILURES = web.AppKey("signin_failures", deque)


def setup(app: web.Application, devices: DeviceStore, web_cert: WebCert | None) -> None:
    app[DEVICES] = devices
    if web_cert is not None:
        app[WEB_CERT] = web_cert
    app[FAILURES] = deque()
    app.router.add_post("/api/signin", sign_in)
    app.router.add_post("/api/signout", sign_out)
    app.router.add_get("/api/devices", list_devices)
    app.router.add_post("/api/devices", pair_device)
    app.router.add_delete("/api/devices/{which}", revoke_device)


async def sign_in(request: web.Request) -> web.Response:
    """A pairing code -> a device token (cookie, and bearer on request)."""
    failures: deque[float] = request.app[FAILURES]
    now = time.monotonic()
    while failures and now - failures[0] > 60:
        failures.popleft()
    if len(failures) >= MAX_FAILURES_PER_MINUTE:
        raise ApiError(429, "too many wrong pairing codes; wait a minute", code="rate_limited",
                       headers={"Retry-After": "60"})
    if request.content_length is not None and request.content_length > MAX_SIGNIN_BYTES:
        raise ApiError(413, f"a sign-in is at most {MAX_SIGNIN_BYTES} bytes",
                       code="body_too_large")
    body = await read_json(request)
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str):
        raise ApiError(400, 'body must be {"code": "ABCD-EFGH"}', code="invalid_request",
                       param="code")
    try:
        device, token = request.app[DEVICES].redeem(code)
    except DeviceError as exc:
        failures.append(now)
        raise ApiError(403, str(exc), code="wrong_code", param="code") from None
    answer: dict[str, object] = {"device": device.summary()}
    if body.get("bearer") is True:
        answer["token"] = token
    resp = web.json_response(answer)
    _set_cookie(resp, token)
    return resp


async def sign_out(request: web.Request) -> web.Response:
    caller = caller_of(request)
    if caller.kind == "device":
        try:
            request.app[DEVICES].revoke(caller.id)
        except DeviceError:
            pass
    resp = web.json_response({"signed_out": caller.kind == "device"})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def list_devices(request: web.Request) -> web.Response:
    return web.json_response({"devices": [d.summary() for d in request.app[DEVICES].devices()]})


async def pair_device(request: web.Request) -> web.Response:
    body = await read_json(request)
    name = body.get("name") if isinstance(body, dict) else None
    try:
        code = request.app[DEVICES].add_pairing(str(name or ""))
    except DeviceError as exc:
        raise ApiError(400, str(exc), code="invalid_request", param="name") from None
    cert = request.app.get(WEB_CERT)
    return web.json_response({"code": code, "expires_s": CODE_TTL_S,
                              "https_fingerprint": cert.fingerprint if cert else None,
                              "spki": cert.spki if cert else None})


async def revoke_device(request: web.Request) -> web.Response:
    try:
        device = request.app[DEVICES].revoke(request.match_info["which"])
    except DeviceError as exc:
        raise ApiError(404, str(exc), code="not_found") from None
    return web.json_response({"revoked": device.summary()})


def renew_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Give a signed-in browser's cookie its full lifetime again."""
    if caller_of(request).kind == "device" and request.cookies.get(COOKIE):
        _set_cookie(response, request.cookies[COOKIE])


def _set_cookie(resp: web.StreamResponse, token: str) -> None:
    resp.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE_S, path="/", secure=True,
                    httponly=True, samesite="Strict")
