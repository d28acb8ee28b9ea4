"""The adapters on the benchmarks' real annotation files (no media), when this checkout sits next
to the shared folder that holds them (../shared/benchmarks); skipped elsewhere."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from avrt.evaluation import load_benchmark, score

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"


def real(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} not present (the real benchmark files are not part of the repository)")
    return path


def test_mmau_test_mini(tmp_path):
    records, report = load_benchmark("mmau_test_mini", real("mmau-test-mini.json"), tmp_path)
    assert len(records) == 1000 and not report.malformed
    # Every gold answer is one of its choices (the malformed list would name any that is not).
    assert all(r.gold_text in r.options for r in records)
    assert Counter(len(r.options) for r in records) == {4: 948, 2: 27, 5: 24, 8: 1}
    # 27 items repeat an option; in 16 of them it is the gold one, and either copy is accepted.
    assert sum(len(set(r.options)) < len(r.options) for r in records) == 27
    assert sum(len(r.accepted_letters) > 1 for r in records) == 16
    assert Counter(r.categories["task"] for r in records) == {"sound": 333, "music": 334, "speech": 333}
    # Without media every item is kept, with its reason, and scored as wrong.
    assert len(report.missing_media) == 1000
    result = score(records, {r.id: f"<answer>{r.gold_letter}</answer>" for r in records})
    assert result.metrics["missing_media_rate"] == 1.0 and result.metrics["n"] == 1000


def test_mmar(tmp_path):
    records, report = load_benchmark("mmar", real("mmar-meta.jsonl"), tmp_path)
    assert len(records) == 1000 and not report.malformed
    assert all(r.gold_text in r.options and 2 <= len(r.options) <= 6 for r in records)
    assert sum(r.categories["category"] == "Semantic Layer" for r in records) == 412


def test_dailyomni(tmp_path):
    records, report = load_benchmark("dailyomni", real("daily-omni-qa.json"), tmp_path)
    # The paper: 1,197 questions over 684 videos, 647 from 30 s and 550 from 60 s videos.
    assert len(records) == 1197 and not report.malformed
    assert len({r.video for r in records}) == 684
    assert Counter(r.categories["video_duration"] for r in records) == {"30s": 647, "60s": 550}
    assert all(len(r.options) == 4 and not r.options[0].startswith("A.") for r in records)


def test_music_avqa(tmp_path):
    records, report = load_benchmark("music_avqa", real("music-avqa-test.json"), tmp_path)
    assert len(records) == 9129 and not report.malformed
    assert not any("<" in r.question for r in records)  # every template slot filled
    answers = {r.gold_text for r in records}
    assert {"yes", "no", "two", "acoustic_guitar", "more than ten"} <= answers and len(answers) <= 42
    raw = json.loads(real("music-avqa-test.json").read_text())
    assert Counter(r.categories["modality"] for r in records) == Counter(json.loads(x["type"])[0] for x in raw)
