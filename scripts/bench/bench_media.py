"""Media preparation throughput on synthetic 720p 10 s clips, against a naive baseline.

    python scripts/bench/bench_media.py [--clips 6] [--width 1280 --height 720 --fps 25]

Single process, so the figures are per core. Prints clips/s for
  ours-frames   decord, resized while decoding, only the 8 sampled frames converted;
  naive-frames  PyAV decodes and converts every frame at full size, keeps 8, resizes them;
  ours-full     the whole per-clip job (frames + JPEG + audio demux/resample + WAV);
and the speed-up of ours-frames over naive-frames from this one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from avrt.core.media import MediaParams, decode_frames, resized_dims, sample_frame_indices
from avrt.data.media import prepare_clip
from avrt.demo.synthetic_avqa import generate


def naive_frames(path: str, params: MediaParams) -> np.ndarray:
    with av.open(path) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    idx = sample_frame_indices(len(frames), params.num_frames, params.frame_sampling)
    h, w = frames[0].shape[:2]
    size = resized_dims(w, h, params.frame_max_side)
    return np.stack([np.asarray(Image.fromarray(frames[i]).resize(size, Image.BILINEAR)) for i in idx])


def timed(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    args = ap.parse_args()
    params = MediaParams()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(tmp, {"val": args.clips}, 10.0, args.width, args.height, args.fps, seed=0)
        print(f"generated {args.clips} clips {args.width}x{args.height} {args.fps} fps 10 s in {time.perf_counter() - t0:.1f} s")
        paths = sorted(str(p) for p in Path(tmp, "videos").glob("*.mp4"))
        decode_frames(paths[0], params), naive_frames(paths[0], params)  # warm-up: imports, caches
        ours = timed(lambda p: decode_frames(p, params), paths)
        naive = timed(lambda p: naive_frames(p, params), paths)
        jobs = [(Path(p).stem, p, "000", Path(tmp, "media"), params) for p in paths]
        full = timed(prepare_clip, jobs)
    print(f"ours-frames   {ours:7.2f} clips/s/core")
    print(f"naive-frames  {naive:7.2f} clips/s/core")
    print(f"ours-full     {full:7.2f} clips/s/core  (frames + audio + files)")
    print(f"speed-up ours-frames / naive-frames: {ours / naive:.2f}x")


if __name__ == "__main__":
    main()
