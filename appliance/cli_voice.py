"""`hybrid-agent transcribe` and `hybrid-agent say`: speech on this box, no daemon needed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.cli import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    command,
    load_config,
)


@command("transcribe", "transcribe a WAV file with the node's speech-to-text model",
         "Transcribe FILE.wav (any sample rate and channel count) in this process with "
         "the configured faster-whisper model and print the text (--json: text, language, "
         "duration_s). No daemon is needed.")
def _setup_transcribe(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.wav", help="the recording to transcribe")
    p.add_argument("--config", metavar="FILE", help="config file to use")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_transcribe)


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from appliance.voice.audio import read_wav, to_pipeline
    from appliance.voice.errors import VoiceError
    from appliance.voice.stt import Transcriber

    cfg = load_config(args.config)
    try:
        audio = read_wav(Path(args.file).read_bytes())
        if audio.duration_s > cfg.voice.max_utterance_s:
            print(f"hybrid-agent: {args.file} is {audio.duration_s:.1f} s long; at most "
                  f"{cfg.voice.max_utterance_s:.0f} s (voice.max_utterance_s)", file=sys.stderr)
            return EXIT_FAIL
        stt = Transcriber(cfg.stt_model_path, threads=cfg.voice.stt_thread_count,
                          language=cfg.voice.language,
                          min_window_s=cfg.voice.stt_min_window_s,
                          beam_size=cfg.voice.stt_beam_size)
        result = stt.transcribe(to_pipeline(audio))
    except (OSError, VoiceError) as exc:
        print(f"hybrid-agent: cannot transcribe {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps({"text": result.text, "language": result.language,
                          "duration_s": result.duration_s}))
    else:
        print(result.text)
    return EXIT_OK


@command("say", "speak text with the node's text-to-speech voice",
         "Synthesise TEXT with the configured piper voice in this process and play it on "
         "the box's speaker (voice.output, else ALSA's default device), or write a WAV "
         "file with -o.")
def _setup_say(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", metavar="TEXT", help="what to say")
    p.add_argument("-o", "--output", metavar="FILE.wav", help="write a WAV instead of playing")
    p.add_argument("--device", metavar="ALSA", help="ALSA playback device (default: "
                                                      "voice.output, else default)")
    p.add_argument("--config", metavar="FILE", help="config file to use")
    p.set_defaults(func=_cmd_say)


def _cmd_say(args: argparse.Namespace) -> int:
    import subprocess

    from appliance.voice import alsa
    from appliance.voice.audio import float_to_pcm16, write_wav
    from appliance.voice.errors import VoiceError
    from appliance.voice.tts import Synthesizer

    cfg = load_config(args.config)
    text = args.text.strip()
    if not text or len(text) > cfg.voice.max_tts_chars:
        print(f"hybrid-agent: text must be 1 to {cfg.voice.max_tts_chars} characters "
              "(voice.max_tts_chars)", file=sys.stderr)
        return EXIT_USAGE
    try:
        tts = Synthesizer(cfg.tts_voice_path)
        samples = tts.synthesize_all(text)
        if args.output:
            Path(args.output).write_bytes(write_wav(samples, tts.sample_rate))
            return EXIT_OK
        device = args.device or (cfg.voice.output if alsa.enabled(cfg.voice.output)
                                 else "default")
        alsa.check_tools()
        done = subprocess.run(alsa.aplay_argv(device, tts.sample_rate),
                              input=float_to_pcm16(samples), capture_output=True, check=False)
    except (OSError, VoiceError) as exc:
        print(f"hybrid-agent: cannot speak: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if done.returncode != 0:
        print(f"hybrid-agent: aplay on {device!r} failed: "
              f"{done.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
