"""Wall time and job count of `snakemake -n` on the full-scale config (57,335 QA, 45,867 clips).

    python scripts/bench/bench_dag.py

Writes annotation files of the official AVQA size and empty benchmark files to a temp dir (the
DAG never opens clips), points config/config.yaml at them through an overlay, and times three
dry runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from avrt.core.config import load_yaml
from avrt.demo.dry_run import write_dry_run_stubs

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        overlay = write_dry_run_stubs(tmp / "stubs", load_yaml(REPO / "config" / "config.yaml"))
        work = tmp / "wf"
        work.mkdir()
        for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
        snakemake = str(Path(sys.executable).parent / "snakemake")
        times = []
        for _ in range(3):
            start = time.perf_counter()
            proc = subprocess.run([snakemake, "-n", "--configfile", "config/config.yaml", str(overlay)],
                                  cwd=work, capture_output=True, text=True, check=True)
            times.append(time.perf_counter() - start)
        total = re.search(r"^total\s+(\d+)$", proc.stdout, re.M).group(1)
    print("snakemake -n, full-scale config (57335 QA, 45867 clips, 64 shards, 8 benchmarks): " f"{total} jobs")
    print(f"wall time: best {min(times):.2f} s, median {sorted(times)[1]:.2f} s of 3 runs")


if __name__ == "__main__":
    main()
