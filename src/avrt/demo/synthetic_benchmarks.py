"""Small synthetic benchmark files in each benchmark's official schema, for the demo and tests.

The items reuse the synthetic AVQA scenes (two objects, one sounding): video benchmarks ask
for the sounding object's colour or position, OmniBench shows one frame with the audio, and the
audio-only ones ask which object class makes the sound.

The benchmark registry (`avrt.evaluation.registry`) is the list: every registered benchmark is
written, except the in-domain ones (AVQA val), which the synthetic AVQA release supplies. Each
benchmark's files go where its `BenchmarkSpec.layout` says its adapter reads them, so the demo
reads them through the real loaders; its writer here (`@synthetic_writer(name)`) fills them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avrt.core.config import add_config_argument, load_config
from avrt.demo.synthetic_avqa import (
    AUDIO_RATE,
    SOURCES,
    ClipSpec,
    plan_clips,
    questions_for,
    render_frames,
    render_sound,
    write_mp4,
)
from avrt.evaluation.registry import BENCHMARKS, FileLayout


@dataclass(frozen=True)
class Scene:
    """One synthetic clip with its questions, shared by every benchmark's writer."""

    spec: ClipSpec
    frames: np.ndarray  # (T, H, W, 3) uint8
    audio: np.ndarray  # mono float32 at AUDIO_RATE
    sound_class: str  # the sounding object's class
    colour_q: dict  # AVQA-schema question on the sounding object's colour
    where_q: dict  # ... on its position
    sound_choices: list  # the classes in a per-clip random order, for "which object makes this sound?"


@dataclass(frozen=True)
class Scenes:
    clips: list[Scene]
    fps: int

    def video(self, path: Path, clip: Scene) -> None:
        """The clip as an MP4 (H.264 + AAC) at `path`."""
        write_mp4(path, clip.frames, self.fps, clip.audio)


# (benchmark name, scenes, annotation file to write, media folder) -> None
Writer = Callable[[str, Scenes, Path, Path], None]
WRITERS: dict[str, Writer] = {}


def synthetic_writer(*names: str) -> Callable[[Writer], Writer]:
    """Register the decorated function as the synthetic writer of the named benchmarks."""

    def register(writer: Writer) -> Writer:
        for name in names:
            if name in WRITERS:
                raise ValueError(f"benchmark {name!r} already has a synthetic writer")
            WRITERS[name] = writer
        return writer

    return register


def synthetic_layouts() -> dict[str, FileLayout]:
    """Benchmark name -> file layout of every benchmark `generate` writes, in registry order.

    Raises LookupError when a registered benchmark has no writer or no layout, or a writer
    names no registered benchmark, so the registry and this module cannot drift apart.
    """
    layouts = {}
    for name, spec in BENCHMARKS.items():
        if spec.group == "in_domain":  # AVQA val: from the synthetic AVQA release
            continue
        if name not in WRITERS:
            raise LookupError(
                f"benchmark {name!r} is registered but has no synthetic writer: add one to "
                f"avrt/demo/synthetic_benchmarks.py with @synthetic_writer({name!r})"
            )
        if spec.layout is None:
            raise LookupError(f"benchmark {name!r} declares no file layout (BenchmarkSpec.layout) to write its "
                              "synthetic files in")
        layouts[name] = spec.layout
    stale = sorted(set(WRITERS) - set(layouts))
    if stale:
        raise LookupError(f"synthetic writers for benchmarks that are not registered (or in-domain): {stale}")
    return layouts


def _letters(options: list[str]) -> list[str]:
    return [f"{'ABCDE'[i]}. {o}" for i, o in enumerate(options)]


def make_scenes(items: int = 4, seconds: float = 10.0, width: int = 160, height: int = 120, fps: int = 8,
                seed: int = 0) -> Scenes:
    rng = np.random.default_rng(seed)
    planned = []
    for spec in plan_clips("bench", items, seconds, rng, first_id=900000):
        frames = render_frames(spec, width, height, fps)
        cls = spec.objects[spec.sounding][0]
        audio = render_sound(SOURCES[cls][1], seconds, AUDIO_RATE, rng)
        colour_q, where_q, _source_q = questions_for(spec, 0)  # the source question: `sound_choices`
        planned.append((spec, frames, audio, cls, colour_q, where_q))
    classes = list(SOURCES)
    choices = [list(rng.permutation(classes)) for _ in planned]  # drawn after every clip, in clip order
    return Scenes([Scene(*p, sound_choices=c) for p, c in zip(planned, choices, strict=True)], fps)


def generate(out_dir: str | Path, items: int, seconds: float = 10.0, width: int = 160, height: int = 120,
             fps: int = 8, seed: int = 0, benchmarks: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """Write every benchmark (or those named); return name -> {annotations, media_dir} (the config's shape)."""
    out = Path(out_dir)
    layouts = synthetic_layouts()
    names = list(layouts) if benchmarks is None else list(benchmarks)
    unknown = sorted(set(names) - set(layouts))
    if unknown:
        raise KeyError(f"no synthetic files for {unknown}; written are: {', '.join(layouts)}")
    scenes = make_scenes(items, seconds, width, height, fps, seed)
    written = {}
    for name in layouts:
        if name in names:
            layout = layouts[name]
            WRITERS[name](name, scenes, out / layout.annotations, out / layout.media_dir)
            written[name] = {"annotations": str(out / layout.annotations), "media_dir": str(out / layout.media_dir)}
    return written


@synthetic_writer("dailyomni")
def _dailyomni(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    rows = []
    for c in scenes.clips:
        vid = c.spec.video_name
        scenes.video(media / vid / f"{vid}_video.mp4", c)
        q = c.colour_q
        rows.append({"Question": q["question_text"], "Choice": _letters(q["multi_choice"]),
                     "Answer": "ABCD"[q["answer"]], "video_id": vid, "Type": "AV Event Alignment",
                     "video_category": "Synthetic", "video_duration": "30s"})
    _write_json(annotations, rows)


@synthetic_writer("omnibench")
def _omnibench(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    """One frame + the audio."""
    rows = []
    for i, c in enumerate(scenes.clips):
        (media / "image").mkdir(parents=True, exist_ok=True)
        (media / "audio").mkdir(parents=True, exist_ok=True)
        Image.fromarray(c.frames[len(c.frames) // 2]).save(media / "image" / f"syn_{i}.png")
        sf.write(media / "audio" / f"syn_{i}.wav", c.audio, AUDIO_RATE)
        q = c.colour_q
        rows.append({"index": i, "task type": "Object Identification and Description", "audio type": "sound event",
                     "question": q["question_text"], "options": q["multi_choice"],
                     "answer": q["multi_choice"][q["answer"]], "audio_path": f"syn_{i}.wav",
                     "image_path": f"syn_{i}.png", "audio content": "synthetic", "image content": "synthetic"})
    _write_jsonl(annotations, rows)


@synthetic_writer("videomme")
def _videomme(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    """Parquet, as the dataset ships it."""
    import pandas as pd

    rows = []
    for i, c in enumerate(scenes.clips):
        yt = f"synVMME{i:04d}"
        scenes.video(media / f"{yt}.mp4", c)
        q = c.where_q
        rows.append({"video_id": f"{i:03d}", "duration": "short", "domain": "Synthetic", "sub_category": "Scenes",
                     "url": "", "videoID": yt, "question_id": f"{i:03d}-1", "task_type": "Spatial Perception",
                     "question": q["question_text"], "options": _letters(q["multi_choice"]),
                     "answer": "ABCD"[q["answer"]]})
    annotations.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(annotations)


RIVA_SCENARIOS = {"riva_standup": "standup", "riva_academic": "academic"}


@synthetic_writer(*RIVA_SCENARIOS)
def _rivabench(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    """5 options, LLaVA conversations."""
    scenario = RIVA_SCENARIOS[name]
    rows = []
    for i, c in enumerate(scenes.clips):
        rel = f"{scenario}/syn_{i}.mp4"
        scenes.video(media / rel, c)
        q = c.colour_q
        options = q["multi_choice"] + ["none of them"]
        body = "\n".join(_letters(options))
        gold = "ABCDE"[q["answer"]]
        rows.append({"id": f"{scenario}_syn_{i}", "video": rel, "conversations": [
            {"from": "human", "value": f"<video>\n{q['question_text']}\n{body}"},
            {"from": "gpt", "value": f"{gold}. {options[q['answer']]}"}]})
    _write_json(annotations, rows)


SOUND_QUESTION = "Which object is making this sound?"  # MMAR and MMAU: audio only, option texts as answers


def _write_wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, AUDIO_RATE)


@synthetic_writer("mmar")
def _mmar(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    rows = []
    for i, c in enumerate(scenes.clips):
        _write_wav(media / f"audio/syn_{i}.wav", c.audio)
        rows.append({"id": f"synmmar_{i}", "audio_path": f"./audio/syn_{i}.wav", "question": SOUND_QUESTION,
                     "choices": c.sound_choices, "answer": c.sound_class, "modality": "sound",
                     "category": "Perception Layer", "sub-category": "Sound Source", "language": None,
                     "source": "synthetic"})
    _write_jsonl(annotations, rows)


@synthetic_writer("mmau_test_mini")
def _mmau(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    rows = []
    for i, c in enumerate(scenes.clips):
        _write_wav(media / f"test-mini-audios/syn_{i}.wav", c.audio)
        rows.append({"id": f"synmmau_{i}", "audio_id": f"./test-mini-audios/syn_{i}.wav", "question": SOUND_QUESTION,
                     "choices": c.sound_choices, "answer": c.sound_class, "dataset": "synthetic", "task": "sound",
                     "split": "test-mini", "category": "Reasoning", "sub-category": "Acoustic Source Inference",
                     "difficulty": "easy"})
    _write_json(annotations, rows)


@synthetic_writer("music_avqa")
def _music_avqa(name: str, scenes: Scenes, annotations: Path, media: Path) -> None:
    """Open-ended: where is the sounding object?"""
    rows = []
    for i, c in enumerate(scenes.clips):
        vid = f"{900000 + i}"
        scenes.video(media / f"{vid}.mp4", c)
        rows.append({"video_id": vid, "question_id": 9000 + i, "type": json.dumps(["Audio-Visual", "Location"]),
                     "question_content": "Where is the sounding object?", "templ_values": "[]",
                     "question_deleted": 0, "anser": c.spec.objects[c.spec.sounding][2]})
    _write_json(annotations, rows)


def _write_json(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--out", required=True)


def run(args) -> int:
    synthetic = load_config(*args.config)["evaluation"]["synthetic"]
    if not synthetic:
        raise SystemExit("config key 'evaluation.synthetic' is not set: there is nothing to synthesise")
    generate(args.out, synthetic["items"], seed=synthetic["seed"])
    return 0
