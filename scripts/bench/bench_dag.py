"""Wall time and job count of `snakemake -n` on the full-scale config (57,335 QA, 45,867 clips).

    python scripts/bench/bench_dag.py

Writes annotation files of the official AVQA size to a temp dir (the DAG never opens clips),
points config/config.yaml at them through an overlay, and times three dry runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
N_QA, N_CLIPS, N_TRAIN = 57335, 45867, 40127


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = [{"id": i, "video_name": f"v{i % N_CLIPS:06d}", "video_id": i % N_CLIPS, "question_text": "q",
                 "multi_choice": ["a", "b", "c", "d"], "answer": 0} for i in range(N_QA)]
        (tmp / "train.json").write_text(json.dumps(rows[:N_TRAIN]))
        (tmp / "val.json").write_text(json.dumps(rows[N_TRAIN:]))
        (tmp / "overlay.yaml").write_text(
            f"data:\n  avqa:\n    annotations: {{train: {tmp}/train.json, val: {tmp}/val.json}}\n")
        work = tmp / "wf"
        work.mkdir()
        for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
        snakemake = str(Path(sys.executable).parent / "snakemake")
        times = []
        for _ in range(3):
            start = time.perf_counter()
            proc = subprocess.run([snakemake, "-n", "--configfile", "config/config.yaml", str(tmp / "overlay.yaml")],
                                  cwd=work, capture_output=True, text=True, check=True)
            times.append(time.perf_counter() - start)
        total = re.search(r"^total\s+(\d+)$", proc.stdout, re.M).group(1)
    print(f"snakemake -n, full-scale config ({N_QA} QA, {N_CLIPS} clips): {total} jobs")
    print(f"wall time: best {min(times):.2f} s, median {sorted(times)[1]:.2f} s of 3 runs")


if __name__ == "__main__":
    main()
