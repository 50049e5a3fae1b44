"""The turn pipeline with the fake microphone: endpointing, speculative STT, the no-LLM error,
the configured trailing silence and the utterance length bound."""

from __future__ import annotations

import asyncio
import copy
import gc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.voice.audio import pcm16_to_float
from appliance.voice.component import VoiceComponent
from appliance.voice.models import VoiceModels
from appliance.voice.pipeline import VoiceSession
from appliance.voice.settings import VoiceSettings
from tests.support.fake_audio import CHUNK_SAMPLES, FakeMicrophone, FakeSpeaker, wav_to_pcm16
from tests.voice.conftest import voice_config

pytestmark = pytest.mark.model

ANNOUNCE_TIMEOUT_S = 30.0
#: RMS (full scale) of a 10 ms frame that counts as speech when trimming espeak's quiet edges.
LOUD_RMS = 0.02


async def _run(voice: VoiceComponent, mic: FakeMicrophone, responder: Any,
               ) -> tuple[list[dict[str, Any]], VoiceSession, FakeSpeaker]:
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    speaker = FakeSpeaker()
    session = VoiceSession(voice.models, conversation_id="t", emit=emit, output=speaker,
                           responder=lambda: responder)
    async for chunk in mic.chunks():
        await session.feed(chunk)
    await session.wait_idle()
    await session.close()
    return events, session, speaker


class Echo:
    """Answers with what it heard (the LLM is not the subject here)."""

    async def __call__(self, text: str, conversation_id: str) -> AsyncIterator[str]:
        yield f"You said: {text}"


async def test_one_utterance_is_transcribed_once_thanks_to_the_speculative_start(
        voice: VoiceComponent, speech: Callable[..., bytes]) -> None:
    before = voice.stats["transcriptions"]
    mic = (FakeMicrophone().silence(0.3)
           .speech(wav_to_pcm16(speech("How many legs does a spider have?"))).silence(1.2))
    events, session, speaker = await _run(voice, mic, Echo())
    # The transcription started during the trailing silence became the turn's transcript.
    assert voice.stats["transcriptions"] - before == 1
    kinds = [e["type"] for e in events]
    assert kinds.count("speech_start") == 1 and kinds.count("speech_end") == 1
    assert "spider" in session.turns[0].user.lower()
    assert speaker.played and speaker.played[0].text.startswith("You said:")
    reply = next(e for e in events if e["type"] == "reply")
    timings = reply["timings"]
    assert {"endpointing_s", "stt_s", "llm_first_token_s", "tts_first_s",
            "first_audio_s"} <= set(timings)
    assert timings["first_audio_s"] >= timings["endpointing_s"]


async def test_a_short_pause_does_not_split_the_utterance(
        voice: VoiceComponent, speech: Callable[..., bytes]) -> None:
    mic = (FakeMicrophone().silence(0.3)
           # espeak ends with ~0.34 s of quiet: longer than the speculative pause (0.1 s),
           # shorter than the 0.5 s that ends an utterance.
           .speech(wav_to_pcm16(speech("Turn on the lights")))
           .speech(wav_to_pcm16(speech("and then open the window")))
           .silence(1.2))
    events, session, _ = await _run(voice, mic, Echo())
    assert [e["type"] for e in events].count("speech_end") == 1
    heard = session.turns[0].user.lower()
    # The stale speculative transcript ("turn on the lights") was not used.
    assert "lights" in heard and "window" in heard, heard


async def test_without_a_responder_the_turn_reports_no_llm(
        voice: VoiceComponent, speech: Callable[..., bytes]) -> None:
    mic = FakeMicrophone().speech(wav_to_pcm16(speech("Hello there", pad=(0.3, 0.0))))
    mic.silence(1.0)
    events, session, speaker = await _run(voice, mic, None)
    error = next(e for e in events if e["type"] == "error")
    assert error["code"] == "no_llm_available"
    assert "hello" in next(e for e in events if e["type"] == "transcript")["text"].lower()
    assert speaker.played == [] and session.turns == []


async def test_silence_alone_starts_no_turn(voice: VoiceComponent) -> None:
    events, session, _ = await _run(voice, FakeMicrophone().silence(1.5), Echo())
    assert events == [] and session.turns == []
    # Push-to-talk released over silence: an empty transcript ends the turn.
    await session.end_utterance()
    assert [(e["type"], e.get("text")) for e in events] == [("transcript", ""), ("done", None)]


async def test_a_release_after_the_turn_already_ended_adds_no_empty_transcript(
        voice: VoiceComponent, speech: Callable[..., bytes]) -> None:
    # The endpointer (or an intent's early end) ended the utterance while the button was
    # still held, and its turn answered: the release must not report "nothing heard".
    mic = (FakeMicrophone().silence(0.3)
           .speech(wav_to_pcm16(speech("How many legs does a spider have?"))).silence(1.2))
    events, session, _ = await _run(voice, mic, Echo())
    before = list(events)
    assert [e["type"] for e in before].count("transcript") == 1
    await session.end_utterance()
    assert events == before
    # The next push, over silence only, is "nothing heard" again.
    await session.end_utterance()
    assert [(e["type"], e.get("text")) for e in events[len(before):]] == [
        ("transcript", ""), ("done", None)]


async def test_partial_transcripts_come_while_the_user_speaks(
        voice: VoiceComponent, speech: Callable[..., bytes]) -> None:
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    session = VoiceSession(voice.models, conversation_id="p", emit=emit, output=None,
                           responder=lambda: None, partials=True)
    mic = (FakeMicrophone().silence(0.3)
           .speech(wav_to_pcm16(speech("Please turn on the lights in the kitchen and then "
                                       "open the window in the living room")))
           .silence(1.0))
    async for chunk in mic.chunks():
        await session.feed(chunk)
    await session.wait_idle()
    await session.close()
    transcripts = [(e["final"], e["text"].lower()) for e in events if e["type"] == "transcript"]
    partial = [t for final, t in transcripts if not final]
    assert partial, transcripts
    end = [e["type"] for e in events].index("speech_end")
    # Partials come before the end of speech, the final one after.
    assert all(events.index(e) < end for e in events
               if e["type"] == "transcript" and not e["final"])
    assert transcripts[-1][0] is True and "window" in transcripts[-1][1]


async def test_a_fired_timer_is_spoken_in_the_open_conversation(voice: VoiceComponent) -> None:
    from appliance.tools.timers import Timers

    gc.collect()  # sessions of earlier tests are gone
    timers = Timers()
    voice.announcer.listen_timers(timers)
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    speaker = FakeSpeaker()
    session = voice.session(emit, speaker, conversation_id="kitchen")
    await timers.call({"action": "set", "seconds": 0.1, "label": "tea\x1b[2J"})
    await asyncio.wait_for(speaker.started.wait(), ANNOUNCE_TIMEOUT_S)
    assert speaker.played[0].text == "Your tea[2J timer is done."
    assert [e["type"] for e in events] == ["announcement", "audio"]
    assert session.speaking  # so speech now would barge into it
    await session.close()


def _configured(voice: VoiceComponent, models_dir: Path, state: Path, **cfg: Any,
                ) -> VoiceModels:
    """The session's loaded models with voice settings read from a config (as the daemon
    reads them), so a test can change them without loading Whisper and piper again."""
    engine = copy.copy(voice.models)
    engine.settings = VoiceSettings.from_config(voice_config(models_dir, state, **cfg))
    return engine


def _trimmed(pcm16: bytes) -> bytes:
    """``pcm16`` without its quiet start and end, so silence put around it is exactly known."""
    x = np.frombuffer(pcm16, np.int16)
    frames = x[: len(x) // 160 * 160].astype(np.float32).reshape(-1, 160) / 32768
    loud = np.nonzero(np.sqrt((frames ** 2).mean(axis=1)) > LOUD_RMS)[0]
    return x[loud[0] * 160:(loud[-1] + 1) * 160].tobytes()


def _silence(seconds: float) -> bytes:
    return np.zeros(int(seconds * 16000), np.int16).tobytes()


async def _feed(session: VoiceSession, pcm16: bytes) -> None:
    """Feed as fast as the session takes it: the endpointer decides on stream time only."""
    step = CHUNK_SAMPLES * 2
    for i in range(0, len(pcm16), step):
        await session.feed(pcm16[i:i + step])


@pytest.mark.parametrize(("trailing_ms", "utterances"), [(300, 2), (1000, 1)])
async def test_the_configured_trailing_silence_decides_where_an_utterance_ends(
        voice: VoiceComponent, speech: Callable[..., bytes], models_dir: Path, tmp_path: Path,
        trailing_ms: int, utterances: int) -> None:
    engine = _configured(voice, models_dir, tmp_path, trailing_silence_ms=trailing_ms)
    assert engine.new_endpointer().trailing_windows == round(trailing_ms / 32)
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    session = VoiceSession(engine, conversation_id="pause", emit=emit, output=None,
                           responder=lambda: None)
    # Two phrases 0.6 s apart: longer than 0.3 s of trailing silence, shorter than 1.0 s.
    await _feed(session, _silence(0.3) + _trimmed(wav_to_pcm16(speech("Turn on the lights")))
                + _silence(0.6) + _trimmed(wav_to_pcm16(speech("and then open the window")))
                + _silence(1.5))
    await session.wait_idle()
    await session.close()
    kinds = [e["type"] for e in events if e["type"] in ("speech_start", "speech_end")]
    assert kinds == ["speech_start", "speech_end"] * utterances, events
    if utterances == 1:
        final = [e for e in events if e["type"] == "transcript" and e["final"]]
        assert "lights" in final[0]["text"].lower() and "window" in final[0]["text"].lower()
    else:
        ends = [e for e in events if e["type"] == "speech_end"]
        start2 = [e for e in events if e["type"] == "speech_start"][1]
        assert ends[0]["t"] < start2["t"] < ends[1]["t"]


async def test_an_utterance_over_max_utterance_s_is_cut_and_the_session_carries_on(
        voice: VoiceComponent, speech: Callable[..., bytes], models_dir: Path,
        tmp_path: Path) -> None:
    engine = _configured(voice, models_dir, tmp_path, max_utterance_s=2.0)
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    session = VoiceSession(engine, conversation_id="long", emit=emit, output=None,
                           responder=lambda: Echo())
    monologue = _trimmed(wav_to_pcm16(speech(
        "The quick brown fox jumps over the lazy dog and runs far away across the green field")))
    assert len(monologue) / 32000 > 4.0  # twice the bound, without a pause
    await _feed(session, _silence(0.3) + monologue + _silence(1.0))
    await session.wait_idle()
    ends = [e for e in events if e["type"] == "speech_end"]
    # Cut at the bound, and the speech that ran on past it did not start another utterance.
    assert len(ends) == 1 and ends[0]["truncated"] is True, events
    assert ends[0]["duration_s"] <= 2.0
    assert [e["type"] for e in events].count("speech_start") == 1
    final = [e for e in events if e["type"] == "transcript" and e["final"]]
    assert len(final) == 1 and "fox" in final[0]["text"].lower(), final
    assert "field" not in final[0]["text"].lower()  # the overflow was not transcribed
    reply = next(e for e in events if e["type"] == "reply")
    assert reply["text"].startswith("You said:") and reply["cut_off"] is False

    # After the pause the session listens as before.
    del events[:]
    await _feed(session, wav_to_pcm16(speech("What time is it?")) + _silence(1.0))
    await session.wait_idle()
    await session.close()
    ends = [e for e in events if e["type"] == "speech_end"]
    assert len(ends) == 1 and ends[0]["truncated"] is False, events
    final = [e for e in events if e["type"] == "transcript" and e["final"]]
    assert "time" in final[0]["text"].lower()
    assert [t.user for t in session.turns][-1] == final[0]["text"]


async def test_releasing_push_to_talk_ends_the_overflow_of_a_cut_utterance(
        voice: VoiceComponent, speech: Callable[..., bytes], models_dir: Path,
        tmp_path: Path) -> None:
    engine = _configured(voice, models_dir, tmp_path, max_utterance_s=1.0)
    endpointer = engine.new_endpointer()
    question = _trimmed(wav_to_pcm16(speech("What time is it in London")))
    assert len(question) / 32000 > 1.0
    first = await engine.vad(endpointer, pcm16_to_float(_silence(0.3) + question))
    assert [(e.kind, e.truncated) for e in first] == [("start", False), ("end", True)]
    # Still in the overflow (no pause yet): more speech is ignored...
    assert await engine.vad(endpointer, pcm16_to_float(question)) == []
    # ...until the user says they are done (push-to-talk released): the next press is heard
    # at once, with no pause in between.
    assert endpointer.flush() is None
    again = await engine.vad(endpointer, pcm16_to_float(question))
    assert [e.kind for e in again][:1] == ["start"]
