"""How a training job starts its processes, and the DeepSpeed configuration it hands them.

`launch_prefix(num_gpus, num_nodes)` is the command that runs ``avrt <stage> ...`` with one
process per GPU (the Snakemake rules put it in front of their command):

- 1 process: ``avrt`` itself (the CPU demo; one GPU);
- 1 node, N GPUs: ``torchrun --standalone --nproc-per-node N -m avrt``;
- M nodes: inside a Slurm job, ``srun`` starts one torchrun per node, which meet through c10d
  rendezvous on the first node of ``$SLURM_JOB_NODELIST``; the job id names the rendezvous.

`deepspeed_config(preset)` builds the DeepSpeed JSON from the config's preset. Values marked
"auto" are filled by transformers from the training arguments (batch sizes, accumulation, lr,
betas, eps, weight decay, clipping, bf16), so the config stays the single source of them.
DeepSpeed itself is imported by transformers only when a preset is set; the CPU path never needs it.
"""

from __future__ import annotations

import importlib.util

RDZV_PORT = 29500
PRESETS = ("zero2", "zero2_offload")


def launch_prefix(num_gpus: int, num_nodes: int, port: int = RDZV_PORT) -> str:
    """Shell words that start ``avrt`` once per GPU over `num_nodes` nodes."""
    if num_gpus < 1 or num_nodes < 1:
        raise ValueError(f"num_gpus and num_nodes must be at least 1, got {num_gpus} and {num_nodes}")
    if num_nodes == 1 and num_gpus == 1:
        return "avrt"
    if num_nodes == 1:
        return f"torchrun --standalone --nproc-per-node {num_gpus} -m avrt"
    head = '"$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"'
    return (
        f"srun --nodes {num_nodes} --ntasks-per-node 1 --kill-on-bad-exit=1"
        f" torchrun --nnodes {num_nodes} --nproc-per-node {num_gpus}"
        f' --rdzv-backend c10d --rdzv-endpoint {head}:{port} --rdzv-id "$SLURM_JOB_ID" -m avrt'
    )


def slurm_resources(num_gpus: int, num_nodes: int) -> dict:
    """Rule resources for the Slurm executor plugin.

    One node: ``gpu`` (the plugin's --gpus). Several: ``nodes``, ``mpi="srun"`` (the job step runs
    the command once and the command calls srun itself) and the GPUs per node as an sbatch flag,
    since --gpus counts GPUs over all nodes; the plugin wants a task count above 1 for an MPI job,
    which the launch's own srun then narrows to one task (torchrun) per node.
    """
    if num_nodes == 1:
        return {"gpu": num_gpus}
    return {
        "nodes": num_nodes,
        "mpi": "srun",
        "tasks": num_nodes * num_gpus,
        "slurm_extra": f"--gpus-per-node={num_gpus}",
    }


def deepspeed_config(preset: str, stage: str = "sft") -> dict:
    """DeepSpeed config of a preset: ZeRO stage 2, optimizer states on the CPU for `zero2_offload`."""
    if preset not in PRESETS:
        raise ValueError(f"config key '{stage}.deepspeed': unknown preset {preset!r} (known: {', '.join(PRESETS)}, or null)")
    zero = {
        "stage": 2,
        "allgather_partitions": True,
        "allgather_bucket_size": 2e8,
        "overlap_comm": True,
        "reduce_scatter": True,
        "reduce_bucket_size": "auto",
        "contiguous_gradients": True,
    }
    if preset == "zero2_offload":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    return {
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        # DeepSpeed's own AdamW: with the optimizer offloaded it runs as its CPU Adam.
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"},
        },
        "zero_optimization": zero,
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "steps_per_print": 1000000,  # the trainer logs; DeepSpeed's own step prints are noise
        "wall_clock_breakdown": False,
    }


def require_deepspeed(preset: str | None, stage: str = "sft") -> None:
    """Fail before any model is loaded when a preset is set but DeepSpeed is not installed."""
    if preset and importlib.util.find_spec("deepspeed") is None:
        raise RuntimeError(
            f"config key '{stage}.deepspeed' is {preset!r} but the deepspeed package is not installed; "
            f"install it (envs/training.yaml pins it) or set {stage}.deepspeed: null"
        )
