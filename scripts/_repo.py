"""Imported first by every rule script: puts this checkout's ``pidistill`` package on ``sys.path``.

Snakemake adds only the scripts/ directory to the path; in a ``--sdm conda`` environment the
package is not installed, and in a venv it must be this checkout's code that runs (the code the
rules list as inputs).
"""

import sys
from pathlib import Path

_root = str(Path(__file__).resolve().parent.parent)
if _root not in sys.path:
    sys.path.insert(0, _root)
