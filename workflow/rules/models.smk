# Models the workflow makes from others: a vLLM model's PEFT adapter merged into its checkpoint
# (avrt merge-adapter, src/avrt/models/merged_checkpoint.py). vLLM applies an adapter as a LoRA,
# which cannot carry the base-model weights Audio Flamingo 3's think adapter also holds
# (non_lora_trainables.bin); the jobs that load such a model (teacher, evaluate, evaluate_teacher)
# take the merged checkpoint as input (MERGED, common.smk) and load it in its place.
from avrt.models.merged_checkpoint import MERGE_KEYS

MERGED_MODELS = {os.path.basename(path): name for name, path in MERGED.items()}  # folder -> the model it merges
MERGE_RUNS = sorted({Path(path).parents[2].name for path in MERGED.values()})  # results/<run>/models/merged/
# folder -> what of its model this workflow builds (the tiny zoo's checkpoint and adapter)
MERGE_INPUTS = {
    folder: sorted(
        {config["models"][name][key] for key in ("checkpoint", "adapter") if is_tiny(config["models"][name][key] or "")}
    )
    for folder, name in MERGED_MODELS.items()
}

# Only the teacher and evaluation jobs pass a merged checkpoint on: a model that needs one in
# another role stops the workflow before any job.
for _key, _name in (
    ("merger.model", config["merger"]["model"] if merges() else None),
    ("sightsound.checker", SIGHTSOUND["checker"] if SIGHTSOUND["enabled"] else None),
    ("judge.model", config["judge"]["model"] if config["judge"] else None),
    ("student.model", config["student"]["model"] if trains() else None),
):
    if _name in MERGED:
        raise WorkflowError(
            f"config key '{_key}': models.{_name} runs on vLLM with an adapter, which only the teacher and"
            " evaluation jobs load (merged: rule merge_adapter); use `backend: hf` for it"
        )


# Written and logged under the run folder MERGED names, reading that run's config, as the jobs of a
# stage shared with an upstream run do (src/avrt/shared_stages.py).
rule merge_adapter:
    input:
        lambda w: MERGE_INPUTS[w.merged],
    output:
        directory("results/{merge_run}/models/merged/{merged}"),
    log:
        "results/{merge_run}/logs/merge_adapter/{merged}.log",
    benchmark:
        "results/{merge_run}/logs/benchmarks/merge_adapter/{merged}.jsonl"
    wildcard_constraints:
        merge_run="|".join(re.escape(run) for run in MERGE_RUNS) or "none",
        merged="|".join(re.escape(folder) for folder in MERGED_MODELS) or "none",
    conda:
        "../../envs/inference.yaml"
    params:
        run_config=lambda w: f"results/{w.merge_run}/config.yaml",
        model=lambda w: MERGED_MODELS[w.merged],
        # what the job reads of the spec; the folder's name holds the digest of most of it
        spec=lambda w: reads(
            {key: config["models"][MERGED_MODELS[w.merged]][key] for key in (*MERGE_KEYS, "trust_remote_code")}
        ),
    shell:
        "avrt merge-adapter --config {params.run_config:q} --model {params.model:q} --out {output:q} > {log:q} 2>&1"
