# Provenance: the run manifest shown in `snakemake --report`.


rule run_manifest:
    input:
        provenance_artifacts(),
    output:
        report(f"{RUN}/provenance/run_manifest.json", caption="../report/run_manifest.rst", category="Provenance"),
    params:
        run_config=RUN_CONFIG,
        config=reads(config),  # the manifest records the whole config
    log:
        f"{LOGS}/run_manifest.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "avrt run-manifest --config {params.run_config:q} --artifacts {input:q} --out {output:q} > {log:q} 2>&1"
