"""The stable node id, created once in the state directory."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

NODE_ID_FILE = "node-id"
_VALID = re.compile(r"^[0-9a-f]{32}$")


def load_or_create_node_id(state_dir: Path) -> str:
    """Return the id stored in ``state_dir``, creating it (atomically) on first use."""
    path = state_dir / NODE_ID_FILE
    try:
        text = path.read_text().strip()
        if _VALID.fullmatch(text):
            return text
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    node_id = secrets.token_hex(16)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(node_id + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return node_id
