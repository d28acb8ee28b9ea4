"""The paper's Table 0.A.1 (appendix 0.A.1): how an omni judge grades a run's AVRT-20K traces.

Rows, in the paper's order: Accurate, Hallucinating with its sources (both teachers, the audio
teacher only, the vision teacher only, the merger; and the hallucinating traces whose source
reply could not be read), Missing Info, Audio Grounded, Visual Grounded. Every percentage is of
the n judged traces, the sources' included (the paper's 6.7 + 1.7 + 1.5 + 1.2 = 11.1% of all
samples), rounded half up to one decimal as in Table 3. A reply that could not be read leaves its
trace out of n; the unparsed replies are counted under the table by what was wrong with them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from avrt.core.rows import HallucinationSource, JudgeVerdict
from avrt.evaluation.analysis_tables import write_table
from avrt.evaluation.tables import MISSING, round_percent

# key -> (label, indented under Hallucinating); the paper's rows, in its order
ROWS = (
    ("accurate", "Accurate", False),
    ("hallucinating", "Hallucinating", False),
    ("source_both_teachers", "Both teachers", True),
    ("source_audio_teacher", "Audio teacher only", True),
    ("source_vision_teacher", "Vision teacher only", True),
    ("source_merger", "Merger introduced", True),
    ("source_not_attributed", "Source not read", True),
    ("missing_info", "Missing Info", False),
    ("audio_grounded", "Audio Grounded", False),
    ("visual_grounded", "Visual Grounded", False),
)
_SOURCE_KEYS = {"BOTH_TEACHERS": "source_both_teachers", "AUDIO_TEACHER": "source_audio_teacher",
                "VISION_TEACHER": "source_vision_teacher", "MERGER": "source_merger"}
_VERDICT_KEYS = {"ACCURATE": "accurate", "HALLUCINATING": "hallucinating", "MISSING_INFO": "missing_info"}


@dataclass(frozen=True)
class JudgeTable:
    label: str  # the column: the run whose traces were judged
    judge: str  # the judge model, as the notes name it
    counts: dict[str, int]  # row key -> traces
    judged: int  # replies read: the denominator
    sampled: int  # traces shown to the judge
    available: int  # traces the sample was drawn from
    seed: int
    unparsed: dict[str, int]  # status -> verdict replies that could not be read
    source_unparsed: dict[str, int]  # status -> source replies that could not be read
    sources_judged: bool  # False when the run has no merger (no source analysis)

    def percent(self, key: str) -> float | None:
        return round_percent(100 * self.counts[key] / self.judged) if self.judged else None


def build_judge_table(verdicts: Sequence[JudgeVerdict], sources: Sequence[HallucinationSource] | None, *,
                      label: str, judge: str, available: int, seed: int) -> JudgeTable:
    """Count the verdict rows (and the source rows, None when the run has no merger) into Table 0.A.1."""
    read = [v for v in verdicts if v.ok]
    counts = Counter({key: 0 for key, _, _ in ROWS})
    for v in read:
        counts[_VERDICT_KEYS[v.verdict]] += 1
        counts["audio_grounded"] += bool(v.audio_grounded)
        counts["visual_grounded"] += bool(v.visual_grounded)
    hallucinating = {v.sample_id for v in read if v.verdict == "HALLUCINATING"}
    attributed = [s for s in sources or () if s.ok and s.sample_id in hallucinating]
    for s in attributed:
        counts[_SOURCE_KEYS[s.source]] += 1
    counts["source_not_attributed"] = len(hallucinating) - len(attributed)
    return JudgeTable(
        label=label, judge=judge, counts=dict(counts), judged=len(read), sampled=len(verdicts), available=available,
        seed=seed, unparsed=dict(Counter(v.status for v in verdicts if not v.ok)),
        source_unparsed=dict(Counter(s.status for s in sources or () if not s.ok)), sources_judged=sources is not None,
    )


def _rows(table: JudgeTable):
    """(key, label, indented) of the rows shown: no source rows without a source analysis."""
    return [row for row in ROWS if table.sources_judged or not row[2]]


def _cell(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}%"


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "none"


def judge_markdown(table: JudgeTable) -> str:
    column = table.label.replace("|", "\\|")  # a bar would split the row
    lines = [f"| Metric | {column} |", "|---|---:|"]
    for key, label, indented in _rows(table):
        lines.append(f"| {'↳ ' if indented else ''}{label} | {_cell(table.percent(key))} |")
    unparsed = sum(table.unparsed.values())
    lines += [f"| n judged | {table.judged} |", f"| Unparsed verdicts | {unparsed} |"]
    if table.sources_judged:
        lines.append(f"| Unparsed sources | {sum(table.source_unparsed.values())} |")
    notes = [
        f"Individual trace evaluation (paper Table 0.A.1) by {table.judge}: {table.sampled} of the {table.available} "
        f"AVRT-20K traces, drawn with seed {table.seed}. Percentages are of the n judged traces (replies read).",
        f"Unparsed verdict replies, left out of n: {_reasons(table.unparsed)}.",
    ]
    if table.sources_judged:
        notes.append("The ↳ rows split Hallucinating by the source the judge named (hallucination source analysis, "
                     f"paper Fig. 0.A.5); unparsed source replies ({_reasons(table.source_unparsed)}) are "
                     "'Source not read'.")
    else:
        notes.append("No hallucination source analysis: this run's traces were not merged (filter.source names a teacher).")
    return "\n".join(lines + [""] + notes) + "\n"


def judge_csv(table: JudgeTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["metric", "label", "run", "count", "n", "percent"])
    for key, label, _ in _rows(table):
        percent = table.percent(key)
        writer.writerow([key, label, table.label, table.counts[key], table.judged,
                         "" if percent is None else f"{percent:.1f}"])
    writer.writerow(["judged", "n judged", table.label, table.judged, table.sampled, ""])
    for status, n in sorted(table.unparsed.items()):
        writer.writerow([f"unparsed_verdict/{status}", "Unparsed verdicts", table.label, n, "", ""])
    for status, n in sorted(table.source_unparsed.items()):
        writer.writerow([f"unparsed_source/{status}", "Unparsed sources", table.label, n, "", ""])
    return buffer.getvalue()


def write_judge_table(table: JudgeTable, out_dir: str | Path, stem: str = "table_a1") -> dict[str, Path]:
    """Write `<stem>.md` and `<stem>.csv` into `out_dir`; returns them by format."""
    return write_table(judge_markdown(table), judge_csv(table), out_dir, stem)
