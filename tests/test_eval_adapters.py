"""Benchmark adapters: each official schema -> records, with missing media and malformed rows kept
visible. The fixture files under tests/fixtures/benchmarks/ are written by us in each schema."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from avrt.demo import synthetic_avqa as synthetic
from avrt.evaluation import (
    BENCHMARKS,
    BenchmarkRecord,
    get_benchmark,
    load_benchmark,
    read_records,
    write_records,
)

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def touch(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"\0")


def write_videomme_parquet(path: Path) -> Path:
    """The Video-MME fixture rows as the parquet file the dataset ships (options as a list column)."""
    pd.DataFrame(json.loads((FIXTURES / "videomme_rows.json").read_text())).to_parquet(path)
    return path


@pytest.fixture
def videomme_parquet(tmp_path) -> Path:
    return write_videomme_parquet(tmp_path / "videomme.parquet")


def annotations_for(name: str, tmp_path: Path) -> Path:
    files = {
        "avqa_val": "avqa_val_qa.json",
        "dailyomni": "daily_omni_qa.json",
        "omnibench": "omnibench.jsonl",
        "riva_standup": "riva_standup.json",
        "riva_academic": "riva_academic.json",
        "mmar": "mmar_meta.jsonl",
        "mmau_test_mini": "mmau_test_mini.json",
        "music_avqa": "music_avqa_test.json",
    }
    if name == "videomme":
        return write_videomme_parquet(tmp_path / "videomme.parquet")
    return FIXTURES / files[name]


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_registered_benchmark_loads_its_fixture(name, tmp_path):
    records, report = load_benchmark(name, annotations_for(name, tmp_path), tmp_path / "media")
    assert records and report.n_rows == len(records) + len(report.malformed)
    assert all(r.benchmark == name for r in records)
    assert len({r.id for r in records}) == len(records)
    for r in records:
        assert r.question and r.gold_text
        if r.is_open_ended:
            assert r.gold_letter is None
        else:
            assert r.options[ord(r.gold_letter) - ord("A")] == r.gold_text
            assert not any(o.startswith(f"{letter}. ") for letter, o in zip(r.option_letters, r.options))
        # No media exists under tmp_path, so every item is kept with the reason, none dropped.
        assert r.attrition and r.attrition.startswith("missing ")
    assert len(report.missing_media) == len(records)


def test_unknown_benchmark_name_lists_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="unknown benchmark 'omnibenchh'.*omnibench"):
        get_benchmark("omnibenchh")
    with pytest.raises(KeyError, match="unknown benchmark"):
        load_benchmark("avqa", FIXTURES / "avqa_val_qa.json", tmp_path)


def test_missing_annotation_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="mmar: annotation file"):
        load_benchmark("mmar", tmp_path / "nope.jsonl", tmp_path)


def test_avqa_records_and_malformed_rows(tmp_path):
    media = tmp_path / "clips"
    touch(f"{media}/fixtureClipA_000010.mp4")
    records, report = load_benchmark("avqa_val", FIXTURES / "avqa_val_qa.json", media)
    by_id = {r.id: r for r in records}
    assert sorted(by_id) == ["101", "102"]
    assert by_id["101"].attrition is None and by_id["101"].video == f"{media}/fixtureClipA_000010.mp4"
    assert by_id["102"].attrition == f"missing video: {media}/fixtureClipB_000020.mp4"
    assert by_id["102"].gold_letter == "B" and by_id["102"].gold_text == "dog"
    assert by_id["102"].categories == {"question_type": "Which", "question_relation": "Sound"}
    reasons = {m.id: m.reason for m in report.malformed}
    assert "option index 0-3" in reasons["103"] and "got 4" in reasons["103"]
    assert "3 options, expected 4" in reasons["104"]


def test_dailyomni_ids_count_questions_per_video_and_strip_letter_prefixes(tmp_path):
    media = tmp_path / "Videos"
    touch(f"{media}/fixVid0001/fixVid0001_video.mp4")
    records, report = load_benchmark("dailyomni", FIXTURES / "daily_omni_qa.json", media)
    assert [r.id for r in records] == ["fixVid0001_0", "fixVid0001_1", "fixVid0002_0"]
    first = records[0]
    assert first.options[0] == "She greeted the audience"
    assert (first.gold_letter, first.gold_text) == ("C", "She counted to three")
    assert first.attrition is None and records[2].attrition.startswith("missing video")
    assert records[2].categories == {"type": "Reasoning", "video_category": "Education", "video_duration": "60s"}
    assert [(m.id, m.reason) for m in report.malformed] == [("fixVid0003_0", "missing field 'Answer'")]


def test_omnibench_image_and_audio_paths_options_string_and_text_gold(tmp_path):
    media = tmp_path / "mm_data"
    touch(f"{media}/audio/fix_0.mp3")
    touch(f"{media}/image/fix_0.png")
    touch(f"{media}/audio/fix_1.mp3")
    records, report = load_benchmark("omnibench", FIXTURES / "omnibench.jsonl", media)
    by_id = {r.id: r for r in records}
    assert by_id["0"].attrition is None
    assert (by_id["0"].image, by_id["0"].audio) == (f"{media}/image/fix_0.png", f"{media}/audio/fix_0.mp3")
    assert by_id["1"].attrition == f"missing image: {media}/image/fix_1.jpg"
    assert by_id["1"].gold_letter == "C"
    # The options given as one "A. .. B. .." string are split; the audio type is normalised.
    assert by_id["2"].options == ("One.", "Two.", "Three.", "Four.") and by_id["2"].gold_letter == "B"
    assert by_id["2"].categories["audio_type"] == "music"
    assert [m.id for m in report.malformed] == ["3"] and "not among the options" in report.malformed[0].reason


def test_videomme_reads_parquet_and_both_video_layouts(videomme_parquet, tmp_path):
    media = tmp_path / "videos"
    touch(f"{media}/data/fixYoutubeB.mp4")
    records, report = load_benchmark("videomme", videomme_parquet, media)
    by_id = {r.id: r for r in records}
    assert by_id["902-1"].video == f"{media}/data/fixYoutubeB.mp4" and by_id["902-1"].attrition is None
    assert by_id["901-1"].video == f"{media}/fixYoutubeA.mp4" and by_id["901-1"].attrition
    assert by_id["901-1"].options == ("Three.", "Five.", "Eight.", "Nine.") and by_id["901-1"].gold_text == "Eight."
    assert by_id["901-1"].categories == {
        "duration": "short", "domain": "Knowledge", "sub_category": "Astronomy", "task_type": "Counting Problem"
    }
    assert [m.id for m in report.malformed] == ["903-1"] and "should start with 'C'" in report.malformed[0].reason


def test_rivabench_llava_conversations(tmp_path):
    records, report = load_benchmark("riva_standup", FIXTURES / "riva_standup.json", tmp_path)
    first, second = records
    assert first.id == "standup_fix_0" and len(first.options) == 5
    assert first.question == "Why does the audience laugh after the comedian mentions his cat?"
    assert (first.gold_letter, first.gold_text) == ("B", "He compares the cat to his landlord")
    assert first.audio == f"{tmp_path}/standup/fix_clip0.wav" and first.categories == {"scenario": "standup"}
    # No id: named after the video; "(A)"-style options; an "Options:" header is not question text.
    assert second.id == "fix_clip1_0" and second.question == "What is the running joke of the set?"
    assert second.options[-1] == "Neighbours" and second.gold_letter == "E" and second.audio is None
    assert [m.id for m in report.malformed] == ["fix_clip1_1"]
    assert "does not start with an option letter" in report.malformed[0].reason

    (academic,), _ = load_benchmark("riva_academic", FIXTURES / "riva_academic.json", tmp_path)
    assert academic.options[1] == "Momentum is conserved" and academic.gold_letter == "B"
    assert academic.categories == {"scenario": "academic", "category": "physics"}


def test_mmar_trailing_empty_choice_broken_line_and_answer_outside_choices(tmp_path):
    records, report = load_benchmark("mmar", FIXTURES / "mmar_meta.jsonl", tmp_path)
    by_id = {r.id: r for r in records}
    assert sorted(by_id) == ["fixmmar_0", "fixmmar_1"]
    assert by_id["fixmmar_0"].audio == f"{tmp_path}/audio/fixmmar_0.wav"
    assert by_id["fixmmar_1"].options == ("Yes", "No, the speaker is being sarcastic")
    reasons = {m.id: m.reason for m in report.malformed}
    assert "'In a forest' is not among the options" in reasons["fixmmar_2"]
    assert reasons["row 3"].startswith("line 4 is not JSON")


def test_mmau_option_counts_and_repeated_gold_option(tmp_path):
    records, report = load_benchmark("mmau_test_mini", FIXTURES / "mmau_test_mini.json", tmp_path)
    by_id = {r.id: r for r in records}
    assert not report.malformed
    sizes = [len(by_id[i].options) for i in ("fixmmau-four", "fixmmau-five", "fixmmau-eight", "fixmmau-two")]
    assert sizes == [4, 5, 8, 2]
    assert by_id["fixmmau-eight"].gold_letter == "H"
    repeat = by_id["fixmmau-repeat"]
    assert repeat.gold_letter == "C" and repeat.accepted_letters == {"C", "D"}
    assert by_id["fixmmau-four"].accepted_letters == {"C"}
    assert by_id["fixmmau-five"].categories["difficulty"] == "hard"


def test_music_avqa_fills_template_slots_and_is_open_ended(tmp_path):
    records, report = load_benchmark("music_avqa", FIXTURES / "music_avqa_test.json", tmp_path)
    by_id = {r.id: r for r in records}
    assert by_id["502"].question == "Where is the first sounding instrument?"
    assert by_id["503"].question == "What is the instrument on the right of the piano?"
    assert by_id["503"].gold_text == "acoustic_guitar" and by_id["503"].is_open_ended
    assert by_id["501"].categories == {"modality": "Audio", "question_type": "Counting"}
    assert by_id["501"].video == f"{tmp_path}/90000001.mp4"
    assert [m.id for m in report.malformed] == ["504"] and "1 slot(s)" in report.malformed[0].reason


def test_records_round_trip_through_jsonl(tmp_path):
    records, _ = load_benchmark("mmau_test_mini", FIXTURES / "mmau_test_mini.json", tmp_path)
    path = tmp_path / "records.jsonl"
    assert write_records(path, records) == len(records)
    assert read_records(path) == records
    with pytest.raises(ValueError, match="BenchmarkRecord row: unknown fields \\['colour'\\]"):
        BenchmarkRecord.from_dict({**records[0].to_dict(), "colour": "red"})
    path.write_text(json.dumps({**records[0].to_dict(), "options": "a b c d"}) + "\n")
    with pytest.raises(ValueError, match=r"records.jsonl:1: BenchmarkRecord.options: expected a list"):
        read_records(path)


def test_media_check_can_be_skipped(tmp_path):
    records, report = load_benchmark("mmar", FIXTURES / "mmar_meta.jsonl", tmp_path, check_media=False)
    assert records and all(r.attrition is None for r in records) and not report.missing_media


def test_rows_of_the_wrong_shape_and_repeated_ids_are_malformed_not_fatal(tmp_path):
    path = tmp_path / "mmau.json"
    good = json.loads((FIXTURES / "mmau_test_mini.json").read_text())[0]
    path.write_text(json.dumps([good, {**good, "id": "n", "question": 7}, ["not", "an", "object"], good]))
    records, report = load_benchmark("mmau_test_mini", path, tmp_path)
    assert [r.id for r in records] == [good["id"]]
    reasons = [(m.id, m.reason) for m in report.malformed]
    assert reasons[0][0] == "n" and reasons[0][1].startswith("unexpected value type")
    assert reasons[1] == ("row 2", "expected an object, got list")
    assert reasons[2] == (good["id"], "repeats an earlier row's id")


def test_avqa_reads_the_projects_synthetic_release(tmp_path):
    synthetic.generate(tmp_path / "avqa", {"val": 2}, seconds=1.0, width=32, height=32, fps=4)
    records, report = load_benchmark("avqa_val", tmp_path / "avqa/annotations/val_qa.json", tmp_path / "avqa/videos")
    assert len(records) == 2 * 3 and not report.malformed and not report.missing_media
    assert all(r.gold_text in r.options and r.categories["question_relation"] == "Both" for r in records)
