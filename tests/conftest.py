"""Shared fixtures: the repository, a small synthetic AVQA release, and a workflow sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv running the tests also runs the workflows


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is several times faster than two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def synthetic_release(tmp_path_factory) -> Path:
    """6 train clips (4 with planted faults) + 2 val clips, 10 s each, real H.264/AAC MP4s."""
    from avrt.demo.synthetic_avqa import generate

    out = tmp_path_factory.mktemp("avqa_synthetic")
    generate(out, {"train": 6, "val": 2}, seconds=10.0, width=160, height=120, fps=10, seed=1,
             faults={"corrupt": 1, "no_audio": 1, "missing": 1, "short": 1})
    return out


@pytest.fixture(scope="session")
def prepared_shard(synthetic_release, tmp_path_factory) -> tuple[Path, Path]:
    """The synthetic release as the data stage writes it: one shard (train + val) and its media
    index (frames, 16 kHz audio, silent video), made by ingest and the media stage."""
    from avrt.core.media import MediaParams
    from avrt.data.ingest import ingest
    from avrt.data.media import prepare_shard

    root = tmp_path_factory.mktemp("shard")
    ann = {s: synthetic_release / "annotations" / f"{s}_qa.json" for s in ("train", "val")}
    ingest(ann, synthetic_release / "videos", root / "data", workers=1)
    shard = root / "data" / "shards" / "000.jsonl"
    shard.parent.mkdir()
    shard.write_text((root / "data" / "manifest.jsonl").read_text())
    prepare_shard(shard, root / "media" / "000.jsonl", MediaParams(frame_max_side=32, silent_video=True))
    return shard, root / "media" / "000.jsonl"


def workflow_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def copy_workflow(dest: Path) -> Path:
    """A copy of the workflow files, so a test's results/ and .snakemake/ stay in its tmp dir."""
    for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    return dest


def run_snakemake(cwd: Path, *args: str, check: bool = True, timeout: int = 900,
                  env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=cwd, env={**workflow_env(), **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture
def workflow_dir(tmp_path) -> Path:
    return copy_workflow(tmp_path)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The whole demo, run once as the README says (`--profile profiles/local`): the workflow copy
    it ran in. Tests read its outputs and dry-run against it; none of them changes it.
    One thread per job, as the test's Slurm cluster gives each job one CPU: training's floating-point
    sums depend on the thread count, and the Slurm run must write the same files byte for byte."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    run_snakemake(workdir, "--cores", "2", "--profile", "profiles/local", "--max-threads", "1", timeout=1800)
    return workdir

