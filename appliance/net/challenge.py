"""Asking a peer to prove it holds the cluster key (appliance.security.challenge's proof).

The question goes over the node link (the pooled HTTP/1.1 client); the answer
is bounded, parsed with jsonbounds, and must come from the node the TLS
certificate names.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

from appliance import jsonbounds
from appliance.net.http1 import Origin, Pool
from appliance.net.text import clean
from appliance.security.challenge import CHALLENGE_PATH, check_proof, new_nonce
from appliance.security.errors import ChallengeError, SecurityError

# The answer is a small JSON object; anything larger is refused unread.
MAX_ANSWER_BYTES = 16 * 1024


async def challenge_peer(pool: Pool, base_url: str, key: bytes, timeout_s: float,
                         expected_peer: str | None = None) -> dict[str, Any]:
    """Ask the peer at ``base_url`` to prove it holds ``key``; its self-description if it does.

    Over the node link (``https``) the TLS handshake already checked that the
    peer's certificate is endorsed by the cluster key (and is ``expected_peer``'s
    when given); the answer must then come from the node the certificate names.
    Raises ChallengeError when the peer cannot be reached, answers badly or
    fails the proof.
    """
    nonce = new_nonce()
    body = json.dumps({"nonce": nonce}).encode()
    try:
        origin = Origin.parse(base_url)
        async with asyncio.timeout(timeout_s):
            resp = await pool.request("POST", origin, CHALLENGE_PATH, body,
                                      {"Content-Type": "application/json"},
                                      connect_timeout_s=timeout_s, peer=expected_peer)
            try:
                raw = await resp.read(MAX_ANSWER_BYTES + 1)
            finally:
                resp.release()
    except (OSError, TimeoutError, ValueError, SecurityError) as exc:
        raise ChallengeError(f"challenge to {base_url} failed: "
                             f"{_reason(exc)}") from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise ChallengeError(f"challenge answer from {base_url} is too large")
    if resp.status != 200:
        raise ChallengeError(f"challenge to {base_url} answered HTTP {resp.status}")
    try:
        answer = jsonbounds.loads(raw)
    except ValueError:
        raise ChallengeError(f"challenge answer from {base_url} is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
        raise ChallengeError(f"challenge answer from {base_url} lacks an id")
    if resp.peer_id is not None and answer["id"] != resp.peer_id:
        raise ChallengeError(f"{base_url} answered as {clean(answer['id'], 40)!r} with the "
                             f"certificate of node {resp.peer_id}")
    if not check_proof(key, nonce, answer["id"], answer.get("proof", "")):
        raise ChallengeError(f"{base_url} could not prove it holds the cluster key")
    return answer


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not endorsed by this cluster's key ({exc.verify_message})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
