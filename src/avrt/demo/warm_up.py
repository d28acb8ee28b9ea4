"""Demo only: teach the tiny teachers and the merger their task before the teacher stage.

The demo's tiny models start from random weights. A random teacher is never right, so AVRT-20K
would stay empty and the main path (teachers -> merger -> AVRT-20K -> SFT) would never run on real
rows. The tiny zoo (`avrt zoo --warm-up-config CONFIG`, rule build_tiny_models) therefore trains
each model the config's `demo_warm_up.models` names before it puts that model in place:

1. on a synthetic AVQA release of its own (`demo_warm_up.clips` clips from `demo_warm_up.seed`, so
   none of the demo's questions), checked by the data stage's ingest and cut by its media code with
   the run's `media` settings, exactly as the demo's clips are;
2. towards targets a template writes from each question's ground truth, in the format the model's
   prompt asks for: a teacher answers "Visual/Audio Description: ... Reasoning: ... Answer: <option>"
   with what its modality shows, on the questions its modality answers (`TEACHER_QUESTIONS`); the
   merger writes `<think>...</think><answer>X</answer>` from two such teacher texts (the demo's
   options come in a fixed order, so a letter follows from what the clip shows); SightSound-R1's
   silent-video teacher writes the sound it infers, then the letter, and its checker says "yes" to
   such a trace and "no" to one that claims another object's sound;
3. with the project's SFT pieces (`StudentInputs` with the model's own prompt and modality,
   `SFTDataset`, `SFTCollator`, `ResumableTrainer`) for the steps `demo_warm_up.steps` gives it.

What the teachers then get right on the demo's own questions is measured by the teacher stage
(results/<run>/avrt20k/filter_counts.tsv: each teacher's correct answers next to chance). None of
this is part of either paper's method: real teachers arrive trained.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from avrt.core.clip_media import read_clip_refs
from avrt.core.config import ConfigError, stage_config
from avrt.core.prompts import load_prompt, render_fact_check_prompt, render_merger_prompt, render_teacher_prompt
from avrt.core.rows import ManifestRow, TrainingExample, read_rows
from avrt.demo.synthetic_avqa import (COLOUR_QUESTION, POSITION_QUESTION, SOURCE_QUESTION, SOURCES, generate,
                                      synthetic_defaults)
from avrt.models.spec import ModelSpec, model_spec

log = logging.getLogger(__name__)

# What each sound is like, as the audio teacher describes it (synthetic_avqa.render_sound).
SOUNDS = {
    "bell": "a high ringing tone that fades twice a second",
    "drum": "low thumps four times a second",
    "flute": "a steady tone with vibrato",
    "engine": "a low steady hum",
}
# The questions each teacher's modality answers (the audio teacher hears which object sounds, and so
# its colour, not its place; the silent video shows all three); the merger and the checker learn from
# every question.
TEACHER_QUESTIONS = {"frames": (SOURCE_QUESTION, COLOUR_QUESTION, POSITION_QUESTION),
                     "audio": (SOURCE_QUESTION, COLOUR_QUESTION),
                     "silent_video": (SOURCE_QUESTION, COLOUR_QUESTION, POSITION_QUESTION)}
ROLE_NAMES = {"frames": "frames teacher", "audio": "audio teacher", "silent_video": "SightSound teacher",
              "merger": "merger", "checker": "checker"}


@dataclass(frozen=True)
class Role:
    """What one model is warmed up for, with its prompt: `kind` is a teacher's modality (frames, audio:
    an AVRT teacher; silent_video: the SightSound-R1 teacher), `merger` or `checker` (SightSound-R1's AGFV)."""

    model: str
    prompt: str
    kind: str
    steps: int = 0

    @property
    def modalities(self) -> tuple[str, ...]:
        """What the model sees at its stage: the teacher its modality, the checker the audio, the merger text."""
        return {"merger": (), "checker": ("audio",)}.get(self.kind, (self.kind,))


def roles(config: dict) -> list[Role]:
    """The roles of the models `demo_warm_up.models` names: the teacher that uses the model, the
    merger or the SightSound-R1 checker."""
    warm = config.get("demo_warm_up") or {}
    by_model = {t["model"]: Role(t["model"], t["prompt"], t["modality"]) for t in config["teachers"]
                if t["modality"] in TEACHER_QUESTIONS}
    sightsound = config.get("sightsound") or {}
    if sightsound.get("enabled"):
        by_model.setdefault(sightsound["checker"], Role(sightsound["checker"], sightsound["checker_prompt"], "checker"))
    else:
        by_model.setdefault(config["merger"]["model"], Role(config["merger"]["model"], config["merger"]["prompt"],
                                                            "merger"))
    unknown = [m for m in warm.get("models", []) if m not in by_model]
    if unknown:
        raise ConfigError(f"config key 'demo_warm_up.models': {unknown} are neither a teacher's model nor the "
                          f"merger's or the SightSound checker's (those are: {sorted(by_model)})")
    steps = warm.get("steps", {})
    return [replace(by_model[m], steps=steps.get(m, warm.get("default_steps", 0))) for m in warm.get("models", [])]


# ---- targets -----------------------------------------------------------------------------------
def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _answer_line(row: ManifestRow) -> str:
    # The option's text without its letter: a tiny model tells a bell from a drum long before it
    # learns to find the bell's letter among the options (the teacher parser reads either).
    return f"Answer: {row.choices[row.answer_index]}"


def visual_text(row: ManifestRow, source: str) -> str:
    """What the frames show about the sounding (larger, pulsing) object, in the visual teacher's
    format; `source` is the sounding class."""
    shape, _, colour = SOURCES[source]
    answer = row.choices[row.answer_index]
    seen = f"{_a(colour)} {shape}" + (f" at the {answer}" if row.question == POSITION_QUESTION else "")
    reason = (f"A {colour} {shape} is {_a(source)}." if row.question == SOURCE_QUESTION
              else "The larger, pulsing object makes the sound.")
    return (f"Visual Description: Across these video frames, {seen} is the larger object and pulses in size.\n"
            f"Reasoning: {reason}\n{_answer_line(row)}")


def audio_text(row: ManifestRow, source: str) -> str:
    """What the sound tells, in the audio teacher's format; `source` is the sounding class."""
    reason = f"It is the sound of {_a(source)}" + (
        f", and {_a(source)} is {SOURCES[source][2]}." if row.question == COLOUR_QUESTION else ".")
    return f"Audio Description: This audio features {SOUNDS[source]}.\nReasoning: {reason}\n{_answer_line(row)}"


def merged_text(row: ManifestRow, source: str) -> str:
    shape, _, colour = SOURCES[source]
    return (f"<think>The audio is the sound of {_a(source)}, and in the frames the {colour} {shape} pulses in size, "
            f"so the answer is {row.choices[row.answer_index]}.</think><answer>{row.gold_letter}</answer>")


def sightsound_text(row: ManifestRow, source: str) -> str:
    """The SightSound-R1 teacher's trace: the sound inferred from the silent video, then the letter."""
    shape, _, colour = SOURCES[source]
    return (f"<think>In the silent video {_a(colour)} {shape} is the larger object and pulses in size, so "
            f"{_a(source)} makes the sound: {SOUNDS[source]}. The answer is {row.choices[row.answer_index]}.</think>"
            f"<answer>{row.gold_letter}</answer>")


def checked_trace(row: ManifestRow, source: str, holds: bool) -> str:
    """A trace for the checker to verify: the teacher's, or one that claims the next class's sound."""
    classes = list(SOURCES)
    return sightsound_text(row, source if holds else classes[(classes.index(source) + 1) % len(classes)])


def sounding_class(rows: list[ManifestRow]) -> dict[str, str]:
    """video_name -> the class that sounds in it (the answer to its source question)."""
    return {r.video_name: r.choices[r.answer_index] for r in rows if r.question == SOURCE_QUESTION}


# ---- data --------------------------------------------------------------------------------------
def warm_up_release(config: dict, work: Path) -> tuple[list[ManifestRow], Path]:
    """Write, check and cut the warm-up clips under `work`; their QA rows and media index."""
    from avrt.core.media import MediaParams
    from avrt.data.ingest import ingest
    from avrt.data.media import prepare_shard

    warm = config["demo_warm_up"]
    synthetic = config["data"]["synthetic"] or synthetic_defaults()
    generate(work / "release", {"train": warm["clips"]}, synthetic["seconds"], synthetic["width"],
             synthetic["height"], synthetic["fps"], warm["seed"])
    ingest({"train": work / "release" / "annotations" / "train_qa.json"}, work / "release" / "videos",
           work / "data", config["data"], workers=1)
    index = work / "media" / "warm.jsonl"
    prepare_shard(work / "data" / "manifest.jsonl", index, MediaParams.from_config(config["media"]))
    return read_rows(work / "data" / "manifest.jsonl", ManifestRow), index


def examples_for(role: Role, rows: list[ManifestRow], media_index: Path) -> list[TrainingExample]:
    clips = read_clip_refs(media_index)
    source = sounding_class(rows)
    examples = []
    for row in rows:
        clip = clips.get(row.video_name)
        if clip is None or not clip.media.ok or row.video_name not in source:
            continue
        if role.kind in TEACHER_QUESTIONS and row.question not in TEACHER_QUESTIONS[role.kind]:
            continue
        if role.kind == "checker":  # a trace whose sound holds ("yes") and one whose does not ("no")
            targets = {f"{row.sample_id}/{verdict}": verdict for verdict in ("yes", "no")}
        else:
            text = {"frames": visual_text, "audio": audio_text, "silent_video": sightsound_text,
                    "merger": merged_text}[role.kind]
            targets = {row.sample_id: text(row, source[row.video_name])}
        examples += [TrainingExample(sample_id=sample_id, video_name=row.video_name, question=row.question,
                                     choices=row.choices, gold_letter=row.gold_letter, completion=target, clip=clip)
                     for sample_id, target in targets.items()]
    return examples


def prompt_renderer(role: Role, rows: list[ManifestRow]):
    """The user text the model gets at the teacher or merger stage, for an example."""
    prompt = load_prompt(role.prompt)
    if role.kind in TEACHER_QUESTIONS:
        return lambda ex: render_teacher_prompt(prompt, question=ex.question, choices=ex.choices)
    by_id, source = {r.sample_id: r for r in rows}, sounding_class(rows)

    def merger(ex: TrainingExample) -> str:
        row = by_id[ex.sample_id]
        return render_merger_prompt(prompt, question=ex.question, choices=ex.choices,
                                    audio_reasoning=audio_text(row, source[row.video_name]),
                                    vision_reasoning=visual_text(row, source[row.video_name]))

    def checker(ex: TrainingExample) -> str:
        sample_id, verdict = ex.sample_id.rsplit("/", 1)
        row = by_id[sample_id]
        return render_fact_check_prompt(prompt, question=ex.question, choices=ex.choices,
                                        reasoning=checked_trace(row, source[row.video_name], verdict == "yes"))

    return merger if role.kind == "merger" else checker


# ---- training ----------------------------------------------------------------------------------
def train(role: Role, spec: ModelSpec, rows: list[ManifestRow], media_index: Path, config: dict, out: Path) -> dict:
    """Train `spec`'s checkpoint for `role` and save it to `out` (model and processor); returns a summary."""
    from avrt.models.adapters import get_adapter
    from avrt.models.hf_backend import DTYPES, load_processor
    from avrt.models.saved_layout import save_checkpoint
    from avrt.training.batches import SFTCollator
    from avrt.training.data import MediaLookup, SFTDataset, StudentInputs
    from avrt.training.sft import mean_train_loss, sft_training_arguments
    from avrt.training.student import load_student
    from avrt.training.trainer import ResumableTrainer

    warm = config["demo_warm_up"]
    examples = examples_for(role, rows, media_index)
    if not examples:
        raise ValueError(f"demo warm-up of models.{role.model}: no example (no warm-up clip has prepared media)")
    steps = role.steps
    # The schema's SFT settings (AdamW, cosine schedule, seed), on one CPU process: not the run's `sft`
    # block, which is the student's.
    sft = stage_config("sft", {"max_steps": steps, "learning_rate": warm["learning_rate"],
                               "per_device_batch_size": warm["batch_size"], "gradient_accumulation_steps": 1,
                               "num_gpus": 1, "deepspeed": None, "bf16": False, "gradient_checkpointing": False,
                               "warmup_steps": min(10, steps // 10), "save_steps": steps,
                               "save_total_limit": 1, "logging_steps": max(1, steps // 10),
                               "eval_steps": None, "report_to": [], "dataloader_num_workers": 0})
    adapter = get_adapter(spec.family)
    processor = load_processor(spec)
    model = load_student(spec, adapter, "float32")
    inputs = StudentInputs(spec, adapter, processor, MediaLookup([media_index]), role.prompt,
                           render=prompt_renderer(role, rows), modalities=role.modalities)
    tokenizer = inputs.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".warm-up-") as scratch:
        trainer = ResumableTrainer(
            model=model, args=sft_training_arguments(sft, Path(scratch), has_val=False),
            train_dataset=SFTDataset(examples, inputs), data_collator=SFTCollator(pad_id, feature_dtype=model.dtype),
            processing_class=processor,
        )
        trainer.train()
    save_checkpoint(model.to(DTYPES[spec.dtype]), out)  # trained in float32, saved as the spec loads it
    processor.save_pretrained(out)
    history = trainer.state.log_history
    losses = [e["loss"] for e in history if "loss" in e]
    summary = {"role": ROLE_NAMES[role.kind], "prompt": role.prompt,
               "examples": len(examples), "steps": trainer.state.global_step,
               "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
               "mean_loss": mean_train_loss(history)}
    log.info("warmed up models.%s: %s", role.model, summary)
    return summary


def warm_up_spec(config: dict, role: Role, checkpoint: Path) -> ModelSpec:
    """The role's model spec with the checkpoint being built, without adapter (the warm-up trains the
    model itself; the zoo writes its adapter afterwards)."""
    return replace(model_spec(config, role.model), checkpoint=str(checkpoint), adapter=None, adapter_subfolder=None,
                   processor=None)

