"""Exact tokens and exact edges of the VarMisuse builder on hand-written functions."""
from __future__ import annotations

import textwrap

import pytest

from trainstats.varmisuse.builder import EDGE_TYPES, examples_from_source


def _one(source: str) -> tuple[dict, dict]:
    examples = examples_from_source(textwrap.dedent(source))
    assert len(examples) == 2, examples
    return examples[0], examples[1]


def _edges(example: dict, name: str) -> list[tuple[int, int]]:
    return [(a, b) for a, b, tid, label in example["edges"] if label == "enum_" + name]


LOOP = """
def h(a, b):
    c = a
    while c:
        c = c - b
    return c
"""
#        0            1        2    3    4    5    6    7            8           9    10   11
LOOP_TOKENS = ["#NEWLINE#", "def h(", "a", ",", "b", ")", ":", "#NEWLINE#", "#INDENT#", "c", "=", "a",
               # 12         13       14   15   16           17          18   19   20   21   22
               "#NEWLINE#", "while", "c", ":", "#NEWLINE#", "#INDENT#", "c", "=", "c", "-", "b",
               # 23         24            25        26
               "#NEWLINE#", "#UNINDENT#", "return", "c"]


def test_tokens_follow_great_conventions():
    clean, buggy = _one('''
        class K:
            @staticmethod
            def g(x, *args, **kw):  # a comment
                """Doc."""
                import os.path as osp
                from .. import y
                s = (x +
                     1)
                if s is not None and x not in kw:
                    return osp.join(x, s, 'a' "b")
    ''')
    assert clean["source_tokens"] == [
        "#NEWLINE#", "@", "staticmethod", "#NEWLINE#", "def g(", "x", ",", "*", "args", ",", "**kw", ")",
        ":", "#NEWLINE#", "#INDENT#", '"""Doc."""', "#NEWLINE#", "import", "os.path", "as osp", "#NEWLINE#",
        "from", "..", "import", "y", "#NEWLINE#", "s", "=", "(", "x", "+", "1", ")", "#NEWLINE#",
        "if", "s", "is not", "None", "and", "x", "not in", "kw", ":", "#NEWLINE#", "#INDENT#",
        "return", "osp", ".", "join", "(", "x", ",", "s", ",", "'a'", '"b"', ")"]
    assert len(buggy["source_tokens"]) == len(clean["source_tokens"])


def test_loop_tokens_and_next_syntax():
    clean, _ = _one(LOOP)
    assert clean["source_tokens"] == LOOP_TOKENS
    keep = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20, 21, 22, 25, 26]
    assert _edges(clean, "NEXT_SYNTAX") == list(zip(keep, keep[1:]))


def test_loop_data_flow_edges():
    clean, _ = _one(LOOP)
    assert sorted(_edges(clean, "LAST_WRITE")) == sorted([
        (11, 2), (14, 9), (14, 18), (20, 9), (20, 18), (22, 4), (18, 9), (18, 18), (26, 9), (26, 18)])
    assert sorted(_edges(clean, "LAST_READ")) == sorted([(14, 20), (20, 14), (22, 22), (18, 20), (26, 14)])
    assert _edges(clean, "LAST_LEXICAL_USE") == [(11, 2), (14, 9), (18, 14), (20, 18), (22, 4), (26, 20)]
    assert _edges(clean, "COMPUTED_FROM") == [(9, 11), (18, 20), (18, 22)]


def test_loop_cfg_and_field_edges():
    clean, _ = _one(LOOP)
    assert _edges(clean, "CFG_NEXT") == [(3, 8), (8, 14), (14, 17), (14, 25), (17, 14)]
    assert _edges(clean, "FIELD") == [(1, 3), (8, 11), (13, 14), (25, 26), (17, 21), (21, 20), (21, 22)]


# GREAT's edge type ids, as every edge of the real dev shards has them (``[src, dst, id, "enum_NAME"]``;
# SYNTAX does not occur there)
GREAT_EDGE_IDS = {"CFG_NEXT": 1, "LAST_READ": 2, "LAST_WRITE": 3, "COMPUTED_FROM": 4, "RETURNS_TO": 5,
                  "FORMAL_ARG_NAME": 6, "FIELD": 7, "NEXT_SYNTAX": 9, "LAST_LEXICAL_USE": 10, "CALLS": 11}


def _edge_ids(folder, lines_per_shard=None) -> dict[str, int]:
    import json

    seen = {}
    for path in sorted(folder.iterdir()):
        with open(path, encoding="utf-8") as fh:
            for line in list(fh)[:lines_per_shard]:
                for _, _, tid, label in json.loads(line)["edges"]:
                    assert seen.setdefault(label, tid) == tid, label
    return seen


def test_edge_ids_and_names_are_greats(built_great_dev_dir):
    assert {k: EDGE_TYPES[k] for k in GREAT_EDGE_IDS} == GREAT_EDGE_IDS
    assert _edge_ids(built_great_dev_dir) == {"enum_" + k: v for k, v in GREAT_EDGE_IDS.items()}
    clean, buggy = _one(LOOP)
    for a, b, tid, label in clean["edges"] + buggy["edges"]:
        assert EDGE_TYPES[label.removeprefix("enum_")] == tid


def test_edge_ids_and_names_match_the_real_shards(real_great_dev_dir):
    seen = _edge_ids(real_great_dev_dir, lines_per_shard=50)
    assert seen == {"enum_" + k: v for k, v in GREAT_EDGE_IDS.items()}
    for label, tid in seen.items():
        assert EDGE_TYPES[label.removeprefix("enum_")] == tid


def test_calls_returns_and_formal_args():
    src = """
    def outer(x):
        def inner(p, q):
            return p
        y = inner(x, q=x)
        return y
    """
    examples = examples_from_source(textwrap.dedent(src))
    clean = examples[0]
    t = clean["source_tokens"]
    callee = t.index("inner", t.index("y"))
    assert t[callee:callee + 4] == ["inner", "(", "x", ","]
    call = callee + 3  # as in GREAT, a call with several arguments sits on its first comma
    assert _edges(clean, "CALLS") == [(call, t.index("def inner("))]
    assert _edges(clean, "RETURNS_TO") == [(t.index("return"), call)]
    q_kw = t.index("q", callee)
    expected = [(callee + 2, t.index("p")), (q_kw, t.index("q"))]
    assert sorted(_edges(clean, "FORMAL_ARG_NAME")) == sorted(expected)


def test_comprehension_and_nested_scopes_are_not_function_variables():
    clean, buggy = _one("""
    def f(items, n):
        total = sum([i * n for i in items])
        g = lambda v: v + total
        return g(n)
    """)
    names = {c for c in clean["repair_candidates"] if isinstance(c, str)}
    assert names == {"items", "n", "total", "g"}
    t = buggy["source_tokens"]
    assert t[buggy["error_location"]] in names
    assert t[buggy["error_location"]] not in ("i", "v")


@pytest.mark.parametrize("source", [
    "def f():\n    return 1\n",          # no variable at all
    "def f(a):\n    return a\n",          # one variable: nothing to misuse with
])
def test_functions_without_possible_misuse_give_no_example(source):
    assert examples_from_source(source) == []
