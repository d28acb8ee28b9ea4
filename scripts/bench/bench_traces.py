"""Rows per second of the trace stages on the demo, and the cost of resuming a finished shard.

    python scripts/bench/bench_traces.py [--run results/demo]

Needs a finished demo run (`make demo`): it re-runs each teacher and the merger on shard 000
into a temp dir with the demo's tiny models (first run: every row asked for), then once more on
the finished shard (second run: no model load, no model call), and prints both.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from avrt.core.config import load_config
from avrt.models.spec import model_spec
from avrt.traces.merge import run_merge
from avrt.traces.teacher import run_teacher

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(REPO / "results" / "demo"))
    ap.add_argument("--shard", default="000")
    args = ap.parse_args()
    run, shard = Path(args.run), args.shard
    config = load_config(run / "config.yaml")  # the config the run was made with
    shard_path, media = run / "data" / "shards" / f"{shard}.jsonl", run / "media" / f"{shard}.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for teacher in config["teachers"]:
            out = Path(tmp) / teacher["name"] / f"{shard}.jsonl"
            spec = model_spec(config, teacher["model"])
            chunk = config["traces"]["chunk_size"]
            first = run_teacher(teacher, spec, config["traces"]["splits"], shard_path, media, out, chunk)
            t0 = time.perf_counter()
            again = run_teacher(teacher, spec, config["traces"]["splits"], shard_path, media, out, chunk)
            resume_s = time.perf_counter() - t0
            print(f"teacher {teacher['name']:8s} {first['rows']} rows in {first['seconds']:.1f} s "
                  f"({first['outputs_per_s']:.2f} outputs/s); re-run of the finished shard: {again['model_calls']} model "
                  f"calls, {resume_s:.2f} s")
            outs[teacher["modality"]] = out
        spec = model_spec(config, config["merger"]["model"])
        out = Path(tmp) / "merged.jsonl"
        merge = lambda: run_merge(config["merger"]["prompt"], spec, outs, out, config["merger"]["teacher_text"],  # noqa: E731
                                  config["traces"]["chunk_size"])
        first = merge()
        t0 = time.perf_counter()
        again = merge()
        print(f"merger           {first['rows']} rows in {first['seconds']:.1f} s ({first['outputs_per_s']:.2f} outputs/s); "
              f"re-run of the finished shard: {again['model_calls']} model calls, {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
