"""HMAC request tokens: signed requests pass once; unsigned, wrong, stale or replayed fail."""

from __future__ import annotations

import pytest

from appliance.security.errors import SignatureError
from appliance.security.keys import generate_key
from appliance.security.signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Signer,
    Verifier,
)


class Clock:
    """A hand-set clock (seconds)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def key():
    return generate_key()


def test_a_signed_request_verifies_once_then_is_a_replay(key):
    headers = Signer(key).sign_headers("POST", "/v1/chat/completions", b'{"a":1}')
    v = Verifier(key)
    v.verify("POST", "/v1/chat/completions", b'{"a":1}', headers)
    with pytest.raises(SignatureError, match="replayed"):
        v.verify("POST", "/v1/chat/completions", b'{"a":1}', headers)


def test_unsigned_request_names_the_missing_headers(key):
    with pytest.raises(SignatureError, match="not signed"):
        Verifier(key).verify("GET", "/v1/models", b"", {})


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/v1/chat/completions", b'{"a":1}'),
    ("POST", "/v1/chat/completions?x=1", b'{"a":1}'),
    ("POST", "/v1/chat/completions", b'{"a":2}'),
])
def test_any_change_to_method_path_or_body_breaks_the_signature(key, method, path, body):
    headers = Signer(key).sign_headers("POST", "/v1/chat/completions", b'{"a":1}')
    with pytest.raises(SignatureError, match="wrong signature"):
        Verifier(key).verify(method, path, body, headers)


def test_a_different_cluster_key_is_refused(key):
    headers = Signer(generate_key()).sign_headers("GET", "/v1/models")
    with pytest.raises(SignatureError, match="wrong signature"):
        Verifier(key).verify("GET", "/v1/models", b"", headers)


def test_tokens_outside_the_replay_window_are_refused(key):
    clock = Clock()
    headers = Signer(key, clock=clock).sign_headers("GET", "/v1/models")
    clock.t += 61
    with pytest.raises(SignatureError, match="window"):
        Verifier(key, replay_window_s=60, clock=clock).verify("GET", "/v1/models", b"", headers)


def test_nonces_are_forgotten_only_after_they_could_no_longer_verify(key):
    clock = Clock()
    signer, v = Signer(key, clock=clock), Verifier(key, replay_window_s=60, clock=clock)
    first = signer.sign_headers("GET", "/v1/models")
    v.verify("GET", "/v1/models", b"", first)
    clock.t += 59
    with pytest.raises(SignatureError, match="replayed"):
        v.verify("GET", "/v1/models", b"", first)


def test_the_nonce_memory_is_bounded(key):
    v = Verifier(key, max_nonces=3)
    signer = Signer(key)
    for _ in range(3):
        v.verify("GET", "/v1/models", b"", signer.sign_headers("GET", "/v1/models"))
    with pytest.raises(SignatureError, match="too many"):
        v.verify("GET", "/v1/models", b"", signer.sign_headers("GET", "/v1/models"))


@pytest.mark.parametrize("header, value", [(TIMESTAMP_HEADER, "soon"), (NONCE_HEADER, "x" * 500),
                                           (SIGNATURE_HEADER, "zz")])
def test_malformed_headers_are_refused_before_any_hashing(key, header, value):
    headers = Signer(key).sign_headers("GET", "/v1/models")
    headers[header] = value
    with pytest.raises(SignatureError, match="malformed"):
        Verifier(key).verify("GET", "/v1/models", b"", headers)
