"""Command line: ``avrt <command> ...`` (also ``python -m avrt``).

Every pipeline stage runs without Snakemake through this CLI; the rules only turn their inputs
and outputs into arguments. A command module exposes ``add_arguments(parser)`` and
``run(args) -> int | None``; modules are imported lazily so that, for example, ``avrt --help``
never imports torch or vLLM.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("avrt.demo.synthetic_avqa", "write a synthetic AVQA release (real MP4s + official-schema JSON)"),
    "ingest": ("avrt.data.ingest", "check every AVQA clip and write the manifest and attrition table"),
    "shard": ("avrt.data.shard", "split the manifest into N shards"),
    "media": ("avrt.data.media", "prepare frames, 16 kHz audio and silent video for one shard"),
    "data-summary": ("avrt.data.summary", "aggregate attrition and media statistics of the data stage"),
    "teacher": ("avrt.traces.teacher", "run one teacher over one shard (reasoning traces)"),
    "merge": ("avrt.traces.merge", "merge the teachers' traces of one shard with a text-only LLM"),
    "filter-traces": ("avrt.traces.filter", "select merged traces (filter mode) into AVRT-20K train/val"),
    "sightsound": ("avrt.traces.sightsound", "SightSound-R1: self-consistency, audio-grounded fact verification, SFT export"),
    "export-avrt20k": ("avrt.traces.export", "write AVRT-20K as a Hugging Face datasets DatasetDict"),
    "trace-stats": ("avrt.traces.stats", "AVRT-20K statistics (paper Table 2, Figure 0.B.4) as JSON and PNG"),
    "judge-traces": ("avrt.evaluation.trace_judge", "an omni judge grades AVRT-20K traces and their hallucination sources (paper Table 0.A.1)"),
    "eval-synth": ("avrt.demo.synthetic_benchmarks", "write small synthetic benchmark files in each official schema"),
    "evaluate": ("avrt.evaluation.inference", "answer one benchmark's records with one model (greedy, resumable)"),
    "eval-tables": ("avrt.evaluation.tables_cli", "per-benchmark results, Tables 3 (with deltas), 4, 8 and 9"),
    "run-manifest": ("avrt.provenance", "library versions, git commit, config, prompt hashes, checksums, Slurm job ids"),
    "stage-costs": ("avrt.costs", "wall time, CPU time, peak memory and GPU-hours per stage, from the jobs' benchmarks"),
    "plan": ("avrt.plan", "estimated memory per GPU and GPU-hours of SFT and GRPO, from the student's config"),
    "compare": ("avrt.compare", "ablation table of several runs (paper Tables 4-7 layout), deltas against the first"),
    "install-profile": ("avrt.cluster_profile", "install a Slurm cluster profile: then `snakemake --profile slurm`"),
    "validate-config": ("avrt.config_cli", "validate (and print) a layered config"),
    "config-docs": ("avrt.config_docs", "write config/README.md from the config schema"),
    "sft": ("avrt.training.sft", "supervised fine-tuning of the student on reasoning traces (one process per GPU)"),
    "grpo": ("avrt.training.grpo", "GRPO of the student with format, accuracy and length rewards (one process per GPU)"),
    "zoo": ("avrt.demo.zoo", "build tiny random-weight models (offline) that load like the real checkpoints"),
    "merge-adapter": ("avrt.models.merged_checkpoint", "merge a model's PEFT adapter, non-LoRA weights too, into one checkpoint (vLLM)"),
    "eval-records": ("avrt.evaluation.records_cli", "read a benchmark's official files into records JSONL"),
    "eval-score": ("avrt.evaluation.score_cli", "score a benchmark's predictions (strict + official columns)"),
    "select-checkpoint": ("avrt.checkpoint_selection", "score a training stage's checkpoints on val records, publish the best"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avrt", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if top.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(COMMANDS[top.command][0])
    cmd_parser = argparse.ArgumentParser(prog=f"avrt {top.command}", description=module.__doc__)
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(rest)
    from avrt.core.config import ConfigError
    from avrt.core.io import InputFileError

    try:
        return int(module.run(args) or 0)
    except (ConfigError, InputFileError) as err:  # a bad config key or input file: named, no traceback
        print(f"avrt {top.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
