"""Batched against sequential generation with the transformers backend on the tiny Qwen2.5-Omni.

    python scripts/bench/bench_generation.py [--requests 16] [--batch-size 8] [--max-new-tokens 32]
                                             [--zoo DIR] [--threads N]

Each request is 8 frames (112x112) with 10 s of audio, answered greedily. Prints requests/s and
generated tokens/s of one request per `generate` call (sequential) and of `--batch-size` requests
per call (batched, left padded), their ratio from this one run, and whether both gave the same
answers (they must: greedy decoding does not depend on batching).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from avrt.core.clip_media import ClipMedia
from avrt.models.adapters import GenerationRequest
from avrt.models.backends import load_model
from avrt.models.spec import ModelSpec
from avrt.demo.zoo import build_zoo


def synthetic_requests(count: int) -> list[GenerationRequest]:
    rng = np.random.default_rng(0)
    t = np.arange(160_000) / 16_000
    requests = []
    for i in range(count):
        clip = ClipMedia(
            video_name=f"clip{i}",
            frames=rng.integers(0, 256, (8, 112, 112, 3), dtype=np.uint8),
            frame_times=(np.arange(8) + 0.5) * 1.25,
            audio=(0.5 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32),
            sample_rate=16_000,
            duration=10.0,
        )
        prompt = "What is making the sound? Answer with the letter." + " Think step by step." * (i % 3)
        requests.append(GenerationRequest(f"q{i}", prompt, clip, ("frames", "audio")))
    return requests


def timed(backend, requests, per_call: int):
    start = time.perf_counter()
    completions = []
    for first in range(0, len(requests), per_call):
        completions += backend.generate(requests[first : first + per_call])
    return completions, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--zoo", type=Path, help="an existing `avrt zoo` directory (default: build one)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        zoo = args.zoo
        if zoo is None:
            zoo = Path(tmp) / "zoo"
            build_zoo(zoo, ["qwen2_5_omni"])
        spec = ModelSpec.from_config("student", {
            "family": "qwen2_5_omni", "checkpoint": str(zoo / "qwen2_5_omni"), "dtype": "float32",
            "batch_size": args.batch_size, "sampling": {"max_new_tokens": args.max_new_tokens},
        })
        requests = synthetic_requests(args.requests)
        sequential_backend = load_model(replace(spec, batch_size=1))
        batched_backend = load_model(spec)
        sequential_backend.generate(requests[:1])  # warm-up: first-call allocations and caches
        sequential, seq_s = timed(sequential_backend, requests, per_call=1)
        batched, bat_s = timed(batched_backend, requests, per_call=len(requests))

    tokens = sum(c.completion_tokens for c in batched)
    same = [c.text for c in sequential] == [c.text for c in batched]
    print(f"tiny Qwen2.5-Omni thinker, {args.requests} requests (8 frames + 10 s audio), "
          f"{args.max_new_tokens} new tokens max, {torch.get_num_threads()} threads")
    print(f"sequential (1 per call):      {args.requests / seq_s:7.2f} req/s  "
          f"{tokens / seq_s:8.1f} tok/s  ({seq_s:.2f} s)")
    print(f"batched ({args.batch_size} per generate):    {args.requests / bat_s:7.2f} req/s  "
          f"{tokens / bat_s:8.1f} tok/s  ({bat_s:.2f} s)")
    print(f"batched / sequential:         {seq_s / bat_s:7.2f}x   same answers: {same}")


if __name__ == "__main__":
    main()
