# AVRT trace generation: teachers per shard -> merger per shard -> filter -> AVRT-20K
# (filter.source a teacher: teachers -> filter, the merger does not run).


if tiny_families():

    rule build_tiny_models:
        output:
            [directory(f"{TINY_MODELS}/{family}") for family in tiny_families()],
            zoo=f"{TINY_MODELS}/zoo.json",
        log:
            f"{ZOO_RUN}/logs/build_tiny_models.log",
        benchmark:
            f"{ZOO_RUN}/logs/benchmarks/build_tiny_models.jsonl"
        conda:
            "../../envs/inference.yaml"
        params:
            families=tiny_families(),
            out=lambda w, output: os.path.dirname(output.zoo),
            # the demo's warm-up (demo_warm_up) reads the run config: its models' roles, the media cut
            warm_up=WARM_UP_ARGS,
            warm_up_reads=reads(WARM_UP_READS),
        shell:
            "avrt zoo --out {params.out:q} --families {params.families:q} {params.warm_up:q} > {log:q} 2>&1"


rule teacher:
    input:
        shard=f"{DATA_RUN}/data/shards/{{shard}}.jsonl",
        media=f"{DATA_RUN}/media/{{shard}}.jsonl",
        model=lambda w: model_input(TEACHERS[w.teacher]["model"]),
    output:
        f"{TRACES_RUN}/traces/{{teacher}}/{{shard}}.jsonl",
    log:
        f"{TRACES_RUN}/logs/teacher/{{teacher}}/{{shard}}.log",
    benchmark:
        f"{TRACES_RUN}/logs/benchmarks/teacher/{{teacher}}/{{shard}}.jsonl"
    wildcard_constraints:
        teacher="|".join(TEACHERS) or "none",
    conda:
        "../../envs/inference.yaml"
    resources:
        gpu=lambda w: model_gpus(TEACHERS[w.teacher]["model"]),
    params:
        run_config=f"{TRACES_RUN}/config.yaml",
        # what the job reads from the run config (a change re-runs it)
        teacher=lambda w: reads(TEACHERS[w.teacher]),
        spec=lambda w: model_reads(TEACHERS[w.teacher]["model"]),
        splits=config["traces"]["splits"],
        merged=lambda w, input: merged_checkpoint_args(TEACHERS[w.teacher]["model"], input.model),
    shell:
        "avrt teacher --config {params.run_config:q} --teacher {wildcards.teacher:q} --shard {input.shard:q}"
        " --media {input.media:q} {params.merged:q} --out {output:q} > {log:q} 2>&1"


rule merge_traces:
    input:
        audio=lambda w: f"{TRACES_RUN}/traces/{merge_teachers()['audio']}/{w.shard}.jsonl",
        frames=lambda w: f"{TRACES_RUN}/traces/{merge_teachers()['frames']}/{w.shard}.jsonl",
        model=lambda w: model_input(config["merger"]["model"]),
    output:
        f"{MERGED_RUN}/merged/{{shard}}.jsonl",
    log:
        f"{MERGED_RUN}/logs/merge_traces/{{shard}}.log",
    benchmark:
        f"{MERGED_RUN}/logs/benchmarks/merge_traces/{{shard}}.jsonl"
    conda:
        "../../envs/inference.yaml"
    resources:
        gpu=model_gpus(config["merger"]["model"]),
    params:
        run_config=f"{MERGED_RUN}/config.yaml",
        merger=reads(config["merger"]),
        # the merger answers each question once, whatever its spec's sampling.n
        spec=model_reads(config["merger"]["model"], n=1) if config["merger"]["model"] in config["models"] else {},
    shell:
        "avrt merge --config {params.run_config:q} --traces audio={input.audio:q} frames={input.frames:q}"
        " --out {output:q} > {log:q} 2>&1"


rule filter_traces:
    input:
        filter_inputs(),
    output:
        train=f"{SET_RUN}/avrt20k/train.jsonl",
        val=f"{SET_RUN}/avrt20k/val.jsonl",
        counts=report(
            f"{SET_RUN}/avrt20k/filter_counts.tsv",
            caption="../report/filter_counts.rst",
            category="AVRT-20K",
        ),
        difficulty=f"{SET_RUN}/avrt20k/difficulty.jsonl",
    log:
        f"{SET_RUN}/logs/filter_traces.log",
    benchmark:
        f"{SET_RUN}/logs/benchmarks/filter_traces.jsonl"
    conda:
        "../../envs/data.yaml"
    params:
        run_config=f"{SET_RUN}/config.yaml",
        filter=reads(config["filter"]),
    shell:
        "avrt filter-traces --config {params.run_config:q} --traces {input:q} --out-train {output.train:q}"
        " --out-val {output.val:q} --out-counts {output.counts:q} --out-difficulty {output.difficulty:q} > {log:q} 2>&1"


rule export_avrt20k:
    input:
        train=f"{SET_RUN}/avrt20k/train.jsonl",
        val=f"{SET_RUN}/avrt20k/val.jsonl",
    output:
        directory(f"{SET_RUN}/avrt20k/hf"),
    log:
        f"{SET_RUN}/logs/export_avrt20k.log",
    benchmark:
        f"{SET_RUN}/logs/benchmarks/export_avrt20k.jsonl"
    conda:
        "../../envs/training.yaml"
    shell:
        "avrt export-avrt20k --train {input.train:q} --val {input.val:q} --out {output:q} > {log:q} 2>&1"


rule trace_stats:
    input:
        train=f"{SET_RUN}/avrt20k/train.jsonl",
        val=f"{SET_RUN}/avrt20k/val.jsonl",
        manifest=f"{DATA_RUN}/data/manifest.jsonl",
        model=lambda w: model_input(config["student"]["model"]),
    output:
        json=f"{SET_RUN}/avrt20k/stats.json",
        png=report(f"{SET_RUN}/avrt20k/stats.png", caption="../report/trace_stats.rst", category="AVRT-20K"),
    log:
        f"{SET_RUN}/logs/trace_stats.log",
    benchmark:
        f"{SET_RUN}/logs/benchmarks/trace_stats.jsonl"
    conda:
        "../../envs/training.yaml"
    params:
        run_config=f"{SET_RUN}/config.yaml",
        # the job reads only where the student's tokenizer loads from (it counts the tokens)
        tokenizer=student_tokenizer(),
    shell:
        "avrt trace-stats --config {params.run_config:q} --train {input.train:q} --val {input.val:q}"
        " --manifest {input.manifest:q} --out-json {output.json:q} --out-png {output.png:q} > {log:q} 2>&1"
