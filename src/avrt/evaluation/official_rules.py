"""Each benchmark's official answer rule, reproduced with its quirks, as a second score column.

A rule sees what the benchmark's own script would see: the model's raw output. Our strict
column (`<answer>` extraction, see `scoring.py`) is the one the result tables show; this column
exists to compare with numbers published with the official scripts. Where an official script
drops items from its denominator (Daily-Omni: failed items; Video-MME: answers with no letter),
we do not: every item counts, and an item without a prediction or with missing media is wrong.

Sources, read at these revisions:
- Daily-Omni `test_model/Qwen2.5-Omni/testmodel.py` (Lliar-liar/Daily-Omni @b8bbbf4): the text
  after the first "assistant" if present, else the whole output, must start (after whitespace)
  with A-D, in either case.
- OmniBench `inference/answer_parsing.py` (@21a7f75) and `calculate_metrics.py` (@335f0ba): MMMU-style
  parsing; the gold letter is parsed from the answer text by the same parser, so an answer text
  such as "A man is answering some questions" (really option C) has official gold "A".
- Video-MME `evaluation/eval_your_results.py` (@4e7566d): strip answer prefixes, then the
  first capital A-D anywhere.
- MMAR `code/evaluation.py` and MMAU `evaluation.py`: `string_match` of the answer text. These
  scripts expect answer text; a letter is mapped to its option's text first (a bare letter
  would always fail).
- MUSIC-AVQA has no official rule for generative models (its metric is classifier accuracy over
  the 42 answers); the second column is the substring convention of LLM evaluations.
AVQA and RivaBench ship no scorer; they have no second column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from avrt.core.answers import LETTER_ONLY, option_letter, strict_answer_letter
from avrt.evaluation.open_answers import answer_mentioned
from avrt.evaluation.records import BenchmarkRecord


@dataclass(frozen=True)
class OfficialJudgement:
    prediction: str | None  # what the rule extracted: a letter, or the text it matched
    correct: bool
    gold: str | None = None  # the gold letter the rule derives itself (OmniBench), "N/A" if none


# --- Daily-Omni -------------------------------------------------------------------------------
_DAILYOMNI_AFTER_ASSISTANT = re.compile(r"assistant\s*([\s\S]*)$")
_DAILYOMNI_LETTER = re.compile(r"\s*([A-D])", re.IGNORECASE)


def dailyomni_letter(output: str) -> str | None:
    m = _DAILYOMNI_AFTER_ASSISTANT.search(output)
    text = m.group(1).strip() if m else output
    letter = _DAILYOMNI_LETTER.match(text)
    return letter.group(1).upper() if letter else None


def judge_dailyomni(output: str, record: BenchmarkRecord) -> OfficialJudgement:
    letter = dailyomni_letter(output)
    return OfficialJudgement(letter, letter == record.gold_letter)


# --- OmniBench --------------------------------------------------------------------------------
def mmmu_choice(response: str, index2ans: dict[str, str]) -> str | None:
    """OmniBench's `parse_multi_choice_response` with `default_answer='N/A'` (None here).

    In order: "(A)" anywhere; else "A " (a letter then a space); else "A."; else, for responses
    of more than 5 words, an option's text contained in the response. With several candidates
    the one found last in the response wins (for the "A." step the position lookup searches
    " A ", which is usually absent, so the first candidate wins).
    """
    all_choices = list(index2ans)
    response = f" {response} "  # the official padding, so that "A " also matches at the end
    index_ans, ans_with_brack, candidates = True, False, []
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(choice)
            ans_with_brack = True
    if not candidates:
        candidates = [c for c in all_choices if f"{c} " in response]
    if not candidates:
        candidates = [c for c in all_choices if f"{c}." in response]
    if not candidates and len(response.split()) > 5:
        candidates = [c for c, ans in index2ans.items() if ans.lower() in response.lower()]
        index_ans = not candidates
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    if index_ans and ans_with_brack:
        starts = [response.rfind(f"({c})") for c in candidates]
    elif index_ans:
        starts = [response.rfind(f" {c} ") for c in candidates]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[max(range(len(starts)), key=starts.__getitem__)]  # np.argmax: first maximum


def judge_omnibench(output: str, record: BenchmarkRecord) -> OfficialJudgement:
    index2ans = {option_letter(i): text for i, text in enumerate(record.options)}
    letter = mmmu_choice(output, index2ans)
    # The official script asserts that the gold parses; an unparseable gold ("N/A") scores as
    # wrong here instead of stopping the run.
    gold = mmmu_choice(record.gold_text, index2ans) or "N/A"
    return OfficialJudgement(letter, letter == gold, gold)


# --- Video-MME --------------------------------------------------------------------------------
# The official list lacks two commas, so Python joins two pairs into strings that never occur:
# "The best option is", "The correct option is", "Best answer:" and "Best option:" are therefore
# not stripped, and "Best answer: C" yields "B" (from "Best").
_VIDEOMME_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
)


def videomme_letter(output: str) -> str | None:
    s = output.strip()
    for prefix in _VIDEOMME_PREFIXES:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return None
    m = re.search(r"[ABCD]", s)
    return m[0] if m else None


def judge_videomme(output: str, record: BenchmarkRecord) -> OfficialJudgement:
    letter = videomme_letter(output)
    return OfficialJudgement(letter, letter == record.gold_letter)


# --- MMAR / MMAU ------------------------------------------------------------------------------
def _word_tokens(text: str) -> set[str]:
    return set(re.findall(r"\b\w+\b", text.lower()))


def string_match(answer: str, prediction: str, choices: tuple[str, ...] | list[str]) -> bool:
    """MMAU/MMAR `string_match`: every word of the answer is in the prediction, and no word that
    belongs only to another option (one whose word set differs from the answer's) is."""
    prediction_tokens = _word_tokens(prediction)
    answer_tokens = _word_tokens(answer)
    if not prediction_tokens:
        return False
    incorrect_tokens: set[str] = set()
    for choice in choices:
        choice_tokens = _word_tokens(choice)
        if choice_tokens != answer_tokens:
            incorrect_tokens |= choice_tokens - answer_tokens
    return answer_tokens <= prediction_tokens and prediction_tokens.isdisjoint(incorrect_tokens)


def judge_string_match(output: str, record: BenchmarkRecord) -> OfficialJudgement:
    """string_match on the text of the chosen option: the `<answer>` letter, else a bare letter
    as the whole output; without a letter the raw output is matched as it is."""
    letter = strict_answer_letter(output, len(record.options))
    if letter is None and (bare := LETTER_ONLY.match(output.strip())):
        letter = bare.group("letter") if bare.group("letter") in record.option_letters else None
    prediction = record.options[ord(letter) - ord("A")] if letter else output
    return OfficialJudgement(prediction, string_match(record.gold_text, prediction, record.options))


# --- MUSIC-AVQA -------------------------------------------------------------------------------
def judge_music_avqa(output: str, record: BenchmarkRecord) -> OfficialJudgement:
    mentioned = answer_mentioned(output, record.gold_text)
    return OfficialJudgement(record.gold_text if mentioned else None, mentioned)
