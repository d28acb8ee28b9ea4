# AVRT / SightSound-R1 pipeline. Default run: the embedded demo (config/demo.yaml).
#   snakemake --profile profiles/local                               # demo, on this machine
#   snakemake --profile profiles/slurm --configfile config/config.yaml  # the paper, on a cluster
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/traces.smk"
include: "workflow/rules/sightsound.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/grpo.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/smoke.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
