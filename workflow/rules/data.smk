# Data stage: AVQA (or its synthetic stand-in) -> checked manifest -> shards -> media per shard.


if config["data"]["synthetic"]:

    rule synthesize_avqa:
        output:
            annotations=[f"{RUN}/synthetic/annotations/{s}_qa.json" for s in avqa_annotations()],
            videos=directory(f"{RUN}/synthetic/videos"),
        params:
            clips=lambda w: ",".join(f"{k}={v}" for k, v in config["data"]["synthetic"]["clips"].items()),
            faults=lambda w: ",".join(f"{k}={v}" for k, v in config["data"]["synthetic"]["faults"].items()),
            s=lambda w: config["data"]["synthetic"],
            out=lambda w, output: os.path.dirname(output.videos),
        log:
            f"{LOGS}/synthesize_avqa.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "avrt synth --out {params.out} --clips {params.clips} --faults '{params.faults}'"
            " --seconds {params.s[seconds]} --width {params.s[width]} --height {params.s[height]}"
            " --fps {params.s[fps]} --seed {params.s[seed]} > {log} 2>&1"


rule ingest_avqa:
    input:
        annotations=list(avqa_annotations().values()),
        clips=avqa_clips_dir() if config["data"]["synthetic"] else [],
    output:
        manifest=f"{RUN}/data/manifest.jsonl",
        attrition=f"{RUN}/data/attrition.tsv",
        summary=f"{RUN}/data/ingest_summary.json",
    params:
        annotations=" ".join(f"{k}={v}" for k, v in avqa_annotations().items()),
        clips_dir=lambda w, input: input.clips or avqa_clips_dir(),
        clip_ext=config["data"]["avqa"]["clip_ext"],
        min_duration=config["data"]["checks"]["min_duration_s"],
        out=lambda w, output: os.path.dirname(output.manifest),
    threads: config["data"]["checks"]["workers"]
    log:
        f"{LOGS}/ingest_avqa.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt ingest --annotations {params.annotations} --clips-dir {params.clips_dir}"
        " --clip-ext {params.clip_ext} --min-duration {params.min_duration}"
        " --workers {threads} --out {params.out} > {log} 2>&1"


rule shard_manifest:
    input:
        f"{RUN}/data/manifest.jsonl",
    output:
        [f"{RUN}/data/shards/{shard}.jsonl" for shard in SHARDS],
    log:
        f"{LOGS}/shard_manifest.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt shard --manifest {input} --outputs {output} > {log} 2>&1"


rule prepare_media:
    input:
        f"{RUN}/data/shards/{{shard}}.jsonl",
    output:
        f"{RUN}/media/{{shard}}.jsonl",
    params:
        media=lambda w: shell_json(config["media"]),
    threads: 4
    log:
        f"{LOGS}/prepare_media/{{shard}}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt media --shard {input} --index {output} --params {params.media}"
        " --workers {threads} > {log} 2>&1"


rule data_summary:
    input:
        ingest=f"{RUN}/data/ingest_summary.json",
        attrition=f"{RUN}/data/attrition.tsv",
        shards=[f"{RUN}/data/shards/{shard}.jsonl" for shard in SHARDS],
        media=[f"{RUN}/media/{shard}.jsonl" for shard in SHARDS],
    output:
        summary=f"{RUN}/data/data_summary.json",
        attrition=report(
            f"{RUN}/data/attrition_all.tsv",
            caption="../report/attrition.rst",
            category="Data",
        ),
        counts=report(
            f"{RUN}/data/attrition_counts.tsv",
            caption="../report/attrition_counts.rst",
            category="Data",
        ),
    log:
        f"{LOGS}/data_summary.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt data-summary --ingest-summary {input.ingest} --attrition {input.attrition}"
        " --shards {input.shards} --media {input.media} --out-summary {output.summary}"
        " --out-attrition {output.attrition} --out-counts {output.counts} > {log} 2>&1"
