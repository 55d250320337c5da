"""Python scopes inside one function: which token names which variable.

Every name token of the function (``Name`` nodes, parameters, ``def``/``class``/``import``/``except``
bindings) becomes an :class:`Occurrence` resolved to the scope that binds it (Python's LEGB rules:
function, lambda, class and comprehension scopes; ``global`` / ``nonlocal``; class bodies are skipped
by nested functions). Scope 0 stands for everything outside the function (module, enclosing class,
builtins): a name resolving there is "global" for the example. Scope 1 is the function itself; its
variables are the VarMisuse variables (bug sites, repair candidates and targets).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from trainstats.varmisuse.builder.anchors import Anchors

__all__ = ["Occurrence", "Scope", "Scopes", "OUTSIDE", "ROOT"]

OUTSIDE, ROOT = 0, 1
#: occurrence kinds that bind the name (a write)
BINDING_KINDS = frozenset({"store", "del", "param", "def", "import", "except", "match"})
_COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_BLOCK_PARTS = (ast.stmt, ast.excepthandler, ast.match_case)


@dataclass
class Scope:
    id: int
    kind: str  # "outside" | "function" | "lambda" | "class" | "comprehension"
    parent: int | None
    locals: set[str] = field(default_factory=set)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)


@dataclass
class Occurrence:
    """One token that names a variable.

    Attributes:
        tok: token index; name: the identifier; kind: ``load``/``store``/``del``/``param``/``def``/
        ``import``/``except``/``match``; scope: where the token occurs; resolved: the scope that
        binds the name (``OUTSIDE`` for globals and builtins); plain: the token text is exactly the
        name (True for ``Name``, parameters and ``except ... as name``; False for merged tokens such
        as ``def name(`` or ``as name``).
    """

    tok: int
    name: str
    kind: str
    scope: int
    resolved: int = OUTSIDE
    plain: bool = True


class Scopes:
    """Scopes and name occurrences of the function ``func`` (projected with ``anchors``).

    Attributes:
        scopes: list of :class:`Scope` (index = id); occ: occurrences in token order;
        node_occ: AST node (``Name``, ``arg``, def, alias, handler, pattern) -> index into ``occ``;
        node_scope: scope-creating node -> scope id.
    """

    def __init__(self, func: ast.AST, anchors: Anchors):
        self.anchors = anchors
        self.children = anchors.children
        self.scopes: list[Scope] = [Scope(OUTSIDE, "outside", None)]
        self.occ: list[Occurrence] = []
        self.node_occ: dict[ast.AST, int] = {}
        self.node_scope: dict[ast.AST, int] = {}
        self._function(func, OUTSIDE, bind_name=False)
        for o in self.occ:
            o.resolved = self.resolve(o.name, o.scope)
        order = sorted(range(len(self.occ)), key=lambda i: self.occ[i].tok)
        remap = {old: new for new, old in enumerate(order)}
        self.occ = [self.occ[i] for i in order]
        self.node_occ = {n: remap[i] for n, i in self.node_occ.items()}

    # -- resolution ------------------------------------------------------------------------------
    def resolve(self, name: str, scope: int) -> int:
        """The id of the scope that binds ``name`` as seen from ``scope`` (``OUTSIDE`` if none)."""
        s = self.scopes[scope]
        if name in s.globals:
            return OUTSIDE
        if name in s.locals and name not in s.nonlocals:
            return s.id
        p = s.parent
        while p is not None and p != OUTSIDE:
            ps = self.scopes[p]
            if ps.kind != "class" and name in ps.locals and name not in ps.nonlocals \
                    and name not in ps.globals:
                return ps.id
            if name in ps.globals:
                return OUTSIDE
            p = ps.parent
        return OUTSIDE

    # -- collection ------------------------------------------------------------------------------
    def _new_scope(self, kind: str, parent: int, node: ast.AST) -> int:
        sid = len(self.scopes)
        self.scopes.append(Scope(sid, kind, parent))
        self.node_scope[node] = sid
        return sid

    def _add(self, node: ast.AST | None, tok: int | None, name: str, kind: str, scope: int,
             plain: bool = True) -> None:
        """Record an occurrence (when it has a token) and bind the name (even when it has none)."""
        if kind in BINDING_KINDS:
            target = scope
            if kind == "store" and isinstance(node, ast.Name) and getattr(node, "_walrus", False):
                while self.scopes[target].kind == "comprehension":
                    target = self.scopes[target].parent
            s = self.scopes[target]
            if name not in s.globals and name not in s.nonlocals:
                s.locals.add(name)
        if tok is None:
            return
        idx = len(self.occ)
        self.occ.append(Occurrence(tok=tok, name=name, kind=kind, scope=scope, plain=plain))
        if node is not None:
            self.node_occ[node] = idx

    def _function(self, node: ast.AST, scope: int, *, bind_name: bool = True) -> None:
        rep = self.anchors.rep
        for d in getattr(node, "decorator_list", []):
            self._expr(d, scope)
        args = node.args
        for d in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
            self._expr(d, scope)
        is_lambda = isinstance(node, ast.Lambda)
        params = args.posonlyargs + args.args + ([args.vararg] if args.vararg else []) \
            + args.kwonlyargs + ([args.kwarg] if args.kwarg else [])
        if not is_lambda:
            for a in params:
                if a.annotation is not None:
                    self._expr(a.annotation, scope)
            if node.returns is not None:
                self._expr(node.returns, scope)
            if bind_name:
                self._add(node, rep.get(node), node.name, "def", scope, plain=False)
        inner = self._new_scope("lambda" if is_lambda else "function", scope, node)
        for a in params:
            tok = rep.get(a)
            if tok is not None and self.anchors.tokens[tok] != a.arg:
                tok = None  # ``**kwargs`` is one token in GREAT and no occurrence of the variable
            self._add(a, tok, a.arg, "param", inner)
        if is_lambda:
            self._expr(node.body, inner)
        else:
            for stmt in node.body:
                self._declarations(stmt, inner)
            for stmt in node.body:
                self._stmt(stmt, inner)

    def _declarations(self, node: ast.AST, scope: int) -> None:
        """Record the ``global`` / ``nonlocal`` declarations of ``scope`` before any binding."""
        stack = [node]
        while stack:
            sub = stack.pop()
            if isinstance(sub, ast.Global):
                self.scopes[scope].globals.update(sub.names)
            elif isinstance(sub, ast.Nonlocal):
                self.scopes[scope].nonlocals.update(sub.names)
            elif not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.extend(c for c in self.children[sub] if isinstance(c, _BLOCK_PARTS))

    def _stmt(self, node: ast.AST, scope: int) -> None:
        rep = self.anchors.rep
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._function(node, scope)
        elif isinstance(node, ast.ClassDef):
            for d in node.decorator_list + node.bases + [k.value for k in node.keywords]:
                self._expr(d, scope)
            self._add(node, rep.get(node), node.name, "def", scope, plain=False)
            inner = self._new_scope("class", scope, node)
            for stmt in node.body:
                self._declarations(stmt, inner)
            for stmt in node.body:
                self._stmt(stmt, inner)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    continue
                bound = alias.asname or alias.name.split(".")[0]
                span = self.anchors.span.get(alias)
                self._add(alias, span[1] if span else None, bound, "import", scope,
                          plain=self.anchors.tokens[span[1]] == bound if span else False)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            return
        else:
            for child in self.children[node]:
                if isinstance(child, ast.stmt):
                    self._stmt(child, scope)
                elif isinstance(child, ast.excepthandler):
                    if child.type is not None:
                        self._expr(child.type, scope)
                    if child.name:
                        self._add(child, self.anchors.token_after_as(child), child.name, "except", scope)
                    for stmt in child.body:
                        self._stmt(stmt, scope)
                elif isinstance(child, ast.match_case):
                    self._expr(child.pattern, scope)
                    if child.guard is not None:
                        self._expr(child.guard, scope)
                    for stmt in child.body:
                        self._stmt(stmt, scope)
                else:
                    self._expr(child, scope)

    def _expr(self, node: ast.AST, scope: int) -> None:
        if isinstance(node, ast.Name):
            kind = {ast.Load: "load", ast.Store: "store", ast.Del: "del"}[type(node.ctx)]
            self._add(node, self.anchors.rep.get(node), node.id, kind, scope)
        elif isinstance(node, ast.NamedExpr):
            node.target._walrus = True  # bound in the enclosing function, not the comprehension
            self._expr(node.value, scope)
            self._expr(node.target, scope)
        elif isinstance(node, ast.Lambda):
            self._function(node, scope)
        elif isinstance(node, _COMPS):
            gens = node.generators
            self._expr(gens[0].iter, scope)
            inner = self._new_scope("comprehension", scope, node)
            for i, g in enumerate(gens):
                self._expr(g.target, inner)
                if i:
                    self._expr(g.iter, inner)
                for cond in g.ifs:
                    self._expr(cond, inner)
            for part in ((node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)):
                self._expr(part, inner)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            for child in self.children[node]:
                self._expr(child, scope)
            span = self.anchors.span.get(node)
            self._add(node, span[1] if span else None, node.name, "match", scope)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            for child in self.children[node]:
                self._expr(child, scope)
            span = self.anchors.span.get(node)
            tok = span[1] - 1 if span and self.anchors.tokens[span[1] - 1] == node.rest else None
            self._add(None, tok, node.rest, "match", scope)
        elif isinstance(node, ast.JoinedStr):
            return  # names inside f-strings have no tokens of their own
        else:
            for child in self.children[node]:
                self._expr(child, scope)

    # -- queries for the VarMisuse task ----------------------------------------------------------
    def variables(self) -> dict[str, list[int]]:
        """The function's own variables: name -> sorted token indices of its plain occurrences."""
        out: dict[str, list[int]] = {}
        for o in self.occ:
            if o.resolved == ROOT and o.plain:
                out.setdefault(o.name, []).append(o.tok)
        return out

    def first_binding(self) -> dict[str, int]:
        """Name of each function variable -> token index of its first binding occurrence."""
        out: dict[str, int] = {}
        for o in self.occ:
            if o.resolved == ROOT and o.kind in BINDING_KINDS and o.name not in out:
                out[o.name] = o.tok
        return out
