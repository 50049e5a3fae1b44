"""Challenge-response: a peer proves it holds the cluster key without revealing it.

The asker sends a fresh random nonce to ``POST /api/peers/challenge``; the
peer answers with its id and ``HMAC(k_challenge, nonce | id)``. Only a
holder of the same key computes the same proof. This module is the proof;
asking a peer over the network is appliance.net.challenge. See docs/security.md for
what this does not cover (a relaying man in the middle on the LAN).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

CHALLENGE_PATH = "/api/peers/challenge"
NONCE_BYTES = 32
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
