"""Streamed speech on a slow board: first audio, and the silence after it.

    .venv/bin/python bench/tts_pace.py [--models DIR] [--shares 1,0.35,0.2] [--rounds 3]

A Raspberry-class edge box runs piper several times slower than this x86 one. To
measure that here, each ``--shares`` entry runs the voice in its own process in
a CPU cgroup limited to that share of one core (cgroup v1 ``cpu`` or v2
``cpu.max``, period 10 ms; needs root; 1 = not limited). Run it alone on the box.

For each typical answer it streams the speech three ways, interleaved, and plays
it against the clock from its first piece, as a speaker would:

- ``whole``: one array a sentence (``Synthesizer.synthesize``, piper's way);
- ``cut``: the first sentence's first 0.37 s, then the rest at once, if it is
  at least 128 frames long (the stream before pacing, :func:`cut_plan`);
- ``paced``: ``Synthesizer.stream`` as shipped (``tts.plan``).

Reported per share and way (medians over answers and rounds): first audio,
the seconds of silence the listener hears after it (``stall``), the end, and the
pieces a sentence came in. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_MODELS = "/var/cache/hybrid-agent-test/models"
VOICE = "piper/en_US-joe-medium.onnx"
ANSWERS = [
    "The kitchen lights are on.",
    "Tomorrow will be sunny with a high of twenty two degrees. There is a light breeze "
    "from the west in the afternoon.",
    "Your timer for ten minutes has started. I will tell you when it is done.",
    "Okay. I have added milk, eggs, bread and two kilos of apples to your shopping list.",
]
PERIOD_US = 10_000
WAYS = ("whole", "cut", "paced")


def limit(share: float) -> Path | None:
    """A cgroup limited to ``share`` of one core, for this process to join; None for 1."""
    if share >= 1:
        return None
    quota = max(1000, int(share * PERIOD_US))
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "tasks").exists():
        group = v1 / f"hybrid-agent-bench-{os.getpid()}"
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(quota))
        return group / "tasks"
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists() and "cpu" in (v2 / "cgroup.controllers").read_text():
        (v2 / "cgroup.subtree_control").write_text("+cpu")
        group = v2 / f"hybrid-agent-bench-{os.getpid()}"
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        return group / "cgroup.procs"
    raise SystemExit("no CPU cgroup to limit the voice with: this bench needs root and "
                     "cgroup v1 'cpu' or v2 'cpu.max'")


def listen(pieces: Any, rate: int) -> dict[str, float]:
    """Play pieces as they come: first audio, silence after it, end (seconds)."""
    began = time.perf_counter()
    first = ends = None
    stall = 0.0
    count = 0
    for piece in pieces:
        now = time.perf_counter() - began
        if ends is None:
            first = ends = now
        elif now > ends:
            stall += now - ends
            ends = now
        ends += len(piece) / rate
        count += 1
    assert first is not None
    return {"first_s": first, "stall_s": stall, "end_s": time.perf_counter() - began,
            "pieces": count}


def cut_plan(pos: int, frames: int, ahead: float | None, per_frame: float | None,
             frame_s: float) -> int:
    """``tts.plan`` before pacing: a first sentence of 128 frames or more in two."""
    from appliance.voice.tts import FIRST_FRAMES
    return pos + FIRST_FRAMES if ahead is None and frames - pos >= 128 else frames


def child(models: Path, rounds: int) -> None:
    """In the limited cgroup: every way, every answer, ``rounds`` times, as JSON lines."""
    from appliance.voice import tts

    cpu = [line for line in Path("/proc/self/cgroup").read_text().splitlines()
           if ":cpu," in line or ":cpu:" in line or line.startswith("0::")]
    print(json.dumps({"cgroup": cpu[0].split(":", 2)[2] if cpu else ""}), flush=True)
    voice = tts.Synthesizer(models / VOICE)
    for text in ANSWERS + ANSWERS[:2]:  # the level is learnt, the decoder's speed known
        list(voice.stream(text))
    paced = tts.plan
    for _ in range(rounds):
        for i, text in enumerate(ANSWERS):
            for way in WAYS:
                tts.plan = cut_plan if way == "cut" else paced  # type: ignore[assignment]
                pieces = voice.synthesize(text) if way == "whole" else voice.stream(text)
                got = listen(pieces, voice.sample_rate)
                print(json.dumps({"way": way, "answer": i + 1, **got}), flush=True)


def run(share: float, models: Path, rounds: int) -> dict[str, Any]:
    tasks = limit(share)
    argv = [sys.executable, __file__, "--child", "--models", str(models),
            "--rounds", str(rounds)]
    # The child joins the group before it imports anything (preexec_fn runs in it).
    join = (lambda: tasks.write_text(str(os.getpid()))) if tasks else None
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True,
                             preexec_fn=join, cwd=ROOT).stdout
    finally:
        if tasks is not None:
            tasks.parent.rmdir()
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    result: dict[str, Any] = {"cgroup": rows.pop(0)["cgroup"]}  # the voice ran in
    for way in WAYS:
        mine = [r for r in rows if r["way"] == way]
        result[way] = {k: round(statistics.median(r[k] for r in mine), 4)
                       for k in ("first_s", "stall_s", "end_s", "pieces")}
        result[way]["stall_s_max"] = round(max(r["stall_s"] for r in mine), 4)
        for i in range(1, len(ANSWERS) + 1):
            result[way][f"answer{i}"] = {
                k: round(statistics.median(r[k] for r in mine if r["answer"] == i), 4)
                for k in ("first_s", "stall_s", "pieces")}
        result[way]["stalled_share"] = round(sum(r["stall_s"] > 0.02 for r in mine)
                                             / len(mine), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="the default models")
    parser.add_argument("--shares", default="1,0.35,0.2",
                        help="CPU shares of one core to run the voice in (1 = unlimited)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = Path(args.models)
    if not (models / VOICE).is_file():
        raise SystemExit(f"no voice at {models / VOICE} (--models)")
    if args.child:
        child(models, args.rounds)
        return
    shares = [float(s) for s in args.shares.split(",")]
    report: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
                              "answers": len(ANSWERS), "rounds": args.rounds}
    for share in shares:
        print(f"share {share} of one core ...", file=sys.stderr, flush=True)
        report[f"share_{share}"] = run(share, models, args.rounds)
    report["loadavg_after"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
