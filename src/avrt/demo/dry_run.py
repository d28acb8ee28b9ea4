"""Stub inputs of the official AVQA size, for `snakemake -n` on the full-scale DAG (tests, benchmarks,
`make dryrun-full`).

    python -m avrt.demo.dry_run OUT_DIR [CONFIG ...]

writes the stubs for the configs (layered left to right, as `--configfile` does; default
config/config.yaml) to OUT_DIR and prints the overlay to add after them:

    snakemake -n --configfile config/config.yaml OUT_DIR/overlay.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avrt.core.config import deep_merge, load_yaml


def write_dry_run_stubs(out_dir: str | Path, config: dict, n_qa: int = 57335, n_clips: int = 45867,
                        n_train: int = 40127) -> Path:
    """Annotation files of the official AVQA size (no clips) and empty benchmark files, plus a
    config overlay pointing `config` at them: enough for `snakemake -n` on the full-scale DAG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "video_name": f"v{i % n_clips:06d}", "video_id": i % n_clips, "question_text": "q",
             "multi_choice": ["a", "b", "c", "d"], "answer": 0} for i in range(n_qa)]
    (out / "train_qa.json").write_text(json.dumps(rows[:n_train]))
    (out / "val_qa.json").write_text(json.dumps(rows[n_train:]))
    benchmarks = {}
    for name, entry in config.get("evaluation", {}).get("benchmarks", {}).items():
        stub = out / "benchmarks" / f"{name}{Path(entry['annotations']).suffix}"
        stub.parent.mkdir(exist_ok=True)
        stub.touch()
        benchmarks[name] = {"annotations": str(stub), "media_dir": str(out)}
    overlay = {"data": {"avqa": {"annotations": {"train": str(out / "train_qa.json"), "val": str(out / "val_qa.json")}}},
               "evaluation": {"benchmarks": benchmarks}}
    path = out / "overlay.yaml"
    path.write_text(json.dumps(overlay))  # JSON is YAML
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m avrt.demo.dry_run",
                                 description="Write stub AVQA annotations and benchmark files of the official "
                                             "size, and a config overlay naming them, for `snakemake -n`.")
    ap.add_argument("out_dir", help="directory for the stubs and overlay.yaml")
    ap.add_argument("configs", nargs="*", default=["config/config.yaml"],
                    help="config files, layered left to right (default: config/config.yaml)")
    args = ap.parse_args(argv)
    config: dict = {}
    for path in args.configs:
        config = deep_merge(config, load_yaml(path))
    print(write_dry_run_stubs(args.out_dir, config))


if __name__ == "__main__":
    main()
