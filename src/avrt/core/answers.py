"""The strict output format shared by the merger check, the GRPO format reward and evaluation.

A well-formed output is exactly ``<think>...</think><answer>...</answer>`` (whitespace allowed
between and around the two blocks) with no repeated tag; the answer is one option letter.
"""

from __future__ import annotations

import re

# EchoInk's strict pattern, extended to closing tags: no second <think>, </think>, <answer> or
# </answer> anywhere (an orphan </answer> is the paper's GRPO failure case), nothing outside the blocks.
STRICT_FORMAT = re.compile(
    r"^\s*(?!.*<think>.*<think>)(?!.*<answer>.*<answer>)(?!.*</think>.*</think>)(?!.*</answer>.*</answer>)"
    r"<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*$",
    re.DOTALL,
)
ANSWER_BLOCK = re.compile(r"<answer>\s*(?P<body>.*?)\s*</answer>", re.DOTALL)
LETTER_ONLY = re.compile(r"^\(?(?P<letter>[A-Z])\)?\.?$")


def is_strict_format(text: str) -> bool:
    """True when `text` is exactly one think block followed by one answer block."""
    return STRICT_FORMAT.match(text) is not None


def think_text(text: str) -> str | None:
    """The reasoning inside <think> of a strictly formatted output, else None."""
    m = STRICT_FORMAT.match(text)
    return m.group("think") if m else None


def strict_answer_letter(text: str, n_options: int = 26) -> str | None:
    """The option letter in the single <answer> block, or None.

    Accepts ``B``, ``(B)`` and ``B.`` inside the tags; a letter beyond the item's options, two
    answer blocks, or anything else inside the block gives None (an invalid-format answer).
    """
    blocks = ANSWER_BLOCK.findall(text)
    if len(blocks) != 1:
        return None
    m = LETTER_ONLY.match(blocks[0].strip())
    if not m:
        return None
    letter = m.group("letter")
    return letter if ord(letter) - ord("A") < n_options else None


def option_letter(index: int) -> str:
    return chr(ord("A") + index)
