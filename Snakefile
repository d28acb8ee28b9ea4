# AVRT / SightSound-R1 pipeline. Without --configfile it runs config/config.yaml, the AVRT
# paper's recipe at full scale (see workflow/rules/common.smk).
#   snakemake --profile slurm                                     # the paper, on a cluster (README)
#   snakemake --profile profiles/local                            # the demo (its profile names config/demo.yaml)
#   snakemake --configfile config/demo.yaml --cores 2             # the same, without the profile
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/traces.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/sightsound.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/grpo.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/smoke.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
