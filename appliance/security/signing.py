"""HMAC request tokens between nodes: sign outgoing requests, verify incoming ones.

A token covers the method, the raw path with query, the **receiving node's
id**, the conditional headers (``If-Match``, ``If-None-Match``), a SHA-256 of
the body, a timestamp and a random nonce. It travels in three headers
(:data:`TIMESTAMP_HEADER`, :data:`NONCE_HEADER`, :data:`SIGNATURE_HEADER`;
:data:`RECEIVER_HEADER` repeats the receiver in clear, for the error message
only). :class:`Verifier` accepts it once, within the replay window, at the
node it names, and only when it was made after the verifying process started:
a request captured before a restart is refused after it, although the nonce
memory did not survive.
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
RECEIVER_HEADER = "X-HA-To"
SIGNED_HEADERS = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
#: Request headers the signature covers besides the method, path and body.
CONDITIONAL_HEADERS = ("If-Match", "If-None-Match")
DEFAULT_REPLAY_WINDOW_S = 60.0
# Bounds memory under a flood of validly signed requests; beyond it new ones are refused.
MAX_REMEMBERED_NONCES = 100_000
NONCE_BYTES = 16
_SIGNING_LABEL = b"hybrid-agent/request-signing/v2"
_NONCE_RE = re.compile(r"[0-9a-f]{16,64}")
_SIG_RE = re.compile(r"[0-9a-f]{64}")
_TS_RE = re.compile(r"[0-9]{1,16}")
MAX_PATH_CHARS = 8192
MAX_CONDITION_CHARS = 256


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of a request body."""
    return hashlib.sha256(body).hexdigest()


def conditions(headers: Mapping[str, str] | None) -> str:
    """The conditional headers of a request, as the signature covers them."""
    headers = headers or {}
    return "\n".join(f"{name.lower()}:{headers.get(name, '')}" for name in CONDITIONAL_HEADERS)


def canonical(method: str, path_qs: str, receiver: str, timestamp_ms: int, nonce: str,
              digest: str, conds: str) -> bytes:
    """The bytes a token signs."""
    return "\n".join(("v2", method.upper(), path_qs, receiver, str(timestamp_ms), nonce,
                      digest, conds)).encode()


def derive_signing_key(key: bytes) -> bytes:
    """The per-purpose key used for request tokens (never the raw cluster key)."""
    return hmac.new(key, _SIGNING_LABEL, hashlib.sha256).digest()


class Signer:
    """Makes the headers that authenticate one outgoing request."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = derive_signing_key(key)
        self._clock = clock

    def sign_headers(self, method: str, path_qs: str, body: bytes = b"", *, receiver: str,
                     headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Headers for a request of ``method`` to ``path_qs`` (the exact raw path and query)
        at node ``receiver``; ``headers`` are the request's own (its conditional ones count)."""
        ts = int(self._clock() * 1000)
        nonce = secrets.token_hex(NONCE_BYTES)
        msg = canonical(method, path_qs, receiver, ts, nonce, body_digest(body),
                        conditions(headers))
        sig = hmac.new(self._key, msg, hashlib.sha256).hexdigest()
        return {TIMESTAMP_HEADER: str(ts), NONCE_HEADER: nonce, SIGNATURE_HEADER: sig,
                RECEIVER_HEADER: receiver}


class Verifier:
    """Checks incoming tokens: right key, this node, fresh, and each nonce accepted once."""

    def __init__(self, key: bytes, node_id: str, *,
                 replay_window_s: float = DEFAULT_REPLAY_WINDOW_S,
                 max_nonces: int = MAX_REMEMBERED_NONCES,
                 clock: Callable[[], float] = time.time,
                 started_at: float | None = None) -> None:
        self._key = derive_signing_key(key)
        self.node_id = node_id
        self.replay_window_s = replay_window_s
        self._max_nonces = max_nonces
        self._clock = clock
        #: Tokens made before this are refused: the nonces seen before it are forgotten.
        self.started_at = clock() if started_at is None else started_at
        # nonce -> expiry; insertion order is expiry order because the window is fixed.
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_headers(self, path_qs: str, headers: Mapping[str, str]) -> None:
        """What can be checked before the body is read: the headers are there, well formed,
        fresh, and for this node. SignatureError naming the problem otherwise."""
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
        ts = int(ts_text) / 1000.0
        if abs(self._clock() - ts) > self.replay_window_s:
            raise SignatureError(f"signature timestamp is outside the {self.replay_window_s:.0f} s "
                                 "window (clocks out of sync, or a replay)")
        if ts < self.started_at:
            raise SignatureError("signed before this node (re)started: a replay, or a sender "
                                 "whose clock is behind")
        receiver = headers.get(RECEIVER_HEADER)
        if receiver is not None and receiver != self.node_id:
            raise SignatureError(f"signed for node {receiver[:40]!r}, not for this node "
                                 f"({self.node_id})")

    def verify(self, method: str, path_qs: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Return when the token is valid; raise SignatureError naming the problem otherwise."""
        self.check_headers(path_qs, headers)
        ts_text, nonce, sig = (headers[h] for h in SIGNED_HEADERS)
        if any(len(headers.get(h, "")) > MAX_CONDITION_CHARS for h in CONDITIONAL_HEADERS):
            raise SignatureError("a conditional header is too long to verify")
        now = self._clock()
        msg = canonical(method, path_qs, self.node_id, int(ts_text), nonce, body_digest(body),
                        conditions(headers))
        expected = hmac.new(self._key, msg, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise SignatureError("wrong signature (another node's request, a different cluster "
                                 "key, or an altered request)")
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
