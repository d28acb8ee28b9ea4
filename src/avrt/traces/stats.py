"""AVRT-20K statistics as the paper's Table 2 and Figure 0.B.4, as JSON and a PNG.

Per split: samples, format compliance, thinking length in tokens (mean and std, with the
student's tokenizer, as the paper counts), answer length in tokens, clip duration, primary
resolution; distributions of question type, answer letter and modality requirement
(`question_relation`).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from avrt.core.answers import STRICT_FORMAT
from avrt.core.config import add_config_argument, load_config
from avrt.core.datasets import read_avrt20k
from avrt.core.io import write_json
from avrt.core.rows import ManifestRow, read_rows
from avrt.models.spec import model_spec

log = logging.getLogger(__name__)


def _share(counter: Counter) -> dict:
    total = sum(counter.values()) or 1
    return {k: {"count": v, "percent": round(100 * v / total, 1)} for k, v in counter.most_common()}


def split_stats(rows: list[dict], clips: dict[str, ManifestRow], tokenize) -> dict:
    think_tokens, answer_tokens, compliant = [], [], 0
    for row in rows:
        m = STRICT_FORMAT.match(row["av_reasoning"])
        if m:
            compliant += 1
            think_tokens.append(len(tokenize(m.group("think").strip())))
            answer_tokens.append(len(tokenize(m.group("answer").strip())))
    durations = [clips[r["video_name"]].duration for r in rows if r.get("video_name") in clips]
    resolutions = Counter(f"{clips[r['video_name']].width}x{clips[r['video_name']].height}"
                          for r in rows if r.get("video_name") in clips)
    top = resolutions.most_common(1)
    n = len(rows)
    return {
        "samples": n,
        "format_compliance_percent": round(100 * compliant / n, 2) if n else None,
        "think_tokens": {"mean": _round(np.mean(think_tokens)), "std": _round(np.std(think_tokens))} if think_tokens else None,
        "answer_tokens": {"mean": _round(np.mean(answer_tokens)), "std": _round(np.std(answer_tokens))} if answer_tokens else None,
        "clip_duration_s": {"mean": _round(np.mean(durations)), "min": _round(min(durations)),
                            "max": _round(max(durations))} if durations else None,
        "primary_resolution": {"size": top[0][0], "percent": round(100 * top[0][1] / n, 1)} if top else None,
        "question_type": _share(Counter(r["question_type"] for r in rows)),
        "answer_letter": _share(Counter(r["answer"] for r in rows)),
        "question_relation": _share(Counter(r["question_relation"] for r in rows)),
    }


def _round(x) -> float:
    return round(float(x), 2)


def plot(stats: dict, out_png: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    splits = list(stats["splits"])
    types = sorted({t for s in splits for t in stats["splits"][s]["question_type"]})
    width = 0.8 / max(len(splits), 1)
    for i, split in enumerate(splits):
        qt = stats["splits"][split]["question_type"]
        axes[0].bar(np.arange(len(types)) + i * width, [qt.get(t, {}).get("percent", 0) for t in types], width, label=split)
    axes[0].set_xticks(np.arange(len(types)) + width * (len(splits) - 1) / 2, types, rotation=30, ha="right")
    axes[0].set_ylabel("percent")
    axes[0].set_title("Question type distribution")
    axes[0].legend()
    letters = stats["splits"]["train"]["answer_letter"] if "train" in stats["splits"] else {}
    axes[1].bar(sorted(letters), [letters[k]["percent"] for k in sorted(letters)])
    axes[1].set_title("Answer option distribution (train)")
    rel = stats["splits"]["train"]["question_relation"] if "train" in stats["splits"] else {}
    if rel:
        axes[2].pie([v["count"] for v in rel.values()], labels=list(rel), autopct="%1.0f%%")
    axes[2].set_title("Modality requirement (train)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def dataset_stats(train, val, manifest, tokenizer_source: str, out_json, out_png) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    tokenize = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    clips = {r.video_name: r for r in read_rows(manifest, ManifestRow)}
    stats = {"tokenizer": tokenizer_source,
             "splits": {name: split_stats([r.to_dict() for r in read_avrt20k(p)], clips, tokenize)
                        for name, p in (("train", train), ("val", val))}}
    write_json(out_json, stats)
    plot(stats, out_png)
    return stats


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out-json", required=True)
    parser.add_argument("--out-png", required=True)


def run(args) -> int:
    config = load_config(*args.config)
    student = model_spec(config, config["student"]["model"])  # its tokenizer counts the tokens
    dataset_stats(args.train, args.val, args.manifest, student.processor_source, args.out_json, args.out_png)
    return 0
