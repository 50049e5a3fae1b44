"""The root of every error this project raises on purpose: catch ApplianceError for all of them.

Each part keeps its own tree under it (ConfigError, SecurityError, LLMError,
WorldError, VoiceError, ToolError, ...), so callers still catch by category;
an error that is also a ValueError or an OSError keeps that base as well.
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of the project's own errors; the message says in words what was wrong."""
