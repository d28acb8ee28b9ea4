"""Write a synthetic AVQA release: real H.264/AAC MP4 clips and annotation JSON in the official schema.

Every clip shows two objects of different classes at two of four positions (left, right, top,
bottom). Each object class has a fixed shape, colour and sound. Exactly one of the two objects
sounds; it is drawn larger and pulses in size. Three questions per clip: which object makes the
sound and what colour it is (either modality tells: the sound, or the larger object's shape and
colour), and where it is (only the picture tells).

Faults can be planted for tests and the demo: a corrupt file, a clip without an audio track, a
clip that is annotated but missing, and a clip shorter than the others.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

AUDIO_RATE = 44100  # like most VGGSound sources, so the pipeline really resamples to 16 kHz

# class -> (shape, sound, colour)
SOURCES: dict[str, tuple[str, str, str]] = {
    "bell": ("circle", "bell", "yellow"),
    "drum": ("square", "drum", "red"),
    "flute": ("triangle", "flute", "green"),
    "engine": ("bar", "engine", "blue"),
}
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 90, 230),
    "yellow": (240, 210, 30),
}
POSITIONS = ("left", "right", "top", "bottom")


@dataclass(frozen=True)
class ClipSpec:
    video_name: str
    video_id: int
    objects: tuple[tuple[str, str, str], ...]  # (class, colour, position) per visible object
    sounding: int  # index into objects
    seconds: float
    fault: str | None = None  # corrupt | no_audio | missing | short


def _center(position: str, width: int, height: int) -> tuple[int, int]:
    return {
        "left": (width // 4, height // 2),
        "right": (3 * width // 4, height // 2),
        "top": (width // 2, height // 4),
        "bottom": (width // 2, 3 * height // 4),
    }[position]


def _shape_mask(shape: str, cx: int, cy: int, r: int, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "triangle":
        return (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 2)
    if shape == "bar":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r // 3)
    raise ValueError(f"unknown shape {shape!r}")


def render_frames(spec: ClipSpec, width: int, height: int, fps: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames; the sounding object pulses in size so frames differ over time."""
    n = max(1, int(round(spec.seconds * fps)))
    base = np.zeros((height, width, 3), np.uint8)
    base[..., 2] = np.linspace(30, 90, width, dtype=np.uint8)[None, :]
    r = max(3, min(width, height) // 8)
    masks = [
        _shape_mask(SOURCES[cls][0], *_center(pos, width, height), r, width, height)
        for cls, _, pos in spec.objects
    ]
    frames = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        img = base.copy()
        for i, ((cls, colour, pos), mask) in enumerate(zip(spec.objects, masks)):
            if i == spec.sounding:  # drawn larger, and pulsing
                grow = int(r * 0.6) + int(r * 0.15 * (1 + np.sin(2 * np.pi * 1.5 * t / fps)))
                mask = _shape_mask(SOURCES[cls][0], *_center(pos, width, height), r + grow, width, height)
            img[mask] = COLORS[colour]
        bar = int((t + 1) / n * width)  # a progress bar: a visible clock for temporal questions
        img[-3:, :bar] = 255
        frames[t] = img
    return frames


def render_sound(kind: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 waveform of one object class's sound."""
    t = np.arange(int(seconds * rate)) / rate
    if kind == "bell":  # decaying 880 Hz strikes twice a second
        env = np.exp(-6 * (t % 0.5))
        wave = env * np.sin(2 * np.pi * 880 * t)
    elif kind == "drum":  # low noise bursts four times a second
        env = np.exp(-25 * (t % 0.25))
        wave = env * np.convolve(rng.standard_normal(t.size), np.ones(40) / 40, mode="same") * 4
    elif kind == "flute":  # steady 523 Hz with vibrato
        wave = np.sin(2 * np.pi * 523 * t + 3 * np.sin(2 * np.pi * 5 * t))
    elif kind == "engine":  # 110 Hz hum with harmonics
        wave = sum(np.sin(2 * np.pi * 110 * k * t) / k for k in (1, 2, 3, 4))
    else:
        raise ValueError(f"unknown sound {kind!r}")
    wave = wave / (np.max(np.abs(wave)) + 1e-9) * 0.5
    return wave.astype(np.float32)


def write_mp4(path: Path, frames: np.ndarray, fps: int, audio: np.ndarray | None, audio_rate: int = AUDIO_RATE) -> None:
    """Encode frames (H.264) and an optional mono waveform (AAC, stereo) into an MP4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"preset": "ultrafast", "crf": "23"}
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=audio_rate)
            astream.layout = "stereo"
        for img in frames:
            for packet in vstream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            stereo = np.ascontiguousarray(np.stack([audio, audio]))
            chunk = 1024
            for start in range(0, stereo.shape[1], chunk):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(stereo[:, start : start + chunk]), format="fltp", layout="stereo"
                )
                frame.sample_rate = audio_rate
                frame.pts = start
                frame.time_base = Fraction(1, audio_rate)
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    tmp.replace(path)


def plan_clips(split: str, n_clips: int, seconds: float, rng: np.random.Generator, first_id: int) -> list[ClipSpec]:
    classes = list(SOURCES)
    specs = []
    for i in range(n_clips):
        cls = rng.choice(classes, size=2, replace=False)
        colours = [SOURCES[c][2] for c in cls]
        positions = rng.choice(POSITIONS, size=2, replace=False)
        objects = tuple((str(c), str(k), str(p)) for c, k, p in zip(cls, colours, positions))
        vid = first_id + i
        specs.append(
            ClipSpec(
                video_name=f"SYN{split[:2].upper()}{vid:07d}_000000",
                video_id=vid,
                objects=objects,
                sounding=int(rng.integers(2)),
                seconds=seconds,
            )
        )
    return specs


SOURCE_QUESTION = "What is making the sound in the video?"
COLOUR_QUESTION = "What color is the object that is making the sound?"
POSITION_QUESTION = "Where does the sound in the video come from?"


def questions_for(spec: ClipSpec, first_qa_id: int) -> list[dict]:
    """The clip's three AVQA-schema questions (source, colour, position of the sounding object)."""
    cls, colour, pos = spec.objects[spec.sounding]
    # Options in one fixed order per question (AVQA's vary): an answer's letter then follows from
    # what the clip shows, which the demo's tiny models learn in minutes; looking an answer up among
    # shuffled options they do not (measured: the merger picked the right letter 4-9 times in 24).
    colour_options, pos_options, source_options = list(COLORS), list(POSITIONS), list(SOURCES)
    rows = []
    for k, (qtype, text, options, answer) in enumerate(
        [
            ("Which", COLOUR_QUESTION, colour_options, colour),
            ("Come From", POSITION_QUESTION, pos_options, pos),
            ("What", SOURCE_QUESTION, source_options, cls),
        ]
    ):
        rows.append(
            {
                "id": first_qa_id + k,
                "video_name": spec.video_name,
                "video_id": spec.video_id,
                "question_text": text,
                "multi_choice": [str(o) for o in options],
                "answer": [str(o) for o in options].index(answer),
                "question_relation": "Both",
                "question_type": qtype,
            }
        )
    return rows


def write_clip(spec: ClipSpec, clips_dir: Path, width: int, height: int, fps: int, rng: np.random.Generator) -> None:
    path = clips_dir / f"{spec.video_name}.mp4"
    if spec.fault == "missing":
        return
    if spec.fault == "corrupt":
        clips_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.bytes(4096))
        return
    frames = render_frames(spec, width, height, fps)
    audio = None
    if spec.fault != "no_audio":
        audio = render_sound(SOURCES[spec.objects[spec.sounding][0]][1], spec.seconds, AUDIO_RATE, rng)
    write_mp4(path, frames, fps, audio)


def synthetic_defaults() -> dict:
    """The `data.synthetic` config block as the schema fills it in."""
    from avrt.core.config import stage_config

    return stage_config("data", {"synthetic": {}})["synthetic"]


def generate(
    out_dir: str | Path,
    clips: dict[str, int],
    seconds: float | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: int | None = None,
    seed: int | None = None,
    faults: dict[str, int] | None = None,
) -> dict:
    """Write `<out>/annotations/<split>_qa.json` and `<out>/videos/*.mp4`; return a summary.

    A setting left None takes its `data.synthetic` default from the config schema; `faults`
    None plants no fault (the config's `faults` are passed by `generate_from_config`).
    """
    defaults = synthetic_defaults() if None in (seconds, width, height, fps, seed) else {}
    seconds = defaults["seconds"] if seconds is None else seconds
    width = defaults["width"] if width is None else width
    height = defaults["height"] if height is None else height
    fps = defaults["fps"] if fps is None else fps
    seed = defaults["seed"] if seed is None else seed
    out = Path(out_dir)
    clips_dir = out / "videos"
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    faults = {k: v for k, v in (faults or {}).items() if v}
    summary: dict = {"splits": {}, "faults": {}}
    next_clip, next_qa = 0, 0
    for split, n in clips.items():
        specs = plan_clips(split, n, seconds, rng, next_clip)
        next_clip += n
        if split == "train" and faults:  # plant faults on the first train clips, in a fixed order
            kinds = [k for k in ("corrupt", "no_audio", "missing", "short") for _ in range(faults.get(k, 0))]
            if len(kinds) > len(specs):
                raise ValueError(f"{len(kinds)} faults requested but the train split has only {len(specs)} clips")
            for i, kind in enumerate(kinds):
                s = specs[i]
                specs[i] = ClipSpec(s.video_name, s.video_id, s.objects, s.sounding,
                                    seconds * 0.6 if kind == "short" else s.seconds, kind)
                summary["faults"].setdefault(kind, []).append(s.video_name)
        rows = []
        for spec in specs:
            questions = questions_for(spec, next_qa)
            rows.extend(questions)
            next_qa += len(questions)
            write_clip(spec, clips_dir, width, height, fps, rng)
        with open(out / "annotations" / f"{split}_qa.json", "w") as fh:
            json.dump(rows, fh, indent=1)
        summary["splits"][split] = {"clips": n, "qa": len(rows)}
        log.info("synthetic %s: %d clips, %d QA", split, n, len(rows))
    with open(out / "synthetic_summary.json", "w") as fh:
        json.dump(summary, fh, indent=2)
    return summary


def generate_from_config(out_dir: str | Path, synthetic: dict) -> dict:
    """The release a config's `data.synthetic` block describes (clips, size, seed, faults)."""
    return generate(out_dir, dict(synthetic["clips"]), synthetic["seconds"], synthetic["width"], synthetic["height"],
                    synthetic["fps"], synthetic["seed"], dict(synthetic["faults"]))


def add_arguments(parser) -> None:
    from avrt.core.config import add_config_argument

    add_config_argument(parser)
    parser.add_argument("--out", required=True, help="output directory (annotations/, videos/)")


def run(args) -> int:
    from avrt.core.config import ConfigError, load_config

    synthetic = load_config(*args.config)["data"]["synthetic"]
    if synthetic is None:
        raise ConfigError("config key 'data.synthetic' is null: the config describes no synthetic release")
    generate_from_config(args.out, synthetic)
    return 0
