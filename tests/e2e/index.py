"""The test wheelhouse served as a PEP 503 simple index on a container's loopback.

It stands in for PyPI on the online install path (no ``--wheelhouse``): pip
and the installer's network check find it through ``PIP_INDEX_URL``, and the
container has no other network.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.conftest import WHEELHOUSE_INSIDE, wait_until
from tests.e2e.container import Container

PORT = 8099
ROOT_INSIDE = "/srv/index"
URL = f"http://127.0.0.1:{PORT}/simple/"
UNIT = "e2e-index"
START_TIMEOUT_S = 30
# Prefix for an install.sh command line that takes the online path through this index.
ENV = f"PIP_INDEX_URL={URL}"
# The systemd invocation of each box's index (serve() may run more than once in a box).
_invocations: dict[str, str] = {}


def serve(box: Container, wheelhouse: Path) -> None:
    """/simple/<project>/ as directory pages (python3 -m http.server) of the handed-in wheels."""
    for f in wheelhouse.iterdir():
        if f.name.endswith(".whl"):
            project = f.name.split("-")[0]
        elif f.name.endswith(".tar.gz"):
            project = f.name.removesuffix(".tar.gz").rsplit("-", 1)[0]
        else:
            continue
        d = box.root_path(f"{ROOT_INSIDE}/simple/{re.sub(r'[-_.]+', '-', project).lower()}")
        d.mkdir(parents=True, exist_ok=True)
        if not (d / f.name).is_symlink():  # served before in this box
            (d / f.name).symlink_to(f"{WHEELHOUSE_INSIDE}/{f.name}")
    box.sh(f"systemd-run --unit={UNIT} python3 -m http.server {PORT} --bind 127.0.0.1 "
           f"--directory {ROOT_INSIDE}", check=True)
    wait_until(lambda: box.sh(f"curl -fsS -o /dev/null {URL}setuptools/").rc == 0,
               START_TIMEOUT_S, "the index answers")
    _invocations[box.name] = box.sh(f"systemctl show -P InvocationID {UNIT}",
                                    check=True).out.strip()


def requests(box: Container) -> str:
    """The access log of the index serve() started last (one `GET /simple/<project>/` line
    per page pip read); earlier runs in the same box are not in it."""
    invocation = _invocations[box.name]
    return box.sh(f"journalctl --no-pager _SYSTEMD_INVOCATION_ID={invocation}").out


def stop(box: Container) -> None:
    box.sh(f"systemctl stop {UNIT}")
    box.sh(f"systemctl reset-failed {UNIT}")  # so serve() can use the name again
