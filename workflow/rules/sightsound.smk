# SightSound-R1: silent-video teacher traces (rule `teacher`) -> self-consistency -> AGFV -> SFT set.


rule sightsound_consensus:
    input:
        f"{RUN}/traces/{SIGHTSOUND['teacher']}/{{shard}}.jsonl",
    output:
        rows=f"{RUN}/sightsound/consensus/{{shard}}.jsonl",
        counts=f"{RUN}/sightsound/consensus/{{shard}}.counts.json",
    params:
        mode=SIGHTSOUND["consensus"],
    log:
        f"{LOGS}/sightsound_consensus/{{shard}}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt sightsound consensus --traces {input} --mode {params.mode} --out {output.rows}"
        " --out-counts {output.counts} > {log} 2>&1"


rule agfv:
    input:
        consensus=f"{RUN}/sightsound/consensus/{{shard}}.jsonl",
        shard=f"{RUN}/data/shards/{{shard}}.jsonl",
        media=f"{RUN}/media/{{shard}}.jsonl",
        model=lambda w: model_input(SIGHTSOUND["checker"]),
    output:
        f"{RUN}/sightsound/agfv/{{shard}}.jsonl",
    params:
        model=lambda w: model_params(SIGHTSOUND["checker"]),
        prompt=SIGHTSOUND["checker_prompt"],
        chunk=config["traces"]["chunk_size"],
    log:
        f"{LOGS}/agfv/{{shard}}.log",
    conda:
        "../../envs/inference.yaml"
    shell:
        "avrt sightsound agfv --prompt {params.prompt} --model {params.model[spec]} --model-name {params.model[name]}"
        " --consensus {input.consensus} --shard {input.shard} --media {input.media} --out {output}"
        " --chunk-size {params.chunk} > {log} 2>&1"


rule sightsound_export:
    input:
        agfv=[f"{RUN}/sightsound/agfv/{s}.jsonl" for s in SHARDS],
        shards=[f"{RUN}/data/shards/{s}.jsonl" for s in SHARDS],
        counts=[f"{RUN}/sightsound/consensus/{s}.counts.json" for s in SHARDS],
    output:
        train=f"{RUN}/sightsound/sft/train.jsonl",
        val=f"{RUN}/sightsound/sft/val.jsonl",
        counts=report(f"{RUN}/sightsound/sft/counts.tsv", caption="../report/sightsound.rst", category="SightSound-R1"),
    params:
        variant="" if SIGHTSOUND["audio_text_variant"] else "--no-audio-text-variant",
        val_fraction=config["filter"]["val_fraction"],
        seed=config["filter"]["seed"],
    log:
        f"{LOGS}/sightsound_export.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt sightsound export --agfv {input.agfv} --shards {input.shards} --consensus-counts {input.counts}"
        " {params.variant} --val-fraction {params.val_fraction} --seed {params.seed} --out-train {output.train}"
        " --out-val {output.val} --out-counts {output.counts} > {log} 2>&1"
