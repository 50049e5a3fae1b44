"""The voice package's exceptions: one base, callers catch by category."""

from __future__ import annotations

from appliance.errors import ApplianceError


class VoiceError(ApplianceError):
    """Base of every voice failure."""


class AudioFormatError(VoiceError):
    """Audio that cannot be used: not a WAV, a format we cannot read, empty, silent, too long."""


class AudioTooLong(AudioFormatError):
    """Audio over the configured bounds in bytes or seconds."""


class TextError(VoiceError):
    """Text that cannot be spoken: empty or too long."""


class ModelLoadError(VoiceError):
    """A voice model (Whisper, Piper, Silero) is missing or broken."""


class AudioDeviceError(VoiceError):
    """An ALSA device could not be opened or died."""
