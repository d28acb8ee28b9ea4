"""The generation driver every model-facing stage runs through, and the typed rows between stages."""

from __future__ import annotations

import json

import pytest

from avrt.core.generation import generate
from avrt.core.rows import MediaRow, RowError, TeacherTrace, read_rows
from avrt.models.adapters import GenerationRequest
from fake_backends import ScriptedBackend


def run(items, backend, cache, samples=1, settings=None, chunk_size=2):
    return generate(items, key=str, request=lambda item: GenerationRequest(request_id=item, prompt=f"about {item}"),
                    samples=samples, cache=cache, settings=settings or {"model": "m"}, inputs=[],
                    load_backend=lambda: backend, chunk_size=chunk_size, desc="test")


def test_outputs_are_cached_and_a_finished_run_loads_no_model_fake_backend(tmp_path):
    backend = ScriptedBackend(lambda rid, i: f"{rid}:{i}", samples=2)
    outputs = run(["a", "b", "c"], backend, tmp_path / "out.jsonl", samples=2)
    assert [[o.text for o in outputs.of(x)] for x in "abc"] == [["a:0", "a:1"], ["b:0", "b:1"], ["c:0", "c:1"]]
    assert outputs.stats["model_calls"] == 2 and outputs.stats["new_outputs"] == 6
    again = generate(["a", "b", "c"], key=str, request=pytest.fail, samples=2, cache=tmp_path / "out.jsonl",
                     settings={"model": "m"}, inputs=[], load_backend=lambda: pytest.fail("model loaded"),
                     chunk_size=2, desc="test")
    assert again.by_request == outputs.by_request and again.stats["model_calls"] == 0
    changed = ScriptedBackend(lambda rid, i: "new", samples=2)  # other settings: nothing is reused
    assert {o.text for o in run(["a"], changed, tmp_path / "out.jsonl", 2, {"model": "other"}).of("a")} == {"new"}


def test_the_backend_the_driver_loads_is_closed_and_the_callers_is_not_fake_backend(tmp_path):
    loaded, held = ScriptedBackend(lambda rid, i: "x"), ScriptedBackend(lambda rid, i: "y")
    run(["a"], loaded, tmp_path / "one.jsonl")
    assert loaded.closed  # a vLLM engine's processes and memory go with it
    generate(["a"], key=str, request=lambda item: GenerationRequest(request_id=item, prompt=item), samples=1,
             cache=tmp_path / "two.jsonl", settings={"model": "m"}, inputs=[], backend=held,
             load_backend=lambda: pytest.fail("model loaded"), chunk_size=2, desc="test")
    assert held.calls == 1 and not hasattr(held, "closed")


def test_a_request_killed_between_its_samples_is_asked_again_fake_backend(tmp_path):
    backend = ScriptedBackend(lambda rid, i: f"{rid}:{i}", samples=4)
    run(["a", "b"], backend, tmp_path / "out.jsonl", samples=4)
    progress = tmp_path / ".progress" / "out.jsonl"
    lines = progress.read_text().splitlines(keepends=True)
    progress.write_text("".join(lines[:5]))  # killed after sample 0 of "b"
    resumed = ScriptedBackend(lambda rid, i: f"{rid}:{i}", samples=4)
    outputs = run(["a", "b"], resumed, tmp_path / "out.jsonl", samples=4)
    assert [r.request_id for r in resumed.requests] == ["b"]  # "a" is complete, "b" is not
    assert [o.text for o in outputs.of("b")] == ["b:0", "b:1", "b:2", "b:3"]  # no duplicate of sample 0
    assert len(progress.read_text().splitlines()) == 8


def test_a_backend_answering_another_request_is_an_error_fake_backend(tmp_path):
    class Stray(ScriptedBackend):
        def generate(self, requests):
            return super().generate([GenerationRequest(request_id="zz", prompt="")])

    with pytest.raises(RuntimeError, match=r"answered requests it was not sent: \['zz'\]"):
        run(["a"], Stray(lambda rid, i: "x"), tmp_path / "out.jsonl")


def test_a_parsing_fix_reaches_rows_already_generated_without_a_model_call_fake_backend(prepared_shard, tmp_path,
                                                                                        monkeypatch):
    """The cache holds what the model said; the teacher row's parsed fields are derived on each run."""
    from dataclasses import replace

    from avrt.models.spec import ModelSpec
    from avrt.traces import teacher as teacher_stage
    shard, media = prepared_shard
    spec = ModelSpec.from_config("t", {"family": "qwen2_5_vl", "checkpoint": "/nonexistent"})
    entry = {"name": "visual", "model": "t", "prompt": "visual_teacher", "modality": "frames"}
    out = tmp_path / "traces.jsonl"
    teacher_stage.run_teacher(entry, spec, ["train"], shard, media, out, 8,
                              backend=ScriptedBackend(lambda rid, i: "It is the cello.\nAnswer: C"))
    assert {r.answer_letter for r in read_rows(out, TeacherTrace)} == {"C"}
    fixed = teacher_stage.parse_teacher_answer
    monkeypatch.setattr(teacher_stage, "parse_teacher_answer", lambda text, choices: replace(fixed(text, choices), letter="D"))
    stats = teacher_stage.run_teacher(entry, spec, ["train"], shard, media, out, 8,
                                      backend=ScriptedBackend(lambda rid, i: pytest.fail("model asked")))
    assert stats["model_calls"] == 0 and {r.answer_letter for r in read_rows(out, TeacherTrace)} == {"D"}


def test_rows_are_validated_on_read_naming_file_and_line(tmp_path):
    ok = {"video_name": "v", "clip_path": "v.mp4", "params": "p", "status": "failed", "reason": "media_failed"}
    path = tmp_path / "media.jsonl"
    cases = [
        ({**ok, "colour": "red"}, r"media.jsonl:2: MediaRow row: unknown fields \['colour'\]"),
        ({k: v for k, v in ok.items() if k != "status"}, r"media.jsonl:2: MediaRow row: missing fields \['status'\]"),
        ({**ok, "duration": "long"}, r"media.jsonl:2: MediaRow.duration: expected a number, got 'long'"),
        ({**ok, "frames": "f.jpg"}, r"media.jsonl:2: MediaRow.frames: expected a list"),
        ({**ok, "audio_samples": True}, r"media.jsonl:2: MediaRow.audio_samples: expected an integer"),
    ]
    for bad, message in cases:
        path.write_text(json.dumps(ok) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(RowError, match=message):
            read_rows(path, MediaRow)
    path.write_text(json.dumps(ok) + "\n{torn\n")
    with pytest.raises(RowError, match=r"media.jsonl:2: not JSON"):
        read_rows(path, MediaRow)
    path.write_text("\n" + json.dumps(ok) + "\n")
    assert read_rows(path, MediaRow) == [MediaRow.from_dict(ok)]
