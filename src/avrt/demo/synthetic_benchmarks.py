"""Small synthetic benchmark files in each benchmark's official schema, for the demo and tests.

The items reuse the synthetic AVQA scenes (two objects, one sounding): video benchmarks ask
for the sounding object's colour or position, OmniBench shows one frame with the audio, and the
audio-only ones ask which object class makes the sound. Each file is laid out where its adapter
looks (see `avrt.evaluation.adapters`), so the demo reads them through the real loaders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avrt.demo.synthetic_avqa import AUDIO_RATE, SOURCES, plan_clips, questions_for, render_frames, render_sound, write_mp4

BENCHMARKS = ("dailyomni", "omnibench", "videomme", "riva_standup", "riva_academic", "mmar", "mmau_test_mini",
              "music_avqa")
FILES = {
    "dailyomni": "dailyomni/qa.json",
    "omnibench": "omnibench/batch-5_1142_20240817.jsonl",
    "videomme": "videomme/test-00000-of-00001.parquet",
    "riva_standup": "rivabench/standup.json",
    "riva_academic": "rivabench/academic.json",
    "mmar": "mmar/MMAR-meta.jsonl",
    "mmau_test_mini": "mmau/mmau-test-mini.json",
    "music_avqa": "music_avqa/avqa-test.json",
}
MEDIA_DIRS = {"dailyomni": "dailyomni/Videos", "omnibench": "omnibench/mm_data", "videomme": "videomme/videos",
              "riva_standup": "rivabench", "riva_academic": "rivabench", "mmar": "mmar", "mmau_test_mini": "mmau",
              "music_avqa": "music_avqa/videos"}


def _letters(options: list[str]) -> list[str]:
    return [f"{'ABCDE'[i]}. {o}" for i, o in enumerate(options)]


def generate(out_dir: str | Path, items: int = 4, seconds: float = 10.0, width: int = 160, height: int = 120,
             fps: int = 8, seed: int = 0) -> dict[str, dict[str, str]]:
    """Write every benchmark; return name -> {annotations, media_dir} (the config's shape)."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    specs = plan_clips("bench", items, seconds, rng, first_id=900000)
    clips = []
    for spec in specs:
        frames = render_frames(spec, width, height, fps)
        cls = spec.objects[spec.sounding][0]
        audio = render_sound(SOURCES[cls][1], seconds, AUDIO_RATE, rng)
        colour_q, where_q = questions_for(spec, rng, 0)
        clips.append((spec, frames, audio, cls, colour_q, where_q))

    def video(path: Path, c) -> None:
        write_mp4(path, c[1], fps, c[2])

    # Daily-Omni
    rows = []
    for c in clips:
        vid = c[0].video_name
        video(out / MEDIA_DIRS["dailyomni"] / vid / f"{vid}_video.mp4", c)
        q = c[4]
        rows.append({"Question": q["question_text"], "Choice": _letters(q["multi_choice"]),
                     "Answer": "ABCD"[q["answer"]], "video_id": vid, "Type": "AV Event Alignment",
                     "video_category": "Synthetic", "video_duration": "30s"})
    _write_json(out / FILES["dailyomni"], rows)

    # OmniBench: one frame + the audio
    rows = []
    for i, c in enumerate(clips):
        media = out / MEDIA_DIRS["omnibench"]
        (media / "image").mkdir(parents=True, exist_ok=True)
        (media / "audio").mkdir(parents=True, exist_ok=True)
        Image.fromarray(c[1][len(c[1]) // 2]).save(media / "image" / f"syn_{i}.png")
        sf.write(media / "audio" / f"syn_{i}.wav", c[2], AUDIO_RATE)
        q = c[4]
        rows.append({"index": i, "task type": "Object Identification and Description", "audio type": "sound event",
                     "question": q["question_text"], "options": q["multi_choice"],
                     "answer": q["multi_choice"][q["answer"]], "audio_path": f"syn_{i}.wav",
                     "image_path": f"syn_{i}.png", "audio content": "synthetic", "image content": "synthetic"})
    _write_jsonl(out / FILES["omnibench"], rows)

    # Video-MME (parquet)
    import pandas as pd

    rows = []
    for i, c in enumerate(clips):
        yt = f"synVMME{i:04d}"
        video(out / MEDIA_DIRS["videomme"] / f"{yt}.mp4", c)
        q = c[5]
        rows.append({"video_id": f"{i:03d}", "duration": "short", "domain": "Synthetic", "sub_category": "Scenes",
                     "url": "", "videoID": yt, "question_id": f"{i:03d}-1", "task_type": "Spatial Perception",
                     "question": q["question_text"], "options": _letters(q["multi_choice"]),
                     "answer": "ABCD"[q["answer"]]})
    path = out / FILES["videomme"]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)

    # RivaBench (5 options, LLaVA conversations)
    for name, scenario in (("riva_standup", "standup"), ("riva_academic", "academic")):
        rows = []
        for i, c in enumerate(clips):
            rel = f"{scenario}/syn_{i}.mp4"
            video(out / MEDIA_DIRS[name] / rel, c)
            q = c[4]
            options = q["multi_choice"] + ["none of them"]
            body = "\n".join(_letters(options))
            gold = "ABCDE"[q["answer"]]
            rows.append({"id": f"{scenario}_syn_{i}", "video": rel, "conversations": [
                {"from": "human", "value": f"<video>\n{q['question_text']}\n{body}"},
                {"from": "gpt", "value": f"{gold}. {options[q['answer']]}"}]})
        _write_json(out / FILES[name], rows)

    # MMAR and MMAU: which object makes this sound? (audio only, option texts as answers)
    classes = list(SOURCES)
    mmar, mmau = [], []
    for i, c in enumerate(clips):
        choices = list(rng.permutation(classes))
        for name, rel in (("mmar", f"audio/syn_{i}.wav"), ("mmau_test_mini", f"test-mini-audios/syn_{i}.wav")):
            path = out / MEDIA_DIRS[name] / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, c[2], AUDIO_RATE)
        question = "Which object is making this sound?"
        mmar.append({"id": f"synmmar_{i}", "audio_path": f"./audio/syn_{i}.wav", "question": question,
                     "choices": choices, "answer": c[3], "modality": "sound", "category": "Perception Layer",
                     "sub-category": "Sound Source", "language": None, "source": "synthetic"})
        mmau.append({"id": f"synmmau_{i}", "audio_id": f"./test-mini-audios/syn_{i}.wav", "question": question,
                     "choices": choices, "answer": c[3], "dataset": "synthetic", "task": "sound",
                     "split": "test-mini", "category": "Reasoning", "sub-category": "Acoustic Source Inference",
                     "difficulty": "easy"})
    _write_jsonl(out / FILES["mmar"], mmar)
    _write_json(out / FILES["mmau_test_mini"], mmau)

    # MUSIC-AVQA (open-ended): where is the sounding object?
    rows = []
    for i, c in enumerate(clips):
        vid = f"{900000 + i}"
        video(out / MEDIA_DIRS["music_avqa"] / f"{vid}.mp4", c)
        rows.append({"video_id": vid, "question_id": 9000 + i, "type": json.dumps(["Audio-Visual", "Location"]),
                     "question_content": "Where is the sounding object?", "templ_values": "[]",
                     "question_deleted": 0, "anser": c[0].objects[c[0].sounding][2]})
    _write_json(out / FILES["music_avqa"], rows)

    return {name: {"annotations": str(out / FILES[name]), "media_dir": str(out / MEDIA_DIRS[name])}
            for name in BENCHMARKS}


def _write_json(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    generate(args.out, args.items, seed=args.seed)
    return 0
