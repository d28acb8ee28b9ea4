# Validation, paths and shard lists shared by every stage.
import json
import os
import shlex

from avrt.config import ConfigError, deep_merge, load_yaml, validate_config
from avrt.data.shard import shard_ids


# Without --configfile the embedded demo runs; --config overrides still apply on top of it.
if not workflow.overwrite_configfiles:
    _demo = load_yaml(workflow.source_path("../../config/demo.yaml"))
    _merged = deep_merge(_demo, dict(config))
    config.clear()
    config.update(_merged)
try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

RUN = f"results/{config['run']}"
LOGS = f"{RUN}/logs"
SHARDS = shard_ids(config["data"]["n_shards"])


wildcard_constraints:
    shard=r"\d+",


def avqa_annotations():
    """Annotation JSON per split: the synthetic release (demo, tests) or the official AVQA files."""
    synthetic = config["data"]["synthetic"]
    if synthetic:
        return {s: f"{RUN}/synthetic/annotations/{s}_qa.json" for s in synthetic["clips"]}
    return config["data"]["avqa"]["annotations"]


def avqa_clips_dir():
    if config["data"]["synthetic"]:
        return f"{RUN}/synthetic/videos"
    return config["data"]["avqa"]["clips_dir"]


def shell_json(obj):
    """A JSON value quoted for the shell, for passing config sections to the CLI."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def final_outputs():
    return [f"{RUN}/data/data_summary.json"]
