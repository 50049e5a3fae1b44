"""The cluster key: a 32-byte secret file, its public fingerprint and its join code.

Every node of one cluster holds the same key. The installer creates it on the
first node (:func:`create_key_file`); the other nodes take it as a short
typed code (:func:`join_code` on one side, :func:`key_from_code` and
:func:`write_key` on the other).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from appliance.security.errors import JoinCodeError, KeyFileError
from appliance.security.files import write_atomic

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_FILE_MODE = 0o600
FINGERPRINT_CHARS = 16
JOIN_PREFIX = "HA1"
JOIN_GROUP = 4
_CHECK_CHARS = 4
# Domain-separation labels: the same key feeds several independent derivations.
_FINGERPRINT_LABEL = b"hybrid-agent/fingerprint/v1"
_CHECK_LABEL = b"hybrid-agent/join-check/v1"


def generate_key() -> bytes:
    """32 fresh random bytes."""
    return secrets.token_bytes(KEY_BYTES)


def read_key(path: Path | str) -> bytes:
    """The key stored at ``path``; KeyFileError says what is wrong with the file.

    A key that others on the box may read is used, with a warning (``doctor`` fails it).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(KEY_BYTES + 1)
            problem = mode_problem(os.fstat(fh.fileno()).st_mode, path)
    except FileNotFoundError:
        raise KeyFileError(f"cluster key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read cluster key file {path}: {exc.strerror or exc}") from None
    if len(data) != KEY_BYTES:
        raise KeyFileError(f"cluster key file {path} must hold exactly {KEY_BYTES} bytes, "
                           f"found {len(data) if len(data) <= KEY_BYTES else 'more'}")
    if problem:
        log.warning("%s", problem)
    return data


def mode_problem(mode: int, path: Path | str) -> str | None:
    """Why a key file with ``mode`` is exposed (group or others may read it), or None."""
    if mode & 0o077:
        return (f"cluster key file {path} has mode {stat.S_IMODE(mode):04o}: other users of "
                f"the box may read it (chmod 600 {path})")
    return None


def write_key(path: Path | str, key: bytes) -> None:
    """Store ``key`` at ``path`` atomically with mode 0600 (replacing any file there)."""
    _check_key(key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, key, KEY_FILE_MODE)


def create_key_file(path: Path | str) -> bytes:
    """The key at ``path``, creating the file (0600, 32 random bytes) when there is none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        return read_key(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, KEY_FILE_MODE)
    return key


def fingerprint(key: bytes) -> str:
    """A short public id of ``key`` (16 hex chars); reveals nothing usable about the key."""
    _check_key(key)
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:FINGERPRINT_CHARS]


def join_code(key: bytes) -> str:
    """The key as a typeable code: ``HA1-XXXX-...`` (base32, grouped, with a checksum)."""
    _check_key(key)
    body = base64.b32encode(key).decode("ascii").rstrip("=")
    text = body + _checksum(key)
    groups = [text[i:i + JOIN_GROUP] for i in range(0, len(text), JOIN_GROUP)]
    return "-".join([JOIN_PREFIX, *groups])


def key_from_code(code: str) -> bytes:
    """The key a join code carries; JoinCodeError says what is wrong with the code."""
    if not isinstance(code, str) or len(code) > 200:
        raise JoinCodeError("a join code is a short text like HA1-ABCD-...")
    text = "".join(code.split()).replace("-", "").upper()
    if not text.startswith(JOIN_PREFIX):
        raise JoinCodeError(f"a join code starts with {JOIN_PREFIX}-")
    text = text[len(JOIN_PREFIX):]
    body_len = len(base64.b32encode(bytes(KEY_BYTES)).decode().rstrip("="))
    if len(text) != body_len + _CHECK_CHARS:
        raise JoinCodeError(f"a join code has {body_len + _CHECK_CHARS} characters after "
                            f"{JOIN_PREFIX}-, found {len(text)} (mistyped or cut?)")
    body, check = text[:body_len], text[body_len:]
    try:
        key = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise JoinCodeError("a join code uses only the letters A-Z and digits 2-7") from None
    if not hmac.compare_digest(_checksum(key), check):
        raise JoinCodeError("the join code's checksum does not match (a typo?)")
    return key


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise KeyFileError(f"a cluster key is exactly {KEY_BYTES} bytes")


def _checksum(key: bytes) -> str:
    digest = hashlib.sha256(_CHECK_LABEL + key).digest()
    return base64.b32encode(digest).decode("ascii")[:_CHECK_CHARS]
