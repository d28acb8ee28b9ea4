"""Model inputs cut from a clip: modality choice, masking, silent-video decoding."""

from __future__ import annotations

import numpy as np
import pytest
from models_fixtures import make_clip, write_silent_video

from avrt.models.media_inputs import build_media_inputs, decode_video_frames

VIDEO = {"video_fps": 2.0, "video_max_frames": 768}  # a spec's silent-video sampling


def test_frames_keep_the_rate_their_timestamps_imply():
    media = build_media_inputs(make_clip(), ("frames",), **VIDEO)
    assert media.frames.shape == (8, 56, 56, 3) and media.audio is None
    assert media.frames_fps == pytest.approx(0.8)


def test_audio_only_has_no_frames():
    clip = make_clip()
    media = build_media_inputs(clip, ("audio",), **VIDEO)
    assert media.frames is None and media.frames_fps is None
    assert np.array_equal(media.audio, clip.audio) and media.sample_rate == 16000


def test_masks_blank_the_frames_and_silence_the_audio_keeping_shapes():
    clip = make_clip()
    media = build_media_inputs(clip, ("frames", "audio"), mask=("frames", "audio"), **VIDEO)
    assert media.frames.shape == clip.frames.shape and not media.frames.any()
    assert media.audio.shape == clip.audio.shape and not media.audio.any()
    assert media.frames_fps == pytest.approx(clip.frames_fps)


@pytest.mark.parametrize(
    ("modalities", "mask", "message"),
    [
        (("depth",), (), "unknown modalities"),
        (("frames", "silent_video"), (), "choose one of"),
        (("frames",), ("audio",), "not among the requested"),
        (("audio",), ("silent_video",), "cannot mask"),
    ],
)
def test_inconsistent_requests_are_refused(modalities, mask, message):
    with pytest.raises(ValueError, match=message):
        build_media_inputs(make_clip(), modalities, mask=mask, **VIDEO)


def test_missing_media_is_named():
    clip = make_clip("clip-42")
    no_audio = type(clip)(**{**clip.__dict__, "audio": np.zeros(0, np.float32)})
    with pytest.raises(ValueError, match="clip 'clip-42': audio requested but none was loaded"):
        build_media_inputs(no_audio, ("audio",), **VIDEO)
    with pytest.raises(ValueError, match="silent_video requested but the clip has none"):
        build_media_inputs(clip, ("silent_video",), **VIDEO)
    with pytest.raises(ValueError, match="no media"):
        build_media_inputs(None, ("frames",), **VIDEO)


def test_silent_video_is_decoded_uniformly_at_the_requested_rate(tmp_path):
    video = write_silent_video(tmp_path / "silent.mp4", seconds=10.0, fps=10)
    media = build_media_inputs(make_clip(silent_video=video), ("silent_video",), video_fps=2.0, video_max_frames=768)
    assert media.frames.shape == (20, 48, 64, 3)
    # 20 of 100 frames, linspace(0, 99, 20): one every 99/19 frames at 10 fps.
    assert media.frames_fps == pytest.approx(10 * 19 / 99)
    brightness = media.frames.reshape(20, -1).mean(axis=1)
    assert np.all(np.diff(brightness) > 0)  # first to last frame, in order


def test_video_frame_cap_applies(tmp_path):
    video = write_silent_video(tmp_path / "silent.mp4", seconds=4.0, fps=10)
    frames, fps = decode_video_frames(video, fps=5.0, max_frames=6)
    assert len(frames) == 6
    assert fps == pytest.approx(10 * 5 / 39)  # linspace(0, 39, 6): one every 39/5 frames at 10 fps
