# GPU smoke test: run it first on a new cluster, before any model job.
#
#   snakemake --profile slurm results/gpu_smoke/2gpu.txt
#
# A job asking for N GPUs must see N GPUs. Slurm setups differ (gres names, --gpus vs --gres,
# how job steps inherit the allocation), and a job step that silently gets fewer GPUs than its
# job (snakemake-executor-plugin-slurm issue #459) would make vLLM tensor parallelism or
# multi-GPU training fail late, or run on one GPU. The report names what Slurm granted
# (SLURM_GPUS_ON_NODE, CUDA_VISIBLE_DEVICES), what `nvidia-smi -L` lists, and what torch sees.


rule gpu_smoke:
    output:
        "results/gpu_smoke/{ngpu}gpu.txt",
    log:
        "results/gpu_smoke/logs/{ngpu}gpu.log",
    wildcard_constraints:
        ngpu=r"[1-9][0-9]*",
    # The GPU rules' environment: the torch that vLLM and training use must see the GPUs.
    conda:
        "../../envs/inference.yaml"
    resources:
        gpu=lambda wildcards: int(wildcards.ngpu),
    shell:
        r"""
        exec 2> {log:q}
        report={output:q}.partial
        {{
            echo "requested_gpus={resources.gpu}"
            echo "host=$(hostname)"
            echo "SLURM_JOB_ID=${{SLURM_JOB_ID:-unset}}"
            echo "SLURM_GPUS_ON_NODE=${{SLURM_GPUS_ON_NODE:-unset}}"
            echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-unset}}"
            if command -v nvidia-smi >/dev/null; then
                nvidia-smi -L 2>&1 || echo "nvidia-smi -L failed with exit code $?"
            else
                echo "nvidia-smi: not found on $(hostname)"
            fi
        }} > "$report"
        if seen=$(python -c 'import torch; print(torch.cuda.device_count())'); then
            echo "torch_cuda_device_count=$seen" >> "$report"
        else
            seen=0
            echo "torch_cuda_device_count=unavailable (torch failed to import)" >> "$report"
        fi
        cat "$report" >&2
        if [ "$seen" -lt {resources.gpu} ]; then
            echo "gpu_smoke: the job asked for {resources.gpu} GPU(s) but torch sees $seen" \
                "(SLURM_GPUS_ON_NODE=${{SLURM_GPUS_ON_NODE:-unset}}," \
                "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-unset}}) on $(hostname)" >&2
            rm -f "$report"
            exit 1
        fi
        mv "$report" {output:q}
        """
