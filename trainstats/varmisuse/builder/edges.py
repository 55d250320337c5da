"""GREAT edges of one function, as ``[src, dst, type_id, "enum_<TYPE>"]`` over token indices.

Type ids are GREAT's (those of ``python_graphs``' ``EdgeType``): CFG_NEXT 1, LAST_READ 2, LAST_WRITE 3,
COMPUTED_FROM 4, RETURNS_TO 5, FORMAL_ARG_NAME 6, FIELD 7, SYNTAX 8 (never emitted, as in GREAT's
data), NEXT_SYNTAX 9, LAST_LEXICAL_USE 10, CALLS 11. Directions follow the real data: NEXT_SYNTAX
forward; LAST_* from an access to the earlier one; COMPUTED_FROM from an assignment target to a name
in the assigned value; FIELD from an AST parent to a child; CFG_NEXT from an instruction to its
successor; CALLS from a call to the called ``def``; RETURNS_TO from a ``return`` to the call;
FORMAL_ARG_NAME from an argument to the parameter it binds.
"""
from __future__ import annotations

import ast

from trainstats.varmisuse.builder.anchors import Anchors
from trainstats.varmisuse.builder.dataflow import dataflow_edges
from trainstats.varmisuse.builder.flow import Flow
from trainstats.varmisuse.builder.scopes import Scopes
from trainstats.varmisuse.builder.tokens import LAYOUT_TOKENS

__all__ = ["EDGE_TYPES", "FunctionGraph"]

#: GREAT edge type name -> id
EDGE_TYPES: dict[str, int] = {
    "CFG_NEXT": 1, "LAST_READ": 2, "LAST_WRITE": 3, "COMPUTED_FROM": 4, "RETURNS_TO": 5,
    "FORMAL_ARG_NAME": 6, "FIELD": 7, "SYNTAX": 8, "NEXT_SYNTAX": 9, "LAST_LEXICAL_USE": 10, "CALLS": 11,
}
_ORDER = ("FIELD", "NEXT_SYNTAX", "LAST_LEXICAL_USE", "CFG_NEXT", "LAST_WRITE", "LAST_READ",
          "COMPUTED_FROM", "CALLS", "RETURNS_TO", "FORMAL_ARG_NAME")
_ASSIGNS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.NamedExpr)


class FunctionGraph:
    """Everything about one function that its edges need; :meth:`edges` may rename one occurrence.

    Structural edges (FIELD, NEXT_SYNTAX, CFG_NEXT, COMPUTED_FROM) do not depend on names and are
    computed once; name-dependent ones (LAST_*, CALLS, RETURNS_TO, FORMAL_ARG_NAME) are computed
    per call so that a buggy copy gets the edges of the buggy code, as in GREAT.
    """

    def __init__(self, func: ast.AST, anchors: Anchors, scopes: Scopes):
        self.func = func
        self.anchors = anchors
        self.scopes = scopes
        self.flow = Flow(func, anchors, scopes)
        rep = anchors.rep
        nodes = anchors.nodes
        self.defs: list[ast.AST] = [n for n in nodes
                                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n in rep]
        self.calls: list[ast.Call] = [n for n in nodes if isinstance(n, ast.Call) and n in rep]
        self._static = {
            "FIELD": self._field(),
            "NEXT_SYNTAX": self._next_syntax(),
            "CFG_NEXT": self._cfg(),
            "COMPUTED_FROM": self._computed_from(),
        }

    # -- structural ------------------------------------------------------------------------------
    def _field(self) -> list[tuple[int, int]]:
        rep, children, singles = self.anchors.rep, self.anchors.children, self.anchors.tree.singles
        out, queue = [], [self.func]
        while queue:
            nxt = []
            for node in queue:
                src = rep.get(node)
                if src is not None:
                    for value in singles.get(node, ()):
                        dst = rep.get(value)
                        if dst is not None and dst != src and not (
                                isinstance(node, ast.Subscript) and value is node.slice
                                and not isinstance(value, ast.Slice)):
                            out.append((src, dst))  # GREAT's indices sat under a token-less Index
                    if isinstance(node, ast.ExceptHandler) and node.name:
                        name_tok = self.anchors.token_after_as(node)
                        if name_tok is not None:
                            out.append((src, name_tok))  # the name was a node in GREAT's AST
                nxt.extend(children[node])
            queue = nxt
        return out

    def _next_syntax(self) -> list[tuple[int, int]]:
        tokens = self.anchors.tokens
        reps = set(self.anchors.rep.values())
        keep = [i for i in range(1, len(tokens)) if tokens[i] not in LAYOUT_TOKENS or i in reps]
        return list(zip(keep, keep[1:]))

    def _cfg(self) -> list[tuple[int, int]]:
        instrs = self.flow.instrs
        out = []
        for ins in instrs:
            if ins.tok is None:
                continue
            seen, stack = set(), list(ins.succ)
            while stack:  # pass through instructions without a token (break, continue ...)
                j = stack.pop(0)
                if j in seen:
                    continue
                seen.add(j)
                if instrs[j].tok is None:
                    stack.extend(instrs[j].succ)
                else:
                    out.append((ins.tok, instrs[j].tok))
        return out

    def _computed_from(self) -> list[tuple[int, int]]:
        rep, node_occ, occ = self.anchors.rep, self.scopes.node_occ, self.scopes.occ
        out = []
        children = self.anchors.children
        for node in self.anchors.nodes:
            if not isinstance(node, _ASSIGNS) or getattr(node, "value", None) is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            sources = sorted(occ[node_occ[n]].tok for n in _walk_no_fstring(node.value, children)
                             if isinstance(n, ast.Name) and n in node_occ)
            for t in targets:
                if t in rep:
                    out.extend((rep[t], s) for s in sources)
        return out

    # -- name dependent --------------------------------------------------------------------------
    def edges(self, tokens: list[str], rename: tuple[int, str] | None = None) -> list[list]:
        """All edges for ``tokens``; ``rename=(occurrence index, new name)`` models a misuse."""
        occ = self.scopes.occ
        names = [o.name for o in occ]
        keys = [(o.resolved, o.name) for o in occ]
        if rename is not None:
            i, new = rename
            names[i] = new
            keys[i] = (self.scopes.resolve(new, occ[i].scope), new)
        toks = [o.tok for o in occ]
        last_write, last_read = dataflow_edges(self.flow.instrs, keys, toks)
        groups = dict(self._static)
        groups["LAST_WRITE"], groups["LAST_READ"] = last_write, last_read
        groups["LAST_LEXICAL_USE"] = self._lexical(tokens)
        groups["CALLS"], groups["RETURNS_TO"], groups["FORMAL_ARG_NAME"] = self._calls(names)
        out: list[list] = []
        for name in _ORDER:
            tid, label = EDGE_TYPES[name], "enum_" + name
            seen = set()
            for a, b in groups[name]:
                if (a, b) not in seen:
                    seen.add((a, b))
                    out.append([a, b, tid, label])
        return out

    def _lexical(self, tokens: list[str]) -> list[tuple[int, int]]:
        last: dict[str, int] = {}
        out = []
        for o in self.scopes.occ:
            if not o.plain:
                continue
            text = tokens[o.tok]
            if text in last:
                out.append((o.tok, last[text]))
            last[text] = o.tok
        return out

    def _calls(self, names: list[str]):
        rep, node_occ = self.anchors.rep, self.scopes.node_occ
        by_name: dict[str, list[ast.AST]] = {}
        for d in self.defs:
            by_name.setdefault(d.name, []).append(d)
        returns_of: dict[ast.AST, list[int]] = {}
        for tok, fn in self.flow.returns:
            returns_of.setdefault(fn, []).append(tok)
        calls, returns_to, formal = [], [], []
        for call in self.calls:
            f = call.func
            if not isinstance(f, ast.Name):
                continue  # as in GREAT: only calls of a plain name are resolved
            callee = names[node_occ[f]] if f in node_occ else f.id
            c = rep[call]
            for d in by_name.get(callee, ()):
                calls.append((c, rep[d]))
                returns_to.extend((r, c) for r in returns_of.get(d, ()))
                params = d.args.posonlyargs + d.args.args
                for k, arg in enumerate(call.args):
                    if isinstance(arg, ast.Starred) or k >= len(params):
                        break
                    if arg in rep and params[k] in rep:
                        formal.append((rep[arg], rep[params[k]]))
                by_arg = {p.arg: p for p in params + d.args.kwonlyargs}
                for kw in call.keywords:
                    p = by_arg.get(kw.arg) if kw.arg else None
                    if p is not None and kw in rep and p in rep:
                        formal.append((rep[kw], rep[p]))
        return calls, returns_to, formal


def _walk_no_fstring(node: ast.AST, children: dict[ast.AST, list[ast.AST]]):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if not isinstance(n, ast.JoinedStr):
            stack.extend(children[n])
