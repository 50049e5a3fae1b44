"""What the voice part needs from the config, resolved once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config


@dataclass(frozen=True)
class VoiceSettings:
    """What the voice component, its models, the box's microphone and announcements need."""

    stt_model: Path
    tts_voice: Path
    language: str
    stt_threads: int
    stt_min_window_s: float
    stt_beam_size: int
    stt_alternatives: int
    trailing_silence_s: float
    max_utterance_s: float
    max_tts_chars: int
    max_stt_bytes: int
    barge_in: bool
    partial_transcripts: bool
    input: str
    output: str
    input_rate: int
    system_prompt: str
    wake_words: tuple[str, ...] = ()
    wake_engine: str = "cascade"
    wake_sensitivity: tuple[tuple[str, float], ...] = ()
    follow_up_s: float = 0.0
    earcon: bool = True
    echo_cancelled: bool = False
    alarm_rings: int = 5
    alarm_ring_gap_s: float = 30.0

    @classmethod
    def from_config(cls, cfg: Config) -> VoiceSettings:
        v = cfg.voice
        return cls(stt_model=cfg.stt_model_path, tts_voice=cfg.tts_voice_path,
                   language=v.language, stt_threads=v.stt_thread_count,
                   stt_min_window_s=v.stt_min_window_s, stt_beam_size=v.stt_beam_size,
                   stt_alternatives=v.stt_alternatives,
                   trailing_silence_s=v.trailing_silence_ms / 1000.0,
                   max_utterance_s=v.max_utterance_s, max_tts_chars=v.max_tts_chars,
                   max_stt_bytes=v.max_stt_bytes, barge_in=v.barge_in,
                   partial_transcripts=v.partial_transcripts, input=v.input,
                   output=v.output, input_rate=v.input_rate,
                   system_prompt=cfg.agent.system_prompt, wake_words=tuple(v.wake_words),
                   wake_engine=v.wake_engine,
                   wake_sensitivity=tuple(sorted(v.wake_sensitivity.items())),
                   follow_up_s=v.follow_up_s, earcon=v.earcon,
                   echo_cancelled=v.echo_cancelled, alarm_rings=v.alarm_rings,
                   alarm_ring_gap_s=v.alarm_ring_gap_s)
