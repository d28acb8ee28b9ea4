"""Reading answers out of teacher outputs, checking merger outputs and fact-check verdicts.

Teachers answer in their own styles: "Answer: (D) Action movie", "**Answer:** D", "The answer
is (B).", "answer: b) ...", a bare option text; thinking models first write a block between
``<think>`` and ``</think>`` (Kimi-VL-Thinking: ``◁think▷`` and ``◁/think▷``). The answer is read
from the text after that block, and the result says how it was found. Nothing is guessed: an
output that states no option, or states two, gets a status that says so and no letter.

Where the answer is looked for, in order (the first place holding an answer statement decides):
1. answer lines: "Answer: ...", "Final answer: ...", "**Answer:** ...", and ``<answer>...</answer>``;
2. phrases such as "the answer is (B)", "the most suitable choice is D." or "(B) is correct";
3. the last line, when it is a bare letter ("D", "(D)", "(D) <that option's text>") or exactly
   one option's text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

from avrt.core import answers


class ParseStatus(StrEnum):
    OK = "ok"  # an option letter is stated
    OK_OPTION_TEXT = "ok_option_text"  # no letter, but the stated text is exactly one option's
    AMBIGUOUS = "ambiguous"  # different options stated, or a text equal to several options
    OUT_OF_RANGE = "out_of_range"  # a letter beyond the item's options
    UNMATCHED_TEXT = "unmatched_text"  # an answer line whose content is no option
    UNCLOSED_THINK = "unclosed_think"  # the thinking block never ends (output cut off)
    NO_ANSWER = "no_answer"  # no answer statement at all


USABLE_STATUSES = frozenset({ParseStatus.OK, ParseStatus.OK_OPTION_TEXT})


@dataclass(frozen=True)
class ParsedAnswer:
    """What a teacher output says, ready to be written as part of a trace row."""

    status: ParseStatus
    letter: str | None  # set only for a usable status
    reasoning: str  # the response without its answer line(s); the thinking if that is empty
    reasoning_source: str  # "response", "thinking" or "none"
    thinking: str | None  # the thinking block's content, None when there is none
    span: tuple[int, int] | None  # where the deciding answer statement is in the output
    matched: str | None  # that statement's text

    @property
    def ok(self) -> bool:
        return self.status in USABLE_STATUSES

    @property
    def index(self) -> int | None:
        return None if self.letter is None else ord(self.letter) - ord("A")

    def to_dict(self) -> dict:
        row = asdict(self)
        row["status"] = str(self.status)
        row["span"] = list(self.span) if self.span else None
        return row


_THINK_OPEN = re.compile(r"<think>|◁think▷")
_THINK_CLOSE = re.compile(r"</think>|◁/think▷")

_ANSWER_LINE = re.compile(
    r"(?:^|(?<=[.!?])[ \t]+)[ \t>#*_-]*"  # a line start or a sentence end, then markdown
    r"(?:the[ \t]+)?(?:final[ \t]+|correct[ \t]+)?answer[ \t*_]*[:：][ \t*_]*"
    r"(?P<body>[^\n]*)",
    re.IGNORECASE | re.MULTILINE,
)
_ANSWER_TAG = re.compile(r"<answer>(?P<body>.*?)</answer>", re.IGNORECASE | re.DOTALL)
# The cue only: its statement runs to the end of the sentence, where the next cue may start.
_ANSWER_PHRASE = re.compile(
    r"\b(?:answer|option|choice)\s+(?:is|would\s+be|should\s+be|will\s+be)\b[ \t*_]*:?[ \t*_]*",
    re.IGNORECASE,
)
# "(B) is correct", "option B is the best": a letter named before its verdict.
_LETTER_IS_CORRECT = re.compile(
    r"(?:\((?P<paren>[A-Za-z])\)|\b(?:option|choice)\s+\(?(?P<named>[A-Za-z])\)?)"
    r"\s+is\s+(?:the\s+)?(?:correct|right|best)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")

# "Option B", "the correct answer is B" in front of a letter.
_LEAD_WORDS = re.compile(
    r"^(?:the\s+)?(?:(?:correct|final|best|right)\s+)?(?:answer|option|choice)\b"
    r"(?:\s+(?:is|would\s+be|should\s+be|will\s+be)\b)?\s*:?\s*",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_TWO_LETTERS = re.compile(r"^\(?([A-Za-z])\)?\s*(?:or|and|/|,|&)\s*\(?([A-Za-z])\)?(?![A-Za-z])")
# "(D)", "[D]", "D)", "D.", "D:", "D," or a bare "D"; the option text may follow.
_LETTER = re.compile(r"^(?:\(\s*([A-Za-z])\s*\)|\[([A-Za-z])\]|([A-Za-z])(?=\)|[.:,](?:\s|$)|$))")
# "D Action movie": read as a letter only when the words are that option's text.
_LETTER_THEN_WORDS = re.compile(r"^([A-Z])\s+(\S.*)$", re.DOTALL)
_EDGE_NOISE = " \t\n*_`\"'“”‘’"
_NON_WORD = re.compile(r"[\W_]+")
_ARTICLE = re.compile(r"^(?:a|an|the) ")


@dataclass(frozen=True)
class _Reading:
    """One answer statement and what it resolves to."""

    start: int
    end: int
    letters: frozenset[str]  # empty: the statement names no option
    by_text: bool = False  # named by its text rather than its letter
    removable: bool = True  # an answer line to drop from the reasoning


def parse_teacher_answer(text: str, choices: Sequence[str]) -> ParsedAnswer:
    """Read the chosen option from a teacher's output; `choices` are the item's option texts."""
    n_options = len(choices)
    thinking, response_start, closed = _split_thinking(text)
    if not closed:
        return _result(ParseStatus.UNCLOSED_THINK, None, text, "", thinking, response_start, [], None)
    response = text[response_start:]
    for tier in (_answer_lines, _answer_phrases, _final_line):
        readings = tier(response, choices)
        if not readings:
            continue
        named = [r for r in readings if r.letters]
        if not named:
            if tier is _answer_lines:
                status = ParseStatus.UNMATCHED_TEXT
                return _result(status, None, text, response, thinking, response_start, readings, readings[-1])
            continue
        letters = frozenset().union(*(r.letters for r in named))
        if len(letters) > 1:
            status, letter = ParseStatus.AMBIGUOUS, None
        elif ord(next(iter(letters))) - ord("A") >= n_options:
            status, letter = ParseStatus.OUT_OF_RANGE, None
        else:
            letter = next(iter(letters))
            status = ParseStatus.OK_OPTION_TEXT if all(r.by_text for r in named) else ParseStatus.OK
        return _result(status, letter, text, response, thinking, response_start, readings, named[-1])
    return _result(ParseStatus.NO_ANSWER, None, text, response, thinking, response_start, [], None)


def _split_thinking(text: str) -> tuple[str | None, int, bool]:
    """(thinking, where the response starts, whether the thinking block ended).

    The block ends at the last closing marker; a closing marker without an opening one is a
    block whose opening marker was part of the prompt (chat templates that start thinking).
    """
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        last = closes[-1]
        thinking = _THINK_CLOSE.sub("", _THINK_OPEN.sub("", text[: last.start()])).strip()
        return thinking, last.end(), True
    opening = _THINK_OPEN.search(text)
    if opening:
        return text[opening.end() :].strip(), len(text), False
    return None, 0, True


def _answer_lines(response: str, choices: Sequence[str]) -> list[_Reading]:
    readings = []
    for m in _ANSWER_LINE.finditer(response):
        body, end = m.group("body"), m.end()
        if not _clean(body):  # "Answer:" alone on its line: the answer is on the next one
            following = re.match(r"\s*\n([^\n]*)", response[m.end() :])
            if following:
                body, end = following.group(1), m.end() + following.end()
        start = m.start() + len(m.group(0)) - len(m.group(0).lstrip(" \t"))
        readings.append(_Reading(start, end, *_resolve(body, choices)))
    for m in _ANSWER_TAG.finditer(response):
        readings.append(_Reading(m.start(), m.end(), *_resolve(m.group("body"), choices)))
    return sorted(readings, key=lambda r: r.start)


def _answer_phrases(response: str, choices: Sequence[str]) -> list[_Reading]:
    readings = []
    for m in _ANSWER_PHRASE.finditer(response):
        line_end = response.find("\n", m.end())
        body = response[m.end() : len(response) if line_end == -1 else line_end]
        cut = _SENTENCE_END.search(body)
        if cut:
            body = body[: cut.start()]
        end = m.end() + len(body)
        # The phrase sits inside the prose: it stays in the reasoning.
        readings.append(_Reading(m.start(), end, *_resolve(body, choices), removable=False))
    for m in _LETTER_IS_CORRECT.finditer(response):
        letter = (m.group("paren") or m.group("named")).upper()
        readings.append(_Reading(m.start(), m.end(), frozenset({letter}), removable=False))
    return sorted(readings, key=lambda r: r.start)


def _final_line(response: str, choices: Sequence[str]) -> list[_Reading]:
    stripped = response.rstrip()
    start = stripped.rfind("\n") + 1
    line = stripped[start:]
    if not _clean(line):
        return []
    letters, by_text = _resolve(line, choices, whole_line=True)
    return [_Reading(start + len(line) - len(line.lstrip()), len(stripped), letters, by_text)]


def _resolve(body: str, choices: Sequence[str], whole_line: bool = False) -> tuple[frozenset[str], bool]:
    """The option letter(s) a statement names, and whether it named them by option text.

    `whole_line`: the statement is a line with no answer cue, so only an exact letter or option
    text counts, never a letter followed by other words.
    """
    body = _clean(_BOXED.sub(r"\1", body))
    if not body:
        return frozenset(), False
    core = body if whole_line else _clean(_LEAD_WORDS.sub("", body, count=1))
    two = _TWO_LETTERS.match(core)
    if two and two.group(1).upper() != two.group(2).upper():
        return frozenset({two.group(1).upper(), two.group(2).upper()}), False
    m = _LETTER.match(core)
    if m:
        letter = next(g for g in m.groups() if g).upper()
        index = ord(letter) - ord("A")
        rest = _clean(core[m.end() :].lstrip(").:,"))
        by_text = _options_named_by(rest, choices) if rest else set()
        if whole_line and rest and index not in by_text:
            return frozenset(), False
        if by_text and index not in by_text:  # "(D) <the text of option A>": two answers
            return frozenset({letter} | {answers.option_letter(i) for i in by_text}), False
        return frozenset({letter}), False
    m = _LETTER_THEN_WORDS.match(core)
    if m and not whole_line:
        index = ord(m.group(1)) - ord("A")
        if index < len(choices) and index in _options_named_by(m.group(2), choices):
            return frozenset({m.group(1)}), False
    by_text = _options_named_by(body, choices)
    return frozenset(answers.option_letter(i) for i in by_text), bool(by_text)


def _options_named_by(text: str, choices: Sequence[str]) -> set[int]:
    """Indices of the options whose text equals `text` (case, punctuation, article ignored)."""
    key = _normalise(text)
    return {i for i, choice in enumerate(choices) if key and _normalise(str(choice)) == key}


def _normalise(text: str) -> str:
    return _ARTICLE.sub("", _NON_WORD.sub(" ", text.lower()).strip())


def _clean(text: str) -> str:
    return text.strip(_EDGE_NOISE)


def _result(
    status: ParseStatus,
    letter: str | None,
    text: str,
    response: str,
    thinking: str | None,
    offset: int,
    readings: list[_Reading],
    deciding: _Reading | None,
) -> ParsedAnswer:
    reasoning = _without(response, [r for r in readings if r.removable]).strip()
    source = "response"
    if not reasoning:
        reasoning, source = (thinking, "thinking") if thinking else ("", "none")
    span = (offset + deciding.start, offset + deciding.end) if deciding else None
    return ParsedAnswer(
        status=status,
        letter=letter,
        reasoning=reasoning,
        reasoning_source=source,
        thinking=thinking,
        span=span,
        matched=text[span[0] : span[1]] if span else None,
    )


def _without(response: str, readings: list[_Reading]) -> str:
    """`response` less the given answer statements; lines they leave empty go too."""
    kept, cursor = [], 0
    for r in sorted(readings, key=lambda r: r.start):
        if r.start < cursor:
            continue
        line_start = response.rfind("\n", 0, r.start) + 1
        line_end = response.find("\n", r.end)
        line_end = len(response) if line_end == -1 else line_end
        before, after = response[line_start : r.start], response[r.end : line_end]
        if not _clean(before) and not _clean(after.strip(".")):
            start, end = line_start, min(line_end + 1, len(response))
        else:
            start, end = r.start, r.end
        kept.append(response[cursor:start])
        cursor = end
    kept.append(response[cursor:])
    return "".join(kept)


class MergerStatus(StrEnum):
    OK = "ok"
    INVALID_FORMAT = "invalid_format"  # not exactly <think>...</think><answer>...</answer>
    INVALID_ANSWER = "invalid_answer"  # the answer block holds something other than a letter
    OUT_OF_RANGE = "out_of_range"  # a letter beyond the item's options


@dataclass(frozen=True)
class MergerCheck:
    """Whether a merged trace has the strict training format, and the letter it answers."""

    status: MergerStatus
    letter: str | None
    think: str | None  # the merged reasoning inside <think>

    @property
    def ok(self) -> bool:
        return self.status is MergerStatus.OK


def check_merger_output(text: str, n_options: int) -> MergerCheck:
    """Hold a merger output to the strict format that SFT traces and GRPO rewards use."""
    if not answers.is_strict_format(text):
        return MergerCheck(MergerStatus.INVALID_FORMAT, None, None)
    think = answers.think_text(text)
    letter = answers.strict_answer_letter(text, n_options)
    if letter is not None:
        return MergerCheck(MergerStatus.OK, letter, think)
    if answers.strict_answer_letter(text) is not None:
        return MergerCheck(MergerStatus.OUT_OF_RANGE, None, think)
    return MergerCheck(MergerStatus.INVALID_ANSWER, None, think)


@dataclass(frozen=True)
class FactCheckVerdict:
    """An audio checker's reply: a trace is accepted only on "yes" (SightSound-R1, Sec. 3.2)."""

    accepted: bool
    verdict: str | None  # "yes", "no", or None when the reply starts with neither


_VERDICT = re.compile(r"^(?:(?:final\s+)?(?:answer|verdict)[\s*_]*[:：][\s*_]*)?(yes|no)\b", re.IGNORECASE)


def parse_fact_check_verdict(text: str) -> FactCheckVerdict:
    _, response_start, closed = _split_thinking(text)
    m = _VERDICT.match(_clean(text[response_start:])) if closed else None
    verdict = m.group(1).lower() if m else None
    return FactCheckVerdict(accepted=verdict == "yes", verdict=verdict)


def response_text(text: str) -> str:
    """What a model said after its thinking block (the whole output when it did not think)."""
    _, start, closed = _split_thinking(text)
    return text[start:].strip() if closed else ""
