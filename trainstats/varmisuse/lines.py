"""Fast, exact decoding of GREAT lines that keeps the ``edges`` array as raw bytes.

About 80 % of a GREAT line is its ``edges`` array (thousands of ``[src, dst, type_id, "name"]``
lists), and building those Python lists is most of what ``json.loads`` does. For a line in the
canonical GREAT layout (what ``json.dumps`` writes: ``, "edges": [[1, 3, 7, "enum_FIELD"], ...]]``
followed by ``, "error_location": ``, or ``"edges": []``) :func:`parse_lines` instead

1. decodes the line with the edges array replaced by a placeholder integer (``2**62 + 1``, which
   must occur nowhere else in the line) with :data:`DECODER` (``orjson`` when installed, else the
   stdlib ``json``) and checks it with :func:`~trainstats.varmisuse.validate_example`; the decoded
   ``edges`` must be the placeholder itself, so the replaced bytes are the top-level value;
2. checks the edges bytes, for a whole block of lines at once, against the grammar
   ``[]`` or ``[[s, d, t, "name"], ...]`` (exactly this spacing; ``s, d, t`` decimal integers
   without leading zeros, ``0 <= s, d < len(source_tokens)``; ``name`` of ``[A-Za-z0-9_]``): per
   line, the bytes left after deleting ``[A-Za-z0-9_]`` must be exactly the expected punctuation
   (``bytes.translate``); then numpy pins every punctuation byte to its place and reads the numbers.

A line passes the fast path only if it passes both; any other line (other key order or spacing, an
edge the grammar does not cover, any error) goes through the plain
:func:`~trainstats.varmisuse.decode_line` (stdlib ``json``), which gives the verdict and the precise
error. So the fast path never accepts a line the plain path rejects, and returns the same example.

:func:`encode_example` writes an example back exactly as ``json.dumps`` does (separators
``", "``/``": "``, key order kept), splicing the original edges bytes back in unchanged.
"""
from __future__ import annotations

import json
from functools import lru_cache
from itertools import compress
from typing import Callable, NamedTuple, Sequence

import numpy as np

from trainstats.varmisuse.reader import decode_line
from trainstats.varmisuse.schema import InvalidExample, validate_example

try:  # optional: ``pip install trainstats[fast]``; results are identical without it
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = ["ParsedLine", "parse_line", "parse_lines", "encode_example", "loads", "DECODER"]


def _json_loads(data: bytes):
    return json.loads(data.decode("utf-8"))


#: the decoder of the fast path: ``"orjson"`` or ``"json"``
DECODER = "orjson" if _orjson is not None else "json"
#: decodes the (edges-less) rest of a line; any exception sends the line to the plain path
loads: Callable[[bytes], object] = _orjson.loads if _orjson is not None else _json_loads

_EDGES_KEY = b', "edges": '
_CANONICAL_END = b'"]], "error_location": '
_PLACEHOLDER = 2**62 + 1                      # an int no float equals
_PLACEHOLDER_BYTES = str(_PLACEHOLDER).encode()
_WORD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
_UNIT = b'[, , , ""], '                       # punctuation of one edge and its separator


class ParsedLine(NamedTuple):
    """A decoded, validated line.

    ``example`` is the full example when ``edges_raw`` is None; otherwise its ``edges`` value is an
    empty placeholder list and ``edges_raw`` holds the original, already validated, edges bytes.
    """

    example: dict
    edges_raw: bytes | None


@lru_cache(maxsize=2048)
def _punctuation(length: int) -> bytes | None:
    """Expected punctuation of an edges array whose punctuation has ``length`` bytes (12 per edge)."""
    if length == 2:
        return b"[]"
    if length % 12:
        return None
    return b"[" + _UNIT * (length // 12 - 1) + _UNIT[:10] + b"]"


def _split(raw: bytes, check_edges: bool, validate: bool) -> tuple[dict, bytes, int] | None:
    """``(example with edges [], edges bytes, n_edges)`` for a canonical valid-looking line, else None.

    ``n_edges`` is -1 when the edges are not checked. The edges bytes are checked here only for
    their punctuation; :func:`_edges_ok` checks the rest.
    """
    key = raw.find(_EDGES_KEY)
    if key < 0:
        return None
    start = key + len(_EDGES_KEY)
    if raw.startswith(b"[]", start):
        end = start + 2
    else:
        end = raw.find(_CANONICAL_END, start)
        if end < 0:
            return None
        end += 3
    edges = raw[start:end]
    m = -1
    if check_edges:
        punct = edges.translate(None, _WORD)
        if punct != _punctuation(len(punct)) or (len(punct) == 2 and edges != b"[]"):
            return None
        m = len(punct) // 12
    if raw.find(_PLACEHOLDER_BYTES, 0, start) >= 0 or raw.find(_PLACEHOLDER_BYTES, end) >= 0:
        return None
    try:
        example = loads(raw[:start] + _PLACEHOLDER_BYTES + raw[end:])
        if type(example) is not dict or type(example.get("edges")) is not int or example["edges"] != _PLACEHOLDER:
            return None
        example["edges"] = []
        if validate:
            validate_example(example)
    except Exception:  # noqa: BLE001 - any failure: the plain path decides and words the error
        return None
    return example, edges, m


def _words(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``a[p:p + 8]`` as a big-endian uint64 for each ``p`` in ``pos`` (``a`` padded by 8 bytes)."""
    windows = np.ndarray(shape=(a.size - 7,), dtype=">u8", buffer=a, strides=(1,))   # unaligned view
    return windows[pos].astype(np.uint64)


def _fields(a: np.ndarray, pos: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fields ``a[p:p + length]`` of 1-8 word bytes: ``(JSON integer?, the field as a big-endian int)``.

    A word byte is a digit iff it is below ``':'`` (0x3a): adding 0x46 sets its high bit otherwise.
    """
    length = length.view(np.uint64)   # lengths outside 1..8 shift by >= 64 bits (numpy gives 0); the
    field = _words(a, pos) >> ((np.uint64(8) - length) << np.uint64(3))   # caller rejects them anyway
    digits = ((field + np.uint64(0x4646464646464646)) & np.uint64(0x8080808080808080)) == 0
    lead = (field >> ((length - np.uint64(1)) << np.uint64(3))) != 48     # '0' only alone
    return digits & (lead | (length == 1)), field


@lru_cache(maxsize=65536)
def _digit_key(n: int) -> tuple[int, int]:
    """``(number of decimal digits of n, its digits as a big-endian integer)``, for ``n < 10**8``."""
    text = str(n).encode()
    return len(text), int.from_bytes(text, "big")


def _edges_ok(segs: Sequence[bytes], n_tokens: Sequence[int], n_edges: Sequence[int]) -> np.ndarray:
    """Per edges array (punctuation already checked by :func:`_split`): does it fit the grammar?

    All arrays are checked together on one numpy buffer, ``b", ".join(segs) + b", "``, in which
    every edge (the last of its array too) is followed by exactly one comma beyond its own three:
    so the commas, reshaped to ``(n_edges, 4)``, are each edge's ``c1, c2, c3, sep``. Pinning the
    punctuation bytes next to them (``[s, d, t, "name"]`` exactly so spaced), and since an array
    holds exactly ``12 * n_edges`` punctuation bytes, all other bytes are word bytes: the three
    fields between the pins are JSON integers if they are digits without a leading zero (read 8
    bytes at a time), and the names are ``[A-Za-z0-9_]*``. ``s, d < n`` holds if ``s`` has fewer
    digits than ``n``, or as many and compares lower as a big-endian byte string.
    """
    k = len(segs)
    m = np.asarray(n_edges, dtype=np.int64)
    lens = np.fromiter(map(len, segs), dtype=np.int64, count=k) + 2
    ends = np.cumsum(lens)                              # one past each array's ", "
    starts = ends - lens
    a = np.frombuffer(b", ".join([*segs, b" " * 16]), dtype=np.uint8)   # 16 bytes of padding
    commas = np.flatnonzero(a == 44)
    if commas.size != 4 * int(m.sum()):                # cannot happen after the punctuation check
        return np.zeros(k, dtype=bool)
    c1, c2, c3, sep = commas.reshape(-1, 4).T
    first = np.cumsum(m) - m                            # per array: index of its first edge
    o = np.empty_like(sep)                              # per edge: its '['
    o[0] = 0
    o[1:] = sep[:-1] + 2
    o[first] += 1                                       # "[[" opens an array
    close = sep - 2                                     # the name's closing quote: '"], ' ...
    close[first + m - 1] -= 1                           # ... or '"]], ' for the last edge
    ls, ld, lt = c1 - o - 1, c2 - c1 - 2, c3 - c2 - 2    # field lengths
    if max(n_tokens) >= 10**8:
        return np.zeros(k, dtype=bool)                  # 10**8 tokens: the plain path will do
    keys = np.array([_digit_key(v) for v in n_tokens], dtype=np.uint64).reshape(k, 2)
    width = np.repeat(keys[:, 0].view(np.int64), m)     # digits of n
    top = np.repeat(keys[:, 1], m)                      # n as a big-endian digit string
    # pinned: each edge's '[', the space after each of its three commas and the quotes around its
    # name; the ']' after the closing quote and the space after ``sep`` are then the only places
    # left for the punctuation that _split proved to be there.
    good = ((a[o] == 91) & (ls >= 1) & (ls <= width) & (ld >= 1) & (ld <= width) & (lt >= 1) & (lt <= 8)
            & (a[c1 + 1] == 32) & (a[c2 + 1] == 32) & (a[c3 + 1] == 32) & (a[c3 + 2] == 34)
            & (close > c3 + 2) & (a[close] == 34))
    for pos, length in ((o + 1, ls), (c1 + 2, ld)):
        ok_int, value = _fields(a, pos, length)
        good &= ok_int & ((length < width) | (value < top))
    good &= _fields(a, c2 + 2, lt)[0]
    ok = (a[starts] == 91) & (a[starts + 1] == 91) & (a[ends - 3] == 93) & (a[ends - 4] == 93)
    if not good.all():
        ok[np.repeat(np.arange(k), m)[~good]] = False
    return ok


def parse_lines(raws: Sequence[bytes], where: Callable[[int], str], *, check_edges: bool = True,
                validate: bool = True) -> list[ParsedLine | InvalidExample]:
    """Decode and validate a block of shard lines (fast path for canonical lines, see the module).

    Args:
        raws: the lines' bytes (trailing newlines allowed).
        where: ``i -> "file:line"`` for line ``i`` of ``raws``, prefixing error messages.
        check_edges, validate: ``False`` skips checking the edges bytes / the schema check of the
            rest (on the fast path): only for lines already validated (e.g. by an earlier pass
            over the same file).

    Returns:
        Per line a :class:`ParsedLine`, or the :class:`InvalidExample` (not raised) that
        :func:`~trainstats.varmisuse.decode_line` raises for it.
    """
    out: list[ParsedLine | InvalidExample | None] = [None] * len(raws)
    fast: list[int] = []
    segs: list[bytes] = []
    n_tokens: list[int] = []
    n_edges: list[int] = []
    for i, raw in enumerate(raws):
        got = _split(raw, check_edges, validate)
        if got is None:
            out[i] = _plain(raw, where(i))
            continue
        example, edges, m = got
        out[i] = ParsedLine(example, edges)
        if m > 0:
            fast.append(i)
            segs.append(edges)
            n_tokens.append(len(example["source_tokens"]))
            n_edges.append(m)
    if segs:
        for i in compress(fast, ~_edges_ok(segs, n_tokens, n_edges)):
            out[i] = _plain(raws[i], where(i))
    return out  # type: ignore[return-value]


def _plain(raw: bytes, where: str) -> ParsedLine | InvalidExample:
    try:
        return ParsedLine(decode_line(raw, where=where, validate=True), None)
    except InvalidExample as exc:
        return exc


def parse_line(raw: bytes, *, where: str, check_edges: bool = True, validate: bool = True) -> ParsedLine:
    """:func:`parse_lines` for one line.

    Raises:
        InvalidExample: exactly as :func:`~trainstats.varmisuse.decode_line` (``where`` prefixes it).
    """
    got = parse_lines([raw], lambda _: where, check_edges=check_edges, validate=validate)[0]
    if isinstance(got, InvalidExample):
        raise got
    return got


_ENCODERS = {True: json.JSONEncoder(ensure_ascii=True), False: json.JSONEncoder(ensure_ascii=False)}
#: stands in for the edges value while encoding; its JSON form cannot occur anywhere else in a line
_SENTINEL = "\x00trainstats-edges-8d2f6c1e\x00"
_MARKER = json.dumps(_SENTINEL).encode()   # the same with either ensure_ascii (control characters)


def encode_example(example: dict, *, edges_raw: bytes | None = None, ensure_ascii: bool = True) -> bytes:
    """Serialize ``example`` as ``json.dumps(example, ensure_ascii=...)`` would, as bytes (no newline).

    With ``edges_raw`` the value of ``"edges"`` is written as those bytes verbatim (the placeholder in
    ``example`` is ignored), so an untouched edges array stays byte-identical.
    """
    encoder = _ENCODERS[bool(ensure_ascii)]
    if edges_raw is None:
        return encoder.encode(example).encode("utf-8")
    if "edges" not in example:
        raise InvalidExample("cannot splice edges into an example without an 'edges' key")
    text = encoder.encode(dict(example, edges=_SENTINEL)).encode("utf-8")
    marker = _MARKER
    if text.count(marker) == 1:
        return text.replace(marker, edges_raw)
    parts = []  # the sentinel text also occurs in a value: encode key by key
    for key, value in example.items():
        head = encoder.encode(key).encode("utf-8") + b": "
        parts.append(head + (edges_raw if key == "edges" else encoder.encode(value).encode("utf-8")))
    return b"{" + b", ".join(parts) + b"}"
