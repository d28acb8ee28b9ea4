"""Scoring model outputs against benchmark records: the strict column, the official column,
and the paper's error analysis (Table 9).

Predictions are JSONL rows `{"id": <record id>, "output": <the model's raw text>}`.

Strict column (the one result tables show). A multiple-choice answer is the letter inside the
single `<answer>` block (`avrt.core.answers.strict_answer_letter`: `B`, `(B)` or `B.`, upper case,
within the item's options). An open-ended answer (MUSIC-AVQA) is the text inside the single
`<answer>` block, which must equal the gold answer after the normalisation of
`open_answers.normalise_answer`. The `<think>` block is not required for the answer to count;
the share of fully well-formed outputs (`<think>..</think><answer>..</answer>`) is reported
beside it as `think_format_rate`.

Every item has exactly one outcome and every rate has all items as its denominator:
- correct
- format_error: the output has no usable `<answer>` (missing or broken tags, two answer blocks,
  option text or a lower-case letter instead of a letter, a letter beyond the options);
- logic_error: a well-formed answer that is wrong;
- missing_media: the item's media could not be found, so the model could not be asked;
- no_prediction: the predictions have no row for the item.

Our reading of the paper's Table 9 (OmniBench error analysis): "Instruction Format Error (IFE),
where the response does not follow the required answer format (e.g. missing or malformed answer
tags), and Logic Error, where the response is correctly formatted but contains the wrong
answer". Both are shares of all items, not of the wrong ones: the baseline's IFE 0.9 + logic
error 48.9 + accuracy 50.2 sum to 100. So `ife_rate` = format_error / n and
`logic_error_rate` = logic_error / n; with no missing media or predictions,
accuracy + ife_rate + logic_error_rate = 1. (The paper's AVRT row, 0.2 + 43.0 + 56.3 = 99.5,
does not quite sum; we keep the identity.)

Every result names the input protocol its predictions were made with (`protocol`: name, digest
of the cut, the cut in words; `avrt.evaluation.protocols`), read from the prediction rows; null
for predictions made elsewhere that carry none.

Teacher outputs (the difficulty subsets of Table 8) are scored with `answer_parser="teacher"`:
the letter is the one `avrt.core.parsing.parse_teacher_answer` reads ("Answer: (D) ...", as in
the trace stage); an output it cannot read is a format_error, so it counts as wrong, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avrt.core.answers import ANSWER_BLOCK, is_strict_format, strict_answer_letter
from avrt.evaluation.open_answers import answers_equal
from avrt.evaluation.records import BenchmarkRecord
from avrt.evaluation.registry import OfficialRule, get_benchmark
from avrt.core.parsing import parse_teacher_answer
from avrt.core.rows import InputProtocol

OUTCOMES = ("correct", "format_error", "logic_error", "missing_media", "no_prediction")
ANSWER_PARSERS = ("strict", "teacher")


@dataclass(frozen=True)
class ItemScore:
    id: str
    outcome: str
    gold: str  # the record's gold letter, or the gold answer of an open-ended item
    strict_answer: str | None  # the extracted letter, or the open-ended answer text
    think_format: bool  # the whole output is <think>..</think><answer>..</answer>
    official_correct: bool | None = None  # None: the benchmark has no official rule
    official_prediction: str | None = None
    official_gold: str | None = None  # set where the official rule derives its own gold letter
    categories: dict[str, str] = field(default_factory=dict)
    parse_status: str | None = None  # the teacher parser's status (answer_parser "teacher" only)

    @property
    def correct(self) -> bool:
        return self.outcome == "correct"


def summarise(items: Sequence[ItemScore], *, has_official: bool) -> dict:
    """Counts and rates over `items`; every rate is a share of all of them."""
    n = len(items)
    counts = {outcome: sum(i.outcome == outcome for i in items) for outcome in OUTCOMES}

    def rate(k: int) -> float | None:
        return k / n if n else None

    summary = {
        "n": n,
        "accuracy": rate(counts["correct"]),
        "ife_rate": rate(counts["format_error"]),
        "logic_error_rate": rate(counts["logic_error"]),
        "missing_media_rate": rate(counts["missing_media"]),
        "no_prediction_rate": rate(counts["no_prediction"]),
        "think_format_rate": rate(sum(i.think_format for i in items)),
        "outcomes": counts,
        "official_accuracy": None,
    }
    if has_official:
        summary["official_accuracy"] = rate(sum(bool(i.official_correct) for i in items))
    return summary


@dataclass
class BenchmarkResult:
    benchmark: str
    official_rule: str
    has_official: bool
    items: list[ItemScore]
    answer_parser: str = "strict"  # "teacher": outputs read by the teacher answer parser
    protocol: InputProtocol | None = None  # how the items were cut for the model; None: not recorded

    @property
    def metrics(self) -> dict:
        return summarise(self.items, has_official=self.has_official)

    def accuracy(self, column: str = "strict") -> float | None:
        """Accuracy of the strict or the official column (None where there is no official rule)."""
        if column not in ("strict", "official"):
            raise ValueError(f"column must be 'strict' or 'official', got {column!r}")
        return self.metrics["accuracy" if column == "strict" else "official_accuracy"]

    def by_category(self) -> dict[str, dict[str, dict]]:
        """category key -> value -> the summary of its items."""
        groups: dict[str, dict[str, list[ItemScore]]] = {}
        for item in self.items:
            for key, value in item.categories.items():
                groups.setdefault(key, {}).setdefault(value, []).append(item)
        return {
            key: {value: summarise(items, has_official=self.has_official) for value, items in sorted(values.items())}
            for key, values in groups.items()
        }

    def to_dict(self, *, with_items: bool = True) -> dict:
        out = {
            "benchmark": self.benchmark,
            "official_rule": self.official_rule,
            "has_official": self.has_official,
            "answer_parser": self.answer_parser,
            "protocol": self.protocol.to_dict() if self.protocol else None,
            "metrics": self.metrics,
            # Items whose gold, as the official rule reads it, is not the record's gold letter.
            "official_gold_differs": sum(i.official_gold not in (None, i.gold) for i in self.items),
            "by_category": self.by_category(),
        }
        if with_items:
            out["items"] = [asdict(i) for i in self.items]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> BenchmarkResult:
        if "items" not in data:
            raise ValueError(f"result for {data.get('benchmark')!r} was written without items")
        items = [ItemScore(**i) for i in data["items"]]
        protocol = data.get("protocol")
        return cls(data["benchmark"], data["official_rule"], data["has_official"], items,
                   data.get("answer_parser", "strict"),
                   InputProtocol.from_dict(protocol, where=f"result of {data['benchmark']!r}") if protocol else None)


def strict_open_answer(output: str) -> str | None:
    """The text of the single `<answer>` block, or None (missing, repeated or empty)."""
    blocks = ANSWER_BLOCK.findall(output)
    return blocks[0] if len(blocks) == 1 and blocks[0].strip() else None


def _score_item(record: BenchmarkRecord, output: str | None, official: OfficialRule | None,
                answer_parser: str = "strict") -> ItemScore:
    common = {"id": record.id, "categories": dict(record.categories)}
    gold = record.gold_text if record.is_open_ended else record.gold_letter
    if record.attrition is not None or output is None:
        outcome = "missing_media" if record.attrition is not None else "no_prediction"
        return ItemScore(
            outcome=outcome, gold=gold, strict_answer=None, think_format=False,
            official_correct=False if official else None, **common,
        )
    parse_status = None
    if answer_parser == "teacher":
        parsed = parse_teacher_answer(output, record.options)
        answer, parse_status = (parsed.letter if parsed.ok else None), str(parsed.status)
        right = answer in record.accepted_letters
    elif record.is_open_ended:
        answer = strict_open_answer(output)
        right = answer is not None and answers_equal(answer, record.gold_text)
    else:
        answer = strict_answer_letter(output, len(record.options))
        right = answer in record.accepted_letters
    outcome = "format_error" if answer is None else "correct" if right else "logic_error"
    judgement = official(output, record) if official else None
    return ItemScore(
        outcome=outcome,
        gold=gold,
        strict_answer=answer,
        think_format=is_strict_format(output),
        official_correct=judgement.correct if judgement else None,
        official_prediction=judgement.prediction if judgement else None,
        official_gold=judgement.gold if judgement else None,
        parse_status=parse_status,
        **common,
    )


def score(records: Sequence[BenchmarkRecord], predictions: Mapping[str, str],
          answer_parser: str = "strict") -> BenchmarkResult:
    """Score one benchmark's records against outputs keyed by record id.

    A record without a prediction, or with missing media, is scored as wrong; a prediction for
    an id that is not among the records is an error (the files do not belong together).
    `answer_parser` "teacher" reads the outputs as teacher answers (multiple choice only).
    """
    if answer_parser not in ANSWER_PARSERS:
        raise ValueError(f"answer_parser must be one of {ANSWER_PARSERS}, got {answer_parser!r}")
    if not records:
        raise ValueError("no records to score")
    names = sorted({r.benchmark for r in records})
    if len(names) != 1:
        raise ValueError(f"records mix benchmarks {names}; score one benchmark at a time")
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"{names[0]}: record ids repeat, e.g. {repeated}")
    unknown = sorted(set(predictions) - set(ids))
    if unknown:
        raise ValueError(f"{names[0]}: {len(unknown)} prediction id(s) match no record, e.g. {unknown[:5]}")
    if answer_parser == "teacher" and any(r.is_open_ended for r in records):
        raise ValueError(f"{names[0]}: open-ended items cannot be read by the teacher answer parser")
    spec = get_benchmark(names[0])
    items = [_score_item(r, predictions.get(r.id), spec.official, answer_parser) for r in records]
    return BenchmarkResult(spec.name, spec.official_rule, spec.official is not None, items, answer_parser)


def read_predictions(path: str | Path) -> dict[str, str]:
    """id -> output from a predictions JSONL; a row without a string `id` and `output`, or a
    repeated id, is an error naming the line."""
    predictions: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            well_formed = isinstance(row, dict) and all(isinstance(row.get(k), str) for k in ("id", "output"))
            if not well_formed:
                raise ValueError(f"{path}:{lineno}: expected {{'id': str, 'output': str}}, got {line.strip()[:200]}")
            if row["id"] in predictions:
                raise ValueError(f"{path}:{lineno}: id {row['id']!r} already has a prediction")
            predictions[row["id"]] = row["output"]
    return predictions


def read_protocol(path: str | Path) -> InputProtocol | None:
    """The input protocol a predictions JSONL was made with: the one its rows name (None when they
    name none). Rows that name different protocols are an error naming the first that differs."""
    found: tuple[int, dict | None] | None = None
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            protocol = json.loads(line).get("protocol")
            if found is None:
                found = (lineno, protocol)
            elif protocol != found[1]:
                raise ValueError(f"{path}:{lineno}: protocol {protocol!r} differs from line {found[0]}'s {found[1]!r}")
    if found is None or found[1] is None:
        return None
    return InputProtocol.from_dict(found[1], where=f"{path}:{found[0]}: protocol")
