"""Control flow and data flow inside one function, at the granularity GREAT uses.

An *instruction* is a simple statement, the test of an ``if``/``while``, the iterable and the target of
a ``for`` (two instructions), the items of a ``with``, an ``except`` clause, a ``case`` pattern, a
nested ``def``/``class`` (decorators, defaults, bases, then the binding of its name), or the entry of
a function or lambda (the binding of its parameters). Each instruction lists its variable *accesses*
(occurrence index, is_write) in evaluation order (right-hand side before targets, a comprehension's
iterable before its target, the test of a conditional expression first).

``CFG_NEXT`` joins instructions that may run one after the other; every instruction of a ``try`` body
may jump to each of its ``except`` clauses; ``return`` and ``raise`` leave the function.

Data flow over these instructions: :mod:`trainstats.varmisuse.builder.dataflow`.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from trainstats.varmisuse.builder.anchors import Anchors
from trainstats.varmisuse.builder.scopes import Scopes

__all__ = ["Instruction", "Flow"]

_COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class Instruction:
    tok: int | None
    acc: list[tuple[int, bool]]
    succ: list[int] = field(default_factory=list)


@dataclass
class _Loop:
    head: int
    breaks: list[int] = field(default_factory=list)


class Flow:
    """Instructions and control-flow successors of a function and the functions nested in it.

    Attributes:
        instrs: all instructions; ``instrs[i].succ`` are the ``CFG_NEXT`` successors of ``i``.
        returns: ``(return token, function node)`` for every ``return`` with a token.
    """

    def __init__(self, func: ast.AST, anchors: Anchors, scopes: Scopes):
        self.rep = anchors.rep
        self.children = anchors.children
        self.node_occ = scopes.node_occ
        self.instrs: list[Instruction] = []
        self.returns: list[tuple[int, ast.AST]] = []
        self._handlers: list[list[int]] = []
        self._loops: list[_Loop] = []
        self._pending: list[ast.AST] = []
        self._fn: list[ast.AST] = []
        self._definition(func, [], bind=False)  # the root's defaults and decorators, then its "def"
        self._unit(func)
        done = {id(func)}
        while self._pending:
            node = self._pending.pop(0)
            if id(node) not in done:
                done.add(id(node))
                self._unit(node)

    # -- building --------------------------------------------------------------------------------
    def _new(self, tok: int | None, acc: list[tuple[int, bool]], preds: list[int]) -> int:
        i = len(self.instrs)
        self.instrs.append(Instruction(tok, acc))
        for p in preds:
            self.instrs[p].succ.append(i)
        if self._handlers:
            self.instrs[i].succ.extend(self._handlers[-1])
        return i

    def _unit(self, node: ast.AST) -> None:
        """A function, lambda or class body: its own entry and statements."""
        saved = self._handlers, self._loops
        self._handlers, self._loops = [], []
        self._fn.append(node)
        if isinstance(node, ast.ClassDef):
            self._block(node.body, [])
        else:
            a = node.args
            params = a.posonlyargs + a.args + ([a.vararg] if a.vararg else []) + a.kwonlyargs \
                + ([a.kwarg] if a.kwarg else [])
            acc = [(self.node_occ[p], True) for p in params if p in self.node_occ]
            entry = self._new(self.rep.get(a), acc, [])  # no token for 0-1 parameters, as in GREAT
            if isinstance(node, ast.Lambda):
                self._new(self.rep.get(node.body), self._acc(node.body), [entry])
            else:
                self._block(node.body, [entry])
        self._fn.pop()
        self._handlers, self._loops = saved

    def _block(self, stmts: list[ast.stmt], preds: list[int]) -> list[int]:
        for s in stmts:
            preds = self._stmt(s, preds)
        return preds

    def _stmt(self, node: ast.stmt, preds: list[int]) -> list[int]:
        rep = self.rep
        if isinstance(node, ast.If):
            t = self._new(rep.get(node.test), self._acc(node.test), preds)
            return self._block(node.body, [t]) + (self._block(node.orelse, [t]) if node.orelse else [t])
        if isinstance(node, ast.While):
            t = self._new(rep.get(node.test), self._acc(node.test), preds)
            return self._loop(node, t, [t])
        if isinstance(node, (ast.For, ast.AsyncFor)):
            it = self._new(rep.get(node.iter), self._acc(node.iter), preds)
            head = self._new(rep.get(node.target), self._acc(node.target), [it])
            return self._loop(node, head, [head])
        if isinstance(node, (ast.With, ast.AsyncWith)):
            acc: list[tuple[int, bool]] = []
            for item in node.items:
                acc += self._acc(item.context_expr)
                if item.optional_vars is not None:
                    acc += self._acc(item.optional_vars)
            w = self._new(rep.get(node.items[0]), acc, preds)  # GREAT: the first item's ``as``
            return self._block(node.body, [w])
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            return self._try(node, preds)
        if isinstance(node, (ast.Return, ast.Raise)):
            i = self._new(rep.get(node), self._children_acc(node), preds)
            if isinstance(node, ast.Return) and rep.get(node) is not None:
                self.returns.append((rep[node], self._fn[-1]))
            return []
        if isinstance(node, ast.Break):
            i = self._new(None, [], preds)  # GREAT has no CFG node for break / continue
            if self._loops:
                self._loops[-1].breaks.append(i)
            return []
        if isinstance(node, ast.Continue):
            i = self._new(None, [], preds)
            if self._loops:
                self.instrs[i].succ.append(self._loops[-1].head)
            return []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._pending.append(node)
            return [self._definition(node, preds, bind=True)]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            acc = [(self.node_occ[a], True) for a in node.names if a in self.node_occ]
            return [self._new(rep.get(node), acc, preds)]
        if isinstance(node, ast.Match):
            m = self._new(rep.get(node.subject), self._acc(node.subject), preds)
            exits, prev = [], [m]
            for case in node.cases:
                acc = self._acc(case.pattern) + (self._acc(case.guard) if case.guard else [])
                c = self._new(rep.get(case.pattern), acc, prev)
                exits += self._block(case.body, [c])
                prev = [c]
            return exits + prev
        if isinstance(node, ast.Pass):
            return [self._new(None, [], preds)]  # GREAT has no CFG node for ``pass``
        return [self._new(rep.get(node), self._acc(node), preds)]

    def _definition(self, node: ast.AST, preds: list[int], *, bind: bool) -> int:
        """Defaults, decorators (each an instruction, as in GREAT), then the ``def``/``class`` itself."""
        parts = list(node.decorator_list)
        if isinstance(node, ast.ClassDef):
            parts = node.bases + [k.value for k in node.keywords] + parts
        else:
            parts = node.args.defaults + [d for d in node.args.kw_defaults if d is not None] + parts
        for part in parts:
            preds = [self._new(self.rep.get(part), self._acc(part), preds)]
        acc = [(self.node_occ[node], True)] if bind and node in self.node_occ else []
        return self._new(self.rep.get(node), acc, preds)

    def _loop(self, node: ast.stmt, head: int, preds: list[int]) -> list[int]:
        loop = _Loop(head)
        self._loops.append(loop)
        for e in self._block(node.body, preds):
            self.instrs[e].succ.append(head)
        self._loops.pop()
        exits = self._block(node.orelse, [head]) if node.orelse else [head]
        return exits + loop.breaks

    def _try(self, node: ast.stmt, preds: list[int]) -> list[int]:
        hids = []
        for h in node.handlers:
            acc = self._acc(h.type) if h.type is not None else []
            if h in self.node_occ:
                acc.append((self.node_occ[h], True))
            tok = self.rep.get(h.type) if h.type is not None else None  # bare ``except:``: none
            hids.append(self._new(tok, acc, []))
        for a, b in zip(hids, hids[1:]):
            self.instrs[a].succ.append(b)
        if hids:
            self._handlers.append(hids)
        exits = self._block(node.body, preds)
        if hids:
            self._handlers.pop()
        exits = self._block(node.orelse, exits)
        for h, hid in zip(node.handlers, hids):
            exits += self._block(h.body, [hid])
        if node.finalbody:
            exits = self._block(node.finalbody, exits)
        return exits

    # -- accesses in evaluation order --------------------------------------------------------------
    def _acc(self, node: ast.AST | None) -> list[tuple[int, bool]]:
        out: list[tuple[int, bool]] = []
        if node is not None:
            self._ev(node, out)
        return out

    def _children_acc(self, node: ast.AST) -> list[tuple[int, bool]]:
        out: list[tuple[int, bool]] = []
        for child in self.children[node]:
            self._ev(child, out)
        return out

    def _ev(self, node: ast.AST, out: list[tuple[int, bool]]) -> None:
        ev = self._ev
        if isinstance(node, ast.Name):
            i = self.node_occ.get(node)
            if i is not None:
                out.append((i, not isinstance(node.ctx, ast.Load)))
        elif isinstance(node, ast.Assign):
            ev(node.value, out)
            for t in node.targets:
                ev(t, out)
        elif isinstance(node, ast.AugAssign):
            i = self.node_occ.get(node.target)
            if i is not None:
                out.append((i, False))
            elif not isinstance(node.target, ast.Name):
                for child in self.children[node.target]:
                    ev(child, out)
            ev(node.value, out)
            if i is not None:
                out.append((i, True))
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                ev(node.value, out)
            ev(node.annotation, out)
            if node.value is not None:
                ev(node.target, out)
        elif isinstance(node, ast.NamedExpr):
            ev(node.value, out)
            ev(node.target, out)
        elif isinstance(node, ast.IfExp):
            ev(node.test, out)
            ev(node.body, out)
            ev(node.orelse, out)
        elif isinstance(node, ast.Lambda):
            for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                ev(d, out)
            self._pending.append(node)
        elif isinstance(node, _COMPS):
            for g in node.generators:
                ev(g.iter, out)
                ev(g.target, out)
                for cond in g.ifs:
                    ev(cond, out)
            for part in ((node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)):
                ev(part, out)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if k is not None:
                    ev(k, out)
                ev(v, out)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar, ast.MatchMapping)):
            for child in self.children[node]:
                ev(child, out)
            i = self.node_occ.get(node)
            if i is not None:
                out.append((i, True))
        elif isinstance(node, ast.JoinedStr):
            return
        else:
            for child in self.children[node]:
                ev(child, out)

