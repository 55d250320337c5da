"""Schema check for one GREAT-format VarMisuse example (a decoded JSON object).

A GREAT example (Hellendoorn et al., ICLR 2020, public dataset ``google-research-datasets/great``)
is one JSON object per line with these fields (see ``docs/varmisuse-format.md``):

=====================  ==========================  =============================================
field                  type                        constraint checked here
=====================  ==========================  =============================================
``source_tokens``      list[str], non-empty        --
``has_bug``            bool                        --
``error_location``     int                         ``0 <= error_location < n_tokens``;
                                                   ``0`` when ``has_bug`` is false
``repair_targets``     list[int]                   each in ``[0, n_tokens)``; empty when bug-free
``repair_candidates``  list[int | str]             ints in ``[0, n_tokens)``; strings are ignored
``edges``              list[list]                  each ``[src, dst, type_id, type_name...]``
                                                   with int ``src``/``dst`` in ``[0, n_tokens)``
``bug_kind``           int (optional)              --
``bug_kind_name``      str (optional)              --
``provenances``        list (optional)             --
=====================  ==========================  =============================================

Buggy examples with no repair targets, or with targets that are not among the candidates, occur in
the real data (about 1 in 120 dev examples) and are *valid*.
"""
from __future__ import annotations

from typing import Any

__all__ = ["InvalidExample", "validate_example", "REQUIRED_FIELDS", "OPTIONAL_FIELDS"]

#: field -> human description of the expected JSON type
REQUIRED_FIELDS: dict[str, str] = {
    "source_tokens": "a non-empty list of strings",
    "has_bug": "a boolean",
    "error_location": "an integer",
    "repair_targets": "a list of integers",
    "repair_candidates": "a list of integers or strings",
    "edges": "a list of [src, dst, type_id, type_name] lists",
}
OPTIONAL_FIELDS: dict[str, str] = {
    "bug_kind": "an integer",
    "bug_kind_name": "a string",
    "provenances": "a list",
}


class InvalidExample(ValueError):
    """A GREAT-format example (or line) that does not satisfy the schema.

    The message names the field and the problem; readers prefix it with ``file:line:``.
    """


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_OPTIONAL_CHECKS = {"bug_kind": _is_int, "bug_kind_name": lambda v: isinstance(v, str),
                    "provenances": lambda v: isinstance(v, list)}


def _edges_in_range(edges: list, n: int) -> bool:
    """True if every edge is a list of >= 3 items whose first three are ints, src/dst in [0, n)."""
    if set(map(type, edges)) != {list} or min(map(len, edges)) < 3:
        return False
    src, dst, kind = list(zip(*edges))[:3]
    return (set(map(type, src)) == {int} and set(map(type, dst)) == {int} and set(map(type, kind)) == {int}
            and min(src) >= 0 and min(dst) >= 0 and max(src) < n and max(dst) < n)


_REQUIRED_KEYS = frozenset(REQUIRED_FIELDS)
_CANDIDATE_TYPES = frozenset((int, str))
_INT_ONLY = frozenset((int,))
_IS_INT = int.__instancecheck__


def _looks_valid(ex: Any) -> bool:
    """True only for a valid example (the usual case), checked mostly at C speed; False: look closer.

    Stricter than the checks below (exact types, no subclasses), so it never accepts what they reject.
    """
    if type(ex) is not dict or not _REQUIRED_KEYS <= ex.keys():
        return False
    tokens, has_bug, loc = ex["source_tokens"], ex["has_bug"], ex["error_location"]
    targets, cands, edges = ex["repair_targets"], ex["repair_candidates"], ex["edges"]
    if (type(tokens) is not list or not tokens or type(has_bug) is not bool or type(loc) is not int
            or type(targets) is not list or type(cands) is not list or type(edges) is not list):
        return False
    n = len(tokens)
    if not 0 <= loc < n or (not has_bug and (loc or targets)):
        return False
    try:
        "".join(tokens)              # TypeError unless every token is a str (twice as fast as a type set)
    except TypeError:
        return False
    if targets and (set(map(type, targets)) != {int} or min(targets) < 0 or max(targets) >= n):
        return False
    if cands:
        kinds = set(map(type, cands))
        if not kinds <= _CANDIDATE_TYPES:
            return False
        ints = cands if kinds == _INT_ONLY else list(filter(_IS_INT, cands))   # no bools here
        if ints and (min(ints) < 0 or max(ints) >= n):
            return False
    if edges and not _edges_in_range(edges, n):
        return False
    return not (("bug_kind" in ex and type(ex["bug_kind"]) is not int)
                or ("bug_kind_name" in ex and type(ex["bug_kind_name"]) is not str)
                or ("provenances" in ex and type(ex["provenances"]) is not list))


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def validate_example(example: dict) -> None:
    """Check one decoded GREAT example; raise :class:`InvalidExample` naming the field and problem.

    Args:
        example: the decoded JSON object of one line.

    Raises:
        InvalidExample: a required field is missing, has the wrong type, or an index
            (``error_location``, a repair target, an integer candidate, an edge end) lies
            outside ``[0, len(source_tokens))``; or a bug-free example has a nonzero
            ``error_location`` or repair targets.
    """
    if _looks_valid(example):
        return
    if not isinstance(example, dict):
        raise InvalidExample(f"expected a JSON object, received {_describe(example)}")
    missing = [name for name in REQUIRED_FIELDS if name not in example]
    if missing:
        raise InvalidExample(
            f"missing required field(s) {', '.join(repr(m) for m in missing)}; "
            f"present: {sorted(example)}"
        )
    tokens = example["source_tokens"]
    if not isinstance(tokens, list) or not tokens:
        raise InvalidExample(f"field 'source_tokens': expected {REQUIRED_FIELDS['source_tokens']}, "
                             f"received {_describe(tokens)}")
    if set(map(type, tokens)) != {str}:  # fast C-level check first, locate the culprit on failure
        for i, tok in enumerate(tokens):
            if not isinstance(tok, str):
                raise InvalidExample(f"field 'source_tokens'[{i}]: expected a string, received {_describe(tok)}")
    n = len(tokens)

    has_bug = example["has_bug"]
    if not isinstance(has_bug, bool):
        raise InvalidExample(f"field 'has_bug': expected a boolean, received {_describe(has_bug)}")

    loc = example["error_location"]
    if not _is_int(loc):
        raise InvalidExample(f"field 'error_location': expected an integer, received {_describe(loc)}")
    if not 0 <= loc < n:
        raise InvalidExample(
            f"field 'error_location': {loc} is outside the tokens (expected 0 <= error_location < {n})")

    targets = example["repair_targets"]
    _check_index_list("repair_targets", targets, n, allow_str=False)
    _check_index_list("repair_candidates", example["repair_candidates"], n, allow_str=True)
    if not has_bug:
        if loc != 0:
            raise InvalidExample(
                f"field 'error_location': a bug-free example (has_bug false) must have error_location 0, "
                f"received {loc}")
        if targets:
            raise InvalidExample(
                f"field 'repair_targets': a bug-free example (has_bug false) must have no repair targets, "
                f"received {_describe(targets)}")

    edges = example["edges"]
    if not isinstance(edges, list):
        raise InvalidExample(f"field 'edges': expected {REQUIRED_FIELDS['edges']}, received {_describe(edges)}")
    if edges and _edges_in_range(edges, n):
        edges = ()  # every edge checked at C speed; the loop below only locates a problem
    for i, edge in enumerate(edges):
        if (not isinstance(edge, list) or len(edge) < 3 or not _is_int(edge[0]) or not _is_int(edge[1])
                or not _is_int(edge[2])):
            raise InvalidExample(
                f"field 'edges'[{i}]: expected [src, dst, type_id, type_name] with integer src, dst, "
                f"type_id, received {_describe(edge)}")
        if not (0 <= edge[0] < n and 0 <= edge[1] < n):
            raise InvalidExample(
                f"field 'edges'[{i}]: {edge[:2]} points outside the tokens (expected indices in [0, {n}))")

    for name, ok in _OPTIONAL_CHECKS.items():
        if name in example and not ok(example[name]):
            raise InvalidExample(f"field {name!r}: expected {OPTIONAL_FIELDS[name]}, "
                                 f"received {_describe(example[name])}")


def _check_index_list(name: str, values: Any, n: int, *, allow_str: bool) -> None:
    if not isinstance(values, list):
        raise InvalidExample(f"field {name!r}: expected {REQUIRED_FIELDS[name]}, received {_describe(values)}")
    types = set(map(type, values))
    if types <= {int} and (not values or (min(values) >= 0 and max(values) < n)):
        return
    if allow_str and types <= {int, str}:
        ints = [v for v in values if type(v) is int]
        if not ints or (min(ints) >= 0 and max(ints) < n):
            return
    for i, v in enumerate(values):
        if _is_int(v):
            if not 0 <= v < n:
                raise InvalidExample(
                    f"field {name!r}[{i}]: {v} is outside the tokens (expected 0 <= index < {n})")
        elif not (allow_str and isinstance(v, str)):
            expected = "an integer or a string" if allow_str else "an integer"
            raise InvalidExample(f"field {name!r}[{i}]: expected {expected}, received {_describe(v)}")
