"""The prompt files of ``avrt/core/prompts/`` (package data) and their rendering for one sample.

A prompt id names ``prompts/<id>.txt``. The file holds the template verbatim (see
``prompts/README.md`` for where each text comes from); its SHA-256 goes into every row a
prompt produces, so a trace can always be tied to the exact text that made it.

Options are rendered as in the example of the paper's visual-teacher prompt (Fig. 0.B.1)::

    What type of activity is happening in this video? Choose one among the following options:(A) ...
    (B) ...
    (C) ...
    (D) ...

with a newline after every option. A template without placeholders (the two AVRT teacher
prompts, which end with "Here is the input question:") gets that question block appended after
one space; the other templates name their fields as ``{question}{formatted_choices}`` etc.
The merger and fact-check renderers take no answer argument: the ground truth has no way in.
The trace judge's renderers (paper appendix 0.A.1) do take it: the paper's judge sees the
ground truth, and fills labelled fields (``Question:``, ``Answer Choices:``, ...) instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from avrt.core.answers import option_letter

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
CHOICES_INTRO = "Choose one among the following options:"

_PROMPT_ID = re.compile(r"^[a-z0-9_]+$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Fields each kind of prompt may name; a template naming anything else is rejected on render.
QUESTION_FIELDS = frozenset({"question", "formatted_choices"})
_VIDEO_WORD = re.compile(r"\b([Vv])ideo(s?)\b")


def audio_text_question(question: str) -> str:
    """R1-AQA's audio-text AVQA question: every word "video" becomes "audio" (case kept).

    SightSound-R1's audio student reads its questions this way wherever it reads one: its SFT
    traces, its GRPO prompts and its evaluation (`avrt.core.config.audio_text_questions`).
    """
    return _VIDEO_WORD.sub(lambda m: ("A" if m.group(1) == "V" else "a") + "udio" + m.group(2), question)
MERGER_FIELDS = QUESTION_FIELDS | {"audio_reasoning", "vision_reasoning"}
FACT_CHECK_FIELDS = QUESTION_FIELDS | {"reasoning"}
# The trace judge (paper appendix 0.A.1) is shown the ground truth, as the paper's judge was.
JUDGE_FIELDS = frozenset({"question", "choices", "answer", "trace"})
SOURCE_FIELDS = frozenset({"question", "choices", "answer", "audio_reasoning", "vision_reasoning", "merged_trace",
                           "previous_evaluation"})


class UnknownPromptError(LookupError):
    """A prompt id with no file behind it."""


@dataclass(frozen=True)
class Prompt:
    """One prompt template as stored on disk."""

    prompt_id: str
    text: str  # the file's content less its final newline
    sha256: str  # of the file's bytes
    path: Path

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.findall(self.text))


def known_prompt_ids(directory: Path = PROMPTS_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.txt"))


def load_prompt(prompt_id: str, directory: Path = PROMPTS_DIR) -> Prompt:
    """Read ``<directory>/<prompt_id>.txt``; an unknown id names the ids that exist."""
    path = Path(directory) / f"{prompt_id}.txt"
    if not _PROMPT_ID.match(prompt_id) or not path.is_file():
        known = ", ".join(known_prompt_ids(directory)) or "none"
        raise UnknownPromptError(f"unknown prompt id {prompt_id!r}; known prompt ids in {directory}: {known}")
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    # Editors end files with a newline; the template itself ends where the paper's text ends.
    if text.endswith("\n"):
        text = text[:-1]
    return Prompt(prompt_id=prompt_id, text=text, sha256=hashlib.sha256(raw).hexdigest(), path=path)


def format_choices(choices: Sequence[str]) -> str:
    """The options block that follows a question: ``" Choose one among ...:(A) x\\n(B) y\\n"``."""
    if isinstance(choices, str) or not 1 <= len(choices) <= 26:
        raise ValueError(f"expected a list of 1 to 26 option texts, got {choices!r}")
    lines = []
    for index, choice in enumerate(choices):
        text = str(choice).strip()
        if not text:
            raise ValueError(f"option {option_letter(index)} is empty in {list(choices)!r}")
        lines.append(f"({option_letter(index)}) {text}\n")
    return f" {CHOICES_INTRO}" + "".join(lines)


def question_block(question: str, choices: Sequence[str]) -> str:
    """The question followed by its options, as the paper's prompts show them."""
    question = question.strip()
    if not question:
        raise ValueError("the question text is empty")
    return question + format_choices(choices)


def render_teacher_prompt(prompt: Prompt, *, question: str, choices: Sequence[str]) -> str:
    """A teacher's user text: the template with the question filled in or appended."""
    if not prompt.placeholders:
        return f"{prompt.text} {question_block(question, choices)}"
    return _fill(prompt, QUESTION_FIELDS, _question_fields(question, choices))


def render_merger_prompt(
    prompt: Prompt,
    *,
    question: str,
    choices: Sequence[str],
    audio_reasoning: str,
    vision_reasoning: str,
) -> str:
    """The merger's input: question, options and both teacher traces, never the answer."""
    values = _question_fields(question, choices)
    values.update(audio_reasoning=audio_reasoning.strip(), vision_reasoning=vision_reasoning.strip())
    return _fill(prompt, MERGER_FIELDS, values)


def render_fact_check_prompt(prompt: Prompt, *, question: str, choices: Sequence[str], reasoning: str) -> str:
    """The audio-grounded fact verification (AGFV) input: a trace to check against the audio."""
    values = _question_fields(question, choices)
    values.update(reasoning=reasoning.strip())
    return _fill(prompt, FACT_CHECK_FIELDS, values)


def judged_question_fields(question: str, choices: Sequence[str], gold_letter: str) -> dict[str, str]:
    """The judge prompts' labelled fields: `{question}`, `{choices}` (one `(A) text` per line) and
    `{answer}`, the ground truth as `(B) text`."""
    lines = format_choices(choices)[len(f" {CHOICES_INTRO}") :].splitlines()
    letters = [option_letter(i) for i in range(len(lines))]
    if gold_letter not in letters:
        raise ValueError(f"answer {gold_letter!r} is not one of the options {letters} of {list(choices)!r}")
    question = question.strip()
    if not question:
        raise ValueError("the question text is empty")
    return {"question": question, "choices": "\n".join(lines), "answer": lines[letters.index(gold_letter)]}


def render_judge_prompt(prompt: Prompt, *, question: str, choices: Sequence[str], gold_letter: str, trace: str) -> str:
    """The trace judge's input: the question, its options, the ground truth and one trace."""
    values = judged_question_fields(question, choices, gold_letter)
    values.update(trace=trace.strip())
    return _fill(prompt, JUDGE_FIELDS, values)


def render_source_prompt(prompt: Prompt, *, question: str, choices: Sequence[str], gold_letter: str,
                         audio_reasoning: str, vision_reasoning: str, merged_trace: str,
                         previous_evaluation: str) -> str:
    """The hallucination source analysis input (paper Fig. 0.A.5): the question with its ground
    truth, both teachers' texts, the merged trace and the first judge's verdict."""
    values = judged_question_fields(question, choices, gold_letter)
    values.update(audio_reasoning=audio_reasoning.strip(), vision_reasoning=vision_reasoning.strip(),
                  merged_trace=merged_trace.strip(), previous_evaluation=previous_evaluation.strip())
    return _fill(prompt, SOURCE_FIELDS, values)


def _question_fields(question: str, choices: Sequence[str]) -> dict[str, str]:
    block = question_block(question, choices)
    return {"question": question.strip(), "formatted_choices": block[len(question.strip()) :]}


def _fill(prompt: Prompt, fields: frozenset[str], values: Mapping[str, str]) -> str:
    """Substitute every field in one pass, so that text inside a value is never re-read."""
    if prompt.placeholders != fields:
        raise ValueError(
            f"prompt {prompt.prompt_id!r} ({prompt.path}) has placeholders "
            f"{sorted(prompt.placeholders)}; this kind of prompt needs exactly {sorted(fields)}"
        )
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], prompt.text)


def render_student_prompt(prompt: Prompt, *, question: str, choices: Sequence[str]) -> str:
    """The student's user text (SFT, GRPO, evaluation); open-ended items have no options."""
    if choices:
        return _fill(prompt, QUESTION_FIELDS, _question_fields(question, choices))
    return _fill(prompt, frozenset({"question"}), {"question": question.strip()})
