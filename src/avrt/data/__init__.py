"""Data stage: AVQA ingest, sharding, media preparation per shard and the data summary."""
