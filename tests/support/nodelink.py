"""Talking to daemons the way their peers and their people do: a node certificate endorsed by
the cluster key, a paired device's token, the box's HTTPS certificate pinned."""

from __future__ import annotations

import hashlib
import secrets
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from appliance.net.http1 import Origin, Pool
from appliance.security import certs
from appliance.security.devices import DeviceStore
from appliance.security.nodetls import NodeTLS
from appliance.security.webcert import WEB_CERT_FILE


def node_tls(directory: Path, key: bytes, node_id: str | None = None) -> NodeTLS:
    """A node identity under ``directory`` (a fresh id unless given) for ``key``'s cluster."""
    return NodeTLS.load(directory, node_id or secrets.token_hex(16), key)


async def tls_site(runner: web.AppRunner, tls: NodeTLS, port: int) -> web.TCPSite:
    """Serve ``runner`` on loopback over the node link of ``tls``."""
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.server_context())
    await site.start()
    return site


def device_token(state_dir: Path, name: str = "tests") -> str:
    """A paired device's token for the daemon whose state is in ``state_dir``."""
    return DeviceStore(state_dir).create(name)[1]


def web_pin(state_dir: Path) -> aiohttp.Fingerprint:
    """The daemon's HTTPS certificate, pinned (as its printed fingerprint lets people do)."""
    cert = certs.load_cert((state_dir / "tls" / WEB_CERT_FILE).read_bytes())
    return aiohttp.Fingerprint(hashlib.sha256(cert.public_bytes(
        certs.serialization.Encoding.DER)).digest())


def spki_pin(state_dir: Path) -> str:
    return certs.spki_pin(certs.load_cert((state_dir / "tls" / WEB_CERT_FILE).read_bytes()))


def device_session(state_dir: Path, name: str = "tests", **kw: Any) -> aiohttp.ClientSession:
    """An aiohttp session of a paired device: bearer token, the box's certificate pinned."""
    headers = {"Authorization": f"Bearer {device_token(state_dir, name)}"}
    return aiohttp.ClientSession(headers=headers,
                                 connector=aiohttp.TCPConnector(ssl=web_pin(state_dir)), **kw)


async def node_request(tls: NodeTLS, url: str, method: str, path: str, body: bytes | None = None,
                       headers: dict[str, str] | None = None, peer: str | None = None
                       ) -> tuple[int, bytes]:
    """One request over a fresh node link; (status, body)."""
    pool = Pool(node_tls=lambda: tls)
    try:
        resp = await pool.request(method, Origin.parse(url), path, body, headers or {},
                                  connect_timeout_s=5.0, peer=peer)
        try:
            return resp.status, await resp.read(1024 * 1024)
        finally:
            resp.release()
    finally:
        await pool.close()


def no_verify() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
