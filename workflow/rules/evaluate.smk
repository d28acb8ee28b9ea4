# Evaluation: benchmark files -> records -> predictions per model (and modality mask) -> scores -> tables.
from avrt.evaluation import protocols as eval_protocols

# Each benchmark's input protocol (evaluation.benchmark_protocols / teacher_protocols) must exist
# before any job runs; an evaluation job's params hold its protocol's cut, so a changed cut re-runs it.
try:
    eval_protocols.check_protocols(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None


if EVAL["synthetic"]:

    rule synthesize_benchmarks:
        output:
            list(synthetic_benchmark_files().values()),
        log:
            f"{LOGS}/synthesize_benchmarks.log",
        benchmark:
            f"{BENCHMARKS}/synthesize_benchmarks.jsonl"
        conda:
            "../../envs/data.yaml"
        params:
            run_config=RUN_CONFIG,
            synthetic=reads(EVAL["synthetic"]),
            out=lambda w, output: synthetic_benchmarks_root(output[0]),
        shell:
            "avrt eval-synth --config {params.run_config:q} --out {params.out:q} > {log:q} 2>&1"


rule eval_records:
    input:
        lambda w: eval_benchmarks()[w.benchmark]["annotations"],
    output:
        records=f"{RUN}/eval/records/{{benchmark}}.jsonl",
        report=f"{RUN}/eval/records/{{benchmark}}.load_report.json",
    log:
        f"{LOGS}/eval_records/{{benchmark}}.log",
    conda:
        "../../envs/evaluation.yaml"
    params:
        media_dir=lambda w: eval_benchmarks()[w.benchmark]["media_dir"],
    shell:
        "avrt eval-records --benchmark {wildcards.benchmark:q} --annotations {input:q} --media-dir {params.media_dir:q}"
        " --output {output.records:q} --report {output.report:q} > {log:q} 2>&1"


rule evaluate:
    input:
        records=f"{RUN}/eval/records/{{benchmark}}.jsonl",
        model=lambda w: eval_model_input(w.tag),
    output:
        f"{RUN}/eval/{{tag}}/{{benchmark}}/{{mask}}.predictions.jsonl",
    log:
        f"{LOGS}/evaluate/{{tag}}/{{benchmark}}/{{mask}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{tag}}/{{benchmark}}/{{mask}}.jsonl"
    wildcard_constraints:
        mask="both|audio_only|video_only",
    conda:
        "../../envs/inference.yaml"
    resources:
        gpu=lambda w: model_gpus(EVAL["models"][w.tag]["model"]),
    params:
        run_config=RUN_CONFIG,
        entry=lambda w: reads(EVAL["models"][w.tag]),
        spec=lambda w: eval_model_reads(w.tag),
        protocol=lambda w: reads(eval_protocols.rule_params(config, w.benchmark)),
        audio_text=AUDIO_TEXT,
        checkpoint=lambda w, input: (
            f"--checkpoint {shlex.quote(input.model[0])}" if EVAL["models"][w.tag]["stage"] else ""
        ),
        merged=lambda w, input: (
            []
            if EVAL["models"][w.tag]["stage"]
            else merged_checkpoint_args(EVAL["models"][w.tag]["model"], input.model)
        ),
    shell:
        "avrt evaluate --config {params.run_config:q} --records {input.records:q} --benchmark {wildcards.benchmark:q}"
        " --model-tag {wildcards.tag:q} {params.checkpoint} {params.merged:q} --mask {wildcards.mask:q}"
        " --out {output:q} > {log:q} 2>&1"


rule score_benchmark:
    input:
        records=f"{RUN}/eval/records/{{benchmark}}.jsonl",
        predictions=f"{RUN}/eval/{{tag}}/{{benchmark}}/{{mask}}.predictions.jsonl",
    output:
        f"{RUN}/eval/{{tag}}/{{benchmark}}/{{mask}}.result.json",
    log:
        f"{LOGS}/score_benchmark/{{tag}}/{{benchmark}}/{{mask}}.log",
    conda:
        "../../envs/evaluation.yaml"
    shell:
        "avrt eval-score --records {input.records:q} --predictions {input.predictions:q} --output {output:q} > {log:q} 2>&1"


# Difficulty subsets (paper Table 8): a teacher answers one benchmark with its own prompt and modality.
rule evaluate_teacher:
    input:
        records=f"{RUN}/eval/records/{{benchmark}}.jsonl",
        model=lambda w: model_input(TEACHERS[w.teacher]["model"]),
    output:
        f"{RUN}/eval/teachers/{{teacher}}/{{benchmark}}.predictions.jsonl",
    log:
        f"{LOGS}/evaluate_teacher/{{teacher}}/{{benchmark}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_teacher/{{teacher}}/{{benchmark}}.jsonl"
    wildcard_constraints:
        teacher=r"[a-z0-9_]+",
        benchmark=r"[^/]+",
    conda:
        "../../envs/inference.yaml"
    resources:
        gpu=lambda w: model_gpus(TEACHERS[w.teacher]["model"]),
    params:
        run_config=RUN_CONFIG,
        teacher=lambda w: reads(TEACHERS[w.teacher]),
        spec=lambda w: model_reads(TEACHERS[w.teacher]["model"], **EVALUATION_SAMPLING),
        protocol=lambda w: reads(eval_protocols.rule_params(config, w.benchmark, teacher=True)),
        merged=lambda w, input: merged_checkpoint_args(TEACHERS[w.teacher]["model"], input.model),
    shell:
        "avrt evaluate --config {params.run_config:q} --records {input.records:q} --benchmark {wildcards.benchmark:q}"
        " --teacher {wildcards.teacher:q} {params.merged:q} --out {output:q} > {log:q} 2>&1"


rule score_teacher:
    input:
        records=f"{RUN}/eval/records/{{benchmark}}.jsonl",
        predictions=f"{RUN}/eval/teachers/{{teacher}}/{{benchmark}}.predictions.jsonl",
    output:
        f"{RUN}/eval/teachers/{{teacher}}/{{benchmark}}.result.json",
    log:
        f"{LOGS}/score_teacher/{{teacher}}/{{benchmark}}.log",
    wildcard_constraints:
        teacher=r"[a-z0-9_]+",
        benchmark=r"[^/]+",
    conda:
        "../../envs/evaluation.yaml"
    shell:
        "avrt eval-score --records {input.records:q} --predictions {input.predictions:q} --answer-parser teacher"
        " --output {output:q} > {log:q} 2>&1"


rule results_tables:
    input:
        results=[f"{RUN}/eval/{tag}/{bench}/{mask}.result.json" for tag, bench, mask in eval_runs()],
        teachers=list(difficulty_teacher_results().values()),
    output:
        **difficulty_table_outputs(),
        table3=report(f"{RUN}/tables/table3.md", caption="../report/table3.rst", category="Results"),
        csv=f"{RUN}/tables/table3.csv",
        tex=f"{RUN}/tables/table3.tex",
        png=report(f"{RUN}/tables/table3.png", caption="../report/table3.rst", category="Results"),
        table4=report(f"{RUN}/tables/table4.md", caption="../report/table4.rst", category="Results"),
        per_benchmark=report(
            f"{RUN}/tables/per_benchmark.csv", caption="../report/per_benchmark.rst", category="Results"
        ),
        table9=report(f"{RUN}/tables/table9.md", caption="../report/table9.rst", category="Results"),
        table9_csv=f"{RUN}/tables/table9.csv",
    log:
        f"{LOGS}/results_tables.log",
    conda:
        "../../envs/evaluation.yaml"
    params:
        results=[
            f"{tag}:{bench}:{mask}={RUN}/eval/{tag}/{bench}/{mask}.result.json" for tag, bench, mask in eval_runs()
        ],
        base=f"--base {shlex.quote(EVAL['base_model'])}" if EVAL["base_model"] else "",
        difficulty=difficulty_table_args(),
        out=lambda w, output: os.path.dirname(output.table3),
    shell:
        "avrt eval-tables --results {params.results:q} {params.base} {params.difficulty} --out-dir {params.out:q} > {log:q} 2>&1"


if config["compare"] and EVAL["models"] and eval_benchmarks():

    # After this run's evaluation: the other rows' runs are read as they are then, not waited for
    # (another run is another workflow); a row without results shows as missing.
    rule compare_runs:
        input:
            [f"{RUN}/eval/{tag}/{bench}/{mask}.result.json" for tag, bench, mask in eval_runs()],
        output:
            md=report(
                f"{RUN}/compare/{config['compare']['stem']}.md", caption="../report/compare.rst", category="Results"
            ),
            csv=f"{RUN}/compare/{config['compare']['stem']}.csv",
            tex=f"{RUN}/compare/{config['compare']['stem']}.tex",
            png=f"{RUN}/compare/{config['compare']['stem']}.png",
        log:
            f"{LOGS}/compare_runs.log",
        conda:
            "../../envs/data.yaml"
        params:
            rows=compare_rows(),
            tag=config["compare"]["tag"],
            benchmarks=["--benchmarks", *config["compare"]["benchmarks"]] if config["compare"]["benchmarks"] else [],
            stem=config["compare"]["stem"],
            out=lambda w, output: os.path.dirname(output.md),
        shell:
            "avrt compare {params.rows:q} --tag {params.tag:q} {params.benchmarks:q} --stem {params.stem:q}"
            " --out {params.out:q} --allow-missing > {log:q} 2>&1"
