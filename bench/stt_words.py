"""Whisper's settings compared on the everyday requests: words misheard and STT time.

Every request of bench/answers.py's three lists (eval, heldout, fresh) is spoken
once as bench/answers.py speaks it (the piper voice of the models dir at 16 kHz), and transcribed by
each variant in turn (interleaved, so a noisy box weighs on all alike). A
variant is ``NAME=WINDOW,BEAM[,ALTERNATIVES]`` (voice.stt_min_window_s,
voice.stt_beam_size, and how many other readings the beam returns: default 4).
Prints JSON: per variant the word error rate (digits and number words count as
different words, so "ten" heard as "10" is an error for all variants alike),
requests heard exactly, per list, and STT seconds p50/mean.

    .venv/bin/python bench/stt_words.py [--variant w5-b5=5,5 ...]
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
from appliance.voice.stt import MAX_ALTERNATIVES, Transcriber
from bench.answers import eval_set, fresh_set, heldout_set, speaker
from bench.voice_turn import DEFAULT_MODELS
from bench.wer import word_errors

DEFAULT_VARIANTS = ["w10-b1=10,1", "w10-b5=10,5", "w5-b1=5,1", "w5-b5=5,5"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", metavar="NAME=WINDOW,BEAM[,ALTERNATIVES]",
                   help=f"a setting to compare (default: {' '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--models", default=os.environ.get("HYBRID_AGENT_TEST_MODELS",
                                                      DEFAULT_MODELS))
    p.add_argument("--threads", type=int, default=0,
                   help="STT threads (0: the physical cores this process may use)")
    args = p.parse_args()
    models = Path(args.models)
    variants: dict[str, Transcriber] = {}
    for spec in args.variant or DEFAULT_VARIANTS:
        name, _, values = spec.partition("=")
        window, beam, *alternatives = values.split(",")
        variants[name] = Transcriber(models / "whisper-base",
                                     threads=args.threads or usable_physical_cores(),
                                     language="en", min_window_s=float(window),
                                     beam_size=int(beam),
                                     alternatives=int(alternatives[0]) if alternatives
                                     else MAX_ALTERNATIVES)
    speak = speaker(models, Path(tempfile.mkdtemp(prefix="stt-words-")))
    requests = [(name, case.text) for name, cases in
                (("eval", eval_set()), ("heldout", heldout_set()), ("fresh", fresh_set()))
                for case in cases]
    tally: dict[str, dict[str, Any]] = {
        n: {"errors": 0, "words": 0, "exact": {}, "seconds": [], "misheard": []}
        for n in variants}
    for listname, text in requests:
        audio = np.frombuffer(speak(text), np.int16).astype(np.float32) / 32768.0
        for name, stt in variants.items():
            t0 = time.monotonic()
            heard = stt.transcribe(audio).text
            t = tally[name]
            t["seconds"].append(time.monotonic() - t0)
            errors, n = word_errors(text, heard)
            t["errors"] += errors
            t["words"] += n
            right, total = t["exact"].get(listname, (0, 0))
            t["exact"][listname] = (right + (errors == 0), total + 1)
            if errors:
                t["misheard"].append([text, heard])
    result = {name: {"word_error_rate": round(t["errors"] / t["words"], 4),
                     "heard_exactly": sum(r for r, _ in t["exact"].values()),
                     "per_list": {k: f"{r}/{n}" for k, (r, n) in t["exact"].items()},
                     "stt_p50_s": round(statistics.median(t["seconds"]), 3),
                     "stt_mean_s": round(statistics.fmean(t["seconds"]), 3),
                     "misheard": t["misheard"]}
              for name, t in tally.items()}
    print(json.dumps({"bench": "stt_words", "requests": len(requests), "cpus": os.cpu_count(),
                      "load_average": os.getloadavg()[0], "variants": result}, indent=2))


if __name__ == "__main__":
    main()
