# Data stage: AVQA (or its synthetic stand-in) -> checked manifest -> shards -> media per shard.


if config["data"]["synthetic"]:

    rule synthesize_avqa:
        output:
            annotations=[f"{DATA_RUN}/synthetic/annotations/{s}_qa.json" for s in avqa_annotations()],
            videos=directory(f"{DATA_RUN}/synthetic/videos"),
        log:
            f"{DATA_RUN}/logs/synthesize_avqa.log",
        benchmark:
            f"{DATA_RUN}/logs/benchmarks/synthesize_avqa.jsonl"
        conda:
            "../../envs/data.yaml"
        params:
            run_config=f"{DATA_RUN}/config.yaml",
            synthetic=reads(config["data"]["synthetic"]),
            out=lambda w, output: os.path.dirname(output.videos),
        shell:
            "avrt synth --config {params.run_config:q} --out {params.out:q} > {log:q} 2>&1"


rule ingest_avqa:
    input:
        annotations=list(avqa_annotations().values()),
        clips=avqa_clips_dir() if config["data"]["synthetic"] else [],
    output:
        manifest=f"{DATA_RUN}/data/manifest.jsonl",
        attrition=f"{DATA_RUN}/data/attrition.tsv",
        summary=f"{DATA_RUN}/data/ingest_summary.json",
    log:
        f"{DATA_RUN}/logs/ingest_avqa.log",
    benchmark:
        f"{DATA_RUN}/logs/benchmarks/ingest_avqa.jsonl"
    conda:
        "../../envs/data.yaml"
    threads: config["data"]["checks"]["workers"]
    params:
        run_config=f"{DATA_RUN}/config.yaml",
        annotations=[f"{k}={v}" for k, v in avqa_annotations().items()],
        clips_dir=lambda w, input: input.clips or avqa_clips_dir(),
        clip_ext=config["data"]["avqa"]["clip_ext"],
        min_duration=config["data"]["checks"]["min_duration_s"],
        out=lambda w, output: os.path.dirname(output.manifest),
    shell:
        "avrt ingest --config {params.run_config:q} --annotations {params.annotations:q} --clips-dir {params.clips_dir:q}"
        " --workers {threads} --out {params.out:q} > {log:q} 2>&1"


rule shard_manifest:
    input:
        f"{DATA_RUN}/data/manifest.jsonl",
    output:
        [f"{DATA_RUN}/data/shards/{shard}.jsonl" for shard in SHARDS],
    log:
        f"{DATA_RUN}/logs/shard_manifest.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt shard --manifest {input:q} --outputs {output:q} > {log:q} 2>&1"


rule prepare_media:
    input:
        f"{DATA_RUN}/data/shards/{{shard}}.jsonl",
    output:
        f"{DATA_RUN}/media/{{shard}}.jsonl",
    log:
        f"{DATA_RUN}/logs/prepare_media/{{shard}}.log",
    benchmark:
        f"{DATA_RUN}/logs/benchmarks/prepare_media/{{shard}}.jsonl"
    conda:
        "../../envs/data.yaml"
    threads: 4
    params:
        run_config=f"{DATA_RUN}/config.yaml",
        media=reads(config["media"]),
    shell:
        "avrt media --config {params.run_config:q} --shard {input:q} --index {output:q} --workers {threads} > {log:q} 2>&1"


rule data_summary:
    input:
        ingest=f"{DATA_RUN}/data/ingest_summary.json",
        attrition=f"{DATA_RUN}/data/attrition.tsv",
        shards=[f"{DATA_RUN}/data/shards/{shard}.jsonl" for shard in SHARDS],
        media=[f"{DATA_RUN}/media/{shard}.jsonl" for shard in SHARDS],
    output:
        summary=f"{DATA_RUN}/data/data_summary.json",
        attrition=report(
            f"{DATA_RUN}/data/attrition_all.tsv",
            caption="../report/attrition.rst",
            category="Data",
        ),
        counts=report(
            f"{DATA_RUN}/data/attrition_counts.tsv",
            caption="../report/attrition_counts.rst",
            category="Data",
        ),
    log:
        f"{DATA_RUN}/logs/data_summary.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt data-summary --ingest-summary {input.ingest:q} --attrition {input.attrition:q}"
        " --shards {input.shards:q} --media {input.media:q} --out-summary {output.summary:q}"
        " --out-attrition {output.attrition:q} --out-counts {output.counts:q} > {log:q} 2>&1"
