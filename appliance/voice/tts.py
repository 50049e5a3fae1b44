"""Text to speech with piper, one sentence at a time. Blocking: call from a worker thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from appliance import hardware
from appliance.voice.errors import ModelLoadError


class Synthesizer:
    """A loaded piper voice; ``synthesize`` yields int16 mono chunks at ``sample_rate``."""

    def __init__(self, voice_path: Path, threads: int = 0) -> None:
        """``threads``: onnxruntime's threads for the voice; 0 means the physical cores this
        process may use (what onnxruntime would pick, but see ``_load``)."""
        config_path = Path(f"{voice_path}.json")
        if not voice_path.is_file() or not config_path.is_file():
            raise ModelLoadError(f"piper voice {voice_path} or its {config_path.name} is missing "
                                 "(run `hybrid-agent models fetch` or set voice.tts_voice)")
        try:
            self._voice = _load(voice_path, config_path,
                                threads or hardware.usable_physical_cores())
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot load the piper voice {voice_path}: {exc}") from exc
        except Exception as exc:  # onnxruntime raises its own types
            raise ModelLoadError(f"cannot load the piper voice {voice_path}: {exc}") from exc
        self.voice_path = voice_path
        self.sample_rate = int(self._voice.config.sample_rate)
        self._length_scale = float(self._voice.config.length_scale or 1.0)
        self._lock = threading.Lock()

    def synthesize(self, text: str, speed: float = 1.0, *, steady: bool = False,
                   ) -> Iterator[np.ndarray]:
        """One int16 array per sentence piper finds in ``text``; ``speed`` 2.0 talks twice
        as fast. piper draws its timing and timbre anew on each call; ``steady`` turns that
        variation off, so the same text is the same audio every time (for tests and
        benchmarks that must hear the same speech on each run)."""
        config = None
        if speed != 1.0 or steady:
            from piper import SynthesisConfig

            config = SynthesisConfig(length_scale=self._length_scale / speed)
            if steady:
                config.noise_scale = config.noise_w_scale = 0.0
        with self._lock:
            chunks = list(self._voice.synthesize(text, config))
        for chunk in chunks:
            yield chunk.audio_int16_array

    def synthesize_all(self, text: str, speed: float = 1.0, *, steady: bool = False,
                       ) -> np.ndarray:
        parts = list(self.synthesize(text, speed, steady=steady))
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def _load(voice_path: Path, config_path: Path, threads: int) -> Any:
    """piper's voice with onnxruntime's threads counted and told not to spin.

    Left to count them itself (``intra_op_num_threads`` 0), onnxruntime pins each of
    its threads, and the calling one, to a core of its choosing (``sched_setaffinity``).
    The shipped unit forbids that syscall (``SystemCallFilter=~@resources``), so the
    same daemon ran pinned without the sandbox and unpinned under the unit: on the
    emulated arm64 box, with other work on the same cores, piper was 1.4x slower
    pinned. Counted, the threads are never pinned, and the scheduler may move them off
    a core the LLM holds (issue 21).

    Spinning waits for a core that another process (the LLM, a test suite) holds, and
    under emulation costs more than the work: a 1.2 s sentence took 1050 s in an
    emulated arm64 box. Measured on this box's x86 quiet, not spinning is as fast
    (real-time factor 0.084 vs 0.090). Otherwise as ``PiperVoice.load``.
    """
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.voice import ESPEAK_DATA_DIR

    with open(config_path, encoding="utf-8") as fh:
        config = PiperConfig.from_dict(json.load(fh))
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(voice_path), sess_options=opts,
                                           providers=["CPUExecutionProvider"])
    return PiperVoice(config=config, session=session, espeak_data_dir=Path(ESPEAK_DATA_DIR),
                      download_dir=Path.cwd())
