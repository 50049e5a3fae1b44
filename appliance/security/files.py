"""Writing the security files: atomically, with an exact mode, owned like their directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically (fsynced, then renamed) with exactly ``mode``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it further; make it exact
        own_like_parent(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def own_like_parent(*paths: Path) -> None:
    """Files root makes (the installer, the CLI under sudo) belong to whoever owns their
    directory (the service user), so the daemon can still read and replace them."""
    if os.geteuid() != 0:
        return
    for path in paths:
        st = path.parent.stat()
        os.chown(path, st.st_uid, st.st_gid)
