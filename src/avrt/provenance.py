"""The run manifest: what produced a run's results, for the report and for reproduction.

Records library versions, the git commit, the validated config, the hash of every prompt,
SHA-256 checksums of the key artifacts, and the Slurm job id of every job that ran through
the Slurm executor (from its log under `.snakemake/slurm_logs/`).
"""

from __future__ import annotations

import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

from avrt.core.config import add_config_argument, load_config
from avrt.core.io import file_sha256, write_json
from avrt.core.prompts import known_prompt_ids, load_prompt

LIBRARIES = ("torch", "torchvision", "transformers", "tokenizers", "accelerate", "trl", "peft", "datasets", "vllm",
             "deepspeed", "snakemake", "snakemake-executor-plugin-slurm", "decord", "av", "librosa", "soundfile",
             "numpy", "pandas", "avrt-pipeline")


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: Path) -> dict:
    def git(*args) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def checksums(paths: list[str | Path]) -> dict[str, dict]:
    out = {}
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            out[str(f)] = {"sha256": file_sha256(f), "bytes": f.stat().st_size}
    return out


def slurm_job_ids(logs_dir: str | Path = ".snakemake/slurm_logs") -> dict[str, list[str]]:
    """rule -> Slurm job ids, from the executor plugin's per-job logs (rule_<rule>/.../<jobid>.log)."""
    jobs: dict[str, list[str]] = {}
    for log in Path(logs_dir).rglob("*.log"):
        rule = next((p.removeprefix("rule_") for p in log.relative_to(logs_dir).parts if p.startswith("rule_")), None)
        if rule and re.fullmatch(r"\d+", log.stem):
            jobs.setdefault(rule, []).append(log.stem)
    return {rule: sorted(ids, key=int) for rule, ids in sorted(jobs.items())}


def write_run_manifest(out: str | Path, config: dict, artifacts: list[str | Path], repo: str | Path = ".") -> dict:
    manifest = {
        "run": config.get("run"),
        "git": git_state(Path(repo)),
        "python": platform.python_version(),
        "host": platform.node(),
        "libraries": library_versions(),
        "prompts": {pid: load_prompt(pid).sha256 for pid in known_prompt_ids()},
        "slurm_jobs": slurm_job_ids(Path(repo) / ".snakemake" / "slurm_logs"),
        "artifacts": checksums(artifacts),
        "config": config,
    }
    write_json(out, manifest)
    return manifest


def add_arguments(parser) -> None:
    add_config_argument(parser)
    parser.add_argument("--artifacts", nargs="+", required=True, help="files or directories to checksum")
    parser.add_argument("--out", required=True)


def run(args) -> int:
    write_run_manifest(args.out, load_config(*args.config), args.artifacts)
    return 0
