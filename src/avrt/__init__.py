"""AVRT pipeline: audio-visual reasoning transfer from single-modality teachers."""

__version__ = "0.1.0"
