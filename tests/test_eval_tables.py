"""Table 3 layout: averages, deltas and missing marks, checked against the paper's own rows, and
the Markdown / CSV / LaTeX / PNG writers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from avrt.evaluation import load_benchmark, score
from avrt.evaluation.tables import (
    build_table3,
    round_percent,
    scores_from_results,
    to_csv,
    to_latex,
    to_markdown,
    write_table3,
)

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
BENCH = ("avqa_val", "dailyomni", "omnibench", "videomme", "riva_standup", "riva_academic", "mmar", "mmau_test_mini")


def paper_row(*percent):
    """A row of the paper's Table 3 (AVQA .. Riva-A, MMAR, MMAU) as accuracies in [0, 1]."""
    return {name: None if p is None else p / 100 for name, p in zip(BENCH, percent)}


# Per-benchmark numbers of the paper's Table 3; the averages and deltas are what we recompute.
PAPER = {
    "Qwen2.5 Omni 3B": paper_row(88.3, 43.1, 50.2, 55.4, 62.4, 38.4, 53.7, 61.1),
    "AVRT 3B": paper_row(91.1, 49.2, 56.3, 62.6, 71.3, 49.3, 57.3, 70.0),
    "Qwen2.5 Omni 7B": paper_row(84.9, 51.5, 50.7, 58.1, 74.9, 41.3, 56.5, 71.9),
    "AVRT 7B": paper_row(90.4, 54.4, 57.1, 64.1, 75.3, 50.7, 59.1, 75.4),
    "Kimi-VL-Thinking": paper_row(81.4, 47.0, 33.5, 58.9, 72.3, 49.6, None, None),
    "AVATAR 3B": paper_row(None, 44.7, 45.8, None, None, None, None, None),
}
BASES = {"AVRT 3B": "Qwen2.5 Omni 3B", "AVRT 7B": "Qwen2.5 Omni 7B"}


@pytest.fixture
def table():
    return build_table3(PAPER, BASES)


def cells(table, model):
    return next(c for m, _, c in table.rows if m == model)


def test_averages_and_deltas_reproduce_the_papers_table3(table):
    got = {m: (cells(table, m)["av_avg"].value, cells(table, m)["a_avg"].value) for m in PAPER}
    assert got["Qwen2.5 Omni 3B"] == (49.9, 57.4)
    assert got["AVRT 3B"] == (57.7, 63.7)  # 63.65 rounds half up, as printed
    assert got["Qwen2.5 Omni 7B"] == (55.3, 64.2)
    assert got["AVRT 7B"] == (60.3, 67.3)
    assert got["Kimi-VL-Thinking"] == (52.3, None)
    avrt3 = cells(table, "AVRT 3B")
    keys = ("avqa_val", "riva_academic", "av_avg", "mmau_test_mini", "a_avg")
    assert [avrt3[k].delta for k in keys] == [2.8, 10.9, 7.8, 8.9, 6.3]
    assert [cells(table, "AVRT 7B")[k].delta for k in ("av_avg", "a_avg", "riva_standup")] == [5.0, 3.1, 0.4]
    assert cells(table, "Qwen2.5 Omni 3B")["av_avg"].delta is None  # base rows have no deltas


def test_averages_with_missing_benchmarks_are_marked_not_computed(table):
    kimi, avatar = cells(table, "Kimi-VL-Thinking"), cells(table, "AVATAR 3B")
    assert kimi["a_avg"].missing == ("mmar", "mmau_test_mini")
    assert avatar["av_avg"].value is None and avatar["av_avg"].missing == ("videomme", "riva_standup", "riva_academic")
    # AVQA is in-domain: missing it does not block the AV average, and it never enters it.
    assert cells(table, "AVRT 3B")["av_avg"].value == round_percent((49.2 + 56.3 + 62.6 + 71.3 + 49.3) / 5)
    notes = table.notes()
    assert "* Kimi-VL-Thinking: A Avg. not computed, missing MMAR, MMAU." in notes
    assert "* AVATAR 3B: AV Avg. not computed, missing Video-MME, Riva-S, Riva-A." in notes


def test_markdown_layout(table):
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0] == (
        "| Model | AVQA | DailyOmni | OmniBench | Video-MME | Riva-S | Riva-A | AV Avg. | MMAR | MMAU | A Avg. |"
    )
    avrt = next(line for line in lines if line.startswith("| AVRT 3B |"))
    assert "| 91.1 (+2.8) |" in avrt and "| 57.7 (+7.8) |" in avrt and avrt.endswith("| 63.7 (+6.3) |")
    kimi = next(line for line in lines if line.startswith("| Kimi-VL-Thinking |"))
    assert kimi.endswith("| – | – | –* |")
    assert "strict scoring" in md


def test_csv_has_values_deltas_and_missing_members(table):
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert [r["model"] for r in rows] == list(PAPER)
    avrt = rows[1]
    assert (avrt["base"], avrt["av_avg"], avrt["av_avg_delta"]) == ("Qwen2.5 Omni 3B", "57.7", "+7.8")
    assert avrt["a_avg_missing"] == ""
    kimi = rows[4]
    assert (kimi["a_avg"], kimi["a_avg_missing"], kimi["mmar"]) == ("", "mmar;mmau_test_mini", "")


def test_latex_escapes_and_marks():
    table = build_table3({"ours_v1 & co": paper_row(90.0, 50.0, 50.0, 50.0, 50.0, 50.0, None, 70.0)})
    tex = to_latex(table)
    assert tex.startswith("\\begin{tabular}{l" + "r" * 10 + "}")
    assert "ours\\_v1 \\& co & 90.0 & 50.0" in tex and "--$^*$" in tex
    assert "\\end{tabular}" in tex and tex.count("\\multicolumn{11}{l}") == 2


def test_write_table3_writes_all_formats(table, tmp_path):
    paths = write_table3(table, tmp_path / "tables")
    assert sorted(paths) == ["csv", "md", "png", "tex"]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["md"].read_text() == to_markdown(table)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="not in Table 3"):
        build_table3({"m": {"music_avqa": 0.5}})
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        build_table3({"m": {"omnibench": 56.3}})
    with pytest.raises(ValueError, match="names a model without scores"):
        build_table3({"m": {"omnibench": 0.5}}, {"m": "base"})


def test_scores_from_results_picks_the_column(tmp_path):
    records, _ = load_benchmark("avqa_val", FIXTURES / "avqa_val_qa.json", tmp_path, check_media=False)
    result = score(records, {records[0].id: f"<answer>{records[0].gold_letter}</answer>"})
    assert scores_from_results({"m": [result]}) == {"m": {"avqa_val": 0.5}}
    assert scores_from_results({"m": [result]}, column="official") == {"m": {"avqa_val": None}}


def test_each_column_names_its_protocol_and_a_mixed_column_is_marked():
    from avrt.core.media import MediaParams
    from avrt.evaluation.protocols import input_protocol

    avrt = input_protocol("avrt", MediaParams())
    omni = input_protocol("qwen_omni", MediaParams(fps=2.0, max_frames=64, frame_sampling="linspace",
                                                   audio_length="full", audio_seconds=300.0))
    scores = {m: PAPER[m] for m in ("Qwen2.5 Omni 3B", "AVRT 3B")}
    protocols = {m: {b: avrt if b == "avqa_val" else omni for b in BENCH} for m in scores}
    protocols["AVRT 3B"]["dailyomni"] = avrt  # one row of one column cut otherwise
    table = build_table3(scores, {"AVRT 3B": "Qwen2.5 Omni 3B"}, protocols=protocols)
    md = to_markdown(table)
    header = md.splitlines()[0]
    assert "DailyOmni‡" in header and "OmniBench‡" not in header and "AVQA‡" not in header
    assert "Input protocol avrt (8 frames (segment_center) of at most 640 px a side; audio: the first 10 s" in md
    assert "Input protocol qwen_omni (2 fps, at most 64 frames" in md
    omni_note = next(line for line in md.splitlines() if line.startswith("Input protocol qwen_omni"))
    assert "OmniBench" in omni_note and "MMAU" in omni_note and "DailyOmni" not in omni_note
    mixed = next(line for line in md.splitlines() if line.startswith("‡ DailyOmni"))
    assert "Qwen2.5 Omni 3B: qwen_omni (" in mixed and "AVRT 3B: avrt (" in mixed
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert rows[1]["dailyomni_protocol"] == "avrt" and rows[0]["dailyomni_protocol"] == "qwen_omni"
    assert "$^{\\ddagger}$" in to_latex(table) and "‡" not in to_latex(table)
    # the same protocol name with another cut is another protocol
    protocols["AVRT 3B"]["dailyomni"] = input_protocol("qwen_omni", MediaParams(fps=1.0, max_frames=64))
    assert "DailyOmni‡" in to_markdown(build_table3(scores, protocols=protocols)).splitlines()[0]
    # results that record no protocol say so
    unrecorded = to_markdown(build_table3(scores, protocols={m: {b: None for b in BENCH} for m in scores}))
    assert "Input protocol protocol not recorded" in unrecorded
