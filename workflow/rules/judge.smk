# Trace-quality judge (paper appendix 0.A.1, Table 0.A.1), only when `judge` is set: an omni model
# grades sampled AVRT-20K traces, then names the source of each hallucinating one from the merged
# row and both teachers' rows (config/recipes/trace-judge.yaml). It reads those where they lie (an
# upstream run's, when this run shares them) and writes under this run's judge/ and tables/.

JUDGE = config["judge"]

if JUDGE:
    if not config["teachers"] or SIGHTSOUND["enabled"]:
        raise WorkflowError(
            "config key 'judge': the judge grades the run's AVRT-20K traces, and this run makes none"
            " (it needs `teachers`, without sightsound.enabled)"
        )

    rule judge_traces:
        input:
            # the merged rows and the teacher rows they were merged from; none when the SFT set is
            # one teacher's own traces (no merger, no source analysis)
            merged=[f"{MERGED_RUN}/merged/{shard}.jsonl" for shard in SHARDS] if merges() else [],
            teacher_traces=(
                [f"{TRACES_RUN}/traces/{t}/{shard}.jsonl" for t in merge_teachers().values() for shard in SHARDS]
                if merges()
                else []
            ),
            traces=f"{SET_RUN}/avrt20k/{JUDGE['split']}.jsonl",
            model=lambda w: model_input(JUDGE["model"]),
        output:
            verdicts=f"{RUN}/judge/verdicts.jsonl",
            sources=f"{RUN}/judge/sources.jsonl",
            table=report(f"{RUN}/tables/table_a1.md", caption="../report/table_a1.rst", category="Results"),
            csv=f"{RUN}/tables/table_a1.csv",
        log:
            f"{LOGS}/judge_traces.log",
        benchmark:
            f"{BENCHMARKS}/judge_traces.jsonl"
        conda:
            "../../envs/inference.yaml"
        resources:
            gpu=model_gpus(JUDGE["model"]),
        params:
            run_config=RUN_CONFIG,
            # what the job reads from the run config (a change re-runs it)
            judge=reads(JUDGE),
            # the judge answers each prompt once, whatever its spec's sampling.n
            spec=model_reads(JUDGE["model"], n=1),
            # the source analysis shows the teachers' texts as the merger read them
            teacher_text=config["merger"]["teacher_text"] if merges() else None,
            out=lambda w, output: os.path.dirname(output.table),
        shell:
            "avrt judge-traces --config {params.run_config:q} --traces-file {input.traces:q}"
            " --merged {input.merged:q} --teacher-traces {input.teacher_traces:q} --out-verdicts {output.verdicts:q}"
            " --out-sources {output.sources:q} --out-tables {params.out:q} > {log:q} 2>&1"
