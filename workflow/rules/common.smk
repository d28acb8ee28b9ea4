# Validation, paths and shard lists shared by every stage.
import dataclasses
import os
import re
import shlex
import sys
from pathlib import Path

from avrt.core.config import (
    ConfigError,
    audio_text_questions,
    deep_merge,
    load_yaml,
    validate_config,
    write_run_config,
)
from avrt.data.shard import shard_ids
from avrt.demo.warm_up import roles as warm_up_roles
from avrt.models.merged_checkpoint import merged_name, needs_merge
from avrt.models.spec import EVALUATION_SAMPLING, THROUGHPUT_KEYS, ModelSpec
from avrt.shared_stages import shared_stages


# Without --configfile the paper's recipe runs; --config overrides still apply on top of it. A
# config file that names its `run` is a whole config (config/demo.yaml, config/config.yaml) and
# inherits none of the paper's values for the keys it leaves out (a `configfile:` directive would
# merge config/config.yaml under every --configfile). When no file given names a `run`, the files
# are overlays on the paper's recipe: `--configfile my.yaml` means
# `--configfile config/config.yaml my.yaml`.
def is_overlay(configfiles):
    return not any("run" in load_yaml(path) for path in configfiles)


if is_overlay(workflow.overwrite_configfiles):
    _merged = deep_merge(load_yaml(workflow.source_path("../../config/config.yaml")), dict(config))
    config.clear()
    config.update(_merged)
try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)


# ---- profile resources ----------------------------------------------------------------------
def unset_resource_variables():
    """Environment variable -> where a profile's resources name it (`slurm_account: $PROJECT`), for
    each one that is not set. Snakemake expands set variables in resource values and leaves the
    others as they are, so an unset one would reach sbatch as the literal text `$PROJECT`."""
    settings = workflow.resource_settings
    named = [
        (arg.partition("=")[0], "every rule", arg.partition("=")[2])
        for arg in (settings.default_resources.args if settings.default_resources else [])
    ]
    named += [
        (name, rule, value)
        for rule, resources in settings.overwrite_resources.items()
        for name, value in resources.items()
    ]
    unset = {}
    for name, rule, value in named:
        for match in re.finditer(r"\$(?:(\w+)|\{(\w+)\})", str(getattr(value, "raw", value))):
            variable = match.group(1) or match.group(2)
            if variable not in os.environ:
                unset.setdefault(variable, {}).setdefault(name, []).append(rule)
    return {
        variable: "; ".join(f"{name} of {', '.join(rules)}" for name, rules in where.items())
        for variable, where in sorted(unset.items())
    }


# Checked when the workflow is read (dry runs too) by the Snakemake that submits the jobs; the
# Snakemake inside a job submits nothing.
_UNSET = unset_resource_variables() if workflow.is_main_process else {}
if _UNSET:
    raise WorkflowError(
        "nothing was submitted: the profile's resources name environment variables that are not set\n"
        + "\n".join(f"  {variable}: {where}" for variable, where in _UNSET.items())
        + "\nexport them (an empty account submits without -A) or write the values into the profile"
    )


RUN = f"results/{config['run']}"
LOGS = f"{RUN}/logs"
# Each heavy rule's `benchmark:` file: wall time, CPU time, peak memory and resources of its jobs
# (the run's cost table, `stage_costs`).
BENCHMARKS = f"{LOGS}/benchmarks"
# The validated config with every default filled in: the stages read their settings from it
# (`avrt <command> --config ...`); each rule's params list the keys it reads, so a changed
# setting re-runs exactly the rules that read it.
RUN_CONFIG = str(write_run_config(config, f"{RUN}/config.yaml"))
SHARDS = shard_ids(config["data"]["n_shards"])


# ---- stages taken from another run (upstream_run; src/avrt/shared_stages.py) -----------------
def upstream_config(name):
    """The validated config of the run `name`, as its own workflow wrote it."""
    path = f"results/{name}/config.yaml"
    if not os.path.isfile(path):
        raise WorkflowError(
            f"config key 'upstream_run': {path} does not exist; run that run first, or dry-run it"
            " (`snakemake -n` with its config files writes it), so its settings are known"
        )
    try:
        return validate_config(load_yaml(path))
    except ConfigError as err:
        raise WorkflowError(f"config key 'upstream_run': {path}: {err}") from None


SHARING = shared_stages(config, upstream_config(config["upstream_run"])) if config["upstream_run"] else None
if SHARING and workflow.is_main_process:
    print(f"run {config['run']} {SHARING.describe()}", file=sys.stderr)


def stage_run(stage):
    """The run folder a stage's outputs, logs and config lie in: the upstream run's when this run
    shares the stage (its jobs then are that run's own jobs), else this run's."""
    return f"results/{SHARING.upstream}" if SHARING and SHARING.shares(stage) else RUN


DATA_RUN = stage_run("data")  # data/, media/ and synthetic/ (the demo's AVQA release)
TRACES_RUN = stage_run("traces")  # traces/<teacher>/
MERGED_RUN = stage_run("merged")  # merged/
SET_RUN = stage_run("avrt20k")  # avrt20k/
SFT_RUN = stage_run("sft")  # checkpoints/sft/


# ---- rule params ----------------------------------------------------------------------------
# Snakemake re-runs a job whose params changed, so each rule's params hold what its job reads of
# the run config, less what changes how fast it runs but not its result. Left out for that reason:
# how many rows a stage hands its model per call (`traces.chunk_size`, `evaluation.chunk_size`; a
# stage's progress cache keeps every row whatever the chunk it came in) and THROUGHPUT_KEYS. Only
# the run manifest, which records the whole config, re-runs for those.
def reads(value):
    """A config value as a rule's param, with its mappings' keys sorted: a job re-runs when a value
    it reads changes, never because an overlay spelled out a default and so moved its key."""
    if isinstance(value, dict):
        return {key: reads(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [reads(item) for item in value]
    return value


def model_reads(name, without=(), **sampling):
    """What a job reads of the spec models.<name>: all but the throughput keys and `without`, with the
    `sampling` values the stage decodes with whatever the spec sets (merger: one sample)."""
    spec = {key: value for key, value in config["models"][name].items() if key not in THROUGHPUT_KEYS + tuple(without)}
    if sampling:
        spec["sampling"] = {**spec["sampling"], **sampling}
    return reads(spec)


wildcard_constraints:
    shard=r"\d+",
    mask="both|audio_only|video_only",


def avqa_annotations():
    """Annotation JSON per split: the synthetic release (demo, tests) or the official AVQA files."""
    synthetic = config["data"]["synthetic"]
    if synthetic:
        return {s: f"{DATA_RUN}/synthetic/annotations/{s}_qa.json" for s in synthetic["clips"]}
    return config["data"]["avqa"]["annotations"]


def avqa_clips_dir():
    if config["data"]["synthetic"]:
        return f"{DATA_RUN}/synthetic/videos"
    return config["data"]["avqa"]["clips_dir"]


def run_outputs():
    """What the run makes for its user: data summary, AVRT-20K or the SightSound set, checkpoints, tables."""
    outputs = [f"{DATA_RUN}/data/data_summary.json"]
    if SIGHTSOUND["enabled"]:
        outputs.append(f"{RUN}/sightsound/sft/counts.tsv")
    elif config["teachers"]:
        outputs += [f"{SET_RUN}/avrt20k/stats.json", f"{SET_RUN}/avrt20k/hf"]
    if trains():
        outputs.append(stage_checkpoint("grpo"))
    if EVAL["models"] and eval_benchmarks():
        outputs.append(f"{RUN}/tables/table3.md")
        outputs += [f"{RUN}/compare/{config['compare']['stem']}.md"] if config["compare"] else []
    if config["judge"]:  # paper Table 0.A.1 (workflow/rules/judge.smk)
        outputs.append(f"{RUN}/tables/table_a1.md")
    return outputs


def final_outputs():
    """The run's outputs, its provenance manifest and what each stage cost."""
    return run_outputs() + [f"{RUN}/provenance/run_manifest.json", f"{RUN}/costs/stage_costs.md"]


# ---- models ---------------------------------------------------------------------------------
def zoo_dir():
    """Where the tiny model zoo (demo, tests) lies: results/<run>/models, or the upstream run's when
    this run's models load from there (a recipe on the demo), which must then build the same ones."""
    if not SHARING:
        return f"{RUN}/models"
    theirs = f"results/{SHARING.upstream}/models"
    if not any(os.path.dirname(os.path.normpath(m["checkpoint"])) == theirs for m in config["models"].values()):
        return f"{RUN}/models"
    upstream = upstream_config(SHARING.upstream)
    if zoo_families(config, theirs) != zoo_families(upstream, theirs):
        raise WorkflowError(
            f"config key 'models': this run loads tiny models {zoo_families(config, theirs)} from {theirs},"
            f" which its run builds {zoo_families(upstream, theirs)}; point the checkpoints at results/{config['run']}/models"
        )
    return theirs


def zoo_families(cfg, folder):
    return sorted(
        {
            os.path.basename(m["checkpoint"])
            for m in cfg["models"].values()
            if os.path.dirname(os.path.normpath(m["checkpoint"])) == folder
        }
    )


TINY_MODELS = zoo_dir()  # checkpoints here are built offline by `build_tiny_models`
ZOO_RUN = os.path.dirname(TINY_MODELS)
# The demo's warm-up (`demo_warm_up`, src/avrt/demo/warm_up.py): the zoo job trains these models
# for their task before it puts them in place. It reads their roles (the prompt and what the model
# sees), their specs, the media cut and the synthetic clips' settings.
# The config of the run that builds the zoo: this run's, or the upstream run's whose zoo it loads.
ZOO_CONFIG = config if ZOO_RUN == RUN else upstream_config(SHARING.upstream)
WARM_UP = ZOO_CONFIG.get("demo_warm_up")
WARM_UP_SPEC_KEYS = ("family", "checkpoint", "revision", "trust_remote_code", "dtype", "prompt_suffix")
try:  # a model that is no teacher's, merger's or checker's stops the run here
    WARM_UP_ROLES = warm_up_roles(ZOO_CONFIG) if WARM_UP else []
except ConfigError as err:
    raise WorkflowError(str(err)) from None
WARM_UP_ARGS = ["--warm-up-config", f"{ZOO_RUN}/config.yaml"] if WARM_UP else []
WARM_UP_READS = (
    {
        "demo_warm_up": WARM_UP,
        "roles": [dataclasses.asdict(role) for role in WARM_UP_ROLES],
        "media": ZOO_CONFIG["media"],
        "synthetic": ZOO_CONFIG["data"]["synthetic"],
        "models": {m: {k: ZOO_CONFIG["models"][m].get(k) for k in WARM_UP_SPEC_KEYS} for m in WARM_UP["models"]},
    }
    if WARM_UP
    else {}
)


def is_tiny(checkpoint):
    return os.path.dirname(os.path.normpath(checkpoint)) == TINY_MODELS


def tiny_families():
    """Families whose checkpoint the config expects from the tiny model zoo (demo, tests)."""
    return zoo_families(config, TINY_MODELS)


# models.<name> -> its checkpoint merged with its adapter (rule merge_adapter, models.smk), for each
# model that jobs cannot load as checkpoint + adapter (vLLM with an adapter: `needs_merge`). It lies
# in the run folder of the jobs that load it first: the traces' for a teacher's model (the teacher
# jobs may be an upstream run's own, and an input of theirs in this run's folder would make
# Snakemake run them again), this run's for any other.
MERGED = {
    name: f"{TRACES_RUN if name in {t['model'] for t in config['teachers']} else RUN}/models/merged/{merged_name(spec)}"
    for name, spec in ((name, ModelSpec.from_config(name, cfg)) for name, cfg in config["models"].items())
    if needs_merge(spec)
}


def model_input(name):
    """A model's checkpoint as a rule input when this workflow makes it (the tiny zoo's, or merged
    with its adapter), else nothing."""
    if name in MERGED:
        return [MERGED[name]]
    ckpt = config["models"][name]["checkpoint"]
    return [ckpt] if is_tiny(ckpt) else []


def merged_checkpoint_args(name, paths):
    """`--merged-checkpoint DIR` of a job that loads models.<name>, from its model input (none when
    the job loads checkpoint and adapter itself)."""
    return ["--merged-checkpoint", paths[0]] if name in MERGED else []


def model_gpus(name):
    """GPUs a job that loads models.<name> asks for: its tensor parallelism (one GPU per shard of
    the model under vLLM; transformers runs on one)."""
    spec = config["models"].get(name)
    return spec["tensor_parallel_size"] if spec else 1


def student_tokenizer():
    """Where the student's tokenizer loads from (trace_stats counts the tokens with it)."""
    spec = config["models"].get(config["student"]["model"], {})
    return spec.get("processor") or spec.get("checkpoint")


# ---- teachers and merger --------------------------------------------------------------------
TEACHERS = {t["name"]: t for t in config["teachers"]}
SIGHTSOUND = config["sightsound"]
# SightSound-R1's audio student reads "audio" where a question says "video": in its SFT traces,
# GRPO prompts and evaluation (a param of those rules).
AUDIO_TEXT = audio_text_questions(config)


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


def merges():
    """Whether the merger runs: an AVRT run whose SFT set is the merged traces (filter.source merged),
    not one teacher's own traces."""
    return bool(config["teachers"]) and not SIGHTSOUND["enabled"] and config["filter"]["source"] == "merged"


def filter_inputs():
    """The rows the SFT set is chosen from: the merged traces, or every teacher's traces (the modes
    and the difficulty read each teacher's answer) when filter.source names one teacher."""
    if merges():
        return [f"{MERGED_RUN}/merged/{shard}.jsonl" for shard in SHARDS]
    return [f"{TRACES_RUN}/traces/{t}/{shard}.jsonl" for t in TEACHERS for shard in SHARDS]


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

        out = {
            b: {"annotations": f"{SYNTH_BENCH}/{layout.annotations}", "media_dir": f"{SYNTH_BENCH}/{layout.media_dir}"}
            for b, layout in synthetic_layouts().items()
        }
        if config["data"]["synthetic"] and "val" in config["data"]["synthetic"]["clips"]:
            out["avqa_val"] = {
                "annotations": f"{DATA_RUN}/synthetic/annotations/val_qa.json",
                "media_dir": f"{DATA_RUN}/synthetic/videos",
            }
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


def compare_rows():
    """compare.rows as `avrt compare` arguments: results/<name>[:tag], {run} and {upstream_run} filled in."""
    names = {"{run}": config["run"], "{upstream_run}": config["upstream_run"]}
    rows = []
    for row in config["compare"]["rows"]:
        name, sep, tag = row.partition(":")
        rows.append(f"results/{names.get(name, name)}{sep}{tag}")
    return rows


def stage_final(stage):
    """The checkpoint a training stage publishes when it ends (its rule's output)."""
    return f"{SFT_RUN if stage == 'sft' else RUN}/checkpoints/{stage}/final"


def stage_checkpoint(stage):
    """The checkpoint of a training stage that later stages load (GRPO's start, evaluation's stage
    rows): best/ when `<stage>.select_checkpoint` is best_val (rule select_checkpoint), else final/."""
    if config[stage]["select_checkpoint"] == "best_val":
        check_selection(stage)
        return f"{RUN}/checkpoints/{stage}/best"
    return stage_final(stage)


def check_selection(stage):
    """Stop before any job runs when the best checkpoint of `stage` cannot be selected."""
    if config[stage]["save_total_limit"] is not None:
        raise WorkflowError(
            f"config key '{stage}.save_total_limit' is {config[stage]['save_total_limit']}: with"
            f" {stage}.select_checkpoint best_val every checkpoint competes, so the trainer must keep all (null)"
        )
    bench = config[stage]["select_benchmark"]
    if bench not in eval_benchmarks():
        raise WorkflowError(
            f"config key '{stage}.select_benchmark': {bench!r} is not evaluated in this run"
            f" (evaluated: {sorted(eval_benchmarks())})"
        )


def eval_model_input(tag):
    entry = EVAL["models"][tag]
    return [stage_checkpoint(entry["stage"])] if entry["stage"] else model_input(entry["model"])


def eval_model_reads(tag):
    """What an evaluation job reads of its model's spec: the sampling it decodes with, and for a
    trained stage not the spec's checkpoint and revision (the stage's checkpoint, an input, replaces them)."""
    entry = EVAL["models"][tag]
    return model_reads(
        entry["model"], without=("checkpoint", "revision") if entry["stage"] else (), **EVALUATION_SAMPLING
    )


# ---- training -------------------------------------------------------------------------------
def trains():
    """Whether the run trains: SFT on its own traces or a given SFT set, or GRPO alone from the base
    model (grpo.init base, which needs no traces)."""
    return bool(config["teachers"]) or config["sft"]["data"]["source"] != "avrt20k" or config["grpo"]["init"] == "base"


def sft_tags():
    return [tag for tag, entry in EVAL["models"].items() if entry["stage"] == "sft"]


def trains_sft():
    """Whether a job loads the SFT checkpoint: GRPO starting from it, or an evaluation tag of stage
    sft. With grpo.init base and no such tag, the DAG holds no SFT job."""
    if config["grpo"]["init"] == "sft":
        return trains()
    if sft_tags() and not config["teachers"] and config["sft"]["data"]["source"] == "avrt20k":
        raise WorkflowError(
            f"config key 'evaluation.models.{sft_tags()[0]}.stage' is sft, but this run has no SFT set"
            " (no teachers, sft.data.source avrt20k): drop the tag (set it to null) or give SFT its data"
        )
    return bool(sft_tags())


def grpo_start():
    """GRPO's starting checkpoint as its rule's input: the SFT stage's (grpo.init sft), or nothing
    for the base model, which loads from the student's spec (a tiny demo checkpoint is an input)."""
    if config["grpo"]["init"] == "sft":
        return [stage_checkpoint("sft")]
    return model_input(config["student"]["model"])


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
    paths = [f"{DATA_RUN}/data/manifest.jsonl", f"{DATA_RUN}/data/attrition_all.tsv"]
    paths += [f"{DATA_RUN}/data/shards/{s}.jsonl" for s in SHARDS] + [f"{DATA_RUN}/media/{s}.jsonl" for s in SHARDS]
    if SIGHTSOUND["enabled"]:
        paths += [f"{TRACES_RUN}/traces/{t}/{s}.jsonl" for t in TEACHERS for s in SHARDS]
        paths += [f"{RUN}/sightsound/sft/train.jsonl", f"{RUN}/sightsound/sft/val.jsonl"]
    elif config["teachers"]:
        paths += [f"{TRACES_RUN}/traces/{t}/{s}.jsonl" for t in TEACHERS for s in SHARDS]
        paths += [f"{MERGED_RUN}/merged/{s}.jsonl" for s in SHARDS] if merges() else []
        paths += [f"{SET_RUN}/avrt20k/train.jsonl", f"{SET_RUN}/avrt20k/val.jsonl"]
    if trains():  # the final checkpoints with their summaries (weights are checksummed too)
        paths += ([stage_checkpoint("sft")] if trains_sft() else []) + [stage_checkpoint("grpo")]
    if EVAL["models"] and eval_benchmarks():
        paths += [f"{RUN}/eval/{t}/{b}/{m}.result.json" for t, b, m in eval_runs()]
        paths += [f"{RUN}/tables/table3.csv", f"{RUN}/tables/per_benchmark.csv", f"{RUN}/tables/table9.csv"]
        teachers = list(difficulty_teacher_results().values())  # Table 8's teacher results
        paths += teachers + ([f"{RUN}/tables/table8.csv"] if teachers else [])
    if config["judge"]:
        paths += [f"{RUN}/judge/verdicts.jsonl", f"{RUN}/judge/sources.jsonl", f"{RUN}/tables/table_a1.csv"]
    return paths


# ---- paths no rule makes --------------------------------------------------------------------
def names_local_path(source):
    """Whether a model source is a local path: a hub id is `owner/name`."""
    return os.path.isabs(source) or source.startswith((".", "~")) or source.count("/") > 1


def used_models():
    """The `models` entries this run loads: its teachers, the merger (AVRT) or the checker
    (SightSound-R1), the student, the models it evaluates and the trace judge. A config may keep others (the demo
    recipe of SightSound-R1 layers on the AVRT demo's models without using them)."""
    names = {teacher["model"] for teacher in config["teachers"]}
    if SIGHTSOUND["enabled"]:
        names.add(SIGHTSOUND["checker"])
    elif merges():
        names.add(config["merger"]["model"])
    if trains():
        names.add(config["student"]["model"])
    names |= {entry["model"] for entry in EVAL["models"].values()}
    if config["judge"]:
        names.add(config["judge"]["model"])
    return sorted(name for name in names if name in config["models"])


def missing_paths():
    """(config key, path) of each local path a model the run loads names, that no rule makes and is missing."""
    missing = []
    for name in used_models():
        spec = config["models"][name]
        for key in ("checkpoint", "processor", "adapter"):
            source = spec.get(key)
            if (
                source
                and names_local_path(source)
                and not is_tiny(source)
                and not os.path.exists(os.path.expanduser(source))
            ):
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
    missing = missing_paths()
    if missing:
        raise WorkflowError(
            "nothing was run: these config keys name paths that do not exist\n"
            + "\n".join(f"  {key}: {path!r}" for key, path in missing)
        )
