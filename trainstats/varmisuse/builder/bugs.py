"""Choose a variable misuse: one *use* of a function variable replaced by another variable in scope.

A *bug site* is a token that reads (``ast.Load``) a variable bound in the function itself (a
parameter or a local, not a global, builtin or a variable of a nested scope). A *replacement* for a
site is another variable of the function that

* is bound before the site in the source (a parameter, or its first binding token comes earlier), so
  the buggy code does not read an obviously undefined name, and
* resolves to the same function variable at the site (not shadowed by a comprehension, lambda or
  nested ``def`` between them).

The right variable must occur somewhere else (so ``repair_targets`` is never empty). The site is drawn
uniformly among sites that have at least one replacement, then the replacement uniformly.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from trainstats.varmisuse.builder.scopes import ROOT, Scopes

__all__ = ["Misuse", "choose_misuse"]


@dataclass(frozen=True)
class Misuse:
    """A chosen bug: replace the token ``location`` (occurrence ``occ``) naming ``right`` by ``wrong``."""

    occ: int
    location: int
    right: str
    wrong: str


def choose_misuse(scopes: Scopes, rng: random.Random) -> Misuse | None:
    """Draw one misuse for the function of ``scopes`` with ``rng``; None when none is possible."""
    variables = scopes.variables()
    first = scopes.first_binding()
    names = sorted(variables)
    options: list[tuple[int, list[str]]] = []
    for i, o in enumerate(scopes.occ):
        if o.kind != "load" or o.resolved != ROOT or not o.plain:
            continue
        if len(variables.get(o.name, ())) < 2:
            continue
        wrong = [n for n in names
                 if n != o.name and first.get(n, 0) < o.tok and scopes.resolve(n, o.scope) == ROOT]
        if wrong:
            options.append((i, wrong))
    if not options:
        return None
    i, wrong = options[rng.randrange(len(options))]
    o = scopes.occ[i]
    return Misuse(occ=i, location=o.tok, right=o.name, wrong=wrong[rng.randrange(len(wrong))])
