"""The exception tree of appliance.security: catch SecurityError for all of them."""

from __future__ import annotations

from appliance.errors import ApplianceError


class SecurityError(ApplianceError):
    """Base of every security error; the message says what was wrong in words."""


class KeyFileError(SecurityError):
    """The cluster key file is missing, unreadable or malformed."""


class JoinCodeError(SecurityError):
    """A join code is malformed or its checksum does not match."""


class SignatureError(SecurityError):
    """A request's signature is missing, wrong, stale or replayed."""


class ChallengeError(SecurityError):
    """A peer failed to prove it holds the cluster key."""
