"""Teacher traces: prompting the single-modality teachers, reading their answers, merging."""
