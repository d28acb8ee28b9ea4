"""The trace-quality judge (paper appendix 0.A.1, Table 0.A.1): reading the judge's JSON replies,
counting them into Table 0.A.1, and the stage end to end over AVRT-20K rows that the teacher,
merger and filter stages made, with a scripted judge and with a tiny random Qwen2.5-Omni."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from avrt.core.config import ConfigError
from avrt.core.datasets import read_avrt20k
from avrt.core.prompts import load_prompt, render_judge_prompt
from avrt.core.rows import Avrt20kRow, HallucinationSource, JudgeVerdict, ManifestRow, TeacherTrace, read_rows
from avrt.evaluation.judge_replies import json_objects, read_source, read_verdict
from avrt.evaluation.judge_table import build_judge_table, judge_csv, judge_markdown
from avrt.evaluation.tables import round_percent
from avrt.evaluation.trace_judge import (JudgeInputError, check_judge_model, run_judge, sample_traces,
                                         teacher_text)
from avrt.models.backends import Completion
from avrt.models.spec import ModelSpec
from fake_backends import CountingBackend, ScriptedBackend

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ---- replies as judges write them ------------------------------------------------------------
ACCURATE = """```json
{
  "verdict": "ACCURATE",
  "confidence": 0.92,
  "explanation": "The engine rumble and the red car on the track are both there.",
  "audio_grounded": true,
  "visual_grounded": true
}
```"""
HALLUCINATING = """Here is my evaluation of the trace.

{"verdict": "HALLUCINATING", "confidence": 0.8, "explanation": "The trace hears a distant waterfall {sic}; the audio has only wind.", "audio_grounded": false, "visual_grounded": true}

The visual description is otherwise correct."""
MISSING_INFO = ("{'verdict': 'Missing Info', 'confidence': 0.6, 'explanation': 'Right answer, but the alarm "
                "sound is never described.', 'audio_grounded': False, 'visual_grounded': True,}")
UNKNOWN_VERDICT = '{"verdict": "PARTIALLY_CORRECT", "confidence": 0.5, "audio_grounded": true, "visual_grounded": true}'
TRUNCATED = '```json\n{"verdict": "ACCURATE", "confidence": 0.9, "explanation": "The trace describes the'
NOT_JSON = "The trace is accurate: the sewing machine is heard and seen."
NO_FLAGS = '{"verdict": "ACCURATE", "explanation": "fine"}'
BAD_FLAG = '{"verdict": "ACCURATE", "audio_grounded": "partly", "visual_grounded": true}'
OTHER_OBJECT = 'Scores: {"winner": "A", "confidence": 0.7}'
DRAFT_THEN_FINAL = ('<think>Draft: {"verdict": "ACCURATE", "audio_grounded": true, "visual_grounded": true} '
                    'but the waterfall is not heard.</think>{"verdict": "HALLUCINATING", "audio_grounded": false, '
                    '"visual_grounded": true, "explanation": "waterfall"}')

AUDIO_SOURCE = """```json
{"hallucination_source": "AUDIO_TEACHER", "confidence": 0.7, "hallucinated_claims": ["buzzing of bees"],
 "source_per_claim": ["AUDIO_TEACHER"], "audio_teacher_accurate": false, "vision_teacher_accurate": true,
 "merger_faithful": true, "explanation": "No bees are heard. The audio teacher invented them and the merger kept them."}
```"""
BOTH_SOURCE = ('Analysis done. {"hallucination_source": "both teachers", "confidence": 0.85, "hallucinated_claims": '
               '["eating sounds", "fruit"], "source_per_claim": {"eating sounds": "AUDIO_TEACHER", "fruit": '
               '"VISION_TEACHER"}, "audio_teacher_accurate": false, "vision_teacher_accurate": false, '
               '"merger_faithful": true, "explanation": "Both teachers were wrong."}')
UNREADABLE_SOURCE = "The merger made it up, I think."


@pytest.mark.parametrize("text, verdict, audio, visual", [
    (ACCURATE, "ACCURATE", True, True),
    (HALLUCINATING, "HALLUCINATING", False, True),  # prose around it, braces inside a string
    (MISSING_INFO, "MISSING_INFO", False, True),  # a Python dict, "Missing Info", a trailing comma
    (DRAFT_THEN_FINAL, "HALLUCINATING", False, True),  # the last object with a verdict wins
])
def test_a_verdict_is_read_whatever_surrounds_the_json(text, verdict, audio, visual):
    reply = read_verdict(text)
    assert (reply.status, reply.reason) == ("ok", None)
    assert (reply.verdict, reply.audio_grounded, reply.visual_grounded) == (verdict, audio, visual)


def test_a_reply_that_cannot_be_read_says_why():
    cases = {
        UNKNOWN_VERDICT: ("bad_value", "unknown verdict 'PARTIALLY_CORRECT'"),
        TRUNCATED: ("no_json", "no complete JSON object"),
        NOT_JSON: ("no_json", "no complete JSON object"),
        NO_FLAGS: ("missing_field", "no 'audio_grounded' field"),
        BAD_FLAG: ("bad_value", "audio_grounded is not a boolean: 'partly'"),
        OTHER_OBJECT: ("missing_field", "no 'verdict' field"),
        "": ("no_json", "no complete JSON object"),
        "{{{{ ": ("no_json", "no complete JSON object"),
        "{{{{ }": ("missing_field", "no 'verdict' field"),  # the innermost braces close: an empty object
        '{"verdict": ["ACCURATE"], "audio_grounded": true, "visual_grounded": true}': ("bad_value", "unknown verdict"),
    }
    for text, (status, reason) in cases.items():
        reply = read_verdict(text)
        assert reply.status == status and reason in reply.reason, text
    assert read_verdict(UNKNOWN_VERDICT).confidence == 0.5  # what could be read is kept


def test_json_objects_takes_top_level_objects_only():
    text = 'a {"x": {"y": 1}} b {not json} c {"z": "}"}'
    assert json_objects(text) == [{"x": {"y": 1}}, {"z": "}"}]
    assert json_objects("the man's hat {'A': 1}") == [{"a": 1}]
    assert json_objects('a stray { before {"verdict": "ACCURATE"}') == [{"verdict": "ACCURATE"}]


def test_a_source_is_read_with_its_claims():
    audio = read_source(AUDIO_SOURCE)
    assert (audio.status, audio.source, audio.hallucinated_claims) == ("ok", "AUDIO_TEACHER", ("buzzing of bees",))
    assert (audio.audio_teacher_accurate, audio.vision_teacher_accurate, audio.merger_faithful) == (False, True, True)
    both = read_source(BOTH_SOURCE)
    assert (both.status, both.source) == ("ok", "BOTH_TEACHERS")
    assert both.source_per_claim == ("eating sounds: AUDIO_TEACHER", "fruit: VISION_TEACHER")
    assert read_source(UNREADABLE_SOURCE).status == "no_json"
    bad = read_source('{"hallucination_source": "THE_VIDEO"}')
    assert bad.status == "bad_value" and "THE_VIDEO" in bad.reason


# ---- Table 0.A.1 -----------------------------------------------------------------------------
def verdict(sample_id: str, text: str) -> JudgeVerdict:
    from dataclasses import asdict

    return JudgeVerdict(sample_id=sample_id, video_name=f"v{sample_id}", question="q?", choices=("a", "b"),
                        gold_letter="A", trace="<think>t</think><answer>A</answer>", model="judge", checkpoint="c",
                        prompt_sha256="p", judge_output=text, prompt_tokens=1, completion_tokens=1,
                        finish_reason="stop", seconds=0.1, **asdict(read_verdict(text)))


def source(sample_id: str, text: str) -> HallucinationSource:
    from dataclasses import asdict

    return HallucinationSource(sample_id=sample_id, video_name=f"v{sample_id}", audio_teacher="audio",
                               vision_teacher="visual", model="judge", checkpoint="c", prompt_sha256="p",
                               judge_output=text, prompt_tokens=1, completion_tokens=1, finish_reason="stop",
                               seconds=0.1, **asdict(read_source(text)))


def test_table_a1_counts_each_trace_once_in_the_papers_rows():
    """8 read verdicts (5 accurate, 2 hallucinating, 1 missing info) and 2 unreadable ones; the two
    hallucinating traces' sources: the audio teacher, and a reply that cannot be read."""
    texts = [ACCURATE] * 4 + [DRAFT_THEN_FINAL.replace('"audio_grounded": false', '"audio_grounded": true'),
                              HALLUCINATING, MISSING_INFO, ACCURATE.replace('"visual_grounded": true',
                                                                            '"visual_grounded": false'),
                              TRUNCATED, UNKNOWN_VERDICT]
    verdicts = [verdict(str(i), t) for i, t in enumerate(texts)]
    assert [v.verdict for v in verdicts if v.ok].count("HALLUCINATING") == 2
    sources = [source("4", AUDIO_SOURCE), source("5", UNREADABLE_SOURCE)]
    table = build_judge_table(verdicts, sources, label="avrt-3b", judge="judge (Qwen/Qwen2.5-Omni-7B)",
                              available=945, seed=0)
    assert (table.judged, table.sampled) == (8, 10)
    md = judge_markdown(table)
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1].strip(" |") for line in md.splitlines()[2:15]}
    assert rows == {
        "Accurate": "62.5%", "Hallucinating": "25.0%", "↳ Both teachers": "0.0%", "↳ Audio teacher only": "12.5%",
        "↳ Vision teacher only": "0.0%", "↳ Merger introduced": "0.0%", "↳ Source not read": "12.5%",
        "Missing Info": "12.5%", "Audio Grounded": "75.0%",  # 5 accurate + 1 hallucinating with audio true
        "Visual Grounded": "87.5%", "n judged": "8", "Unparsed verdicts": "2", "Unparsed sources": "1",
    }
    assert "10 of the 945 AVRT-20K traces, drawn with seed 0" in md and "bad_value 1, no_json 1" in md
    lines = judge_csv(table).splitlines()
    assert lines[0] == "metric,label,run,count,n,percent"
    assert "source_audio_teacher,Audio teacher only,avrt-3b,1,8,12.5" in lines
    assert "unparsed_verdict/no_json,Unparsed verdicts,avrt-3b,1,," in lines
    assert "unparsed_source/no_json,Unparsed sources,avrt-3b,1,," in lines


def test_table_a1_without_a_merger_or_a_readable_reply():
    table = build_judge_table([verdict("1", NOT_JSON)], None, label="audio-chains", judge="j", available=1, seed=3)
    md = judge_markdown(table)
    assert "| Accurate | – |" in md and "| n judged | 0 |" in md and "Both teachers" not in md
    assert "No hallucination source analysis" in md and "Unparsed sources" not in md


# ---- sampling and inputs -----------------------------------------------------------------------
def avrt_row(sample_id: str | None, clip=True) -> Avrt20kRow:
    from avrt.core.rows import ClipRef, MediaRow

    ref = ClipRef(root="m", media=MediaRow(video_name="v", clip_path="v.mp4", params="p", status="ok")) if clip else None
    return Avrt20kRow(question="q?", choices=("a", "b"), answer="A", question_relation="Both", question_type="Which",
                      av_reasoning="<think>t</think><answer>A</answer>", sample_id=sample_id, clip=ref)


def test_the_sample_is_seeded_and_independent_of_file_order():
    rows = [avrt_row(str(i)) for i in range(50)]
    first = [r.sample_id for r in sample_traces(rows, 10, seed=0)]
    assert first == [r.sample_id for r in sample_traces(rows[::-1], 10, seed=0)] and first == sorted(first)
    assert first != [r.sample_id for r in sample_traces(rows, 10, seed=1)]
    assert len(sample_traces(rows, 600, seed=0)) == 50  # fewer than asked: all of them
    with pytest.raises(JudgeInputError, match="sample '3' appears twice"):
        sample_traces(rows + [avrt_row("3")], 10, seed=0, where="val.jsonl")
    with pytest.raises(JudgeInputError, match="val.jsonl: trace of sample '7' has no sample_id or clip"):
        sample_traces([avrt_row("7", clip=False)], 10, seed=0, where="val.jsonl")


def test_the_judge_must_take_frames_and_audio_together():
    spec = ModelSpec.from_config("judge", {"family": "qwen2_audio", "checkpoint": "/nonexistent"})
    with pytest.raises(ConfigError, match="config key 'judge.model': model 'judge' .* cannot watch a clip with its audio"):
        check_judge_model(spec)


# ---- the stage over rows the trace stages made -------------------------------------------------
def fake_spec(name: str, family: str = "text_llm", checkpoint: str = "/nonexistent", **extra) -> ModelSpec:
    return ModelSpec.from_config(name, {"family": family, "checkpoint": checkpoint, "backend": "hf",
                                        "sampling": {"temperature": 0.0, "max_new_tokens": 8}, **extra})


@pytest.fixture(scope="module")
def run_rows(prepared_shard, tmp_path_factory) -> dict:
    """A run's teacher, merged and AVRT-20K val rows over the prepared shard (train and val questions,
    every kept trace in val), made by the teacher, merger and filter stages with scripted models:
    both teachers answer correctly, the merger in the strict format."""
    from avrt.traces.filter import filter_traces
    from avrt.traces.merge import run_merge
    from avrt.traces.teacher import run_teacher

    shard, media = prepared_shard
    out = tmp_path_factory.mktemp("judged_run")
    gold = {r.sample_id: r.gold_letter for r in read_rows(shard, ManifestRow)}
    traces = {}
    for name, modality in (("visual", "frames"), ("audio", "audio")):
        teacher = {"name": name, "model": f"{name}_teacher", "prompt": f"{name}_teacher", "modality": modality}
        traces[modality] = out / "traces" / name / "000.jsonl"
        answer = ScriptedBackend(lambda sid, i, name=name: f"{name} description of {sid}.\nAnswer: ({gold[sid]})")
        run_teacher(teacher, fake_spec(f"{name}_teacher"), ["train", "val"], shard, media, traces[modality],
                    chunk_size=64, backend=answer)
    merged = out / "merged" / "000.jsonl"
    merger = ScriptedBackend(lambda sid, i: f"<think>The sound and the frames of {sid} agree.</think>"
                                            f"<answer>{gold[sid]}</answer>")
    run_merge("merger", fake_spec("merger"), traces, merged, "response", chunk_size=64, backend=merger)
    val = out / "avrt20k" / "val.jsonl"
    filter_traces([merged], "both_correct", False, True, 1.0, 0, out / "avrt20k" / "train.jsonl", val,
                  out / "avrt20k" / "counts.tsv", out / "avrt20k" / "difficulty.jsonl")
    assert len(read_avrt20k(val)) >= 6 and not read_avrt20k(out / "avrt20k" / "train.jsonl")
    return {"val": val, "merged": [merged], "teacher_traces": [traces["audio"], traces["frames"]]}


VERDICT_CYCLE = (ACCURATE, HALLUCINATING, MISSING_INFO, UNKNOWN_VERDICT, DRAFT_THEN_FINAL, TRUNCATED)
SOURCE_CYCLE = (AUDIO_SOURCE, BOTH_SOURCE, UNREADABLE_SOURCE)


class ScriptedJudge:
    """Fake: answers the individual evaluation by the trace's rank among the sampled ids
    (VERDICT_CYCLE), the source analysis by the rank among the hallucinating ones (SOURCE_CYCLE)."""

    def __init__(self, ids: list[str]):
        self.ids, self.requests = ids, []

    def generate(self, requests):
        self.requests.extend(requests)
        hallucinating = [i for n, i in enumerate(self.ids) if VERDICT_CYCLE[n % 6] in (HALLUCINATING, DRAFT_THEN_FINAL)]
        out = []
        for r in requests:
            if "hallucination source analysis" in r.prompt:
                text = SOURCE_CYCLE[hallucinating.index(r.request_id) % 3]
            else:
                text = VERDICT_CYCLE[self.ids.index(r.request_id) % 6]
            out.append(Completion(r.request_id, 0, text, 100, 40, "stop", 0))
        return out


def judge_outputs(tmp_path: Path) -> dict:
    return {"out_verdicts": tmp_path / "judge" / "verdicts.jsonl", "out_sources": tmp_path / "judge" / "sources.jsonl",
            "out_tables": tmp_path / "tables"}


def test_scripted_judge_fills_table_a1_exactly_fake_backend(run_rows, tmp_path):
    val_rows = read_avrt20k(run_rows["val"])
    samples = len(val_rows) - 1  # one trace is left out of the draw
    ids = [r.sample_id for r in sample_traces(val_rows, samples, seed=4)]
    judge = ScriptedJudge(ids)
    spec = fake_spec("judge", "qwen2_5_omni")
    outs = judge_outputs(tmp_path)
    stats = run_judge(spec, traces_file=run_rows["val"], samples=samples, seed=4, label="avrt-3b", chunk_size=4,
                      merged=run_rows["merged"], teacher_traces=run_rows["teacher_traces"], backend=judge, **outs)

    verdict_requests = [r for r in judge.requests if "hallucination source analysis" not in r.prompt]
    assert sorted(r.request_id for r in verdict_requests) == ids and stats["sampled"] == samples
    by_id = {r.sample_id: r for r in val_rows}
    prompt = load_prompt("judge_trace")
    for r in verdict_requests:  # the clip with its audio, and the trace with the ground truth
        row = by_id[r.request_id]
        assert r.modalities == ("frames", "audio") and r.media.frames.shape[0] > 0 and r.media.audio.size > 0
        assert r.prompt == render_judge_prompt(prompt, question=row.question, choices=row.choices,
                                               gold_letter=row.answer, trace=row.av_reasoning)

    kinds = [VERDICT_CYCLE[n % 6] for n in range(len(ids))]
    hallucinating = [i for i, k in zip(ids, kinds) if k in (HALLUCINATING, DRAFT_THEN_FINAL)]
    source_requests = [r for r in judge.requests if "hallucination source analysis" in r.prompt]
    assert sorted(r.request_id for r in source_requests) == sorted(hallucinating)
    audio_rows = {t.sample_id: t for t in read_rows(run_rows["teacher_traces"][0], TeacherTrace)}
    for r in source_requests:  # both teachers' texts as the merger read them, and the first verdict
        assert f"Audio Teacher's Reasoning:\n{teacher_text(audio_rows[r.request_id], 'response').strip()}\n" in r.prompt
        assert f"visual description of {r.request_id}." in r.prompt
        assert f"Final Merged Trace:\n{by_id[r.request_id].av_reasoning}\n" in r.prompt
        assert "Previous Evaluation Context:\nVerdict: HALLUCINATING. Explanation: " in r.prompt
        assert r.modalities == ("frames", "audio")

    verdicts = read_rows(outs["out_verdicts"], JudgeVerdict)
    sources = read_rows(outs["out_sources"], HallucinationSource)
    assert [v.sample_id for v in verdicts] == ids and {s.sample_id for s in sources} == set(hallucinating)
    assert all(v.judge_output == k for v, k in zip(verdicts, kinds))
    judged = [k for k in kinds if k not in (UNKNOWN_VERDICT, TRUNCATED)]
    source_kinds = [SOURCE_CYCLE[n % 3] for n in range(len(hallucinating))]
    expected = {
        "accurate": judged.count(ACCURATE), "missing_info": judged.count(MISSING_INFO),
        "hallucinating": len(hallucinating), "source_audio_teacher": source_kinds.count(AUDIO_SOURCE),
        "source_both_teachers": source_kinds.count(BOTH_SOURCE), "source_not_attributed": source_kinds.count(UNREADABLE_SOURCE),
        "audio_grounded": judged.count(ACCURATE), "visual_grounded": len(judged),
    }
    csv_rows = {line.split(",")[0]: line.split(",") for line in (outs["out_tables"] / "table_a1.csv").read_text().splitlines()}
    for key, count in expected.items():
        assert csv_rows[key][3:] == [str(count), str(len(judged)), f"{round_percent(100 * count / len(judged)):.1f}"], key
    assert csv_rows["judged"][3:5] == [str(len(judged)), str(samples)]
    assert csv_rows["unparsed_verdict/bad_value"][3] == str(kinds.count(UNKNOWN_VERDICT))
    assert csv_rows["unparsed_verdict/no_json"][3] == str(kinds.count(TRUNCATED))
    md = (outs["out_tables"] / "table_a1.md").read_text()
    assert f"| n judged | {len(judged)} |" in md and f"{samples} of the {len(val_rows)} AVRT-20K traces" in md

    # done: a rerun reads both caches and asks the judge nothing
    again = ScriptedJudge(ids)
    run_judge(spec, traces_file=run_rows["val"], samples=samples, seed=4, label="avrt-3b", chunk_size=4,
              merged=run_rows["merged"], teacher_traces=run_rows["teacher_traces"], backend=again, **outs)
    assert again.requests == [] and (outs["out_tables"] / "table_a1.md").read_text() == md


def test_a_merged_trace_without_its_teacher_rows_names_the_sample_fake_backend(run_rows, tmp_path):
    ids = [r.sample_id for r in sample_traces(read_avrt20k(run_rows["val"]), 2, seed=0)]
    judge = ScriptedBackend(lambda sid, i: HALLUCINATING)
    with pytest.raises(JudgeInputError, match=rf"sample '({'|'.join(ids)})': its merged trace names teacher"):
        run_judge(fake_spec("judge", "qwen2_5_omni"), traces_file=run_rows["val"], samples=2, seed=0, label="r",
                  chunk_size=4, merged=run_rows["merged"], teacher_traces=[], backend=judge, **judge_outputs(tmp_path))


def test_without_merged_rows_there_is_no_source_analysis_fake_backend(run_rows, tmp_path):
    judge = ScriptedBackend(lambda sid, i: HALLUCINATING)
    outs = judge_outputs(tmp_path)
    run_judge(fake_spec("judge", "qwen2_5_omni"), traces_file=run_rows["val"], samples=3, seed=0, label="audio-chains",
              chunk_size=4, backend=judge, **outs)
    assert judge.calls == 3 and outs["out_sources"].read_text() == ""
    md = (outs["out_tables"] / "table_a1.md").read_text()
    assert "| Hallucinating | 100.0% |" in md and "No hallucination source analysis" in md


@pytest.fixture(scope="module")
def tiny_omni(tmp_path_factory) -> Path:
    from avrt.demo.zoo import build_zoo

    out = tmp_path_factory.mktemp("judge_zoo")
    build_zoo(out, ["qwen2_5_omni"], seed=0)
    return out / "qwen2_5_omni"


@pytest.mark.integration
def test_a_tiny_omni_judge_runs_end_to_end_its_garbage_unparsed_and_resumes(run_rows, tiny_omni, tmp_path, monkeypatch):
    """`avrt judge-traces` on a random-weight Qwen2.5-Omni: it watches the real clips, says nothing
    readable, and every reply is counted as unparsed; killed mid-run, it asks only for the rest."""
    from avrt.cli import main
    from avrt.models.backends import load_model

    judge_spec = {"family": "qwen2_5_omni", "checkpoint": str(tiny_omni), "backend": "hf", "dtype": "float32",
                  "batch_size": 2, "sampling": {"temperature": 0.0, "max_new_tokens": 8}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"run": "tiny-judge", "models": {"judge": judge_spec, "student": judge_spec},
                                      "judge": {"model": "judge", "samples": 3, "seed": 1}}))
    outs = judge_outputs(tmp_path)
    args = ["judge-traces", "--config", str(config), "--traces-file", str(run_rows["val"]),
            "--merged", *map(str, run_rows["merged"]), "--teacher-traces", *map(str, run_rows["teacher_traces"]),
            "--out-verdicts", str(outs["out_verdicts"]), "--out-sources", str(outs["out_sources"]),
            "--out-tables", str(outs["out_tables"])]
    assert main(args) == 0
    verdicts = read_rows(outs["out_verdicts"], JudgeVerdict)
    assert len(verdicts) == 3 and all(not v.ok and v.reason for v in verdicts)
    assert all(0 < v.completion_tokens <= 8 and v.prompt_tokens > 0 and v.model == "judge" for v in verdicts)
    md = (outs["out_tables"] / "table_a1.md").read_text()
    assert "| n judged | 0 |" in md and "| Unparsed verdicts | 3 |" in md and "| Accurate | – |" in md
    assert outs["out_sources"].read_text() == ""  # nothing judged hallucinating, nothing to attribute

    # killed after the first reply: the rerun asks the model for the other two only
    progress = outs["out_verdicts"].parent / ".progress" / outs["out_verdicts"].name
    lines = progress.read_text().splitlines(keepends=True)
    progress.write_text(lines[0])
    outs["out_verdicts"].unlink()
    spec = ModelSpec.from_config("judge", judge_spec)
    counting = CountingBackend(load_model(spec))
    stats = run_judge(spec, traces_file=run_rows["val"], samples=3, seed=1, label="tiny-judge", chunk_size=4,
                      merged=run_rows["merged"], teacher_traces=run_rows["teacher_traces"], backend=counting, **outs)
    assert len(counting.requests) == 2 and stats["verdicts"]["new_outputs"] == 2
    kept = [json.loads(x) for x in progress.read_text().splitlines()]
    assert kept[0] == json.loads(lines[0]) and sorted(r["request_id"] for r in kept) == sorted(v.sample_id for v in verdicts)
    verdicts = read_rows(outs["out_verdicts"], JudgeVerdict)
    # finished: a rerun never loads the model
    monkeypatch.setattr("avrt.models.backends.load_model", lambda spec: pytest.fail("model loaded"))
    assert main(args) == 0 and read_rows(outs["out_verdicts"], JudgeVerdict) == verdicts


def test_the_command_says_when_the_judge_is_off(tmp_path, capsys):
    from avrt.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"run": "r", "models": {"student": {"family": "qwen2_5_omni", "checkpoint": "x"}}}))
    out = [str(tmp_path / n) for n in ("v.jsonl", "s.jsonl", "t")]
    assert main(["judge-traces", "--config", str(config), "--traces-file", "val.jsonl", "--out-verdicts", out[0],
                 "--out-sources", out[1], "--out-tables", out[2]]) == 2
    assert "config key 'judge' is null" in capsys.readouterr().err
