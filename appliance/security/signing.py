"""HMAC request tokens between nodes: sign outgoing requests, verify incoming ones.

A token covers the method, the raw path with query, a SHA-256 of the body, a
timestamp and a random nonce. It travels in three headers
(:data:`TIMESTAMP_HEADER`, :data:`NONCE_HEADER`, :data:`SIGNATURE_HEADER`);
:class:`Verifier` accepts it once, within the replay window.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from appliance.security.errors import SignatureError

TIMESTAMP_HEADER = "X-HA-Timestamp"
NONCE_HEADER = "X-HA-Nonce"
SIGNATURE_HEADER = "X-HA-Signature"
SIGNED_HEADERS = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
DEFAULT_REPLAY_WINDOW_S = 60.0
# Bounds memory under a flood of validly signed requests; beyond it new ones are refused.
MAX_REMEMBERED_NONCES = 100_000
NONCE_BYTES = 16
_SIGNING_LABEL = b"hybrid-agent/request-signing/v1"
_NONCE_RE = re.compile(r"^[0-9a-f]{16,64}$")
_SIG_RE = re.compile(r"^[0-9a-f]{64}$")
_TS_RE = re.compile(r"^[0-9]{1,16}$")
MAX_PATH_CHARS = 8192


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of a request body."""
    return hashlib.sha256(body).hexdigest()


def canonical(method: str, path_qs: str, timestamp_ms: int, nonce: str, digest: str) -> bytes:
    """The bytes a token signs."""
    return "\n".join(("v1", method.upper(), path_qs, str(timestamp_ms), nonce, digest)).encode()


def derive_signing_key(key: bytes) -> bytes:
    """The per-purpose key used for request tokens (never the raw cluster key)."""
    return hmac.new(key, _SIGNING_LABEL, hashlib.sha256).digest()


class Signer:
    """Makes the headers that authenticate one outgoing request."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = derive_signing_key(key)
        self._clock = clock

    def sign_headers(self, method: str, path_qs: str, body: bytes = b"") -> dict[str, str]:
        """Headers for a request of ``method`` to ``path_qs`` (the exact raw path and query)."""
        ts = int(self._clock() * 1000)
        nonce = secrets.token_hex(NONCE_BYTES)
        msg = canonical(method, path_qs, ts, nonce, body_digest(body))
        sig = hmac.new(self._key, msg, hashlib.sha256).hexdigest()
        return {TIMESTAMP_HEADER: str(ts), NONCE_HEADER: nonce, SIGNATURE_HEADER: sig}


class Verifier:
    """Checks incoming tokens: right key, fresh, and each nonce accepted only once."""

    def __init__(self, key: bytes, *, replay_window_s: float = DEFAULT_REPLAY_WINDOW_S,
                 max_nonces: int = MAX_REMEMBERED_NONCES,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = derive_signing_key(key)
        self.replay_window_s = replay_window_s
        self._max_nonces = max_nonces
        self._clock = clock
        # nonce -> expiry; insertion order is expiry order because the window is fixed.
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_headers(self, path_qs: str, headers: Mapping[str, str]) -> None:
        """What can be checked before the body is read: the headers are there, well formed
        and fresh. SignatureError naming the problem otherwise."""
        ts_text = headers.get(TIMESTAMP_HEADER)
        nonce = headers.get(NONCE_HEADER)
        sig = headers.get(SIGNATURE_HEADER)
        if not ts_text or not nonce or not sig:
            missing = ", ".join(h for h in SIGNED_HEADERS if not headers.get(h))
            raise SignatureError(f"request is not signed with the cluster key (missing {missing})")
        if not _TS_RE.fullmatch(ts_text) or not _NONCE_RE.fullmatch(nonce) \
                or not _SIG_RE.fullmatch(sig):
            raise SignatureError("malformed signature headers")
        if len(path_qs) > MAX_PATH_CHARS:
            raise SignatureError("request path too long to verify")
        if abs(self._clock() - int(ts_text) / 1000.0) > self.replay_window_s:
            raise SignatureError(f"signature timestamp is outside the {self.replay_window_s:.0f} s "
                                 "window (clocks out of sync, or a replay)")

    def verify(self, method: str, path_qs: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Return when the token is valid; raise SignatureError naming the problem otherwise."""
        self.check_headers(path_qs, headers)
        ts_text, nonce, sig = (headers[h] for h in SIGNED_HEADERS)
        now = self._clock()
        msg = canonical(method, path_qs, int(ts_text), nonce, body_digest(body))
        expected = hmac.new(self._key, msg, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise SignatureError("wrong signature (a different cluster key, or an altered request)")
        self._remember(nonce, now)

    def _remember(self, nonce: str, now: float) -> None:
        seen = self._seen
        while seen:
            oldest, expiry = next(iter(seen.items()))
            if expiry > now:
                break
            del seen[oldest]
        if nonce in seen:
            raise SignatureError("replayed request (this nonce was already used)")
        if len(seen) >= self._max_nonces:
            raise SignatureError("too many signed requests in the replay window; retry later")
        # Twice the window: a token stamped up to one window in the future stays unique.
        seen[nonce] = now + 2 * self.replay_window_s
