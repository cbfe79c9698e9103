# pidistill: `make demo` installs everything and builds the demo paper; `make test` runs the tests;
# `make cluster` (on a cluster's login node) builds every pinned environment the paper's jobs run in;
# `make lock` re-resolves the pins (envs/<name>.in -> envs/<name>.txt, the one place for versions).
SHELL := /bin/bash
# The interpreter the virtual environments are made from. Every job starts by importing torch and
# transformers, i.e. by Python running module bodies, so the interpreter's build shows in every job:
# Debian's and Ubuntu's /usr/bin/python3.11 (profile-guided and link-time optimised, one executable)
# does it in about 0.8x the time of pyenv's default build (a shared libpython) on the development
# machine (bench/bench_interpreter.py). PYTHON=... overrides; an existing .venv is kept as it is.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) python3.11)
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# Where `make cluster` puts the environments other than main (main is .venv, the driver's): a
# directory on the filesystem the compute nodes share. Moving it? Set `environments:` in
# config/paper.yaml to match, e.g. `make cluster ENVS=/shared/pidistill-envs`.
ENVS ?= .envs
CLUSTER_ENVS := vllm

.PHONY: demo test install cluster lock latex coq slurm lint bench clean

# A venv from a lock: torch first and on its own, at the lock's version, so no other package pulls a
# different (CUDA) build of it; then the whole lock. $(1) venv directory, $(2) lock file.
define install_lock
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet "$$(grep -m1 '^torch==' $(2))"
	$(1)/bin/pip install --quiet -r $(2)
endef

$(BIN)/.installed: envs/main.txt pyproject.toml
	$(call install_lock,$(VENV),envs/main.txt)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed

# One stamp per environment, newer than its lock once built: editing the lock rebuilds it in place.
$(ENVS)/%/.installed: envs/%.txt
	$(call install_lock,$(ENVS)/$*,$<)
	touch $@

cluster: install $(foreach env,$(CLUSTER_ENVS),$(ENVS)/$(env)/.installed)
	@echo "Environments ready: main = $(VENV), $(foreach env,$(CLUSTER_ENVS),$(env) = $(ENVS)/$(env)). Now: $(BIN)/snakemake --profile slurm all"

lock: install
	$(BIN)/python envs/lock.py

# LaTeX for the paper: installed with apt when latexmk is missing (needs root on Debian/Ubuntu).
latex:
	@command -v latexmk >/dev/null && command -v pdflatex >/dev/null || { \
	  echo "latexmk not found: installing TeX Live with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended >/dev/null; }

# Coq, the proof checker of the formal verifier's tests (and of the demo's formal domain): Debian's
# coq (8.16), installed with apt when coqc is missing (needs root). Lean 4 + Mathlib run on the
# cluster (README, "Formal proofs on the cluster"); no package registry ships them.
coq:
	@command -v coqc >/dev/null || { \
	  echo "coqc not found: installing Coq with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends coq >/dev/null; }

# A real Slurm for tests/test_slurm_e2e.py (slurmctld, slurmd, slurmdbd, munge, MariaDB; Debian packages,
# needs root). The packages' own services are kept from starting (policy-rc.d): the test runs private
# daemons (tests/localslurm.py). Where this cannot install, that test skips and says why.
SLURM_BINARIES := slurmctld slurmd slurmdbd munged mariadbd sbatch sacct
slurm:
	@for b in $(SLURM_BINARIES); do command -v $$b >/dev/null || test -x /usr/sbin/$$b || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Slurm, slurmdbd, munge and MariaDB with apt-get (their services are not started)"; \
	  guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1; fi; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      slurm-wlm slurmdbd munge mariadb-server >/dev/null; } \
	    || echo "could not install Slurm: tests/test_slurm_e2e.py will skip"; \
	  if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	fi

demo: install latex coq
	$(BIN)/snakemake --cores $(CORES) all
	@echo "The paper: results/paper/pidistill.pdf"

# The tests in three steps. First the unit and integration tests, two files at a time (pytest-xdist,
# one worker per core), except the verifiers' files that judge time limits and timeouts (TIMED_TESTS):
# those then run one after another with the machine to themselves. Last the two end-to-end files side
# by side, one worker each: the real DAG keeps the two cores busy, the Slurm run mostly waits for the
# plugin's status checks. On the 2-core development machine the first two steps took 194 + 112 s
# against 422 s all serial.
TIMED_TESTS := tests/test_code_hostile.py tests/test_code_verifier.py tests/test_code_benchmarks.py \
	tests/test_math_verifier.py tests/test_math_benchmarks.py tests/test_formal.py tests/test_evalplus.py
test: install latex coq slurm lint
	$(BIN)/python -m pytest -q --durations=5 -m "not e2e" -n 2 --dist loadfile $(addprefix --ignore=,$(TIMED_TESTS))
	$(BIN)/python -m pytest -q --durations=5 -m "not e2e" $(TIMED_TESTS)
	$(BIN)/python -m pytest -q --durations=5 -m e2e -n 2 --dist loadfile tests/test_pipeline_e2e.py tests/test_slurm_e2e.py

# The workflow's form, as the Snakemake ecosystem checks it: snakefmt (line length in pyproject.toml)
# and Snakemake's own linter, both on the demo config and on the paper's through the slurm profile.
lint: install
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint
	$(BIN)/snakemake --profile slurm --lint

bench: install latex
	$(BIN)/python bench/bench_demo.py

clean:
	rm -rf results logs benchmarks .snakemake
