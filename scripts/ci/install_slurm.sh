#!/usr/bin/env bash
# Install the Debian packages from which the Slurm integration tests start a single-node
# cluster (tests/slurm_cluster.py): slurmctld, slurmd, the client commands and munge.
# Does nothing when they are already installed. Needs root (apt-get); Debian 12 ships
# slurm-wlm 22.05.
set -euo pipefail

needed=(munged slurmctld slurmd sbatch squeue sinfo scontrol scancel)
missing=()
for binary in "${needed[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install_slurm.sh: ${missing[*]} not installed, and installing them needs root" >&2
    echo "  (run as root: apt-get install slurm-wlm munge)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge
