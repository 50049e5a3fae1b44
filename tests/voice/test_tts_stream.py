"""piper cut at its decoder: the same speech as a whole run, the first of it sooner.

The real en_US-joe-medium voice and onnxruntime throughout; the cut is checked
against the uncut model run by onnxruntime on the same inputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from appliance.voice import onnx_split
from appliance.voice.tts import (
    CONTEXT,
    DECODER_PREFIX,
    FIRST_FRAMES,
    KNEE,
    LEVEL,
    LEVEL_SENTENCES,
    Synthesizer,
)

LONG = "Tomorrow will be sunny with a high of twenty two degrees."
TWO = f"{LONG} There is a light breeze from the west in the afternoon."
HOP = 256  # samples per latent frame in piper's voices


@pytest.fixture(scope="module")
def voice_path(models_dir: Path) -> Path:
    return models_dir / "piper" / "en_US-joe-medium.onnx"


@pytest.fixture(scope="module")
def tts(voice_path: Path) -> Synthesizer:
    """A voice that has spoken enough to fix its gain (so equal texts give equal audio)."""
    voice = Synthesizer(voice_path)
    for _ in range(LEVEL_SENTENCES):
        voice.synthesize_all("The kitchen lights are on.")
    return voice


def _session(model: str | bytes) -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(model, sess_options=opts,
                                        providers=["CPUExecutionProvider"])


def test_the_cut_model_computes_what_the_whole_one_does(voice_path: Path,
                                                         tts: Synthesizer) -> None:
    data = voice_path.read_bytes()
    cut = onnx_split.split(data, DECODER_PREFIX)
    assert cut is not None
    assert len(cut.boundary) == 1  # a one-speaker voice passes only the latent frames
    assert len(cut.back) < len(cut.front) < len(data)
    ids = tts._voice.phonemes_to_ids(tts._voice.phonemize(LONG)[0])
    feeds = {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
             "scales": np.array([0.0, 1.0, 0.0], np.float32)}  # no noise: comparable runs
    whole = _session(data).run(None, feeds)[0]
    front, back = _session(cut.front), _session(cut.back)
    frames = front.run(cut.boundary, feeds)
    assert frames[0].ndim == 3 and frames[0].shape[1] == 192, frames[0].shape
    out = back.run(None, dict(zip(cut.boundary, frames, strict=True)))[0]
    # The nodes after the decoder (piper's final reshapes) went with it: the same output.
    assert [o.name for o in back.get_outputs()] == ["output"]
    assert out.shape == whole.shape and out.size == frames[0].shape[-1] * HOP
    assert float(np.abs(out - whole).max()) < 1e-5


def test_a_model_without_the_prefix_or_not_a_model_at_all(voice_path: Path) -> None:
    data = voice_path.read_bytes()
    assert onnx_split.split(data, "/no-such-part/") is None
    with pytest.raises(onnx_split.SplitError):
        onnx_split.split(data[: len(data) // 2], DECODER_PREFIX)  # truncated
    with pytest.raises(onnx_split.SplitError):
        onnx_split.split(b"\xff" * 64, DECODER_PREFIX)


def test_a_long_first_sentence_comes_in_two_and_joins_into_the_whole(tts: Synthesizer) -> None:
    assert tts.cut and tts.streams
    whole = tts.synthesize_all(TWO, steady=True)
    pieces = list(tts.stream(TWO, steady=True))
    # The first sentence in two (its first frames, then the rest), the second whole.
    assert len(pieces) == 3, [len(p) for p in pieces]
    assert len(pieces[0]) == FIRST_FRAMES * HOP
    joined = np.concatenate(pieces)
    assert len(joined) == len(whole)
    assert int(np.abs(joined.astype(np.int32) - whole.astype(np.int32)).max()) <= 2
    # Per sentence, as before: synthesize() gives one array a sentence.
    assert [len(s) for s in tts.synthesize(TWO, steady=True)] == \
        [len(pieces[0]) + len(pieces[1]), len(pieces[2])]


def test_a_short_sentence_comes_whole(tts: Synthesizer) -> None:
    pieces = list(tts.stream("Okay.", steady=True))
    assert len(pieces) == 1
    assert np.array_equal(pieces[0], tts.synthesize_all("Okay.", steady=True))


def test_one_gain_for_every_sentence_and_nothing_clipped(tts: Synthesizer) -> None:
    """No per-sentence peak normalisation (it needs the whole sentence first): each
    sentence keeps its own level, and the knee keeps a loud one off full scale."""
    peaks = [int(np.abs(tts.synthesize_all(t, steady=True)).max())
             for t in ("Okay.", LONG, "Set a timer named tea for five minutes.",
                       "Twelve plus thirty is forty two.")]
    assert len(set(peaks)) == len(peaks), peaks  # piper's normalisation made them all 32767
    assert max(peaks) < 32767, peaks
    assert min(peaks) > 0.3 * 32767, peaks  # loud enough to hear and to transcribe
    assert KNEE < 1.0


def test_the_context_each_side_of_a_cut_is_enough_and_less_is_not(tts: Synthesizer) -> None:
    """Decoded in two with CONTEXT frames on each side, a sentence is its whole run to
    float rounding; with 8 (less than the decoder's reach) it is audibly not."""
    ids = next(tts._sentences(LONG))
    made, frames, timed = tts._front(ids, 1.0, True)
    whole = np.concatenate(list(tts._back(made, frames, timed, [(0, frames)], 0)))
    spans = [(0, FIRST_FRAMES), (FIRST_FRAMES, frames)]

    def error(ctx: int) -> float:
        joined = np.concatenate(list(tts._back(made, frames, timed, spans, ctx)))
        assert len(joined) == len(whole)
        return float(np.abs(joined - whole).max())

    assert error(CONTEXT) < 1e-5
    assert error(12) < 1e-5  # what the decoder's layers reach (tts.CONTEXT)
    assert error(8) > 1e-5
    assert error(0) > 1e-3


def test_a_voice_that_does_not_cut_runs_whole(voice_path: Path, tmp_path: Path) -> None:
    """An export whose nodes are not named for the decoder: piper's own whole run."""
    renamed = tmp_path / "voice.onnx"
    renamed.write_bytes(voice_path.read_bytes().replace(b"/dec/", b"/xyz/"))
    shutil.copy(f"{voice_path}.json", f"{renamed}.json")
    tts = Synthesizer(renamed)
    assert not tts.cut and not tts.streams
    pieces = list(tts.stream(TWO, steady=True))
    assert len(pieces) == 2  # one a sentence
    assert int(np.abs(pieces[0]).max()) == 32767  # piper's own per-sentence peak level


def test_a_fresh_voice_measures_nothing_and_cuts_once_it_has_spoken(voice_path: Path) -> None:
    """Loading only cuts the model (no inference: under emulation a sentence takes
    minutes). The first sentence is decoded whole at its own level (LEVEL of full
    scale); from then on the voice has a gain and a long first sentence is cut."""
    tts = Synthesizer(voice_path)
    assert tts.cut and not tts.streams
    first = list(tts.stream(LONG, steady=True))
    assert len(first) == 1
    assert int(np.abs(first[0]).max()) == int(LEVEL * 32767)
    assert tts.streams
    again = list(tts.stream(LONG, steady=True))
    assert len(again) == 2 and len(again[0]) == FIRST_FRAMES * HOP
    # The same sentence at the same gain: the second time is the first, cut.
    assert abs(int(np.abs(np.concatenate(again)).max()) - int(LEVEL * 32767)) <= 2
