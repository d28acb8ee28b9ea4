# Validation, paths and shard lists shared by every stage.
import os
import shlex
from pathlib import Path

from avrt.core.config import ConfigError, deep_merge, load_yaml, validate_config, write_run_config
from avrt.data.shard import shard_ids


# Without --configfile the paper's recipe runs; --config overrides still apply on top of it. (A
# `configfile:` directive would be merged under every --configfile, so a demo or recipe given on
# the command line would inherit the paper's values for the keys it leaves out.)
if not workflow.overwrite_configfiles:
    _merged = deep_merge(load_yaml(workflow.source_path("../../config/config.yaml")), dict(config))
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
# The validated config with every default filled in: the stages read their settings from it
# (`avrt <command> --config ...`); each rule's params list the keys it reads, so a changed
# setting re-runs exactly the rules that read it.
RUN_CONFIG = str(write_run_config(config, f"{RUN}/config.yaml"))
SHARDS = shard_ids(config["data"]["n_shards"])


wildcard_constraints:
    shard=r"\d+",
    mask="both|audio_only|video_only",


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


def final_outputs():
    outputs = [f"{RUN}/data/data_summary.json"]
    if SIGHTSOUND["enabled"]:
        outputs.append(f"{RUN}/sightsound/sft/counts.tsv")
    elif config["teachers"]:
        outputs += [f"{RUN}/avrt20k/stats.json", f"{RUN}/avrt20k/hf"]
    if trains():
        outputs.append(stage_checkpoint("grpo"))
    if EVAL["models"] and eval_benchmarks():
        outputs.append(f"{RUN}/tables/table3.md")
    return outputs + [f"{RUN}/provenance/run_manifest.json"]


# ---- models ---------------------------------------------------------------------------------
TINY_MODELS = f"{RUN}/models"  # checkpoints here are built offline by `build_tiny_models`


def is_tiny(checkpoint):
    return os.path.dirname(os.path.normpath(checkpoint)) == TINY_MODELS


def tiny_families():
    """Families whose checkpoint the config expects from the tiny model zoo (demo, tests)."""
    return sorted({os.path.basename(m["checkpoint"]) for m in config["models"].values() if is_tiny(m["checkpoint"])})


def model_input(name):
    """A model's checkpoint as a rule input when this workflow builds it, else nothing."""
    ckpt = config["models"][name]["checkpoint"]
    return [ckpt] if is_tiny(ckpt) else []


# ---- teachers and merger --------------------------------------------------------------------
TEACHERS = {t["name"]: t for t in config["teachers"]}
SIGHTSOUND = config["sightsound"]


def merge_teachers():
    """modality -> teacher name, for the AVRT merger prompt (one audio and one frames teacher)."""
    by_modality = {}
    for t in config["teachers"]:
        if t["modality"] in ("audio", "frames"):
            if t["modality"] in by_modality:
                raise WorkflowError(
                    f"config key 'teachers': the merger takes one '{t['modality']}' teacher, "
                    f"got {by_modality[t['modality']]!r} and {t['name']!r}"
                )
            by_modality[t["modality"]] = t["name"]
    if set(by_modality) != {"audio", "frames"}:
        raise WorkflowError(
            "config key 'teachers': the merger needs one teacher with modality 'audio' and one with "
            f"modality 'frames', got {sorted(by_modality) or 'none'}"
        )
    return by_modality


# ---- evaluation -----------------------------------------------------------------------------
EVAL = config["evaluation"]
SYNTH_BENCH = f"{RUN}/synthetic_benchmarks"


def synthetic_benchmark_files():
    """Benchmark name -> the annotation file `avrt eval-synth` writes for it (every registered
    benchmark but AVQA val, always), where its registry entry's file layout puts it."""
    from avrt.demo.synthetic_benchmarks import synthetic_layouts

    return {b: f"{SYNTH_BENCH}/{layout.annotations}" for b, layout in synthetic_layouts().items()}


def synthetic_benchmarks_root(first_output):
    """The folder the synthetic benchmark files lie in, from the first of them (the registry's
    file layouts are relative to it)."""
    from avrt.demo.synthetic_benchmarks import synthetic_layouts

    layout = next(iter(synthetic_layouts().values()))
    return str(Path(first_output).parents[len(Path(layout.annotations).parts) - 1])


def eval_benchmarks():
    """Benchmark name -> {annotations, media_dir}: the config's, or the synthetic set (demo),
    narrowed to evaluation.only when that is set."""
    if not EVAL["synthetic"]:
        out = dict(EVAL["benchmarks"])
    else:
        from avrt.demo.synthetic_benchmarks import synthetic_layouts

        out = {b: {"annotations": f"{SYNTH_BENCH}/{layout.annotations}", "media_dir": f"{SYNTH_BENCH}/{layout.media_dir}"}
               for b, layout in synthetic_layouts().items()}
        if config["data"]["synthetic"] and "val" in config["data"]["synthetic"]["clips"]:
            out["avqa_val"] = {"annotations": f"{RUN}/synthetic/annotations/val_qa.json", "media_dir": f"{RUN}/synthetic/videos"}
    unknown = sorted(set(EVAL["only"]) - set(out))
    if unknown:
        raise WorkflowError(f"config key 'evaluation.only': {unknown} not among the benchmarks {sorted(out)}")
    return {b: f for b, f in out.items() if not EVAL["only"] or b in EVAL["only"]}


def eval_runs():
    """(tag, benchmark, mask) of every evaluation job."""
    runs = []
    for tag in EVAL["models"]:
        for bench in eval_benchmarks():
            runs.append((tag, bench, "both"))
            if bench in EVAL["mask_benchmarks"]:
                runs += [(tag, bench, mask) for mask in EVAL["masks"]]
    return runs


DIFFICULTY = EVAL["difficulty"]


def difficulty_teacher_results():
    """Teacher -> its result on the difficulty benchmark (paper Table 8); empty when off."""
    if not (DIFFICULTY and EVAL["models"] and eval_benchmarks()):
        return {}
    bench = DIFFICULTY["benchmark"]
    if bench not in eval_benchmarks():
        raise WorkflowError(
            f"config key 'evaluation.difficulty.benchmark': {bench!r} is not evaluated"
            f" (evaluated: {sorted(eval_benchmarks())})"
        )
    return {t: f"{RUN}/eval/teachers/{t}/{bench}.result.json" for t in DIFFICULTY["teachers"]}


def difficulty_table_outputs():
    """Table 8's files, when the difficulty subsets are on."""
    if not difficulty_teacher_results():
        return {}
    table8 = report(f"{RUN}/tables/table8.md", caption="../report/table8.rst", category="Results")
    return {"table8": table8, "table8_csv": f"{RUN}/tables/table8.csv"}


def difficulty_table_args():
    results = difficulty_teacher_results()
    if not results:
        return ""
    pairs = " ".join(shlex.quote(f"{t}={path}") for t, path in results.items())
    return f"--difficulty-benchmark {shlex.quote(DIFFICULTY['benchmark'])} --teacher-results {pairs}"


def stage_checkpoint(stage):
    return f"{RUN}/checkpoints/{stage}/final"


def eval_model_input(tag):
    entry = EVAL["models"][tag]
    return [stage_checkpoint(entry["stage"])] if entry["stage"] else model_input(entry["model"])


# ---- training -------------------------------------------------------------------------------
def trains():
    """Whether the run has something to train on: its own traces, or a given SFT set."""
    return bool(config["teachers"]) or config["sft"]["data"]["source"] != "avrt20k"


def grpo_label_files():
    """Files holding grpo.label_column: none for the ground truth; else the config's, or this run's
    SightSound-R1 consensus rows (the teacher's label per question)."""
    if config["grpo"]["label_column"] == "answer":
        return []
    if config["grpo"]["label_files"]:
        return config["grpo"]["label_files"]
    if SIGHTSOUND["enabled"]:
        return [f"{RUN}/sightsound/consensus/{shard}.jsonl" for shard in SHARDS]
    raise WorkflowError(
        f"config key 'grpo.label_files' must list the files holding grpo.label_column {config['grpo']['label_column']!r}"
    )


# ---- provenance -----------------------------------------------------------------------------
def provenance_artifacts():
    """The key artifacts of the run, checksummed into the manifest (not every media file)."""
    paths = [f"{RUN}/data/manifest.jsonl", f"{RUN}/data/attrition_all.tsv"]
    paths += [f"{RUN}/data/shards/{s}.jsonl" for s in SHARDS] + [f"{RUN}/media/{s}.jsonl" for s in SHARDS]
    if SIGHTSOUND["enabled"]:
        paths += [f"{RUN}/traces/{t}/{s}.jsonl" for t in TEACHERS for s in SHARDS]
        paths += [f"{RUN}/sightsound/sft/train.jsonl", f"{RUN}/sightsound/sft/val.jsonl"]
    elif config["teachers"]:
        paths += [f"{RUN}/traces/{t}/{s}.jsonl" for t in TEACHERS for s in SHARDS]
        paths += [f"{RUN}/merged/{s}.jsonl" for s in SHARDS]
        paths += [f"{RUN}/avrt20k/train.jsonl", f"{RUN}/avrt20k/val.jsonl"]
    if trains():  # the final checkpoints with their summaries (weights are checksummed too)
        paths += [stage_checkpoint("sft"), stage_checkpoint("grpo")]
    if EVAL["models"] and eval_benchmarks():
        paths += [f"{RUN}/eval/{t}/{b}/{m}.result.json" for t, b, m in eval_runs()]
        paths += [f"{RUN}/tables/table3.csv", f"{RUN}/tables/per_benchmark.csv", f"{RUN}/tables/table9.csv"]
        teachers = list(difficulty_teacher_results().values())  # Table 8's teacher results
        paths += teachers + ([f"{RUN}/tables/table8.csv"] if teachers else [])
    return paths


# ---- paths no rule makes --------------------------------------------------------------------
def names_local_path(source):
    """Whether a model source is a local path: a hub id is `owner/name`."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1


def missing_paths():
    """(config key, path) of each local path the config names, that no rule makes and is missing."""
    missing = []
    for name, spec in config["models"].items():
        for key in ("checkpoint", "processor", "adapter"):
            source = spec.get(key)
            if source and names_local_path(source) and not is_tiny(source) and not os.path.exists(os.path.expanduser(source)):
                missing.append((f"models.{name}.{key}", source))
    if not config["data"]["synthetic"] and not os.path.isdir(config["data"]["avqa"]["clips_dir"]):
        missing.append(("data.avqa.clips_dir", config["data"]["avqa"]["clips_dir"]))
    if EVAL["models"] and not EVAL["synthetic"]:
        for bench, files in eval_benchmarks().items():
            if not os.path.isdir(files["media_dir"]):
                missing.append((f"evaluation.benchmarks.{bench}.media_dir", files["media_dir"]))
    return missing


# Before the first job of a real run (dry runs and --lint do not need the data).
onstart:
    if missing_paths():
        raise WorkflowError(
            "nothing was run: these config keys name paths that do not exist\n"
            + "\n".join(f"  {key}: {path!r}" for key, path in missing_paths())
        )
