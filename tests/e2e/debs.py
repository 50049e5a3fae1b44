"""A local Debian package repository holding bubblewrap, for a container with no network.

The installer installs bubblewrap with apt-get on tiers that serve the shell and
python tools. The e2e containers have a private network, so apt-get there gets
the real package from a flat repository on a read-only bind: the .deb is
downloaded once per machine (``apt-get download``) into the test cache, next to
a ``Packages`` index made from its control fields.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.container import CACHE

DEBS = CACHE / "debs"
PACKAGE = "bubblewrap"
APT_TIMEOUT_S = 600
# The sources line for a container that sees DEBS at ``inside``.
SOURCE = "deb [trusted=yes] file:{inside} ./"


def ensure_local_repo(root: Path = DEBS) -> Path:
    """The repository directory: the .deb (fetched the first time) and its Packages index."""
    root.mkdir(parents=True, exist_ok=True)
    if not list(root.glob(f"{PACKAGE}_*.deb")):
        # Into a temp dir first: a download cut short never sits in the cache.
        with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
            download = ["apt-get", "download", PACKAGE]
            done = subprocess.run(download, cwd=tmp, capture_output=True, text=True,
                                  timeout=APT_TIMEOUT_S, check=False)
            if done.returncode != 0:  # no package lists on this box yet
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True,
                               timeout=APT_TIMEOUT_S, check=False)
                done = subprocess.run(download, cwd=tmp, capture_output=True, text=True,
                                      timeout=APT_TIMEOUT_S, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"apt-get download {PACKAGE} failed: {done.stderr[-1000:]}")
            for deb in Path(tmp).glob("*.deb"):
                os.replace(deb, root / deb.name)
    entries = []
    for deb in sorted(root.glob("*.deb")):
        fields = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True,
                                text=True, check=True, timeout=60).stdout.strip()
        data = deb.read_bytes()
        entries.append(f"{fields}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    staged = root / f".Packages.{os.getpid()}"
    staged.write_text("\n".join(entries))
    os.replace(staged, root / "Packages")  # whole, even with another run reading it
    return root
