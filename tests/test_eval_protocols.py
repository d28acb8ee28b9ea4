"""Input protocols: each benchmark's items are cut by its own protocol, long videos cost only what
their cut holds, and every prediction, result and table names the protocol of its numbers."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from avrt import cli
from avrt.core.config import ConfigError, load_config
from avrt.core.io import read_jsonl
from avrt.core.media import MediaParams, decode_frames, fps_frame_count, load_audio, media_from_files
from avrt.demo.synthetic_avqa import AUDIO_RATE, write_mp4
from avrt.demo.synthetic_benchmarks import generate
from avrt.evaluation.protocols import check_protocols, protocol_name, protocol_params, resolve
from fake_backends import ScriptedBackend, strict_answer_backend

SECONDS, FPS = 90, 4  # a long-ish clip: 360 frames, 90 s of audio


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """A real 90 s H.264/AAC MP4 whose frame i is a flat grey of level levels[i] (a ramp over the
    video), so a decoded frame shows which frame it is."""
    n = SECONDS * FPS
    levels = np.linspace(16, 235, n).round().astype(np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (n, 24, 32, 3)).copy()
    t = np.arange(SECONDS * AUDIO_RATE) / AUDIO_RATE
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    write_mp4(path, frames, FPS, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    return str(path), n, levels


@pytest.fixture(scope="module")
def config():
    return load_config("config/config.yaml")


def test_frames_at_a_rate_are_capped_and_spread_over_the_whole_video(long_video):
    path, n, levels = long_video
    v = decode_frames(path, MediaParams(fps=2.0, max_frames=16, frame_sampling="linspace"))
    assert v["num_video_frames"] == n and v["frames"].shape == (16, 24, 32, 3)
    assert v["frame_indices"] == np.round(np.linspace(0, n - 1, 16)).astype(int).tolist()
    assert v["frame_times"][0] == 0.0 and v["frame_times"][-1] == pytest.approx((n - 1) / FPS)
    # each decoded frame is the one its index names (decord seeks to it), not a neighbour
    means = v["frames"].reshape(16, -1).mean(axis=1)
    assert np.abs(means - levels[v["frame_indices"]]).max() < 4


def test_full_length_audio_stops_at_its_cap_and_is_not_padded(long_video):
    path, _, _ = long_video
    capped = load_audio(path, MediaParams(audio_length="full", audio_seconds=30.0))
    assert capped["audio"].shape == (30 * 16000,) and capped["audio_pad_samples"] == 0
    assert capped["audio_source_seconds"] == pytest.approx(30.0, abs=0.05)  # demuxed no further than the cap
    whole = load_audio(path, MediaParams(audio_length="full", audio_seconds=300.0))
    assert abs(whole["audio"].size - SECONDS * 16000) < 0.05 * 16000 and whole["audio_pad_samples"] == 0
    fixed = load_audio(path, MediaParams())  # the training cut: exactly the first 10 s
    assert fixed["audio"].shape == (160000,)


def test_the_student_protocol_cuts_a_long_video_to_its_caps(long_video, config):
    path, n, _ = long_video
    params = protocol_params(config, "qwen_omni")
    assert (params.fps, params.max_frames, params.audio_length, params.audio_seconds) == (2.0, 64, "full", 300.0)
    clip = media_from_files("long", params, video=path)
    assert clip.frames.shape[0] == 64 and clip.frame_times[-1] == pytest.approx((n - 1) / FPS)
    assert clip.frames_fps == pytest.approx(63 / ((n - 1) / FPS), rel=0.02)  # the rate the model is told
    assert abs(clip.audio.size - SECONDS * 16000) < 0.05 * 16000
    training = media_from_files("long", protocol_params(config, "avrt"), video=path)
    assert training.frames.shape[0] == 8 and training.audio.size == 160000
    assert training.frame_times[-1] > 0.8 * SECONDS  # 8 frames over the whole video, too


@pytest.mark.parametrize(
    "total, native_fps, fps, cap, expected",
    [
        (360, 4.0, 2.0, 64, 64),  # 180 wanted, capped
        (360, 4.0, 2.0, 768, 180),
        (30, 30.0, 2.0, 64, 4),  # a 1 s clip: at least 4 frames
        (3, 30.0, 2.0, 64, 2),  # never more than the video has, an even count
        (1, 30.0, 2.0, 64, 1),  # a one-frame video still gives its frame
        (360, 4.0, 2.0, 7, 6),
    ],
)
def test_fps_frame_count_follows_qwen_omni_utils(total, native_fps, fps, cap, expected):
    assert fps_frame_count(total, native_fps, fps, cap) == expected


def test_the_training_cut_keeps_its_digest_and_a_protocol_changes_it():
    old_fields = {"num_frames": 8, "frame_sampling": "segment_center", "frame_max_side": 640, "jpeg_quality": 95,
                  "audio_seconds": 10.0, "sample_rate": 16000, "resample_type": "soxr_hq", "silent_video": False}
    # the digest the data stage's prepared shards were written under
    assert MediaParams().digest() == hashlib.sha256(json.dumps(old_fields, sort_keys=True).encode()).hexdigest()[:16]
    assert MediaParams(fps=2.0, max_frames=64).digest() != MediaParams().digest()
    assert MediaParams(audio_length="full").digest() != MediaParams().digest()
    # at a rate, num_frames is not read, so it does not move the digest
    assert MediaParams(fps=2.0, max_frames=64, num_frames=4).digest() == MediaParams(fps=2.0, max_frames=64).digest()
    with pytest.raises(ValueError, match="max_frames"):
        MediaParams(fps=2.0, max_frames=0)


def test_benchmarks_name_their_protocols_and_unknown_names_are_refused(config):
    assert protocol_name(config, "avqa_val") == "avrt" and protocol_name(config, "videomme") == "qwen_omni"
    assert protocol_name(config, "videomme", teacher=True) == "teacher_long"
    assert protocol_name(config, "a_new_benchmark") == "avrt"  # not listed: the training cut
    teacher, _ = resolve(config, "omnibench", teacher=True)
    assert "8 frames" in teacher.summary and "at most 300 s" in teacher.summary
    check_protocols(config)
    broken = load_config("config/config.yaml", overrides={"evaluation": {"benchmark_protocols": {"mmar": "nope"}}})
    with pytest.raises(ConfigError, match=r"evaluation\.benchmark_protocols\.mmar.*'nope'"):
        check_protocols(broken)
    # a recipe overriding one key of a protocol keeps the others' defaults
    layered = load_config("config/config.yaml", overrides={"evaluation": {"protocols": {"qwen_omni": {"max_frames": 32}}}})
    assert protocol_params(layered, "qwen_omni").fps == 2.0 and protocol_params(layered, "qwen_omni").max_frames == 32


def test_each_benchmark_reaches_the_model_cut_by_its_protocol_and_results_name_it_fake_backend(
        synthetic_release, tmp_path, monkeypatch):
    """`avrt eval-records` -> `avrt evaluate` -> `avrt eval-score` -> `avrt eval-tables` on AVQA val
    (training cut) and Video-MME (the student's protocol), the model a recording fake."""
    files = generate(tmp_path / "bench", items=2, seconds=20.0, width=64, height=48, fps=4, benchmarks=["videomme"])
    files["avqa_val"] = {"annotations": str(synthetic_release / "annotations" / "val_qa.json"),
                         "media_dir": str(synthetic_release / "videos")}
    backends: list[ScriptedBackend] = []

    def fake_load_model(spec):
        backends.append(strict_answer_backend())
        return backends[-1]

    monkeypatch.setattr("avrt.models.backends.load_model", fake_load_model)
    results = []
    for bench in ("avqa_val", "videomme"):
        records, pred, result = (tmp_path / f"{bench}.{kind}" for kind in ("jsonl", "predictions.jsonl", "result.json"))
        assert cli.main(["eval-records", "--benchmark", bench, "--annotations", files[bench]["annotations"],
                         "--media-dir", files[bench]["media_dir"], "--output", str(records),
                         "--report", str(tmp_path / f"{bench}.report.json")]) == 0
        assert cli.main(["evaluate", "--config", "config/demo.yaml", "--records", str(records), "--benchmark", bench,
                         "--model-tag", "base", "--out", str(pred)]) == 0
        assert cli.main(["eval-score", "--records", str(records), "--predictions", str(pred),
                         "--output", str(result)]) == 0
        results.append(f"base:{bench}:both={result}")
    avqa, videomme = (b.requests for b in backends)
    # AVQA val: 10 s clips cut as in training (8 frames, exactly 10 s of audio)
    assert {r.media.frames.shape[0] for r in avqa} == {8} and {r.media.audio.size for r in avqa} == {160000}
    # Video-MME: 2 fps over the 20 s clip (40 frames, under the cap of 64) and all 20 s of audio
    assert {r.media.frames.shape[0] for r in videomme} == {40}
    assert all(abs(r.media.audio.size - 20 * 16000) < 800 for r in videomme)
    for bench, name in (("avqa_val", "avrt"), ("videomme", "qwen_omni")):
        rows = list(read_jsonl(tmp_path / f"{bench}.predictions.jsonl"))
        assert {r["protocol"]["name"] for r in rows} == {name}
        result = json.loads((tmp_path / f"{bench}.result.json").read_text())
        assert result["protocol"] == rows[0]["protocol"]
    assert cli.main(["eval-tables", "--results", *results, "--out-dir", str(tmp_path / "tables")]) == 0
    table3 = (tmp_path / "tables" / "table3.md").read_text()
    assert "Input protocol avrt (8 frames" in table3 and "Input protocol qwen_omni (2 fps" in table3
    per_benchmark = (tmp_path / "tables" / "per_benchmark.csv").read_text()
    assert "avqa_val,both,avrt," in per_benchmark and "videomme,both,qwen_omni," in per_benchmark


def test_the_protocol_is_part_of_the_predictions_cache_key_fake_backend(synthetic_release, tmp_path, config):
    from avrt.evaluation.inference import run_inference
    from avrt.evaluation.records import write_records
    from avrt.evaluation.registry import load_benchmark
    from avrt.models.spec import ModelSpec

    records, _ = load_benchmark("avqa_val", synthetic_release / "annotations" / "val_qa.json",
                                synthetic_release / "videos")
    write_records(tmp_path / "records.jsonl", records)
    spec = ModelSpec.from_config("student", {"family": "qwen2_5_omni", "checkpoint": "/nonexistent"})
    asked = []
    for name in ("avrt", "avrt", "qwen_omni"):
        backend = strict_answer_backend()
        protocol, params = resolve(config, "avqa_val") if name == "avrt" else resolve(config, "videomme")
        run_inference(tmp_path / "records.jsonl", spec, "reasoning", params, "both", tmp_path / "pred.jsonl",
                      chunk_size=8, backend=backend, protocol=protocol)
        asked.append(len(backend.requests))
    assert asked == [len(records), 0, len(records)]  # the same protocol is cached, another one asks afresh
    assert {r["protocol"]["name"] for r in read_jsonl(tmp_path / "pred.jsonl")} == {"qwen_omni"}
