"""Clip names as paths: an annotation's `video_name` becomes a file name in the clips directory
(ingest) and a directory name in a shard's media directory (media stage).

A name from an annotation file is untrusted: `../../x`, `/abs/path` or a name with a separator
would read or write outside those directories. Only a single plain path component is accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

UNSAFE_VIDEO_NAME = "unsafe_video_name"


def video_name_problem(name: object) -> str | None:
    """Why `name` cannot be used as one path component, or None when it can."""
    if not isinstance(name, str) or not name:
        return f"video_name must be a non-empty string, got {name!r}"
    if name in (".", ".."):
        return f"video_name {name!r} names a directory, not a clip"
    if any(char in name for char in ("/", "\\", "\0")):
        return f"video_name {name!r} contains a path separator or NUL"
    return None


def child_path(parent: Path, name: str) -> Path:
    """`parent / name`, or ValueError when the name is unsafe or the result would not lie
    directly inside `parent` (checked on the normalised path, not trusting the name check alone)."""
    problem = video_name_problem(name)
    if problem:
        raise ValueError(problem)
    path = parent / name
    if Path(os.path.normpath(path)).parent != Path(os.path.normpath(parent)):
        raise ValueError(f"video_name {name!r} leaves {parent}")
    return path
