"""The core every stage stands on: typed rows, config, prompts, media cutting, answer parsing,
data sets, resumable shards and the one generation driver. It imports no stage and no model."""
