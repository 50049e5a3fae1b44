"""The WorldModel seam: keys -> JSON values with versions, local or remote.

A version is the store-wide sequence number of the write that produced the
entry, so versions only grow; ``0`` means "the key does not exist", which
makes ``expected_version=0`` a create-only write.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from appliance import jsonbounds
from appliance.errors import ApplianceError

MAX_KEY_CHARS = 128
_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True)
class Entry:
    """One key's value and the version that wrote it."""

    key: str
    value: Any
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "version": self.version}


@dataclass(frozen=True)
class Change:
    """One write as the change feed reports it: op is set or delete."""

    op: str
    key: str
    value: Any
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "key": self.key, "value": self.value, "version": self.version}


class WorldError(ApplianceError):
    """Base of every world-model failure; ``status`` is the HTTP status the API answers."""

    status = 500
    code = "world_error"


class InvalidKey(WorldError):
    status = 400
    code = "invalid_key"


class InvalidValue(WorldError):
    status = 400
    code = "invalid_value"


class ValueTooLarge(WorldError):
    status = 413
    code = "value_too_large"


class WorldFull(WorldError):
    """The disk is full: the write was not stored (nothing of it remains)."""

    status = 507
    code = "insufficient_storage"


class NotFound(WorldError):
    status = 404
    code = "not_found"


class VersionConflict(WorldError):
    """Compare-and-set lost: the key's version is not the expected one."""

    status = 412
    code = "version_conflict"

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"key {key!r} is at version {actual}, not the expected {expected}")
        self.key = key
        self.expected = expected
        self.actual = actual


class WorldUnavailable(WorldError):
    """The remote world model cannot be reached or refused us."""

    status = 503
    code = "world_unavailable"


class Subscription(Protocol):
    """An async iterator of changes; ``close()`` ends it."""

    def __aiter__(self) -> AsyncIterator[Change]: ...

    def close(self) -> None: ...


class WorldModel(Protocol):
    """Keys -> JSON values; local (journal on disk) and remote (a core) both implement it."""

    async def get(self, key: str) -> Entry | None: ...

    async def items(self) -> list[Entry]: ...

    async def set(self, key: str, value: Any, expected_version: int | None = None) -> Entry: ...

    async def delete(self, key: str, expected_version: int | None = None) -> int: ...

    def subscribe(self) -> Subscription: ...


def check_key(key: str) -> str:
    """``key`` if it is 1-128 of [A-Za-z0-9_.:-], else InvalidKey."""
    if not isinstance(key, str):
        raise InvalidKey("key must be a string")
    if not _KEY.fullmatch(key):
        raise InvalidKey(f"invalid key {key[:40]!r}: use 1-{MAX_KEY_CHARS} characters "
                         "of A-Z a-z 0-9 _ . : -")
    return key


def encode_value(value: Any, max_bytes: int) -> str:
    """The canonical JSON text of ``value``, or InvalidValue (not JSON, too deep) /
    ValueTooLarge."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"value is not JSON: {exc}") from None
    except RecursionError:
        text = "[" * (jsonbounds.MAX_DEPTH + 1)  # deeper than anything: refused below
    # What is stored must be served back: the listing serialises every value again.
    if jsonbounds.depth_exceeds(text):
        raise InvalidValue(f"value nests deeper than {jsonbounds.MAX_DEPTH} levels")
    if len(text.encode()) > max_bytes:
        raise ValueTooLarge(f"value is larger than {max_bytes} bytes")
    return text
