# AVRT trace generation: teachers per shard -> merger per shard -> filter -> AVRT-20K.


if tiny_families():

    rule build_tiny_models:
        output:
            [directory(f"{TINY_MODELS}/{family}") for family in tiny_families()],
            zoo=f"{TINY_MODELS}/zoo.json",
        params:
            families=" ".join(tiny_families()),
            out=lambda w, output: os.path.dirname(output.zoo),
        log:
            f"{LOGS}/build_tiny_models.log",
        conda:
            "../../envs/inference.yaml"
        shell:
            "avrt zoo --out {params.out} --families {params.families} > {log} 2>&1"


rule teacher:
    input:
        shard=f"{RUN}/data/shards/{{shard}}.jsonl",
        media=f"{RUN}/media/{{shard}}.jsonl",
        model=lambda w: model_input(TEACHERS[w.teacher]["model"]),
    output:
        f"{RUN}/traces/{{teacher}}/{{shard}}.jsonl",
    wildcard_constraints:
        teacher="|".join(TEACHERS) or "none",
    params:
        teacher=lambda w: shell_json(TEACHERS[w.teacher]),
        model=lambda w: model_params(TEACHERS[w.teacher]["model"]),
        splits=" ".join(config["traces"]["splits"]),
        chunk=config["traces"]["chunk_size"],
    log:
        f"{LOGS}/teacher/{{teacher}}/{{shard}}.log",
    conda:
        "../../envs/inference.yaml"
    shell:
        "avrt teacher --teacher {params.teacher} --model {params.model[spec]} --model-name {params.model[name]}"
        " --splits {params.splits} --shard {input.shard} --media {input.media} --out {output}"
        " --chunk-size {params.chunk} > {log} 2>&1"


rule merge_traces:
    input:
        shard=f"{RUN}/data/shards/{{shard}}.jsonl",
        audio=lambda w: f"{RUN}/traces/{merge_teachers()['audio']}/{w.shard}.jsonl",
        frames=lambda w: f"{RUN}/traces/{merge_teachers()['frames']}/{w.shard}.jsonl",
        model=lambda w: model_input(config["merger"]["model"]),
    output:
        f"{RUN}/merged/{{shard}}.jsonl",
    params:
        model=lambda w: model_params(config["merger"]["model"]),
        prompt=config["merger"]["prompt"],
        teacher_text=config["merger"]["teacher_text"],
        chunk=config["traces"]["chunk_size"],
    log:
        f"{LOGS}/merge_traces/{{shard}}.log",
    conda:
        "../../envs/inference.yaml"
    shell:
        "avrt merge --prompt {params.prompt} --model {params.model[spec]} --model-name {params.model[name]}"
        " --shard {input.shard} --traces audio={input.audio} frames={input.frames}"
        " --teacher-text {params.teacher_text} --chunk-size {params.chunk} --out {output} > {log} 2>&1"


rule filter_traces:
    input:
        [f"{RUN}/merged/{shard}.jsonl" for shard in SHARDS],
    output:
        train=f"{RUN}/avrt20k/train.jsonl",
        val=f"{RUN}/avrt20k/val.jsonl",
        counts=report(
            f"{RUN}/avrt20k/filter_counts.tsv",
            caption="../report/filter_counts.rst",
            category="AVRT-20K",
        ),
        difficulty=f"{RUN}/avrt20k/difficulty.jsonl",
    params:
        mode=config["filter"]["mode"],
        flags=(" --match-count" if config["filter"]["match_count"] else "")
        + ("" if config["filter"]["drop_answer_mismatch"] else " --keep-answer-mismatch"),
        val_fraction=config["filter"]["val_fraction"],
        seed=config["filter"]["seed"],
    log:
        f"{LOGS}/filter_traces.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt filter-traces --merged {input} --mode {params.mode}{params.flags}"
        " --val-fraction {params.val_fraction} --seed {params.seed} --out-train {output.train}"
        " --out-val {output.val} --out-counts {output.counts} --out-difficulty {output.difficulty} > {log} 2>&1"


rule export_avrt20k:
    input:
        train=f"{RUN}/avrt20k/train.jsonl",
        val=f"{RUN}/avrt20k/val.jsonl",
    output:
        directory(f"{RUN}/avrt20k/hf"),
    log:
        f"{LOGS}/export_avrt20k.log",
    conda:
        "../../envs/training.yaml"
    shell:
        "avrt export-avrt20k --train {input.train} --val {input.val} --out {output} > {log} 2>&1"


rule trace_stats:
    input:
        train=f"{RUN}/avrt20k/train.jsonl",
        val=f"{RUN}/avrt20k/val.jsonl",
        manifest=f"{RUN}/data/manifest.jsonl",
        model=lambda w: model_input(config["student"]["model"]),
    output:
        json=f"{RUN}/avrt20k/stats.json",
        png=report(f"{RUN}/avrt20k/stats.png", caption="../report/trace_stats.rst", category="AVRT-20K"),
    params:
        tokenizer=config["models"][config["student"]["model"]]["checkpoint"] if config["student"]["model"] in config["models"] else "",
    log:
        f"{LOGS}/trace_stats.log",
    conda:
        "../../envs/training.yaml"
    shell:
        "avrt trace-stats --train {input.train} --val {input.val} --manifest {input.manifest}"
        " --tokenizer {params.tokenizer} --out-json {output.json} --out-png {output.png} > {log} 2>&1"
