"""Rows per second of the trace stages on the demo, and the cost of resuming a finished shard.

    make demo                                   # first: this benchmark reads a finished demo run
    python scripts/bench/bench_traces.py [--run results/demo] [--shard 000]

Needs a finished demo run (`make demo`, or another run passed as `--run`), and is run from the
repository root, where the run config's model paths (`results/demo/models/...`) resolve. It reads
the run's `config.yaml`, the shard's manifest (`data/shards/<shard>.jsonl`), its media index
(`media/<shard>.jsonl`) and the tiny models, and stops with a message naming the first of them that
is missing. It re-runs each teacher and the merger on the shard into a temp dir (first run: every
row asked for), then once more on the finished shard (second run: no model load, no model call),
and prints both; the run itself is not changed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

from avrt.core.config import load_config
from avrt.models.spec import model_spec
from avrt.traces.merge import run_merge
from avrt.traces.teacher import run_teacher

REPO = Path(__file__).resolve().parents[2]


def missing(path: Path, what: str) -> NoReturn:
    sys.exit(f"bench_traces: {path} ({what}) does not exist. This benchmark needs a finished demo run: "
             "run `make demo` first (or pass --run with a finished run), from the repository root.")


def is_local(source: str) -> bool:
    """Whether a model source is a path (the demo's tiny models) rather than a hub id `owner/name`."""
    return os.path.isabs(source) or source.startswith((".", "~")) or source.count("/") > 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(REPO / "results" / "demo"))
    ap.add_argument("--shard", default="000")
    args = ap.parse_args()
    run, shard = Path(args.run), args.shard
    shard_path, media = run / "data" / "shards" / f"{shard}.jsonl", run / "media" / f"{shard}.jsonl"
    for path, what in ((run / "config.yaml", "the run config"), (shard_path, f"shard {shard}'s manifest"),
                       (media, f"shard {shard}'s media index")):
        if not path.is_file():
            missing(path, what)
    config = load_config(run / "config.yaml")  # the config the run was made with
    for name in [t["model"] for t in config["teachers"]] + [config["merger"]["model"]]:
        source = config["models"][name]["checkpoint"]
        if is_local(source) and not Path(source).expanduser().exists():
            missing(Path(source), f"checkpoint of models.{name}")
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
