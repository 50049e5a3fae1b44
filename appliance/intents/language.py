"""One language's intent data: hassil sentence files, answer texts and the words handlers read.

``sentences/<lang>/*.yaml`` are hassil templates (what people say);
``responses/<lang>.yaml`` holds what the assistant answers and the words the
handlers need beyond the templates (number words, arithmetic words, unit and
month names). Both ship inside the package; docs/intents.md explains how to
add a phrasing or a language.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from appliance.errors import ApplianceError

PACKAGE = "appliance.intents"


class LanguageError(ApplianceError):
    """A language is missing or its files are broken; the message names the file."""


@dataclass(frozen=True)
class Language:
    """Everything the handlers of one language read, loaded once."""

    code: str
    sentence_files: tuple[Path, ...]
    answers: dict[str, str]
    words: dict[str, Any]
    numbers: dict[str, Any]
    arithmetic: dict[str, str]
    spoken: dict[str, str]
    rewrites: tuple[tuple[re.Pattern[str], str], ...] = ()
    """``arithmetic_rewrites``: applied to arithmetic text before its words are read."""

    def say(self, answer: str, **fields: Any) -> str:
        """The answer named ``answer`` with ``fields`` filled in; LanguageError when missing."""
        template = self.answers.get(answer)
        if template is None:
            raise LanguageError(f"responses/{self.code}.yaml: no answer {answer!r}")
        text = template.format(**fields)
        return text[:1].upper() + text[1:]

    def unit(self, name: str, count: float) -> str:
        """``"minute"`` -> "minute" or "minutes" for ``count``."""
        singular, plural = self.words["units"][name]
        return singular if count == 1 else plural

    def join(self, items: list[str]) -> str:
        """"a, b and c"."""
        if len(items) <= 1:
            return "".join(items)
        return self.words["list_comma"].join(items[:-1]) + self.words["list_and"] + items[-1]


def available() -> list[str]:
    """Language codes with sentence files in the package."""
    root = resources.files(PACKAGE) / "sentences"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def load(code: str) -> Language:
    """The language ``code`` from the package data; LanguageError when absent or broken."""
    if code not in available():
        raise LanguageError(f"no intent sentences for language {code!r}; available: "
                            f"{', '.join(available()) or 'none'}")
    base = Path(str(resources.files(PACKAGE)))
    files = tuple(sorted((base / "sentences" / code).glob("*.yaml")))
    source = base / "responses" / f"{code}.yaml"
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LanguageError(f"{source}: {exc}") from None
    sections = ("answers", "words", "numbers", "arithmetic", "spoken")
    if not isinstance(data, dict) or any(not isinstance(data.get(s), dict) for s in sections):
        raise LanguageError(f"{source}: needs the mappings {', '.join(sections)}")
    for key, text in data["answers"].items():
        try:
            list(string.Formatter().parse(str(text)))
        except ValueError as exc:
            raise LanguageError(f"{source}: answers.{key}: {exc}") from None
    rewrites = []
    for i, pair in enumerate(data.get("arithmetic_rewrites") or []):
        try:
            pattern, replacement = pair
            rewrites.append((re.compile(str(pattern)), str(replacement)))
        except (ValueError, TypeError, re.error) as exc:
            raise LanguageError(f"{source}: arithmetic_rewrites[{i}]: {exc}") from None
    return Language(code=code, sentence_files=files, rewrites=tuple(rewrites),
                    answers={k: str(v) for k, v in data["answers"].items()},
                    words=data["words"], numbers=data["numbers"],
                    arithmetic={str(k): str(v) for k, v in data["arithmetic"].items()},
                    spoken={str(k): str(v) for k, v in data["spoken"].items()})
