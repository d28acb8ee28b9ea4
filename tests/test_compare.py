"""`avrt compare`: an ablation table across runs, from result files `avrt eval-score` wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from avrt.cli import main as avrt_main
from avrt.core.media import MediaParams
from avrt.evaluation import load_benchmark
from avrt.evaluation.protocols import input_protocol
from avrt.evaluation.records import write_records

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
ANNOTATIONS = {"omnibench": "omnibench.jsonl", "dailyomni": "daily_omni_qa.json"}
AVRT = input_protocol("avrt", MediaParams()).to_dict()
OMNI = input_protocol("qwen_omni", MediaParams(fps=2.0, max_frames=64, frame_sampling="linspace",
                                               audio_length="full", audio_seconds=300.0)).to_dict()


def write_result(run: Path, tag: str, bench: str, mask: str, n_correct: int, protocol: dict | None) -> Path:
    """`avrt eval-score` on the fixture's records and predictions right on the first `n_correct` items."""
    records, _ = load_benchmark(bench, FIXTURES / ANNOTATIONS[bench], run / "media", check_media=False)
    folder = run / "eval" / tag / bench
    folder.mkdir(parents=True, exist_ok=True)
    write_records(folder / "records.jsonl", records)
    wrong = {"A": "B", "B": "C", "C": "D", "D": "A"}
    rows = [{"id": r.id, "output": f"<think>t</think><answer>{r.gold_letter if i < n_correct else wrong[r.gold_letter]}</answer>",
             **({"protocol": protocol} if protocol else {})} for i, r in enumerate(records)]
    (folder / f"{mask}.predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = folder / f"{mask}.result.json"
    assert avrt_main(["eval-score", "--records", str(folder / "records.jsonl"),
                      "--predictions", str(folder / f"{mask}.predictions.jsonl"), "--output", str(out)]) == 0
    return out


@pytest.fixture
def runs(tmp_path):
    """Two runs: the main one (base and grpo tags) and an ablation that has no DailyOmni result and
    whose OmniBench was cut by another input protocol."""
    main, ablation = tmp_path / "results" / "avrt-3b", tmp_path / "results" / "rl-only"
    write_result(main, "base", "omnibench", "both", 1, OMNI)  # 33.3
    write_result(main, "base", "dailyomni", "both", 1, OMNI)
    write_result(main, "grpo", "omnibench", "both", 3, OMNI)  # 100.0
    write_result(main, "grpo", "omnibench", "audio_only", 2, OMNI)  # 66.7
    write_result(main, "grpo", "dailyomni", "both", 2, OMNI)
    write_result(ablation, "grpo", "omnibench", "both", 2, AVRT)  # 66.7, another protocol
    write_result(ablation, "grpo", "omnibench", "audio_only", 0, OMNI)  # 0.0: a real zero
    return main, ablation


def test_rows_are_runs_columns_benchmarks_with_deltas_against_the_first(runs, tmp_path):
    main, ablation = runs
    out = tmp_path / "table"
    assert avrt_main(["compare", f"{main}:base", str(ablation), str(main), "--out", str(out)]) == 0
    md = (out / "compare.md").read_text().splitlines()
    assert md[0] == "| Run | DailyOmni | OmniBench‡ | OmniBench (A) |"
    assert md[2] == "| avrt-3b (base) | 33.3 | 33.3 | – |"
    assert md[3] == "| rl-only | – | 66.7 (+33.4) | 0.0 |"  # missing is never 0; 0.0 is a score
    assert md[4] == "| avrt-3b | 66.7 (+33.4) | 100.0 (+66.7) | 66.7 |"
    notes = "\n".join(md[6:])
    assert "deltas against avrt-3b (base)" in notes
    assert "– rl-only: no result for DailyOmni." in notes and "– avrt-3b (base): no result for OmniBench (A)." in notes
    mixed = next(line for line in md if line.startswith("‡ OmniBench:"))
    assert "rl-only: avrt (" in mixed and "avrt-3b: qwen_omni (" in mixed
    rows = list(csv.DictReader(io.StringIO((out / "compare.csv").read_text())))
    assert [r["run"] for r in rows] == ["avrt-3b (base)", "rl-only", "avrt-3b"]
    assert (rows[1]["dailyomni"], rows[1]["dailyomni_delta"], rows[1]["omnibench_protocol"]) == ("", "", "avrt")
    assert (rows[2]["omnibench:audio_only"], rows[2]["omnibench:audio_only_delta"]) == ("66.7", "")
    tex = (out / "compare.tex").read_text()
    assert "OmniBench$^{\\ddagger}$" in tex and "avrt-3b (base)" in tex and "‡" not in tex
    assert (out / "compare.png").stat().st_size > 0


def test_benchmarks_pick_the_columns_and_a_missing_one_shows_as_missing(runs, tmp_path):
    main, ablation = runs
    out = tmp_path / "table"
    assert avrt_main(["compare", str(main), str(ablation), "--benchmarks", "omnibench", "mmar",
                      "--out", str(out), "--stem", "table4"]) == 0
    md = (out / "table4.md").read_text().splitlines()
    assert md[0] == "| Run | OmniBench‡ | OmniBench (A) | MMAR |"
    assert md[2:4] == ["| avrt-3b | 100.0 | 66.7 | – |", "| rl-only | 66.7 (-33.3) | 0.0 (-66.7) | – |"]


def test_the_same_protocol_everywhere_is_one_note_and_no_mark(runs, tmp_path):
    main, _ = runs
    out = tmp_path / "table"
    assert avrt_main(["compare", f"{main}:base", str(main), "--out", str(out)]) == 0
    md = (out / "compare.md").read_text()
    assert "‡" not in md and "Input protocol qwen_omni (2 fps" in md


@pytest.mark.parametrize("args, message", [
    (["{main}:sft"], "eval/sft: no results of evaluation tag 'sft' in run"),
    (["{main}", "{main}"], "two rows would read the same"),
    (["{main}", "--benchmarks", "nonesuch"], "--benchmarks: ['nonesuch'] not registered benchmarks"),
])
def test_bad_runs_are_refused_naming_them(runs, tmp_path, capsys, args, message):
    main, _ = runs
    argv = ["compare", *(a.format(main=main) for a in args), "--out", str(tmp_path / "t")]
    assert avrt_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_a_broken_result_file_is_named(runs, tmp_path, capsys):
    main, ablation = runs
    broken = ablation / "eval" / "grpo" / "omnibench" / "both.result.json"
    broken.write_text(json.dumps({"benchmark": "omnibench"}))
    assert avrt_main(["compare", str(main), str(ablation), "--out", str(tmp_path / "t")]) == 2
    assert f"{broken}: not a result file of `avrt eval-score`" in capsys.readouterr().err


def test_with_allow_missing_a_run_without_results_is_a_row_of_missing_cells(runs, tmp_path):
    """The workflow's compare_runs: another run named in `compare.rows` may not have finished."""
    main, ablation = runs
    out = tmp_path / "table"
    assert avrt_main(["compare", str(main), str(tmp_path / "results" / "not-yet"), str(ablation), "--benchmarks",
                      "omnibench", "--out", str(out), "--allow-missing"]) == 0
    md = (out / "compare.md").read_text()
    assert "| not-yet | – | – |" in md and "| rl-only | 66.7 (-33.3) | 0.0 (-66.7) |" in md
    assert f"– not-yet: no results of tag grpo in {tmp_path / 'results' / 'not-yet'}." in md
