"""LAST_WRITE / LAST_READ edges: reaching accesses over the instruction graph of :mod:`.flow`.

A reaching-accesses analysis over that graph, keyed by the
*resolved variable* (binding scope, name): at each access ``a`` of variable ``v``,
``LAST_WRITE(a) = {writes of v that reach a}`` and ``LAST_READ(a) = {reads of v that reach a}``;
a write kills earlier writes, a read kills earlier reads, and neither kills the other kind (as in
GREAT, where a write still points to the last read before it). Loops make self-edges possible.
"""
from __future__ import annotations

from collections import deque

from trainstats.varmisuse.builder.flow import Instruction

__all__ = ["dataflow_edges"]


def dataflow_edges(instrs: list[Instruction], keys: list[tuple[int, str]],
                   toks: list[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(LAST_WRITE, LAST_READ)`` edges ``(access token, earlier access token)``.

    Args:
        instrs: the instructions with their successors.
        keys: variable key of each occurrence (its binding scope and name).
        toks: token index of each occurrence.
    """
    n = len(instrs)
    preds: list[list[int]] = [[] for _ in range(n)]
    for i, ins in enumerate(instrs):
        for j in ins.succ:
            preds[j].append(i)
    out_w: list[dict] = [{} for _ in range(n)]
    out_r: list[dict] = [{} for _ in range(n)]
    in_w: list[dict] = [{} for _ in range(n)]
    in_r: list[dict] = [{} for _ in range(n)]
    work = deque(range(n))
    queued = [True] * n
    while work:
        i = work.popleft()
        queued[i] = False
        w, r = _merge([out_w[p] for p in preds[i]]), _merge([out_r[p] for p in preds[i]])
        in_w[i], in_r[i] = w, r
        w, r = dict(w), dict(r)
        for occ, is_write in instrs[i].acc:
            (w if is_write else r)[keys[occ]] = frozenset((toks[occ],))
        if w != out_w[i] or r != out_r[i]:
            out_w[i], out_r[i] = w, r
            for j in instrs[i].succ:
                if not queued[j]:
                    queued[j] = True
                    work.append(j)
    last_write: list[tuple[int, int]] = []
    last_read: list[tuple[int, int]] = []
    for i, ins in enumerate(instrs):
        w, r = dict(in_w[i]), dict(in_r[i])
        for occ, is_write in ins.acc:
            key, tok = keys[occ], toks[occ]
            last_write.extend((tok, t) for t in sorted(w.get(key, ())))
            last_read.extend((tok, t) for t in sorted(r.get(key, ())))
            (w if is_write else r)[key] = frozenset((tok,))
    return last_write, last_read


def _merge(states: list[dict]) -> dict:
    if not states:
        return {}
    if len(states) == 1:
        return states[0]
    out = dict(states[0])
    for s in states[1:]:
        for k, v in s.items():
            old = out.get(k)
            out[k] = v if old is None else (old | v)
    return out
