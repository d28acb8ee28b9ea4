# Provenance: the run manifest shown in `snakemake --report`.


rule run_manifest:
    input:
        provenance_artifacts(),
    output:
        report(f"{RUN}/provenance/run_manifest.json", caption="../report/run_manifest.rst", category="Provenance"),
    log:
        f"{LOGS}/run_manifest.log",
    conda:
        "../../envs/data.yaml"
    params:
        run_config=RUN_CONFIG,
        config=reads(config),  # the manifest records the whole config
    shell:
        "avrt run-manifest --config {params.run_config:q} --artifacts {input:q} --out {output:q} > {log:q} 2>&1"


# After every job that has a benchmark file: the run's outputs are its inputs. (The manifest is
# not: it re-runs for settings that change no result, and has no benchmark of its own.)
rule stage_costs:
    input:
        run_outputs(),
    output:
        table=report(f"{RUN}/costs/stage_costs.md", caption="../report/stage_costs.rst", category="Cost"),
        csv=f"{RUN}/costs/stage_costs.csv",
        plot=report(f"{RUN}/costs/stage_costs.png", caption="../report/stage_costs.rst", category="Cost"),
        jobs=f"{RUN}/costs/jobs.json",
    log:
        f"{LOGS}/stage_costs.log",
    conda:
        "../../envs/data.yaml"
    params:
        benchmarks=BENCHMARKS,
        out=lambda w, output: os.path.dirname(output.table),
    shell:
        "avrt stage-costs --benchmarks {params.benchmarks:q} --out {params.out:q} > {log:q} 2>&1"
