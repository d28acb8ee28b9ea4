# Training, stage 2: GRPO of the SFT student on the AVQA train questions (paper Sec. 3.2, 4.3).
#
# Launched like SFT (one process per GPU; srun + torchrun on several nodes). Intermediate
# checkpoints, grpo_metrics.jsonl and TensorBoard files sit next to `final/`, so a rerun after
# preemption or requeue resumes from the newest complete checkpoint.
from avrt.training.launch import launch_prefix, slurm_resources

GRPO = config["grpo"]


rule grpo:
    input:
        sft=stage_checkpoint("sft"),
        shards=[f"{RUN}/data/shards/{shard}.jsonl" for shard in SHARDS],
        media=[f"{RUN}/media/{shard}.jsonl" for shard in SHARDS],
        labels=grpo_label_files(),
    output:
        directory(stage_checkpoint("grpo")),
    params:
        run_config=RUN_CONFIG,
        launch=launch_prefix(GRPO["num_gpus"], GRPO["num_nodes"]),
        # what the job reads of the config (a change re-runs it)
        grpo=GRPO,
        student=config["student"],
        spec=config["models"][config["student"]["model"]],
    resources:
        **slurm_resources(GRPO["num_gpus"], GRPO["num_nodes"]),
    log:
        f"{LOGS}/grpo.log",
    conda:
        "../../envs/training.yaml"
    shell:
        "{params.launch} grpo --config {params.run_config:q} --checkpoint {input.sft:q} --shards {input.shards:q}"
        " --media {input.media:q} --labels {input.labels:q} --out {output:q} > {log:q} 2>&1"
