"""Benchmark registry: name -> how to read its official files and how it is scored and grouped.

`load_benchmark(name, annotations, media_dir)` is the one entry point for every benchmark.
Groups follow the paper's Table 3: `in_domain` (AVQA, shown but never averaged),
`audio_visual` (the AV average), `audio` (the A average); `extra` benchmarks are scored but
belong to no average.

A benchmark is added with `register_benchmark(BenchmarkSpec(...))` (see CONTRIBUTING.md): its
reader (an `Adapter` in `avrt.evaluation.adapters`), how it is scored and grouped, and the file
layout its reader expects, in which `avrt eval-synth` writes its synthetic files.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from avrt.evaluation import official_rules
from avrt.evaluation.adapters import audio_mcq, avqa, dailyomni, music_avqa, omnibench, rivabench, videomme
from avrt.evaluation.adapters.common import Adapter, MediaRoot
from avrt.evaluation.records import BenchmarkRecord, LoadReport, MalformedRow

log = logging.getLogger(__name__)

GROUPS = ("in_domain", "audio_visual", "audio", "extra")
OfficialRule = Callable[[str, BenchmarkRecord], official_rules.OfficialJudgement]


@dataclass(frozen=True)
class FileLayout:
    """Where a benchmark's official files sit in a folder of benchmarks, as its adapter reads them.

    Both paths are relative to that folder: `annotations` is the annotation file and `media_dir`
    the folder the adapter resolves the rows' media paths against (`load_benchmark`'s media_dir).
    The synthetic benchmark files (`avrt eval-synth`) are written in this layout.
    """

    annotations: str  # "<benchmark folder>/<official file name>"
    media_dir: str

    def __post_init__(self) -> None:
        for path in (self.annotations, self.media_dir):
            if not path or Path(path).is_absolute() or ".." in Path(path).parts:
                raise ValueError(f"file layout paths are relative to the benchmarks folder, got {path!r}")


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    display_name: str  # the paper's column header
    group: str
    read: Adapter
    official: OfficialRule | None  # None: the benchmark ships no scorer
    official_rule: str  # one line saying what the second column is
    layout: FileLayout | None = None  # None: no fixed layout (AVQA: the data config names its files)


BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register_benchmark(spec: BenchmarkSpec) -> BenchmarkSpec:
    """Add `spec` to the registry (tables list benchmarks in registration order); returns it."""
    if spec.group not in GROUPS:
        raise ValueError(f"benchmark {spec.name!r}: group {spec.group!r} is not one of {GROUPS}")
    if spec.name in BENCHMARKS:
        raise ValueError(f"benchmark {spec.name!r} is already registered")
    BENCHMARKS[spec.name] = spec
    return spec


register_benchmark(BenchmarkSpec("avqa_val", "AVQA", "in_domain", avqa.read, None, "none (AVQA ships no scorer)"))
register_benchmark(BenchmarkSpec(
    "dailyomni", "DailyOmni", "audio_visual", dailyomni.read, official_rules.judge_dailyomni,
    "Daily-Omni testmodel.py: output (after 'assistant') starts with A-D, any case",
    FileLayout("dailyomni/qa.json", "dailyomni/Videos"),
))
register_benchmark(BenchmarkSpec(
    "omnibench", "OmniBench", "audio_visual", omnibench.read, official_rules.judge_omnibench,
    "OmniBench answer_parsing.py (MMMU style), gold letter parsed from the answer text",
    FileLayout("omnibench/batch-5_1142_20240817.jsonl", "omnibench/mm_data"),
))
register_benchmark(BenchmarkSpec(
    "videomme", "Video-MME", "audio_visual", videomme.read, official_rules.judge_videomme,
    "Video-MME extract_characters_regex: strip answer prefixes, first capital A-D",
    FileLayout("videomme/test-00000-of-00001.parquet", "videomme/videos"),
))
register_benchmark(BenchmarkSpec(
    "riva_standup", "Riva-S", "audio_visual", rivabench.read_standup, None,
    "none (RivaBench ships no scorer)",
    FileLayout("rivabench/standup.json", "rivabench"),
))
register_benchmark(BenchmarkSpec(
    "riva_academic", "Riva-A", "audio_visual", rivabench.read_academic, None,
    "none (RivaBench ships no scorer)",
    FileLayout("rivabench/academic.json", "rivabench"),
))
register_benchmark(BenchmarkSpec(
    "mmar", "MMAR", "audio", audio_mcq.read_mmar, official_rules.judge_string_match,
    "MMAR string_match on the chosen option's text",
    FileLayout("mmar/MMAR-meta.jsonl", "mmar"),
))
register_benchmark(BenchmarkSpec(
    "mmau_test_mini", "MMAU", "audio", audio_mcq.read_mmau, official_rules.judge_string_match,
    "MMAU string_match on the chosen option's text",
    FileLayout("mmau/mmau-test-mini.json", "mmau"),
))
register_benchmark(BenchmarkSpec(
    "music_avqa", "MUSIC-AVQA", "extra", music_avqa.read, official_rules.judge_music_avqa,
    "gold answer mentioned in the output (LLM convention; no official generative scorer)",
    FileLayout("music_avqa/avqa-test.json", "music_avqa/videos"),
))


def get_benchmark(name: str) -> BenchmarkSpec:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def load_benchmark(
    name: str, annotations: str | Path, media_dir: str | Path, *, check_media: bool = True
) -> tuple[list[BenchmarkRecord], LoadReport]:
    """Read a benchmark's official annotation file into records.

    An item whose media file is missing stays a record with `attrition` set (and will be scored
    as wrong); a row that cannot be scored at all (no usable gold, broken fields, repeated id)
    is listed in the report's `malformed`. With `check_media=False` paths are resolved but not
    checked, e.g. for writing records on a machine without the media.
    """
    spec = get_benchmark(name)
    annotations = Path(annotations)
    if not annotations.is_file():
        raise FileNotFoundError(f"{name}: annotation file {annotations} does not exist")
    report = LoadReport(benchmark=name, annotations=str(annotations))
    records: list[BenchmarkRecord] = []
    seen: set[str] = set()
    for item in spec.read(annotations, MediaRoot(media_dir)):
        report.n_rows += 1
        if isinstance(item, MalformedRow):
            report.malformed.append(item)
            continue
        if item.id in seen:
            report.malformed.append(MalformedRow(item.id, "repeats an earlier row's id"))
            continue
        seen.add(item.id)
        if check_media:
            paths = item.media_paths().items()
            missing = [f"missing {kind}: {path}" for kind, path in paths if not Path(path).exists()]
            if missing:
                item = dataclasses.replace(item, attrition="; ".join(missing))
                report.missing_media.append((item.id, item.attrition))
        records.append(item)
    report.n_records = len(records)
    log.info(
        "%s: %d rows -> %d records (%d with missing media), %d malformed",
        name, report.n_rows, report.n_records, len(report.missing_media), len(report.malformed),
    )
    return records, report
