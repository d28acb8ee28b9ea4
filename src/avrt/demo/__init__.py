"""Demo and test support, never imported by the pipeline's stages: a synthetic AVQA release,
synthetic benchmark files, the tiny random-weight model zoo and dry-run stubs."""
