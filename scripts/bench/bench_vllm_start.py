"""How long a job waits for its vLLM engine: the three ways the model spec can start one, side by side.

    python scripts/bench/bench_vllm_start.py [--family qwen2_5_omni] [--zoo DIR]

Each mode runs in a fresh Python process, as a Snakemake job does, and is timed from the process's
start to its first answer (one greedy request of 8 frames and 10 s of audio for a media family):
  child process   - vLLM's default, the engine core in a process of its own (a cluster's setting);
  in process      - `engine_in_process: true` (VLLM_ENABLE_V1_MULTIPROCESSING=0);
  in process, no media memory pass - plus `skip_mm_profiling: true` (the CPU demo's setting).
Prints the seconds of each and their ratio to the first, from this one run. Needs vLLM (on a CPU
machine its CPU build, as `make setup` installs it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {
    "child process": {},
    "in process": {"engine_in_process": True},
    "in process, no media memory pass": {"engine_in_process": True, "skip_mm_profiling": True},
}
MODALITIES = {"text_llm": (), "qwen2_5_vl": ("frames",), "qwen2_audio": ("audio",),
              "audio_flamingo3": ("audio",), "qwen2_5_omni": ("frames", "audio")}

# One job: load the spec's engine, answer one request, print the seconds since the process started.
JOB = """
import json, sys, time
started = float(sys.argv[3])
import numpy as np
from avrt.core.clip_media import ClipMedia
from avrt.models.adapters import GenerationRequest
from avrt.models.backends import load_model
from avrt.models.spec import ModelSpec

spec = ModelSpec.from_config("bench", json.loads(sys.argv[1]))
modalities = tuple(json.loads(sys.argv[2]))
t = np.arange(160_000) / 16_000
clip = ClipMedia(video_name="clip", frames=np.random.default_rng(0).integers(0, 256, (8, 112, 112, 3), dtype=np.uint8),
                 frame_times=(np.arange(8) + 0.5) * 1.25, audio=(0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
                 sample_rate=16_000, duration=10.0)
backend = load_model(spec)
backend.generate([GenerationRequest("q", "What makes the sound?", clip if modalities else None, modalities)])
print("SECONDS", time.time() - started)
backend.close()
"""


def run_job(spec: dict, modalities: tuple) -> float:
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", JOB, json.dumps(spec), json.dumps(modalities), str(started)],
                          capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SECONDS ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"the job failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return float(lines[-1].split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="qwen2_5_omni", choices=sorted(MODALITIES))
    ap.add_argument("--zoo", type=Path, help="a tiny zoo (avrt zoo); built in a temporary folder when absent")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        zoo = args.zoo
        if zoo is None:
            from avrt.demo.zoo import build_zoo

            zoo = Path(tmp)
            build_zoo(zoo, families=[args.family])
        base = {"family": args.family, "checkpoint": str(zoo / args.family), "backend": "vllm", "dtype": "float32",
                "enforce_eager": True, "gpu_memory_utilization": 0.1, "max_model_len": 4096, "max_num_seqs": 4,
                "sampling": {"temperature": 0.0, "max_new_tokens": 8}}
        seconds = {mode: run_job({**base, **extra}, MODALITIES[args.family]) for mode, extra in MODES.items()}
    first = seconds["child process"]
    print(f"{args.family}: process start to first answer")
    for mode, s in seconds.items():
        print(f"  {mode:<34} {s:6.1f} s   x{first / s:.2f} faster than a child process")


if __name__ == "__main__":
    main()
