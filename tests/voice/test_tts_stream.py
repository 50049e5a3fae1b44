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
    MARGIN,
    MIN_CUT_FRAMES,
    Synthesizer,
    plan,
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


def test_a_long_first_sentence_comes_in_pieces_that_join_into_the_whole(
        tts: Synthesizer) -> None:
    assert tts.cut and tts.streams
    whole = tts.synthesize_all(TWO, steady=True)
    sentences = [len(s) for s in tts.synthesize(TWO, steady=True)]  # one array a sentence
    _quiet(tts)
    pieces = list(tts.stream(TWO, steady=True))
    # The first sentence's first frames first; then the rest, in as many pieces as this
    # box's speed asks for (two in all on a quiet box, more on a loaded one).
    assert len(pieces) >= 3, [len(p) for p in pieces]
    assert len(pieces[0]) == FIRST_FRAMES * HOP
    ends = set(np.cumsum([len(p) for p in pieces]).tolist())
    assert sentences[0] in ends  # no piece spans two sentences
    joined = np.concatenate(pieces)
    assert len(joined) == len(whole) == sum(sentences)
    assert int(np.abs(joined.astype(np.int32) - whole.astype(np.int32)).max()) <= 2


FRAME_S = HOP / 22050  # seconds of audio a frame


def _listen(sentences: list[int], per_frame: float, *, paced: bool, front_s: float = 0.0,
            ) -> tuple[list[int], float]:
    """Sentences of these many frames streamed by :func:`plan` on a box whose decoder
    takes ``per_frame`` seconds a frame (a piece of n frames costs n plus its context) and
    the part before it ``front_s`` a sentence, played from the first piece: the pieces'
    sizes and the seconds the listener waits after the first audio. ``paced`` False is
    the stream before pacing: a first sentence of 128 frames or more in two, else whole."""
    clock, ends, sizes, stalled = 0.0, None, [], 0.0
    for i, frames in enumerate(sentences):
        clock += front_s
        pos = 0
        while pos < frames:
            ahead = None if ends is None else max(0.0, ends - clock)
            if paced:
                stop = plan(pos, frames, ahead, per_frame, FRAME_S)
            else:
                stop = pos + FIRST_FRAMES if i == pos == 0 and frames >= 128 else frames
            clock += per_frame * (stop - pos + (CONTEXT if pos else 0)
                                  + (CONTEXT if stop < frames else 0))
            if ends is not None and clock > ends:
                stalled += clock - ends
            ends = max(ends or clock, clock) + (stop - pos) * FRAME_S
            sizes.append(stop - pos)
            pos = stop
    return sizes, stalled


def test_each_next_piece_is_planned_to_be_ready_before_the_audio_ahead_runs_out() -> None:
    # Before the first piece: FIRST_FRAMES if the sentence is long enough to cut.
    assert plan(0, 270, None, None, FRAME_S) == FIRST_FRAMES
    assert plan(0, MIN_CUT_FRAMES - 1, None, None, FRAME_S) == MIN_CUT_FRAMES - 1
    # A fast box (this one quiet: ~0.4 ms a frame): the first piece, then the rest at once.
    assert plan(0, 270, None, 0.0004, FRAME_S) == FIRST_FRAMES
    assert plan(FIRST_FRAMES, 270, 0.37, 0.0004, FRAME_S) == 270
    assert _listen([270], 0.0004, paced=True) == ([FIRST_FRAMES, 270 - FIRST_FRAMES], 0.0)
    # A slow board (3 ms a frame, about a Raspberry Pi 4's piper medium): the rest does not
    # fit in the 0.37 s ahead, so a piece that does, then larger ones as the audio ahead grows.
    assert plan(0, 270, None, 0.003, FRAME_S) == FIRST_FRAMES
    stop = plan(FIRST_FRAMES, 270, 0.37, 0.003, FRAME_S)
    assert FIRST_FRAMES < stop < 270
    assert 0.003 * (stop - FIRST_FRAMES + 2 * CONTEXT) <= MARGIN * 0.37
    sizes, stalled = _listen([270], 0.003, paced=True)
    assert stalled == 0.0 and len(sizes) > 2 and sizes[1:-1] == sorted(sizes[1:-1]), sizes
    _, unpaced = _listen([270], 0.003, paced=False)
    assert unpaced > 0.3  # before pacing: "Tomorrow will", then this long a silence
    # Slower (6 ms, half of real time): pieces of FIRST_FRAMES cannot keep ahead, so a
    # longer first piece, the least that lets the rest keep ahead: later, and no pause.
    first = plan(0, 270, None, 0.006, FRAME_S)
    assert FIRST_FRAMES < first < 270
    sizes, stalled = _listen([270], 0.006, paced=True)
    assert sizes[0] == first and stalled == 0.0, sizes
    assert _listen([270], 0.006, paced=False)[1] > 1.0
    # Fallen behind after a piece (no piece fits in what is ahead): the listener waits for
    # the least piece after which the rest keeps ahead; one that would leave too little
    # to be worth a run takes the rest.
    stop = plan(FIRST_FRAMES, 270, 0.37, 0.006, FRAME_S)
    assert 2 * FIRST_FRAMES <= stop < 270
    assert plan(FIRST_FRAMES, FIRST_FRAMES + 40, 0.37, 0.003, FRAME_S) == FIRST_FRAMES + 40
    # Slower than real time (20 ms a frame): most of it first, still sooner than whole;
    # so slow that even the last FIRST_FRAMES would not keep ahead: the sentence whole.
    sizes, stalled = _listen([270], 0.02, paced=True)
    assert 270 / 2 < sizes[0] < 270 and stalled == 0.0, sizes
    assert plan(0, 270, None, 0.05, FRAME_S) == 270


def test_a_short_sentence_then_a_long_one_pauses_less() -> None:
    """"Okay. I have added milk, eggs, bread and ..." on the slow board: the long second
    sentence's text part runs while "Okay." plays; before pacing it was then decoded
    whole, long after "Okay." had ended."""
    sizes, paced = _listen([57, 300], 0.003, paced=True, front_s=0.5)
    _, unpaced = _listen([57, 300], 0.003, paced=False, front_s=0.5)
    assert sizes[0] == 57 and len(sizes) > 2, sizes
    assert unpaced > 0.6 and paced < 0.1 * unpaced, (paced, unpaced)


def _quiet(tts: Synthesizer) -> None:
    """The decoder's speed as this box's when quiet (0.4 ms a frame): the first piece is
    FIRST_FRAMES however loaded the box was on the runs before (a slow run makes a slow
    board's longer first piece: the pacing test above)."""
    assert tts._parts is not None
    tts._parts.per_frame = 0.0004


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
    _quiet(tts)
    again = list(tts.stream(LONG, steady=True))
    assert len(again) >= 2 and len(again[0]) == FIRST_FRAMES * HOP
    # The same sentence at the same gain: the second time is the first, cut.
    assert abs(int(np.abs(np.concatenate(again)).max()) - int(LEVEL * 32767)) <= 2
