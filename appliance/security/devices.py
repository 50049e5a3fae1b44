"""Paired devices: one-time pairing codes, long-lived device tokens (hashed at rest), revocation.

``sudo hybrid-agent devices add NAME`` (or the pairing button of a loopback
session) stores a short one-time code; a browser or a script on the LAN
exchanges it (``POST /api/signin``) for a device token, which it then sends as
a cookie or as ``Authorization: Bearer``. The store is one JSON file in the
state directory, mode 0600, written atomically under a lock by both the
daemon and the CLI; only SHA-256 digests of codes and tokens are kept, so the
file alone lets nobody in. The daemon re-reads it when it changes, so
``devices revoke`` takes effect within :data:`RELOAD_S`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appliance.security.errors import SecurityError
from appliance.security.files import own_like_parent, write_atomic

DEVICES_FILE = "devices.json"
LOCK_FILE = "devices.lock"
FILE_MODE = 0o600
#: Letters and digits that cannot be mistaken for one another.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_CHARS = 8
CODE_TTL_S = 600.0
#: Wrong codes tried (against any pending code) after which every pending code is void.
MAX_CODE_FAILURES = 20
MAX_DEVICES = 256
MAX_PENDING = 16
MAX_NAME_CHARS = 64
TOKEN_PREFIX = "had1_"
MAX_TOKEN_CHARS = 128
RELOAD_S = 1.0
MAX_FILE_BYTES = 4 * 1024 * 1024


class DeviceError(SecurityError):
    """A pairing code or device name that does not work; the message says why."""


@dataclass(frozen=True)
class Device:
    """A paired device."""

    id: str
    name: str
    created: float
    token_sha256: str

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created": round(self.created)}


class DeviceStore:
    """The devices file of one state directory."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = state_dir / DEVICES_FILE
        self._lock_path = state_dir / LOCK_FILE
        self._clock = clock
        self._by_token: dict[str, Device] = {}
        self._mtime = -1
        self._checked = -RELOAD_S

    # ------------------------------------------------------------ pairing

    def add_pairing(self, name: str, ttl_s: float = CODE_TTL_S) -> str:
        """A fresh one-time code for a device to be called ``name`` (shown once, stored hashed)."""
        name = check_name(name)
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_CHARS))
        with self._edit() as data:
            now = self._clock()
            pending = [p for p in data["pairings"] if p["expires"] > now]
            if len(pending) >= MAX_PENDING:
                raise DeviceError(f"{MAX_PENDING} pairing codes are already waiting; use one "
                                  "or wait until they expire")
            pending.append({"name": name, "code_sha256": _digest(code), "expires": now + ttl_s})
            data["pairings"] = pending
            data["failures"] = 0
        return f"{code[:4]}-{code[4:]}"

    def redeem(self, code: str) -> tuple[Device, str]:
        """The new device and its token for a valid pending ``code`` (which is used up)."""
        wanted = normalize_code(code)
        with self._edit() as data:
            now = self._clock()
            pending = [p for p in data["pairings"] if p["expires"] > now]
            match = next((p for p in pending if secrets.compare_digest(
                p["code_sha256"], _digest(wanted))), None) if wanted else None
            if match is None:
                data["failures"] = int(data.get("failures", 0)) + 1
                if data["failures"] >= MAX_CODE_FAILURES:
                    pending = []  # too many guesses: every waiting code is void
                data["pairings"] = pending
                raise DeviceError("that pairing code is wrong, used or expired; make a new one "
                                  "with `sudo hybrid-agent devices add NAME`")
            pending.remove(match)
            data["pairings"] = pending
            device, token = self._new_device(data, match["name"])
        return device, token

    def create(self, name: str) -> tuple[Device, str]:
        """A device and its token at once (for the box's own tools; people pair with a code)."""
        with self._edit() as data:
            return self._new_device(data, check_name(name))

    # ------------------------------------------------------------ devices

    def authenticate(self, token: str) -> Device | None:
        """The device ``token`` belongs to, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = _digest(token)
        self._refresh()
        device = self._by_token.get(digest)
        if device is None:  # paired a moment ago? (a stat, and a read only if it changed)
            self._refresh(force=True)
            device = self._by_token.get(digest)
        return device

    def devices(self) -> list[Device]:
        self._refresh(force=True)
        return sorted(self._by_token.values(), key=lambda d: (d.created, d.id))

    def revoke(self, which: str) -> Device:
        """Remove the device with id or name ``which``; DeviceError when there is none."""
        with self._edit() as data:
            found = [d for d in data["devices"] if which in (d["id"], d["name"])]
            if not found:
                raise DeviceError(f"no paired device is called {which[:64]!r} "
                                  "(see `hybrid-agent devices list`)")
            if len(found) > 1:
                raise DeviceError(f"{len(found)} devices are called {which[:64]!r}; "
                                  "revoke one by its id")
            data["devices"].remove(found[0])
        return Device(**found[0])

    # ------------------------------------------------------------ internals

    def _new_device(self, data: dict[str, Any], name: str) -> tuple[Device, str]:
        if len(data["devices"]) >= MAX_DEVICES:
            raise DeviceError(f"{MAX_DEVICES} devices are paired; revoke one first")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        device = Device(id=secrets.token_hex(8), name=name, created=self._clock(),
                        token_sha256=_digest(token))
        data["devices"].append(asdict(device))
        return device, token

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_S:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._by_token, self._mtime = {}, -1
            return
        if mtime != self._mtime:
            data = self._read()
            self._by_token = {d["token_sha256"]: Device(**d) for d in data["devices"]}
            self._mtime = mtime

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {"devices": [], "pairings": [], "failures": 0}
        if len(raw) > MAX_FILE_BYTES:
            raise DeviceError(f"{self.path} is larger than {MAX_FILE_BYTES} bytes")
        try:
            data = json.loads(raw)
            data["devices"] = [_device_fields(d) for d in data.get("devices", [])]
            data["pairings"] = list(data.get("pairings", []))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DeviceError(f"{self.path} is damaged ({exc}); move it aside and pair the "
                              "devices again") from None
        return dict(data)

    @contextmanager
    def _edit(self) -> Iterator[dict[str, Any]]:
        """The file's content under the lock, written back atomically when the block succeeds
        (a DeviceError raised inside still writes, so a wrong code counts)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        own_like_parent(self._lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._read()
            try:
                yield data
            except DeviceError:
                self._write(data)
                raise
            self._write(data)
        finally:
            os.close(fd)
        self._refresh(force=True)

    def _write(self, data: dict[str, Any]) -> None:
        write_atomic(self.path, json.dumps(data, indent=1).encode(), FILE_MODE)


def check_name(name: str) -> str:
    """A device name: 1-64 printable characters."""
    text = "".join(ch for ch in str(name) if ch.isprintable()).strip()
    if not text or len(text) > MAX_NAME_CHARS:
        raise DeviceError(f"a device name is 1 to {MAX_NAME_CHARS} printable characters")
    return text


def normalize_code(code: str) -> str:
    """A typed code without spaces and dashes, upper case; '' when it cannot be one."""
    text = "".join(str(code).split()).replace("-", "").upper()
    if len(text) != CODE_CHARS or any(ch not in CODE_ALPHABET for ch in text):
        return ""
    return text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _device_fields(d: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(d["id"]), "name": str(d["name"]), "created": float(d["created"]),
            "token_sha256": str(d["token_sha256"])}
