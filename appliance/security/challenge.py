"""Challenge-response: a peer proves it holds the cluster key without revealing it.

The asker sends a fresh random nonce to ``POST /api/peers/challenge``; the
peer answers with its id and ``HMAC(k_challenge, nonce | id)``. Only a
holder of the same key computes the same proof. See docs/security.md for
what this does not cover (a relaying man in the middle on the LAN).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import ssl
from typing import Any

from appliance import jsonbounds
from appliance.llm.http1 import Origin, Pool
from appliance.security.errors import ChallengeError, SecurityError

CHALLENGE_PATH = "/api/peers/challenge"
NONCE_BYTES = 32
# The answer is a small JSON object; anything larger is refused unread.
MAX_ANSWER_BYTES = 16 * 1024
_LABEL = b"hybrid-agent/challenge/v1"
NONCE_RE = re.compile(r"^[0-9a-f]{32,128}$")
_PROOF_RE = re.compile(r"^[0-9a-f]{64}$")


def new_nonce() -> str:
    """A fresh random challenge (hex)."""
    return secrets.token_hex(NONCE_BYTES)


def prove(key: bytes, nonce: str, responder_id: str) -> str:
    """The proof that whoever answers as ``responder_id`` holds ``key``."""
    k = hmac.new(key, _LABEL, hashlib.sha256).digest()
    return hmac.new(k, f"{nonce}\n{responder_id}".encode(), hashlib.sha256).hexdigest()


def check_proof(key: bytes, nonce: str, responder_id: str, proof: str) -> bool:
    """Whether ``proof`` answers ``nonce`` for ``responder_id`` under ``key``."""
    if not isinstance(proof, str) or not _PROOF_RE.fullmatch(proof):
        return False
    return hmac.compare_digest(prove(key, nonce, responder_id), proof)


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
        raise ChallengeError(f"{base_url} answered as {answer['id'][:40]!r} with the "
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
