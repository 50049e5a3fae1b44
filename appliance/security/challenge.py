"""Challenge-response: a peer proves it holds the cluster key without revealing it.

The asker sends a fresh random nonce to ``POST /api/peers/challenge``; the
peer answers with its id and ``HMAC(k_challenge, nonce | id)``. Only a
holder of the same key computes the same proof. See docs/security.md for
what this does not cover (a relaying man in the middle on the LAN).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

import aiohttp

from appliance import jsonbounds
from appliance.security.errors import ChallengeError

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


async def challenge_peer(session: aiohttp.ClientSession, base_url: str, key: bytes,
                         timeout_s: float) -> dict[str, Any]:
    """Ask the peer at ``base_url`` to prove it holds ``key``; its self-description if it does.

    Raises ChallengeError when the peer cannot be reached, answers badly or
    fails the proof.
    """
    nonce = new_nonce()
    try:
        async with session.post(base_url + CHALLENGE_PATH, json={"nonce": nonce},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            raw = await resp.content.read(MAX_ANSWER_BYTES + 1)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise ChallengeError(f"challenge to {base_url} failed: {exc or type(exc).__name__}") \
            from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise ChallengeError(f"challenge answer from {base_url} is too large")
    if status != 200:
        raise ChallengeError(f"challenge to {base_url} answered HTTP {status}")
    try:
        answer = jsonbounds.loads(raw)
    except ValueError:
        raise ChallengeError(f"challenge answer from {base_url} is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
        raise ChallengeError(f"challenge answer from {base_url} lacks an id")
    if not check_proof(key, nonce, answer["id"], answer.get("proof", "")):
        raise ChallengeError(f"{base_url} could not prove it holds the cluster key")
    return answer
