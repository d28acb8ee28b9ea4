"""SightSound-R1 curation: audio-text variant, self-consistency, AGFV, SFT export."""

from __future__ import annotations

import json

import pytest

from avrt.data.ingest import ingest
from avrt.core.media import MediaParams
from avrt.data.media import prepare_shard
from avrt.core.io import read_jsonl, write_jsonl
from avrt.models.backends import Completion
from avrt.models.spec import ModelSpec
from avrt.traces.sightsound import audio_text_variant, consensus, export_sft, run_agfv, select_consensus


@pytest.mark.parametrize(
    "question, variant",
    [
        ("What is happening in the video?", "What is happening in the audio?"),
        ("Video shows what? Two videos.", "Audio shows what? Two audios."),
        ("Is this a videotape?", "Is this a videotape?"),  # only the word, not inside other words
    ],
)
def test_audio_text_variant(question, variant):
    assert audio_text_variant(question) == variant


def traces(answers, sample_id=1, gold="A"):
    return [{"sample_id": sample_id, "sample_index": i, "answer_letter": a, "gold_letter": gold, "split": "train",
             "video_name": f"v{sample_id}", "response": f"<think>t{i}</think><answer>{a}</answer>",
             "raw_output": f"<think>t{i}</think><answer>{a}</answer>"} for i, a in enumerate(answers)]


@pytest.mark.parametrize(
    "answers, mode, letter, kept",
    [
        ("AAAA", "unanimous", "A", 4),
        ("AAAB", "unanimous", None, 0),
        (["A", "A", "A", None], "unanimous", None, 0),  # an unreadable trace breaks unanimity
        ("AAAB", "majority", "A", 3),
        ("AABB", "majority", None, 0),  # a tie is no majority
        ([None, None, "C", None], "majority", None, 0),
    ],
)
def test_consensus_modes(answers, mode, letter, kept):
    got, rows = consensus(traces(list(answers)), mode)
    assert got == letter and len(rows) == kept
    assert all(r["answer_letter"] == letter for r in rows)


def test_select_consensus_counts_what_each_mode_keeps(tmp_path):
    rows = traces("AAAA", 1) + traces("BBBB", 2, gold="C") + traces("AABA", 3) + traces("ABCD", 4)
    write_jsonl(tmp_path / "t.jsonl", rows)
    unanimous = select_consensus(tmp_path / "t.jsonl", "unanimous", tmp_path / "u.jsonl")
    majority = select_consensus(tmp_path / "t.jsonl", "majority", tmp_path / "m.jsonl")
    assert (unanimous["questions"], unanimous["questions_kept"], unanimous["traces_kept"]) == (4, 2, 8)
    assert unanimous["teacher_label_correct"] == 1  # question 2: the teachers agree on a wrong label
    assert (majority["questions_kept"], majority["traces_kept"]) == (3, 11)
    assert {r["teacher_label"] for r in read_jsonl(tmp_path / "u.jsonl")} == {"A", "B"}


@pytest.fixture(scope="module")
def shard(synthetic_release, tmp_path_factory):
    root = tmp_path_factory.mktemp("ss")
    ann = {s: synthetic_release / "annotations" / f"{s}_qa.json" for s in ("train",)}
    ingest(ann, synthetic_release / "videos", root / "data")
    shard_path = root / "data" / "manifest.jsonl"
    prepare_shard(shard_path, root / "media" / "000.jsonl", MediaParams(frame_max_side=32))
    return shard_path, root / "media" / "000.jsonl"


def consensus_rows(shard_path):
    rows = []
    for qa in read_jsonl(shard_path):
        for r in traces("BB", qa["sample_id"], gold=qa["gold_letter"]):
            rows.append({**r, "video_name": qa["video_name"], "teacher_label": "B"})
    return rows


def test_agfv_verdicts_accept_reject_and_count_unparsed_fake_backend(shard, tmp_path):
    shard_path, media = shard
    rows = consensus_rows(shard_path)
    write_jsonl(tmp_path / "c.jsonl", rows)
    replies = ["Yes, the drum is audible.", "no", "I cannot tell."]
    seen = []

    class CheckerBackend:  # fake: answers in turn yes / no / something else
        def generate(self, requests):
            seen.extend(requests)
            return [Completion(r.request_id, 0, replies[i % 3], 5, 3, "stop", 0) for i, r in enumerate(requests)]

    spec = ModelSpec.from_config("checker", {"family": "qwen2_audio", "checkpoint": "/nonexistent"})
    stats = run_agfv("sightsound_agfv", spec, tmp_path / "c.jsonl", shard_path, media, tmp_path / "a.jsonl",
                     chunk_size=100, backend=CheckerBackend())
    n = len(rows)
    assert stats["traces"] == n and stats["accepted"] == (n + 2) // 3 and stats["unparsed"] == n // 3
    assert all(r.modalities == ("audio",) and r.media.audio.shape == (160000,) for r in seen)
    assert all(row["response"] in req.prompt for row, req in zip(rows, seen))
    # a finished shard costs nothing more
    again = run_agfv("sightsound_agfv", spec, tmp_path / "c.jsonl", shard_path, media, tmp_path / "a.jsonl",
                     backend=CheckerBackend())
    assert again["model_calls"] == 0 and len(seen) == n


@pytest.mark.integration
def test_agfv_runs_the_tiny_audio_checker(shard, tmp_path):
    from avrt.demo.zoo import build_zoo

    shard_path, media = shard
    build_zoo(tmp_path / "zoo", ["qwen2_audio"], seed=0)
    write_jsonl(tmp_path / "c.jsonl", consensus_rows(shard_path)[:4])
    spec = ModelSpec.from_config("checker", {"family": "qwen2_audio", "checkpoint": str(tmp_path / "zoo/qwen2_audio"),
                                             "dtype": "float32", "sampling": {"max_new_tokens": 4}})
    stats = run_agfv("sightsound_agfv", spec, tmp_path / "c.jsonl", shard_path, media, tmp_path / "a.jsonl")
    assert stats["traces"] == 4 and stats["accepted"] + stats["rejected"] + stats["unparsed"] == 4


def test_export_keeps_accepted_strict_traces_with_teacher_labels(shard, tmp_path):
    shard_path, _ = shard
    rows = consensus_rows(shard_path)
    for i, r in enumerate(rows):
        r.update(accepted=i % 2 == 0, verdict="yes" if i % 2 == 0 else "no")
    rows[0]["response"] = "no tags at all"
    write_jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "c.json").write_text(json.dumps({"questions": len(rows) // 2, "questions_kept": len(rows) // 2,
                                                 "traces": len(rows), "traces_kept": len(rows)}))
    counts = export_sft([tmp_path / "a.jsonl"], [shard_path], True, 0.3, 0, [tmp_path / "c.json"],
                        tmp_path / "train.jsonl", tmp_path / "val.jsonl", tmp_path / "counts.tsv")
    train, val = list(read_jsonl(tmp_path / "train.jsonl")), list(read_jsonl(tmp_path / "val.jsonl"))
    assert counts["agfv_accepted"] == len(rows) // 2 and counts["accepted_not_strict_format"] == 1
    assert len(train) + len(val) == len(rows) // 2 - 1
    assert {e["answer"] for e in train + val} == {"B"}  # the teacher's label, not the ground truth
    assert all("video" not in e["question"].split() for e in train + val)
    assert not {e["id"].split("#")[0] for e in train} & {e["id"].split("#")[0] for e in val}
    table = dict(line.split("\t") for line in (tmp_path / "counts.tsv").read_text().splitlines()[1:])
    assert table["kept_fraction_agfv"] == "0.5"
