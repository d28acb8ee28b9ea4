"""The demo's warm-up (avrt.demo.warm_up): what it teaches each model reads back, through the
pipeline's own parsers, as the ground truth; a warmed-up zoo keeps its training through the Audio
Flamingo 3 think adapter; a misnamed model stops it. What the warmed-up teachers then get right on the
demo's own questions is asserted by the demo's test (tests/test_workflow.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from avrt.core.config import ConfigError, load_config
from avrt.core.parsing import check_merger_output, parse_teacher_answer
from avrt.core.rows import ManifestRow, read_rows
from avrt.demo import warm_up
from avrt.demo.synthetic_avqa import POSITION_QUESTION

REPO = Path(__file__).resolve().parents[1]


def demo_config(tmp_path: Path, zoo: Path, models: dict) -> dict:
    overlay = {"models": {name: {"checkpoint": str(zoo / family)} for name, family in
                          (("visual_teacher", "qwen2_5_vl"), ("audio_teacher", "audio_flamingo3"),
                           ("merger", "text_llm"), ("student", "qwen2_5_omni"))},
               "demo_warm_up": {"clips": 3, "batch_size": 2}}
    overlay["models"]["audio_teacher"]["adapter"] = str(zoo / "audio_flamingo3")
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    config = load_config(REPO / "config/config.yaml", REPO / "config/demo.yaml", tmp_path / "overlay.yaml")
    config["demo_warm_up"].update(models=list(models), steps=models)
    return config


def test_every_target_reads_back_as_its_question_s_ground_truth(prepared_shard, tmp_path):
    shard, media = prepared_shard
    rows = read_rows(shard, ManifestRow)
    config = demo_config(tmp_path, tmp_path, {"visual_teacher": 1, "audio_teacher": 1, "merger": 1})
    by_model = {role.model: role for role in warm_up.roles(config)}
    usable = {r.sample_id for r in rows if r.video_name in warm_up.sounding_class(rows)}

    visual = warm_up.examples_for(by_model["visual_teacher"], rows, media)
    audio = warm_up.examples_for(by_model["audio_teacher"], rows, media)
    merged = warm_up.examples_for(by_model["merger"], rows, media)
    assert visual and audio and merged
    for ex in visual + audio:  # as the teacher stage parses a teacher's output
        assert parse_teacher_answer(ex.completion, ex.choices).letter == ex.gold_letter, ex.completion
    for ex in merged:  # as the merger stage checks the merged trace
        check = check_merger_output(ex.completion, len(ex.choices))
        assert check.ok and check.letter == ex.gold_letter, ex.completion
    # the audio teacher learns only what a sound can tell; the others every question with media
    assert not any(ex.question == POSITION_QUESTION for ex in audio)
    assert {ex.sample_id for ex in visual} == {ex.sample_id for ex in merged} <= usable
    # the merger is prompted with both teachers' texts, as the merge stage prompts it
    prompt = warm_up.prompt_renderer(by_model["merger"], rows)(merged[0])
    assert "Audio Analysis: Audio Description:" in prompt and "Visual Analysis: Visual Description:" in prompt


def test_sightsound_targets_read_back_as_the_teacher_stage_and_the_checker_read_them(prepared_shard, tmp_path):
    """The SightSound-R1 teacher's trace holds the strict format and the gold letter; the checker
    learns "yes" for it and "no" for the same trace claiming another object's sound."""
    from avrt.core.answers import is_strict_format
    from avrt.core.parsing import parse_fact_check_verdict

    shard, media = prepared_shard
    rows = read_rows(shard, ManifestRow)
    config = demo_config(tmp_path, tmp_path, {})
    config = {**config, "teachers": [{"name": "sightsound", "model": "vl_teacher", "prompt": "sightsound_teacher",
                                      "modality": "silent_video"}],
              "sightsound": {**config["sightsound"], "enabled": True, "checker": "checker"},
              "demo_warm_up": {**config["demo_warm_up"], "models": ["vl_teacher", "checker"]}}
    teacher, checker = warm_up.roles(config)
    assert (teacher.kind, checker.kind, checker.modalities) == ("silent_video", "checker", ("audio",))
    traces = warm_up.examples_for(teacher, rows, media)
    assert traces and all(is_strict_format(ex.completion) for ex in traces)
    assert all(parse_teacher_answer(ex.completion, ex.choices).letter == ex.gold_letter for ex in traces)
    checks = warm_up.examples_for(checker, rows, media)
    assert [ex.completion for ex in checks] == ["yes", "no"] * len(traces)
    assert all(parse_fact_check_verdict(ex.completion).accepted == (ex.completion == "yes") for ex in checks)
    render = warm_up.prompt_renderer(checker, rows)
    held, claimed = render(checks[0]), render(checks[1])
    assert traces[0].completion in held and traces[0].completion not in claimed


def test_only_a_teacher_s_or_the_merger_s_model_can_be_warmed_up(tmp_path):
    config = demo_config(tmp_path, tmp_path, {"student": 1})
    with pytest.raises(ConfigError, match=r"demo_warm_up.models.*\['student'\]"):
        warm_up.roles(config)


def test_a_model_outside_the_zoo_is_refused_before_anything_is_built(tmp_path):
    from avrt.demo.zoo import build_zoo

    config = demo_config(tmp_path, tmp_path / "elsewhere", {"merger": 1})
    with pytest.raises(ValueError, match="models.merger loads .*elsewhere/text_llm"):
        build_zoo(tmp_path / "zoo", ["text_llm"], warm_up_config=config)
    assert not (tmp_path / "zoo").exists()


@pytest.mark.integration
def test_a_warmed_up_zoo_keeps_its_training_through_the_think_adapter(tmp_path, one_torch_thread):
    """The zoo trains the audio teacher and the merger, records it, and writes Audio Flamingo 3 a
    think adapter whose merge gives back the trained model (a random one would undo the training)."""
    import torch
    from safetensors.torch import load_file

    from avrt.demo.zoo import build_zoo
    from avrt.models.adapters import get_adapter
    from avrt.models.hf_backend import load_hf_model
    from avrt.models.spec import model_spec

    zoo = tmp_path / "zoo"
    config = demo_config(tmp_path, zoo, {"audio_teacher": 3, "merger": 3})
    manifest = build_zoo(zoo, ["audio_flamingo3", "text_llm"], warm_up_config=config)
    assert json.loads((zoo / "zoo.json").read_text()) == manifest
    for family, role in (("audio_flamingo3", "audio teacher"), ("text_llm", "merger")):
        summary = manifest["families"][family]["warm_up"]
        assert summary["role"] == role and summary["steps"] == 3 and summary["examples"] > 0
    assert not list(zoo.glob(".build-*"))  # the release and the trainer's scratch went with the build
    # and no file names them: two builds are byte for byte the same
    assert ".build-" not in (zoo / "audio_flamingo3/think/adapter_config.json").read_text()

    untrained = tmp_path / "untrained"
    build_zoo(untrained, ["audio_flamingo3", "text_llm"])  # same seed, no warm-up
    for family in ("audio_flamingo3", "text_llm"):
        before, after = (load_file(d / family / "model.safetensors") for d in (untrained, zoo))
        assert any(not torch.equal(before[k], after[k]) for k in before), family

    spec = model_spec(config, "audio_teacher")
    with_adapter = load_hf_model(spec, get_adapter(spec.family)).state_dict()
    plain = load_hf_model(replace(spec, adapter=None), get_adapter(spec.family)).state_dict()
    assert with_adapter.keys() == plain.keys()
    assert all(torch.allclose(with_adapter[k], plain[k]) for k in plain)
