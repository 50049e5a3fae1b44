"""Run each in-process inference engine once; print one line per engine; exit 1 if one fails.

Copied into the e2e container and run with the installed venv's python under
``systemd-run -p MemoryDenyWriteExecute=...`` to see which engines work in that
sandbox. Usage: inference_probe.py MODELS_DIR ENGINE...  (llama, piper, whisper)
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path


def llama(models: Path) -> str:
    # The daemon's own engine, as the unit runs it (llama-cpp-python's Llama class cannot
    # turn off the weight repacking that crashes on AMX CPUs: llm.weight_repack).
    import asyncio

    from appliance.llm.chat import ChatRequest
    from appliance.llm.engine import Engine, EngineSettings

    async def answer() -> str:
        gguf = models / "llm/SmolLM2-135M-Instruct.Q4_1.gguf"
        engine = Engine(EngineSettings(model_path=gguf, model_id=gguf.stem, context=256,
                                       threads=2, slots=1, queue=0, max_tokens=8))
        await engine.start()
        try:
            request = ChatRequest(messages=[], prompt="The capital of France is",
                                  temperature=0)
            return "".join([c.content async for c in engine.stream(request)])
        finally:
            await engine.stop()

    return repr(asyncio.run(answer()))


def piper(models: Path) -> str:
    from piper import PiperVoice

    voice = PiperVoice.load(str(models / "piper/en_US-joe-medium.onnx"))
    samples = sum(len(chunk.audio_int16_bytes) // 2 for chunk in voice.synthesize("Hello."))
    return f"{samples} samples"


def whisper(models: Path) -> str:
    import numpy as np
    from faster_whisper import WhisperModel

    model = WhisperModel(str(models / "whisper-base"), device="cpu", compute_type="int8")
    segments, info = model.transcribe(np.zeros(16000 * 2, dtype=np.float32), language="en")
    return f"{len(list(segments))} segments, {info.duration:.1f} s"


def main() -> int:
    models = Path(sys.argv[1])
    failed = 0
    for name in sys.argv[2:]:
        try:
            print(f"{name}: ok: {globals()[name](models)}", flush=True)
        except BaseException as exc:
            failed += 1
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
