"""Media preparation throughput on synthetic 720p 10 s clips, against a bare fetch and a naive baseline.

    python scripts/bench/bench_media.py [--clips 6] [--width 1280 --height 720 --fps 25] [--repeats 3]

Single process, so the figures are per core. bare-fetch, ours-frames and ours-audio take turns in
each of `--repeats` rounds and the best round counts (a shared machine's load hits them alike).
Prints clips/s for
  bare-fetch    one decord reader at the output size, get_batch of the 8 sampled frames: the floor;
  ours-frames   `decode_frames` (header read, resized decord reader, the same 8 frames, timestamps);
  naive-frames  PyAV decodes and converts every frame at full size, keeps 8, resizes them;
  ours-audio    `load_audio` (demux, mono, resample to 16 kHz, pad), timed after a warm-up call;
  ours-full     the whole per-clip job (frames + JPEG + audio + WAV, moved into place);
then ours-frames / bare-fetch (cost ratio, 1.0 is no overhead) and the speed-up over naive-frames,
all from this one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import decord
import numpy as np
from PIL import Image

from avrt.core.media import MediaParams, decode_frames, load_audio, resized_dims, sample_frame_indices
from avrt.data.media import prepare_clip
from avrt.demo.synthetic_avqa import generate


def naive_frames(path: str, params: MediaParams) -> np.ndarray:
    with av.open(path) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    idx = sample_frame_indices(len(frames), params.num_frames, params.frame_sampling)
    h, w = frames[0].shape[:2]
    size = resized_dims(w, h, params.frame_max_side)
    return np.stack([np.asarray(Image.fromarray(frames[i]).resize(size, Image.BILINEAR)) for i in idx])


def bare_fetch(path: str, size: tuple[int, int], params: MediaParams) -> np.ndarray:
    """The least decord work for the same frames: output size known, no metadata, no timestamps."""
    vr = decord.VideoReader(path, width=size[0], height=size[1], num_threads=1)
    return vr.get_batch(sample_frame_indices(len(vr), params.num_frames, params.frame_sampling)).asnumpy()


def rates(fns: dict[str, Callable], items: list, repeats: int) -> dict[str, float]:
    """Items/s of each function, best of `repeats` rounds; the functions take turns within a
    round, so a change of load on the machine hits them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for item in items:
                fn(item)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(items) / seconds for name, seconds in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the fast measurements; the best counts")
    args = ap.parse_args()
    params = MediaParams()
    size = resized_dims(args.width, args.height, params.frame_max_side)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(tmp, {"val": args.clips}, 10.0, args.width, args.height, args.fps, seed=0)
        print(f"generated {args.clips} clips {args.width}x{args.height} {args.fps} fps 10 s in {time.perf_counter() - t0:.1f} s")
        paths = sorted(str(p) for p in Path(tmp, "videos").glob("*.mp4"))
        # warm-up: imports (librosa, soxr), codec and file caches
        bare_fetch(paths[0], size, params), decode_frames(paths[0], params), naive_frames(paths[0], params)
        load_audio(paths[0], params)
        fast = rates({"bare": lambda p: bare_fetch(p, size, params), "ours": lambda p: decode_frames(p, params),
                      "audio": lambda p: load_audio(p, params)}, paths, args.repeats)
        bare, ours, audio = fast["bare"], fast["ours"], fast["audio"]
        naive = rates({"naive": lambda p: naive_frames(p, params)}, paths, 1)["naive"]
        jobs = [(Path(p).stem, p, "000", Path(tmp, "media"), params) for p in paths]
        full = rates({"full": prepare_clip}, jobs, 1)["full"]
    print(f"bare-fetch    {bare:7.2f} clips/s/core  (decord at {size[0]}x{size[1]}, 8 frames)")
    print(f"ours-frames   {ours:7.2f} clips/s/core")
    print(f"naive-frames  {naive:7.2f} clips/s/core")
    print(f"ours-audio    {audio:7.2f} clips/s/core  (10 s, 44.1 kHz stereo AAC -> 16 kHz mono)")
    print(f"ours-full     {full:7.2f} clips/s/core  (frames + audio + files)")
    print(f"cost ours-frames / bare-fetch: {bare / ours:.2f}x")
    print(f"speed-up ours-frames / naive-frames: {ours / naive:.2f}x")


if __name__ == "__main__":
    main()
