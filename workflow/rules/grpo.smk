# Training, stage 2: GRPO of the SFT student on the AVQA train questions (paper Sec. 3.2, 4.3). It
# starts from SFT's final checkpoint, or its best one with sft.select_checkpoint best_val; with
# grpo.init base from the student's own checkpoint (the RL-only ablation), and no SFT job runs for it.
#
# Launched like SFT (one process per GPU; srun + torchrun on several nodes). Intermediate
# checkpoints, grpo_metrics.jsonl and TensorBoard files sit next to `final/`, so a rerun after
# preemption or requeue resumes from the newest complete checkpoint.
from avrt.training.launch import launch_prefix, slurm_resources

GRPO = config["grpo"]
# grpo keys that change neither the final checkpoint nor its summary: how many older checkpoints
# are kept, where metrics are reported, the data-loading processes, the share of GPU memory the
# vLLM rollout engine takes, which checkpoint evaluation loads (rule select_checkpoint reads those),
# and gradient checkpointing (it recomputes activations; the gradients are the same).
GRPO_SIDE_KEYS = (
    "save_total_limit",
    "report_to",
    "dataloader_num_workers",
    "vllm_gpu_memory_utilization",
    "select_checkpoint",
    "select_benchmark",
    "gradient_checkpointing",
)


rule grpo:
    input:
        start=grpo_start(),
        shards=[f"{DATA_RUN}/data/shards/{shard}.jsonl" for shard in SHARDS],
        media=[f"{DATA_RUN}/media/{shard}.jsonl" for shard in SHARDS],
        labels=grpo_label_files(),
    output:
        directory(stage_final("grpo")),
    log:
        f"{LOGS}/grpo.log",
    benchmark:
        f"{BENCHMARKS}/grpo.jsonl"
    conda:
        "../../envs/training.yaml"
    resources:
        **slurm_resources(GRPO["num_gpus"], GRPO["num_nodes"]),
    params:
        run_config=RUN_CONFIG,
        launch=launch_prefix(GRPO["num_gpus"], GRPO["num_nodes"]),
        # what the job reads of the config (a change re-runs it); rollouts sample with grpo's
        # temperature and max_completion_length, never with the spec's sampling
        grpo=reads({key: value for key, value in GRPO.items() if key not in GRPO_SIDE_KEYS}),
        student=reads(config["student"]),
        spec=model_reads(config["student"]["model"], without=("sampling",)),
        audio_text=AUDIO_TEXT,
    shell:
        # without --checkpoint GRPO loads the student's spec (checkpoint at its revision)
        "{params.launch} grpo --config {params.run_config:q}"
        + (" --checkpoint {input.start:q}" if GRPO["init"] == "sft" else "")
        + " --shards {input.shards:q} --media {input.media:q} --labels {input.labels:q} --out {output:q} > {log:q} 2>&1"
