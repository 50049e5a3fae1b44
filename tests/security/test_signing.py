"""HMAC request tokens: a request signed for one node passes there once; unsigned, wrong,
stale, replayed, made for another node, made before a restart or stripped of If-Match fail."""

from __future__ import annotations

import pytest

from appliance.security.errors import SignatureError
from appliance.security.keys import generate_key
from appliance.security.signing import (
    NONCE_HEADER,
    RECEIVER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Signer,
    Verifier,
)

NODE_A = "a" * 32
NODE_B = "b" * 32


class Clock:
    """A hand-set clock (seconds)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def key():
    return generate_key()


@pytest.fixture
def clock():
    return Clock()


def verifier(key, clock, node=NODE_A, **kw):
    return Verifier(key, node, clock=clock, **kw)


def sign(key, clock, method="GET", path="/v1/models", body=b"", to=NODE_A, headers=None):
    return Signer(key, clock=clock).sign_headers(method, path, body, receiver=to,
                                                 headers=headers)


def test_a_signed_request_verifies_once_then_is_a_replay(key, clock):
    v = verifier(key, clock)
    headers = sign(key, clock, "POST", "/v1/chat/completions", b'{"a":1}')
    v.verify("POST", "/v1/chat/completions", b'{"a":1}', headers)
    with pytest.raises(SignatureError, match="replayed"):
        v.verify("POST", "/v1/chat/completions", b'{"a":1}', headers)


def test_unsigned_request_names_the_missing_headers(key, clock):
    with pytest.raises(SignatureError, match="not signed"):
        verifier(key, clock).verify("GET", "/v1/models", b"", {})


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/v1/chat/completions", b'{"a":1}'),
    ("POST", "/v1/chat/completions?x=1", b'{"a":1}'),
    ("POST", "/v1/chat/completions", b'{"a":2}'),
])
def test_any_change_to_method_path_or_body_breaks_the_signature(key, clock, method, path, body):
    v = verifier(key, clock)
    headers = sign(key, clock, "POST", "/v1/chat/completions", b'{"a":1}')
    with pytest.raises(SignatureError, match="wrong signature"):
        v.verify(method, path, body, headers)


def test_a_different_cluster_key_is_refused(key, clock):
    v = verifier(key, clock)
    with pytest.raises(SignatureError, match="wrong signature"):
        v.verify("GET", "/v1/models", b"", sign(generate_key(), clock))


def test_a_request_signed_for_another_node_is_refused_there(key, clock):
    at_b = verifier(key, clock, NODE_B)
    headers = sign(key, clock, to=NODE_A)
    with pytest.raises(SignatureError, match=f"signed for node '{NODE_A}'"):
        at_b.verify("GET", "/v1/models", b"", headers)
    # Dropping the clear-text receiver does not help: the signature covers it.
    del headers[RECEIVER_HEADER]
    with pytest.raises(SignatureError, match="wrong signature"):
        at_b.verify("GET", "/v1/models", b"", headers)
    verifier(key, clock, NODE_A).verify("GET", "/v1/models", b"", headers)


def test_if_match_is_covered_so_a_compare_and_set_cannot_be_replayed_without_it(key, clock):
    v = verifier(key, clock)
    cas = sign(key, clock, "PUT", "/api/world/door", b'"open"', headers={"If-Match": "4"})
    with pytest.raises(SignatureError, match="wrong signature"):
        v.verify("PUT", "/api/world/door", b'"open"', cas)  # If-Match stripped
    with pytest.raises(SignatureError, match="wrong signature"):
        v.verify("PUT", "/api/world/door", b'"open"', {**cas, "If-Match": "5"})
    v.verify("PUT", "/api/world/door", b'"open"', {**cas, "If-Match": "4"})


def test_a_request_made_before_the_receiver_restarted_is_refused_after_it(key, clock):
    captured = sign(key, clock)
    clock.t += 7  # the node restarts: its nonce memory is gone, the window is not over
    restarted = verifier(key, clock)
    with pytest.raises(SignatureError, match="before this node"):
        restarted.verify("GET", "/v1/models", b"", captured)
    restarted.verify("GET", "/v1/models", b"", sign(key, clock))


def test_tokens_outside_the_replay_window_are_refused(key, clock):
    v = verifier(key, clock, replay_window_s=60)
    headers = sign(key, clock)
    clock.t += 61
    with pytest.raises(SignatureError, match="window"):
        v.verify("GET", "/v1/models", b"", headers)


def test_nonces_are_forgotten_only_after_they_could_no_longer_verify(key, clock):
    v = verifier(key, clock, replay_window_s=60)
    first = sign(key, clock)
    v.verify("GET", "/v1/models", b"", first)
    clock.t += 59
    with pytest.raises(SignatureError, match="replayed"):
        v.verify("GET", "/v1/models", b"", first)


def test_the_nonce_memory_is_bounded(key, clock):
    v = verifier(key, clock, max_nonces=3)
    for _ in range(3):
        v.verify("GET", "/v1/models", b"", sign(key, clock))
    with pytest.raises(SignatureError, match="too many"):
        v.verify("GET", "/v1/models", b"", sign(key, clock))


@pytest.mark.parametrize("header, value", [(TIMESTAMP_HEADER, "soon"), (NONCE_HEADER, "x" * 500),
                                           (SIGNATURE_HEADER, "zz")])
def test_malformed_headers_are_refused_before_any_hashing(key, clock, header, value):
    v = verifier(key, clock)
    headers = sign(key, clock)
    headers[header] = value
    with pytest.raises(SignatureError, match="malformed"):
        v.verify("GET", "/v1/models", b"", headers)
