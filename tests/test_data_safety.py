"""Data stage and the file system: an annotation's clip name never reaches outside the clips or
media directories, and the media stage removes only what it created."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avrt.core.io import read_jsonl
from avrt.core.media import MediaParams
from avrt.core.rows import ManifestRow, MediaRow, read_rows
from avrt.data.ingest import ingest, read_attrition
from avrt.data.media import prepare_shard
from avrt.data.names import child_path, video_name_problem
from avrt.data.shard import shard_manifest

PARAMS = MediaParams(num_frames=2, frame_max_side=32, audio_seconds=1.0)
TRAVERSAL = "../../../../outside/victim"  # from <root>/a/b/c/videos and from <root>/x/y/media/000


def tree(path: Path) -> dict[str, bytes]:
    """Every file under `path` with its content: to show a directory was not touched."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def names_in(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def make_victim(root: Path) -> Path:
    victim = root / "outside" / "victim"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("not the pipeline's")
    return victim


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", TRAVERSAL, "/abs/victim", "a\\b", "a\0b", 7, None])
def test_unsafe_video_names_are_refused(name, tmp_path):
    assert video_name_problem(name)
    with pytest.raises(ValueError):
        child_path(tmp_path, name)


@pytest.mark.parametrize("name", ["-HG3Omg_89c_000030", "SYNTR0000001_000000", "a..b", "a b"])
def test_plain_video_names_are_accepted(name, tmp_path):
    assert video_name_problem(name) is None
    assert child_path(tmp_path, name) == tmp_path / name


def test_traversal_video_name_is_dropped_at_ingest_and_touches_nothing_outside(synthetic_release, tmp_path):
    victim = make_victim(tmp_path)
    clips = tmp_path / "a" / "b" / "c" / "videos"
    clips.mkdir(parents=True)
    for clip in (synthetic_release / "videos").glob("*.mp4"):
        (clips / clip.name).symlink_to(clip)
    # a real clip where each crafted name points, so only the name check stands in the way
    real_clip = sorted((synthetic_release / "videos").glob("SYNVA*.mp4"))[0]
    shutil.copy(real_clip, tmp_path / "outside" / "victim.mp4")
    before = tree(tmp_path / "outside")
    rows = json.loads((synthetic_release / "annotations" / "val_qa.json").read_text())
    crafted = {9001: TRAVERSAL, 9002: str(victim), 9003: "..", 9004: "a\0b"}
    annotations = tmp_path / "val_qa.json"
    annotations.write_text(json.dumps(rows + [dict(rows[0], id=i, video_name=n) for i, n in crafted.items()]))

    data = tmp_path / "data"
    summary = ingest({"val": annotations}, clips, data, workers=1)
    shard = data / "shards" / "000.jsonl"
    shard_manifest(data / "manifest.jsonl", [shard])
    media_index = tmp_path / "x" / "y" / "media" / "000.jsonl"
    stats = prepare_shard(shard, media_index, PARAMS)

    dropped = {r["sample_id"]: r for r in read_attrition(data / "attrition.tsv")}
    assert {i: dropped[str(i)]["reason"] for i in crafted} == dict.fromkeys(crafted, "unsafe_video_name")
    assert repr(TRAVERSAL) in dropped["9001"]["detail"]  # the detail names the value
    assert summary["usable_qa"] == {"val": len(rows)}  # the rest goes on
    assert stats == {"clips": 2, "ok": 2, "failed": 0}
    assert tree(tmp_path / "outside") == before
    assert names_in(tmp_path / "outside") == ["victim", "victim.mp4"]


def test_media_stage_confines_a_crafted_manifest_row_to_its_output_dir(prepared_shard, tmp_path):
    """Defence in depth: a manifest not written by ingest carries traversal names."""
    shard_path, _ = prepared_shard
    victim = make_victim(tmp_path)
    other_victim = make_victim(tmp_path / "elsewhere")
    before = tree(tmp_path / "outside"), tree(tmp_path / "elsewhere")
    rows = read_rows(shard_path, ManifestRow)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(Path(rows[0].clip_path).read_bytes()[:3000])
    crafted = [
        rows[0].replace(sample_id="t1", video_name=TRAVERSAL, clip_path=str(broken)),  # fails: old cleanup removed it
        rows[0].replace(sample_id="t2", video_name=str(other_victim)),  # a good clip: its files went there
    ]
    shard = tmp_path / "shard.jsonl"
    shard.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in [*rows, *crafted]))
    media_root = tmp_path / "x" / "y" / "media"
    stats = prepare_shard(shard, media_root / "000.jsonl", PARAMS)

    index = {r.video_name: r for r in read_rows(media_root / "000.jsonl", MediaRow)}
    for name in (TRAVERSAL, str(other_victim)):
        assert index[name].status == "failed" and index[name].reason == "unsafe_video_name"
        assert repr(name) in index[name].detail
    assert stats["ok"] == len({r.video_name for r in rows})
    assert (tree(tmp_path / "outside"), tree(tmp_path / "elsewhere")) == before
    assert victim.is_dir() and other_victim.is_dir()
    # nothing but the shard's own files and its clips' directories under the shard dir
    assert names_in(media_root / "000") == sorted(["params.json", "progress.jsonl", *{r.video_name for r in rows}])


@pytest.fixture
def broken_clip_shard(prepared_shard, tmp_path) -> tuple[Path, str]:
    """A one-clip shard whose clip passed ingest and was truncated afterwards: it fails in media."""
    shard_path, _ = prepared_shard
    row = read_rows(shard_path, ManifestRow)[0]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(Path(row.clip_path).read_bytes()[:3000])
    shard = tmp_path / "shard.jsonl"
    shard.write_text(json.dumps(row.replace(clip_path=str(broken)).to_dict()) + "\n")
    return shard, row.video_name


def test_failed_clip_leaves_an_existing_directory_at_its_name_alone(broken_clip_shard, tmp_path):
    shard, name = broken_clip_shard
    media_root = tmp_path / "media"
    unrelated = media_root / "000" / name
    unrelated.mkdir(parents=True)
    (unrelated / "notes.txt").write_text("someone else's")
    stats = prepare_shard(shard, media_root / "000.jsonl", PARAMS)
    assert stats == {"clips": 1, "ok": 0, "failed": 1}
    [row] = read_rows(media_root / "000.jsonl", MediaRow)
    assert row.reason == "media_failed"
    assert tree(unrelated) == {"notes.txt": b"someone else's"}
    # the temporary directory the failed clip was written into is gone
    assert names_in(media_root / "000") == sorted(["params.json", "progress.jsonl", name])


def test_clip_name_that_is_a_link_out_of_the_shard_is_not_written_through(prepared_shard, tmp_path):
    shard_path, _ = prepared_shard
    row = read_rows(shard_path, ManifestRow)[0]
    shard = tmp_path / "shard.jsonl"
    shard.write_text(json.dumps(row.to_dict()) + "\n")
    victim = make_victim(tmp_path)
    media_root = tmp_path / "media"
    (media_root / "000").mkdir(parents=True)
    (media_root / "000" / row.video_name).symlink_to(victim)
    stats = prepare_shard(shard, media_root / "000.jsonl", PARAMS)
    assert stats["failed"] == 1
    assert tree(victim) == {"keep.txt": b"not the pipeline's"}
    assert names_in(media_root / "000") == sorted(["params.json", "progress.jsonl", row.video_name])


def test_clip_prepared_into_an_existing_directory_keeps_its_other_files(prepared_shard, tmp_path):
    """A run killed after writing a clip but before recording it: the rerun replaces the clip's
    files and removes nothing else."""
    shard_path, _ = prepared_shard
    row = read_rows(shard_path, ManifestRow)[0]
    shard = tmp_path / "shard.jsonl"
    shard.write_text(json.dumps(row.to_dict()) + "\n")
    existing = tmp_path / "media" / "000" / row.video_name
    existing.mkdir(parents=True)
    (existing / "notes.txt").write_text("kept")
    (existing / "audio.wav").write_bytes(b"stale")
    assert prepare_shard(shard, tmp_path / "media" / "000.jsonl", PARAMS)["ok"] == 1
    [media] = list(read_jsonl(tmp_path / "media" / "000.jsonl"))
    assert (existing / "notes.txt").read_text() == "kept"
    assert (existing / "audio.wav").read_bytes()[:4] == b"RIFF"
    assert names_in(existing) == ["audio.wav", "frame_00.jpg", "frame_01.jpg", "notes.txt"]
    assert all((tmp_path / "media" / p).is_file() for p in media["frames"])
