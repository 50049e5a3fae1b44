"""The "security" component: the node's cluster key, as used by the running daemon.

Other parts use it through ``node.get("security")``:

- ``.key``: the 32-byte cluster key, or None when the key file is missing or
  unreadable (the node then says so in its STATUS= line and refuses every
  non-loopback request to protected paths);
- ``.fingerprint``: the key's public fingerprint (the ``kf`` TXT record), or "";
- ``sign_headers(method, path_qs, body) -> dict[str, str]``: headers to add to
  an outgoing request to a peer (``path_qs`` is the exact raw path and query
  sent; ``body`` the exact bytes sent). Raises KeyFileError without a key.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from appliance.config import SecurityConfig
from appliance.logs import NOTICE
from appliance.node import Component
from appliance.security import keys
from appliance.security.errors import KeyFileError
from appliance.security.signing import Signer, Verifier

log = logging.getLogger(__name__)


class Security(Component):
    """Holds the cluster key; signs outgoing and verifies incoming requests."""

    name = "security"
    start_timeout_s = 5.0

    def __init__(self, cfg: SecurityConfig) -> None:
        self.cfg = cfg
        self.key_path = Path(cfg.cluster_key_file)
        self.key: bytes | None = None
        self.fingerprint = ""
        self.problem = ""
        self._signer: Signer | None = None
        self.verifier: Verifier | None = None
        # Loaded now, not in start(): the request guard (appliance.web.guard) is built
        # from the verifier at composition time.
        self._load()

    def sign_headers(self, method: str, path_qs: str, body: bytes = b"") -> dict[str, str]:
        """Signature headers for an outgoing request; KeyFileError when there is no key."""
        if self._signer is None:
            raise KeyFileError(self.problem or "no cluster key")
        return self._signer.sign_headers(method, path_qs, body)

    def describe(self) -> dict[str, Any]:
        return {"key_file": str(self.key_path), "has_key": self.key is not None,
                "fingerprint": self.fingerprint, "problem": self.problem}

    def status_fragment(self) -> str:
        if self.key is None:
            return f"NO CLUSTER KEY ({self.problem}); serving loopback only"
        return ""

    def _load(self) -> None:
        try:
            key = keys.read_key(self.key_path)
        except KeyFileError as exc:
            self.problem = str(exc)
            if not self.key_path.exists():
                # A box on its own: normal, said once per start and not as an error.
                log.log(NOTICE, "no cluster key (%s): this box works on its own and serves "
                                "only loopback; to let boxes use each other, run `sudo "
                                "hybrid-agent pair --init` on the first and `sudo hybrid-agent "
                                "join CODE` on the others", self.key_path)
            else:
                log.error("%s: this node serves only loopback until the key file is fixed "
                          "(hybrid-agent pair --init, or hybrid-agent join CODE)", exc)
            return
        self.key = key
        self.fingerprint = keys.fingerprint(key)
        self._signer = Signer(key)
        self.verifier = Verifier(key, replay_window_s=self.cfg.replay_window_s)
