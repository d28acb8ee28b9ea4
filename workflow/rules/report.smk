# Provenance: the run manifest shown in `snakemake --report`.


rule run_manifest:
    input:
        provenance_artifacts(),
    output:
        report(f"{RUN}/provenance/run_manifest.json", caption="../report/run_manifest.rst", category="Provenance"),
    params:
        config=shell_json(config),
    log:
        f"{LOGS}/run_manifest.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt run-manifest --config {params.config} --artifacts {input} --out {output} > {log} 2>&1"
