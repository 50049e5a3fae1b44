"""The chime played when the wake word is heard: two short rising tones, made, not shipped."""

from __future__ import annotations

import numpy as np

#: Each tone's length and pitch; the whole chime lasts TONE_S * 2.
TONE_S = 0.08
TONES_HZ = (880.0, 1320.0)
LEVEL = 0.3
FADE_S = 0.01


def chime(rate: int) -> np.ndarray:
    """The earcon as int16 mono at ``rate`` (the speaker's rate, so aplay is not restarted)."""
    n = int(TONE_S * rate)
    t = np.arange(n) / rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / FADE_S)
    tones = [np.sin(2 * np.pi * hz * t) * fade for hz in TONES_HZ]
    return (np.concatenate(tones) * LEVEL * 32767).astype(np.int16)
