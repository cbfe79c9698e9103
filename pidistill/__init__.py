"""pidistill: retries, privileged information and self-distillation, rebuilt as a Snakemake DAG.

The package holds the logic of every stage; the Snakemake rules and the scripts they call stay thin.
Heavy dependencies (torch, transformers, peft, trl) are imported only inside the modules that need
them, so light stages (verification, aggregation, tables) start fast.
"""

__version__ = "0.1.0"
