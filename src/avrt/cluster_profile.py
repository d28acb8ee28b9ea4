"""Install a Snakemake cluster profile for Slurm: `snakemake --profile slurm` then works from the repository.

Snakemake reads two profiles. The workflow's needs per rule (threads, memory, runtime, GPUs and
their model) live in the repository's workflow profile, `profiles/default/`, which Snakemake loads
by itself. What belongs to a cluster (executor, account, partitions, how to poll job status) lives
in a profile the user installs once, under Snakemake's user configuration folder
(`~/.config/snakemake/<name>/` on Linux); `snakemake --profile <name>` finds it there.

This command writes that cluster profile: `config.yaml`, and `partitions.yaml` for the Slurm
executor's partition selection (each job goes to the partition that fits its GPUs: CPU stages to
the CPU partition, GPU stages to the GPU partition). It never overwrites an existing profile.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

# Slurm names: partitions and accounts are plain identifiers; anything else would be a typo or an attempt
# to smuggle options into sbatch.
SLURM_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
STATUS_COMMANDS = ("sacct", "squeue")

TEMPLATE = """\
# Snakemake cluster profile for Slurm, written by `avrt install-profile`. Edit it freely; the
# workflow's per-rule resources come from the workflow profile (profiles/default/ in the repository).
#   snakemake --profile {name}                # from the repository root
executor: slurm
# Upper bound on jobs queued or running at once.
jobs: {jobs}
# Shared file systems (NFS, Lustre) can show a job's outputs on the submit host late.
latency-wait: 60
# One failed shard must not stop the other shards; rerun to retry what failed.
keep-going: true
rerun-incomplete: true
show-failed-logs: true
# A job that is cancelled, times out or loses its node is submitted again, twice at most; the
# stages resume from their progress files, so a retry redoes little. Preempted jobs are requeued
# by Slurm itself (sbatch --requeue).
retries: 2
slurm-requeue: true
# Job status: `sacct` asks the accounting database. Without accounting use `squeue`; it only sees
# finished jobs for MinJobAge seconds (scontrol show config), which must be at least 3x
# slurm-init-seconds-before-status-checks (40 s by default).
slurm-status-command: {status_command}
# Keep every job's Slurm log (.snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log): the
# run's cost table reads the job ids from them.
slurm-keep-successful-logs: true
# Partitions and their limits: the executor sends each job to the one that fits (GPU jobs to
# GPU partitions, CPU jobs preferably elsewhere).
slurm-partition-config: {partitions}
"""


def user_profile_dir(name: str) -> Path:
    """Where `snakemake --profile <name>` looks outside the working directory (the user's config folder)."""
    from snakemake.common import get_appdirs

    return Path(get_appdirs().user_config_dir) / name


def profile_settings(*, name: str, account: str, cpu_partition: str, gpu_partition: str | None,
                     gpus_per_node: int, gpu_model: str | None, max_threads: int | None, status_command: str,
                     jobs: int, partitions_path: Path) -> tuple[str, dict]:
    """The text of config.yaml and the content of partitions.yaml."""
    for label, value in (("account", account), ("--cpu-partition", cpu_partition),
                         ("--gpu-partition", gpu_partition), ("--gpu-model", gpu_model)):
        if value and not SLURM_NAME.match(value):
            raise ValueError(f"{label} {value!r}: letters, digits and _ . + - only")
    if not SLURM_NAME.match(name):
        raise ValueError(f"profile name {name!r}: letters, digits and _ . + - only")
    if status_command not in STATUS_COMMANDS:
        raise ValueError(f"--status-command {status_command!r}: one of {', '.join(STATUS_COMMANDS)}")
    if gpus_per_node < 1 or jobs < 1 or (max_threads is not None and max_threads < 1):
        raise ValueError("--gpus-per-node, --jobs and --max-threads must be at least 1")
    text = TEMPLATE.format(name=name, jobs=jobs, status_command=status_command, partitions=json.dumps(str(partitions_path)))
    if max_threads is not None:
        text += ("# The most CPUs a job asks for: rules that want more (SFT asks 32) get this many.\n"
                 f"max-threads: {max_threads}\n")
    if account:
        text += f"default-resources:\n  slurm_account: {account}\n"
    else:
        text += "# No account: the cluster has no accounting (the executor submits without -A).\n"
    gpu = {"max_gpu": gpus_per_node, **({"available_gpu_models": [gpu_model]} if gpu_model else {})}
    gpu_partition = gpu_partition or cpu_partition
    partitions = {cpu_partition: {"max_gpu": 0}, gpu_partition: gpu} if gpu_partition != cpu_partition \
        else {cpu_partition: gpu}
    return text, {"partitions": partitions}


def install_profile(directory: Path, text: str, partitions: dict) -> None:
    """Write the profile into a new folder; an existing profile is left as it is."""
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} already holds a profile; move it away or pass --directory")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "partitions.yaml").write_text(yaml.safe_dump(partitions, sort_keys=False))
    (directory / "config.yaml").write_text(text)


def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", default="slurm", help="profile name: `snakemake --profile NAME` (slurm)")
    parser.add_argument("--account", required=True, help="sbatch -A; '' on a cluster without accounting")
    parser.add_argument("--cpu-partition", required=True, help="partition for CPU stages (media, filtering, tables)")
    parser.add_argument("--gpu-partition", help="partition with the GPU nodes (default: the CPU partition)")
    parser.add_argument("--gpus-per-node", type=int, default=8, help="GPUs of one node of the GPU partition (8)")
    parser.add_argument("--gpu-model", help="GPU type the GPU partition offers as its gres name, e.g. h100; "
                                            "jobs asking for another type are not sent there")
    parser.add_argument("--max-threads", type=int, help="the most CPUs one job may ask for (default: as the rules ask)")
    parser.add_argument("--status-command", default="sacct", choices=STATUS_COMMANDS,
                        help="how job status is polled: sacct (accounting) or squeue (no accounting)")
    parser.add_argument("--jobs", type=int, default=100, help="jobs queued or running at once (100)")
    parser.add_argument("--directory", type=Path,
                        help="where to write the profile (default: Snakemake's user config folder / NAME)")


def run(args) -> int:
    directory = (args.directory or user_profile_dir(args.name)).expanduser().absolute()
    try:
        text, partitions = profile_settings(
            name=args.name, account=args.account, cpu_partition=args.cpu_partition, gpu_partition=args.gpu_partition,
            gpus_per_node=args.gpus_per_node, gpu_model=args.gpu_model, max_threads=args.max_threads,
            status_command=args.status_command, jobs=args.jobs, partitions_path=directory / "partitions.yaml")
        install_profile(directory, text, partitions)
    except (ValueError, FileExistsError) as err:
        print(f"avrt install-profile: {err}", file=sys.stderr)
        return 2
    print(f"installed the Slurm profile {args.name!r} in {directory}\n"
          f"run from the repository root: snakemake --profile {args.name}")
    return 0
