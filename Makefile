# Two entry points for a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv with pinned versions first (no vLLM/DeepSpeed); the demo and the tests run
# on the CPU. `pip install torch==...` from PyPI installs PyPI's default Linux build, which
# includes the CUDA libraries (nvidia-* and triton wheels, about 3 GB to download, over 5 GB
# installed). On a machine that can reach PyTorch's CPU wheel index, install the CPU-only build
# of the same versions instead:
#   make setup TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2
TORCH_INDEX ?=
# where `make dryrun-full` writes its stub annotation files (git-ignored)
DRYRUN_STUBS ?= results/dryrun-stubs
# Rules call the `avrt` CLI of this venv.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo demo-sightsound demo-recipe test test-fast lint mutation dryrun-full report bench gpu-check clean-demo

setup: $(VENV)/.installed

# torch first, pinned, so that nothing later resolves a different build; then the package.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_INDEX) torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/snakemake --profile profiles/local --cores $(CORES)

# The SightSound-R1 recipe on the demo (tiny models in place of the real checkpoints): runs the
# rules `make demo` does not (sightsound_consensus, agfv, sightsound_export).
demo-sightsound: setup
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --configfile config/demo.yaml \
		config/recipes/sightsound-r1.yaml config/recipes/sightsound-r1-demo.yaml

# A paper recipe (config/recipes/<RECIPE>.yaml) on the demo, as run demo-<RECIPE>: it takes the
# stages it shares with the demo from results/demo (run `make demo` first) and makes the rest.
#   make demo-recipe RECIPE=rl-only
demo-recipe: setup
	@test -n "$(RECIPE)" || { echo "usage: make demo-recipe RECIPE=<a name in config/recipes/>" >&2; exit 2; }
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --configfile config/demo.yaml \
		config/recipes/$(RECIPE).yaml --config run=demo-$(RECIPE) upstream_run=demo

test: setup
	$(BIN)/pytest tests

test-fast: setup
	$(BIN)/pytest -m "not integration and not slurm" tests

lint: setup
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint
	$(BIN)/lint-imports --no-cache

# Mutation testing of the core rule modules (settings: pyproject.toml [tool.mutmut]); results are
# cached in mutants/ (git-ignored), so a rerun only re-tests what changed. Score = killed / (mutants - equivalent).
MUTATION_CHILDREN ?= $(CORES)
mutation: setup
	$(BIN)/mutmut run --max-children $(MUTATION_CHILDREN)
	$(BIN)/python scripts/mutation/report.py --survivors --min-score 90

# `snakemake -n` on the paper's full-scale config. A fresh checkout has no AVQA annotations or
# benchmark files, so the dry run reads stubs of the official AVQA size (the DAG opens no clip).
dryrun-full: setup
	$(BIN)/python -m avrt.demo.dry_run $(DRYRUN_STUBS) config/config.yaml
	$(BIN)/snakemake -n --configfile config/config.yaml $(DRYRUN_STUBS)/overlay.yaml

report: setup
	$(BIN)/snakemake --configfile config/demo.yaml --report results/report.html

bench: setup
	$(BIN)/python scripts/bench/bench_media.py

# Step time, MFU and peak memory of SFT, GRPO and rollouts on this machine's GPU (scripts/gpu_check/README.md;
# on a machine without the venv: PYTHONPATH=src python scripts/gpu_check/run.py). No GPU: GPU_CHECK_ARGS=--tiny
gpu-check: setup
	$(BIN)/python scripts/gpu_check/run.py $(GPU_CHECK_ARGS)

clean-demo:
	rm -rf results/demo
