"""Tables 8 (difficulty subsets by teacher correctness) and 9 (IFE / logic errors) from small
hand-made result files, through `avrt eval-tables`."""

from __future__ import annotations

import csv
import io
import json

import pytest

from avrt.cli import main as avrt_main
from avrt.evaluation.analysis_tables import build_table8, build_table9, table8_markdown, table9_markdown
from avrt.evaluation.scoring import BenchmarkResult, ItemScore
from avrt.core.io import write_json

IDS = [f"q{i}" for i in range(10)]  # q9's media is missing: no model and no teacher was shown it


def result(correct=(), format_error=(), benchmark="omnibench", parser="strict") -> BenchmarkResult:
    def outcome(i):
        if i == "q9":
            return "missing_media"
        return "correct" if i in correct else "format_error" if i in format_error else "logic_error"

    items = [ItemScore(id=i, outcome=outcome(i), gold="A", strict_answer=None, think_format=False) for i in IDS]
    return BenchmarkResult(benchmark, "rule", True, items, parser)


# visual right on q0-q3, audio on q0, q1, q4, q5: easy q0 q1, medium q2-q5, hard q6-q8, q9 unassigned
TEACHERS = {"visual": result({"q0", "q1", "q2", "q3"}, {"q8"}, parser="teacher"),
            "audio": result({"q0", "q1", "q4", "q5"}, parser="teacher")}
MODELS = {"base": result({"q0", "q2", "q6"}, {"q7"}),
          "grpo": result({"q0", "q1", "q2", "q3", "q4", "q6", "q7"}, {"q5"})}


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, res in {**MODELS, **{f"teacher_{t}": r for t, r in TEACHERS.items()}}.items():
        paths[name] = tmp_path / f"{name}.result.json"
        write_json(paths[name], res.to_dict())
    other = tmp_path / "base_mmau.result.json"
    write_json(other, result({"q0"}, benchmark="mmau_test_mini").to_dict())
    paths["base_mmau"] = other
    return paths


def run_tables(files, out, *extra):
    results = [f"{m}:omnibench:both={files[m]}" for m in MODELS] + [f"base:mmau_test_mini:both={files['base_mmau']}"]
    rc = avrt_main(["eval-tables", "--results", *results, "--base", "base", "--out-dir", str(out), *extra])
    assert rc == 0


def test_table8_accuracy_per_difficulty_subset(files, tmp_path):
    teachers = [f"{t}={files[f'teacher_{t}']}" for t in TEACHERS]
    run_tables(files, tmp_path / "tables", "--teacher-results", *teachers, "--difficulty-benchmark", "omnibench")
    md = (tmp_path / "tables/table8.md").read_text().splitlines()
    assert md[:4] == [
        "| Model | Easy (n=2) | Med (n=4) | Hard (n=3) |",
        "|---|---:|---:|---:|",
        "| base | 50.0 | 25.0 | 33.3 |",
        "| grpo | 100.0 | 75.0 | 66.7 |",
    ]
    assert "Teacher accuracy (teacher answer parser; an unreadable answer is wrong): visual 40.0%, audio 40.0%." in md
    assert "1 item(s) unassigned: a teacher could not be shown their media." in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "tables/table8.csv").read_text())))
    assert [(r["model"], r["easy_n"], r["easy_correct"], r["easy"]) for r in rows] == [
        ("base", "2", "1", "50.0"), ("grpo", "2", "2", "100.0")]
    assert [(r["medium_correct"], r["hard_n"], r["hard"], r["unassigned_n"]) for r in rows] == [
        ("1", "3", "33.3", "1"), ("3", "3", "66.7", "1")]


def test_table9_error_rates_share_all_items(files, tmp_path):
    run_tables(files, tmp_path / "tables")
    assert not (tmp_path / "tables/table8.md").exists()  # no teacher results: no Table 8
    md = (tmp_path / "tables/table9.md").read_text().splitlines()
    assert md[:4] == [
        "| Model | Acc. (%) ↑ | IFE (%) ↓ | Logic Err (%) ↓ |",
        "|---|---:|---:|---:|",
        "| base | 30.0 | 10.0 | 50.0 |",  # + 10.0 missing media = 100
        "| grpo | 70.0 | 10.0 | 10.0 |",
    ]
    assert md[5].startswith("Error analysis on OmniBench, strict scoring")
    assert "base (n=10): also 10.0% missing media." in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "tables/table9.csv").read_text())))
    assert rows[0] == {"model": "base", "benchmark": "omnibench", "n": "10", "accuracy": "30.0", "ife_rate": "10.0",
                       "logic_error_rate": "50.0", "missing_media_rate": "10.0", "no_prediction_rate": "0.0"}
    assert len(rows) == 2  # the MMAU result is not OmniBench's


def test_table9_rounds_half_up_like_the_paper():
    # 1,142 OmniBench items: 10 format errors and 558 wrong letters are the paper's 0.9 and 48.9
    items = [ItemScore(id=str(i), outcome="format_error" if i < 10 else "logic_error" if i < 568 else "correct",
                       gold="A", strict_answer=None, think_format=False) for i in range(1142)]
    table = build_table9({"Baseline": BenchmarkResult("omnibench", "rule", True, items)}, "omnibench")
    assert table9_markdown(table).splitlines()[2] == "| Baseline | 50.3 | 0.9 | 48.9 |"
    assert "No model was evaluated on videomme." in table9_markdown(build_table9({}, "videomme"))


def test_mismatched_results_are_refused():
    with pytest.raises(ValueError, match="teacher results must be results on omnibench"):
        build_table8(MODELS, {"visual": result(benchmark="mmau_test_mini")}, "omnibench")
    with pytest.raises(ValueError, match="Table 8 rows must be results on omnibench"):
        build_table8({"base": result(benchmark="mmau_test_mini")}, TEACHERS, "omnibench")
    with pytest.raises(ValueError, match="at least one teacher"):
        build_table8(MODELS, {}, "omnibench")
    fewer = BenchmarkResult("omnibench", "rule", True, result().items[:5])
    with pytest.raises(ValueError, match="not items of omnibench"):  # teacher ids the model lacks
        build_table8({"base": fewer}, TEACHERS, "omnibench")


def test_one_teacher_gives_easy_and_hard_only():
    table = build_table8(MODELS, {"visual": TEACHERS["visual"]}, "omnibench")
    assert table.counts == {"easy": 4, "medium": 0, "hard": 5, "unassigned": 1}
    assert table8_markdown(table).splitlines()[2] == "| base | 50.0 | – | 20.0 |"


def test_results_written_before_the_answer_parser_field_still_load(files):
    data = json.loads(files["base"].read_text())
    del data["answer_parser"]
    assert BenchmarkResult.from_dict(data).answer_parser == "strict"


def test_tables_8_and_9_name_the_models_and_teachers_protocols():
    from dataclasses import replace

    from avrt.core.media import MediaParams
    from avrt.evaluation.protocols import input_protocol

    omni = input_protocol("qwen_omni", MediaParams(fps=2.0, max_frames=64, audio_length="full", audio_seconds=300.0))
    teacher = input_protocol("teacher_long", MediaParams(audio_length="full", audio_seconds=300.0))
    models = {m: replace(r, protocol=omni) for m, r in MODELS.items()}
    teachers = {t: replace(r, protocol=teacher) for t, r in TEACHERS.items()}
    md8 = table8_markdown(build_table8(models, teachers, "omnibench"))
    assert "Input protocol qwen_omni (2 fps" in md8 and "visual: teacher_long (8 frames" in md8
    models["base"] = replace(models["base"], protocol=teacher)
    md9 = table9_markdown(build_table9(models, "omnibench"))
    assert "‡ OmniBench: rows cut by different input protocols (base: teacher_long" in md9
