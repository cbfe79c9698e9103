# pidistill: `make demo` installs everything and builds the demo paper; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: demo test install latex lint bench clean

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

demo: install latex
	$(BIN)/snakemake --cores $(CORES) all
	@echo "The paper: results/paper/pidistill.pdf"

test: install latex
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/snakemake --lint

bench: install latex
	$(BIN)/python bench/bench_demo.py

clean:
	rm -rf results logs benchmarks .snakemake
