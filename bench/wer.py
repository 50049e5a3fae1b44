"""Words misheard: the word-level edit distance between what was said and what was heard."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    text = text.lower().replace("what's", "what is").replace("%", " percent")
    return re.sub(r"[^a-z0-9 ]+", " ", text).split()


def word_errors(said: str, heard: str) -> tuple[int, int]:
    """Edit distance in words between what was said and what was heard; words said."""
    ref, hyp = words(said), words(heard)
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1,
                                           diagonal + (ref[i - 1] != hyp[j - 1]))
    return row[len(hyp)], len(ref)
