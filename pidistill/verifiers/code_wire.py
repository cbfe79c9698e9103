"""Wire format between the trusted judge and the untrusted candidate process.

Only plain data crosses the boundary: JSON scalars and tagged lists for the other builtin value
types. Decoding builds exact builtin types (never subclasses, never user classes), so a value
received from a candidate cannot carry an ``__eq__``, ``__bool__`` or ``__hash__`` of its own.
Objects that are not plain data travel as opaque handles (``["h", id, type name]``).
"""

from __future__ import annotations

import collections
import decimal
import fractions
import json
import builtins
import math
import re
import struct

MAX_MESSAGE = 32 * 1024 * 1024
MAX_DEPTH = 200
_BIG = 10**300


class WireError(Exception):
    """A message that does not follow the format (or is too big or too deep)."""


_BUILTIN_TYPES = {name: obj for name, obj in vars(builtins).items() if isinstance(obj, type) and not issubclass(obj, BaseException)}


class MatchResult:
    """What a candidate's ``re.Match`` becomes on the judge's side: always true (as a match is),
    with the matched text and span."""

    __slots__ = ("_text", "_span")

    def __init__(self, text: str, span: tuple[int, int]):
        self._text = text
        self._span = span

    def __bool__(self) -> bool:
        return True

    def group(self, n: int = 0) -> str:
        if n != 0:
            raise IndexError("only group 0 is available")
        return self._text

    def span(self) -> tuple[int, int]:
        return self._span

    def start(self) -> int:
        return self._span[0]

    def end(self) -> int:
        return self._span[1]

    def __repr__(self) -> str:
        return f"<match span={self._span} match={self._text!r}>"


class Handle:
    """Placeholder for an opaque object that lives on the other side."""

    __slots__ = ("ref", "type_name")

    def __init__(self, ref: int, type_name: str):
        self.ref = ref
        self.type_name = type_name


def encode(value, handles=None, depth: int = 0):
    """A JSON-able tree for ``value``. ``handles(obj) -> Handle`` is called for non-plain objects
    (None: they raise WireError)."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply (or cyclic)")
    if value is None or value is True or value is False:
        return value
    if isinstance(value, bool):  # bool subclasses cannot exist, but be explicit
        return bool(value)
    if isinstance(value, int):
        value = int.__index__(value)
        if -_BIG < value < _BIG:
            return value
        return ["I", format(value, "x")]
    if isinstance(value, float):
        value = float.__float__(value)
        if math.isfinite(value):
            return value
        return ["fl", repr(value)]
    if isinstance(value, str):
        return str.__str__(value)
    d = depth + 1
    if isinstance(value, Handle):
        return ["h", value.ref, value.type_name]
    if isinstance(value, complex):
        return ["c", encode(value.real, handles, d), encode(value.imag, handles, d)]
    if isinstance(value, (bytes, bytearray)):
        return ["ba" if isinstance(value, bytearray) else "b", bytes(value).decode("latin-1")]
    if isinstance(value, collections.Counter):
        return ["cnt"] + [x for k, v in dict.items(value) for x in (encode(k, handles, d), encode(v, handles, d))]
    if isinstance(value, collections.OrderedDict):
        return ["od"] + [x for k, v in dict.items(value) for x in (encode(k, handles, d), encode(v, handles, d))]
    if isinstance(value, dict):
        return ["d"] + [x for k, v in dict.items(value) for x in (encode(k, handles, d), encode(v, handles, d))]
    if isinstance(value, list):
        return ["l"] + [encode(v, handles, d) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return ["t"] + [encode(v, handles, d) for v in tuple.__iter__(value)]
    if isinstance(value, frozenset):
        return ["fs"] + [encode(v, handles, d) for v in frozenset.__iter__(value)]
    if isinstance(value, set):
        return ["s"] + [encode(v, handles, d) for v in set.__iter__(value)]
    if isinstance(value, collections.deque):
        return ["dq"] + [encode(v, handles, d) for v in value]
    if isinstance(value, range):
        return ["rg", value.start, value.stop, value.step]
    if isinstance(value, decimal.Decimal):
        return ["dec", str(value)]
    if isinstance(value, fractions.Fraction):
        return ["fr", encode(value.numerator, handles, d), encode(value.denominator, handles, d)]
    if type(value) is type and _BUILTIN_TYPES.get(value.__name__) is value:
        return ["ty", value.__name__]
    if type(value) is re.Match:
        return ["m", str(value.group(0)), value.start(), value.end()]
    if isinstance(value, MatchResult):
        return ["m", value._text, value._span[0], value._span[1]]
    if handles is None:
        raise WireError(f"cannot send a value of type {type(value).__name__}")
    return encode(handles(value), None, d)


def _pairs(items, depth, resolve):
    if len(items) % 2:
        raise WireError("odd mapping")
    return [(decode(items[i], resolve, depth), decode(items[i + 1], resolve, depth)) for i in range(0, len(items), 2)]


def decode(tree, resolve=None, depth: int = 0):
    """The value for a tree made by ``encode``; ``resolve(ref, type_name)`` maps handles."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    t = type(tree)
    if tree is None or t is bool or t is int or t is float or t is str:
        return tree
    if t is not list or not tree or type(tree[0]) is not str:
        raise WireError("malformed value")
    tag, rest, d = tree[0], tree[1:], depth + 1
    try:
        if tag == "l":
            return [decode(x, resolve, d) for x in rest]
        if tag == "t":
            return tuple(decode(x, resolve, d) for x in rest)
        if tag == "s":
            return {decode(x, resolve, d) for x in rest}
        if tag == "fs":
            return frozenset(decode(x, resolve, d) for x in rest)
        if tag == "d":
            return dict(_pairs(rest, d, resolve))
        if tag == "od":
            return collections.OrderedDict(_pairs(rest, d, resolve))
        if tag == "cnt":
            return collections.Counter(dict(_pairs(rest, d, resolve)))
        if tag == "dq":
            return collections.deque(decode(x, resolve, d) for x in rest)
        if tag == "I" and len(rest) == 1 and type(rest[0]) is str and len(rest[0]) < 100_000:
            return int(rest[0], 16)
        if tag == "fl" and rest in (["nan"], ["inf"], ["-inf"]):
            return float(rest[0])
        if tag == "c" and len(rest) == 2:
            re_, im = decode(rest[0], None, d), decode(rest[1], None, d)
            if type(re_) is float and type(im) is float:
                return complex(re_, im)
        if tag in ("b", "ba") and len(rest) == 1 and type(rest[0]) is str:
            raw = rest[0].encode("latin-1")
            return bytearray(raw) if tag == "ba" else raw
        if tag == "rg" and len(rest) == 3 and all(type(x) is int for x in rest):
            return range(*rest)
        if tag == "dec" and len(rest) == 1 and type(rest[0]) is str and len(rest[0]) < 10_000:
            return decimal.Decimal(rest[0])
        if tag == "fr" and len(rest) == 2:
            num, den = decode(rest[0], None, d), decode(rest[1], None, d)
            if type(num) is int and type(den) is int:
                return fractions.Fraction(num, den)
        if tag == "ty" and len(rest) == 1 and rest[0] in _BUILTIN_TYPES:
            return _BUILTIN_TYPES[rest[0]]
        if tag == "m" and len(rest) == 3 and type(rest[0]) is str and type(rest[1]) is int and type(rest[2]) is int:
            return MatchResult(rest[0], (rest[1], rest[2]))
        if tag == "h" and len(rest) == 2 and type(rest[0]) is int and type(rest[1]) is str and resolve is not None:
            return resolve(rest[0], rest[1])
    except WireError:
        raise
    except (TypeError, ValueError, ArithmeticError, decimal.InvalidOperation, RecursionError, UnicodeError) as exc:
        raise WireError(f"bad value ({type(exc).__name__})") from None
    raise WireError(f"malformed value (tag {tag[:10]!r})")


# -- framing: 4-byte big-endian length + UTF-8 JSON --------------------------------------------

def send_msg(sock, obj) -> None:
    data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(data) > MAX_MESSAGE:
        raise WireError("message too large")
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_msg(sock):
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    if n > MAX_MESSAGE:
        raise WireError("message too large")
    data = _recv_exact(sock, n)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"undecodable message ({type(exc).__name__})") from None


def _no_constants(name):
    raise ValueError(f"constant {name} not allowed")
