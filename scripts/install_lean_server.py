"""install_lean_server: kimina-lean-server with the Lean toolchain, REPL and Mathlib of one miniF2F
variant, at the versions envs/lean-server.toml pins (pidistill.verifiers.lean_install)."""

from pathlib import Path

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.smk import rule_log
from pidistill.verifiers.lean_install import Installer, LeanPins

with rule_log(snakemake) as log:
    pins = LeanPins.load(snakemake.wildcards.variant, snakemake.input.pins)
    Installer(pins, Path(snakemake.output[0]).parent, log=log.info).install()
