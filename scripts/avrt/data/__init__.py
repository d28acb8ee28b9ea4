"""Data stage: AVQA ingest, sharding, media preparation and the synthetic generator."""
