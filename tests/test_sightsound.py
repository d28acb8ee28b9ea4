"""SightSound-R1 curation: audio-text variant, self-consistency, AGFV, SFT export.

Every stage here reads rows its upstream stage really wrote: teacher traces come from the
teacher stage (a scripted backend in place of the model), consensus rows from `select_consensus`,
checked rows from `run_agfv`.
"""

from __future__ import annotations

import json

import pytest

from avrt.core.generation import ModelOutput
from avrt.core.prompts import load_prompt
from avrt.core.rows import Avrt20kRow, CheckedTrace, ClipRef, ConsensusTrace, ManifestRow, MediaRow, read_rows, write_rows
from avrt.models.spec import ModelSpec
from avrt.core.prompts import audio_text_question
from avrt.traces.sightsound import consensus, export_sft, run_agfv, select_consensus
from avrt.traces.teacher import run_teacher, trace_row
from fake_backends import ScriptedBackend

TEACHER = {"name": "silent", "model": "sightsound_teacher", "prompt": "sightsound_teacher", "modality": "silent_video"}
TEACHER_SPEC = ModelSpec.from_config("sightsound_teacher", {"family": "qwen2_5_vl", "checkpoint": "/nonexistent",
                                                            "sampling": {"n": 2, "temperature": 1.0}})


@pytest.mark.parametrize(
    "question, variant",
    [
        ("What is happening in the video?", "What is happening in the audio?"),
        ("Video shows what? Two videos.", "Audio shows what? Two audios."),
        ("Is this a videotape?", "Is this a videotape?"),  # only the word, not inside other words
    ],
)
def test_audio_text_variant(question, variant):
    assert audio_text_question(question) == variant


def traces(answers, sample_id=1, gold="A"):
    """The teacher stage's rows for one question, one per answer (None: a trace with no answer)."""
    qa = ManifestRow(sample_id=str(sample_id), split="train", video_name=f"v{sample_id}", video_id=None,
                     clip_path=f"v{sample_id}.mp4", question="What sounds in the video?", choices=("a", "b", "c", "d"),
                     answer_index="ABCD".index(gold), gold_letter=gold, question_type="Which", question_relation="Audio",
                     duration=10.0, width=320, height=240, fps=10.0, audio_rate=16000, audio_channels=1)
    clip = ClipRef(root="media", media=MediaRow(video_name=qa.video_name, clip_path=qa.clip_path, params="p", status="ok"))
    texts = [f"<think>t{i}</think><answer>{a}</answer>" if a else "I cannot tell." for i, a in enumerate(answers)]
    return [trace_row(qa, clip, ModelOutput(qa.sample_id, i, text, 10, 5, "stop", i, 0.1), TEACHER, TEACHER_SPEC,
                      load_prompt(TEACHER["prompt"])) for i, text in enumerate(texts)]


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
    assert all(r.answer_letter == letter for r in rows)


def test_select_consensus_counts_what_each_mode_keeps(tmp_path):
    rows = traces("AAAA", 1) + traces("BBBB", 2, gold="C") + traces("AABA", 3) + traces("ABCD", 4)
    write_rows(tmp_path / "t.jsonl", rows)
    unanimous = select_consensus(tmp_path / "t.jsonl", "unanimous", tmp_path / "u.jsonl")
    majority = select_consensus(tmp_path / "t.jsonl", "majority", tmp_path / "m.jsonl")
    assert (unanimous["questions"], unanimous["questions_kept"], unanimous["traces_kept"]) == (4, 2, 8)
    assert unanimous["teacher_label_correct"] == 1  # question 2: the teachers agree on a wrong label
    assert (majority["questions_kept"], majority["traces_kept"]) == (3, 11)
    kept = read_rows(tmp_path / "u.jsonl", ConsensusTrace)
    assert {r.teacher_label for r in kept} == {"A", "B"} and {r.gold_letter for r in kept} == {"A", "C"}


@pytest.fixture
def shard(prepared_shard):
    return prepared_shard


def teacher_trace(sample_id: str, i: int) -> str:
    """The scripted silent-video teacher: every trace answers B; question 0's traces are not strict."""
    if sample_id.endswith("0"):
        return "A drum is struck in the picture.\nAnswer: (B)"
    return f"<think>Trace {i}: a drum is struck, so a drum beat is heard.</think><answer>B</answer>"


@pytest.fixture
def consensus_file(shard, tmp_path):
    """The teacher stage (two samples per question) and self-consistency, as the workflow runs them."""
    shard_path, media = shard
    run_teacher(TEACHER, TEACHER_SPEC, ["train"], shard_path, media, tmp_path / "traces.jsonl", chunk_size=8,
                backend=ScriptedBackend(teacher_trace, samples=2))
    counts = select_consensus(tmp_path / "traces.jsonl", "unanimous", tmp_path / "consensus.jsonl")
    (tmp_path / "consensus.counts.json").write_text(json.dumps(dict(counts)))
    return tmp_path / "consensus.jsonl"


CHECKER = ModelSpec.from_config("checker", {"family": "qwen2_audio", "checkpoint": "/nonexistent"})
REPLIES = ["Yes, the drum is audible.", "no", "I cannot tell."]


def checker_backend() -> ScriptedBackend:  # fake: answers in turn yes / no / something else
    return ScriptedBackend(lambda request_id, i: REPLIES[int(request_id.split("/")[0]) % 3])


def test_agfv_verdicts_accept_reject_and_count_unparsed_fake_backend(consensus_file, tmp_path):
    rows = read_rows(consensus_file, ConsensusTrace)
    assert rows and {r.sample_index for r in rows} == {0, 1}
    checker = checker_backend()
    stats = run_agfv("sightsound_agfv", CHECKER, consensus_file, tmp_path / "a.jsonl", chunk_size=100, backend=checker)
    checked = read_rows(tmp_path / "a.jsonl", CheckedTrace)
    expected = [REPLIES[int(r.sample_id) % 3] for r in checked]
    assert stats["traces"] == len(rows) == len(checked)
    assert stats["accepted"] == expected.count(REPLIES[0]) and stats["unparsed"] == expected.count(REPLIES[2])
    assert all(c.accepted == (c.verdict == "yes") for c in checked)
    # the checker hears the clip's true audio and reads the whole trace, reasoning included
    assert all(r.modalities == ("audio",) and r.media.audio.shape == (160000,) for r in checker.requests)
    prompts = {req.request_id: req.prompt for req in checker.requests}
    assert all(r.raw_output.strip() in prompts[f"{r.sample_id}/{r.sample_index}"] for r in rows)
    # a finished shard costs nothing more
    again = run_agfv("sightsound_agfv", CHECKER, consensus_file, tmp_path / "a.jsonl", chunk_size=100,
                     backend=checker_backend())
    assert again["model_calls"] == 0 and len(checker.requests) == len(rows)


@pytest.mark.integration
def test_agfv_runs_the_tiny_audio_checker(consensus_file, tmp_path):
    from avrt.demo.zoo import build_zoo

    build_zoo(tmp_path / "zoo", ["qwen2_audio"], seed=0)
    write_rows(tmp_path / "c.jsonl", read_rows(consensus_file, ConsensusTrace)[:4])
    spec = ModelSpec.from_config("checker", {"family": "qwen2_audio", "checkpoint": str(tmp_path / "zoo/qwen2_audio"),
                                             "dtype": "float32", "sampling": {"max_new_tokens": 4}})
    stats = run_agfv("sightsound_agfv", spec, tmp_path / "c.jsonl", tmp_path / "a.jsonl", chunk_size=8)
    assert stats["traces"] == 4 and stats["accepted"] + stats["rejected"] + stats["unparsed"] == 4


def test_export_keeps_accepted_strict_traces_with_teacher_labels_fake_backend(consensus_file, tmp_path):
    run_agfv("sightsound_agfv", CHECKER, consensus_file, tmp_path / "a.jsonl", chunk_size=100, backend=checker_backend())
    checked = read_rows(tmp_path / "a.jsonl", CheckedTrace)
    counts = export_sft([tmp_path / "a.jsonl"], True, 0.3, 0, [consensus_file.with_suffix(".counts.json")],
                        tmp_path / "train.jsonl", tmp_path / "val.jsonl", tmp_path / "counts.tsv")
    train, val = read_rows(tmp_path / "train.jsonl", Avrt20kRow), read_rows(tmp_path / "val.jsonl", Avrt20kRow)
    accepted = [c for c in checked if c.accepted]
    not_strict = [c for c in accepted if c.sample_id.endswith("0")]
    assert counts["agfv_accepted"] == len(accepted) and counts["accepted_not_strict_format"] == len(not_strict)
    assert len(train) + len(val) == len(accepted) - len(not_strict) > 0
    for e in train + val:
        assert e.teacher_label == "B" and e.answer == next(c.gold_letter for c in checked if c.sample_id == e.sample_id)
        assert e.av_reasoning.startswith("<think>") and e.av_reasoning.endswith("<answer>B</answer>")
        assert "video" not in e.question.split() and e.clip is not None and e.clip.media.ok
    assert not {e.sample_id for e in train} & {e.sample_id for e in val}  # a question's traces stay together
    table = dict(line.split("\t") for line in (tmp_path / "counts.tsv").read_text().splitlines()[1:])
    assert table["kept_fraction_agfv"] == str(round(len(accepted) / len(checked), 4))
