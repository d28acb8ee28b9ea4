"""Scoring: strict <answer> extraction, IFE and logic-error rates over all items, the official
column, per-category breakdowns, and the eval-records / eval-score commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from avrt.cli import main as avrt_main
from avrt.evaluation import load_benchmark, read_predictions, score
from avrt.evaluation.scoring import BenchmarkResult

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def with_media(name: str, annotations: str, tmp_path: Path):
    """Records of a fixture benchmark with every media file present."""
    records, _ = load_benchmark(name, FIXTURES / annotations, tmp_path, check_media=False)
    for record in records:
        for path in record.media_paths().values():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(b"\0")
    records, _ = load_benchmark(name, FIXTURES / annotations, tmp_path)
    assert all(r.attrition is None for r in records)
    return records


def think(answer: str) -> str:
    return f"<think>I listened to the clip and compared the options.</think>\n<answer>{answer}</answer>"


@pytest.fixture
def mmau(tmp_path):
    return {r.id: r for r in with_media("mmau_test_mini", "mmau_test_mini.json", tmp_path)}


def outcomes(result: BenchmarkResult) -> dict[str, str]:
    return {i.id: i.outcome for i in result.items}


def test_hard_outputs_on_4_5_8_and_2_option_items(mmau):
    predictions = {
        "fixmmau-four": think("C"),
        "fixmmau-five": think("E"),  # the fifth option is a valid letter here
        "fixmmau-eight": think("h"),  # lower case is not a letter answer
        "fixmmau-repeat": think("D"),  # the second copy of the repeated gold option
        "fixmmau-two": "<answer>A</answer><answer>B</answer>",  # two answers
    }
    result = score(list(mmau.values()), predictions)
    assert outcomes(result) == {
        "fixmmau-four": "correct",
        "fixmmau-five": "correct",
        "fixmmau-eight": "format_error",
        "fixmmau-repeat": "correct",
        "fixmmau-two": "format_error",
    }
    m = result.metrics
    assert (m["n"], m["accuracy"], m["ife_rate"], m["logic_error_rate"]) == (5, 0.6, 0.4, 0.0)
    assert m["think_format_rate"] == 0.8


@pytest.mark.parametrize(
    ("output", "outcome", "official"),
    [
        (think("C"), "correct", True),
        (think("(C)"), "correct", True),
        (think("A"), "logic_error", False),
        ("The answer is C.", "format_error", False),  # no tags (string_match sees "c", a bare letter token)
        (think("Cow"), "format_error", True),  # option text: not a strict answer, but official text
        (think("E"), "format_error", False),  # a letter beyond the four options
        ("<think>moo</think>", "format_error", False),  # no answer block
        ("<think>moo</think><answer>C</answer><answer>C</answer>", "format_error", False),
    ],
)
def test_one_item_outcomes_and_official_column(mmau, output, outcome, official):
    (item,) = score([mmau["fixmmau-four"]], {"fixmmau-four": output}).items
    assert (item.outcome, item.official_correct) == (outcome, official)


def test_every_item_stays_in_every_denominator(mmau):
    records = list(mmau.values())
    # One item loses its media after loading; one item gets no prediction.
    records[0] = dataclasses.replace(records[0], attrition="missing audio: x")
    predictions = {r.id: think(r.gold_letter) for r in records if r.id != "fixmmau-two"}
    result = score(records, predictions)
    m = result.metrics
    assert m["n"] == 5 and m["outcomes"]["missing_media"] == 1 and m["outcomes"]["no_prediction"] == 1
    assert m["accuracy"] == pytest.approx(3 / 5) and m["official_accuracy"] == pytest.approx(3 / 5)
    total = m["accuracy"] + m["ife_rate"] + m["logic_error_rate"] + m["missing_media_rate"] + m["no_prediction_rate"]
    assert total == pytest.approx(1.0)


def test_ife_and_logic_error_rates_partition_the_errors(mmau):
    predictions = {
        "fixmmau-four": think("A"),  # wrong letter: logic error
        "fixmmau-five": "E",  # no tags: format error
        "fixmmau-eight": think("H"),
        "fixmmau-repeat": think("C"),
        "fixmmau-two": think("A"),  # wrong: logic error
    }
    m = score(list(mmau.values()), predictions).metrics
    assert (m["accuracy"], m["ife_rate"], m["logic_error_rate"]) == (0.4, 0.2, 0.4)
    assert m["accuracy"] + m["ife_rate"] + m["logic_error_rate"] == pytest.approx(1.0)


def test_per_category_breakdown(mmau):
    predictions = {i: think(r.gold_letter) for i, r in mmau.items()}
    predictions["fixmmau-two"] = think("A")
    by_category = score(list(mmau.values()), predictions).by_category()
    assert set(by_category) == {"task", "difficulty", "category", "sub_category"}
    assert by_category["difficulty"]["easy"]["n"] == 2 and by_category["difficulty"]["easy"]["accuracy"] == 0.5
    assert by_category["difficulty"]["medium"]["accuracy"] == 1.0
    assert by_category["task"]["speech"]["logic_error_rate"] == 0.5


def test_prediction_ids_must_belong_to_the_records(mmau):
    with pytest.raises(ValueError, match="1 prediction id\\(s\\) match no record.*stray"):
        score(list(mmau.values()), {"stray": think("A")})
    with pytest.raises(ValueError, match="no records"):
        score([], {})


def test_benchmarks_without_official_rule_have_no_official_column(tmp_path):
    records = with_media("avqa_val", "avqa_val_qa.json", tmp_path)
    result = score(records, {r.id: think(r.gold_letter) for r in records})
    assert result.metrics["official_accuracy"] is None and result.accuracy("official") is None
    assert result.accuracy("strict") == 1.0
    assert all(i.official_correct is None for i in result.items)


def test_omnibench_result_counts_items_whose_official_gold_differs(tmp_path):
    records = with_media("omnibench", "omnibench.jsonl", tmp_path)
    result = score(records, {r.id: think(r.gold_letter) for r in records})
    # Item 1's answer text starts with "A " (official gold A, true gold C); item 2's is unparseable.
    assert result.to_dict()["official_gold_differs"] == 2
    assert result.accuracy("strict") == 1.0


def test_open_ended_music_avqa(tmp_path):
    records = with_media("music_avqa", "music_avqa_test.json", tmp_path)
    predictions = {
        "501": think("2"),  # digits are read as the gold's number words
        "502": think("left side"),  # not exactly the gold: a logic error, though it mentions "left"
        "503": think("Acoustic guitar"),
    }
    result = score(records, predictions)
    assert outcomes(result) == {"501": "correct", "502": "logic_error", "503": "correct"}
    assert [i.official_correct for i in result.items] == [True, True, True]
    assert score(records, {"501": "two"}).items[0].outcome == "format_error"


def test_teacher_outputs_are_read_by_the_teacher_parser_and_never_guessed(mmau, tmp_path):
    predictions = {
        "fixmmau-four": "Audio Description: a cow moos.\nReasoning: mooing.\nAnswer: (C) Cow",
        "fixmmau-five": "<think>hmm</think>The answer is (A).",  # a stated wrong letter
        "fixmmau-eight": "Answer: (A) or (H)",  # two options: ambiguous
        "fixmmau-repeat": "It sounds like four beeps.",  # no answer statement
        "fixmmau-two": think("B"),  # the <answer> tag is an answer line too
    }
    result = score(list(mmau.values()), predictions, answer_parser="teacher")
    assert outcomes(result) == {"fixmmau-four": "correct", "fixmmau-five": "logic_error",
                                "fixmmau-eight": "format_error", "fixmmau-repeat": "format_error",
                                "fixmmau-two": "correct"}
    assert [i.parse_status for i in result.items] == ["ok", "ok", "ambiguous", "no_answer", "ok"]
    assert [i.strict_answer for i in result.items] == ["C", "A", None, None, "B"]
    assert result.metrics["accuracy"] == 0.4 and result.metrics["ife_rate"] == 0.4
    again = BenchmarkResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.answer_parser == "teacher" and again.items == result.items
    # the strict column reads none of the teacher-style answers
    assert outcomes(score(list(mmau.values()), predictions))["fixmmau-four"] == "format_error"
    with pytest.raises(ValueError, match="open-ended"):
        score(with_media("music_avqa", "music_avqa_test.json", tmp_path), {}, answer_parser="teacher")


def test_result_round_trips_through_json(mmau):
    result = score(list(mmau.values()), {i: think("A") for i in mmau})
    again = BenchmarkResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.metrics == result.metrics and again.items == result.items
    with pytest.raises(ValueError, match="without items"):
        BenchmarkResult.from_dict(result.to_dict(with_items=False))


def test_read_predictions_rejects_bad_rows(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "output": "x"}\n{"id": "a", "output": "y"}\n')
    with pytest.raises(ValueError, match="p.jsonl:2: id 'a' already has a prediction"):
        read_predictions(path)
    path.write_text('{"id": "a", "response": "x"}\n')
    with pytest.raises(ValueError, match="p.jsonl:1: expected"):
        read_predictions(path)


def test_cli_eval_records_then_eval_score(tmp_path):
    media = tmp_path / "media"
    for name in ("fixmmar_0", "fixmmar_1"):
        (media / "audio").mkdir(parents=True, exist_ok=True)
        (media / "audio" / f"{name}.wav").write_bytes(b"\0")
    records, report, predictions, out = (tmp_path / n for n in ("r.jsonl", "report.json", "p.jsonl", "result.json"))
    rc = avrt_main([
        "eval-records", "--benchmark", "mmar", "--annotations", str(FIXTURES / "mmar_meta.jsonl"),
        "--media-dir", str(media), "--output", str(records), "--report", str(report),
    ])
    assert rc == 0
    loaded = json.loads(report.read_text())
    assert (loaded["n_rows"], loaded["n_records"], loaded["n_malformed"], loaded["n_missing_media"]) == (4, 2, 2, 0)
    predictions.write_text(
        json.dumps({"id": "fixmmar_0", "output": think("C")}) + "\n"
        + json.dumps({"id": "fixmmar_1", "output": "No, the speaker is being sarcastic"}) + "\n"
    )
    rc = avrt_main(["eval-score", "--records", str(records), "--predictions", str(predictions), "--output", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "mmar" and result["metrics"]["accuracy"] == 0.5
    assert result["metrics"]["official_accuracy"] == 1.0 and result["metrics"]["ife_rate"] == 0.5
    assert [i["outcome"] for i in result["items"]] == ["correct", "format_error"]
