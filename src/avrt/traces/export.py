"""AVRT-20K as a Hugging Face `datasets` DatasetDict (train, val), schema of the released set."""

from __future__ import annotations

import logging
from pathlib import Path

from avrt.core.datasets import read_avrt20k

log = logging.getLogger(__name__)


def export_hf(train: str | Path, val: str | Path, out_dir: str | Path) -> dict:
    from datasets import Dataset, DatasetDict

    # the clip reference holds this machine's paths: it stays out of a data set meant to be shared
    splits = {name: [{k: v for k, v in row.to_dict().items() if k != "clip"} for row in read_avrt20k(path)]
              for name, path in (("train", train), ("val", val))}
    dd = DatasetDict({name: Dataset.from_list(rows) if rows else Dataset.from_dict({}) for name, rows in splits.items()})
    dd.save_to_disk(str(out_dir))
    sizes = {name: len(rows) for name, rows in splits.items()}
    log.info("AVRT-20K exported to %s: %s", out_dir, sizes)
    return sizes


def add_arguments(parser) -> None:
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--out", required=True)


def run(args) -> int:
    export_hf(args.train, args.val, args.out)
    return 0
