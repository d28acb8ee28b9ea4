# Two entry points for a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv with pinned versions first (CPU only; no vLLM/DeepSpeed).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2
# Rules call the `avrt` CLI of this venv.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo demo-sightsound test test-fast lint dryrun-full report bench clean-demo

setup: $(VENV)/.installed

# torch first, pinned, so that nothing later resolves a different build; then the package.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/snakemake --profile profiles/local --cores $(CORES)

# The SightSound-R1 recipe on the demo (tiny models in place of the real checkpoints).
demo-sightsound: setup
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --configfile config/demo.yaml \
		config/recipes/sightsound-r1.yaml config/recipes/sightsound-r1-demo.yaml

test: setup
	$(BIN)/pytest tests

test-fast: setup
	$(BIN)/pytest -m "not integration and not slurm" tests

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/lint-imports --no-cache

dryrun-full: setup
	$(BIN)/snakemake -n --configfile config/config.yaml

report: setup
	$(BIN)/snakemake --configfile config/demo.yaml --report results/report.html

bench: setup
	$(BIN)/python scripts/bench/bench_media.py

clean-demo:
	rm -rf results/demo
