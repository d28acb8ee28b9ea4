"""Data stage: synthetic release, ingest with planted faults, shards, frames, audio, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from avrt.core.clip_media import load_clip_media
from avrt.core.config import stage_config
from avrt.core.datasets import check_avqa_row as check_annotation
from avrt.core.io import read_jsonl
from avrt.core.media import MediaParams, load_audio, sample_frame_indices
from avrt.core.rows import ManifestRow, MediaRow, read_rows
from avrt.data.ingest import ingest, read_attrition
from avrt.data.media import prepare_shard
from avrt.data.shard import assign_shards, shard_ids, shard_manifest
from avrt.demo.synthetic_avqa import write_mp4


@pytest.fixture(scope="module")
def ingested(synthetic_release, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest")
    ann = {s: synthetic_release / "annotations" / f"{s}_qa.json" for s in ("train", "val")}
    data = stage_config("data", {"checks": {"min_duration_s": 1.0, "workers": 2}})
    summary = ingest(ann, synthetic_release / "videos", out, data)
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
    manifest = read_rows(out / "manifest.jsonl", ManifestRow)  # typed rows: every field present and well typed
    # every annotated QA is either in the manifest or in attrition, never both, never lost
    total = sum(summary["annotations"].values())
    assert len(manifest) + len(attrition) == total == 8 * 3  # 3 QA per clip
    assert {r.video_name for r in manifest}.isdisjoint(reason_of)
    assert summary["dropped_qa"] == {"clip_corrupt": 3, "no_audio_track": 3, "clip_missing": 3}
    row = next(r for r in manifest if r.video_name == planted["short"])
    assert row.duration == pytest.approx(6.0, abs=0.2) and row.audio_rate == 44100
    assert row.gold_letter == "ABCD"[row.answer_index]
    annotated = {str(r["id"]) for s in ("train", "val")
                 for r in json.loads((synthetic_release / "annotations" / f"{s}_qa.json").read_text())}
    assert {r.sample_id for r in manifest} <= annotated  # the AVQA question id, as a string


def test_ingest_drops_malformed_and_duplicate_annotations(synthetic_release, tmp_path):
    rows = json.loads((synthetic_release / "annotations" / "val_qa.json").read_text())
    bad = [dict(rows[0], answer=7), {k: v for k, v in rows[1].items() if k != "question_text"}, rows[2], dict(rows[2])]
    (tmp_path / "val.json").write_text(json.dumps(bad + rows[3:]))
    summary = ingest({"val": tmp_path / "val.json"}, synthetic_release / "videos", tmp_path / "out")
    attrition = read_attrition(tmp_path / "out" / "attrition.tsv")
    assert [(r["sample_id"], r["reason"]) for r in attrition] == [
        (str(rows[0]["id"]), "bad_annotation"), (str(rows[1]["id"]), "bad_annotation"), (str(rows[2]["id"]), "duplicate_id")]
    assert "'answer' must be an option index 0-3, got 7" in attrition[0]["detail"]
    assert summary["usable_qa"]["val"] == len(rows) - 2


def test_shards_keep_clips_whole_balanced_and_deterministic(ingested, tmp_path):
    out, _ = ingested
    outputs = [tmp_path / f"{s}.jsonl" for s in shard_ids(3)]
    sizes = shard_manifest(out / "manifest.jsonl", outputs)
    shards = [read_rows(p, ManifestRow) for p in outputs]
    manifest = read_rows(out / "manifest.jsonl", ManifestRow)
    assert sorted(r.sample_id for s in shards for r in s) == sorted(r.sample_id for r in manifest)
    owner = {}
    for i, shard in enumerate(shards):
        for r in shard:
            assert owner.setdefault(r.video_name, i) == i  # a clip never spans two shards
    assert max(sizes) - min(sizes) <= 3  # 3 QA per clip
    assert assign_shards(manifest, 3) == shards
    assert shard_ids(1000)[-1] == "999" and shard_ids(1001)[-1] == "1000" and shard_ids(2) == ["000", "001"]


def test_clip_asked_about_in_two_splits_lands_in_one_shard_and_is_prepared_once(synthetic_release, ingested, tmp_path):
    from avrt.data.summary import summarize

    out, _ = ingested
    shared = next(r for r in read_rows(out / "manifest.jsonl", ManifestRow) if r.split == "train")
    ann = {s: json.loads((synthetic_release / "annotations" / f"{s}_qa.json").read_text()) for s in ("train", "val")}
    train_qa = next(r for r in ann["train"] if r["video_name"] == shared.video_name)
    ann["val"].append(dict(train_qa, id=9001))  # AVQA asks about some clips in both splits
    for split, rows in ann.items():
        (tmp_path / f"{split}.json").write_text(json.dumps(rows))
    data = stage_config("data", {"checks": {"min_duration_s": 1.0, "workers": 1}})
    ingest({s: tmp_path / f"{s}.json" for s in ann}, synthetic_release / "videos", tmp_path / "data", data)
    # by (split, clip) the clip's val QA would fall into the second shard, its train QAs into the first
    shards = [tmp_path / "data" / f"{s}.jsonl" for s in shard_ids(2)]
    shard_manifest(tmp_path / "data" / "manifest.jsonl", shards)
    holders = [i for i, path in enumerate(shards)
               if any(r.video_name == shared.video_name for r in read_rows(path, ManifestRow))]
    assert len(holders) == 1
    rows = [r for r in read_rows(shards[holders[0]], ManifestRow) if r.video_name == shared.video_name]
    assert sorted(r.split for r in rows) == ["train", "train", "train", "val"]  # each row keeps its split
    params = MediaParams(num_frames=2, frame_max_side=32, audio_seconds=1.0)
    indexes = [tmp_path / "media" / f"{s}.jsonl" for s in shard_ids(2)]
    for shard, index in zip(shards, indexes):
        prepare_shard(shard, index, params)
    prepared = [r.video_name for index in indexes for r in read_rows(index, MediaRow)]
    assert prepared.count(shared.video_name) == 1
    summary = summarize(tmp_path / "data" / "ingest_summary.json", tmp_path / "data" / "attrition.tsv", shards, indexes,
                        tmp_path / "summary.json", tmp_path / "attrition_all.tsv", tmp_path / "counts.tsv")
    assert summary["usable_qa"] == {"train": 9, "val": 7}


@pytest.mark.parametrize("n, k", [(250, 8), (100, 8), (8, 8), (5, 8), (1001, 16)])
def test_segment_center_indices_are_uniform(n, k):
    idx = np.array(sample_frame_indices(n, k, "segment_center"))
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


def ingest_clips(synthetic_release, tmp_path: Path, names: list[str]) -> tuple[dict[str, dict], list[ManifestRow]]:
    """Ingest one QA per clip `tmp_path/videos/<name>.mp4`: (attrition row by clip, manifest)."""
    template = json.loads((synthetic_release / "annotations" / "val_qa.json").read_text())[0]
    rows = [dict(template, id=i, video_name=name) for i, name in enumerate(names)]
    (tmp_path / "val.json").write_text(json.dumps(rows))
    data = stage_config("data", {"checks": {"min_duration_s": 1.0, "workers": 1}})
    ingest({"val": tmp_path / "val.json"}, tmp_path / "videos", tmp_path / "out", data)
    attrition = {r["video_name"]: r for r in read_attrition(tmp_path / "out" / "attrition.tsv")}
    return attrition, read_rows(tmp_path / "out" / "manifest.jsonl", ManifestRow)


def tone(seconds: float, rate: int = 44100) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def write_audio_only_mp4(path: Path, audio: np.ndarray, rate: int = 44100) -> None:
    """An MP4 (M4A) holding only an AAC track."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for start in range(0, audio.size, 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_each_stream_must_last_the_minimum_duration(synthetic_release, tmp_path):
    """A 1-frame video with 2 s of audio is a 2 s container, but there is nothing to look at."""
    videos = tmp_path / "videos"
    write_mp4(videos / "one_frame.mp4", np.zeros((1, 32, 32, 3), np.uint8), 10, tone(2.0))
    write_mp4(videos / "short_audio.mp4", np.zeros((20, 32, 32, 3), np.uint8), 10, tone(0.5))
    write_mp4(videos / "fine.mp4", np.zeros((20, 32, 32, 3), np.uint8), 10, tone(2.0))
    attrition, manifest = ingest_clips(synthetic_release, tmp_path, ["one_frame", "short_audio", "fine"])
    assert attrition["one_frame"]["reason"] == "clip_too_short"
    assert attrition["one_frame"]["detail"] == "video stream 0.10 s < 1.00 s"
    assert attrition["short_audio"]["reason"] == "clip_too_short"
    assert attrition["short_audio"]["detail"] == "audio stream 0.50 s < 1.00 s"
    assert [r.video_name for r in manifest] == ["fine"] and manifest[0].duration == pytest.approx(2.0, abs=0.05)


def test_clip_without_a_video_stream_is_dropped(synthetic_release, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_audio_only_mp4(videos / "m4a.mp4", tone(2.0))
    sf.write(videos / "wav.mp4", tone(2.0, 16000), 16000, format="WAV")  # a WAV under a clip's name
    attrition, manifest = ingest_clips(synthetic_release, tmp_path, ["m4a", "wav"])
    assert {name: r["reason"] for name, r in attrition.items()} == {"m4a": "no_video_stream", "wav": "no_video_stream"}
    assert manifest == []


def write_pcm_mp4(path: Path, n_frames: int, fps: int, samples: np.ndarray, rate: int = 16000) -> None:
    """An MP4 with black H.264 frames and an uncompressed 16-bit PCM (WAV-style) mono track."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=rate)
        audio.layout = "mono"
        for _ in range(n_frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        container.mux(video.encode())
        for start in range(0, samples.size, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode())


def test_digitally_silent_audio_is_flagged_not_dropped(synthetic_release, tmp_path):
    videos = tmp_path / "videos"
    frames = np.zeros((20, 32, 32, 3), np.uint8)
    write_mp4(videos / "muted_aac.mp4", frames, 10, np.zeros(2 * 44100, np.float32))  # an AAC track of zeros
    write_pcm_mp4(videos / "muted_pcm.mp4", 20, 10, np.zeros(2 * 16000, np.int16))
    write_mp4(videos / "sound.mp4", frames, 10, tone(2.0))
    _, manifest = ingest_clips(synthetic_release, tmp_path, ["muted_aac", "muted_pcm", "sound"])
    shard = tmp_path / "out" / "manifest.jsonl"
    stats = prepare_shard(shard, tmp_path / "media" / "000.jsonl", MediaParams(num_frames=2, audio_seconds=2.0))
    index = read_media_index(tmp_path / "media" / "000.jsonl")
    assert len(manifest) == 3 and stats == {"clips": 3, "ok": 3, "failed": 0}  # flagged, not dropped
    assert {name: row.audio_silent for name, row in index.items()} == {"muted_aac": True, "muted_pcm": True,
                                                                        "sound": False}
    wave, _ = sf.read(tmp_path / "media" / index["muted_pcm"].audio)
    assert not wave.any()
    old_row = {k: v for k, v in index["sound"].to_dict().items() if k != "audio_silent"}
    assert MediaRow.from_dict(old_row).audio_silent is False  # rows written before the flag still read


@pytest.fixture(scope="module")
def prepared(ingested, tmp_path_factory):
    out, _ = ingested
    media_root = tmp_path_factory.mktemp("media")
    shard = media_root / "shard.jsonl"
    shard.write_text((out / "manifest.jsonl").read_text())
    params = MediaParams(frame_max_side=96, silent_video=True)
    stats = prepare_shard(shard, media_root / "000.jsonl", params, workers=1)
    return media_root, params, stats


def read_media_index(path) -> dict[str, MediaRow]:
    return {r.video_name: r for r in read_rows(path, MediaRow)}


def test_media_frames_spread_over_the_clip(prepared):
    media_root, params, stats = prepared
    index = read_media_index(media_root / "000.jsonl")
    assert stats == {"clips": 5, "ok": 5, "failed": 0}
    rows = read_rows(media_root / "000.jsonl", MediaRow)  # the index holds typed media rows
    assert [r.video_name for r in rows] == sorted(index) and all(r.ok and r.params == params.digest() for r in rows)
    for row in index.values():
        clip = load_clip_media(row, media_root)
        assert clip.frames.shape == (8, 72, 96, 3) and clip.frames.dtype == np.uint8
        n = row.num_video_frames
        assert list(row.frame_indices) == sample_frame_indices(n, 8, params.frame_sampling)
        assert np.allclose(clip.frame_times, np.array(row.frame_indices) / row.video_fps, atol=0.01)
        assert clip.frame_times[0] < clip.duration / 8 and clip.frame_times[-1] > clip.duration * 7 / 8
        assert clip.frames_fps == pytest.approx(8 / clip.duration, rel=0.05)  # 0.8 for 10 s


def test_data_summary_counts_usable_qa_and_media_attrition(ingested, prepared, tmp_path):
    from avrt.data.summary import summarize

    out, _ = ingested
    media_root, _, _ = prepared
    manifest = read_rows(out / "manifest.jsonl", ManifestRow)
    lost = manifest[0].replace(sample_id="lost", video_name="SYNLOST")  # a QA whose clip has no media row
    shard = tmp_path / "shard.jsonl"
    shard.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in [*manifest, lost]))
    summary = summarize(out / "ingest_summary.json", out / "attrition.tsv", [shard], [media_root / "000.jsonl"],
                        tmp_path / "summary.json", tmp_path / "attrition_all.tsv", tmp_path / "counts.tsv")
    assert sum(summary["usable_qa"].values()) == len(manifest)
    assert summary["media"] == {"clips": 5, "ok": 5, "failed": 0, "audio_padded_clips": 1, "audio_silent_clips": 0,
                                "frame_sizes": {"96x72": 5}, "source_sizes": {"160x120": 5}}
    assert summary["dropped_qa"]["media/media_missing"] == 1
    assert read_attrition(tmp_path / "attrition_all.tsv")[-1]["sample_id"] == "lost"


def test_media_audio_is_exactly_10s_at_16khz_and_padding_is_recorded(synthetic_release, prepared):
    media_root, params, _ = prepared
    index = read_media_index(media_root / "000.jsonl")
    short = faults(synthetic_release)["short"]
    for name, row in index.items():
        wave, sr = sf.read(media_root / row.audio, dtype="float32")
        assert sr == 16000 and wave.shape == (160000,)
        if name == short:
            assert row.audio_pad_samples == pytest.approx(4 * 16000, abs=400)
            assert np.abs(wave[-row.audio_pad_samples:]).max() == 0.0
        else:
            assert row.audio_pad_samples == 0
        assert np.abs(wave[: 16000 * 5]).max() > 0.1  # real sound, not silence
        assert row.audio_silent is False


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
    with av.open(str(media_root / row.silent_video)) as c:
        assert not c.streams.audio
        assert sum(1 for _ in c.decode(video=0)) == row.num_video_frames


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
    assert next(iter(read_media_index(tmp_path / "000.jsonl").values())).frame_size == (32, 24)


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
    assert failed.status == "failed" and failed.reason == "media_failed" and failed.detail
    assert not failed.ok
    with pytest.raises(ValueError, match=rows[0]["video_name"]):
        load_clip_media(failed, tmp_path)


def test_media_from_files_cuts_benchmark_media_like_the_shards(synthetic_release, prepared, tmp_path):
    from avrt.core.media import media_from_files

    media_root, params, _ = prepared
    row = next(iter(read_media_index(media_root / "000.jsonl").values()))
    shard_clip = load_clip_media(row, media_root)
    clip = media_from_files("x", params, video=row.clip_path)
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


# ---- commands: settings come from the run's config file ----------------------------------------
def write_config(path: Path, **sections) -> Path:
    """A run config of the given sections (no models, so nothing to evaluate)."""
    import yaml

    path.write_text(yaml.safe_dump({"run": "test", "evaluation": {"models": {}}, **sections}))
    return path


def test_ingest_command_reads_the_clip_checks_from_the_config(synthetic_release, tmp_path):
    from avrt.cli import main

    config = write_config(tmp_path / "config.yaml", data={"checks": {"min_duration_s": 11.0, "workers": 1}})
    annotations = synthetic_release / "annotations" / "val_qa.json"
    assert main(["ingest", "--config", str(config), "--annotations", f"val={annotations}",
                 "--clips-dir", str(synthetic_release / "videos"), "--out", str(tmp_path / "out")]) == 0
    attrition = read_attrition(tmp_path / "out" / "attrition.tsv")
    assert attrition and {r["reason"] for r in attrition} == {"clip_too_short"}  # 10 s clips, 11 s minimum
    assert all(r["detail"].endswith("< 11.00 s") for r in attrition)


def test_media_command_cuts_with_the_configs_media_settings(ingested, tmp_path):
    from avrt.cli import main

    out, _ = ingested
    first = read_rows(out / "manifest.jsonl", ManifestRow)[0]
    shard = tmp_path / "shard.jsonl"
    shard.write_text(json.dumps(first.to_dict()) + "\n")
    media = {"num_frames": 2, "frame_max_side": 32, "audio_seconds": 1.0}
    config = write_config(tmp_path / "config.yaml", media=media)
    assert main(["media", "--config", str(config), "--shard", str(shard), "--index", str(tmp_path / "000.jsonl")]) == 0
    [row] = read_rows(tmp_path / "000.jsonl", MediaRow)
    assert row.params == MediaParams.from_config(stage_config("media", media)).digest()
    assert len(row.frames) == 2 and max(row.frame_size) == 32 and row.audio_samples == 16000


def test_synth_command_writes_the_release_the_config_describes(tmp_path, capsys):
    from avrt.cli import main

    synthetic = {"clips": {"val": 2}, "seconds": 1.0, "width": 32, "height": 32, "fps": 4, "seed": 5}
    config = write_config(tmp_path / "config.yaml", data={"synthetic": synthetic})
    assert main(["synth", "--config", str(config), "--out", str(tmp_path / "release")]) == 0
    rows = json.loads((tmp_path / "release" / "annotations" / "val_qa.json").read_text())
    assert len(rows) == 2 * 3 and all(check_annotation(r) is None for r in rows)
    with av.open(str(tmp_path / "release" / "videos" / f"{rows[0]['video_name']}.mp4")) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (32, 32)
        assert abs(c.duration / av.time_base - 1.0) < 0.3
    no_synthetic = write_config(tmp_path / "plain.yaml")
    assert main(["synth", "--config", str(no_synthetic), "--out", str(tmp_path / "none")]) != 0
    assert "data.synthetic" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
