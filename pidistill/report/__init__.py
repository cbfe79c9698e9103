"""Figures, LaTeX tables and the quoted numbers of the paper, all drawn from the aggregate CSVs."""
