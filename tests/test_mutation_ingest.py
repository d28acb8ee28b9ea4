"""Ingest checks: the AVQA annotation rule (`check_avqa_row`), the val split, difficulty subsets,
reading AVRT-20K files (`avrt.core.datasets`), and the ingest stage's annotation and clip checks
on tiny clips (`avrt.data.ingest`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avrt.core.datasets import check_avqa_row, difficulty_of, in_val, read_avrt20k
from avrt.core.io import InputFileError, read_jsonl
from avrt.core.rows import RowError
from avrt.data import ingest as ingest_stage
from avrt.data.ingest import ingest, load_annotations, probe_clip, read_attrition
from avrt.demo.synthetic_avqa import write_mp4

REPO = Path(__file__).resolve().parents[1]

AVQA_ROW = {  # one row of the official AVQA annotation JSON
    "id": 183, "video_name": "-HG3Omg_89c_000030", "video_id": 341,
    "question_text": "What's the sound source in the video?",
    "multi_choice": ["motorboat", "car", "train", "aeroplane"], "answer": 1,
    "question_type": "Which", "question_relation": "Both",
}


def avqa(**changes) -> dict:
    row = {**AVQA_ROW, **changes}
    return {k: v for k, v in row.items() if v is not ...}


def test_a_well_formed_avqa_row_passes():
    assert check_avqa_row(AVQA_ROW) is None
    assert check_avqa_row(avqa(answer=0)) is None and check_avqa_row(avqa(answer=3)) is None
    assert check_avqa_row(avqa(video_id=..., question_type=..., question_relation=...)) is None


@pytest.mark.parametrize(("changes", "reason"), [
    ({"answer": ...}, "missing fields ['answer']"),
    ({"id": ..., "question_text": ...}, "missing fields ['id', 'question_text']"),
    ({"multi_choice": "motorboat, car, train, aeroplane"},
     "'multi_choice' must be a list of strings, got 'motorboat, car, train, aeroplane'"),
    ({"multi_choice": ["motorboat", "car", 3, "aeroplane"]},
     "'multi_choice' must be a list of strings, got ['motorboat', 'car', 3, 'aeroplane']"),
    ({"multi_choice": ["motorboat", "car", "train"]}, "'multi_choice' has 3 options, expected 4"),
    ({"multi_choice": ["a", "b", "c", "d", "e"]}, "'multi_choice' has 5 options, expected 4"),
    ({"answer": 4}, "'answer' must be an option index 0-3, got 4"),
    ({"answer": -1}, "'answer' must be an option index 0-3, got -1"),
    ({"answer": "1"}, "'answer' must be an option index 0-3, got '1'"),
    ({"answer": 1.0}, "'answer' must be an option index 0-3, got 1.0"),
    ({"answer": True}, "'answer' must be an option index 0-3, got True"),
    ({"question_text": "  \n"}, "empty question_text"),
])
def test_malformed_avqa_rows_say_why(changes, reason):
    assert check_avqa_row(avqa(**changes)) == reason


@pytest.mark.parametrize(("n_correct", "n_teachers", "label"), [
    (2, 2, "easy"), (1, 2, "medium"), (0, 2, "hard"), (3, 3, "easy"), (1, 3, "medium"), (2, 3, "medium"),
    (0, 1, "hard"), (1, 1, "easy"),
])
def test_difficulty_by_teachers_right(n_correct, n_teachers, label):
    assert difficulty_of(n_correct, n_teachers) == label


@pytest.mark.parametrize(("n_correct", "n_teachers"), [(3, 2), (-1, 2)])
def test_difficulty_rejects_impossible_counts(n_correct, n_teachers):
    with pytest.raises(ValueError, match=rf"{n_correct} teachers correct is outside 0..{n_teachers}"):
        difficulty_of(n_correct, n_teachers)


def test_val_split_is_a_stable_seeded_hash_of_the_id():
    # The split of a sample must never change between versions: these are the members today.
    assert [i for i in range(200) if in_val(str(i), 0.0492, 0)] == [16, 31, 46, 87, 92, 96, 107, 117, 159, 190, 199]
    assert [i for i in range(20) if in_val(i, 0.5, 7)] == [0, 2, 3, 4, 5, 7, 11, 12, 14, 15, 16, 17, 18]
    ids = [f"{i:06d}" for i in range(2000)]
    assert not any(in_val(i, 0.0, 0) for i in ids) and all(in_val(i, 1.0, 0) for i in ids)
    share = sum(in_val(i, 0.25, 3) for i in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert all(in_val(i, 0.5, 3) for i in ids if in_val(i, 0.25, 3))  # a larger fraction only adds
    assert [in_val(i, 0.25, 3) for i in ids] != [in_val(i, 0.25, 4) for i in ids]


RELEASED = {"id": 7, "question": "q?", "choices": ["a", "b", "c", "d"], "answer": "B",
            "question_relation": "Both", "question_type": "Which", "av_reasoning": "<think>t</think><answer>B</answer>",
            "license_note": "CC"}


def test_released_rows_get_their_id_as_sample_id_and_extra_columns_left_out(tmp_path, caplog):
    path = tmp_path / "avrt20k.json"
    second = {k: v for k, v in RELEASED.items() if k != "license_note"}
    path.write_text(json.dumps([RELEASED, {**second, "id": 8, "sample_id": "x8", "url": "u"}]))
    with caplog.at_level(logging.WARNING, logger="avrt.core.datasets"):
        rows = read_avrt20k(path)
    assert [(r.sample_id, r.answer, r.choices) for r in rows] == [("7", "B", ("a", "b", "c", "d")),
                                                                  ("x8", "B", ("a", "b", "c", "d"))]
    assert caplog.messages == [
        f"{path}: columns ['id', 'license_note', 'url'] are no AVRT-20K fields and were left out"]


def test_jsonl_and_parquet_read_alike(tmp_path, caplog):
    pd = pytest.importorskip("pandas")
    row = {k: v for k, v in RELEASED.items() if k != "license_note"}
    (tmp_path / "a.jsonl").write_text(json.dumps(row) + "\n")
    pd.DataFrame([row]).to_parquet(tmp_path / "a.parquet")
    with caplog.at_level(logging.WARNING, logger="avrt.core.datasets"):
        assert read_avrt20k(tmp_path / "a.jsonl") == read_avrt20k(tmp_path / "a.parquet")
    assert "left out" not in caplog.text
    assert read_avrt20k(tmp_path / "a.parquet")[0].choices == ("a", "b", "c", "d")


@pytest.mark.parametrize(("suffix", "where"), [(".jsonl", "line 2"), (".json", "row 1"), (".parquet", "row 1")])
def test_a_bad_row_is_named_by_its_line_or_index(tmp_path, suffix, where):
    bad = {**RELEASED, "answer": None}
    path = tmp_path / f"avrt20k{suffix}"
    rows = [RELEASED, bad]
    if suffix == ".parquet":
        pytest.importorskip("pandas").DataFrame(rows).to_parquet(path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows) if suffix == ".jsonl" else json.dumps(rows))
    with pytest.raises(RowError, match=f"{path}: {where}\\b"):
        read_avrt20k(path)


# ---------------------------------------------------------------- ingest: annotation and clip checks

def clip(path, seconds_video: float, seconds_audio: float | None, fps: int = 10, size: int = 32):
    frames = np.zeros((round(seconds_video * fps), size, size + 16, 3), np.uint8)
    audio = None if seconds_audio is None else np.zeros(round(seconds_audio * 16000), np.float32)
    write_mp4(path, frames, fps, audio, 16000)


@pytest.fixture
def clips(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    clip(d / "ok.mp4", 1.0, 1.0)
    clip(d / "short_video.mp4", 0.3, 1.0)
    clip(d / "short_audio.mp4", 1.0, 0.2)
    clip(d / "no_audio.mp4", 1.0, None)
    (d / "corrupt.mp4").write_bytes(b"not an mp4 at all" * 10)
    sf.write(d / "wav.mp4", np.zeros(16000, np.float32), 16000, format="WAV")  # audio under a clip's name
    return d


@pytest.mark.parametrize(("name", "ok", "reason", "detail"), [
    ("ok", True, "", ""),
    ("missing", False, "clip_missing", "file does not exist"),
    ("short_video", False, "clip_too_short", "video stream 0.30 s < 0.50 s"),
    ("short_audio", False, "clip_too_short", "audio stream 0.2"),
    ("no_audio", False, "no_audio_track", "container has no audio stream"),
    ("wav", False, "no_video_stream", "container has no video stream"),
    ("corrupt", False, "clip_corrupt", "InvalidDataError: "),
])
def test_probe_says_why_a_clip_is_unusable(clips, name, ok, reason, detail):
    probe = probe_clip(str(clips / f"{name}.mp4"), 0.5)
    assert (probe.path, probe.ok, probe.reason) == (str(clips / f"{name}.mp4"), ok, reason)
    assert probe.detail.startswith(detail) and (detail or probe.detail == "")


def test_probe_of_a_usable_clip_reports_its_streams(clips):
    probe = probe_clip(str(clips / "ok.mp4"), 1.0)
    assert (probe.ok, probe.width, probe.height, probe.fps, probe.num_frames) == (True, 48, 32, 10.0, 10)
    assert (probe.audio_rate, probe.audio_channels) == (16000, 2)
    assert probe.duration == pytest.approx(1.0, abs=0.1)
    assert not probe_clip(str(clips / "ok.mp4"), 1.5).ok  # each stream lasts about 1 s


def write_annotations(path, rows):
    path.write_text(json.dumps(rows))
    return path


def test_ingest_keeps_usable_qa_and_records_every_drop(clips, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="avrt.data.ingest")
    train = write_annotations(tmp_path / "train.json", [
        avqa(id=1, video_name="ok"),
        avqa(id=1, video_name="ok", question_text="again?"),
        "not a row",
        avqa(id=3, video_name="ok", answer=...),
        avqa(id=4, video_name="../ok"),
        avqa(id=5, video_name="missing"),
        avqa(id=6, video_name="no_audio"),
        avqa(id=7, video_name="short_video", video_id=..., question_type=..., question_relation=...),
        avqa(id=8, video_name="ok", answer=2, question_type=..., question_relation=...),
        avqa(id=..., video_name=...),
    ])
    val = write_annotations(tmp_path / "val.json", [avqa(id=1, video_name="ok", answer=3),
                                                    avqa(id=9, video_name="corrupt")])
    summary = ingest({"train": train, "val": val}, clips, tmp_path / "out", {"checks": {"min_duration_s": 0.5}},
                     workers=1)
    manifest = list(read_jsonl(tmp_path / "out" / "manifest.jsonl"))
    assert [(r["split"], r["sample_id"], r["video_name"], r["gold_letter"], r["answer_index"]) for r in manifest] == [
        ("train", "1", "ok", "B", 1), ("train", "8", "ok", "C", 2), ("val", "1", "ok", "D", 3)]
    assert (manifest[1]["question_type"], manifest[1]["question_relation"]) == ("", "")
    first = manifest[0]
    assert first["clip_path"] == str(clips / "ok.mp4") and first["choices"] == AVQA_ROW["multi_choice"]
    assert (first["question"], first["video_id"], first["question_type"], first["question_relation"]) == (
        AVQA_ROW["question_text"], 341, "Which", "Both")
    assert (first["width"], first["height"], first["fps"], first["audio_rate"], first["audio_channels"]) == (
        48, 32, 10.0, 16000, 2)
    assert first["duration"] == pytest.approx(1.0, abs=0.1)

    attrition = read_attrition(tmp_path / "out" / "attrition.tsv")
    assert [(r["sample_id"], r["split"], r["video_name"], r["stage"], r["reason"]) for r in attrition] == [
        ("1", "train", "ok", "annotation", "duplicate_id"),
        ("train[2]", "train", "", "annotation", "bad_annotation"),
        ("3", "train", "ok", "annotation", "bad_annotation"),
        ("4", "train", "../ok", "annotation", "unsafe_video_name"),
        ("", "train", "", "annotation", "bad_annotation"),
        ("5", "train", "missing", "clip_check", "clip_missing"),
        ("6", "train", "no_audio", "clip_check", "no_audio_track"),
        ("7", "train", "short_video", "clip_check", "clip_too_short"),
        ("9", "val", "corrupt", "clip_check", "clip_corrupt"),
    ]
    details = [r["detail"] for r in attrition]
    assert details[:3] == [
        "QA id 1 appears more than once in train", "row 2 is not an object", "missing fields ['answer']"]
    assert details[3] and details[4] == "missing fields ['id', 'video_name']"
    assert details[5:8] == ["file does not exist", "container has no audio stream", "video stream 0.30 s < 0.50 s"]
    assert details[8].startswith("InvalidDataError")
    assert caplog.messages == [
        "probing 5 clips with 1 worker(s)",
        "manifest: 3 usable QA; dropped 9 ({'duplicate_id': 1, 'bad_annotation': 3, 'unsafe_video_name': 1, "
        "'clip_missing': 1, 'no_audio_track': 1, 'clip_too_short': 1, 'clip_corrupt': 1})"]
    assert summary == json.loads((tmp_path / "out" / "ingest_summary.json").read_text())
    assert summary == {
        "annotations": {"train": 10, "val": 2},
        "usable_qa": {"train": 2, "val": 1},
        "dropped_qa": {"duplicate_id": 1, "bad_annotation": 3, "unsafe_video_name": 1, "clip_missing": 1,
                       "no_audio_track": 1, "clip_too_short": 1, "clip_corrupt": 1},
        "clips": {"referenced": 5, "usable": 1,
                  "unusable": {"clip_corrupt": 1, "clip_missing": 1, "no_audio_track": 1, "clip_too_short": 1}},
    }


class InProcessPool:
    """multiprocessing.Pool's imap, run in this process (a real pool inside a test runner is slow)."""

    made: list[int] = []

    def __init__(self, processes: int):
        self.made.append(processes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap(self, func, jobs, chunksize=1):
        return map(func, jobs)


def test_ingest_probes_with_a_worker_pool_like_one_process(clips, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_stage, "Pool", InProcessPool)
    InProcessPool.made.clear()
    rows = [avqa(id=i, video_name=name) for i, name in enumerate(["ok", "short_audio", "no_audio", "ok"])]
    ann = write_annotations(tmp_path / "train.json", rows)
    one = ingest({"train": ann}, clips, tmp_path / "one", {"checks": {"min_duration_s": 0.5}}, workers=1)
    assert InProcessPool.made == []
    two = ingest({"train": ann}, clips, tmp_path / "two", {"checks": {"min_duration_s": 0.5}}, workers=2)
    assert InProcessPool.made == [2]
    assert one == two and one["usable_qa"] == {"train": 2}
    assert (tmp_path / "one" / "attrition.tsv").read_text() == (tmp_path / "two" / "attrition.tsv").read_text()
    single = write_annotations(tmp_path / "single.json", [avqa(id=1, video_name="ok")])
    ingest({"train": single}, clips, tmp_path / "three", {"checks": {"min_duration_s": 0.5, "workers": 4}})
    assert InProcessPool.made == [2]  # one clip: no pool
    pair = write_annotations(tmp_path / "pair.json", [avqa(id=1, video_name="ok"), avqa(id=2, video_name="no_audio")])
    ingest({"train": pair}, clips, tmp_path / "four", {"checks": {"min_duration_s": 0.5}}, workers=3)
    assert InProcessPool.made == [2, 3]


def test_ingest_takes_the_minimum_duration_from_the_data_block(clips, tmp_path):
    clip(clips / "medium.mp4", 0.7, 0.7)
    ann = write_annotations(tmp_path / "train.json", [avqa(id=1, video_name="medium")])
    assert ingest({"train": ann}, clips, tmp_path / "a", {"checks": {"min_duration_s": 0.5}}, 1)["usable_qa"] == {
        "train": 1}
    assert ingest({"train": ann}, clips, tmp_path / "b", None, 1)["dropped_qa"] == {"clip_too_short": 1}  # 1 s


def test_a_container_without_stream_durations_falls_back_to_its_own(tmp_path):
    import av

    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for _ in range(10):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 48, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode())
    probe = probe_clip(str(path), 0.5)
    assert (probe.reason, probe.duration, probe.num_frames, probe.fps) == ("no_audio_track", 1.0, 0, 10.0)


def test_probe_duration_is_rounded_to_four_places(tmp_path):
    clip(tmp_path / "odd.mp4", 5 / 7, 5 / 7, fps=7)
    duration = probe_clip(str(tmp_path / "odd.mp4"), 0.5).duration
    assert duration == round(duration, 4) and duration == pytest.approx(0.715, abs=0.01)


def test_annotations_must_be_a_json_list(tmp_path):
    path = write_annotations(tmp_path / "train.json", {"questions": []})
    with pytest.raises(InputFileError, match=r"train.json: expected a JSON list of QA objects .*got dict"):
        load_annotations(path)
    assert load_annotations(write_annotations(tmp_path / "ok.json", [AVQA_ROW])) == [AVQA_ROW]


def test_the_ingest_command_reads_splits_and_checks(clips, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_stage, "Pool", InProcessPool)
    InProcessPool.made.clear()
    clip(clips / "medium.mp4", 0.7, 0.7)
    ann = write_annotations(tmp_path / "train=v1.json", [avqa(id=1, video_name="ok"), avqa(id=2, video_name="medium"),
                                                         avqa(id=3, video_name="short_video")])
    overlay = tmp_path / "checks.yaml"
    overlay.write_text("data:\n  checks:\n    min_duration_s: 0.5\n")
    parser = argparse.ArgumentParser()
    ingest_stage.add_arguments(parser)
    args = parser.parse_args(["--config", str(REPO / "config" / "config.yaml"), str(overlay),
                              "--annotations", f"train={ann}", "--clips-dir", str(clips), "--out", str(tmp_path / "o"),
                              "--workers", "1"])
    assert args.workers == 1 and args.annotations == [f"train={ann}"]
    assert ingest_stage.run(args) == 0
    assert InProcessPool.made == []  # --workers 1 wins over data.checks.workers
    assert [r["reason"] for r in read_attrition(tmp_path / "o" / "attrition.tsv")] == ["clip_too_short"]
    assert json.loads((tmp_path / "o" / "ingest_summary.json").read_text())["usable_qa"] == {"train": 2}
    assert parser.parse_args(["--config", "c.yaml", "--annotations", "a", "--clips-dir", "d", "--out", "o"]).workers is None
    for missing in ("--annotations", "--clips-dir", "--out", "--config"):
        full = {"--config": "c.yaml", "--annotations": "a", "--clips-dir": "d", "--out": "o"}
        del full[missing]
        with pytest.raises(SystemExit):
            parser.parse_args([x for kv in full.items() for x in kv])
    with pytest.raises(SystemExit, match=r"--annotations expects SPLIT=PATH, got 'train.json'"):
        ingest_stage.run(argparse.Namespace(annotations=["train.json"], config=[], clips_dir="d", out="o", workers=1))


def test_the_ingest_command_documents_its_options():
    parser = argparse.ArgumentParser()
    ingest_stage.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    for phrase in ("--annotations SPLIT=PATH [SPLIT=PATH ...]",
                   "official AVQA annotation JSON per split, e.g. train=train_qa.json",
                   "directory holding <video_name><data.avqa.clip_ext>", "output directory",
                   "processes probing clips (default: data.checks.workers)"):
        assert phrase in text
