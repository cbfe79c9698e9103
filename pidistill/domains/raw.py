"""Checks shared by the dataset loaders: the options a loader takes, and the shape of raw records.

A loader reads a file a user points it at, so everything wrong with it is an
:class:`~pidistill.io.InputError` naming the file, the line or record, the field and what was
expected, never a ``KeyError`` from deep inside a loader.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Callable, Iterable

from pidistill.io import InputError

STR, INT, LIST_OF_STR, STR_OR_NUMBER = "a string", "an integer", "a list of strings", "a string or a number"
_CHECKS: dict[str, Callable[[object], bool]] = {
    STR: lambda v: isinstance(v, str),
    INT: lambda v: isinstance(v, int) and not isinstance(v, bool) or isinstance(v, str) and v.strip().isdigit(),
    LIST_OF_STR: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    STR_OR_NUMBER: lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
}


@dataclass(frozen=True)
class RawFormat:
    """A raw record layout: ``required`` and ``optional`` fields with what each must be (a key of
    ``_CHECKS``; an optional field may also be null), and the field that identifies a record."""

    name: str
    required: dict[str, str]
    optional: dict[str, str]
    id_field: str | None  # None: records have no id of their own (the loader numbers them)
    nonempty: tuple[str, ...] = ()  # list fields that need at least one element

    @property
    def article(self) -> str:
        return "an" if self.name.startswith("MBPP") else "a"

    def describe(self) -> str:
        return f"{self.name} records have {', '.join(self.required)}"

    def check(self, where: str, row: dict) -> dict:
        missing = [k for k in self.required if k not in row]
        if missing:
            hint = ""
            if {"id", "domain", "prompt"} <= set(row):
                hint = "; this looks like a problems file that `pidistill prepare` wrote, not the raw dataset"
            raise InputError(f"{where}: not {self.article} {self.name} record: missing field(s) {', '.join(map(repr, missing))} "
                             f"({self.describe()}{hint})")
        for fields, nullable in ((self.required, False), (self.optional, True)):
            for key, kind in fields.items():
                if key not in row or (nullable and row[key] is None):
                    continue
                if not _CHECKS[kind](row[key]):
                    raise InputError(f"{where}: field {key!r} must be {kind}, got {_shown(row[key])}")
        for key in self.nonempty:
            if not row[key]:
                raise InputError(f"{where}: field {key!r} is empty ({self.article} {self.name} record needs at least one)")
        return row


def _shown(value) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def check_records(source: str, rows: Iterable[tuple[str, dict]], fmt: RawFormat) -> list[tuple[str, dict]]:
    """Every record checked against ``fmt``; no records at all, or one id given twice, is an error."""
    out, seen = [], {}
    for where, row in rows:
        fmt.check(where, row)
        out.append((where, row))
        if fmt.id_field is None or row.get(fmt.id_field) is None:
            continue
        key = str(row[fmt.id_field]).strip()
        if key in seen:
            raise InputError(f"{where}: duplicate {fmt.id_field} {row[fmt.id_field]!r} (first at {seen[key]})")
        seen[key] = _short(where, source)
    if not out:
        raise InputError(f"{source}: no records ({fmt.describe()}, one per line or in one JSON array)")
    return out


def _short(where: str, source: str) -> str:
    """``"file:12"`` -> ``"line 12"``, ``"file: record 3"`` -> ``"record 3"`` (the file is named already)."""
    if not where.startswith(source + ":"):
        return where
    rest = where[len(source) + 1 :].strip()
    return f"line {rest}" if rest.isdigit() else rest


def _accepts(value, hint) -> bool:
    if hint is inspect.Parameter.empty or hint is typing.Any:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_accepts(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this check does not model (list[str], ...): the loader checks it


def _kind(hint) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(_kind(h) for h in typing.get_args(hint))
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def dataset_loader(name: str):
    """Mark ``fn(source, **options)`` as the loader of dataset ``name``: an option it does not take,
    or a value of the wrong type, is an InputError naming the option (not a TypeError)."""

    def wrap(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        names = [p for p in sig.parameters if p != "source"]

        @functools.wraps(fn)
        def loader(source=None, **options):
            unknown = sorted(set(options) - set(names))
            if unknown:
                raise InputError(f"dataset {name!r}: unknown option(s) {', '.join(unknown)} "
                                 f"(its options: {', '.join(names) or 'none'})")
            for key, value in options.items():
                hint = hints.get(key, inspect.Parameter.empty)
                if not _accepts(value, hint):
                    raise InputError(f"dataset {name!r}: option {key} must be {_kind(hint)}, got {value!r}")
            return fn(source, **options)

        loader.dataset = name
        return loader

    return wrap
