"""The AVRT-20K filter (`avrt.traces.filter`): counts per mode, the matched subsample, the counts
table and the stage's command line, on merged rows made by the stages' own row builders."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from avrt.core.datasets import in_val, read_avrt20k
from avrt.core.io import read_jsonl
from avrt.core.rows import write_rows
from avrt.traces import filter as trace_filter
from avrt.traces.filter import filter_traces, select
from test_traces import ROWS  # 10 both right, 1 merged wrong, 5 one right, 4 none right, 1 malformed

REPO = Path(__file__).resolve().parents[1]
ALL_CORRECT = [str(i) for i in range(11)]
MERGER_CORRECT = [str(i) for i in (*range(10), *range(11, 16))]


@pytest.mark.parametrize(("mode", "match", "drop", "expected"), [
    ("both_correct", False, True, {"kept": 10, "dropped_answer_mismatch": 1}),
    ("both_correct", False, False, {"kept": 11}),
    ("merger_correct", False, True, {"kept": 15, "dropped_answer_mismatch": 0}),
    ("merger_correct", False, False, {"kept": 15}),
    ("unfiltered", False, False, {"kept": 20}),
    ("unfiltered", False, True, {"kept": 15, "dropped_answer_mismatch": 5}),
    ("unfiltered", True, True, {"kept": 10, "dropped_answer_mismatch": 5, "matched_count_target": 10}),
    ("unfiltered", True, False, {"kept": 11, "matched_count_target": 11}),
    ("both_correct", True, True, {"kept": 10, "dropped_answer_mismatch": 1}),  # match_count: unfiltered only
])
def test_select_counts_every_step(mode, match, drop, expected):
    kept, counts = select(ROWS, mode, match, drop, seed=0)
    assert dict(counts) == {"merged": 21, "format_ok": 20, "format_ok_and_all_teachers_correct": 11, **expected}
    assert len(kept) == expected["kept"]
    ids = [r.sample_id for r in kept]
    assert len(set(ids)) == len(ids)
    if mode == "both_correct":
        assert ids == ALL_CORRECT[: expected["kept"]]
    if mode == "merger_correct":
        assert ids == MERGER_CORRECT


def test_matched_subsample_is_seeded_sorted_and_drawn_from_the_kept_traces():
    kept, _ = select(ROWS, "unfiltered", True, True, seed=0)
    assert kept == select(ROWS, "unfiltered", True, True, seed=0)[0]
    ids = [r.sample_id for r in kept]
    assert ids == sorted(ids)
    assert set(ids) <= set(MERGER_CORRECT)
    draws = {tuple(r.sample_id for r in select(ROWS, "unfiltered", True, True, seed=s)[0]) for s in range(6)}
    assert len(draws) > 1  # the seed decides which 10 of the 15


def test_matched_subsample_has_the_both_correct_size_of_its_own_rows():
    few = [r for r in ROWS if r.sample_id in {"0", "1", "2", "11", "16"}]  # 3 all-correct of 5 compliant
    kept, counts = select(few, "unfiltered", True, False, seed=1)
    assert counts["matched_count_target"] == 3 and len(kept) == 3


def test_select_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match=r"unknown filter mode 'all' \(known: both_correct, unfiltered, merger_correct\)"):
        select(ROWS, "all", False, True, seed=0)


def test_counts_table_and_difficulty_file(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="avrt.traces.filter")
    write_rows(tmp_path / "a.jsonl", ROWS[:11])
    write_rows(tmp_path / "b.jsonl", ROWS[11:])
    out = {k: tmp_path / f"{k}.jsonl" for k in ("train", "val", "difficulty")}
    counts = filter_traces([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], "merger_correct", False, True, 0.5, 3,
                           out["train"], out["val"], tmp_path / "counts.tsv", out["difficulty"])
    lines = (tmp_path / "counts.tsv").read_text().splitlines()
    assert lines[:3] == ["count\tvalue", "source\tmerged", "mode\tmerger_correct"]
    keys = [line.split("\t")[0] for line in lines[3:]]
    assert keys == sorted(keys)
    assert dict(line.split("\t") for line in lines[3:]) == {k: str(v) for k, v in counts.items()}
    val_ids = {i for i in MERGER_CORRECT if in_val(i, 0.5, 3)}
    assert 0 < len(val_ids) < 15
    assert {k: counts[k] for k in ("merged", "format_ok", "kept", "train", "val", "merger_correct")} == {
        "merged": 21, "format_ok": 20, "kept": 15, "train": 15 - len(val_ids), "val": len(val_ids),
        "merger_correct": 15}  # the malformed trace has no answer
    assert {k: v for k, v in counts.items() if k.startswith(("teacher/", "difficulty/"))} == {
        "teacher/audio/answer_parsed": 21, "teacher/audio/correct": 12, "teacher/audio/correct_by_chance": 5.25,
        "teacher/visual/answer_parsed": 21, "teacher/visual/correct": 17, "teacher/visual/correct_by_chance": 5.25,
        "difficulty/easy": 12, "difficulty/medium": 5, "difficulty/hard": 4}
    assert {r.sample_id for r in read_avrt20k(out["val"])} == val_ids
    assert [r.sample_id for r in read_avrt20k(out["train"])] == [i for i in MERGER_CORRECT if i not in val_ids]
    assert {(r.sample_id, r.difficulty) for r in read_avrt20k(out["train"]) + read_avrt20k(out["val"])} == {
        (i, "easy" if int(i) < 11 else "medium") for i in MERGER_CORRECT}
    assert caplog.messages == [f"filter merger_correct: kept 15 of 21 merged (train {15 - len(val_ids)}, "
                               f"val {len(val_ids)})"]
    difficulty = list(read_jsonl(out["difficulty"]))
    assert len(difficulty) == 21
    assert difficulty[11] == {"sample_id": "11", "video_name": "v11", "split": "train", "teachers_correct": 1,
                              "difficulty": "medium"}


def test_the_stage_reads_its_settings_from_the_config(tmp_path):
    write_rows(tmp_path / "merged.jsonl", ROWS)
    overlay = tmp_path / "filter.yaml"
    overlay.write_text("filter:\n  mode: unfiltered\n  match_count: true\n  drop_answer_mismatch: true\n"
                       "  val_fraction: 0.5\n  seed: 5\n")
    out = {k: tmp_path / k for k in ("train.jsonl", "val.jsonl", "counts.tsv", "difficulty.jsonl")}
    parser = argparse.ArgumentParser()
    trace_filter.add_arguments(parser)
    args = parser.parse_args(["--config", str(REPO / "config" / "config.yaml"), str(overlay),
                              "--traces", str(tmp_path / "merged.jsonl"),
                              "--out-train", str(out["train.jsonl"]), "--out-val", str(out["val.jsonl"]),
                              "--out-counts", str(out["counts.tsv"]), "--out-difficulty", str(out["difficulty.jsonl"])])
    assert trace_filter.run(args) == 0

    kept, _ = select(ROWS, "unfiltered", True, True, seed=5)
    train, val = read_avrt20k(out["train.jsonl"]), read_avrt20k(out["val.jsonl"])
    assert sorted(r.sample_id for r in train + val) == sorted(r.sample_id for r in kept)
    assert {r.sample_id for r in val} == {r.sample_id for r in kept if in_val(r.sample_id, 0.5, 5)}
    table = dict(line.split("\t") for line in out["counts.tsv"].read_text().splitlines()[1:])
    assert table["mode"] == "unfiltered" and table["matched_count_target"] == "10" and table["kept"] == "10"
    assert table["dropped_answer_mismatch"] == "5"
    assert len(list(read_jsonl(out["difficulty.jsonl"]))) == 21


def test_the_stage_needs_every_path():
    parser = argparse.ArgumentParser()
    trace_filter.add_arguments(parser)
    full = ["--config", "c.yaml", "--traces", "m", "--out-train", "t", "--out-val", "v", "--out-counts", "c",
            "--out-difficulty", "d"]
    assert vars(parser.parse_args(full)) == {"config": [Path("c.yaml")], "traces": ["m"], "out_train": "t",
                                             "out_val": "v", "out_counts": "c", "out_difficulty": "d"}
    for i in range(0, len(full), 2):
        with pytest.raises(SystemExit):
            parser.parse_args(full[:i] + full[i + 2:])
