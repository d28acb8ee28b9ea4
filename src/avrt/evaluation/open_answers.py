"""Matching open-ended answers (MUSIC-AVQA) against a gold answer word or phrase.

MUSIC-AVQA answers are one of 42 words or phrases ("yes", "two", "acoustic_guitar", "more than
ten"). Both sides are normalised the same way before comparing: lower case, `_` and `-` as
spaces, punctuation dropped, digits 0-10 written as words (the gold uses words), a leading
article dropped. Nothing else is forgiven: "guitar" does not match "acoustic_guitar".
"""

from __future__ import annotations

import re

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_ARTICLE = re.compile(r"^(?:the|a|an) ")


def normalise_answer(text: str) -> str:
    text = re.sub(r"[_\-]", " ", text.lower())
    text = re.sub(r"[^\w\s]", " ", text)
    words = [_NUMBER_WORDS[int(w)] if w.isdigit() and int(w) <= 10 else w for w in text.split()]
    return _ARTICLE.sub("", " ".join(words))


def answers_equal(prediction: str, gold: str) -> bool:
    """The whole prediction is the gold answer, after normalisation."""
    return normalise_answer(prediction) == normalise_answer(gold)


def answer_mentioned(output: str, gold: str) -> bool:
    """The gold answer occurs as a whole word or phrase anywhere in the output, after normalisation.

    This is the substring convention LLM evaluations use on MUSIC-AVQA. It is lenient: an output
    that mentions both "yes" and "no" matches either gold.
    """
    phrase = normalise_answer(gold)
    return bool(phrase) and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", normalise_answer(output)) is not None
