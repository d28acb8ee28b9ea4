# SightSound-R1: silent-video teacher traces (rule `teacher`) -> self-consistency -> AGFV -> SFT set.


rule sightsound_consensus:
    input:
        f"{TRACES_RUN}/traces/{SIGHTSOUND['teacher']}/{{shard}}.jsonl",
    output:
        rows=f"{RUN}/sightsound/consensus/{{shard}}.jsonl",
        counts=f"{RUN}/sightsound/consensus/{{shard}}.counts.json",
    log:
        f"{LOGS}/sightsound_consensus/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/sightsound_consensus/{{shard}}.jsonl"
    conda:
        "../../envs/data.yaml"
    params:
        run_config=RUN_CONFIG,
        mode=SIGHTSOUND["consensus"],
    shell:
        "avrt sightsound consensus --config {params.run_config:q} --traces {input:q} --out {output.rows:q}"
        " --out-counts {output.counts:q} > {log:q} 2>&1"


rule agfv:
    input:
        consensus=f"{RUN}/sightsound/consensus/{{shard}}.jsonl",
        model=lambda w: model_input(SIGHTSOUND["checker"]),
    output:
        f"{RUN}/sightsound/agfv/{{shard}}.jsonl",
    log:
        f"{LOGS}/agfv/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/agfv/{{shard}}.jsonl"
    conda:
        "../../envs/inference.yaml"
    resources:
        gpu=model_gpus(SIGHTSOUND["checker"]),
    params:
        run_config=RUN_CONFIG,
        # the checker answers each trace once, whatever its spec's sampling.n
        spec=lambda w: model_reads(SIGHTSOUND["checker"], n=1),
        prompt=SIGHTSOUND["checker_prompt"],
    shell:
        "avrt sightsound agfv --config {params.run_config:q} --consensus {input.consensus:q} --out {output:q} > {log:q} 2>&1"


rule sightsound_export:
    input:
        agfv=[f"{RUN}/sightsound/agfv/{s}.jsonl" for s in SHARDS],
        counts=[f"{RUN}/sightsound/consensus/{s}.counts.json" for s in SHARDS],
    output:
        train=f"{RUN}/sightsound/sft/train.jsonl",
        val=f"{RUN}/sightsound/sft/val.jsonl",
        counts=report(f"{RUN}/sightsound/sft/counts.tsv", caption="../report/sightsound.rst", category="SightSound-R1"),
    log:
        f"{LOGS}/sightsound_export.log",
    benchmark:
        f"{BENCHMARKS}/sightsound_export.jsonl"
    conda:
        "../../envs/data.yaml"
    params:
        run_config=RUN_CONFIG,
        variant=AUDIO_TEXT,
        val_fraction=config["filter"]["val_fraction"],
        seed=config["filter"]["seed"],
    shell:
        "avrt sightsound export --config {params.run_config:q} --agfv {input.agfv:q} --consensus-counts {input.counts:q}"
        " --out-train {output.train:q} --out-val {output.val:q} --out-counts {output.counts:q} > {log:q} 2>&1"
