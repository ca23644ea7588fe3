# DeBERTa research environment. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Use the active virtual environment if there is one, else create .venv here.
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip
BOOTSTRAP_PYTHON ?= python3
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' DeBERTa/__init__.py)

.PHONY: help install install-test test lint lint-python lint-types dist tools-shellcheck demo report bench gpu-check

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(PYTHON):
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(PYTHON) requirements.txt pyproject.toml
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PIP) install --quiet --disable-pip-version-check -r requirements-test.txt
	@touch $@

install: $(VENV)/.installed ## create .venv (unless one is active), install pinned deps and the package

install-test: $(VENV)/.installed-test ## install the test-only dependencies too

test: install-test ## run the whole test suite
	$(PYTHON) -m pytest -q

lint: lint-python lint-types lint-docker lint-shell ## ruff, mypy on the whole package, hadolint, shellcheck on every script

lint-python: install-test
	$(PYTHON) -m ruff check DeBERTa tests

# mypy's settings (what is checked) are in pyproject.toml.
lint-types: install-test
	$(PYTHON) -m mypy

dist: install-test ## build the sdist and the wheel into dist/ and check them (twine check)
	rm -rf dist
	$(PYTHON) -m build --outdir dist .
	$(PYTHON) -m twine check --strict dist/*

# ---- the main job --------------------------------------------------------------------------------
# MODEL: small (default) or tiny runs the offline demo on the CPU; an official name (base, large) runs the
# real thing: GLUE data for TASK, the model from the hub, the published recipe (experiments/glue/).
MODEL ?= small
TASK ?= SST-2
RUNS ?= demo_output/runs

# OpenMP threads that wait by spinning steal the CPU from each other as soon as anything else runs on
# a small machine; passive waiting measured 5x faster training on a shared 2-core machine.
demo: install ## baselines, pre-training, fine-tuning and report, offline on the CPU (QUICK=1: minutes; MODEL=base TASK=MNLI: the real run)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PYTHON) -m DeBERTa.apps.demo --model $(MODEL) --task $(TASK) $(if $(QUICK),--quick)

report: install ## Markdown table and figures for the run folders under RUNS (default demo_output/runs)
	$(PYTHON) -m DeBERTa.apps.report $(RUNS)

BENCH_ARGS ?=
bench: install-test ## time this DeBERTa against transformers' DeBERTa and BERT (BENCH_ARGS='--repeats 7')
	$(PYTHON) -m DeBERTa.apps.bench --json bench.json $(BENCH_ARGS)

# shellcheck is a system package: install it when we may (root), else say how.
tools-shellcheck:
	@command -v shellcheck >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null; \
	  else echo "make lint needs shellcheck: sudo apt-get install shellcheck" >&2; exit 2; fi; }

lint-shell: tools-shellcheck
lint-docker: install-test
docker-smoke: install-test

GPU_CHECK_ARGS ?=
gpu-check: install-test ## check the GPU path (fp32 parity, fp16/bf16 steps, SDPA kernel, bench, torchrun); a CPU dry run without a GPU
	$(PYTHON) -m DeBERTa.apps.gpu_check $(GPU_CHECK_ARGS)

include docker/docker.mk
