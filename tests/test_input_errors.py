"""An input file that cannot be parsed stops its stage with the file and line named, not a traceback."""

from __future__ import annotations

import re

import pytest

from avrt.core.io import InputFileError, read_json, read_jsonl
from conftest import REPO


def test_json_syntax_error_names_file_line_and_column(tmp_path):
    bad = tmp_path / "ann.json"
    bad.write_text('[\n  {"id": 1,\n   "video_name": "a"\n  {"id": 2}\n]\n')
    with pytest.raises(InputFileError, match=rf"{re.escape(str(bad))}:4:3: not valid JSON"):
        read_json(bad)


def test_jsonl_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"a": 1}\n\n{"a": 2,}\n')
    with pytest.raises(InputFileError, match=rf"{re.escape(str(bad))}:3: not valid JSON"):
        list(read_jsonl(bad))


def test_benchmark_annotation_that_is_not_json_is_named_by_the_cli(tmp_path, capsys):
    from avrt.cli import main

    bad = tmp_path / "mmau-test-mini.json"
    bad.write_text('[{"question": "q",}]')
    args = ["eval-records", "--benchmark", "mmau_test_mini", "--annotations", str(bad), "--media-dir", str(tmp_path),
            "--output", str(tmp_path / "records.jsonl"), "--report", str(tmp_path / "report.json")]
    assert main(args) == 2
    assert f"{bad}:1:19: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "records.jsonl").exists()


def test_avqa_annotation_that_is_not_json_is_named_by_ingest(tmp_path, capsys):
    from avrt.cli import main

    bad = tmp_path / "train_qa.json"
    bad.write_text('[{"id": 1, "video_name": "a"}\n {"id": 2}]\n')
    clips = tmp_path / "videos"
    clips.mkdir()
    args = ["ingest", "--config", str(REPO / "config" / "demo.yaml"), "--annotations", f"train={bad}", "--clips-dir", str(clips),
            "--out", str(tmp_path / "data")]
    assert main(args) == 2
    assert f"{bad}:2:2: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "data" / "manifest.jsonl").exists()


def test_validate_config_names_the_line_of_a_yaml_syntax_error(tmp_path, capsys):
    """Snakemake's own message for a broken --configfile names neither file nor line; this does."""
    from avrt.cli import main

    bad = tmp_path / "overlay.yaml"
    bad.write_text("sft:\n  max_steps: 10\n   learning_rate: 1.0e-5\n")
    assert main(["validate-config", str(REPO / "config" / "config.yaml"), str(bad)]) == 2
    assert re.search(rf"{re.escape(str(bad))}:3:\d+: not valid YAML", capsys.readouterr().err)
