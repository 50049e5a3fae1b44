"""The "security" component: the cluster key, this node's TLS identity and the box's HTTPS
certificate, as used by the running daemon.

Other parts use it through ``node.get("security")``:

- ``.key``: the 32-byte cluster key, or None when the key file is missing or
  unreadable (the node then says so in its STATUS= line, serves the LAN to
  signed-in devices only and trusts no peer);
- ``.fingerprint``: the key's public fingerprint (the ``kf`` TXT record), or "";
- ``.node_tls``: a :class:`~appliance.security.nodetls.NodeTLS` (contexts and the
  verification hook for links between nodes), or None without a key;
- ``.web``: the :class:`~appliance.security.webcert.WebCert` browsers are shown, or None;
- ``sign_headers(method, path_qs, body, receiver=..., headers=...) -> dict``: headers
  for an outgoing request to node ``receiver`` (``path_qs`` the exact raw path and
  query, ``body`` the exact bytes, ``headers`` the request's own). KeyFileError
  without a key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance.config import HttpConfig, SecurityConfig
from appliance.logs import NOTICE
from appliance.node import Component
from appliance.security import keys
from appliance.security.certs import CertError
from appliance.security.errors import KeyFileError
from appliance.security.nodetls import NodeTLS
from appliance.security.signing import Signer, Verifier
from appliance.security.webcert import WebCert, load_web_cert
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

TLS_DIR = "tls"
#: How often the revocation file is checked for changes made by `hybrid-agent cluster revoke`.
REVOCATIONS_CHECK_S = 2.0


class Security(Component):
    """Holds the keys; signs outgoing and verifies incoming requests."""

    name = "security"
    start_timeout_s = 5.0

    def __init__(self, cfg: SecurityConfig, *, node_id: str = "", state_dir: Path | None = None,
                 http: HttpConfig | None = None) -> None:
        self.cfg = cfg
        self.node_id = node_id
        self.key_path = Path(cfg.cluster_key_file)
        self.tls_dir = (state_dir or Path(".")) / TLS_DIR
        self.key: bytes | None = None
        self.fingerprint = ""
        self.problem = ""
        self.tls_problem = ""
        self.node_tls: NodeTLS | None = None
        self.web: WebCert | None = None
        self._signer: Signer | None = None
        self.verifier: Verifier | None = None
        self._task: asyncio.Task[None] | None = None
        # Loaded now, not in start(): the request guard (appliance.web.guard, built from the
        # verifier) and the listener are built before it.
        self._load()
        if state_dir is not None:
            self._load_tls(http or HttpConfig())

    async def start(self) -> None:
        if self.node_tls is not None:
            self._task = asyncio.get_running_loop().create_task(self._watch_revocations(),
                                                                name="revocations")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])

    def sign_headers(self, method: str, path_qs: str, body: bytes = b"", *, receiver: str,
                     headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Signature headers for an outgoing request; KeyFileError when there is no key."""
        if self._signer is None:
            raise KeyFileError(self.problem or "no cluster key")
        return self._signer.sign_headers(method, path_qs, body, receiver=receiver,
                                         headers=headers)

    @property
    def revoked(self) -> bool:
        """Whether this node itself is on the cluster's revocation list."""
        return self.node_tls is not None and self.node_tls.revoked(self.node_id)

    def describe(self) -> dict[str, Any]:
        # No file paths: /api/status goes to signed-in devices and peers too.
        tls = self.node_tls
        return {"has_key": self.key is not None, "fingerprint": self.fingerprint,
                "problem": _without_paths(self.problem or self.tls_problem),
                "https_fingerprint": self.web.fingerprint if self.web else None,
                "revoked_nodes": len(tls.revocations.node_ids) if tls else 0,
                "this_node_revoked": self.revoked}

    def status_fragment(self) -> str:
        if self.key is None:
            return (f"NO CLUSTER KEY ({_without_paths(self.problem)}); no peers, the LAN gets "
                    "signed-in devices only")
        if self.revoked:
            return "THIS NODE IS REVOKED from the cluster; no peer will talk to it"
        return f"TLS: {self.tls_problem}" if self.tls_problem else ""

    def _load(self) -> None:
        try:
            key = keys.read_key(self.key_path)
        except KeyFileError as exc:
            self.problem = str(exc)
            if not self.key_path.exists():
                # A box on its own: normal, said once per start and not as an error.
                log.log(NOTICE, "no cluster key (%s): this box works on its own (for its own "
                                "user and paired devices) and trusts no peer; to let boxes use "
                                "each other, run `sudo hybrid-agent pair --init` on the first "
                                "and `sudo hybrid-agent join CODE` on the others", self.key_path)
            else:
                log.error("%s: this node trusts no peer until the key file is fixed "
                          "(hybrid-agent pair --init, or hybrid-agent join CODE)", exc)
            return
        self.key = key
        self.fingerprint = keys.fingerprint(key)
        self._signer = Signer(key)
        self.verifier = Verifier(key, self.node_id, replay_window_s=self.cfg.replay_window_s)

    def _load_tls(self, http: HttpConfig) -> None:
        try:
            self.web = load_web_cert(self.tls_dir, http.tls_cert, http.tls_key)
        except (CertError, OSError) as exc:
            self.tls_problem = f"no HTTPS for browsers: {exc}"
            log.error("%s", self.tls_problem)
        if self.key is None:
            return
        try:
            self.node_tls = NodeTLS.load(self.tls_dir, self.node_id, self.key)
        except (CertError, OSError, ValueError) as exc:
            self.tls_problem = f"no TLS between nodes: {exc}"
            log.error("%s", self.tls_problem)

    async def _watch_revocations(self) -> None:
        assert self.node_tls is not None
        while True:
            await asyncio.sleep(REVOCATIONS_CHECK_S)
            self.node_tls.reload_if_changed()


def _without_paths(text: str) -> str:
    """``text`` with each absolute path cut to its file name (where the box keeps its key is
    nobody else's business)."""
    return " ".join(".../" + Path(word).name if word.startswith("/") else word
                    for word in text.split())
