# Training: SFT of the student on reasoning traces (stage 1; GRPO, stage 2, starts from its output).
#
# One process per GPU: plain `avrt` for one process (the CPU demo), torchrun on one node, and on
# several nodes (sft.num_nodes > 1) srun + torchrun with c10d rendezvous inside the Slurm job.
# A rerun after preemption or requeue resumes from the newest complete checkpoint next to `final/`.
from avrt.training.launch import launch_prefix, slurm_resources

SFT = config["sft"]
# sft keys that change neither the final checkpoint nor its summary: how many older checkpoints are
# kept, where metrics are reported, the data-loading processes (the data order is the sampler's),
# which checkpoint later stages load (rule select_checkpoint reads those), and gradient checkpointing
# (it recomputes activations; the gradients are the same).
SFT_SIDE_KEYS = (
    "save_total_limit",
    "report_to",
    "dataloader_num_workers",
    "select_checkpoint",
    "select_benchmark",
    "gradient_checkpointing",
)
if SFT["data"]["source"] == "released" and not SFT["data"]["released_train"]:
    raise WorkflowError("config key 'sft.data.released_train' must list the released AVRT-20K files")
_SHARD_MANIFESTS = [f"{DATA_RUN}/data/shards/{shard}.jsonl" for shard in SHARDS]
# Training and validation files of each SFT source (sft.data.source).
# `avrt20k` is this run's own trace set: AVRT-20K, or the SightSound-R1 export when that recipe runs.
_OWN_TRACES = f"{RUN}/sightsound/sft" if SIGHTSOUND["enabled"] else f"{SET_RUN}/avrt20k"
SFT_EXAMPLES = {
    "avrt20k": {"train": [f"{_OWN_TRACES}/train.jsonl"], "val": [f"{_OWN_TRACES}/val.jsonl"]},
    "released": {"train": SFT["data"]["released_train"], "val": SFT["data"]["released_val"]},
    # demo and tests: the shard manifests; their train split trains, their val split is held out
    "template": {"train": _SHARD_MANIFESTS, "val": _SHARD_MANIFESTS},
}[SFT["data"]["source"]]


rule sft:
    input:
        train=SFT_EXAMPLES["train"],
        val=SFT_EXAMPLES["val"],
        media=[f"{DATA_RUN}/media/{shard}.jsonl" for shard in SHARDS],
        model=model_input(config["student"]["model"]),
    output:
        directory(stage_final("sft")),
    log:
        f"{SFT_RUN}/logs/sft.log",
    benchmark:
        f"{SFT_RUN}/logs/benchmarks/sft.jsonl"
    conda:
        "../../envs/training.yaml"
    resources:
        **slurm_resources(SFT["num_gpus"], SFT["num_nodes"]),
    params:
        run_config=f"{SFT_RUN}/config.yaml",
        launch=launch_prefix(SFT["num_gpus"], SFT["num_nodes"]),
        # what the job reads of the config (a change re-runs it); training never decodes with the
        # spec's sampling (evaluation does)
        sft=reads({key: value for key, value in SFT.items() if key not in SFT_SIDE_KEYS}),
        student=reads(config["student"]),
        spec=model_reads(config["student"]["model"], without=("sampling",)),
    shell:
        "{params.launch} sft --config {params.run_config:q} --train {input.train:q} --val {input.val:q} --media {input.media:q}"
        " --out {output:q} > {log:q} 2>&1"
