# Checkpoint selection (SightSound-R1 Sec. 4.1: "Best checkpoints are selected by validation accuracy
# for both stages"). With `<stage>.select_checkpoint: best_val` every saved checkpoint of the stage
# and its final one answer the records of `<stage>.select_benchmark` greedily, as evaluation answers
# them; the most accurate (a tie: the later step) is published as checkpoints/<stage>/best/, which
# later stages then load (stage_checkpoint, which also checks the settings). With `final` (AVRT)
# no job of this rule runs.
from avrt.evaluation import protocols as eval_protocols


rule select_checkpoint:
    input:
        final=lambda w: stage_final(w.stage),
        records=lambda w: f"{RUN}/eval/records/{config[w.stage]['select_benchmark']}.jsonl",
    output:
        best=directory(f"{RUN}/checkpoints/{{stage}}/best"),
        scores=f"{RUN}/checkpoints/{{stage}}/checkpoint_scores.json",
        table=f"{RUN}/checkpoints/{{stage}}/checkpoint_scores.md",
    log:
        f"{LOGS}/select_checkpoint/{{stage}}.log",
    benchmark:
        f"{BENCHMARKS}/select_checkpoint/{{stage}}.jsonl"
    wildcard_constraints:
        stage="sft|grpo",
    conda:
        "../../envs/inference.yaml"
    resources:
        gpu=model_gpus(config["student"]["model"]),
    params:
        run_config=RUN_CONFIG,
        # what the job reads of the config: the selection settings, the student as evaluation
        # decodes it (greedy), the benchmark's input protocol and the audio-text questions; the checkpoints are inputs
        select=lambda w: reads({k: config[w.stage][k] for k in ("select_checkpoint", "select_benchmark")}),
        spec=model_reads(config["student"]["model"], without=("checkpoint", "revision"), **EVALUATION_SAMPLING),
        protocol=lambda w: reads(eval_protocols.rule_params(config, config[w.stage]["select_benchmark"])),
        audio_text=AUDIO_TEXT,
    shell:
        "avrt select-checkpoint --config {params.run_config:q} --stage {wildcards.stage:q} --records {input.records:q}"
        " --final {input.final:q} --out {output.best:q} --scores {output.scores:q} --table {output.table:q}"
        " > {log:q} 2>&1"
