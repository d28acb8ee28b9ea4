"""Data stage: synthetic release, ingest with planted faults, shards, frames, audio, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from avrt.core.clip_media import load_clip_media, read_media_index
from avrt.core.datasets import check_avqa_row as check_annotation
from avrt.data.ingest import ingest, read_attrition
from avrt.core.media import MediaParams, load_audio, sample_frame_indices
from avrt.data.media import prepare_shard
from avrt.data.shard import assign_shards, shard_ids, shard_manifest
from avrt.demo.synthetic_avqa import write_mp4
from avrt.core.io import read_jsonl


@pytest.fixture(scope="module")
def ingested(synthetic_release, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest")
    ann = {s: synthetic_release / "annotations" / f"{s}_qa.json" for s in ("train", "val")}
    summary = ingest(ann, synthetic_release / "videos", out, min_duration=1.0, workers=2)
    return out, summary


def faults(release: Path) -> dict[str, str]:
    summary = json.loads((release / "synthetic_summary.json").read_text())
    return {kind: names[0] for kind, names in summary["faults"].items()}


def test_synthetic_clips_are_real_h264_aac_mp4s(synthetic_release):
    clip = synthetic_release / "annotations" / "val_qa.json"
    rows = json.loads(clip.read_text())
    assert rows and {"id", "video_name", "video_id", "question_text", "multi_choice", "answer",
                     "question_type", "question_relation"} <= rows[0].keys()
    assert all(check_annotation(r) is None for r in rows)
    with av.open(str(synthetic_release / "videos" / f"{rows[0]['video_name']}.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        assert abs(c.duration / av.time_base - 10.0) < 0.2


def test_ingest_puts_each_planted_fault_in_attrition_with_its_reason(synthetic_release, ingested):
    out, summary = ingested
    planted = faults(synthetic_release)
    attrition = read_attrition(out / "attrition.tsv")
    reason_of = {r["video_name"]: r["reason"] for r in attrition}
    assert reason_of[planted["corrupt"]] == "clip_corrupt"
    assert reason_of[planted["no_audio"]] == "no_audio_track"
    assert reason_of[planted["missing"]] == "clip_missing"
    assert planted["short"] not in reason_of  # short but usable: its audio gets padded later
    manifest = list(read_jsonl(out / "manifest.jsonl"))
    # every annotated QA is either in the manifest or in attrition, never both, never lost
    total = sum(summary["annotations"].values())
    assert len(manifest) + len(attrition) == total == 16
    assert {r["video_name"] for r in manifest}.isdisjoint(reason_of)
    assert summary["dropped_qa"] == {"clip_corrupt": 2, "no_audio_track": 2, "clip_missing": 2}
    row = next(r for r in manifest if r["video_name"] == planted["short"])
    assert row["duration"] == pytest.approx(6.0, abs=0.2) and row["audio_rate"] == 44100
    assert row["gold_letter"] == "ABCD"[row["answer_index"]]


def test_ingest_drops_malformed_and_duplicate_annotations(synthetic_release, tmp_path):
    rows = json.loads((synthetic_release / "annotations" / "val_qa.json").read_text())
    bad = [dict(rows[0], answer=7), {k: v for k, v in rows[1].items() if k != "question_text"}, rows[2], dict(rows[2])]
    (tmp_path / "val.json").write_text(json.dumps(bad + rows[3:]))
    summary = ingest({"val": tmp_path / "val.json"}, synthetic_release / "videos", tmp_path / "out")
    attrition = read_attrition(tmp_path / "out" / "attrition.tsv")
    assert [(r["sample_id"], r["reason"]) for r in attrition] == [
        (str(rows[0]["id"]), "bad_annotation"), (str(rows[1]["id"]), "bad_annotation"), (str(rows[2]["id"]), "duplicate_id")]
    assert "not an index into 4 choices" in attrition[0]["detail"]
    assert summary["usable_qa"]["val"] == len(rows) - 2


def test_shards_keep_clips_whole_balanced_and_deterministic(ingested, tmp_path):
    out, _ = ingested
    outputs = [tmp_path / f"{s}.jsonl" for s in shard_ids(3)]
    sizes = shard_manifest(out / "manifest.jsonl", outputs)
    shards = [list(read_jsonl(p)) for p in outputs]
    manifest = list(read_jsonl(out / "manifest.jsonl"))
    assert sorted(r["sample_id"] for s in shards for r in s) == sorted(r["sample_id"] for r in manifest)
    owner = {}
    for i, shard in enumerate(shards):
        for r in shard:
            assert owner.setdefault(r["video_name"], i) == i  # a clip never spans two shards
    assert max(sizes) - min(sizes) <= 2  # 2 QA per clip
    assert assign_shards(manifest, 3) == shards
    assert shard_ids(1000)[-1] == "999" and shard_ids(1001)[-1] == "1000" and shard_ids(2) == ["000", "001"]


@pytest.mark.parametrize("n, k", [(250, 8), (100, 8), (8, 8), (5, 8), (1001, 16)])
def test_segment_center_indices_are_uniform(n, k):
    idx = np.array(sample_frame_indices(n, k))
    assert len(idx) == k and idx.min() >= 0 and idx.max() <= n - 1
    assert np.all(np.diff(idx) >= 0)
    if n >= k:
        gaps = np.diff(idx)
        assert gaps.max() - gaps.min() <= 1  # equal spacing up to rounding
        assert abs(idx[0] - (n - 1 - idx[-1])) <= 1  # symmetric margins: no bias to either end
        assert abs(idx[0] - n / (2 * k)) <= 1


def test_linspace_indices_include_both_ends():
    assert sample_frame_indices(250, 8, "linspace") == [0, 36, 71, 107, 142, 178, 213, 249]
    with pytest.raises(ValueError, match="unknown frame_sampling"):
        sample_frame_indices(10, 2, "random")


@pytest.fixture(scope="module")
def prepared(ingested, tmp_path_factory):
    out, _ = ingested
    media_root = tmp_path_factory.mktemp("media")
    shard = media_root / "shard.jsonl"
    shard.write_text((out / "manifest.jsonl").read_text())
    params = MediaParams(frame_max_side=96, silent_video=True)
    stats = prepare_shard(shard, media_root / "000.jsonl", params, workers=1)
    return media_root, params, stats


def test_media_frames_spread_over_the_clip(prepared):
    media_root, params, stats = prepared
    index = read_media_index(media_root / "000.jsonl")
    assert stats == {"clips": 5, "ok": 5, "failed": 0}
    for row in index.values():
        clip = load_clip_media(row, media_root)
        assert clip.frames.shape == (8, 72, 96, 3) and clip.frames.dtype == np.uint8
        n = row["num_video_frames"]
        assert row["frame_indices"] == sample_frame_indices(n, 8)
        assert np.allclose(clip.frame_times, np.array(row["frame_indices"]) / row["video_fps"], atol=0.01)
        assert clip.frame_times[0] < clip.duration / 8 and clip.frame_times[-1] > clip.duration * 7 / 8
        assert clip.frames_fps == pytest.approx(8 / clip.duration, rel=0.05)  # 0.8 for 10 s


def test_media_audio_is_exactly_10s_at_16khz_and_padding_is_recorded(synthetic_release, prepared):
    media_root, params, _ = prepared
    index = read_media_index(media_root / "000.jsonl")
    short = faults(synthetic_release)["short"]
    for name, row in index.items():
        wave, sr = sf.read(media_root / row["audio"], dtype="float32")
        assert sr == 16000 and wave.shape == (160000,)
        if name == short:
            assert row["audio_pad_samples"] == pytest.approx(4 * 16000, abs=400)
            assert np.abs(wave[-row["audio_pad_samples"]:]).max() == 0.0
        else:
            assert row["audio_pad_samples"] == 0
        assert np.abs(wave[: 16000 * 5]).max() > 0.1  # real sound, not silence


def test_audio_resampling_keeps_pitch_and_downmixes(tmp_path):
    """A 523 Hz tone muxed as 44.1 kHz stereo AAC comes out at 523 Hz, 16 kHz mono."""
    rate = 44100
    t = np.arange(rate * 3) / rate
    tone = (0.5 * np.sin(2 * np.pi * 523 * t)).astype(np.float32)
    write_mp4(tmp_path / "tone.mp4", np.zeros((30, 32, 32, 3), np.uint8), 10, tone, rate)
    out = load_audio(str(tmp_path / "tone.mp4"), MediaParams(audio_seconds=2.0))
    wave = out["audio"]
    assert wave.shape == (32000,) and out["audio_pad_samples"] == 0
    assert out["audio_source_rate"] == rate and out["audio_source_channels"] == 2
    spectrum = np.abs(np.fft.rfft(wave[4000:]))
    assert np.fft.rfftfreq(wave.size - 4000, 1 / 16000)[spectrum.argmax()] == pytest.approx(523, abs=2)
    assert 0.3 < np.abs(wave[4000:]).max() < 0.6  # mono mean of two equal channels keeps the level


def test_silent_video_has_no_audio_and_all_frames(prepared):
    media_root, _, _ = prepared
    row = next(iter(read_media_index(media_root / "000.jsonl").values()))
    with av.open(str(media_root / row["silent_video"])) as c:
        assert not c.streams.audio
        assert sum(1 for _ in c.decode(video=0)) == row["num_video_frames"]


def test_interrupted_shard_resumes_without_redoing_clips(ingested, tmp_path):
    out, _ = ingested
    shard = tmp_path / "shard.jsonl"
    shard.write_text((out / "manifest.jsonl").read_text())
    params = MediaParams(frame_max_side=64)
    prepare_shard(shard, tmp_path / "000.jsonl", params)
    first = (tmp_path / "000.jsonl").read_text()
    progress = tmp_path / "000" / "progress.jsonl"
    lines = progress.read_text().splitlines(keepends=True)
    kept = json.loads(lines[0])["video_name"]
    # a kill after the first clip: one clean row and a torn second one, no index
    progress.write_text(lines[0] + lines[1][: len(lines[1]) // 2])
    (tmp_path / "000.jsonl").unlink()
    kept_wav = tmp_path / "000" / kept / "audio.wav"
    os.utime(kept_wav, (1, 1))
    prepare_shard(shard, tmp_path / "000.jsonl", params)
    assert kept_wav.stat().st_mtime == 1  # not prepared again
    assert (tmp_path / "000.jsonl").read_text() == first
    assert len(progress.read_text().splitlines()) == len(lines)  # no duplicated rows
    # new parameters: the shard starts afresh
    prepare_shard(shard, tmp_path / "000.jsonl", MediaParams(frame_max_side=32))
    assert kept_wav.stat().st_mtime != 1
    assert next(iter(read_media_index(tmp_path / "000.jsonl").values()))["frame_size"] == [32, 24]


def test_clip_that_fails_in_media_is_recorded_not_fatal(ingested, tmp_path):
    out, _ = ingested
    rows = list(read_jsonl(out / "manifest.jsonl"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(Path(rows[0]["clip_path"]).read_bytes()[:3000])  # truncated after ingest
    rows = [dict(r, clip_path=str(broken)) if r["video_name"] == rows[0]["video_name"] else r for r in rows]
    shard = tmp_path / "shard.jsonl"
    shard.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = prepare_shard(shard, tmp_path / "000.jsonl", MediaParams(frame_max_side=64))
    assert stats["failed"] == 1 and stats["ok"] == stats["clips"] - 1
    failed = read_media_index(tmp_path / "000.jsonl")[rows[0]["video_name"]]
    assert failed["status"] == "failed" and failed["reason"] == "media_failed" and failed["detail"]
    with pytest.raises(ValueError, match=rows[0]["video_name"]):
        load_clip_media(failed, tmp_path)


def test_media_from_files_cuts_benchmark_media_like_the_shards(synthetic_release, prepared, tmp_path):
    from avrt.core.media import media_from_files

    media_root, params, _ = prepared
    row = next(iter(read_media_index(media_root / "000.jsonl").values()))
    shard_clip = load_clip_media(row, media_root)
    clip = media_from_files("x", params, video=row["clip_path"])
    assert np.array_equal(clip.frame_times, shard_clip.frame_times) and clip.frames.shape == shard_clip.frames.shape
    assert np.abs(clip.audio - shard_clip.audio).max() < 1e-3  # the shard's WAV is 16-bit
    sf.write(tmp_path / "a.wav", shard_clip.audio[:32000], 16000)
    from PIL import Image

    Image.fromarray(shard_clip.frames[0]).save(tmp_path / "i.png")
    omni = media_from_files("y", params, image=str(tmp_path / "i.png"), audio=str(tmp_path / "a.wav"))
    assert omni.frames.shape[0] == 1 and omni.audio.shape == (160000,)
    assert np.abs(omni.audio[32000:]).max() == 0.0  # 2 s of audio padded to 10 s
    audio_only = media_from_files("z", params, audio=str(tmp_path / "a.wav"))
    assert audio_only.frames.shape[0] == 0 and audio_only.audio.shape == (160000,)
