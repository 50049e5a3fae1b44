"""Speech real-time factor under the hardened unit and without it (issue 21); prints JSON.

Boots a throwaway Debian 12 container (``--arch arm64``: the emulated arm64
root), installs the hybrid-agent package built by `make deb`, and runs three
daemons of the same install side by side, each with its own port and state:

- ``unit``: hybrid-agent.service as shipped (``ProcSubset=all``);
- ``unit_procsubset_pid``: the same unit with ``ProcSubset=pid``, as it was
  before issue 21 (``/proc/cpuinfo`` hidden);
- ``no_sandbox``: the same command as the same user in a bare transient unit.

Each round sends one TTS request and one STT request (the TTS output) to each
daemon, in an order that rotates per round, so load changes on this shared box
hit every variant alike. The real-time factor is wall time / audio seconds
(lower is faster); the median over the rounds is reported with the load average.

Run as root: ``.venv/bin/python bench/unit_rtf.py [--arch arm64] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.wer import word_errors
from tests.e2e import packages
from tests.e2e.conftest import REPO, WHEELHOUSE_INSIDE
from tests.e2e.container import Container, ensure_foreign_rootfs, ensure_rootfs, ensure_wheelhouse

SPOKEN = ("Hello from the kitchen. Please turn on the light over the table, and remind me "
          "to water the plants tomorrow morning.")
BASE_PORT = 8700
UNIT = "/lib/systemd/system/hybrid-agent.service"
READY_TIMEOUT_S = 1200
REQUEST_TIMEOUT_S = 900
VARIANTS = ("unit", "unit_procsubset_pid", "no_sandbox")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=("amd64", "arm64"), default="amd64")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--text", default=SPOKEN,
                   help="what each TTS request says (default: a 5.6 s sentence; under "
                        "emulation piper runs at RTF 100+, so give a short one there)")
    p.add_argument("--keep-audio", type=Path, metavar="DIR",
                   help="keep each spoken WAV in DIR (to hear it, or transcribe it elsewhere)")
    args = p.parse_args()
    # The builds' and pip's progress goes to stderr: stdout carries only the JSON.
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        debs = packages.built(args.arch, llm=False if args.arch == "arm64" else True)
        root = ensure_rootfs() if args.arch == "amd64" else ensure_foreign_rootfs(args.arch)
        wheelhouse = ensure_wheelhouse(REPO, sys.executable)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    box = Container(f"ha-bench-rtf-{args.arch}",
                    binds_ro={str(debs): "/srv/debs", str(wheelhouse): WHEELHOUSE_INSIDE})
    try:
        box.boot(root, timeout_s=300)
        if args.arch == "arm64":
            packages.give_arm_cpuinfo(box)  # what qemu 7.2 lacks (see there)
        deb = packages.deb(debs, "hybrid-agent").name
        run(box, f"HYBRID_AGENT_WHEELHOUSE={WHEELHOUSE_INSIDE} DEBIAN_FRONTEND=noninteractive "
                 f"apt-get -y install /srv/debs/{deb}", READY_TIMEOUT_S)
        ports = start_variants(box)
        results: dict[str, dict[str, list[float]]] = {v: {"tts": [], "stt": []}
                                                       for v in VARIANTS}
        audio_s = 0.0
        heard: dict[str, list[str]] = {v: [] for v in VARIANTS}
        for i in range(args.rounds):
            order = VARIANTS[i % 3:] + VARIANTS[:i % 3]
            for variant in order:
                tts_s, audio_s = tts(box, ports[variant], args.text)
                if args.keep_audio:
                    (args.keep_audio / f"{args.arch}-{variant}-{i}.wav").write_bytes(
                        box.root_path("/tmp/rtf.wav").read_bytes())
                stt_s, text = stt(box, ports[variant])
                heard[variant].append(text)
                results[variant]["tts"].append(tts_s / audio_s)
                results[variant]["stt"].append(stt_s / audio_s)
        journal = run(box, "journalctl --no-pager -o cat -u hybrid-agent -u ha-bench-pid "
                           "-u ha-bench-plain", 120)
    finally:
        box.stop()
    out = {
        "arch": args.arch, "rounds": args.rounds, "text": args.text,
        "audio_s": round(audio_s, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "median_rtf": {v: {k: round(statistics.median(r), 3) for k, r in results[v].items()}
                       for v in VARIANTS},
        "all_rtf": {v: {k: [round(x, 3) for x in r] for k, r in results[v].items()}
                    for v in VARIANTS},
        "heard": heard,
        "words_misheard": {v: [word_errors(args.text, t)[0] for t in heard[v]]
                           for v in VARIANTS},
        "cpuinfo_warning_lines": sum("cpuinfo" in line for line in journal.splitlines()),
    }
    print(json.dumps(out, indent=2))
    return 0


def start_variants(box: Container) -> dict[str, int]:
    """The shipped unit on 8700; the ProcSubset=pid copy and the bare one on the next ports."""
    ports = {"unit": BASE_PORT, "unit_procsubset_pid": BASE_PORT + 10,
             "no_sandbox": BASE_PORT + 11}
    for variant in ("unit_procsubset_pid", "no_sandbox"):
        port = ports[variant]
        run(box, f"mkdir -p /var/lib/hybrid-agent/bench-{port} && chown hybrid-agent: "
                 f"/var/lib/hybrid-agent/bench-{port} && sed -e 's/^  port: 8700$/  port: {port}/'"
                 f" -e \"s|^  state_dir: ''|  state_dir: /var/lib/hybrid-agent/bench-{port}|\""
                 " -e \"s|^  models_dir: ''|  models_dir: /var/lib/hybrid-agent/models|\""
                 f" /etc/hybrid-agent/config.yaml > /etc/hybrid-agent/bench-{port}.yaml && "
                 f"chgrp hybrid-agent /etc/hybrid-agent/bench-{port}.yaml && "
                 f"chmod 640 /etc/hybrid-agent/bench-{port}.yaml", 60)
    pid_port = ports["unit_procsubset_pid"]
    run(box, f"sed -e 's/^ProcSubset=all$/ProcSubset=pid/' -e 's|/etc/hybrid-agent/config.yaml|"
             f"/etc/hybrid-agent/bench-{pid_port}.yaml|' {UNIT} "
             "> /etc/systemd/system/ha-bench-pid.service && grep -q '^ProcSubset=pid' "
             "/etc/systemd/system/ha-bench-pid.service && systemctl daemon-reload && "
             "systemctl start ha-bench-pid", READY_TIMEOUT_S)
    plain_port = ports["no_sandbox"]
    run(box, "systemd-run --unit=ha-bench-plain -p Type=notify -p NotifyAccess=main "
             "-p User=hybrid-agent -p TimeoutStartSec=infinity --no-block "
             "/opt/hybrid-agent/venv/bin/hybrid-agent run --config "
             f"/etc/hybrid-agent/bench-{plain_port}.yaml", 60)
    for port in ports.values():
        wait_health(box, port)
    return ports


def wait_health(box: Container, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while box.sh(f"curl -fsS -o /dev/null http://127.0.0.1:{port}/health").rc != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"no daemon ready on {port}: "
                             + box.sh("systemctl --no-pager status ha-bench-pid ha-bench-plain "
                                      "hybrid-agent").out[-3000:])
        time.sleep(2)


def tts(box: Container, port: int, text: str) -> tuple[float, float]:
    t0 = time.monotonic()
    run(box, f"curl -fsS -o /tmp/rtf.wav -H 'Content-Type: application/json' "
             f"-d '{json.dumps({'text': text})}' http://127.0.0.1:{port}/api/tts",
        REQUEST_TIMEOUT_S)
    took = time.monotonic() - t0
    wav = box.root_path("/tmp/rtf.wav").read_bytes()
    rate = struct.unpack_from("<I", wav, 24)[0]
    return took, (len(wav) - 44) / 2 / rate


def stt(box: Container, port: int) -> tuple[float, str]:
    t0 = time.monotonic()
    out = run(box, "curl -fsS -H 'Content-Type: audio/wav' --data-binary @/tmp/rtf.wav "
                   f"http://127.0.0.1:{port}/api/stt", REQUEST_TIMEOUT_S)
    return time.monotonic() - t0, str(json.loads(out)["text"])


def run(box: Container, script: str, timeout: float) -> str:
    r = box.sh(script, timeout=timeout)
    if r.rc != 0:
        raise SystemExit(f"`{script[:200]}` failed:\n{r.text[-3000:]}")
    return r.out


if __name__ == "__main__":
    sys.exit(main())
