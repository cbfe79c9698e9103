"""Number formatting shared by tables and quoted text (one place, so they always agree)."""

from __future__ import annotations

import math


def is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x, digits: int = 1) -> str:
    """A rate in [0, 1] as a percentage, e.g. 0.4231 -> '42.3'."""
    return "--" if is_missing(x) else f"{100 * x:.{digits}f}"


def pp(x, digits: int = 1, sign: bool = True) -> str:
    """Percentage points, signed: 3.21 -> '+3.2'."""
    if is_missing(x):
        return "--"
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return "+0.0" if s == "-0.0" and sign else s


def num(x, digits: int = 2) -> str:
    return "--" if is_missing(x) else f"{x:.{digits}f}"


def latex_escape(text: str) -> str:
    out = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        out = out.replace(a, b) if a != "\\" else out.replace(a, "\x00")
    return out.replace("\x00", r"\textbackslash{}")
