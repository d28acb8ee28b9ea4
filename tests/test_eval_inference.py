"""Evaluation wiring: requests built from benchmark records, resumable predictions, tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avrt.core.media import MediaParams
from avrt.evaluation.inference import run_inference
from avrt.evaluation.records import write_records
from avrt.evaluation.registry import load_benchmark
from avrt.evaluation.scoring import score
from avrt.demo.synthetic_benchmarks import generate
from avrt.evaluation.tables_cli import write_tables
from avrt.core.io import read_jsonl, write_json
from avrt.models.spec import ModelSpec
from avrt.core.prompts import load_prompt, render_teacher_prompt
from fake_backends import strict_answer_backend


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, generate(out, items=2, seconds=3.0, width=64, height=48, fps=4)


def omni_spec():
    return ModelSpec.from_config("student", {"family": "qwen2_5_omni", "checkpoint": "/nonexistent",
                                             "sampling": {"temperature": 0.7, "n": 3}})


@pytest.mark.parametrize(
    "name, modalities",
    [("omnibench", ("frames", "audio")), ("videomme", ("frames", "audio")), ("mmau_test_mini", ("audio",))],
)
def test_requests_carry_the_benchmarks_media_fake_backend(bench, tmp_path, name, modalities):
    out, files = bench
    records, _ = load_benchmark(name, files[name]["annotations"], files[name]["media_dir"])
    write_records(tmp_path / "records.jsonl", records)
    backend = strict_answer_backend()
    run_inference(tmp_path / "records.jsonl", omni_spec(), "reasoning", MediaParams(frame_max_side=32), "both",
                  tmp_path / "pred.jsonl", chunk_size=16, backend=backend)
    assert [r.request_id for r in backend.requests] == [r.id for r in records]
    for req, rec in zip(backend.requests, records):
        assert req.modalities == modalities and req.mask == ()
        assert req.prompt.startswith(rec.question) and "(A) " in req.prompt and "<think>" in req.prompt
        assert req.media.audio.shape == (160000,)
        assert req.media.frames.shape[0] == {"omnibench": 1, "videomme": 8, "mmau_test_mini": 0}[name]
    rows = list(read_jsonl(tmp_path / "pred.jsonl"))
    assert [r["id"] for r in rows] == [r.id for r in records] and rows[0]["prompt_id"] == "student_reasoning"


def test_masks_blank_the_named_modality_and_decoding_is_greedy_fake_backend(bench, tmp_path):
    out, files = bench
    records, _ = load_benchmark("omnibench", files["omnibench"]["annotations"], files["omnibench"]["media_dir"])
    write_records(tmp_path / "records.jsonl", records)
    seen = {}
    for mask in ("audio_only", "video_only"):
        backend = strict_answer_backend()
        run_inference(tmp_path / "records.jsonl", omni_spec(), "direct", MediaParams(frame_max_side=32), mask,
                      tmp_path / f"{mask}.jsonl", chunk_size=16, backend=backend)
        seen[mask] = backend.requests
    assert {r.mask for r in seen["audio_only"]} == {("frames",)}
    assert {r.mask for r in seen["video_only"]} == {("audio",)}
    assert "<think>" not in seen["audio_only"][0].prompt  # the direct prompt asks for the answer only
    cache = tmp_path / ".progress" / "audio_only.jsonl"  # the model outputs behind the predictions
    fp = [json.loads(line)["fingerprint"] for line in cache.read_text().splitlines()]
    assert len(fp) == len(records) and len(set(fp)) == 1
    assert "fingerprint" not in (tmp_path / "audio_only.jsonl").read_text()


@pytest.mark.parametrize("modality", ["frames", "audio"])
def test_teacher_answers_with_its_prompt_and_only_its_modality_fake_backend(bench, tmp_path, modality):
    out, files = bench
    records, _ = load_benchmark("omnibench", files["omnibench"]["annotations"], files["omnibench"]["media_dir"])
    write_records(tmp_path / "records.jsonl", records)
    name = {"frames": "visual", "audio": "audio"}[modality]
    teacher = {"name": name, "model": "x", "prompt": f"{name}_teacher", "modality": modality}
    backend = strict_answer_backend()
    run_inference(tmp_path / "records.jsonl", omni_spec(), "reasoning", MediaParams(frame_max_side=32), "both",
                  tmp_path / "pred.jsonl", chunk_size=16, backend=backend, teacher=teacher)
    assert [r.request_id for r in backend.requests] == [r.id for r in records]
    for req, rec in zip(backend.requests, records):
        assert req.modalities == (modality,)  # the omni family could take both; the teacher gets its own
        assert req.prompt == render_teacher_prompt(load_prompt(f"{name}_teacher"), question=rec.question,
                                                   choices=list(rec.options))
        assert "<think>" not in req.prompt
    rows = list(read_jsonl(tmp_path / "pred.jsonl"))
    assert {r["prompt_id"] for r in rows} == {f"{name}_teacher"}
    student = strict_answer_backend()  # a student run into the same file does not reuse the teacher's rows
    run_inference(tmp_path / "records.jsonl", omni_spec(), "reasoning", MediaParams(frame_max_side=32), "both",
                  tmp_path / "pred.jsonl", chunk_size=16, backend=student)
    assert len(student.requests) == len(records)


def test_teachers_without_frames_or_audio_are_refused(bench, tmp_path):
    out, files = bench
    records, _ = load_benchmark("omnibench", files["omnibench"]["annotations"], files["omnibench"]["media_dir"])
    write_records(tmp_path / "records.jsonl", records)
    silent = {"name": "s", "model": "x", "prompt": "sightsound_teacher", "modality": "silent_video"}
    with pytest.raises(ValueError, match="frames or audio teachers"):
        run_inference(tmp_path / "records.jsonl", omni_spec(), "reasoning", MediaParams(), "both",
                      tmp_path / "pred.jsonl", chunk_size=16, backend=strict_answer_backend(), teacher=silent)
    audio_only_family = ModelSpec.from_config("t", {"family": "qwen2_audio", "checkpoint": "/nonexistent"})
    visual = {"name": "visual", "model": "x", "prompt": "visual_teacher", "modality": "frames"}
    with pytest.raises(ValueError, match="cannot take frames"):
        run_inference(tmp_path / "records.jsonl", audio_only_family, "reasoning", MediaParams(), "both",
                      tmp_path / "pred.jsonl", chunk_size=16, backend=strict_answer_backend(), teacher=visual)


def test_missing_media_items_are_not_asked_but_stay_in_the_denominator_fake_backend(bench, tmp_path):
    out, files = bench
    records, report = load_benchmark("mmar", files["mmar"]["annotations"], files["mmar"]["media_dir"])
    gone = next(out.glob("mmar/audio/*.wav"))
    gone.rename(tmp_path / "moved.wav")
    try:
        records, report = load_benchmark("mmar", files["mmar"]["annotations"], files["mmar"]["media_dir"])
    finally:
        (tmp_path / "moved.wav").rename(gone)
    write_records(tmp_path / "records.jsonl", records)
    backend = strict_answer_backend()
    run_inference(tmp_path / "records.jsonl", omni_spec(), "reasoning", MediaParams(), "both",
                  tmp_path / "pred.jsonl", chunk_size=16, backend=backend)
    assert len(backend.requests) == len(records) - 1
    preds = {r["id"]: r["output"] for r in read_jsonl(tmp_path / "pred.jsonl")}
    result = score(records, preds)
    assert result.metrics["n"] == len(records) and result.metrics["missing_media_rate"] == pytest.approx(1 / len(records))


def test_tables_show_deltas_and_masks(bench, tmp_path):
    out, files = bench
    results = []
    for model, answer in (("base", "A"), ("trained", "B")):
        for name in ("dailyomni", "omnibench", "videomme", "riva_standup", "riva_academic", "mmar", "mmau_test_mini"):
            records, _ = load_benchmark(name, files[name]["annotations"], files[name]["media_dir"])
            masks = ("both", "audio_only") if name == "omnibench" else ("both",)
            for mask in masks:
                preds = {r.id: f"<think>t</think><answer>{answer if mask == 'both' else 'Z'}</answer>" for r in records}
                path = tmp_path / f"{model}_{name}_{mask}.json"
                write_json(path, score(records, preds).to_dict())
                results.append((model, name, mask, path))
    paths = write_tables(results, "base", tmp_path / "tables")
    table3 = (tmp_path / "tables" / "table3.md").read_text()
    assert "| trained |" in table3 and "AV Avg." in table3 and "(" in table3.split("| trained |")[1]
    table4 = (tmp_path / "tables" / "table4.md").read_text()
    assert "| base | omnibench |" in table4 and "| 0.0 |" in table4
    rows = (tmp_path / "tables" / "per_benchmark.csv").read_text().splitlines()
    assert len(rows) == 1 + len(results)
    assert all(p for p in paths.values())
    assert np.isclose(float(rows[1].split(",")[5]) if rows[1].split(",")[5] else 0.0, float(rows[1].split(",")[5] or 0.0))


def test_an_audio_text_student_is_asked_audio_where_the_question_says_video_fake_backend(bench, tmp_path):
    """SightSound-R1's audio student reads the audio-text variant, as in its SFT and GRPO; its
    answers are cached apart from those to the original questions."""
    out, files = bench
    records = [record for name in ("videomme", "omnibench")  # questions with and without the word
               for record in load_benchmark(name, files[name]["annotations"], files[name]["media_dir"])[0]]
    assert len({r.id for r in records}) == len(records)
    write_records(tmp_path / "records.jsonl", records)
    asked = {}
    for audio_text in (False, True):
        backend = strict_answer_backend()
        run_inference(tmp_path / "records.jsonl", omni_spec(), "reasoning", MediaParams(frame_max_side=32), "both",
                      tmp_path / f"{audio_text}.jsonl", chunk_size=16, backend=backend, audio_text=audio_text)
        asked[audio_text] = backend.requests
    with_video = [i for i, r in enumerate(records) if "video" in r.question]
    assert 0 < len(with_video) < len(records)  # Video-MME's synthetic items ask about "the video"
    for i, record in enumerate(records):
        plain, variant = asked[False][i].prompt, asked[True][i].prompt
        assert plain.startswith(record.question)
        assert variant.startswith(record.question.replace("video", "audio"))
        assert (plain != variant) == (i in with_video)
    fingerprints = {json.loads((tmp_path / ".progress" / f"{v}.jsonl").read_text().splitlines()[0])["fingerprint"]
                    for v in (False, True)}
    assert len(fingerprints) == 2
