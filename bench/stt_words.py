"""Whisper's settings compared on the everyday requests: words misheard and STT time.

Every request of bench/answers.py's three lists (eval, heldout, fresh) is spoken
once as bench/answers.py speaks it (the piper voice of the models dir at 16 kHz), and transcribed by
each variant in turn (interleaved, so a noisy box weighs on all alike), and so are
TWO_PART, longer requests of two parts, where a fitted window misreads most. Piper
draws its timing afresh each time, so ``--draws N`` speaks every request N times.
A variant is ``NAME=WINDOW,BEAM[,ALTERNATIVES[,RECHECK]]`` (voice.stt_min_window_s,
voice.stt_beam_size, how many other readings the beam returns: default 4, and the
score below which a fitted reading is read again on a wider window: default
stt.RECHECK_BELOW, ``off`` for never).
Prints JSON: per variant the word error rate (digits and number words count as
different words, so "ten" heard as "10" is an error for all variants alike),
requests heard exactly, per list, misreadings (more than 30 % of a request's words
wrong), readings done again, and STT seconds p50/mean.

    .venv/bin/python bench/stt_words.py [--draws 3] [--variant w5-b5=5,5 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.hardware import usable_physical_cores
from appliance.voice.stt import MAX_ALTERNATIVES, RECHECK_BELOW, Transcriber
from bench.answers import eval_set, fresh_set, heldout_set, speaker
from bench.voice_turn import DEFAULT_MODELS
from bench.wer import word_errors

LISTS = ("eval", "heldout", "fresh", "two-part")
DEFAULT_VARIANTS = ["w5-b5=5,5", "w5-b5-no-recheck=5,5,4,off", "w10-b5=10,5"]
#: Requests of two parts, 3-4 s spoken: what the 5 s window misread in one draw of 17.
TWO_PART = [
    "Turn on the kitchen lights please. Then play some music.",
    "Please set a timer for ten minutes and turn on the kitchen lights.",
    "What is the weather tomorrow? And remind me to water the plants.",
    "Turn off the lights in the living room and lock the front door.",
    "Add milk and eggs to the shopping list, and tell me what is on it.",
    "Set an alarm for seven in the morning. And what time is it now?",
    "Remember that the spare key is under the flower pot. Thank you.",
    "How long is left on the pasta timer? And turn the music down please.",
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", metavar="NAME=WINDOW,BEAM[,ALTERNATIVES]",
                   help=f"a setting to compare (default: {' '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--models", default=os.environ.get("HYBRID_AGENT_TEST_MODELS",
                                                      DEFAULT_MODELS))
    p.add_argument("--language", default="auto",
                   help="voice.language: auto (the default, Whisper detects it) or a code")
    p.add_argument("--list", action="append", choices=LISTS, dest="lists",
                   help="only these request lists (default: all)")
    p.add_argument("--draws", type=int, default=1,
                   help="times each request is spoken (piper's timing varies per draw)")
    p.add_argument("--threads", type=int, default=0,
                   help="STT threads (0: the physical cores this process may use)")
    args = p.parse_args()
    models = Path(args.models)
    variants: dict[str, Transcriber] = {}
    for spec in args.variant or DEFAULT_VARIANTS:
        name, _, values = spec.partition("=")
        window, beam, *rest = values.split(",")
        recheck = rest[1] if len(rest) > 1 else str(RECHECK_BELOW)
        variants[name] = Transcriber(models / "whisper-base",
                                     threads=args.threads or usable_physical_cores(),
                                     language=args.language, min_window_s=float(window),
                                     beam_size=int(beam),
                                     alternatives=int(rest[0]) if rest else MAX_ALTERNATIVES,
                                     recheck_below=None if recheck == "off" else float(recheck))
    speak = speaker(models, Path(tempfile.mkdtemp(prefix="stt-words-")))
    lists = {"eval": [c.text for c in eval_set()], "heldout": [c.text for c in heldout_set()],
             "fresh": [c.text for c in fresh_set()], "two-part": TWO_PART}
    requests = [(name, text) for name in args.lists or LISTS for text in lists[name]]
    tally: dict[str, dict[str, Any]] = {
        n: {"errors": 0, "words": 0, "exact": {}, "seconds": [], "misheard": [], "misread": 0,
            "rechecked": 0}
        for n in variants}
    for listname, text in requests * max(1, args.draws):
        audio = np.frombuffer(speak(text), np.int16).astype(np.float32) / 32768.0
        for name, stt in variants.items():
            t0 = time.monotonic()
            done = stt.transcribe(audio)
            t = tally[name]
            t["seconds"].append(time.monotonic() - t0)
            errors, n = word_errors(text, done.text)
            t["errors"] += errors
            t["words"] += n
            t["misread"] += errors > 0.3 * n
            t["rechecked"] += done.rechecked
            right, total = t["exact"].get(listname, (0, 0))
            t["exact"][listname] = (right + (errors == 0), total + 1)
            if errors:
                t["misheard"].append([text, done.text])
    result = {name: {"word_error_rate": round(t["errors"] / t["words"], 4),
                     "heard_exactly": sum(r for r, _ in t["exact"].values()),
                     "per_list": {k: f"{r}/{n}" for k, (r, n) in t["exact"].items()},
                     "misread": t["misread"], "rechecked": t["rechecked"],
                     "stt_p50_s": round(statistics.median(t["seconds"]), 3),
                     "stt_mean_s": round(statistics.fmean(t["seconds"]), 3),
                     "misheard": t["misheard"]}
              for name, t in tally.items()}
    print(json.dumps({"bench": "stt_words", "requests": len(requests),
                      "draws": max(1, args.draws), "language": args.language,
                      "cpus": os.cpu_count(),
                      "load_average": os.getloadavg()[0], "variants": result}, indent=2))


if __name__ == "__main__":
    main()
