"""AVRT trace stage: teachers and merger on tiny models and real synthetic media, resume, filter, export."""

from __future__ import annotations

import json
import pytest

from avrt.core.datasets import in_val, read_avrt20k
from avrt.core.generation import ModelOutput
from avrt.core.io import read_jsonl
from avrt.core.prompts import load_prompt, render_merger_prompt
from avrt.core.rows import ClipRef, ManifestRow, MediaRow, MergedTrace, RowError, TeacherTrace, read_rows, write_rows
from avrt.models.backends import Completion
from fake_backends import CountingBackend, ScriptedBackend, echo_backend
from avrt.models.spec import ModelSpec
from avrt.traces.filter import avrt20k_row, filter_traces, select, teacher_sft_trace
from avrt.traces.merge import merged_row, run_merge
from avrt.traces.teacher import run_teacher, trace_row

TEACHERS = {
    "visual": {"name": "visual", "model": "visual_teacher", "prompt": "visual_teacher", "modality": "frames"},
    "audio": {"name": "audio", "model": "audio_teacher", "prompt": "audio_teacher", "modality": "audio"},
}


@pytest.fixture
def shard(prepared_shard):
    return prepared_shard


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    from avrt.demo.zoo import build_zoo

    out = tmp_path_factory.mktemp("zoo")
    build_zoo(out, ["qwen2_5_vl", "qwen2_audio", "text_llm"], seed=0)
    return out


def spec(name: str, family: str, checkpoint, **extra) -> ModelSpec:
    return ModelSpec.from_config(name, {"family": family, "checkpoint": str(checkpoint), "backend": "hf",
                                        "dtype": "float32", "batch_size": 4,
                                        "sampling": {"temperature": 0.0, "max_new_tokens": 8}, **extra})


@pytest.mark.integration
def test_teachers_run_on_tiny_models_with_their_own_modality(shard, zoo, tmp_path):
    shard_path, media = shard
    train_qa = [r for r in read_jsonl(shard_path) if r["split"] == "train"]
    for name, family in (("visual", "qwen2_5_vl"), ("audio", "qwen2_audio")):
        s = spec(TEACHERS[name]["model"], family, zoo / family)
        stats = run_teacher(TEACHERS[name], s, ["train"], shard_path, media, tmp_path / name / "000.jsonl", chunk_size=3)
        rows = list(read_jsonl(tmp_path / name / "000.jsonl"))
        assert len(rows) == stats["rows"] == len(train_qa) and stats["model_calls"] == -(-len(train_qa) // 3)  # chunks of 3
        prompt = load_prompt(TEACHERS[name]["prompt"])
        for row in rows:
            assert row["prompt_sha256"] == prompt.sha256 and row["teacher"] == name
            assert row["completion_tokens"] <= 8 and row["prompt_tokens"] > 0
            assert row["parse_status"] in {"ok", "ok_option_text", "no_answer", "ambiguous", "unmatched_text", "out_of_range"}
            assert row["correct"] == (row["answer_letter"] == row["gold_letter"])
        assert {r["split"] for r in rows} == {"train"}


@pytest.mark.integration
def test_teacher_resumes_after_a_kill_without_duplicates_or_extra_calls(shard, zoo, tmp_path, monkeypatch):
    from avrt.models.backends import load_model

    shard_path, media = shard
    s = spec("audio_teacher", "qwen2_audio", zoo / "qwen2_audio")
    out = tmp_path / "audio" / "000.jsonl"
    run_teacher(TEACHERS["audio"], s, ["train"], shard_path, media, out, chunk_size=2)
    complete = out.read_text()
    progress = out.parent / ".progress" / out.name
    lines = progress.read_text().splitlines(keepends=True)
    # killed mid-write: two finished rows and a torn third; the declared output never appeared
    progress.write_text("".join(lines[:2]) + lines[2][:40])
    out.unlink()
    counting = CountingBackend(load_model(s))
    stats = run_teacher(TEACHERS["audio"], s, ["train"], shard_path, media, out, chunk_size=2, backend=counting)
    assert len(counting.requests) == len(lines) - 2  # only the missing rows were asked for
    assert stats["new_outputs"] == len(lines) - 2
    assert [json.loads(x)["sample_id"] for x in out.read_text().splitlines()] == \
           [json.loads(x)["sample_id"] for x in complete.splitlines()]
    strip = lambda text: [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in text.splitlines()]  # noqa: E731
    assert strip(out.read_text()) == strip(complete)  # greedy: the same rows again

    # a finished shard re-run never loads the model
    monkeypatch.setattr("avrt.models.backends.load_model", lambda spec: pytest.fail("model loaded"))
    again = run_teacher(TEACHERS["audio"], s, ["train"], shard_path, media, out, chunk_size=2)
    assert again["model_calls"] == 0 and again["new_outputs"] == 0


def test_teacher_discards_rows_of_another_prompt_or_model_fake_backend(shard, tmp_path):
    """Rows made with other settings are never mixed in: a changed spec asks again."""
    shard_path, media = shard
    echo = echo_backend()
    out = tmp_path / "v" / "000.jsonl"
    s1 = spec("visual_teacher", "qwen2_5_vl", "/nonexistent/a")
    run_teacher(TEACHERS["visual"], s1, ["train"], shard_path, media, out, chunk_size=64, backend=echo)
    first = echo.calls
    rows = list(read_jsonl(out))
    assert all(r["answer_letter"] == "A" and r["parse_status"] == "ok" for r in rows)
    assert all(r["correct"] == (r["gold_letter"] == "A") for r in rows)
    s2 = spec("visual_teacher", "qwen2_5_vl", "/nonexistent/b")
    run_teacher(TEACHERS["visual"], s2, ["train"], shard_path, media, out, chunk_size=64, backend=echo)
    assert echo.calls == 2 * first
    assert {r["checkpoint"] for r in read_jsonl(out)} == {"/nonexistent/b"}


def test_teacher_asks_again_after_its_checkpoint_or_shard_changes_fake_backend(shard, tmp_path):
    """A checkpoint retrained under the same path (SFT rerun) or a changed shard invalidates the
    rows of a finished shard; an untouched one costs no call."""
    import os

    shard_path, media = shard
    echo = echo_backend()
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights v1")
    s = spec("visual_teacher", "qwen2_5_vl", checkpoint)
    out = tmp_path / "v" / "000.jsonl"
    run = lambda shard_file: run_teacher(TEACHERS["visual"], s, ["train"], shard_file, media, out,  # noqa: E731
                                         chunk_size=64, backend=echo)
    run(shard_path)
    per_run = echo.calls
    run(shard_path)
    assert echo.calls == per_run  # nothing changed: no call
    (checkpoint / "model.safetensors").write_bytes(b"weights v2")
    os.utime(checkpoint / "model.safetensors", ns=(1, 1))  # a new file, whatever the clock's resolution
    run(shard_path)
    assert echo.calls == 2 * per_run
    changed = tmp_path / "shard.jsonl"
    changed.write_text(shard_path.read_text().replace('"question": "', '"question": "Now: '))
    run(changed)
    assert echo.calls == 3 * per_run

def _teacher_traces(shard_path, media, teacher, letter_for, out):
    """The teacher stage's own rows, with a scripted backend answering `letter_for(qa)` per question."""
    qas = {qa["sample_id"]: qa for qa in read_jsonl(shard_path)}
    answer = lambda sid, i: f"{teacher['name']} sees things.\nAnswer: ({letter_for(qas[sid])})"  # noqa: E731
    run_teacher(teacher, spec(teacher["model"], "qwen2_5_vl", "/nonexistent"), ["train"], shard_path, media, out,
                chunk_size=64, backend=ScriptedBackend(answer))
    return out


def test_merger_sees_question_choices_and_traces_only_fake_backend(shard, tmp_path):
    shard_path, media = shard
    wrong = lambda qa: "ABCD"[(qa["answer_index"] + 1) % 4]  # noqa: E731
    visual = _teacher_traces(shard_path, media, TEACHERS["visual"], lambda qa: qa["gold_letter"], tmp_path / "visual.jsonl")
    audio = _teacher_traces(shard_path, media, TEACHERS["audio"],
                            lambda qa: qa["gold_letter"] if int(qa["sample_id"]) % 2 else wrong(qa), tmp_path / "audio.jsonl")
    seen = []

    class RecordingBackend:  # fake: records prompts, answers in the strict format
        def generate(self, requests):
            seen.extend(requests)
            return [Completion(r.request_id, 0, "<think>Audio and frames agree.</think><answer>B</answer>", 50, 9, "stop", 0)
                    for r in requests]

    s = spec("merger", "text_llm", "/nonexistent")
    run_merge("merger", s, {"audio": audio, "frames": visual}, tmp_path / "merged.jsonl", "response", chunk_size=64,
              backend=RecordingBackend())
    qas = {q["sample_id"]: q for q in read_jsonl(shard_path)}
    prompt = load_prompt("merger")
    assert len(seen) == sum(q["split"] == "train" for q in qas.values())
    assert all(r.media is None and r.modalities == () for r in seen)
    for req in seen:
        qa = qas[req.request_id]
        # exactly the rendering of question, choices and both traces: nothing else reaches the merger
        assert req.prompt == render_merger_prompt(
            prompt, question=qa["question"], choices=qa["choices"],
            audio_reasoning=next(r for r in read_jsonl(audio) if r["sample_id"] == req.request_id)["response"],
            vision_reasoning=next(r for r in read_jsonl(visual) if r["sample_id"] == req.request_id)["response"])
    merged = read_rows(tmp_path / "merged.jsonl", MergedTrace)
    assert {r.merge_status for r in merged} == {"ok"}
    for row in merged:
        qa = qas[row.sample_id]
        assert (row.question, list(row.choices), row.gold_letter) == (qa["question"], qa["choices"], qa["gold_letter"])
        assert row.clip.media.video_name == qa["video_name"] and row.clip.media.ok
        assert row.merger_correct == (row.gold_letter == "B")
        assert row.teachers["visual"].correct is True
        assert row.teachers_correct == 1 + row.teachers["audio"].correct
        assert row.difficulty == {2: "easy", 1: "medium"}[row.teachers_correct]
        assert row.teachers["audio"].ref == f"traces/audio#sample_id={row.sample_id}&sample_index=0"


def _output(text: str) -> ModelOutput:
    return ModelOutput(request_id="x", sample_index=0, text=text, prompt_tokens=10, completion_tokens=5,
                       finish_reason="stop", seed=0, seconds=0.1)


def manifest_row(i: str, **changes) -> ManifestRow:
    return ManifestRow(sample_id=i, split="train", video_name=f"v{i}", video_id=None, clip_path=f"v{i}.mp4",
                       question="q?", choices=("a", "b", "c", "d"), answer_index=0, gold_letter="A",
                       question_type="Which", question_relation="Both", duration=10.0, width=320, height=240,
                       fps=10.0, audio_rate=16000, audio_channels=1).replace(**changes)


def merged(sample_id, teachers_correct: int, merger_correct: bool, status: str = "ok") -> MergedTrace:
    """A merged row made by the stages' own row builders: the visual teacher right when
    teachers_correct >= 1, the audio teacher when it is 2; the merger answers A (gold) or B."""
    i = str(sample_id)
    qa = manifest_row(i)
    clip = ClipRef(root="media", media=MediaRow(video_name=f"v{i}", clip_path=f"v{i}.mp4", params="p", status="ok"))
    s = spec("m", "text_llm", "/nonexistent")
    traces = {TEACHERS[name]["modality"]: trace_row(qa, clip, _output(f"Answer: ({'A' if rank < teachers_correct else 'B'})"),
                                                    TEACHERS[name], s, load_prompt(TEACHERS[name]["prompt"]))
              for rank, name in enumerate(("visual", "audio"))}
    letter = "A" if merger_correct else "B"
    text = f"<think>t{i}</think><answer>{letter}</answer>" if status == "ok" else f"The answer is {letter}."
    return merged_row(traces, _output(text), s, load_prompt("merger"))


ROWS = ([merged(i, 2, True) for i in range(10)] + [merged(10, 2, False)] + [merged(i, 1, True) for i in range(11, 16)]
        + [merged(i, 0, False) for i in range(16, 20)] + [merged(20, 2, True, "invalid_format")])


@pytest.mark.parametrize(
    "mode, match, drop, kept",
    [
        ("both_correct", False, True, 10),  # 11 with both right, one merged to a wrong answer
        ("both_correct", False, False, 11),
        ("merger_correct", False, True, 15),
        ("unfiltered", False, False, 20),  # every format-compliant trace
        ("unfiltered", False, True, 15),
        ("unfiltered", True, True, 10),  # matched to the both_correct count
    ],
)
def test_filter_modes_keep_what_they_promise(mode, match, drop, kept):
    rows, counts = select(ROWS, mode, match, drop, seed=0)
    assert counts["kept"] == len(rows) == kept
    assert counts["format_ok"] == 20 and counts["merged"] == 21
    assert all(r.merge_status == "ok" for r in rows)
    if drop:
        assert all(r.merger_correct for r in rows)


def test_filter_writes_avrt20k_splits_counts_and_difficulty(tmp_path):
    assert ROWS[-1].merge_status == "invalid_format"
    write_rows(tmp_path / "m.jsonl", ROWS)
    out = {k: tmp_path / f"{k}.jsonl" for k in ("train", "val", "difficulty")}
    counts = filter_traces([tmp_path / "m.jsonl"], "both_correct", False, True, 0.3, 7,
                           out["train"], out["val"], tmp_path / "counts.tsv", out["difficulty"])
    train, val = read_avrt20k(out["train"]), read_avrt20k(out["val"])
    assert len(train) + len(val) == counts["kept"] == 10 and counts["train"] == len(train)
    assert {r.sample_id for r in val} == {str(i) for i in range(10) if in_val(str(i), 0.3, 7)}
    assert list(train[0].to_dict())[:6] == ["question", "choices", "answer", "question_relation", "question_type",
                                            "av_reasoning"]
    assert train[0].av_reasoning.startswith("<think>") and train[0].answer == "A"
    assert train[0].clip == ROWS[int(train[0].sample_id)].clip  # training finds the clip without a search
    assert [r["difficulty"] for r in read_jsonl(out["difficulty"])].count("hard") == 4
    table = dict(line.split("\t") for line in (tmp_path / "counts.tsv").read_text().splitlines()[1:])
    assert table["mode"] == "both_correct" and table["teacher/audio/correct"] == "12"
    assert table["teacher/visual/correct"] == "17" and table["difficulty/medium"] == "5"


def test_both_correct_keeps_a_trace_only_when_each_teacher_was_right_fake_backend(shard, tmp_path):
    """Rows made by the teacher and merger stages (scripted answers): over the train questions,
    every combination of the visual and the audio teacher being right; the merger answers the
    gold letter in the strict format. AVRT-20K (both_correct) keeps the questions both teachers
    got right, not those only one of them did."""
    shard_path, media = shard
    train = sorted(q["sample_id"] for q in read_jsonl(shard_path) if q["split"] == "train")
    right = {sid: [(True, True), (True, False), (False, True), (False, False)][i % 4] for i, sid in enumerate(train)}
    wrong = lambda qa: "ABCD"[(qa["answer_index"] + 1) % len(qa["choices"])]  # noqa: E731
    traces = {
        modality: _teacher_traces(shard_path, media, TEACHERS[name],
                                  lambda qa, k=k: qa["gold_letter"] if right[qa["sample_id"]][k] else wrong(qa),
                                  tmp_path / f"{name}.jsonl")
        for k, (name, modality) in enumerate((("visual", "frames"), ("audio", "audio")))
    }
    gold = {q["sample_id"]: q["gold_letter"] for q in read_jsonl(shard_path)}
    merger = ScriptedBackend(lambda sid, i: f"<think>Both traces considered.</think><answer>{gold[sid]}</answer>")
    run_merge("merger", spec("merger", "text_llm", "/nonexistent"), traces, tmp_path / "merged.jsonl", "response",
              chunk_size=64, backend=merger)
    merged = read_rows(tmp_path / "merged.jsonl", MergedTrace)
    assert {r.sample_id: (r.teachers["visual"].correct, r.teachers["audio"].correct) for r in merged} == right
    assert set(right.values()) == {(True, True), (True, False), (False, True), (False, False)}
    assert all(r.merge_status == "ok" and r.merger_correct for r in merged)

    out = {k: tmp_path / f"{k}.jsonl" for k in ("train", "val", "difficulty")}
    counts = filter_traces([tmp_path / "merged.jsonl"], "both_correct", False, True, 0.0, 0,
                           out["train"], out["val"], tmp_path / "counts.tsv", out["difficulty"])
    both = {sid for sid, r in right.items() if r == (True, True)}
    assert {r.sample_id for r in read_avrt20k(out["train"])} == both and not read_avrt20k(out["val"])
    assert counts["format_ok_and_all_teachers_correct"] == counts["kept"] == len(both)
    assert counts["teacher/audio/correct"] == sum(a for _, a in right.values())
    difficulty = {r["sample_id"]: r["difficulty"] for r in read_jsonl(out["difficulty"])}
    assert difficulty == {sid: {2: "easy", 1: "medium", 0: "hard"}[sum(r)] for sid, r in right.items()}


def _single_teacher_traces(shard_path, media, tmp_path):
    """Both teachers' rows as the teacher stage writes them (scripted answers in the prompts' format,
    the visual teacher thinking first as Kimi-VL-Thinking does), over train and val questions: each
    pattern of who is right, and an audio answer no option can be read from."""
    qas = {qa["sample_id"]: qa for qa in read_jsonl(shard_path)}
    ids = sorted(qas)
    pattern = {sid: [("gold", "gold"), ("gold", "wrong"), ("wrong", "gold"), ("wrong", "wrong"), ("gold", "none")][i % 5]
               for i, sid in enumerate(ids)}
    letter = {"gold": lambda qa: qa["gold_letter"], "wrong": lambda qa: "ABCD"[(qa["answer_index"] + 1) % len(qa["choices"])]}

    def visual(sid, i):
        return (f"\u25c1think\u25b7Frames first.\u25c1/think\u25b7Visual Description: the frames of {sid}.\n"
                f"Reasoning: the frames fit.\nAnswer: ({letter[pattern[sid][0]](qas[sid])})")

    def audio(sid, i):
        if pattern[sid][1] == "none":
            return f"Audio Description: the sound of {sid}.\nReasoning: nothing fits."
        return f"Audio Description: the sound of {sid}.\nReasoning: the sound fits.\nAnswer: ({letter[pattern[sid][1]](qas[sid])})"

    paths = []
    for name, answer in (("visual", visual), ("audio", audio)):
        paths.append(tmp_path / name / "000.jsonl")
        run_teacher(TEACHERS[name], spec(TEACHERS[name]["model"], "qwen2_5_vl", "/nonexistent"), ["train", "val"],
                    shard_path, media, paths[-1], chunk_size=64, backend=ScriptedBackend(answer))
    traced = {r.sample_id for r in read_rows(paths[0], TeacherTrace)}
    assert set(pattern[sid] for sid in traced) == set(pattern.values())  # every pattern is exercised
    return paths, {sid: p for sid, p in pattern.items() if sid in traced}, qas


@pytest.mark.parametrize("source", ["audio", "visual"])
def test_single_teacher_sft_set_is_that_teachers_traces_in_the_strict_format_fake_backend(shard, tmp_path, source):
    """filter.source a teacher (Table 5): the SFT set is built from the teacher stage's rows, with no
    merged row. both_correct keeps the questions both teachers got right; the trace is that teacher's
    text less its answer line (after any thinking block) in <think>, its letter in <answer>."""
    from avrt.core.answers import is_strict_format
    from avrt.training.data import load_examples

    shard_path, media = shard
    paths, pattern, qas = _single_teacher_traces(shard_path, media, tmp_path)
    out = {k: tmp_path / f"{k}.jsonl" for k in ("train", "val", "difficulty")}
    run = lambda mode, drop: filter_traces(paths, mode, False, drop, 0.0, 0, out["train"], out["val"],  # noqa: E731
                                           tmp_path / "counts.tsv", out["difficulty"], source=source)
    counts = run("both_correct", True)
    rows = read_avrt20k(out["train"])
    both = {sid for sid, p in pattern.items() if p == ("gold", "gold")}
    assert [r.sample_id for r in rows] == sorted(both) and counts["kept"] == len(both) and not read_avrt20k(out["val"])
    own = {r.sample_id: r for r in read_rows(paths[source == "audio"], TeacherTrace)}
    for row in rows:
        qa = qas[row.sample_id]
        body = (f"Audio Description: the sound of {row.sample_id}.\nReasoning: the sound fits." if source == "audio"
                else f"Visual Description: the frames of {row.sample_id}.\nReasoning: the frames fit.")
        assert row.av_reasoning == f"<think>{body}</think><answer>{qa['gold_letter']}</answer>"
        assert is_strict_format(row.av_reasoning) and row.answer == qa["gold_letter"] and row.difficulty == "easy"
        assert row.clip == own[row.sample_id].clip and row.avqa_split == qa["split"]
    assert [e.completion for e in load_examples("avrt20k", [out["train"]], "train")] == [r.av_reasoning for r in rows]
    table = dict(line.split("\t") for line in (tmp_path / "counts.tsv").read_text().splitlines()[1:])
    assert table["source"] == source and table["traces"] == str(len(pattern)) and "merged" not in table
    difficulty = {r["sample_id"]: r["difficulty"] for r in read_jsonl(out["difficulty"])}
    assert difficulty == {sid: {2: "easy", 1: "medium", 0: "hard"}[p.count("gold")] for sid, p in pattern.items()}

    # unfiltered, wrong answers dropped: every question this teacher answered correctly
    k = 1 if source == "audio" else 0
    run("unfiltered", True)
    assert {r.sample_id for r in read_avrt20k(out["train"])} == {sid for sid, p in pattern.items() if p[k] == "gold"}
    # unfiltered: every trace an option was read from, its own (possibly wrong) letter in <answer>
    counts = run("unfiltered", False)
    kept = read_avrt20k(out["train"])
    assert {r.sample_id for r in kept} == {sid for sid, p in pattern.items() if p[k] != "none"}
    assert counts["format_ok"] == len(kept) and all(
        r.av_reasoning.endswith(f"<answer>{own[r.sample_id].answer_letter}</answer>") for r in kept)
    with pytest.raises(ValueError, match="'filter.mode': merger_correct needs the merger's traces"):
        run("merger_correct", True)
    with pytest.raises(ValueError, match=r"'filter.source': no traces of teacher 'speech' among the inputs \(have: audio, visual\)"):
        filter_traces(paths, "both_correct", False, True, 0.0, 0, out["train"], out["val"], tmp_path / "c.tsv",
                      out["difficulty"], source="speech")


def test_a_teacher_trace_becomes_an_sft_target_only_in_the_strict_format():
    qa, clip = manifest_row("1"), ClipRef(root="media", media=MediaRow(video_name="v1", clip_path="v1.mp4", params="p", status="ok"))
    row = lambda text: trace_row(qa, clip, _output(text), TEACHERS["audio"], spec("a", "qwen2_audio", "/x"),  # noqa: E731
                                 load_prompt("audio_teacher"))
    assert teacher_sft_trace(row("Audio Description: a bell.\nReasoning: bells ring.\nAnswer: (A) a")) == \
        "<think>Audio Description: a bell.\nReasoning: bells ring.</think><answer>A</answer>"
    assert teacher_sft_trace(row("<think>A bell rings.</think>Answer: (B)")) == "<think>A bell rings.</think><answer>B</answer>"
    assert teacher_sft_trace(row("A bell, or a horn.")) is None  # no option read
    assert teacher_sft_trace(row("Answer: (A)")) is None  # nothing to reason with
    assert teacher_sft_trace(row("It ends with </answer> here.\nAnswer: (A)")) is None  # would break the format


def test_teacher_resume_keeps_the_rows_first_made_fake_backend(shard, tmp_path):
    """The teacher stage with two samples per question, killed between the samples of its last
    question, resumed with a model that now answers otherwise: the question is asked again, its
    cached sample stays as first made, and no row is in the progress file twice. Rows that a
    second attempt of the job appended for questions already done (a requeued job while the
    first still ran) do not replace the first ones either."""
    shard_path, media = shard
    s = spec("audio_teacher", "qwen2_5_vl", "/nonexistent", sampling={"temperature": 1.0, "n": 2, "max_new_tokens": 8})
    out = tmp_path / "audio" / "000.jsonl"
    progress = out.parent / ".progress" / out.name

    def attempt(name: str):
        backend = ScriptedBackend(lambda sid, i: f"{name} attempt, sample {i}.\nAnswer: (A)", samples=2)
        run_teacher(TEACHERS["audio"], s, ["train"], shard_path, media, out, chunk_size=64, backend=backend)
        return backend

    def keys(lines):
        return [(json.loads(x)["request_id"], json.loads(x)["sample_index"]) for x in lines]

    attempt("first")
    lines = progress.read_text().splitlines(keepends=True)
    assert len(lines) == len(list(read_jsonl(out))) == len(set(keys(lines))) > 2  # one row per question and sample
    progress.write_text("".join(lines[:-1]))  # killed after sample 0 of the last question
    out.unlink()
    second = attempt("second")
    last = keys(lines)[-1][0]
    assert [r.request_id for r in second.requests] == [last]
    rows = {(r["sample_id"], r["sample_index"]): r["raw_output"] for r in read_jsonl(out)}
    assert rows[(last, 0)].startswith("first") and rows[(last, 1)].startswith("second")
    assert len(rows) == len(lines) and sorted(keys(progress.read_text().splitlines())) == sorted(keys(lines))

    before = progress.read_text()
    requeued = [dict(json.loads(x), text=json.loads(x)["text"].replace("first", "requeued")) for x in lines[:2]]
    progress.write_text(before + "".join(json.dumps(r) + "\n" for r in requeued))
    assert attempt("another").calls == 0  # every question is done
    assert {(r["sample_id"], r["sample_index"]): r["raw_output"] for r in read_jsonl(out)} == rows
    assert progress.read_text() == before  # each row once, as first made


def test_avrt20k_export_round_trips_through_datasets(tmp_path):
    from datasets import load_from_disk

    from avrt.traces.export import export_hf

    write_rows(tmp_path / "train.jsonl", [avrt20k_row(r) for r in ROWS[:6]])
    write_rows(tmp_path / "val.jsonl", [avrt20k_row(r) for r in ROWS[6:8]])
    export_hf(tmp_path / "train.jsonl", tmp_path / "val.jsonl", tmp_path / "hf")
    dd = load_from_disk(str(tmp_path / "hf"))
    assert dd["train"].num_rows == 6 and dd["val"].num_rows == 2
    assert dd["train"][0]["choices"] == ["a", "b", "c", "d"] and dd["train"][0]["answer"] == "A"
    assert "clip" not in dd["train"].column_names and dd["train"][0]["sample_id"] == "0"


def test_released_avrt20k_missing_fields_named(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"question": "q", "choices": ["a"], "answer": "A"}]))
    with pytest.raises(RowError, match=r"bad.json: row 0: Avrt20kRow row: missing fields "
                                       r"\['av_reasoning', 'question_relation', 'question_type'\]"):
        read_avrt20k(tmp_path / "bad.json")
    (tmp_path / "bad.jsonl").write_text(json.dumps({**avrt20k_row(ROWS[0]).to_dict(), "answer": 1}) + "\n")
    with pytest.raises(RowError, match=r"bad.jsonl: line 1: Avrt20kRow.answer: expected str, got 1"):
        read_avrt20k(tmp_path / "bad.jsonl")


def test_released_avrt20k_columns_map_to_ours(tmp_path, caplog):
    release = [{**{k: v for k, v in avrt20k_row(r).to_dict().items() if k not in ("sample_id", "clip")},
                "id": int(r.sample_id), "video_id": 7} for r in ROWS[:3]]
    (tmp_path / "release.json").write_text(json.dumps(release))
    rows = read_avrt20k(tmp_path / "release.json")
    assert [r.sample_id for r in rows] == ["0", "1", "2"] and rows[0].video_name == "v0" and rows[0].clip is None
    assert "columns ['video_id'] are no AVRT-20K fields" in caplog.text


def test_trace_stats_count_tokens_and_distributions(zoo, tmp_path):
    from avrt.traces.stats import dataset_stats

    rows = [avrt20k_row(r) for r in ROWS[:10]]
    write_rows(tmp_path / "train.jsonl", rows[:8])
    write_rows(tmp_path / "val.jsonl", rows[8:])
    write_rows(tmp_path / "manifest.jsonl", [manifest_row(r.sample_id, width=1280, height=720 if i % 4 else 360)
                                             for i, r in enumerate(rows)])
    stats = dataset_stats(tmp_path / "train.jsonl", tmp_path / "val.jsonl", tmp_path / "manifest.jsonl",
                          str(zoo / "text_llm"), tmp_path / "stats.json", tmp_path / "stats.png")
    train = stats["splits"]["train"]
    assert train["samples"] == 8 and train["format_compliance_percent"] == 100.0
    assert train["think_tokens"]["mean"] > 0 and train["answer_tokens"]["mean"] == 1.0
    assert train["primary_resolution"] == {"size": "1280x720", "percent": 75.0}
    assert train["answer_letter"] == {"A": {"count": 8, "percent": 100.0}}
    assert (tmp_path / "stats.png").stat().st_size > 1000


def test_an_unknown_teacher_name_is_a_clear_error_from_the_command(capsys, tmp_path):
    from avrt.cli import main
    from conftest import REPO

    for command in (["teacher", "--shard", "s.jsonl", "--media", "m.jsonl"], ["evaluate", "--records", "r.jsonl", "--benchmark", "omnibench"]):
        code = main([*command[:1], "--config", str(REPO / "config/demo.yaml"), "--teacher", "nobody", *command[1:],
                     "--out", str(tmp_path / "out.jsonl")])
        assert code == 2
        assert "config key 'teachers': no teacher named 'nobody' (have: visual, audio)" in capsys.readouterr().err
