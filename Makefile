# pidistill: `make demo` installs everything and builds the demo paper; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: demo test install latex slurm lint bench clean

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and on its own, so no other package pulls a different (CUDA) build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed

# LaTeX for the paper: installed with apt when latexmk is missing (needs root on Debian/Ubuntu).
latex:
	@command -v latexmk >/dev/null && command -v pdflatex >/dev/null || { \
	  echo "latexmk not found: installing TeX Live with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended >/dev/null; }

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

demo: install latex
	$(BIN)/snakemake --cores $(CORES) all
	@echo "The paper: results/paper/pidistill.pdf"

test: install latex slurm
	$(BIN)/python -m pytest -q --durations=8

lint: install
	$(BIN)/snakemake --lint

bench: install latex
	$(BIN)/python bench/bench_demo.py

clean:
	rm -rf results logs benchmarks .snakemake
