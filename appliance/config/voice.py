"""The voice and wyoming sections: speech in and out, the wake word, Home Assistant."""

from __future__ import annotations

from dataclasses import dataclass

from appliance import hardware
from appliance.config.keys import _f

#: The wake words shipped inside the wake word engines' wheels (hey_rhasspy: openwakeword only).
WAKE_WORDS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa", "hey_rhasspy")
WAKE_ENGINES = ("cascade", "microwakeword", "openwakeword")


#: On a box with this many cores or fewer, Whisper runs on one thread by default.
SMALL_BOX_CORES = 2


@dataclass(frozen=True)
class VoiceConfig:
    """Speech in and out, in-process."""

    enabled: bool = _f(True, "Load speech-to-text and text-to-speech.")
    stt_model: str = _f("", "faster-whisper model directory; empty means the default model.",
                        path=True)
    tts_voice: str = _f("", "Piper .onnx voice; empty means the default voice.", path=True)
    language: str = _f("auto", "Spoken language code (en, de, ...) or auto.")
    stt_threads: int = _f(0, "STT threads; 0 means 1 on a box with 2 cores or fewer (Whisper "
                             "ran 2.5x faster there on one), else the number of physical "
                             "cores.", min=0, max=1024)
    trailing_silence_ms: int = _f(
        500, "Silence that ends an utterance. An everyday request ends sooner: Whisper starts "
        "on the utterance after 0.1 s of silence, and when that transcript is already a "
        "whole request (an intent) the turn ends once 0.16 s of silence have passed.",
        min=100, max=10000)
    max_utterance_s: float = _f(30.0, "Longest utterance accepted.", min=1.0, max=600.0)
    max_tts_chars: int = _f(4000, "Longest text spoken in one request.", min=1, max=1_000_000)
    input: str = _f("none", "ALSA capture device (e.g. default, hw:1,0) or none.")
    output: str = _f("none", "ALSA playback device (e.g. default, hw:1,0) or none.")
    input_rate: int = _f(16000, "Capture rate asked of the ALSA input; resampled to 16 kHz.",
                         min=8000, max=192000)
    barge_in: bool = _f(True, "Speech while the assistant talks stops its reply.")
    stt_min_window_s: float = _f(5.0, "Shortest Whisper encoder window for a short utterance; "
                                 "30 always encodes the full window (slower).",
                                 min=2.0, max=30.0)
    stt_beam_size: int = _f(5, "Whisper beam search width; 1 is greedy decoding (faster on "
                            "long speech, more words misheard).", min=1, max=10)
    stt_alternatives: int = _f(4, "Other readings of a short utterance kept from the beam; a "
                               "voice turn answers the first one an everyday intent "
                               "understands when the best one is none. 0 turns this off.",
                               min=0, max=9)
    max_stt_bytes: int = _f(16 * 1024 * 1024, "Largest audio file accepted by POST /api/stt and "
                            "/v1/audio/transcriptions.",
                            min=1024, max=1 << 31)
    partial_transcripts: bool = _f(False, "Transcribe the utterance so far about once a "
                                   "second while the user speaks (costs CPU on small boxes).")
    wake_words: list[str] = _f(["okay_nabu"], "Wake words heard by the box's microphone and "
                               "hands-free /api/voice clients: okay_nabu, hey_jarvis, "
                               "hey_mycroft, alexa (hey_rhasspy with openwakeword); [] means "
                               "none: the microphone takes every utterance, clients push to talk.",
                               item_choices=WAKE_WORDS)
    wake_engine: str = _f("cascade", "Wake word detector: cascade (microWakeWord listens and "
                                     "openWakeWord checks what it nearly heard: the best "
                                     "detection for about 1-3 % of a core), microwakeword "
                                     "(under 1 %, decides in 0.15 s) or openwakeword (about "
                                     "8 %, 0.44 s; the only one with hey_rhasspy).",
                          choices=WAKE_ENGINES)
    wake_sensitivity: dict[str, float] = _f({}, "Per wake word, 0 to 1; 0.5 is the model's tuned "
                                                "threshold, higher wakes more easily (and "
                                                "falsely more often).",
                                            key_choices=WAKE_WORDS, value_min=0.0, value_max=1.0)
    follow_up_s: float = _f(5.0, "After a spoken reply, listen this long for another question "
                                 "without the wake word; 0 turns it off.", min=0.0, max=60.0)
    earcon: bool = _f(True, "Play a short chime on voice.output when the wake word is heard.")
    alarm_rings: int = _f(5, "A wake-up alarm is said this many times, voice.alarm_ring_gap_s "
                             "apart, until someone speaks (a reminder or a timer is said "
                             "once).", min=1, max=60)
    alarm_ring_gap_s: float = _f(30.0, "Seconds between two rings of a wake-up alarm.",
                                 min=1.0, max=600.0)
    echo_cancelled: bool = _f(False, "voice.input already removes the box's own playback (a "
                                     "speakerphone with echo cancellation): speech may then "
                                     "interrupt a reply. Off, only the wake word is heard while "
                                     "the box speaks.")

    @property
    def stt_thread_count(self) -> int:
        """``stt_threads``; when 0, the physical cores this process may use, or 1 where those
        are 2 or fewer. On a 2-core box CTranslate2's OpenMP threads cost more in waking each
        other for Whisper's many small steps than they gain: a 5.6 s request took 0.16-0.19 s
        on one thread and 0.40-0.44 s on two (docs/performance.md, issue 21)."""
        if self.stt_threads:
            return self.stt_threads
        cores = hardware.usable_physical_cores()
        return 1 if cores <= SMALL_BOX_CORES else cores


@dataclass(frozen=True)
class WyomingConfig:
    """The Wyoming server for Home Assistant (speech in and out, and the agent)."""

    enabled: bool = _f(False, "Serve the Wyoming protocol (it has no authentication: see "
                              "docs/security.md); needs voice.enabled.")
    host: str = _f("0.0.0.0", "Address to bind; 127.0.0.1 keeps it off the LAN.")
    port: int = _f(10700, "TCP port.", min=1, max=65535)
    clients: list[str] = _f([], "Addresses or networks (CIDR) that may also use the agent "
                                "(handle) and connect from outside this box's private LAN "
                                "networks; loopback always may.")
    max_connections: int = _f(8, "Connections open at once; more are refused with an error.",
                              min=1, max=1024)
    idle_timeout_s: float = _f(60.0, "A connection that sends no complete event for this long "
                                     "is closed.", min=1.0, max=3600.0)
    advertise: bool = _f(True, "Announce _wyoming._tcp over mDNS (with discovery.enabled), so "
                               "Home Assistant finds the box.")
